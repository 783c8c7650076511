"""Tests of the log-probs of a response after the prompt without its context."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from transformers import AutoModelForCausalLM

from halluscope.inference.context_free import context_free_logprobs, context_free_prompt
from halluscope.inference.prompting import render_plain_prompt, render_prompt
from halluscope.inference.scoring import score_response
from halluscope.models import load_tokenizer

CONTEXT = "The Forth Bridge opened in 1890 near Edinburgh."
QUESTION = "When did the bridge open?"


@pytest.fixture(scope="module")
def tiny_llama_and_tokenizer(tiny_llama_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval(), load_tokenizer(
        str(tiny_llama_dir)
    )


def test_plain_prompt_loses_its_context_line():
    prompt = render_plain_prompt(QUESTION, CONTEXT)

    assert context_free_prompt(prompt, CONTEXT) == render_plain_prompt(QUESTION)
    assert context_free_prompt(prompt, None) == prompt


def test_chat_prompt_loses_context_and_label(tiny_llama_and_tokenizer):
    _, tokenizer = tiny_llama_and_tokenizer
    prompt = render_prompt(tokenizer, QUESTION, CONTEXT)

    free = context_free_prompt(prompt, CONTEXT)

    assert CONTEXT not in free
    assert "Context:" not in free
    assert f"Question: {QUESTION}" in free
    assert free.endswith(prompt[prompt.index(QUESTION) :])


def test_missing_context_keeps_prompt(caplog):
    prompt = render_plain_prompt(QUESTION, CONTEXT)

    with caplog.at_level(logging.WARNING):
        assert context_free_prompt(prompt, "another text") == prompt
    assert "not found in the prompt" in caplog.text


def test_logprobs_match_teacher_forcing_without_context(tiny_llama_and_tokenizer):
    model, tokenizer = tiny_llama_and_tokenizer
    prompt = render_prompt(tokenizer, QUESTION, CONTEXT)
    response = score_response(model, tokenizer, prompt, "It opened in 1890.")

    free = context_free_logprobs(model, tokenizer, response, CONTEXT)
    expected = score_response(
        model, tokenizer, context_free_prompt(prompt, CONTEXT), response.token_ids.tolist()
    )

    assert free.shape == response.logprobs.shape
    np.testing.assert_allclose(free, expected.logprobs, atol=1e-4)
    # The random model still reads the context, so the two passes differ.
    assert not np.allclose(free, response.logprobs, atol=1e-4)
    # Without a context the response's own log-probs come back.
    np.testing.assert_array_equal(
        context_free_logprobs(model, tokenizer, response, None), response.logprobs
    )
