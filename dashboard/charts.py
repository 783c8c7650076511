"""Plotly figures the pages draw from run events and tables.

Figures from model internals (attention, attributions) come from
``halluscope.explain``. Axis titles are parameters, so that pages pass them
translated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

FIGURE_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


@dataclass(frozen=True)
class LossHistory:
    """Loss values read from a run's progress events.

    Attributes:
        train_steps: Optimisation steps with a logged training loss.
        train_loss: Training loss at each of ``train_steps``.
        eval_steps: Steps at which the validation set was evaluated.
        eval_loss: Validation loss at each of ``eval_steps``.
        eval_accuracy: Validation accuracy at each of ``eval_steps`` (None if not logged).
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


def loss_history(events: Sequence[dict[str, Any]]) -> LossHistory:
    """Collect training and validation losses from ``train_step`` and ``eval`` events."""
    train_steps: list[int] = []
    train_loss: list[float] = []
    eval_steps: list[int] = []
    eval_loss: list[float] = []
    eval_accuracy: list[float | None] = []
    for event in events:
        step = event.get("step")
        if step is None:
            continue
        if event.get("type") == "train_step" and isinstance(event.get("loss"), int | float):
            train_steps.append(int(step))
            train_loss.append(float(event["loss"]))
        elif event.get("type") == "eval" and isinstance(event.get("eval_loss"), int | float):
            eval_steps.append(int(step))
            eval_loss.append(float(event["eval_loss"]))
            accuracy = event.get("eval_accuracy")
            eval_accuracy.append(float(accuracy) if isinstance(accuracy, int | float) else None)
    return LossHistory(
        tuple(train_steps), tuple(train_loss), tuple(eval_steps), tuple(eval_loss),
        tuple(eval_accuracy),
    )  # fmt: skip


def _max_step(history: LossHistory) -> int:
    return max((*history.train_steps, *history.eval_steps), default=0)


def loss_curve_figure(
    history: LossHistory,
    *,
    x_title: str,
    y_title: str,
    train_name: str,
    eval_name: str,
) -> go.Figure:
    """Draw the training loss as a line and the validation loss as markers over steps."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=list(history.train_steps),
            y=list(history.train_loss),
            mode="lines+markers",
            name=train_name,
            marker={"size": 4},
        )
    )
    if history.eval_steps:
        figure.add_trace(
            go.Scatter(
                x=list(history.eval_steps),
                y=list(history.eval_loss),
                mode="markers+lines",
                name=eval_name,
                marker={"size": 10, "symbol": "diamond"},
                line={"dash": "dot"},
            )
        )
    # Steps are integers. Plotly would label fractional steps on a short run.
    figure.update_xaxes(tickformat="d", dtick=1 if _max_step(history) < 10 else None)
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=320,
        margin=FIGURE_MARGIN,
        showlegend=True,
        legend={"orientation": "h", "y": 1.12},
    )
    return figure


def bar_figure(
    categories: Sequence[str],
    values: Sequence[float],
    *,
    x_title: str,
    y_title: str,
    value_format: str = "{:,}",
    highlight: str | None = None,
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Draw one bar per category, labelled with its value. The ``highlight`` category is red."""
    colours = ["#d62728" if category == highlight else "#1f77b4" for category in categories]
    figure = go.Figure(
        go.Bar(
            x=list(categories),
            y=list(values),
            marker_color=colours,
            text=[value_format.format(value) for value in values],
            textposition="auto",
        )
    )
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=280,
        margin=FIGURE_MARGIN,
        showlegend=False,
    )
    if y_range is not None:
        figure.update_yaxes(range=list(y_range))
    return figure
