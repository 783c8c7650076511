"""Tests of the plotly figures: labelled axes, unique tick labels, one subplot per head."""

from __future__ import annotations

import numpy as np
import pytest

from halluscope.explain import (
    AttentionMaps,
    Word,
    WordAttributions,
    attention_head_grid,
    attention_heatmap,
    rollout_heatmap,
    word_attribution_bar,
)
from halluscope.explain.figures import KEY_AXIS_TITLE, QUERY_AXIS_TITLE


@pytest.fixture
def maps() -> AttentionMaps:
    rng = np.random.default_rng(0)
    weights = rng.random((2, 3, 4, 4))
    weights /= weights.sum(axis=-1, keepdims=True)
    return AttentionMaps(
        tokens=("[CLS]", "the", "<b>", "the"),
        weights=weights.astype(np.float32),
        segment_ids=np.array([-1, 0, 0, 0], dtype=np.int8),
        offsets=np.array([[0, 0], [0, 3], [4, 7], [8, 11]], dtype=np.int64),
    )


def test_heatmap_axis_titles(maps):
    figure = attention_heatmap(maps, layer=1, head=2)

    assert figure.layout.xaxis.title.text == KEY_AXIS_TITLE
    assert figure.layout.yaxis.title.text == QUERY_AXIS_TITLE
    assert figure.layout.title.text == "Attention, layer 1, head 2"
    np.testing.assert_allclose(figure.data[0].z, maps.head(1, 2))


def test_heatmap_tick_labels_unique_and_escaped(maps):
    figure = attention_heatmap(maps, layer=0)

    labels = list(figure.data[0].x)
    assert labels == ["0: [CLS]", "1: the", "2: &lt;b&gt;", "3: the"]
    assert len(set(labels)) == len(labels)
    assert "mean over 3 heads" in figure.layout.title.text


def test_rollout_heatmap_matches_maps(maps):
    figure = rollout_heatmap(maps)

    np.testing.assert_allclose(figure.data[0].z, maps.rollout())
    assert figure.layout.xaxis.title.text == KEY_AXIS_TITLE


def test_head_grid_one_subplot_per_head(maps):
    figure = attention_head_grid(maps, layer=1)

    titles = [annotation.text for annotation in figure.layout.annotations]
    assert len(figure.data) == maps.num_heads
    assert [t for t in titles if t.startswith("Head ")] == ["Head 0", "Head 1", "Head 2"]
    assert KEY_AXIS_TITLE in titles
    assert QUERY_AXIS_TITLE in titles
    np.testing.assert_allclose(figure.data[2].z, maps.head(1, 2))


def test_head_grid_overview_shape(maps):
    figure = attention_head_grid(maps, statistic="entropy")

    assert np.asarray(figure.data[0].z).shape == (2, 3)
    assert figure.layout.xaxis.title.text == "Head"
    assert figure.layout.yaxis.title.text == "Layer"


def test_word_bar_top_k_and_labels():
    words = WordAttributions(
        text_words=(
            Word("the", 0, 3, 0.1, 0),
            Word("cat", 4, 7, -2.0, 0),
            Word("the", 8, 11, 0.5, 0),
        ),
        pair_words=(Word("dog", 0, 3, 1.0, 1),),
        method="integrated_gradients",
        target_label="hallucinated",
        reduce="sum",
        unassigned_score=0.0,
    )

    figure = word_attribution_bar(words, top_k=3, segment_names=("context", "claim"))

    bar = figure.data[0]
    assert list(bar.y) == ["cat (context @4)", "dog (claim @0)", "the (context @8)"]
    np.testing.assert_allclose(bar.x, [-2.0, 1.0, 0.5])
    assert figure.layout.xaxis.title.text == "Attribution score"
    assert figure.layout.yaxis.title.text == "Word"
