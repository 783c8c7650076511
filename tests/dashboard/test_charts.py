"""Loss history and figures drawn from run events."""

from __future__ import annotations

import pytest

from dashboard.charts import LossHistory, bar_figure, loss_curve_figure, loss_history

EVENTS = [
    {"type": "data", "rows": 600},
    {"type": "train_begin", "max_steps": 40},
    {"type": "train_step", "step": 1, "loss": 0.70},
    {"type": "train_step", "step": 5, "loss": 0.65},
    {"type": "eval", "step": 30, "eval_loss": 0.60, "eval_accuracy": 0.75},
    {"type": "train_step", "step": 35, "loss": "not a number"},
    {"type": "eval", "step": 40, "eval_loss": 0.55},
    {"type": "metrics", "accuracy": 0.8},
]


def test_loss_history_collects_losses():
    history = loss_history(EVENTS)

    assert history.train_steps == (1, 5)
    assert history.train_loss == (0.70, 0.65)
    assert history.eval_steps == (30, 40)
    assert history.eval_loss == (0.60, 0.55)
    assert history.eval_accuracy == (0.75, None)


def test_loss_history_empty():
    assert loss_history([{"type": "data"}]).is_empty


def test_loss_history_rejects_ragged():
    with pytest.raises(ValueError, match="equal lengths"):
        LossHistory((1, 2), (0.5,), (), (), ())


def test_loss_curve_axes_and_traces():
    figure = loss_curve_figure(
        loss_history(EVENTS), x_title="Step", y_title="Loss", train_name="train", eval_name="eval"
    )

    assert figure.layout.xaxis.title.text == "Step"
    assert figure.layout.yaxis.title.text == "Loss"
    assert [trace.name for trace in figure.data] == ["train", "eval"]
    assert list(figure.data[1].x) == [30, 40]
    assert figure.layout.xaxis.dtick is None


def test_loss_curve_integer_ticks_short_run():
    history = loss_history(EVENTS[:4])

    figure = loss_curve_figure(history, x_title="x", y_title="y", train_name="a", eval_name="b")

    assert figure.layout.xaxis.dtick == 1
    assert len(figure.data) == 1


def test_bar_figure_highlight_and_labels():
    figure = bar_figure(
        ["hallucinated", "supported"], [0.25, 0.75], x_title="Label", y_title="Probability",
        value_format="{:.2f}", highlight="supported", y_range=(0.0, 1.0),
    )  # fmt: skip

    bar = figure.data[0]
    assert list(bar.text) == ["0.25", "0.75"]
    assert list(bar.marker.color) == ["#1f77b4", "#d62728"]
    assert figure.layout.xaxis.title.text == "Label"
    assert tuple(figure.layout.yaxis.range) == (0.0, 1.0)
