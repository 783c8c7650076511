"""What every training run shares: its status life and its Trainer settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainingArguments

from halluscope.runs import RunStore
from halluscope.runs.provenance import record_provenance

logger = logging.getLogger(__name__)

TrainFunction = Callable[[], tuple[dict[str, Any], bool]]
"""Runs the training and returns ``(metrics, cancelled)``."""


def run_with_status(store: RunStore, run_id: str, train: TrainFunction) -> dict[str, Any]:
    """Run ``train`` for ``run_id`` and record the outcome in the run store.

    The run is marked running (with this process's pid) and its
    ``provenance.json`` is written before ``train`` starts. The run is marked
    completed or cancelled after ``train`` returns. If it raises, the
    error becomes the run's message, the run is marked failed and the
    exception is re-raised, so no run stays "running".
    """
    store.set_status(run_id, "running", pid=os.getpid())
    try:
        record_provenance(store, run_id)
    except OSError as error:  # provenance is a record, never a reason to stop the run
        logger.warning("Run %s: could not write provenance.json: %s", run_id, error)
    try:
        metrics, cancelled = train()
    except BaseException as error:
        message = str(error) or type(error).__name__
        if isinstance(error, KeyboardInterrupt):
            message = "Interrupted."
        store.append_event(run_id, {"type": "error", "message": message})
        store.set_status(run_id, "failed", message=message)
        logger.exception("Run %s failed.", run_id)
        raise

    if cancelled:
        store.set_status(run_id, "cancelled", message="Cancelled by the user.")
    else:
        store.set_status(run_id, "completed")
    store.append_event(run_id, {"type": "status", "status": store.get(run_id).status})
    return metrics


def epoch_training_arguments(
    output_dir: str,
    *,
    learning_rate: float,
    epochs: float,
    max_steps: int,
    batch_size: int,
    weight_decay: float,
    warmup_ratio: float,
    seed: int,
    **overrides: Any,
) -> TrainingArguments:
    """Return Trainer settings that evaluate and save once per epoch.

    The checkpoint with the lowest validation loss is restored at the end, so
    a run keeps its best epoch with or without early stopping. CUDA with bf16
    is used when available, the CPU otherwise. ``overrides`` set or replace
    any other ``TrainingArguments`` field.
    """
    use_cuda = torch.cuda.is_available()
    settings: dict[str, Any] = {
        "output_dir": output_dir,
        "learning_rate": learning_rate,
        "num_train_epochs": epochs,
        "max_steps": max_steps,
        "per_device_train_batch_size": batch_size,
        "per_device_eval_batch_size": batch_size,
        "weight_decay": weight_decay,
        "warmup_steps": warmup_ratio,  # a float in [0, 1) is a share of all steps
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
        "logging_steps": 5,
        "logging_first_step": True,
        # The Trainer's default replaces a NaN step loss with the running mean
        # in its logs, which would hide a diverging run from the NaN check.
        "logging_nan_inf_filter": False,
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
        "use_cpu": not use_cuda,
        "bf16": use_cuda and torch.cuda.is_bf16_supported(),
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    settings.update(overrides)
    return TrainingArguments(**settings)
