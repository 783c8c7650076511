"""Tests of explanations for generated text: labelled sequences, causal attention,
lookback ratios and batched attributions of answer tokens, on tiny random models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from halluscope.detect import ContextAttributionDetector, LowLookbackDetector
from halluscope.explain import (
    CONTEXT_SEGMENT,
    QUESTION_SEGMENT,
    attribute_answer,
    compute_lookback_ratios,
    encode_prompt_response,
    extract_sequence_attention,
    lookback_ratios,
)
from halluscope.explain.attention import AttentionMaps
from halluscope.inference import render_prompt, score_responses
from halluscope.inference.encoding import ANSWER_SEGMENT, SPECIAL_SEGMENT
from halluscope.models import load_tokenizer

CONTEXT = "The Tay Bridge opened in 1878 and has 85 spans."
QUESTION = "How many spans does the Tay Bridge have?"
ANSWER = "It has 47 spans, 北京 🎉."


@pytest.fixture(scope="module")
def chat_tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def plain_tokenizer(chat_tokenizer):
    tokenizer = copy.deepcopy(chat_tokenizer)
    tokenizer.chat_template = None
    return tokenizer


def _tiny_llama(vocab_size: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.3,
        attn_implementation="eager",
    )
    return LlamaForCausalLM(config).eval()


def _tiny_gpt2(vocab_size: int) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=256,
        initializer_range=0.3,
        attn_implementation="eager",
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(params=["llama", "gpt2"], scope="module")
def model_and_tokenizer(request, chat_tokenizer, plain_tokenizer):
    """A tiny Llama with the chat template, and a tiny GPT-2 with the plain prompt."""
    if request.param == "llama":
        return _tiny_llama(len(chat_tokenizer)), chat_tokenizer
    return _tiny_gpt2(len(plain_tokenizer)), plain_tokenizer


def _sequence(tokenizer, response=ANSWER, context=CONTEXT):
    prompt = render_prompt(tokenizer, QUESTION, context)
    return encode_prompt_response(tokenizer, prompt, response, context=context, question=QUESTION)


# Labelled sequences


@pytest.mark.parametrize("tokenizer_name", ["chat_tokenizer", "plain_tokenizer"])
def test_sequence_segments_cover_parts(tokenizer_name, request):
    tokenizer = request.getfixturevalue(tokenizer_name)

    sequence = _sequence(tokenizer)

    for segment, text in ((CONTEXT_SEGMENT, CONTEXT), (QUESTION_SEGMENT, QUESTION)):
        rows = np.flatnonzero(sequence.segment_ids == segment)
        assert rows.size > 0
        covered = "".join(text[start:end] for start, end in sequence.offsets[rows])
        assert covered == text
    answer_rows = np.flatnonzero(sequence.segment_ids == ANSWER_SEGMENT)
    assert answer_rows[0] == sequence.prompt_length
    assert answer_rows[-1] == sequence.seq_len - 1
    assert "".join(sequence.response_tokens) == ANSWER


def test_sequence_offsets_inside_texts(chat_tokenizer):
    sequence = _sequence(chat_tokenizer)

    for segment in (CONTEXT_SEGMENT, QUESTION_SEGMENT, ANSWER_SEGMENT):
        text = sequence.segment_text(segment)
        rows = sequence.segment_ids == segment
        assert np.all(sequence.offsets[rows, 1] <= len(text))
        assert np.all(sequence.offsets[rows, 0] <= sequence.offsets[rows, 1])


def test_sequence_matches_teacher_forced_scoring(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    prompt = render_prompt(chat_tokenizer, QUESTION, CONTEXT)

    sequence = encode_prompt_response(chat_tokenizer, prompt, ANSWER, context=CONTEXT)
    (scored,) = score_responses(model, chat_tokenizer, [prompt], [ANSWER])

    assert sequence.prompt_length == scored.prompt_length
    assert sequence.input_ids[0, sequence.prompt_length :].tolist() == scored.token_ids.tolist()


def test_sequence_without_context_has_no_context_tokens(chat_tokenizer):
    prompt = render_prompt(chat_tokenizer, QUESTION)

    sequence = encode_prompt_response(chat_tokenizer, prompt, "Yes.", question=QUESTION)

    assert not np.any(sequence.segment_ids == CONTEXT_SEGMENT)
    assert np.any(sequence.segment_ids == QUESTION_SEGMENT)


def test_sequence_template_tokens_are_special(chat_tokenizer):
    sequence = _sequence(chat_tokenizer)

    template_tokens = [
        token
        for token, segment in zip(sequence.tokens, sequence.segment_ids, strict=True)
        if segment == SPECIAL_SEGMENT
    ]
    assert "<|im_start|>" in template_tokens
    assert "Context" in template_tokens
    assert "Question" in template_tokens


# Attention


def test_sequence_attention_is_causal(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer

    maps = extract_sequence_attention(model, _sequence(tokenizer))

    assert maps.causal
    for layer in range(maps.num_layers):
        for head in range(maps.num_heads):
            above = np.triu(maps.head(layer, head), k=1)
            assert np.all(above == 0.0), f"layer {layer} head {head} attends ahead"


def test_single_prompt_attention_is_causal(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = render_prompt(tokenizer, QUESTION)

    sequence = encode_prompt_response(tokenizer, prompt, "A", question=QUESTION)
    maps = extract_sequence_attention(model, sequence)

    assert maps.seq_len == sequence.prompt_length + 1
    assert np.all(np.triu(maps.weights, k=1) == 0.0)
    np.testing.assert_allclose(maps.weights.sum(axis=-1), 1.0, atol=1e-5)


def test_causal_maps_reject_future_attention():
    weights = np.full((1, 1, 2, 2), 0.5, dtype=np.float32)

    with pytest.raises(ValueError, match="above the diagonal"):
        AttentionMaps(
            tokens=("a", "b"),
            weights=weights,
            segment_ids=np.zeros(2, dtype=np.int8),
            offsets=np.array([[0, 1], [1, 2]]),
            causal=True,
        )


# Lookback ratios


def test_lookback_ratio_by_hand():
    # Two context tokens, one template token, three answer tokens, one head.
    segment_ids = np.array([0, 0, -1, 2, 2, 2], dtype=np.int8)
    weights = np.zeros((1, 1, 6, 6), dtype=np.float32)
    for query in range(6):
        weights[0, 0, query, : query + 1] = 1.0 / (query + 1)
    weights[0, 0, 4] = [0.4, 0.2, 0.1, 0.1, 0.2, 0.0]
    maps = AttentionMaps(
        tokens=tuple("abcdef"),
        weights=weights,
        segment_ids=segment_ids,
        offsets=np.array([[0, 1], [1, 2], [0, 0], [0, 1], [1, 2], [2, 3]]),
        causal=True,
    )

    ratios = lookback_ratios(maps)

    assert ratios.shape == (3, 1, 1)
    assert ratios[0, 0, 0] == 1.0
    # Answer token 1 (position 4) is predicted by query 3: context mean 1/4, new mean 1/4.
    assert ratios[1, 0, 0] == pytest.approx(0.5)
    # Answer token 2 (position 5) is predicted by query 4: context mean 0.3, new mean 0.15.
    assert ratios[2, 0, 0] == pytest.approx(0.3 / 0.45)


def test_lookback_from_rows_equals_full_maps(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    sequence = _sequence(tokenizer)

    from_maps = lookback_ratios(extract_sequence_attention(model, sequence))
    from_rows = compute_lookback_ratios(model, sequence)

    assert from_rows.shape == (sequence.response_length, 2, 4)
    np.testing.assert_allclose(from_rows, from_maps, atol=1e-6)
    assert np.all((from_rows >= 0) & (from_rows <= 1))


# Attributions of answer tokens


def test_batched_attribution_equals_one_at_a_time(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer)).double()
    sequence = _sequence(chat_tokenizer)

    batched = attribute_answer(model, chat_tokenizer, sequence, target_batch_size=4)
    for target in (0, 3, sequence.response_length - 1):
        alone = attribute_answer(model, chat_tokenizer, sequence, targets=[target])
        np.testing.assert_allclose(batched.row(target), alone.row(target), atol=1e-9)


def test_attribution_zero_from_target_on(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer)).double()
    sequence = _sequence(chat_tokenizer)

    result = attribute_answer(model, chat_tokenizer, sequence)

    for index, target in enumerate(result.targets):
        position = sequence.prompt_length + int(target)
        assert np.all(result.scores[index, position:] == 0.0)
        assert np.any(result.scores[index, :position] != 0.0)


def test_integrated_gradients_complete_per_target(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer)).double()
    sequence = _sequence(chat_tokenizer)

    result = attribute_answer(
        model, chat_tokenizer, sequence, method="integrated_gradients", targets=[1, 4], n_steps=64
    )

    change = result.target_logprobs - result.baseline_logprobs
    np.testing.assert_allclose(result.scores.sum(axis=1), change, atol=1e-2 * np.abs(change).max())
    np.testing.assert_allclose(
        result.convergence_deltas, result.scores.sum(axis=1) - change, atol=1e-9
    )


def test_target_logprobs_match_scoring(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    prompt = render_prompt(chat_tokenizer, QUESTION, CONTEXT)
    sequence = encode_prompt_response(chat_tokenizer, prompt, ANSWER, context=CONTEXT)

    result = attribute_answer(model, chat_tokenizer, sequence, targets=[0, 2])
    (scored,) = score_responses(model, chat_tokenizer, [prompt], [ANSWER])

    np.testing.assert_allclose(result.target_logprobs, scored.logprobs[[0, 2]], atol=1e-4)


def test_segment_shares_sum_to_one(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    sequence = _sequence(chat_tokenizer)

    shares = attribute_answer(model, chat_tokenizer, sequence).segment_shares()

    assert shares.shape == (sequence.response_length, 3)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    # The first answer token has no earlier answer tokens to draw on.
    assert shares[0, 2] == 0.0


def test_answer_words_cover_context(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    sequence = _sequence(chat_tokenizer)

    words = attribute_answer(model, chat_tokenizer, sequence, targets=[2]).words(2)

    # Words split at spaces and punctuation, so together they hold every other character.
    assert "".join(word.text for word in words.text_words) == CONTEXT.replace(" ", "")
    assert "".join(word.text for word in words.pair_words) == QUESTION.replace(" ", "")
    assert all(word.num_tokens > 0 for word in words.words())


def test_attribution_rejects_bad_targets(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    sequence = _sequence(chat_tokenizer)

    with pytest.raises(ValueError, match="response token indices"):
        attribute_answer(model, chat_tokenizer, sequence, targets=[sequence.response_length])


# Detectors that rerun the model


def test_grounding_detectors_score_every_token(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = render_prompt(tokenizer, QUESTION, CONTEXT)
    (scored,) = score_responses(model, tokenizer, [prompt], [ANSWER])

    for detector_class in (LowLookbackDetector, ContextAttributionDetector):
        result = detector_class.for_model(model, tokenizer).detect(scored, context=CONTEXT)

        assert result.token_scores.shape == (len(scored),)
        assert np.all((result.token_scores >= 0) & (result.token_scores <= 1))
        assert result.token_scores[0] == pytest.approx(
            0.0 if detector_class is LowLookbackDetector else result.token_scores[0]
        )
        assert 0.0 <= result.score <= 1.0


def test_lookback_detector_first_token_zero(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    prompt = render_prompt(chat_tokenizer, QUESTION, CONTEXT)
    (scored,) = score_responses(model, chat_tokenizer, [prompt], [ANSWER])

    result = LowLookbackDetector.for_model(model, chat_tokenizer).detect(scored, context=CONTEXT)

    assert result.token_scores[0] == 0.0
    assert np.all(result.token_scores[1:] > 0.0)


def test_context_attribution_without_context_scores_zero(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    prompt = render_prompt(chat_tokenizer, QUESTION)
    (scored,) = score_responses(model, chat_tokenizer, [prompt], ["No."])

    result = ContextAttributionDetector.for_model(model, chat_tokenizer).detect(scored)

    assert result.score == 0.0
    assert not result.flagged
    assert "no context" in result.reason


def test_model_detector_needs_model(chat_tokenizer):
    model = _tiny_llama(len(chat_tokenizer))
    prompt = render_prompt(chat_tokenizer, QUESTION, CONTEXT)
    (scored,) = score_responses(model, chat_tokenizer, [prompt], [ANSWER])

    with pytest.raises(ValueError, match="for_model"):
        LowLookbackDetector().detect(scored, context=CONTEXT)
