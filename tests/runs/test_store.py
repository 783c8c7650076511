"""Tests of the run store: index, atomic files, status changes and crash recovery."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from halluscope.runs import RunNotFoundError, RunStore, validate_run_id


def make_run(store: RunStore, **overrides):
    values = {"kind": "classification", "model": "minilm", "data": "claims.csv", "config": {}}
    values.update(overrides)
    return store.create_run(**values)


def test_create_run_writes_config_and_index(tmp_path):
    store = RunStore(tmp_path)
    record = make_run(store, config={"learning_rate": 5e-5}, name="first")

    assert record.status == "queued"
    assert record.name == "first"
    assert store.config(record.run_id) == {"learning_rate": 5e-5}
    assert [r.run_id for r in store.list_runs()] == [record.run_id]


def test_store_home_from_environment(store_home):
    store = RunStore()

    assert store.home == store_home.resolve()
    assert (store_home / "index.sqlite").is_file()


def test_status_and_metrics_round_trip(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id

    store.set_status(run_id, "running", pid=1234)
    store.set_metrics(run_id, {"accuracy": 0.9})
    store.set_status(run_id, "completed")
    record = store.get(run_id)

    assert record.status == "completed"
    assert record.pid == 1234
    assert record.metrics == {"accuracy": 0.9}
    assert json.loads((store.run_dir(run_id) / "metrics.json").read_text()) == {"accuracy": 0.9}


def test_invalid_status_rejected(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id

    with pytest.raises(ValueError, match="Invalid status 'done'"):
        store.set_status(run_id, "done")


@pytest.mark.parametrize("bad_id", ["../etc", "a/b", "/abs", "UPPER-case", "x", ""])
def test_run_id_traversal_rejected(bad_id):
    with pytest.raises(ValueError, match="Invalid run id"):
        validate_run_id(bad_id)


def test_file_name_cannot_leave_run_folder(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id

    with pytest.raises(ValueError, match="must stay inside the run folder"):
        store.write_json(run_id, "../../escape.json", {})


def test_unknown_run_raises(tmp_path):
    store = RunStore(tmp_path)

    with pytest.raises(RunNotFoundError, match="No run with id 'nope-123'"):
        store.get("nope-123")


def test_events_skip_partial_last_line(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id
    store.append_event(run_id, {"type": "train_step", "step": 1, "loss": 0.7})
    with (store.run_dir(run_id) / "events.jsonl").open("a") as stream:
        stream.write('{"type": "train_st')

    events = store.read_events(run_id)

    assert len(events) == 1
    assert events[0]["loss"] == 0.7


def test_dead_worker_marked_failed(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id
    worker = subprocess.Popen([sys.executable, "-c", "pass"])
    worker.wait()
    store.set_status(run_id, "running", pid=worker.pid)

    reaped = store.reap_stale_runs()

    assert reaped == [run_id]
    record = store.get(run_id)
    assert record.status == "failed"
    assert "stopped unexpectedly" in record.message


def test_live_worker_not_reaped(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        store.set_status(run_id, "running", pid=worker.pid)
        assert store.reap_stale_runs() == []
        assert store.get(run_id).status == "running"
    finally:
        worker.kill()
        worker.wait()


def test_cancel_of_queued_run_without_worker(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id

    store.request_cancel(run_id)

    assert store.cancel_requested(run_id)
    assert store.get(run_id).status == "cancelled"


def test_concurrent_writers_keep_index_consistent(tmp_path):
    store = RunStore(tmp_path)
    errors: list[Exception] = []

    def create_many():
        try:
            local = RunStore(tmp_path)
            for _ in range(10):
                run_id = make_run(local).run_id
                local.set_status(run_id, "running", pid=1)
                local.set_status(run_id, "completed")
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=create_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    records = store.list_runs()
    assert len(records) == 40
    assert {record.status for record in records} == {"completed"}


def test_delete_removes_folder(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store).run_id
    store.set_status(run_id, "completed")

    store.delete(run_id)

    assert not store.run_dir(run_id).exists()
    assert store.list_runs() == []
