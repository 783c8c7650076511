"""Crashes during training: SIGKILL, NaN loss and a full disk leave a failed, resumable run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPOSITORY_ROOT, write_tiny_classifier, write_tiny_data
from transformers import Trainer

import dashboard.services as services
from halluscope.cli import main
from halluscope.runs import RunStore
from halluscope.training import ClassifierTrainConfig, NonFiniteLossError, run_classifier_training
from halluscope.training.classifier import CHECKPOINT_FOLDER, complete_checkpoints
from halluscope.training.events import CheckpointSaveError

KILL_TIMEOUT_S = 120
REAP_WITHIN_S = 5.0


def _config(model_dir: Path, data: Path, **overrides) -> ClassifierTrainConfig:
    settings = dict(
        model=str(model_dir),
        data_path=str(data),
        text_column="text",
        label_column="label",
        epochs=3,
        batch_size=4,
        max_length=32,
        learning_rate=1e-3,
    )
    settings.update(overrides)
    return ClassifierTrainConfig(**settings)


def _create(store: RunStore, config: ClassifierTrainConfig) -> str:
    return store.create_run(
        kind=config.kind, model=config.model, data=config.data_path, config=config.to_dict()
    ).run_id


def _wait_for_checkpoint(folder: Path, process: subprocess.Popen) -> Path:
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while time.monotonic() < deadline:
        found = complete_checkpoints(folder)
        if found:
            return found[0]
        assert process.poll() is None, "the worker exited before its first checkpoint"
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint in {folder} after {KILL_TIMEOUT_S} s")


@pytest.mark.integration
def test_sigkill_marks_failed_and_resumes(
    store, home, tiny_model_dir, tmp_path, capsys, keep_signal_handlers
):
    data = write_tiny_data(tmp_path / "data.csv", rows=200)
    config = _config(tiny_model_dir, data, epochs=3, batch_size=8)
    run_id = _create(store, config)
    command = [sys.executable, "-m", "halluscope.cli", "train", "--run-id", run_id,
               "--home", str(home)]  # fmt: skip
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(command, cwd=REPOSITORY_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        first = _wait_for_checkpoint(store.run_dir(run_id) / CHECKPOINT_FOLDER, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        log.close()
    assert process.returncode == -signal.SIGKILL
    assert store.get(run_id).status == "running"

    noticed = time.monotonic()
    records = services.list_runs(store)
    reap_s = time.monotonic() - noticed

    [record] = records
    assert record.status == "failed"
    assert reap_s < REAP_WITHIN_S
    assert "stopped unexpectedly" in record.message
    assert f"halluscope train --resume {run_id}" in record.message
    assert store.read_events(run_id)  # the store stays readable after the kill
    first_step = json.loads((first / "trainer_state.json").read_text())["global_step"]
    assert first_step > 0

    status = main(["train", "--resume", run_id, "--home", str(home), "--json"])

    result = json.loads(capsys.readouterr().out)
    assert status == 0
    assert result["status"] == "completed"
    assert store.get(run_id).status == "completed"
    assert result["steps"] == 3 * 20  # 160 training rows / batch 8 = 20 steps per epoch
    assert (store.run_dir(run_id) / "model" / "model.safetensors").is_file()
    begins = [event for event in store.read_events(run_id) if event["type"] == "train_begin"]
    assert len(begins) == 2


def test_resume_without_checkpoint_fails_clearly(
    store, home, tiny_model_dir, tmp_path, capsys, keep_signal_handlers
):
    config = _config(tiny_model_dir, write_tiny_data(tmp_path / "data.csv"))
    run_id = _create(store, config)
    store.set_status(run_id, "failed", message="killed")

    status = main(["train", "--resume", run_id, "--home", str(home)])

    err = capsys.readouterr().err
    assert status == 1
    assert "has no complete checkpoint" in err
    assert "Traceback" not in err
    assert store.get(run_id).status == "failed"


def test_resume_completed_run_refused(store, home, tiny_model_dir, tmp_path, capsys):
    config = _config(tiny_model_dir, write_tiny_data(tmp_path / "data.csv"))
    run_id = _create(store, config)
    store.set_status(run_id, "completed")

    status = main(["train", "--resume", run_id, "--home", str(home)])

    assert status == 2
    assert "already completed" in capsys.readouterr().err


def test_nan_loss_stops_run(store, tmp_path):
    model_dir = write_tiny_classifier(tmp_path / "nan-model", nan_weights=True)
    config = _config(model_dir, write_tiny_data(tmp_path / "data.csv"))
    run_id = _create(store, config)

    with pytest.raises(NonFiniteLossError) as raised:
        run_classifier_training(store, run_id, config)

    message = str(raised.value)
    assert "The training loss became nan in step 1" in message
    assert "Lower the learning rate" in message
    record = store.get(run_id)
    assert record.status == "failed"
    assert record.message == message


def test_full_disk_keeps_previous_checkpoint(store, tiny_model_dir, tmp_path, monkeypatch):
    config = _config(tiny_model_dir, write_tiny_data(tmp_path / "data.csv"), epochs=3)
    run_id = _create(store, config)
    real_save = Trainer._save_checkpoint
    saves = []

    def save_until_disk_full(self, model, trial):
        saves.append(self.state.global_step)
        if len(saves) == 2:
            # A partly written checkpoint, as a full disk leaves it.
            partial = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
            partial.mkdir(parents=True)
            (partial / "model.safetensors").write_bytes(b"\0" * 10)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, model, trial)

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_until_disk_full)

    with pytest.raises(CheckpointSaveError) as raised:
        run_classifier_training(store, run_id, config)

    checkpoints = store.run_dir(run_id) / CHECKPOINT_FOLDER
    message = str(raised.value)
    assert f"saving a checkpoint in {checkpoints} failed at step {saves[1]}" in message
    assert "No space left on device" in message
    assert f"checkpoint-{saves[0]}, is intact" in message
    assert f"halluscope train --resume {run_id}" in message
    record = store.get(run_id)
    assert record.status == "failed"
    assert record.message == message
    assert [path.name for path in complete_checkpoints(checkpoints)] == [f"checkpoint-{saves[0]}"]
    assert not (checkpoints / f"checkpoint-{saves[1]}").exists()

    monkeypatch.setattr(Trainer, "_save_checkpoint", real_save)
    metrics = run_classifier_training(store, run_id, config, resume=True)

    assert store.get(run_id).status == "completed"
    assert metrics["steps"] == saves[0] * 3


def test_long_inputs_fit_small_position_table(store, tmp_path):
    model_dir = write_tiny_classifier(tmp_path / "short-model", max_positions=32)
    data = write_tiny_data(tmp_path / "data.csv", extra="word " * 300)
    config = _config(model_dir, data, max_length=192, epochs=1)
    run_id = _create(store, config)

    metrics = run_classifier_training(store, run_id, config)

    warnings = [
        event["message"] for event in store.read_events(run_id) if event["type"] == "warning"
    ]
    assert metrics["steps"] > 0
    assert "max_length 192 is more than the model accepts; examples are cut to 32 tokens." in (
        warnings
    )
    assert any(
        message.startswith("24 of 24 examples are longer than 32 tokens") for message in warnings
    )
