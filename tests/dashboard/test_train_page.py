"""Train page: run list, progress of a running run, failures, Start and Cancel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import open_page

import dashboard.services as services
from halluscope.runs import RunStore
from halluscope.training import ClassifierTrainConfig


def _config() -> ClassifierTrainConfig:
    return ClassifierTrainConfig(
        model="minilm", data_path="/data/claims.csv", text_column="context", label_column="label"
    )


def _create_run(store: RunStore, name: str, status: str, **fields) -> str:
    config = _config()
    record = store.create_run(
        kind="classification", model="minilm", data=config.data_path, config=config.to_dict(),
        name=name,
    )  # fmt: skip
    store.set_status(record.run_id, status, **fields)
    return record.run_id


class FakePopen:
    """Records the worker command instead of starting a process."""

    calls: list[tuple[list[str], dict]] = []

    def __init__(self, command, **options):
        FakePopen.calls.append((list(command), options))
        self.pid = 999_999
        self.returncode = 0

    def poll(self):
        return 0


@pytest.fixture
def fake_popen(monkeypatch):
    FakePopen.calls = []
    monkeypatch.setattr(services.subprocess, "Popen", FakePopen)
    return FakePopen


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_completed_run_listed_with_accuracy(make_app, store):
    run_id = _create_run(store, "demo run", "completed")
    store.set_metrics(run_id, {"accuracy": 0.875, "f1_macro": 0.85})

    app = open_page(make_app(), "train")

    assert not app.exception
    runs = app.dataframe[0].value
    assert list(runs["run_id"]) == [run_id]
    assert list(runs["status"]) == ["completed"]
    assert list(runs["accuracy"]) == [0.875]
    assert list(runs["model"]) == ["minilm"]
    assert app.selectbox(key="train_run").value == run_id
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Final accuracy"] == "0.875"


def test_run_list_in_chinese(make_app, store):
    _create_run(store, "demo run", "completed")

    app = open_page(make_app("zh_CN"), "train")

    assert list(app.dataframe[0].value["status"]) == ["已完成"]


def test_failed_run_shows_message(make_app, store):
    _create_run(store, "broken", "failed", message="The training loss became nan at step 3.")

    app = open_page(make_app(), "train")

    assert not app.exception
    assert [error.value for error in app.error] == [
        "The run failed: The training loss became nan at step 3."
    ]


def test_running_run_shows_progress(make_app, store, sleeper):
    run_id = _create_run(store, "live", "running", pid=sleeper.pid)
    store.append_event(run_id, {"type": "train_begin", "max_steps": 20})
    for step, loss in ((1, 0.71), (5, 0.69)):
        store.append_event(
            run_id, {"type": "train_step", "step": step, "max_steps": 20, "loss": loss, "eta_s": 95}
        )
    store.append_event(
        run_id,
        {"type": "eval", "step": 10, "max_steps": 20, "eval_loss": 0.6, "eval_accuracy": 0.75,
         "eta_s": 65},
    )  # fmt: skip

    app = open_page(make_app(), "train")

    assert not app.exception
    progress = app.get("progress")
    assert len(progress) == 1
    assert progress[0].proto.value == 50
    assert progress[0].proto.text == "Step 10 of 20 · time left 1:05"
    chart = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["xaxis"]["title"]["text"] == "Step"
    assert chart["layout"]["yaxis"]["title"]["text"] == "Loss"
    assert [trace["name"] for trace in chart["data"]] == ["Training loss", "Validation loss"]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Validation accuracy"] == "0.750"
    assert app.button(key="train_cancel").label == "Cancel run"


def test_running_probe_shows_progress(make_app, store, sleeper):
    run_id = _create_run(store, "live", "running", pid=sleeper.pid)
    store.append_event(run_id, {"type": "probe", "done": 40, "total": 160})

    app = open_page(make_app(), "train")

    assert not app.exception
    progress = app.get("progress")
    assert len(progress) == 1
    assert progress[0].proto.value == 25
    assert progress[0].proto.text == (
        "Asking the base model the training questions first: 40 of 160 answers."
    )


def test_cancel_stops_worker(make_app, store, sleeper):
    run_id = _create_run(store, "live", "running", pid=sleeper.pid)
    app = open_page(make_app(), "train")

    app.button(key="train_cancel").click().run()

    assert not app.exception
    assert store.cancel_requested(run_id)
    assert sleeper.wait(timeout=10) == -15


def test_start_launches_worker(make_app, store, home, fake_popen):
    app = open_page(make_app(), "train")
    app.number_input(key="train_epochs").set_value(2.0)
    app.number_input(key="train_patience").set_value(0)
    app.text_input(key="train_name").input("first try")

    app.button(key="train_start").click().run()

    assert not app.exception
    runs = store.list_runs()
    assert len(runs) == 1
    assert runs[0].name == "first try"
    assert runs[0].status == "queued"
    config = store.config(runs[0].run_id)
    assert config["epochs"] == 2.0
    assert config["early_stopping_patience"] is None
    assert config["text_pair_column"] == "claim"
    assert config["data_path"].endswith("claims.csv")
    command, options = fake_popen.calls[0]
    assert command[1:] == [
        "-m", "halluscope.cli", "train", "--run-id", runs[0].run_id, "--home", str(home),
    ]  # fmt: skip
    assert options["start_new_session"] is True
    assert app.selectbox(key="train_run").value == runs[0].run_id


def test_start_rejects_missing_local_model(make_app, store, tmp_path, fake_popen):
    app = open_page(make_app(), "train")
    app.selectbox(key="train_model").set_value("__local__").run()
    app.text_input(key="train_model_path").input(str(tmp_path / "no-such-model"))

    app.button(key="train_start").click().run()

    assert not app.exception
    assert app.error[0].value.startswith("The run was not started: Unknown model")
    assert store.list_runs() == []
    assert fake_popen.calls == []


def test_start_blocked_by_invalid_data(make_app, store, fake_popen):
    app = make_app().run()
    app.selectbox(key="data_label_column").set_value("context").run()

    app.switch_page("views/train.py").run()

    assert not app.exception
    assert app.error[0].value.startswith("The data chosen on the Data page is not valid")
    assert len(app.get("button")) == 0


def test_dead_worker_reaped(make_app, store):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=10)
    run_id = _create_run(store, "crashed", "running", pid=finished.pid)

    app = open_page(make_app(), "train")

    assert store.get(run_id).status == "failed"
    assert app.error[0].value.startswith("The run failed: The training process stopped")


def test_runs_listed_newest_first(make_app, store):
    older = _create_run(store, "older", "completed")
    time.sleep(1.1)
    newer = _create_run(store, "newer", "cancelled", message="Cancelled by the user.")

    app = open_page(make_app(), "train")

    assert list(app.dataframe[0].value["run_id"]) == [newer, older]
    assert os.path.isdir(store.run_dir(older))
