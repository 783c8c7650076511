"""Plotly figures of attention maps and word attributions, with labelled axes.

Token and word strings are HTML-escaped before they become tick labels or
hover text, because plotly interprets a subset of HTML tags in labels.
"""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from halluscope.explain.attention import AttentionMaps, HeadStatistic
from halluscope.explain.render import NEGATIVE_RGB, POSITIVE_RGB
from halluscope.explain.words import WordAttributions

KEY_AXIS_TITLE = "Key token (attended to)"
QUERY_AXIS_TITLE = "Query token (attending)"

_ATTENTION_COLOURSCALE = "Blues"
_HOVER = "Query %{y}<br>Key %{x}<br>Weight %{z:.3f}<extra></extra>"
_GRID_COLUMNS = 4

_STATISTIC_TITLES = {
    "entropy": "Mean attention entropy per head (nats)",
    "to_special": "Mean attention to special tokens per head",
    "pair_to_text": "Mean attention from text pair (claim) to text (context) per head",
}


def _escaped_labels(maps: AttentionMaps) -> list[str]:
    return [html.escape(label) for label in maps.token_labels()]


def _matrix_heatmap(maps: AttentionMaps, matrix: np.ndarray, title: str) -> go.Figure:
    labels = _escaped_labels(maps)
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=labels,
            y=labels,
            colorscale=_ATTENTION_COLOURSCALE,
            zmin=0.0,
            colorbar={"title": {"text": "Weight"}},
            hovertemplate=_HOVER,
        )
    )
    figure.update_layout(
        title={"text": title},
        xaxis={"title": {"text": KEY_AXIS_TITLE}, "tickangle": -60, "type": "category"},
        # Query 0 at the top, as in a matrix.
        yaxis={"title": {"text": QUERY_AXIS_TITLE}, "autorange": "reversed", "type": "category"},
    )
    return figure


def attention_heatmap(maps: AttentionMaps, layer: int, head: int | None = None) -> go.Figure:
    """Draw one head's attention matrix, or the mean over heads of a layer when ``head`` is None.

    Rows are queries and columns keys; tick labels are ``"<position>: <token>"``
    so repeated tokens get their own row and column. Layers and heads count from 0.
    """
    if head is None:
        matrix = maps.layer_mean(layer)
        title = f"Attention, layer {layer}, mean over {maps.num_heads} heads"
    else:
        matrix = maps.head(layer, head)
        title = f"Attention, layer {layer}, head {head}"
    return _matrix_heatmap(maps, matrix, title)


def rollout_heatmap(maps: AttentionMaps) -> go.Figure:
    """Draw the attention rollout through all layers (see ``AttentionMaps.rollout``)."""
    title = f"Attention rollout over {maps.num_layers} layers (residual-weighted)"
    return _matrix_heatmap(maps, maps.rollout(), title)


def attention_head_grid(
    maps: AttentionMaps,
    layer: int | None = None,
    *,
    statistic: HeadStatistic = "entropy",
) -> go.Figure:
    """Draw every head of one layer as a grid of small heatmaps, or an overview of all heads.

    Args:
        maps: the attention maps.
        layer: the layer whose heads to draw, one subplot per head. When None,
            draw one heatmap of layers x heads coloured by ``statistic``.
        statistic: the per-head summary of the overview (see
            ``AttentionMaps.head_summary``); ignored when ``layer`` is given.
    """
    if layer is None:
        return _head_overview(maps, statistic)

    heads = maps.num_heads
    columns = min(_GRID_COLUMNS, heads)
    rows = math.ceil(heads / columns)
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[f"Head {head}" for head in range(heads)],
        x_title=KEY_AXIS_TITLE,
        y_title=QUERY_AXIS_TITLE,
        horizontal_spacing=0.03,
        vertical_spacing=0.08,
    )
    labels = _escaped_labels(maps)
    for head in range(heads):
        figure.add_trace(
            go.Heatmap(
                z=maps.head(layer, head),
                x=labels,
                y=labels,
                coloraxis="coloraxis",
                hovertemplate=f"Head {head}<br>" + _HOVER,
            ),
            row=head // columns + 1,
            col=head % columns + 1,
        )
    figure.update_xaxes(showticklabels=False, type="category")
    figure.update_yaxes(showticklabels=False, type="category", autorange="reversed")
    figure.update_layout(
        title={"text": f"Attention of every head in layer {layer}"},
        coloraxis={
            "colorscale": _ATTENTION_COLOURSCALE,
            "cmin": 0.0,
            "colorbar": {"title": {"text": "Weight"}},
        },
        height=max(300, 220 * rows),
    )
    return figure


def _head_overview(maps: AttentionMaps, statistic: HeadStatistic) -> go.Figure:
    summary = maps.head_summary(statistic)
    figure = go.Figure(
        go.Heatmap(
            z=summary,
            x=[str(head) for head in range(maps.num_heads)],
            y=[str(layer) for layer in range(maps.num_layers)],
            colorscale="Viridis",
            colorbar={"title": {"text": statistic}},
            hovertemplate="Layer %{y}, head %{x}<br>%{z:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        title={"text": _STATISTIC_TITLES[statistic]},
        xaxis={"title": {"text": "Head"}, "type": "category"},
        yaxis={"title": {"text": "Layer"}, "type": "category", "autorange": "reversed"},
    )
    return figure


def word_attribution_bar(
    word_attributions: WordAttributions,
    top_k: int = 20,
    *,
    segment_names: tuple[str, str] = ("text", "text pair"),
) -> go.Figure:
    """Draw the ``top_k`` words by absolute score as horizontal bars, the strongest on top.

    Bars are red for positive and blue for negative scores. Each label is
    ``"<word> (<segment name> @<char offset>)"`` so repeated words stay apart.
    """
    words = word_attributions.top_words(top_k)
    labels = [
        html.escape(f"{word.text} ({segment_names[word.segment]} @{word.start})") for word in words
    ]
    colours = [
        "rgb({}, {}, {})".format(*(POSITIVE_RGB if word.score >= 0 else NEGATIVE_RGB))
        for word in words
    ]
    figure = go.Figure(
        go.Bar(
            x=[word.score for word in words],
            y=labels,
            orientation="h",
            marker={"color": colours},
            hovertemplate="%{y}<br>Score %{x:+.4f}<extra></extra>",
        )
    )
    figure.update_layout(
        title={
            "text": (
                f"Top {len(words)} words for {html.escape(word_attributions.target_label)} "
                f"({word_attributions.method}, {word_attributions.reduce} over tokens)"
            )
        },
        xaxis={"title": {"text": "Attribution score"}},
        yaxis={"title": {"text": "Word"}, "autorange": "reversed", "type": "category"},
        height=max(300, 28 * len(words) + 120),
    )
    return figure
