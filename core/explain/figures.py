"""Plotly figures of attention maps and word attributions, with labelled axes.

Token and word strings are HTML-escaped before they become tick labels or
hover text, because plotly interprets a subset of HTML tags in labels.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

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


def _answer_token_labels(tokens: Sequence[str]) -> list[str]:
    return [html.escape(f"{index}: {token}") for index, token in enumerate(tokens)]


def lookback_heatmap(
    tokens: Sequence[str], ratios: np.ndarray, layer: int | None = None
) -> go.Figure:
    """Draw the lookback ratio of every answer token per layer (mean over heads) or per head.

    Args:
        tokens: the answer tokens, one per row of ``ratios``.
        ratios: float array [num_tokens, num_layers, num_heads] from ``lookback_ratios``.
        layer: draw the heads of this layer; None draws every layer's mean over heads.
    """
    if ratios.ndim != 3 or ratios.shape[0] != len(tokens):
        raise ValueError(
            f"ratios must have shape [{len(tokens)}, layers, heads], got {ratios.shape}."
        )
    if layer is None:
        values = ratios.mean(axis=2).T
        rows, row_title = range(ratios.shape[1]), "Layer"
        title = "Lookback ratio per answer token and layer (mean over heads)"
    else:
        if not 0 <= layer < ratios.shape[1]:
            raise IndexError(f"layer must lie in [0, {ratios.shape[1] - 1}], got {layer}.")
        values = ratios[:, layer, :].T
        rows, row_title = range(ratios.shape[2]), "Head"
        title = f"Lookback ratio per answer token and head, layer {layer}"
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=_answer_token_labels(tokens),
            y=[str(row) for row in rows],
            zmin=0.0,
            zmax=1.0,
            colorscale="RdBu",
            colorbar={"title": {"text": "Lookback ratio"}},
            hovertemplate=(
                f"Token %{{x}}<br>{row_title} %{{y}}<br>Lookback ratio %{{z:.3f}}<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        title={"text": title},
        xaxis={"title": {"text": "Answer token"}, "type": "category"},
        yaxis={"title": {"text": row_title}, "type": "category", "autorange": "reversed"},
    )
    return figure


def attention_row_bar(
    maps: AttentionMaps,
    query: int,
    layer: int,
    head: int | None = None,
    *,
    segment_names: Mapping[int, str] | None = None,
) -> go.Figure:
    """Draw how much one query token attends to each earlier token, coloured by segment.

    Args:
        maps: causal attention maps of a prompt and its response.
        query: the query position (the token before the explained answer token).
        layer: the layer; ``head`` None averages its heads.
        segment_names: names of the segment ids for the legend (default: the ids).
    """
    matrix = maps.layer_mean(layer) if head is None else maps.head(layer, head)
    if not 0 <= query < maps.seq_len:
        raise IndexError(f"query must lie in [0, {maps.seq_len - 1}], got {query}.")
    keys = np.arange(query + 1)
    labels = np.array(_escaped_labels(maps))[keys]
    figure = go.Figure()
    for segment in sorted(set(maps.segment_ids[keys].tolist())):
        chosen = keys[maps.segment_ids[keys] == segment]
        name = (segment_names or {}).get(segment, str(segment))
        figure.add_trace(
            go.Bar(
                x=labels[chosen - keys[0]],
                y=matrix[query, chosen],
                name=html.escape(name),
                hovertemplate="Key %{x}<br>Weight %{y:.3f}<extra></extra>",
            )
        )
    head_text = "mean over heads" if head is None else f"head {head}"
    figure.update_layout(
        title={
            "text": f"Attention of query {html.escape(maps.token_labels()[query])}, "
            f"layer {layer}, {head_text}"
        },
        xaxis={"title": {"text": KEY_AXIS_TITLE}, "type": "category"},
        yaxis={"title": {"text": "Attention weight"}},
        barmode="overlay",
    )
    return figure


def token_score_bar(tokens: Sequence[str], scores: Sequence[float], detector: str) -> go.Figure:
    """Draw one detector's score of every answer token as bars."""
    figure = go.Figure(
        go.Bar(
            x=_answer_token_labels(tokens),
            y=list(scores),
            marker={"color": list(scores), "colorscale": "Oranges", "cmin": 0.0, "cmax": 1.0},
            hovertemplate="Token %{x}<br>Score %{y:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        title={"text": f"{html.escape(detector)} score per answer token"},
        xaxis={"title": {"text": "Answer token"}, "type": "category"},
        yaxis={"title": {"text": "Suspicion score"}, "range": [0, 1]},
    )
    return figure
