"""Tests of the token-level generation detectors and their registry entries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from halluscope.detect import (
    ConfidenceDetector,
    DetectionResult,
    GenerationDetector,
    HighEntropyDetector,
    LowLogprobDetector,
    UnsupportedWordDetector,
    available_detectors,
    create_generation_detectors,
    find_unsupported_words,
    get_detector,
)
from halluscope.models import load_tokenizer
from tests.detect.responses import scored_response

VOCAB_SIZE = 49152
CONTEXT = "The bridge has 12 arches."


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m")


def _scores_of(response, result, piece) -> list[float]:
    return [
        float(result.token_scores[i]) for i, token in enumerate(response.tokens) if token == piece
    ]


# --- unsupported_word ------------------------------------------------------------


def test_unsupported_word_flags_invented_number(tokenizer):
    response = scored_response(tokenizer, "The bridge has 14 arches.")

    result = UnsupportedWordDetector().detect(response, context=CONTEXT)

    assert result.flagged
    assert result.score == 1.0
    assert result.reason == "not in the context: '14'"
    assert _scores_of(response, result, "1") == [1.0]
    assert _scores_of(response, result, "4") == [1.0]
    assert _scores_of(response, result, " bridge") == [0.0]
    assert _scores_of(response, result, " ") == [0.0]
    assert result.token_scores.sum() == 2.0


def test_unsupported_word_accepts_copied_number(tokenizer):
    response = scored_response(tokenizer, "The bridge has 12 arches.")

    result = UnsupportedWordDetector().detect(response, context=CONTEXT)

    assert not result.flagged
    assert result.score == 0.0
    assert result.reason == "every number, capitalised name and date occurs in the context"
    assert result.token_scores.tolist() == [0.0] * len(response)


def test_unsupported_word_nothing_to_check(tokenizer):
    response = scored_response(tokenizer, "it has many arches.")

    result = UnsupportedWordDetector().detect(response, context=CONTEXT)

    assert not result.flagged
    assert result.reason == "no numbers, capitalised names or dates to check"


def test_unsupported_word_without_context(tokenizer):
    response = scored_response(tokenizer, "The bridge has 14 arches.")

    result = UnsupportedWordDetector().detect(response)

    assert not result.flagged
    assert "no context given" in result.reason
    assert result.token_scores.shape == (len(response),)


def test_find_unsupported_names_and_months():
    context = "Ada Lovelace was born in December 1815 in London."

    found = find_unsupported_words("Ada Lovelace was born in May 1815 in Paris.", context)

    assert [(item.text, item.category) for item in found] == [("May", "date"), ("Paris", "name")]


def test_find_unsupported_ignores_case():
    found = find_unsupported_words("It is in PARIS, France.", "paris is in france")

    assert found == []


def test_find_unsupported_ignores_thousands_separator():
    found = find_unsupported_words("About 1200 people came.", "about 1,200 people came")

    assert found == []


def test_find_unsupported_strips_possessive():
    found = find_unsupported_words("France's capital", "the capital of France")

    assert found == []


def test_find_unsupported_needs_whole_number():
    found = find_unsupported_words("It has 14 arches.", "It has 140 arches.")

    assert [item.text for item in found] == ["14"]


def test_find_unsupported_skips_sentence_starters():
    found = find_unsupported_words("However, The bridge is old.", "a bridge")

    assert found == []


def test_find_unsupported_lowercase_month():
    found = find_unsupported_words("the race was held in july and may be moved", "in june")

    assert [item.text for item in found] == ["july"]


def test_find_unsupported_span_points_at_item():
    response = "Opened (in 1887)."

    [item] = find_unsupported_words(response, "opened in 1890")

    assert response[item.start : item.end] == "1887"


# --- low_logprob and high_entropy --------------------------------------------------


def test_low_logprob_token_scores(tokenizer):
    response = scored_response(tokenizer, "Paris is old", logprobs=np.log([0.5, 0.05, 0.8]))

    result = LowLogprobDetector(threshold=0.9).detect(response)

    np.testing.assert_allclose(result.token_scores, [0.5, 0.95, 0.2], atol=1e-6)
    assert result.score == pytest.approx(0.95, abs=1e-6)
    assert result.flagged
    assert result.reason == "least likely token ' is' has p=0.050; 1 of 3 tokens have p <= 0.10"


def test_low_logprob_default_threshold(tokenizer):
    response = scored_response(tokenizer, "Paris is old", logprobs=np.log([0.7, 0.65, 0.8]))

    result = LowLogprobDetector().detect(response)

    assert result.score == pytest.approx(0.35, abs=1e-6)
    assert not result.flagged
    assert result.reason.endswith("0 of 3 tokens have p <= 0.60")


def test_low_logprob_mean_not_flagged(tokenizer):
    response = scored_response(tokenizer, "Paris is old", logprobs=np.log([0.5, 0.05, 0.8]))

    result = LowLogprobDetector(threshold=0.9, reduce="mean").detect(response)

    assert result.score == pytest.approx(0.55, abs=1e-6)
    assert not result.flagged


def test_low_logprob_confident_not_flagged(tokenizer):
    response = scored_response(tokenizer, "Paris", logprobs=np.log([0.99]))

    result = LowLogprobDetector().detect(response)

    assert result.score == pytest.approx(0.01, abs=1e-6)
    assert not result.flagged


def test_high_entropy_normalised_by_vocab(tokenizer):
    ceiling = math.log(VOCAB_SIZE)
    response = scored_response(
        tokenizer, "Paris is old", entropies=[0.1 * ceiling, 0.6 * ceiling, 0.0]
    )

    result = HighEntropyDetector().detect(response)

    np.testing.assert_allclose(result.token_scores, [0.1, 0.6, 0.0], atol=1e-5)
    assert result.score == pytest.approx(0.6, abs=1e-5)
    assert result.flagged
    assert "at ' is'" in result.reason


def test_high_entropy_low_not_flagged(tokenizer):
    response = scored_response(tokenizer, "Paris", entropies=[0.5])

    result = HighEntropyDetector().detect(response)

    assert result.score == pytest.approx(0.5 / math.log(VOCAB_SIZE), abs=1e-6)
    assert result.score < HighEntropyDetector().threshold
    assert not result.flagged


@pytest.mark.parametrize("detector", [LowLogprobDetector(), HighEntropyDetector()])
def test_empty_response_not_flagged(tokenizer, detector):
    result = detector.detect(scored_response(tokenizer, ""))

    assert not result.flagged
    assert result.reason == "empty response"
    assert result.token_scores.shape == (0,)


def test_threshold_rejected_outside_unit_range():
    with pytest.raises(ValueError, match="threshold must lie in"):
        LowLogprobDetector(threshold=1.5)


def test_unknown_reduce_rejected():
    with pytest.raises(ValueError, match="reduce must be one of"):
        HighEntropyDetector(reduce="median")


def test_detect_batch_pairs_contexts(tokenizer):
    responses = [scored_response(tokenizer, "It has 14."), scored_response(tokenizer, "It has 12.")]

    results = UnsupportedWordDetector().detect_batch(responses, [CONTEXT, CONTEXT])

    assert [result.flagged for result in results] == [True, False]


# --- registry and creation ------------------------------------------------------------


def test_registry_lists_generation_detectors():
    names = [cls.name for cls in available_detectors("generation")]

    assert names == [
        "high_entropy",
        "lookback_lens",
        "low_context_attribution",
        "low_logprob",
        "low_lookback",
        "sampling_consistency",
        "stacked_ensemble",
        "token_classifier",
        "unsupported_word",
    ]


def test_default_detectors_skip_expensive():
    detectors = create_generation_detectors(None, model=None, tokenizer=None)

    names = [detector.name for detector in detectors]
    assert names == ["high_entropy", "low_logprob", "low_lookback", "unsupported_word"]


def test_get_detector_passes_threshold():
    detector = get_detector("low_logprob", threshold=0.5)

    assert isinstance(detector, LowLogprobDetector)
    assert detector.threshold == 0.5


def test_create_detectors_from_names():
    detectors = create_generation_detectors(
        ["unsupported_word", "low_logprob"], model=None, tokenizer=None
    )

    assert [type(detector) for detector in detectors] == [
        UnsupportedWordDetector,
        LowLogprobDetector,
    ]


def test_create_detectors_rejects_unknown_name():
    with pytest.raises(KeyError, match="No generation detector named 'confidence'"):
        create_generation_detectors(["confidence"], model=None, tokenizer=None)


def test_create_detectors_rejects_classifier_instance():
    with pytest.raises(TypeError, match="got ConfidenceDetector"):
        create_generation_detectors([ConfidenceDetector()], model=None, tokenizer=None)


def test_create_detectors_rejects_duplicates():
    with pytest.raises(ValueError, match="more than once"):
        create_generation_detectors(
            ["low_logprob", LowLogprobDetector(threshold=0.5)], model=None, tokenizer=None
        )


@dataclass(frozen=True)
class _FirstTokenDetector(GenerationDetector):
    """A detector that needs the model, written as one class (kept out of the registry)."""

    name: ClassVar[str] = "first_token"
    description: ClassVar[str] = "Flags the first token."

    model_name: str = ""

    @classmethod
    def for_model(cls, model, tokenizer, **options):
        return cls(model_name=str(model), **options)

    def detect(self, response, *, context=None):
        scores = np.zeros(len(response), dtype=np.float32)
        scores[:1] = 1.0
        return DetectionResult(self.name, 1.0, True, self.model_name, scores)


def test_model_detector_receives_model(tokenizer):
    detector = _FirstTokenDetector.for_model("tiny-model", tokenizer)
    [created] = create_generation_detectors([detector], model=None, tokenizer=None)

    result = created.detect(scored_response(tokenizer, "Paris is old"))

    assert result.reason == "tiny-model"
    assert result.token_scores.tolist() == [1.0, 0.0, 0.0]
