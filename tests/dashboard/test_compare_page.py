"""AppTest tests of the Compare and Training data pages, on tiny random runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    HEAD_BIAS,
    LABEL_NAMES,
    REPOSITORY_ROOT,
    VALIDATION_EXAMPLES,
    open_page,
    shown_texts,
)
from test_i18n_pages import _english_strings

from halluscope.runs import RunStore
from halluscope.training import ClassifierTrainConfig
from halluscope.training.dynamics import DYNAMICS_FILE, TrainingDynamics
from halluscope.training.label_errors import LABEL_ISSUES_FILE, LabelIssues

TRAIN_ROWS = (1, 2, 3, 4)
"""Training rows of the tiny runs: the first four rows of the demo claims."""


@pytest.fixture(scope="module")
def opposite_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its head bias reversed: every prediction is "supported"."""
    import torch
    from transformers import BertForSequenceClassification

    folder = tmp_path_factory.mktemp("opposite") / "model"
    model = BertForSequenceClassification.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([-HEAD_BIAS, HEAD_BIAS]))
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (tiny_model_dir / name).is_file():
            shutil.copy(tiny_model_dir / name, folder / name)
    return folder


def add_run(store: RunStore, model_dir: Path, name: str) -> str:
    """Create a completed run with ``model_dir`` and the four-row validation split."""
    config = ClassifierTrainConfig(
        model="minilm",
        data_path=str(REPOSITORY_ROOT / "assets" / "demo" / "claims.csv"),
        text_column="context",
        text_pair_column="claim",
        label_column="label",
        max_length=64,
    )
    record = store.create_run(
        kind="classification", model="minilm", data=config.data_path,
        config=config.to_dict(), name=name,
    )  # fmt: skip
    shutil.copytree(model_dir, store.run_dir(record.run_id) / "model")
    store.write_json(
        record.run_id,
        "split.json",
        {
            "label_names": list(LABEL_NAMES),
            "train_row_numbers": list(TRAIN_ROWS),
            "validation": {
                "texts": [example[0] for example in VALIDATION_EXAMPLES],
                "text_pairs": [example[1] for example in VALIDATION_EXAMPLES],
                "labels": [example[2] for example in VALIDATION_EXAMPLES],
                "row_numbers": [example[3] for example in VALIDATION_EXAMPLES],
            },
        },
    )
    store.set_metrics(record.run_id, {"accuracy": 0.5})
    store.set_status(record.run_id, "completed")
    return record.run_id


@pytest.fixture
def two_runs(store, tiny_model_dir, opposite_model_dir) -> tuple[str, str]:
    return (
        add_run(store, tiny_model_dir, "all hallucinated"),
        add_run(store, opposite_model_dir, "all supported"),
    )


def open_compare(make_app, runs):
    app = make_app()
    app.session_state["compare_runs"] = list(runs)
    return open_page(app, "compare")


def test_compare_shows_metrics_per_run(make_app, two_runs):
    app = open_compare(make_app, two_runs)

    assert not app.exception
    summary = app.dataframe[0].value
    assert summary["name"].tolist() == ["all hallucinated", "all supported"]
    assert summary["accuracy"].tolist() == [0.5, 0.5]
    assert summary["flagged_rate(confidence)"].tolist() == [0.5, 0.5]
    assert (summary["calibration_error"] > 0.4).all()
    chart = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["xaxis"]["title"]["text"] == "Metric"
    assert chart["layout"]["yaxis"]["title"]["text"] == "Value"
    assert len(chart["data"]) == 2


def test_compare_lists_row_changes(make_app, two_runs):
    app = open_compare(make_app, two_runs)

    examples = app.dataframe[1].value
    changes = dict(zip(examples["row_number"], examples["change"], strict=True))
    metrics = {metric.label: metric.value for metric in app.metric}

    assert changes == {
        3: "stopped_flagged",
        8: "became_flagged",
        11: "stopped_flagged",
        17: "became_flagged",
    }
    assert metrics["Became flagged"] == "2"
    assert metrics["No longer flagged"] == "2"

    app.multiselect(key="compare_change").set_value(["became_flagged"]).run()

    assert app.dataframe[1].value["row_number"].tolist() == [8, 17]


def test_compare_downloads_and_neighbours(make_app, two_runs):
    app = open_compare(make_app, two_runs)

    labels = [button.proto.label for button in app.get("download_button")]
    neighbours = app.dataframe[2].value

    assert labels == ["Download CSV"] * 3
    assert app.selectbox(key="compare_neighbour_row").value == 8
    assert len(neighbours) == len(TRAIN_ROWS)
    assert set(neighbours["row_number"]) == set(TRAIN_ROWS)
    assert neighbours["similarity"].is_monotonic_decreasing


def test_compare_needs_two_runs(make_app, tiny_run):
    app = open_page(make_app(), "compare")

    assert not app.exception
    assert any("at least two completed" in text for text in shown_texts(app))


@pytest.mark.parametrize("page", ["compare", "training_data"])
def test_pages_in_chinese(make_app, store, two_runs, page):
    write_dynamics(store, two_runs[1])
    app = make_app("zh_CN")
    app.session_state["compare_runs"] = list(two_runs)
    app.session_state["training_data_run"] = two_runs[1]
    open_page(app, page)

    assert not app.exception
    assert _english_strings(app) == []


def write_dynamics(store: RunStore, run_id: str) -> None:
    dynamics = TrainingDynamics(
        row_numbers=TRAIN_ROWS,
        labels=np.asarray([1, 1, 0, 0]),
        label_names=LABEL_NAMES,
        epochs=(1.0, 2.0, 3.0),
        gold_probability=np.asarray(
            [[0.9, 0.2, 0.1, 0.5], [0.95, 0.9, 0.1, 0.6], [0.99, 0.2, 0.05, 0.7]]
        ),
        predicted=np.asarray([[1, 0, 1, 1], [1, 1, 1, 0], [1, 0, 1, 0]]),
    )
    store.write_json(run_id, DYNAMICS_FILE, dynamics.to_dict())


def test_training_data_shows_data_map(make_app, store, two_runs):
    run_id = two_runs[1]
    write_dynamics(store, run_id)
    app = make_app()
    app.session_state["training_data_run"] = run_id
    open_page(app, "training_data")

    assert not app.exception
    chart = json.loads(app.get("plotly_chart")[0].proto.spec)
    metrics = {metric.label: metric.value for metric in app.metric}
    table = app.dataframe[0].value

    assert chart["layout"]["xaxis"]["title"]["text"].startswith("Variability")
    assert chart["layout"]["yaxis"]["title"]["text"].startswith("Confidence")
    assert [point[0] for point in chart["data"][0]["customdata"]] == list(TRAIN_ROWS)
    assert metrics == {"Easy to learn": "2", "Ambiguous": "1", "Hard to learn": "1"}
    assert table["row_number"].tolist() == [3, 2, 4, 1]
    assert table["text"].iloc[0].startswith("Skirskok Wuraend")

    app.multiselect(key="training_data_region").set_value(["hard"]).run()

    assert app.dataframe[0].value["row_number"].tolist() == [3]


def test_training_data_lists_label_errors(make_app, store, two_runs):
    run_id = two_runs[0]
    issues = LabelIssues(
        row_numbers=TRAIN_ROWS,
        labels=np.asarray([1, 1, 0, 0]),
        label_names=LABEL_NAMES,
        pred_probs=np.asarray([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6]]),
        label_quality=np.asarray([0.9, 0.2, 0.7, 0.4]),
        is_issue=np.asarray([False, True, False, True]),
        flipped=np.asarray([False, True, False, False]),
    )
    store.write_json(run_id, LABEL_ISSUES_FILE, issues.to_dict())
    app = make_app()
    app.session_state["training_data_run"] = run_id
    open_page(app, "training_data")

    assert not app.exception
    table = app.dataframe[-1].value
    metrics = {metric.label: metric.value for metric in app.metric}
    assert table["row_number"].tolist() == [2, 4]
    assert table["suggested_label"].tolist() == ["hallucinated", "supported"]
    assert metrics["Likely label errors"] == "2"
    assert metrics["Precision at k = 1"] == "1.000"
    assert "This run has no training dynamics" in " ".join(info.value for info in app.info)

    app.checkbox(key="training_data_only_issues").uncheck().run()

    assert len(app.dataframe[-1].value) == 4


def test_training_data_find_issues_ranks_rows(make_app, store, two_runs):
    app = make_app()
    app.session_state["training_data_run"] = two_runs[0]
    open_page(app, "training_data")
    assert any("No ranking yet" in info.value for info in app.info)

    app.button(key="training_data_find_issues").click().run()

    assert not app.exception
    assert not app.error
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Rows ranked"] == "4"
    assert (store.run_dir(two_runs[0]) / LABEL_ISSUES_FILE).is_file()


class _RecordingPopen:
    """Stands in for the training worker process, which these tests do not start."""

    def __init__(self, command, **options):
        self.pid = 999_998
        self.returncode = 0

    def poll(self):
        return 0


def test_train_page_stores_mitigations(make_app, store, monkeypatch):
    from dashboard import services

    monkeypatch.setattr(services.subprocess, "Popen", _RecordingPopen)
    app = open_page(make_app(), "train")
    app.number_input(key="train_label_smoothing").set_value(0.1)
    app.checkbox(key="train_set_dropout").check().run()
    app.number_input(key="train_dropout").set_value(0.2)
    app.checkbox(key="train_drop_label_issues").check()
    app.checkbox(key="train_keep_best_epoch").uncheck()

    app.button(key="train_start").click().run()

    assert not app.exception
    config = store.config(store.list_runs()[0].run_id)
    assert config["label_smoothing"] == 0.1
    assert config["dropout"] == 0.2
    assert config["drop_label_issues"] is True
    assert config["keep_best_epoch"] is False
    assert config["record_dynamics"] is True


def test_train_page_keeps_model_dropout_by_default(make_app, store, monkeypatch):
    from dashboard import services

    monkeypatch.setattr(services.subprocess, "Popen", _RecordingPopen)
    app = open_page(make_app(), "train")

    app.button(key="train_start").click().run()

    config = store.config(store.list_runs()[0].run_id)
    assert config["dropout"] is None
    assert config["label_smoothing"] == 0.0
    assert config["keep_best_epoch"] is True


def test_calibration_error_of_known_bins():
    from halluscope.comparison import expected_calibration_error

    probabilities = np.asarray([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])
    gold = [0, 1, 1, 1]

    # Bin 0.8-0.9: confidence 0.9, accuracy 0.5. Bins 0.6-0.7: confidence 0.7 and 0.6, right.
    expected = 0.5 * 0.4 + 0.25 * 0.3 + 0.25 * 0.4
    assert expected_calibration_error(probabilities, gold) == pytest.approx(expected)
    assert expected_calibration_error(np.asarray([[1.0, 0.0]]), [0]) == 0.0
