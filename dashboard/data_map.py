"""Plotly figures of the training-data and comparison pages: the data map and run metrics.

Axis titles and legend names are parameters, so that pages pass them translated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts import FIGURE_MARGIN
from halluscope.training.dynamics import AMBIGUOUS_VARIABILITY, EASY_CONFIDENCE

REGION_COLOURS = {"easy": "#2e7d32", "ambiguous": "#f9a825", "hard": "#c62828"}


def data_map_figure(
    frame: pd.DataFrame,
    *,
    x_title: str,
    y_title: str,
    colour_title: str,
    region_names: Mapping[str, str],
    hover_label: str,
) -> go.Figure:
    """Scatter the training rows by variability (x) and confidence (y), coloured by correctness.

    Args:
        frame: ``TrainingDynamics.to_frame()``: columns ``row_number``, ``label``,
            ``confidence``, ``variability``, ``correctness``.
        x_title, y_title, colour_title: axis and colour-bar titles.
        region_names: display name of ``"easy"``, ``"ambiguous"`` and ``"hard"``.
        hover_label: the word for "label" in the hover text.

    Each point carries its data row number as ``customdata``, so a selection
    names the rows.
    """
    figure = go.Figure(
        go.Scattergl(
            x=frame["variability"],
            y=frame["confidence"],
            mode="markers",
            customdata=frame[["row_number", "label"]].to_numpy(),
            marker={
                "color": frame["correctness"],
                "colorscale": "RdYlGn",
                "cmin": 0.0,
                "cmax": 1.0,
                "size": 7,
                "opacity": 0.8,
                "colorbar": {"title": {"text": colour_title}},
            },
            hovertemplate=(
                "row %{customdata[0]}<br>"
                + hover_label
                + ": %{customdata[1]}<br>"
                + f"{y_title}: %{{y:.3f}}<br>{x_title}: %{{x:.3f}}"
                + "<br>%{marker.color:.2f}<extra></extra>"
            ),
            showlegend=False,
        )
    )

    # Region borders: ambiguous to the right of the variability threshold;
    # left of it, easy above the confidence threshold and hard below.
    figure.add_vline(x=AMBIGUOUS_VARIABILITY, line={"dash": "dot", "color": "grey"})
    figure.add_shape(
        type="line",
        x0=0,
        x1=AMBIGUOUS_VARIABILITY,
        y0=EASY_CONFIDENCE,
        y1=EASY_CONFIDENCE,
        line={"dash": "dot", "color": "grey"},
    )
    labels = (
        ("easy", AMBIGUOUS_VARIABILITY / 2, 0.98),
        ("hard", AMBIGUOUS_VARIABILITY / 2, 0.02),
        ("ambiguous", AMBIGUOUS_VARIABILITY + 0.1, 0.5),
    )
    for region, x, y in labels:
        figure.add_annotation(
            x=x,
            y=y,
            text=f"<b>{region_names[region]}</b>",
            showarrow=False,
            font={"color": REGION_COLOURS[region]},
        )

    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        xaxis={"range": [-0.01, 0.51]},
        yaxis={"range": [-0.02, 1.02]},
        margin=FIGURE_MARGIN,
        height=480,
        # Streamlit selects points on click only outside box and lasso mode, so the
        # map starts in zoom mode. Box Select and Lasso are in the mode bar.
        dragmode="zoom",
    )
    return figure


def epoch_probability_figure(
    epochs: Sequence[float], probabilities: Sequence[float], *, x_title: str, y_title: str
) -> go.Figure:
    """Line of one training row's given-label probability over the epochs."""
    figure = go.Figure(go.Scatter(x=list(epochs), y=list(probabilities), mode="lines+markers"))
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis={"range": [0, 1]},
        margin=FIGURE_MARGIN,
        height=260,
    )
    return figure


def run_metrics_figure(
    summary: pd.DataFrame,
    metrics: Mapping[str, str],
    *,
    x_title: str,
    y_title: str,
) -> go.Figure:
    """Grouped bars: one group per metric, one bar per run.

    Args:
        summary: ``RunComparison.summary`` (one row per run, a ``name`` column).
        metrics: column of ``summary`` to its display name, in display order.
        x_title, y_title: axis titles.
    """
    figure = go.Figure()
    names = list(metrics.values())
    for _, row in summary.iterrows():
        figure.add_bar(
            name=str(row["name"]),
            x=names,
            y=[float(row[column]) for column in metrics],
            text=[f"{float(row[column]):.3f}" for column in metrics],
            textposition="outside",
        )
    figure.update_layout(
        barmode="group",
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis={"range": [0, 1.1]},
        margin=FIGURE_MARGIN,
        height=380,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure
