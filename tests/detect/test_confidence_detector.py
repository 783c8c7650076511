"""Tests of the detector interface, its registry and the confidence detector."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from halluscope.detect import (
    ClassificationDetector,
    ConfidenceDetector,
    DetectionResult,
    available_detectors,
    flag_predictions,
    get_detector,
    register_detector,
)
from halluscope.inference import ClassificationPredictions

LABELS = ("supported", "hallucinated")


def _predictions(probabilities, labels=LABELS) -> ClassificationPredictions:
    probabilities = np.asarray(probabilities, dtype=np.float32)
    return ClassificationPredictions(
        probabilities=probabilities,
        logits=np.log(probabilities),
        label_names=labels,
        truncated=np.zeros(len(probabilities), dtype=bool),
    )


def test_confidently_wrong_is_flagged():
    predictions = _predictions([[0.05, 0.95]])

    [result] = ConfidenceDetector().detect_batch(predictions, gold=["supported"])

    assert result.flagged
    assert result.score == pytest.approx(0.95, abs=1e-6)
    assert result.reason == "wrong with confidence 0.95 (gold: supported)"
    assert result.detector == "confidence"
    assert result.token_scores is None


def test_wrong_below_threshold_not_flagged():
    predictions = _predictions([[0.3, 0.7]])

    [result] = ConfidenceDetector().detect_batch(predictions, gold=[0])

    assert not result.flagged
    assert result.score == pytest.approx(0.7, abs=1e-6)
    assert "gold: supported" in result.reason
    assert "below the 0.80 threshold" in result.reason


def test_correct_prediction_not_flagged():
    predictions = _predictions([[0.9, 0.1]])

    [result] = ConfidenceDetector().detect_batch(predictions, gold=["supported"])

    assert not result.flagged
    assert result.score == pytest.approx(0.1, abs=1e-6)
    assert result.reason == "correct with confidence 0.90"


def test_three_labels_score_one_minus_gold():
    labels = ("supported", "hallucinated", "unverifiable")
    predictions = _predictions([[0.1, 0.45, 0.45]], labels=labels)

    [result] = ConfidenceDetector().detect_batch(predictions, gold=["supported"])

    assert result.score == pytest.approx(0.9, abs=1e-6)
    assert not result.flagged


def test_no_gold_small_margin_flagged():
    predictions = _predictions([[0.53, 0.47]])

    [result] = ConfidenceDetector().detect_batch(predictions)

    assert result.flagged
    assert result.score == pytest.approx(0.94, abs=1e-6)
    assert result.reason == "low confidence 0.53 (margin 0.06)"


def test_no_gold_margin_rule_alone():
    predictions = _predictions([[0.55, 0.45]])
    detector = ConfidenceDetector(min_confidence=0.5)

    [result] = detector.detect_batch(predictions)

    assert result.flagged
    assert result.reason.startswith("small margin 0.10")


def test_no_gold_confident_not_flagged():
    predictions = _predictions([[0.97, 0.03]])

    [result] = ConfidenceDetector().detect_batch(predictions)

    assert not result.flagged
    assert result.score == pytest.approx(0.06, abs=1e-6)


def test_detect_single_row():
    predictions = _predictions([[0.9, 0.1], [0.02, 0.98]])

    result = ConfidenceDetector().detect(predictions, 1, gold="supported")

    assert result.flagged
    assert result.reason == "wrong with confidence 0.98 (gold: supported)"


def test_detect_row_out_of_range():
    predictions = _predictions([[0.9, 0.1]])

    with pytest.raises(IndexError, match="Row 3"):
        ConfidenceDetector().detect(predictions, 3)


def test_detector_rejects_bad_threshold():
    with pytest.raises(ValueError, match="wrong_confidence must lie in"):
        ConfidenceDetector(wrong_confidence=1.5)


def test_flag_predictions_columns():
    predictions = _predictions([[0.05, 0.95], [0.9, 0.1]])

    frame = flag_predictions(predictions, gold=[0, 0], texts=["c1", "c2"], text_pairs=["k1", "k2"])

    assert frame["flagged"].tolist() == [True, False]
    np.testing.assert_allclose(frame["flag_score"], [0.95, 0.1], atol=1e-6)
    assert frame["flag_reason"].iloc[0] == "wrong with confidence 0.95 (gold: supported)"
    assert frame["text_pair"].tolist() == ["k1", "k2"]
    assert frame["correct"].tolist() == [False, True]


def test_flag_predictions_without_gold():
    predictions = _predictions([[0.5, 0.5], [0.9, 0.1]])

    frame = flag_predictions(predictions)

    assert frame["flagged"].tolist() == [True, False]
    assert "gold" not in frame.columns


def test_registry_lists_confidence():
    classification = [cls.name for cls in available_detectors("classification")]
    generation = [cls.name for cls in available_detectors("generation")]

    assert "confidence" in classification
    assert "confidence" not in generation
    assert ConfidenceDetector in available_detectors()


def test_get_detector_passes_options():
    detector = get_detector("confidence", wrong_confidence=0.9)

    assert isinstance(detector, ConfidenceDetector)
    assert detector.wrong_confidence == 0.9


def test_get_detector_unknown_name():
    with pytest.raises(KeyError, match="Registered detectors: .*confidence"):
        get_detector("no-such-detector")


def test_register_duplicate_name_rejected():
    class Impostor(ClassificationDetector):
        name: ClassVar[str] = "confidence"
        description: ClassVar[str] = "Duplicate."

        def detect_batch(self, predictions, gold=None):
            return []

    with pytest.raises(ValueError, match="already registered"):
        register_detector(Impostor)


def test_register_without_name_rejected():
    class Nameless(ClassificationDetector):
        description: ClassVar[str] = "No name."

        def detect_batch(self, predictions, gold=None):
            return []

    with pytest.raises(TypeError, match="'name'"):
        register_detector(Nameless)


@pytest.mark.parametrize("score", [1.2, -0.1, float("nan")])
def test_result_rejects_score_out_of_range(score):
    with pytest.raises(ValueError, match="score must"):
        DetectionResult(detector="confidence", score=score, flagged=False, reason="x")


def test_result_rejects_token_scores_out_of_range():
    with pytest.raises(ValueError, match="token_scores must be finite"):
        DetectionResult(
            detector="confidence",
            score=0.5,
            flagged=False,
            reason="x",
            token_scores=np.array([0.2, 1.5]),
        )


def test_result_stores_numpy_score_as_float():
    result = DetectionResult(
        detector="confidence", score=np.float32(0.25), flagged=np.bool_(True), reason="x"
    )

    assert type(result.score) is float
    assert result.flagged is True
