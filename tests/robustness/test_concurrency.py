"""Two dashboard sessions train and browse at once while threads hammer the run store."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY_TEXTS, open_page, shown_texts, upload

import dashboard.services as services
from halluscope.runs import RunStore

FINISH_TIMEOUT_S = 120
HAMMER_THREADS = 4


def _data_file(label: str) -> bytes:
    rows = [f'"{TINY_TEXTS[index % len(TINY_TEXTS)]} {label} {index}.",{("no", "yes")[index % 2]}'
            for index in range(20)]  # fmt: skip
    return ("text,label\n" + "\n".join(rows) + "\n").encode("utf-8")


def _start_run(app, model_dir: Path, file_name: str):
    upload(app, file_name, _data_file(file_name))
    app.switch_page("views/train.py")
    app.run()
    app.selectbox(key="train_model").set_value("__local__").run()
    app.text_input(key="train_model_path").input(str(model_dir)).run()
    app.number_input(key="train_epochs").set_value(1.0).run()
    app.number_input(key="train_max_length").set_value(32).run()
    app.text_input(key="train_name").input(f"session {file_name}").run()
    app.button(key="train_start").click().run()
    return app


def _hammer(store: RunStore, stop: threading.Event, errors: list[BaseException], counts: list[int]):
    """Create, update and list runs in a loop until ``stop`` is set; record any error."""
    try:
        while not stop.is_set():
            record = store.create_run(kind="hammer", model="m", data="d", config={})
            store.set_status(record.run_id, "running", pid=1)
            store.append_event(record.run_id, {"type": "train_step", "step": 1})
            store.list_runs()
            store.set_status(record.run_id, "completed")
            counts.append(1)
    except BaseException as error:  # noqa: BLE001 - the test reports it
        errors.append(error)


def _wait_finished(store: RunStore, run_ids: list[str]) -> None:
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while time.monotonic() < deadline:
        services._reap_finished_workers()
        if all(not store.get(run_id).is_active for run_id in run_ids):
            return
        time.sleep(0.5)
    raise AssertionError(f"runs {run_ids} still active after {FINISH_TIMEOUT_S} s")


@pytest.mark.integration
def test_two_sessions_train_and_browse(make_app, store, tiny_model_dir):
    stop = threading.Event()
    errors: list[BaseException] = []
    counts: list[int] = []
    threads = [
        threading.Thread(target=_hammer, args=(RunStore(store.home), stop, errors, counts))
        for _ in range(HAMMER_THREADS)
    ]
    for thread in threads:
        thread.start()
    try:
        first = _start_run(make_app(), tiny_model_dir, "first.csv")
        second = _start_run(make_app(), tiny_model_dir, "second.csv")
        first_run = first.session_state["train_watched_run"]
        second_run = second.session_state["train_watched_run"]

        # Both sessions browse the run lists and other pages while the workers train.
        for _ in range(3):
            for app in (first, second):
                open_page(app, "train")
                open_page(app, "predict")
                open_page(app, "data")
        _wait_finished(store, [first_run, second_run])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert errors == []
    assert len(counts) > 10
    assert first_run != second_run
    for app in (first, second):
        assert not app.exception
        assert not any("database is locked" in text for text in shown_texts(app))
    assert first.session_state["data_selection"].display_name == "first.csv"
    assert second.session_state["data_selection"].display_name == "second.csv"
    assert store.get(first_run).status == "completed", store.get(first_run).message
    assert store.get(second_run).status == "completed", store.get(second_run).message
    for run_id in (first_run, second_run):
        log = services.worker_log_tail(store, run_id, max_chars=1_000_000)
        assert "database is locked" not in log
    assert store.config(first_run)["data_path"] != store.config(second_run)["data_path"]

    with sqlite3.connect(store.index_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    hammered = store.list_runs(kind="hammer")
    assert len(hammered) == len(counts)
    assert {record.status for record in hammered} == {"completed"}
    assert len(store.list_runs(kind="classification")) == 2
