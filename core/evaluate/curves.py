"""ROC and precision-recall curves of detectors, as tables and plotly figures.

The dashboard's detector-quality view and the report draw these; the curve
points come from scikit-learn, so they match ``auroc`` and ``auprc``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.metrics import precision_recall_curve, roc_curve

from halluscope.evaluate.metrics import ArrayLike, check_labels_and_scores, require_both_classes


def roc_points(labels: ArrayLike, scores: ArrayLike) -> pd.DataFrame:
    """Return the ROC curve: ``threshold``, ``false_positive_rate`` and ``true_positive_rate``.

    The first row has threshold infinity (nothing flagged).

    Raises:
        ValueError: invalid input or only one class in ``labels``.
    """
    label_array, score_array = check_labels_and_scores(labels, scores)
    require_both_classes(label_array, "A ROC curve")
    false_positive_rate, true_positive_rate, thresholds = roc_curve(label_array, score_array)
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "false_positive_rate": false_positive_rate,
            "true_positive_rate": true_positive_rate,
        }
    )


def pr_points(labels: ArrayLike, scores: ArrayLike) -> pd.DataFrame:
    """Return the precision-recall curve as columns ``threshold``, ``recall``, ``precision``.

    The last point (recall 0, precision 1) has no threshold and gets NaN.

    Raises:
        ValueError: invalid input or only one class in ``labels``.
    """
    label_array, score_array = check_labels_and_scores(labels, scores)
    require_both_classes(label_array, "A precision-recall curve")
    precision, recall, thresholds = precision_recall_curve(label_array, score_array)
    return pd.DataFrame(
        {
            "threshold": np.append(thresholds, np.nan),
            "recall": recall,
            "precision": precision,
        }
    )


def _curve_figure(
    curves: Mapping[str, pd.DataFrame],
    *,
    x: str,
    y: str,
    hover: str,
    title: str,
    x_title: str,
    y_title: str,
    line: Mapping[str, str] | None = None,
) -> go.Figure:
    """Draw one line per detector from columns ``x`` and ``y``, with thresholds on hover."""
    figure = go.Figure()
    for name, points in curves.items():
        figure.add_trace(
            go.Scatter(
                x=points[x],
                y=points[y],
                mode="lines",
                line=dict(line or {}),
                name=name,
                customdata=points["threshold"],
                hovertemplate=hover,
            )
        )
    figure.update_layout(
        title=title,
        xaxis={"title": x_title, "range": [0, 1]},
        yaxis={"title": y_title, "range": [0, 1.02]},
        height=380,
        margin={"t": 50, "b": 40},
    )
    return figure


def roc_figure(
    curves: Mapping[str, pd.DataFrame], *, title: str, x_title: str, y_title: str
) -> go.Figure:
    """Draw one ROC curve per detector (from ``roc_points``) and the chance diagonal."""
    figure = _curve_figure(
        curves,
        x="false_positive_rate",
        y="true_positive_rate",
        hover="threshold %{customdata:.3f}<br>FPR %{x:.3f}<br>TPR %{y:.3f}",
        title=title,
        x_title=x_title,
        y_title=y_title,
    )
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "grey"},
            showlegend=False,
        )
    )
    return figure


def pr_figure(
    curves: Mapping[str, pd.DataFrame], *, title: str, x_title: str, y_title: str
) -> go.Figure:
    """Draw one precision-recall curve per detector (from ``pr_points``), as steps."""
    return _curve_figure(
        curves,
        x="recall",
        y="precision",
        hover="threshold %{customdata:.3f}<br>recall %{x:.3f}<br>precision %{y:.3f}",
        title=title,
        x_title=x_title,
        y_title=y_title,
        line={"shape": "hv"},
    )


#: Label-free suspicion scores of a classifier's predictions, by name.
CLASSIFICATION_SCORES = ("low_margin", "low_confidence")


def classification_scores(table: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return the wrong-prediction labels and the label-free scores of a prediction table.

    A wrong prediction (``correct`` False) is the classifier's hallucination,
    label 1. The scores are those of ``ConfidenceDetector`` without gold
    labels: ``low_margin`` = 1 - (top-1 minus top-2 probability) and
    ``low_confidence`` = 1 - the probability of the predicted label.

    Args:
        table: a table of ``halluscope.workflows.predict_run`` with gold labels
            (columns ``correct``, ``confidence`` and ``margin``).

    Raises:
        ValueError: the table has no gold labels (no ``correct`` column).
    """
    missing = [name for name in ("correct", "confidence", "margin") if name not in table.columns]
    if missing:
        raise ValueError(
            f"The prediction table lacks the columns {missing}; detector quality needs "
            "predictions with gold labels."
        )
    labels = (~table["correct"].astype(bool)).to_numpy().astype(np.int64)
    scores = {
        "low_margin": np.clip(1.0 - table["margin"].to_numpy(dtype=np.float64), 0.0, 1.0),
        "low_confidence": np.clip(1.0 - table["confidence"].to_numpy(dtype=np.float64), 0.0, 1.0),
    }
    return labels, scores


def flag_by_threshold(table: pd.DataFrame, score: str, threshold: float) -> pd.DataFrame:
    """Return a copy of a prediction table flagged by ``score >= threshold``.

    ``flagged``, ``flag_score`` and ``flag_reason`` are replaced, so pages that
    show the table show the new flags.

    Args:
        table: a table of ``halluscope.workflows.predict_run`` (columns
            ``confidence`` and ``margin``).
        score: one of ``CLASSIFICATION_SCORES``.
        threshold: rows whose score is at least this are flagged.

    Raises:
        ValueError: an unknown score name or a threshold outside [0, 1].
    """
    if score not in CLASSIFICATION_SCORES:
        raise ValueError(f"score must be one of {CLASSIFICATION_SCORES}, got {score!r}.")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}.")
    column = "margin" if score == "low_margin" else "confidence"
    values = np.clip(1.0 - table[column].to_numpy(dtype=np.float64), 0.0, 1.0)
    flagged = table.copy()
    flagged["flagged"] = values >= threshold
    flagged["flag_score"] = values
    flagged["flag_reason"] = [
        f"{score} {value:.3f} {'>=' if value >= threshold else '<'} threshold {threshold:.3f}"
        for value in values
    ]
    return flagged
