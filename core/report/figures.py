"""Plotly figures of a run report: training curves, label counts and confidence.

Figures of single examples (attention, attributions) come from
``halluscope.explain``. Text that comes from data (label names) is
HTML-escaped, because plotly interprets a subset of HTML tags in labels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN_COLOUR = "#2563eb"
EVAL_COLOUR = "#dc2626"
ACCURACY_COLOUR = "#059669"


@dataclass(frozen=True)
class TrainingHistory:
    """Losses and validation accuracy read from a run's progress events.

    Attributes:
        train_steps: optimisation steps with a logged training loss.
        train_loss: training loss at each of ``train_steps``.
        eval_steps: steps at which the validation split was evaluated.
        eval_loss: validation loss at each of ``eval_steps``.
        eval_accuracy: validation accuracy at each of ``eval_steps``; None where not logged.
    """

    train_steps: tuple[int, ...]
    train_loss: tuple[float, ...]
    eval_steps: tuple[int, ...]
    eval_loss: tuple[float, ...]
    eval_accuracy: tuple[float | None, ...]

    def __post_init__(self) -> None:
        if len(self.train_steps) != len(self.train_loss):
            raise ValueError("train_steps and train_loss must have equal lengths.")
        if not len(self.eval_steps) == len(self.eval_loss) == len(self.eval_accuracy):
            raise ValueError("eval_steps, eval_loss and eval_accuracy must have equal lengths.")

    @property
    def is_empty(self) -> bool:
        return not self.train_steps and not self.eval_steps


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def training_history(events: Sequence[dict[str, Any]]) -> TrainingHistory:
    """Collect losses from the ``train_step`` and ``eval`` events of a run.

    The event format is the one ``ProgressEventsCallback`` writes, which both
    the classifier and the causal LM training use.
    """
    train_steps, train_loss = [], []
    eval_steps, eval_loss, eval_accuracy = [], [], []
    for event in events:
        step = event.get("step")
        if not isinstance(step, int):
            continue
        if event.get("type") == "train_step" and _number(event.get("loss")) is not None:
            train_steps.append(step)
            train_loss.append(_number(event["loss"]))
        elif event.get("type") == "eval" and _number(event.get("eval_loss")) is not None:
            eval_steps.append(step)
            eval_loss.append(_number(event["eval_loss"]))
            eval_accuracy.append(_number(event.get("eval_accuracy")))
    return TrainingHistory(
        tuple(train_steps), tuple(train_loss), tuple(eval_steps), tuple(eval_loss),
        tuple(eval_accuracy),
    )  # fmt: skip


def training_curves_figure(history: TrainingHistory) -> go.Figure:
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
