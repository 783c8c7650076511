"""The real SmolLM2-135M on demo questions: an invented number is flagged, and a number
copied from the context is attributed to that context word."""

from __future__ import annotations

import json

import numpy as np
import pytest

from halluscope.demo import demo_path
from halluscope.detect import create_generation_detectors
from halluscope.explain import attribute_answer, encode_prompt_response
from halluscope.inference import render_prompt, score_responses
from halluscope.models import load_causal_lm, load_tokenizer

pytestmark = pytest.mark.integration

INVENTED_NUMBER = "1693"
TOP_K = 3
NUMBER_QUESTIONS = 8


@pytest.fixture(scope="module")
def smollm2():
    return load_causal_lm("smollm2-135m", attention="eager"), load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def number_rows():
    """The first demo questions whose reference answer is a number from the context."""
    lines = demo_path("qa.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    chosen = [row for row in rows if row.get("answer_type") == "number"][:NUMBER_QUESTIONS]
    assert all(INVENTED_NUMBER not in row["context"] for row in chosen)
    return chosen


def _ranks(scores: np.ndarray, indices: list[int]) -> list[int]:
    """Return the rank (0 for the highest score) of each token in ``indices``."""
    order = list(np.argsort(-scores, kind="stable"))
    return [order.index(index) for index in indices]


def test_invented_number_scored_highest(smollm2, number_rows):
    model, tokenizer = smollm2
    detectors = create_generation_detectors(
        ["low_logprob", "unsupported_word"], model=model, tokenizer=tokenizer
    )
    response = f"The answer is {INVENTED_NUMBER}."
    start = response.index(INVENTED_NUMBER)
    prompts = [render_prompt(tokenizer, row["question"], row["context"]) for row in number_rows]

    scored = score_responses(model, tokenizer, prompts, [response] * len(prompts))

    for row, answer in zip(number_rows, scored, strict=True):
        number_tokens = [
            index
            for index, (token_start, token_end) in enumerate(answer.offsets)
            if token_start < start + len(INVENTED_NUMBER) and token_end > start
        ]
        assert "".join(answer.tokens[i] for i in number_tokens).strip() == INVENTED_NUMBER
        for detector in detectors:
            result = detector.detect(answer, context=row["context"])
            best = min(_ranks(result.token_scores, number_tokens))
            assert best < TOP_K, (detector.name, row["question"], best)
        unsupported = detectors[1].detect(answer, context=row["context"])
        assert unsupported.flagged
        assert INVENTED_NUMBER in unsupported.reason


def test_copied_number_attributed_to_context(smollm2, number_rows):
    model, tokenizer = smollm2
    in_top, positive = 0, 0

    for row in number_rows:
        prompt = render_prompt(tokenizer, row["question"], row["context"])
        response = f"The answer is {row['answer']}."
        sequence = encode_prompt_response(
            tokenizer, prompt, response, context=row["context"], question=row["question"]
        )
        start = response.index(row["answer"])
        answer_offsets = sequence.offsets[sequence.prompt_length :]
        target = next(
            index for index, (begin, end) in enumerate(answer_offsets) if begin <= start < end
        )

        words = attribute_answer(model, tokenizer, sequence, targets=[target]).words(target)

        ranked = sorted(words.text_words, key=lambda word: word.score, reverse=True)
        in_top += row["answer"] in [word.text for word in ranked[:TOP_K]]
        scores = [word.score for word in words.text_words if word.text == row["answer"]]
        positive += max(scores) > 0

    # Measured with SmolLM2-135M-Instruct, input x gradient: 6 of 8 in the top 3
    # context words and 7 of 8 positive; the bounds leave room for float rounding.
    assert in_top >= 5
    assert positive >= 6
