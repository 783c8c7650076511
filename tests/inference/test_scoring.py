"""Tests of teacher-forced scoring, word-level scores and record analysis."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from halluscope.inference import (
    SUMMARY_INSTRUCTION,
    analyze_records,
    generate_answers,
    render_prompt,
    score_response,
    score_responses,
    word_scores,
)
from halluscope.models import load_causal_lm, load_tokenizer

CONTEXT = "The bridge has 12 arches."
QUESTION = "How many arches does the bridge have?"
ANSWER = "The bridge has 14 arches."
LOGPROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def chat_tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def plain_tokenizer(chat_tokenizer):
    tokenizer = copy.deepcopy(chat_tokenizer)
    tokenizer.chat_template = None
    return tokenizer


@pytest.fixture(scope="module")
def tiny_llama(chat_tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(chat_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=0.3,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        attn_implementation="eager",  # the low_lookback detector reads attention weights
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tiny_gpt2(plain_tokenizer):
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(plain_tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=128,
        initializer_range=0.3,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        attn_implementation="eager",
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(params=["llama", "gpt2"])
def model_and_tokenizer(request, tiny_llama, tiny_gpt2, chat_tokenizer, plain_tokenizer):
    if request.param == "llama":
        return tiny_llama, chat_tokenizer
    return tiny_gpt2, plain_tokenizer


def _prompts(tokenizer) -> list[str]:
    return [
        render_prompt(tokenizer, QUESTION, CONTEXT),
        render_prompt(tokenizer, "Why?"),
        render_prompt(tokenizer, "Which river does it cross?", CONTEXT + " It spans the Tay."),
    ]


# --- teacher forcing --------------------------------------------------------------


def test_teacher_forcing_matches_generation(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer)
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)

    scored = score_responses(model, tokenizer, prompts, [a.token_ids for a in answers])

    for answer, forced in zip(answers, scored, strict=True):
        assert forced.token_ids.tolist() == answer.token_ids.tolist()
        assert forced.text == answer.text
        assert forced.prompt_length == answer.prompt_length
        np.testing.assert_allclose(forced.logprobs, answer.logprobs, atol=LOGPROB_TOLERANCE)
        np.testing.assert_allclose(forced.entropies, answer.entropies, atol=LOGPROB_TOLERANCE)
        assert forced.ranks.tolist() == [0] * len(answer)


def test_batched_scoring_matches_single(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer)
    responses = [ANSWER, "No.", "It crosses the river Tay, 🎉 in 東京."]

    batched = score_responses(model, tokenizer, prompts, responses, batch_size=3)
    single = [
        score_response(model, tokenizer, p, r) for p, r in zip(prompts, responses, strict=True)
    ]

    for together, alone in zip(batched, single, strict=True):
        assert together.token_ids.tolist() == alone.token_ids.tolist()
        np.testing.assert_allclose(together.logprobs, alone.logprobs, atol=LOGPROB_TOLERANCE)
        np.testing.assert_allclose(together.entropies, alone.entropies, atol=LOGPROB_TOLERANCE)
        assert together.ranks.tolist() == alone.ranks.tolist()


def test_scored_text_keeps_response(tiny_llama, chat_tokenizer):
    scored = score_response(tiny_llama, chat_tokenizer, _prompts(chat_tokenizer)[0], ANSWER)

    assert scored.text == ANSWER
    assert "".join(scored.tokens) == ANSWER
    assert scored.tokens[1] == " bridge"
    assert tuple(scored.offsets[1]) == (3, 10)
    assert np.all(np.isfinite(scored.logprobs))
    assert np.all(scored.ranks >= 0)


def test_scoring_logprob_matches_manual_forward(tiny_llama, chat_tokenizer):
    prompt = _prompts(chat_tokenizer)[0]
    scored = score_response(tiny_llama, chat_tokenizer, prompt, ANSWER)
    prompt_ids = chat_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + scored.token_ids.tolist()])

    with torch.no_grad():
        logits = tiny_llama(input_ids=ids).logits[0]
    expected = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)
    expected = expected.gather(-1, torch.as_tensor(scored.token_ids).unsqueeze(-1)).squeeze(-1)

    np.testing.assert_allclose(scored.logprobs, expected.numpy(), atol=LOGPROB_TOLERANCE)


def test_empty_response_scores_no_tokens(tiny_llama, chat_tokenizer):
    prompts = _prompts(chat_tokenizer)[:2]

    empty, full = score_responses(tiny_llama, chat_tokenizer, prompts, ["", ANSWER])

    assert len(empty) == 0
    assert empty.text == ""
    assert len(full) > 0


def test_scoring_rejects_length_mismatch(tiny_llama, chat_tokenizer):
    with pytest.raises(ValueError, match="one response per prompt"):
        score_responses(tiny_llama, chat_tokenizer, ["a", "b"], [ANSWER])


def test_scoring_rejects_too_long_row(tiny_gpt2, plain_tokenizer):
    prompt = render_prompt(plain_tokenizer, QUESTION, CONTEXT)

    with pytest.raises(ValueError, match="row 0: .* exceed the model's limit of 128"):
        score_response(tiny_gpt2, plain_tokenizer, prompt, ANSWER * 30)


# --- word scores -----------------------------------------------------------------


def test_word_scores_max_and_mean(tiny_llama, chat_tokenizer):
    scored = score_response(tiny_llama, chat_tokenizer, _prompts(chat_tokenizer)[0], ANSWER)
    values = np.arange(len(scored), dtype=np.float64)

    by_max = word_scores(scored, values, reduce="max")
    by_mean = word_scores(scored, values, reduce="mean")

    assert [word.word for word in by_max] == ANSWER.split()
    number = by_max[3]
    assert number.word == "14"
    assert [scored.tokens[i] for i in number.token_indices] == ["1", "4"]
    assert number.score == max(number.token_indices)
    assert by_mean[3].score == np.mean(number.token_indices)
    # The lone space token before "14" belongs to no word.
    space_token = scored.tokens.index(" ")
    assert all(space_token not in word.token_indices for word in by_max)


def test_word_scores_default_to_surprisal(tiny_llama, chat_tokenizer):
    scored = score_response(tiny_llama, chat_tokenizer, _prompts(chat_tokenizer)[0], ANSWER)

    words = word_scores(scored)

    assert words[1].word == "bridge"
    assert words[1].score == pytest.approx(-float(scored.logprobs[1]), rel=1e-6)


def test_word_scores_emoji_and_cjk(tiny_llama, chat_tokenizer):
    response = "東京タワー は 333 m です 🎉🇫🇷 café 👍🏽!"
    scored = score_response(tiny_llama, chat_tokenizer, _prompts(chat_tokenizer)[0], response)

    words = word_scores(scored, reduce="max")

    assert [word.word for word in words] == response.split()
    for word in words:
        assert response[word.start : word.end] == word.word
        assert len(word.token_indices) > 0
        assert math.isfinite(word.score)
        for index in word.token_indices:
            start, end = scored.offsets[index]
            assert 0 <= start < end <= len(response)
    emoji = words[5]
    assert emoji.word == "🎉🇫🇷"
    assert len(emoji.token_indices) > 2  # byte tokens of three code points


def test_word_scores_rejects_wrong_length(tiny_llama, chat_tokenizer):
    scored = score_response(tiny_llama, chat_tokenizer, _prompts(chat_tokenizer)[0], ANSWER)

    with pytest.raises(ValueError, match="one per token"):
        word_scores(scored, [0.5])


# --- record analysis -------------------------------------------------------------


def _xsum_like_rows() -> list[dict]:
    rows = []
    for summary in ("the bridge has 14 arches .", "a bridge over the tay opened in 1887"):
        rows.append(
            {
                "id": f"row-{len(rows)}",
                "source": CONTEXT + " It spans the Tay and opened in 1887.",
                "summary": summary,
                "words": summary.split(),
                "word_labels": [0] * len(summary.split()),
            }
        )
    return rows


def test_analyze_records_xsum_rows(tiny_llama, chat_tokenizer):
    rows = _xsum_like_rows()

    analyses = analyze_records(tiny_llama, chat_tokenizer, rows, batch_size=2)

    assert len(analyses) == 2
    first = analyses[0]
    assert SUMMARY_INSTRUCTION in first["prompt"]
    assert first["response"] == rows[0]["summary"]
    assert [word["word"] for word in first["words"]] == rows[0]["words"]
    assert set(first["detectors"]) == {
        "low_logprob",
        "high_entropy",
        "low_lookback",
        "unsupported_word",
    }
    assert first["fields"] == {
        "id": "row-0",
        "words": rows[0]["words"],
        "word_labels": rows[0]["word_labels"],
    }
    number = first["words"][3]
    assert number["word"] == "14"
    assert number["scores"]["unsupported_word"] == 1.0
    assert first["words"][1]["scores"]["unsupported_word"] == 0.0
    assert analyses[1]["detectors"]["unsupported_word"]["flagged"] is False
    json.dumps(analyses)  # JSON-ready


def test_analyze_records_token_scores(tiny_llama, chat_tokenizer):
    [analysis] = analyze_records(
        tiny_llama,
        chat_tokenizer,
        [{"context": CONTEXT, "question": QUESTION, "response": ANSWER}],
        detectors=["low_logprob"],
    )

    assert QUESTION in analysis["prompt"]
    for token in analysis["tokens"]:
        assert token["scores"]["low_logprob"] == pytest.approx(1 - math.exp(token["logprob"]))
    assert list(analysis["detectors"]) == ["low_logprob"]


def test_analyze_records_cuts_long_context(tiny_llama, chat_tokenizer):
    rows = _xsum_like_rows()

    analyses = analyze_records(tiny_llama, chat_tokenizer, rows, max_context_tokens=4)

    assert analyses[0]["context_truncated"] is True
    assert "It spans the Tay" not in analyses[0]["prompt"]
    assert "The bridge has" in analyses[0]["prompt"]


def test_analyze_records_missing_key(tiny_llama, chat_tokenizer):
    rows = _xsum_like_rows()
    del rows[1]["summary"]

    with pytest.raises(ValueError, match="records row 1: the key 'summary' is missing"):
        analyze_records(tiny_llama, chat_tokenizer, rows)


def test_analyze_records_without_context_key(tiny_llama, chat_tokenizer):
    with pytest.raises(ValueError, match="needs a context"):
        analyze_records(tiny_llama, chat_tokenizer, [{"text": "a", "response": "b"}])


@pytest.mark.integration
def test_smollm2_analyzes_xsum(shared_data):
    path = shared_data("xsum-token-labels", "berts2s.jsonl")
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(5)]
    model = load_causal_lm("smollm2-135m", device=torch.device("cpu"))
    tokenizer = load_tokenizer("smollm2-135m")

    analyses = analyze_records(model, tokenizer, rows, max_context_tokens=384, batch_size=5)

    assert len(analyses) == 5
    for row, analysis in zip(rows, analyses, strict=True):
        assert len(analysis["words"]) == len(row["words"])
        assert [word["word"] for word in analysis["words"]] == row["words"]
        for token in analysis["tokens"]:
            assert math.isfinite(token["logprob"])
            assert math.isfinite(token["entropy"])
        for word in analysis["words"]:
            for score in word["scores"].values():
                assert score is not None
                assert 0.0 <= score <= 1.0
        assert analysis["fields"]["word_labels"] == row["word_labels"]
