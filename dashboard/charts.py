"""Plotly figures the pages draw from run events and tables.

Figures from model internals (attention, attributions) come from
``halluscope.explain``. Axis titles are parameters, so that pages pass them
translated.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from halluscope.training.history import LossHistory, loss_history

__all__ = ["LossHistory", "bar_figure", "loss_curve_figure", "loss_history"]

FIGURE_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


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


def relabel(
    figure: go.Figure,
    *,
    title: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> go.Figure:
    """Replace the title, the first axes' titles and annotations with texts in the UI language.

    The figures of ``halluscope.explain`` are labelled in English; pages pass
    translated texts here. ``annotations`` maps an annotation's English text
    (a subplot title, a shared axis title) to its replacement. The texts are
    HTML-escaped, because plotly renders a subset of HTML in titles.
    """
    if title is not None:
        figure.update_layout(title={"text": html.escape(title)})
    if x_title is not None:
        figure.update_layout(xaxis={"title": {"text": html.escape(x_title)}})
    if y_title is not None:
        figure.update_layout(yaxis={"title": {"text": html.escape(y_title)}})
    for annotation in figure.layout.annotations:
        if annotations and annotation.text in annotations:
            annotation.text = html.escape(annotations[annotation.text])
    return figure
