"""Quality metrics of hallucination detectors: ranking, thresholded, calibration and pairwise.

Every function takes binary gold labels (1 = hallucinated, 0 = faithful) and
suspicion scores where higher means more likely hallucinated, the convention
of ``DetectionResult``. Ranking metrics come from scikit-learn. A metric that
is undefined on the input (one class only, no pairs) raises ``ValueError``
rather than returning NaN, so a bad evaluation fails where it starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

ArrayLike = np.ndarray | Sequence[float] | Sequence[int] | Sequence[bool]


@dataclass(frozen=True)
class ThresholdMetrics:
    """Precision, recall and F1 of the rule "flag when score >= threshold".

    Attributes:
        threshold: the decision threshold.
        precision: flagged items that are hallucinated, over flagged items (0 when none is flagged).
        recall: hallucinated items that are flagged, over hallucinated items.
        f1: harmonic mean of precision and recall (0 when both are 0).
        true_positives: hallucinated and flagged.
        false_positives: faithful but flagged.
        false_negatives: hallucinated but not flagged.
        true_negatives: faithful and not flagged.
    """

    threshold: float
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Equal-width bins of predicted probability against the observed rate of hallucinations.

    Attributes:
        bin_edges: float array [num_bins + 1], from 0 to 1.
        mean_predicted: float array [num_bins], mean score in each bin (NaN for an empty bin).
        observed_rate: float array [num_bins], share of positives in each bin (NaN when empty).
        counts: int array [num_bins], items in each bin.
        expected_calibration_error: sum over bins of ``count / total *
            |observed_rate - mean_predicted|``, empty bins left out.
    """

    bin_edges: np.ndarray
    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    counts: np.ndarray
    expected_calibration_error: float


def check_labels_and_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return labels as an int64 array of 0/1 and scores as finite float64, of equal length.

    Raises:
        ValueError: the message names the first invalid entry.
    """
    label_array = np.asarray(labels)
    score_array = np.asarray(scores, dtype=np.float64)
    if label_array.ndim != 1 or score_array.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-dimensional, got shapes {label_array.shape} "
            f"and {score_array.shape}."
        )
    if label_array.shape != score_array.shape:
        raise ValueError(
            f"labels has {label_array.shape[0]} entries but scores has {score_array.shape[0]}; "
            "pass one score per label."
        )
    if label_array.size == 0:
        raise ValueError("labels is empty; pass at least one labelled item.")
    if label_array.dtype == bool:
        label_array = label_array.astype(np.int64)
    invalid = ~np.isin(label_array, (0, 1))
    if np.any(invalid):
        position = int(np.flatnonzero(invalid)[0])
        raise ValueError(
            f"labels must be 0 (faithful) or 1 (hallucinated); entry {position} is "
            f"{label_array[position].item()!r}."
        )
    if not np.all(np.isfinite(score_array)):
        position = int(np.flatnonzero(~np.isfinite(score_array))[0])
        raise ValueError(
            f"scores must be finite; entry {position} is {score_array[position].item()}. "
            "Drop items without a score before computing metrics."
        )
    return label_array.astype(np.int64), score_array


def require_both_classes(labels: np.ndarray, metric: str) -> None:
    """Raise ``ValueError`` naming ``metric`` unless ``labels`` contains both 0 and 1."""
    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        only = "hallucinated (1)" if positives else "faithful (0)"
        raise ValueError(
            f"{metric} needs both faithful (0) and hallucinated (1) items, but all "
            f"{labels.size} labels are {only}."
        )


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Return the area under the ROC curve; tied scores count as half a correct ranking.

    Raises:
        ValueError: mismatched or invalid input, or only one class in ``labels``.
    """
    label_array, score_array = check_labels_and_scores(labels, scores)
    require_both_classes(label_array, "AUROC")
    return float(roc_auc_score(label_array, score_array))


def auprc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Return the area under the precision-recall curve as average precision.

    Average precision is ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score
    thresholds in decreasing order (scikit-learn's definition, no interpolation).

    Raises:
        ValueError: mismatched or invalid input, or only one class in ``labels``.
    """
    label_array, score_array = check_labels_and_scores(labels, scores)
    require_both_classes(label_array, "AUPRC")
    return float(average_precision_score(label_array, score_array))


def metrics_at_threshold(
    labels: ArrayLike, scores: ArrayLike, threshold: float
) -> ThresholdMetrics:
    """Return precision, recall, F1 and confusion counts when ``score >= threshold`` is flagged.

    Raises:
        ValueError: mismatched or invalid input, or no hallucinated item in ``labels``
            (recall would be undefined).
    """
    label_array, score_array = check_labels_and_scores(labels, scores)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}.")
    if label_array.sum() == 0:
        raise ValueError(
            f"Precision, recall and F1 need at least one hallucinated (1) item, but all "
            f"{label_array.size} labels are faithful (0)."
        )

    flagged = score_array >= threshold
    true_positives = int(np.sum(flagged & (label_array == 1)))
    false_positives = int(np.sum(flagged & (label_array == 0)))
    false_negatives = int(np.sum(~flagged & (label_array == 1)))
    true_negatives = int(np.sum(~flagged & (label_array == 0)))

    precision = true_positives / (true_positives + false_positives) if flagged.any() else 0.0
    recall = true_positives / (true_positives + false_negatives)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return ThresholdMetrics(
        threshold=float(threshold),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        true_positives=true_positives,
        false_positives=false_positives,
        false_negatives=false_negatives,
        true_negatives=true_negatives,
    )


def best_f1(labels: ArrayLike, scores: ArrayLike) -> ThresholdMetrics:
    """Return the metrics at the threshold, among the observed scores, with the highest F1.

    Of thresholds with equal F1 the highest one is returned, so fewer items are flagged.

    Raises:
        ValueError: mismatched or invalid input, or only one class in ``labels``.
    """
    label_array, score_array = check_labels_and_scores(labels, scores)
    require_both_classes(label_array, "Best F1")

    precision, recall, thresholds = precision_recall_curve(label_array, score_array)
    # The last precision/recall pair (recall 0) has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    best = np.flatnonzero(f1 == f1.max())
    threshold = float(thresholds[best].max())
    return metrics_at_threshold(label_array, score_array, threshold)


def reliability_diagram(
    labels: ArrayLike, probabilities: ArrayLike, *, num_bins: int = 10
) -> ReliabilityDiagram:
    """Bin probabilistic scores into ``num_bins`` equal-width bins and compare with the labels.

    Bin ``i`` contains scores in ``[i / num_bins, (i + 1) / num_bins)``, and the
    last bin also contains 1.0. The expected calibration error weights each bin's gap
    between mean score and observed rate by its share of the items.

    Raises:
        ValueError: mismatched or invalid input, a score outside [0, 1], or
            ``num_bins < 1``.
    """
    label_array, score_array = check_labels_and_scores(labels, probabilities)
    if num_bins < 1:
        raise ValueError(f"num_bins must be at least 1, got {num_bins}.")
    if np.any(score_array < 0) or np.any(score_array > 1):
        position = int(np.flatnonzero((score_array < 0) | (score_array > 1))[0])
        raise ValueError(
            f"Calibration needs probabilities in [0, 1]; entry {position} is "
            f"{score_array[position].item()}."
        )

    edges = np.linspace(0.0, 1.0, num_bins + 1)
    bins = np.clip(np.floor(score_array * num_bins).astype(np.int64), 0, num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    score_sums = np.bincount(bins, weights=score_array, minlength=num_bins)
    positive_sums = np.bincount(bins, weights=label_array, minlength=num_bins)

    filled = counts > 0
    mean_predicted = np.full(num_bins, np.nan)
    observed_rate = np.full(num_bins, np.nan)
    mean_predicted[filled] = score_sums[filled] / counts[filled]
    observed_rate[filled] = positive_sums[filled] / counts[filled]
    gaps = np.abs(observed_rate[filled] - mean_predicted[filled])
    ece = float(np.sum(counts[filled] / label_array.size * gaps))
    return ReliabilityDiagram(
        bin_edges=edges,
        mean_predicted=mean_predicted,
        observed_rate=observed_rate,
        counts=counts.astype(np.int64),
        expected_calibration_error=ece,
    )


def expected_calibration_error(
    labels: ArrayLike, probabilities: ArrayLike, *, num_bins: int = 10
) -> float:
    """Return the expected calibration error over ``num_bins`` equal-width bins.

    See ``reliability_diagram`` for the binning.
    """
    return reliability_diagram(labels, probabilities, num_bins=num_bins).expected_calibration_error


def pairwise_accuracy(faithful_scores: ArrayLike, hallucinated_scores: ArrayLike) -> float:
    """Return the share of matched pairs in which the hallucinated answer scores higher.

    Pair ``i`` is ``(faithful_scores[i], hallucinated_scores[i])``, two answers
    to the same question. A tie counts as half a correct pair, so a detector
    that gives every answer the same score gets 0.5, the accuracy of a coin flip.

    Raises:
        ValueError: no pairs, unequal lengths or non-finite scores.
    """
    faithful = np.asarray(faithful_scores, dtype=np.float64)
    hallucinated = np.asarray(hallucinated_scores, dtype=np.float64)
    if faithful.ndim != 1 or faithful.shape != hallucinated.shape:
        raise ValueError(
            f"faithful_scores and hallucinated_scores must be 1-dimensional with one entry "
            f"per pair, got shapes {faithful.shape} and {hallucinated.shape}."
        )
    if faithful.size == 0:
        raise ValueError("Pairwise accuracy needs at least one pair; both score lists are empty.")
    if not (np.all(np.isfinite(faithful)) and np.all(np.isfinite(hallucinated))):
        raise ValueError("Pairwise accuracy needs finite scores; drop pairs without a score.")

    wins = np.sum(hallucinated > faithful)
    ties = np.sum(hallucinated == faithful)
    return float((wins + 0.5 * ties) / faithful.size)
