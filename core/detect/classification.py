"""Detectors that flag a classifier's own hallucinations: confidently wrong predictions.

With gold labels a hallucination is a wrong prediction made with high
confidence. Without gold labels a detector can only point at predictions the
model is unsure about, which are the likeliest to be wrong.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from halluscope.detect.base import DetectionResult, Detector, DetectorKind, register_detector
from halluscope.inference.classify import ClassificationPredictions


class ClassificationDetector(Detector):
    """A detector over the predictions of a sequence classifier."""

    kind: ClassVar[DetectorKind] = "classification"

    @abstractmethod
    def detect_batch(
        self,
        predictions: ClassificationPredictions,
        gold: Sequence[int | str] | None = None,
    ) -> list[DetectionResult]:
        """Return one result per prediction, in order.

        Args:
            predictions: the classifier outputs for n rows.
            gold: n gold labels (ids or names), or None when they are unknown.
        """

    def detect(
        self,
        predictions: ClassificationPredictions,
        index: int,
        gold: int | str | None = None,
    ) -> DetectionResult:
        """Return the result for the single row ``index`` (its gold label is optional)."""
        if not 0 <= index < len(predictions):
            raise IndexError(f"Row {index} is out of range for {len(predictions)} predictions.")
        row = predictions.select([index])
        return self.detect_batch(row, None if gold is None else [gold])[0]


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}.")


@register_detector
@dataclass(frozen=True)
class ConfidenceDetector(ClassificationDetector):
    """Flag confidently wrong predictions, or unsure ones when gold labels are missing.

    Decision rule:

    * with gold labels: flagged when the prediction is wrong and its
      confidence (probability of the predicted label) is at least
      ``wrong_confidence``;
    * without gold labels: flagged when the confidence is below
      ``min_confidence`` or the margin (top-1 minus top-2 probability) is
      below ``min_margin``.

    Score, in [0, 1]:

    * with gold labels: ``1 - p(gold label)``, the probability mass the model
      puts on wrong labels. With two labels this is the confidence of a wrong
      prediction and ``1 - confidence`` of a right one;
    * without gold labels: ``1 - margin``, so a near tie scores close to 1.

    Attributes:
        wrong_confidence: minimum confidence of a wrong prediction to flag it (default 0.8).
        min_confidence: confidence below which an unlabelled prediction is flagged
            (default 0.6).
        min_margin: margin below which an unlabelled prediction is flagged (default 0.2).
    """

    name: ClassVar[str] = "confidence"
    description: ClassVar[str] = (
        "Flags wrong predictions made with high confidence; without gold labels, "
        "flags predictions with low confidence or a small margin."
    )

    wrong_confidence: float = 0.8
    min_confidence: float = 0.6
    min_margin: float = 0.2

    def __post_init__(self) -> None:
        _check_probability("wrong_confidence", self.wrong_confidence)
        _check_probability("min_confidence", self.min_confidence)
        _check_probability("min_margin", self.min_margin)

    def detect_batch(
        self,
        predictions: ClassificationPredictions,
        gold: Sequence[int | str] | None = None,
    ) -> list[DetectionResult]:
        """Return one result per prediction; see the class docstring for the rule and score."""
        if gold is None:
            return [
                self._judge_unlabelled(float(confidence), float(margin))
                for confidence, margin in zip(
                    predictions.confidence, predictions.margin, strict=True
                )
            ]

        gold_ids = predictions.gold_ids(gold)
        results = []
        for row, gold_id in enumerate(gold_ids):
            results.append(
                self._judge_labelled(
                    predicted=int(predictions.predicted[row]),
                    gold=int(gold_id),
                    confidence=float(predictions.confidence[row]),
                    gold_probability=float(predictions.probabilities[row, gold_id]),
                    label_names=predictions.label_names,
                )
            )
        return results

    def _judge_labelled(
        self,
        *,
        predicted: int,
        gold: int,
        confidence: float,
        gold_probability: float,
        label_names: tuple[str, ...],
    ) -> DetectionResult:
        score = float(np.clip(1.0 - gold_probability, 0.0, 1.0))
        if predicted == gold:
            return DetectionResult(
                detector=self.name,
                score=score,
                flagged=False,
                reason=f"correct with confidence {confidence:.2f}",
            )

        gold_name = label_names[gold]
        flagged = confidence >= self.wrong_confidence
        reason = f"wrong with confidence {confidence:.2f} (gold: {gold_name})"
        if not flagged:
            reason += f", below the {self.wrong_confidence:.2f} threshold"
        return DetectionResult(detector=self.name, score=score, flagged=flagged, reason=reason)

    def _judge_unlabelled(self, confidence: float, margin: float) -> DetectionResult:
        score = float(np.clip(1.0 - margin, 0.0, 1.0))
        if confidence < self.min_confidence:
            reason = f"low confidence {confidence:.2f} (margin {margin:.2f})"
            flagged = True
        elif margin < self.min_margin:
            reason = f"small margin {margin:.2f} (confidence {confidence:.2f})"
            flagged = True
        else:
            reason = f"confident {confidence:.2f} (margin {margin:.2f})"
            flagged = False
        return DetectionResult(detector=self.name, score=score, flagged=flagged, reason=reason)


def flag_predictions(
    predictions: ClassificationPredictions,
    gold: Sequence[int | str] | None = None,
    detector: ClassificationDetector | None = None,
    *,
    texts: Sequence[str] | None = None,
    text_pairs: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Build the prediction table with the detector's verdict on every row.

    The table is ``predictions.to_frame(texts, text_pairs, gold)`` plus the
    columns ``flagged`` (bool), ``flag_score`` (float in [0, 1]) and
    ``flag_reason`` (str). For one row's full ``DetectionResult``, call
    ``detector.detect(predictions, index, gold_label)``.

    Args:
        predictions: the classifier outputs for n rows.
        gold: n gold labels (ids or names), or None.
        detector: the detector to apply (default: ``ConfidenceDetector()``).
        texts: the n inputs (contexts for pairs), to include as a column.
        text_pairs: the n claims of pairs, to include as a column.
    """
    if detector is None:
        detector = ConfidenceDetector()
    if not isinstance(detector, ClassificationDetector):
        raise TypeError(
            f"flag_predictions needs a classification detector, got {type(detector).__name__} "
            f"(kind {getattr(detector, 'kind', None)!r})."
        )

    frame = predictions.to_frame(texts, text_pairs, gold)
    results = detector.detect_batch(predictions, gold)
    frame["flagged"] = [result.flagged for result in results]
    frame["flag_score"] = [result.score for result in results]
    frame["flag_reason"] = [result.reason for result in results]
    return frame
