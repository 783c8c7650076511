"""Tests of the detector quality metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from halluscope.evaluate.metrics import (
    auprc,
    auroc,
    best_f1,
    expected_calibration_error,
    metrics_at_threshold,
    pairwise_accuracy,
    reliability_diagram,
)

# Ranked by score: 0.8 (1), 0.4 (0), 0.35 (1), 0.1 (0).
LABELS = [0, 0, 1, 1]
SCORES = [0.1, 0.4, 0.35, 0.8]

# Ranked by score: 0.9 (1), then a tie at 0.5 between a 1 and a 0, then 0.2 (0).
TIED_LABELS = [0, 1, 0, 1]
TIED_SCORES = [0.5, 0.5, 0.2, 0.9]


def test_auroc_counts_ordered_pairs():
    # Of the 4 (positive, negative) pairs, 0.35 < 0.4 is the only wrong one.
    assert auroc(LABELS, SCORES) == pytest.approx(0.75)


def test_auroc_counts_tie_as_half():
    # Pairs: 0.5 vs 0.5 (tie, 0.5), 0.5 vs 0.2, 0.9 vs 0.5, 0.9 vs 0.2 -> 3.5 / 4.
    assert auroc(TIED_LABELS, TIED_SCORES) == pytest.approx(0.875)


def test_auroc_accepts_booleans():
    assert auroc([False, True], [0.2, 0.7]) == 1.0


def test_auprc_sums_precision_at_recall_steps():
    # Recall rises 0.5 at 0.8 (precision 1) and 0.5 at 0.35 (precision 2/3).
    assert auprc(LABELS, SCORES) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_auprc_treats_tied_scores_as_one_step():
    # At 0.9: recall 0.5, precision 1; at 0.5 both tied items enter: recall 1, precision 2/3.
    assert auprc(TIED_LABELS, TIED_SCORES) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_metrics_at_threshold_counts_confusion():
    result = metrics_at_threshold(LABELS, SCORES, 0.5)

    assert (result.true_positives, result.false_positives) == (1, 0)
    assert (result.false_negatives, result.true_negatives) == (1, 2)
    assert result.precision == 1.0
    assert result.recall == 0.5
    assert result.f1 == pytest.approx(2 / 3)


def test_metrics_at_threshold_flags_equal_score():
    result = metrics_at_threshold(LABELS, SCORES, 0.35)

    assert result.true_positives == 2
    assert result.false_positives == 1


def test_metrics_at_threshold_nothing_flagged():
    result = metrics_at_threshold(LABELS, SCORES, 0.95)

    assert result.precision == 0.0
    assert result.recall == 0.0
    assert result.f1 == 0.0


def test_best_f1_finds_threshold():
    # F1 by threshold: 0.8 -> 2/3, 0.4 -> 1/2, 0.35 -> 4/5, 0.1 -> 2/3.
    result = best_f1(LABELS, SCORES)

    assert result.threshold == 0.35
    assert result.f1 == pytest.approx(0.8)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == 1.0


def test_best_f1_with_ties():
    # F1 by threshold: 0.9 -> 2/3, 0.5 -> 0.8 (both tied items flagged), 0.2 -> 2/3.
    result = best_f1(TIED_LABELS, TIED_SCORES)

    assert result.threshold == 0.5
    assert result.f1 == pytest.approx(0.8)
    assert result.false_positives == 1


@pytest.mark.parametrize("metric", [auroc, auprc, best_f1])
@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_single_class_raises(metric, labels):
    with pytest.raises(ValueError, match="needs both faithful"):
        metric(labels, [0.1, 0.2, 0.3])


def test_threshold_metrics_need_a_positive():
    with pytest.raises(ValueError, match="at least one hallucinated"):
        metrics_at_threshold([0, 0], [0.1, 0.9], 0.5)


def test_invalid_label_names_entry():
    with pytest.raises(ValueError, match="entry 1 is 2"):
        auroc([0, 2, 1], [0.1, 0.2, 0.3])


def test_nan_score_names_entry():
    with pytest.raises(ValueError, match="entry 2 is nan"):
        auroc([0, 1, 1], [0.1, 0.2, math.nan])


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="3 entries but scores has 2"):
        auroc([0, 1, 1], [0.1, 0.2])


def test_reliability_diagram_bins():
    diagram = reliability_diagram([0, 1, 1, 0], [0.05, 0.15, 0.95, 1.0], num_bins=2)

    assert diagram.counts.tolist() == [2, 2]
    assert diagram.mean_predicted == pytest.approx([0.1, 0.975])
    assert diagram.observed_rate == pytest.approx([0.5, 0.5])
    # Both bins weigh 1/2: 0.5 * 0.4 + 0.5 * 0.475.
    assert diagram.expected_calibration_error == pytest.approx(0.4375)


def test_expected_calibration_error_skips_empty_bins():
    # Bin 9: mean 0.9, rate 1, weight 2/3; bin 2: mean 0.2, rate 0, weight 1/3.
    value = expected_calibration_error([1, 1, 0], [0.9, 0.9, 0.2], num_bins=10)

    assert value == pytest.approx(2 / 3 * 0.1 + 1 / 3 * 0.2)
    diagram = reliability_diagram([1, 1, 0], [0.9, 0.9, 0.2], num_bins=10)
    assert np.isnan(diagram.mean_predicted[0])


def test_calibration_rejects_score_above_one():
    with pytest.raises(ValueError, match="entry 0 is 1.5"):
        reliability_diagram([1, 0], [1.5, 0.2])


def test_pairwise_accuracy_counts_tie_as_half():
    # Pairs: win, tie, loss, win -> (2 + 0.5) / 4.
    value = pairwise_accuracy([0.1, 0.5, 0.7, 0.3], [0.2, 0.5, 0.6, 0.9])

    assert value == pytest.approx(0.625)


def test_pairwise_accuracy_constant_detector_is_half():
    assert pairwise_accuracy([0.3, 0.3], [0.3, 0.3]) == 0.5


def test_pairwise_accuracy_without_pairs_raises():
    with pytest.raises(ValueError, match="at least one pair"):
        pairwise_accuracy([], [])
