"""Tests of word splitting and of aggregating token attributions to words."""

from __future__ import annotations

import numpy as np
import pytest

from halluscope.explain import TokenAttributions, aggregate_to_words, split_words
from halluscope.inference import encode_example


def _attributions(tokenizer, text, text_pair=None, *, scores=None, max_length=256):
    """Token attributions of the real tokenization, with given (default: 1, 2, 3, ...) scores."""
    example = encode_example(tokenizer, text, text_pair, max_length=max_length)
    if scores is None:
        scores = np.arange(1, len(example.tokens) + 1, dtype=np.float64)
    return TokenAttributions(
        tokens=example.tokens,
        scores=np.asarray(scores, dtype=np.float64),
        segment_ids=example.segment_ids,
        offsets=example.offsets,
        method="test",
        target=1,
        target_label="hallucinated",
        convergence_delta=None,
        target_logit=0.0,
        truncated=example.truncated,
    )


def _texts(text, spans):
    return [text[start:end] for start, end in spans]


def test_split_words_punctuation():
    text = "Don't stop, please!"

    assert _texts(text, split_words(text)) == ["Don", "'", "t", "stop", ",", "please", "!"]


def test_split_words_cjk_per_character():
    text = "我爱北京。AI模型"

    assert _texts(text, split_words(text)) == ["我", "爱", "北", "京", "。", "AI", "模", "型"]


def test_split_words_emoji_sequences():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    thumbs = "\U0001f44d\U0001f3fd"
    flags = "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea"
    text = f"hi {thumbs} {family} {flags}"

    words = _texts(text, split_words(text))

    assert words == ["hi", thumbs, family, "\U0001f1eb\U0001f1f7", "\U0001f1e9\U0001f1ea"]


def test_split_words_combining_accent():
    text = "cafe\u0301 ok"

    assert _texts(text, split_words(text)) == ["cafe\u0301", "ok"]


def test_subwords_merge_into_one_word(tokenizer):
    text = "unbelievably good"
    attributions = _attributions(tokenizer, text)
    assert attributions.tokens[1:6] == ("un", "##bel", "##ie", "##va", "##bly")

    words = aggregate_to_words(attributions, text)

    first = words.text_words[0]
    assert first.text == "unbelievably"
    assert first.num_tokens == 5
    assert first.score == pytest.approx(2 + 3 + 4 + 5 + 6)
    assert [word.text for word in words.text_words] == ["unbelievably", "good"]


def test_mean_and_max_reduce(tokenizer):
    text = "unbelievably good"
    attributions = _attributions(tokenizer, text)

    mean_words = aggregate_to_words(attributions, text, reduce="mean")
    max_words = aggregate_to_words(attributions, text, reduce="max")

    assert mean_words.text_words[0].score == pytest.approx(4.0)
    assert max_words.text_words[0].score == pytest.approx(6.0)


def test_special_tokens_go_to_unassigned(tokenizer):
    text = "good dog"
    attributions = _attributions(tokenizer, text, scores=[10.0, 1.0, 2.0, 20.0])

    words = aggregate_to_words(attributions, text)

    assert words.unassigned_score == pytest.approx(30.0)
    assert sum(word.score for word in words.words()) == pytest.approx(3.0)


def test_cjk_and_emoji_spans_inside_text(tokenizer):
    text = "我爱北京 \U0001f642 naïve café!"
    attributions = _attributions(tokenizer, text)

    words = aggregate_to_words(attributions, text)

    for word in words.text_words:
        assert 0 <= word.start < word.end <= len(text)
        assert text[word.start : word.end] == word.text
    assert [w.text for w in words.text_words[:4]] == ["我", "爱", "北", "京"]
    assert "\U0001f642" in [w.text for w in words.text_words]
    assert "naïve" in [w.text for w in words.text_words]


def test_pair_words_map_to_pair_text(tokenizer):
    context = "Paris is in France."
    claim = "Paris is in Peru."
    attributions = _attributions(tokenizer, context, claim)

    words = aggregate_to_words(attributions, context, claim)

    assert [w.text for w in words.pair_words] == ["Paris", "is", "in", "Peru", "."]
    for word in words.pair_words:
        assert claim[word.start : word.end] == word.text
        assert word.segment == 1
    assert words.pair_words[3].num_tokens >= 1


def test_truncated_words_have_no_tokens(tokenizer):
    text = " ".join(["alpha"] * 20)
    attributions = _attributions(tokenizer, text, max_length=8)

    words = aggregate_to_words(attributions, text)

    assert len(words.text_words) == 20
    assert words.text_words[0].num_tokens == 1
    assert words.text_words[-1].num_tokens == 0
    assert words.text_words[-1].score == 0.0


def test_missing_text_pair_rejected(tokenizer):
    attributions = _attributions(tokenizer, "a context", "a claim")

    with pytest.raises(ValueError, match="no text_pair was passed"):
        aggregate_to_words(attributions, "a context")


def test_wrong_text_rejected(tokenizer):
    attributions = _attributions(tokenizer, "a much longer context here")

    with pytest.raises(ValueError, match="past the end"):
        aggregate_to_words(attributions, "short")


def test_top_words_order(tokenizer):
    text = "one two three"
    attributions = _attributions(tokenizer, text, scores=[0.0, 0.5, -3.0, 1.0, 0.0])

    words = aggregate_to_words(attributions, text)

    assert [w.text for w in words.top_words(2)] == ["two", "three"]
    assert words.max_abs_score() == pytest.approx(3.0)
