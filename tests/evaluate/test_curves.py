"""Tests of ROC/PR curve points, figures and threshold flags of prediction tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from halluscope.evaluate.curves import (
    classification_scores,
    flag_by_threshold,
    pr_figure,
    pr_points,
    roc_figure,
    roc_points,
)

LABELS = [0, 0, 1, 1]
SCORES = [0.1, 0.4, 0.35, 0.8]


def test_roc_points_by_hand():
    points = roc_points(LABELS, SCORES)

    # Thresholds inf, 0.8, 0.4, 0.35, 0.1 (scikit-learn drops collinear points).
    assert points["true_positive_rate"].tolist()[-1] == 1.0
    assert points["false_positive_rate"].tolist()[-1] == 1.0
    row = points[points["threshold"] == 0.35].iloc[0]
    assert row["true_positive_rate"] == 1.0
    assert row["false_positive_rate"] == 0.5


def test_pr_points_end_without_threshold():
    points = pr_points(LABELS, SCORES)

    assert np.isnan(points["threshold"].iloc[-1])
    row = points[points["threshold"] == 0.35].iloc[0]
    assert row["precision"] == pytest.approx(2 / 3)
    assert row["recall"] == 1.0


def test_curves_single_class_raise():
    with pytest.raises(ValueError, match="A ROC curve needs both"):
        roc_points([1, 1], [0.2, 0.3])


def test_figures_label_axes():
    roc = roc_figure({"a": roc_points(LABELS, SCORES)}, title="ROC", x_title="FPR", y_title="TPR")
    pr = pr_figure({"a": pr_points(LABELS, SCORES)}, title="PR", x_title="R", y_title="P")

    assert roc.layout.xaxis.title.text == "FPR"
    assert roc.layout.yaxis.title.text == "TPR"
    assert len(roc.data) == 2
    assert pr.layout.xaxis.title.text == "R"
    assert pr.data[0].name == "a"


def _table():
    return pd.DataFrame(
        {
            "correct": [True, False, True],
            "confidence": [0.9, 0.6, 0.7],
            "margin": [0.8, 0.2, 0.4],
            "flagged": [False, False, False],
        }
    )


def test_classification_scores_from_table():
    labels, scores = classification_scores(_table())

    assert labels.tolist() == [0, 1, 0]
    assert scores["low_margin"] == pytest.approx([0.2, 0.8, 0.6])
    assert scores["low_confidence"] == pytest.approx([0.1, 0.4, 0.3])


def test_classification_scores_need_gold():
    with pytest.raises(ValueError, match=r"lacks the columns \['correct'\]"):
        classification_scores(_table().drop(columns="correct"))


def test_flag_by_threshold_replaces_flags():
    flagged = flag_by_threshold(_table(), "low_margin", 0.6)

    assert flagged["flagged"].tolist() == [False, True, True]
    assert flagged["flag_score"].tolist() == pytest.approx([0.2, 0.8, 0.6])
    assert flagged["flag_reason"][1] == "low_margin 0.800 >= threshold 0.600"
    assert not _table()["flagged"].any()


def test_flag_by_threshold_rejects_unknown_score():
    with pytest.raises(ValueError, match="score must be one of"):
        flag_by_threshold(_table(), "entropy", 0.5)
