"""Tests of attention extraction and its aggregations."""

from __future__ import annotations

import numpy as np
import pytest

from halluscope.explain import AttentionMaps, AttentionUnavailableError, extract_attention

CONTEXT = "The cat sat on the mat."
CLAIM = "A cat sat."


def test_attention_shape_matches_config(tiny_classifier, tokenizer):
    maps = extract_attention(tiny_classifier, tokenizer, CONTEXT, CLAIM)

    seq = len(maps.tokens)
    config = tiny_classifier.config
    assert maps.weights.shape == (config.num_hidden_layers, config.num_attention_heads, seq, seq)
    assert maps.num_layers == 2
    assert maps.num_heads == 2


def test_attention_rows_sum_to_one(tiny_classifier, tokenizer):
    maps = extract_attention(tiny_classifier, tokenizer, CONTEXT, CLAIM)

    np.testing.assert_allclose(maps.weights.sum(axis=-1), 1.0, atol=1e-5)


def test_attention_has_no_pad_tokens(tiny_classifier, tokenizer):
    maps = extract_attention(tiny_classifier, tokenizer, CONTEXT, CLAIM)

    assert tokenizer.pad_token not in maps.tokens
    assert maps.tokens[0] == "[CLS]"
    assert maps.tokens[-1] == "[SEP]"


def test_attention_segments_and_offsets(tiny_classifier, tokenizer):
    maps = extract_attention(tiny_classifier, tokenizer, CONTEXT, CLAIM)

    claim_tokens = [t for t, s in zip(maps.tokens, maps.segment_ids, strict=True) if s == 1]
    assert claim_tokens == ["a", "cat", "sat", "."]
    assert maps.segment_ids[0] == -1
    cat = maps.tokens.index("cat")
    start, end = maps.offsets[cat]
    assert CONTEXT[start:end] == "cat"


def test_attention_sdpa_model_raises(sdpa_classifier, tokenizer):
    with pytest.raises(AttentionUnavailableError, match='attention="eager"'):
        extract_attention(sdpa_classifier, tokenizer, CONTEXT, CLAIM)


def test_attention_truncates_like_prediction(tiny_classifier, tokenizer):
    long_context = " ".join(["word"] * 80)

    maps = extract_attention(tiny_classifier, tokenizer, long_context, CLAIM, max_length=24)

    assert len(maps.tokens) == 24
    assert maps.truncated


def _maps(weights: np.ndarray, segment_ids=None) -> AttentionMaps:
    seq = weights.shape[-1]
    if segment_ids is None:
        segment_ids = np.zeros(seq, dtype=np.int8)
    return AttentionMaps(
        tokens=tuple(f"t{i}" for i in range(seq)),
        weights=weights.astype(np.float32),
        segment_ids=np.asarray(segment_ids, dtype=np.int8),
        offsets=np.zeros((seq, 2), dtype=np.int64),
    )


def test_rollout_one_layer_mixes_identity():
    attention = np.array([[0.0, 1.0], [1.0, 0.0]])
    maps = _maps(attention[None, None])

    np.testing.assert_allclose(maps.rollout(), [[0.5, 0.5], [0.5, 0.5]], atol=1e-6)


def test_rollout_multiplies_layers_in_order():
    first = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    second = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    maps = _maps(np.stack([first[None], second[None]]))

    mixed_first = 0.5 * first + 0.5 * np.eye(3)
    mixed_second = 0.5 * second + 0.5 * np.eye(3)
    expected = mixed_second @ mixed_first
    np.testing.assert_allclose(maps.rollout(), expected, atol=1e-6)
    np.testing.assert_allclose(maps.rollout().sum(axis=1), 1.0, atol=1e-9)


def test_layer_mean_and_head():
    head_zero = np.eye(2)
    head_one = np.array([[0.0, 1.0], [0.0, 1.0]])
    maps = _maps(np.stack([head_zero, head_one])[None])

    np.testing.assert_allclose(maps.head(0, 1), head_one)
    np.testing.assert_allclose(maps.layer_mean(0), [[0.5, 0.5], [0.0, 1.0]])
    with pytest.raises(IndexError, match="head must lie in"):
        maps.head(0, 2)


def test_head_summary_pair_to_text():
    # Tokens: [CLS] text text [SEP] pair [SEP]; the pair token puts 0.6 on text.
    weights = np.full((6, 6), 1 / 6)
    weights[4] = [0.1, 0.3, 0.3, 0.1, 0.1, 0.1]
    maps = _maps(weights[None, None], segment_ids=[-1, 0, 0, -1, 1, -1])

    summary = maps.head_summary("pair_to_text")

    assert summary.shape == (1, 1)
    assert summary[0, 0] == pytest.approx(0.6, abs=1e-6)


def test_head_summary_entropy_of_uniform():
    maps = _maps(np.full((1, 1, 4, 4), 0.25))

    assert maps.head_summary("entropy")[0, 0] == pytest.approx(np.log(4), abs=1e-6)


def test_maps_reject_shape_mismatch():
    with pytest.raises(ValueError, match="weights must have shape"):
        AttentionMaps(
            tokens=("a", "b", "c"),
            weights=np.full((1, 1, 2, 2), 0.5, dtype=np.float32),
            segment_ids=np.zeros(3, dtype=np.int8),
            offsets=np.zeros((3, 2), dtype=np.int64),
        )


def test_maps_reject_unnormalised_rows():
    with pytest.raises(ValueError, match="must sum to 1"):
        _maps(np.full((1, 1, 2, 2), 0.3))


def test_token_labels_unique_for_repeats():
    maps = _maps(np.full((1, 1, 3, 3), 1 / 3))
    maps = AttentionMaps(
        tokens=("the", "cat", "the"),
        weights=maps.weights,
        segment_ids=maps.segment_ids,
        offsets=maps.offsets,
    )

    assert maps.token_labels() == ("0: the", "1: cat", "2: the")
