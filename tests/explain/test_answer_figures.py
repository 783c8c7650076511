"""Figures and HTML of generated answers: token colouring, lookback heatmaps, attention rows."""

from __future__ import annotations

import numpy as np
import pytest

from halluscope.explain import (
    AttentionMaps,
    attention_row_bar,
    lookback_heatmap,
    render_token_scores,
    token_score_bar,
)
from halluscope.explain.figures import KEY_AXIS_TITLE


@pytest.fixture
def causal_maps() -> AttentionMaps:
    """Two layers, two heads: a template token, two context tokens and two answer tokens."""
    weights = np.zeros((2, 2, 5, 5), dtype=np.float32)
    for query in range(5):
        weights[:, :, query, : query + 1] = 1.0 / (query + 1)
    return AttentionMaps(
        tokens=("<s>", "Tay", " Bridge", "It", "<i>"),
        weights=weights,
        segment_ids=np.array([-1, 0, 0, 2, 2], dtype=np.int8),
        offsets=np.array([[0, 0], [0, 3], [3, 10], [0, 2], [2, 5]]),
        causal=True,
    )


def test_token_scores_escape_markup():
    text = "It <script>x</script>"
    offsets = [(0, 2), (2, 11), (11, 12), (12, 21)]

    html = render_token_scores(text, offsets, [0.0, 1.0, 0.5, 0.2], ["a", "b<", "c", "d"])

    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'title="b&lt;"' in html
    assert html.count("<span") == 4


def test_token_scores_colour_by_score():
    html = render_token_scores("ab", [(0, 1), (1, 2)], [0.0, 1.0], ["a", "b"])

    assert "rgba(234, 88, 12, 0.000)" in html
    assert "rgba(234, 88, 12, 0.750)" in html


def test_token_scores_merge_byte_tokens():
    # Three byte tokens of one emoji share its span; the largest score is drawn once.
    text = "Hi 🎉"
    offsets = [(0, 2), (2, 4), (2, 4), (2, 4)]

    html = render_token_scores(text, offsets, [0.1, 0.2, 0.9, 0.3], ["a", "b", "c", "d"])

    assert html.count("<span") == 2
    assert "rgba(234, 88, 12, 0.675)" in html
    assert "🎉" in html


def test_token_scores_outline_selected():
    html = render_token_scores("ab", [(0, 1), (1, 2)], [0.5, 0.5], ["a", "b"], selected=1)

    assert html.count("outline: 2px") == 1
    assert html.index("outline: 2px") > html.index(">a<")


def test_token_scores_reject_bad_span():
    with pytest.raises(ValueError, match="outside the text"):
        render_token_scores("ab", [(0, 3)], [0.5], ["a"])


def test_lookback_heatmap_layers_and_heads():
    ratios = np.array([[[1.0, 1.0], [1.0, 1.0]], [[0.2, 0.4], [0.6, 0.8]]], dtype=np.float32)

    by_layer = lookback_heatmap(["It", " <b>"], ratios)
    by_head = lookback_heatmap(["It", " <b>"], ratios, layer=1)

    np.testing.assert_allclose(by_layer.data[0].z, [[1.0, 0.3], [1.0, 0.7]])
    np.testing.assert_allclose(by_head.data[0].z, [[1.0, 0.6], [1.0, 0.8]])
    assert by_layer.layout.yaxis.title.text == "Layer"
    assert by_head.layout.yaxis.title.text == "Head"
    assert by_layer.layout.xaxis.title.text == "Answer token"
    assert list(by_layer.data[0].x) == ["0: It", "1:  &lt;b&gt;"]


def test_lookback_heatmap_rejects_bad_layer():
    with pytest.raises(IndexError):
        lookback_heatmap(["It"], np.ones((1, 2, 2), dtype=np.float32), layer=2)


def test_attention_row_bar_by_segment(causal_maps):
    figure = attention_row_bar(
        causal_maps, query=3, layer=0, segment_names={-1: "template", 0: "context", 2: "answer"}
    )

    assert [trace.name for trace in figure.data] == ["template", "context", "answer"]
    weights = np.concatenate([np.asarray(trace.y) for trace in figure.data])
    np.testing.assert_allclose(weights, [0.25, 0.25, 0.25, 0.25])
    assert figure.layout.xaxis.title.text == KEY_AXIS_TITLE
    assert figure.layout.yaxis.title.text == "Attention weight"


def test_token_score_bar_axes():
    figure = token_score_bar(["It", "<i>"], [0.1, 0.9], "low_logprob")

    assert list(figure.data[0].y) == [0.1, 0.9]
    assert list(figure.data[0].x) == ["0: It", "1: &lt;i&gt;"]
    assert figure.layout.yaxis.title.text == "Suspicion score"
