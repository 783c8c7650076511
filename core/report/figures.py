"""Plotly figures of a run report: training curves, label counts and confidence.

Figures of single examples (attention, attributions) come from
``halluscope.explain``. Text that comes from data (label names) is
HTML-escaped, because plotly interprets a subset of HTML tags in labels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from halluscope.training.history import LossHistory

TRAIN_COLOUR = "#2563eb"
EVAL_COLOUR = "#dc2626"
ACCURACY_COLOUR = "#059669"


def training_curves_figure(history: LossHistory) -> go.Figure:
    """Draw training and validation loss over steps, and validation accuracy when logged.

    Accuracy uses a second y axis on the right, in [0, 1].
    """
    has_accuracy = any(value is not None for value in history.eval_accuracy)
    figure = make_subplots(specs=[[{"secondary_y": has_accuracy}]])
    figure.add_trace(
        go.Scatter(
            x=list(history.train_steps),
            y=list(history.train_loss),
            mode="lines",
            name="Training loss",
            line={"color": TRAIN_COLOUR},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=list(history.eval_steps),
            y=list(history.eval_loss),
            mode="lines+markers",
            name="Validation loss",
            line={"color": EVAL_COLOUR},
        )
    )
    if has_accuracy:
        figure.add_trace(
            go.Scatter(
                x=list(history.eval_steps),
                y=list(history.eval_accuracy),
                mode="lines+markers",
                name="Validation accuracy",
                line={"color": ACCURACY_COLOUR, "dash": "dot"},
            ),
            secondary_y=True,
        )
        figure.update_yaxes(title_text="Accuracy", range=[0, 1], secondary_y=True)
    figure.update_layout(
        title={"text": "Training curves"},
        xaxis={"title": {"text": "Optimisation step"}},
        legend={"orientation": "h", "y": -0.2},
        height=400,
    )
    figure.update_yaxes(title_text="Loss", secondary_y=False)
    return figure


def label_counts_figure(table: pd.DataFrame, label_names: Sequence[str]) -> go.Figure:
    """Draw how many examples have each label: gold (when known) next to predicted.

    ``table`` is a prediction table with a ``predicted`` column and, for
    labelled data, a ``gold`` column.
    """
    labels = [str(name) for name in label_names]
    escaped = [html.escape(name) for name in labels]
    figure = go.Figure()
    if "gold" in table.columns:
        gold = table["gold"].astype(str).value_counts()
        figure.add_trace(
            go.Bar(x=escaped, y=[int(gold.get(name, 0)) for name in labels], name="Gold label")
        )
    predicted = table["predicted"].astype(str).value_counts()
    figure.add_trace(
        go.Bar(
            x=escaped, y=[int(predicted.get(name, 0)) for name in labels], name="Predicted label"
        )
    )
    figure.update_layout(
        title={"text": "Validation examples per label"},
        barmode="group",
        xaxis={"title": {"text": "Label"}, "type": "category"},
        yaxis={"title": {"text": "Examples"}},
        height=360,
    )
    return figure


def confidence_figure(table: pd.DataFrame) -> go.Figure:
    """Draw histograms of the prediction confidence, split into right and wrong when known."""
    figure = go.Figure()
    bins = {"start": 0.0, "end": 1.0, "size": 0.05}
    if "correct" in table.columns:
        correct = table["correct"].astype(bool)
        for name, rows, colour in (
            ("Right predictions", table[correct], TRAIN_COLOUR),
            ("Wrong predictions", table[~correct], EVAL_COLOUR),
        ):
            figure.add_trace(
                go.Histogram(
                    x=rows["confidence"].astype(float),
                    name=name,
                    xbins=bins,
                    marker={"color": colour},
                    opacity=0.7,
                )
            )
    else:
        figure.add_trace(
            go.Histogram(
                x=table["confidence"].astype(float),
                name="Predictions",
                xbins=bins,
                marker={"color": TRAIN_COLOUR},
            )
        )
    figure.update_layout(
        title={"text": "Confidence of the predictions"},
        barmode="overlay",
        xaxis={"title": {"text": "Confidence (probability of the predicted label)"}},
        yaxis={"title": {"text": "Examples"}},
        height=360,
    )
    return figure
