"""Tests of run provenance: data and weight hashes, versions, and changed data."""

from __future__ import annotations

import hashlib

from halluscope.runs import RunStore
from halluscope.runs.provenance import (
    PROVENANCE_FILE,
    collect_provenance,
    data_changed,
    read_provenance,
    record_provenance,
)


def _model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    return folder


def test_collect_provenance_hashes_data_and_weights(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("text,label\na,b\n", encoding="utf-8")
    folder = _model_folder(tmp_path)

    provenance = collect_provenance({"data_path": str(data), "model": str(folder)})

    assert provenance["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert provenance["data"]["bytes"] == data.stat().st_size
    assert provenance["base_model"]["weights_sha256"] == {
        "model.safetensors": hashlib.sha256(b"weights").hexdigest()
    }
    assert set(provenance["versions"]) == {"torch", "transformers", "peft", "halluscope", "python"}
    assert provenance["versions"]["halluscope"] == "0.1.0"


def test_collect_provenance_records_errors(tmp_path):
    provenance = collect_provenance(
        {"data_path": str(tmp_path / "gone.csv"), "model": "no-such-model"}
    )

    assert provenance["data"]["sha256"] is None
    assert "gone.csv" in provenance["data"]["error"]
    assert "no-such-model" in provenance["base_model"]["error"]


def test_record_and_detect_changed_data(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("text,label\na,b\n", encoding="utf-8")
    store = RunStore(tmp_path / "home")
    run_id = store.create_run(
        kind="classification",
        model=str(_model_folder(tmp_path)),
        data=str(data),
        config={"data_path": str(data), "model": str(tmp_path / "model")},
    ).run_id

    assert data_changed(store, run_id) is None
    record_provenance(store, run_id)

    assert (store.run_dir(run_id) / PROVENANCE_FILE).is_file()
    assert read_provenance(store, run_id)["data"]["path"] == str(data)
    assert data_changed(store, run_id) is False
    data.write_text("text,label\na,c\n", encoding="utf-8")
    assert data_changed(store, run_id) is True
    data.unlink()
    assert data_changed(store, run_id) is None


def test_run_with_status_records_provenance(tmp_path):
    from halluscope.training.lifecycle import run_with_status

    data = tmp_path / "data.csv"
    data.write_text("x\n", encoding="utf-8")
    store = RunStore(tmp_path / "home")
    run_id = store.create_run(
        kind="classification", model="m", data=str(data), config={"data_path": str(data)}
    ).run_id

    run_with_status(store, run_id, lambda: ({"accuracy": 1.0}, False))

    assert store.get(run_id).status == "completed"
    recorded = read_provenance(store, run_id)
    assert recorded["data"]["sha256"] == hashlib.sha256(b"x\n").hexdigest()
    assert "error" in recorded["base_model"]
