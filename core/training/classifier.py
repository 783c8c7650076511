"""Fine-tune a sequence classifier with the Hugging Face Trainer.

``run_classifier_training`` is the whole life of one run: read and validate the
data, split it, train with progress events, save the model and the validation
predictions, and record the final metrics and status in the run store. A run
that fails or is cancelled is marked so; it never stays "running".

Checkpoints are saved once per epoch under ``<run folder>/checkpoints``. A run
that was killed, crashed or ran out of disk space keeps them, and
``resume=True`` continues it from the last complete one.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    set_seed,
)

from halluscope.data import (
    ClassificationData,
    ClassificationSchema,
    DataError,
    format_rows,
    prepare_classification,
    read_table,
)
from halluscope.inference.runtime import clamp_max_length
from halluscope.models import (
    ModelError,
    load_sequence_classifier,
    load_tokenizer,
    resolve_model,
)
from halluscope.runs import RunStore
from halluscope.training.config import ClassifierTrainConfig
from halluscope.training.dynamics import DYNAMICS_FILE, TrainingDynamicsCallback
from halluscope.training.events import (
    CheckpointSaveError,
    ProgressEventsCallback,
    ResumeError,
    StopSignal,
)
from halluscope.training.lifecycle import epoch_training_arguments, run_with_status
from halluscope.training.splits import SPLIT_FILE, save_split

logger = logging.getLogger(__name__)

MODEL_FOLDER = "model"
CHECKPOINT_FOLDER = "checkpoints"
CHECKPOINT_COMPLETE_FILE = "trainer_state.json"
"""The Trainer writes this file last when it saves a checkpoint, so it marks a complete one."""

_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class _EncodedDataset(torch.utils.data.Dataset):
    """Tokenized examples, padded per batch by the data collator."""

    def __init__(self, encodings: dict[str, list], labels: Sequence[int]):
        self.encodings = encodings
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {key: values[index] for key, values in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


def load_classification_data(config: ClassifierTrainConfig) -> ClassificationData:
    """Read and validate the training file named in ``config``."""
    table = read_table(Path(config.data_path))
    schema = ClassificationSchema(
        text=config.text_column, label=config.label_column, text_pair=config.text_pair_column
    )
    return prepare_classification(table, schema, label_map=config.label_map)


def file_sha256(path: str | os.PathLike) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None,
    max_length: int,
) -> dict[str, list]:
    """Tokenize texts (and pairs) without padding; the context is truncated first."""
    return tokenizer(
        list(texts),
        list(text_pairs) if text_pairs is not None else None,
        truncation="only_first" if text_pairs is not None else True,
        max_length=max_length,
    )


def truncated_rows(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None,
    max_length: int,
) -> list[int]:
    """Return the 0-based positions of rows longer than ``max_length`` tokens before truncation."""
    lengths = tokenizer(
        list(texts),
        list(text_pairs) if text_pairs is not None else None,
        truncation=False,
        verbose=False,
    )["input_ids"]
    return [position for position, ids in enumerate(lengths) if len(ids) > max_length]


def complete_checkpoints(folder: Path) -> list[Path]:
    """Return the complete ``checkpoint-N`` folders in ``folder``, oldest step first.

    A checkpoint is complete when the Trainer wrote its ``trainer_state.json``,
    which it does after the weights, optimizer and scheduler states.
    """
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _CHECKPOINT_NAME.match(child.name)
        if match and child.is_dir() and (child / CHECKPOINT_COMPLETE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def remove_incomplete_checkpoints(folder: Path) -> list[Path]:
    """Delete ``checkpoint-N`` folders that lack ``trainer_state.json``; return them."""
    if not folder.is_dir():
        return []
    removed = []
    for child in sorted(folder.iterdir()):
        if _CHECKPOINT_NAME.match(child.name) and child.is_dir():
            if not (child / CHECKPOINT_COMPLETE_FILE).is_file():
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    for path in removed:
        logger.warning("Removed the incomplete checkpoint %s.", path)
    return removed


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Return accuracy, macro F1 and (for two classes) AUROC of ``logits`` against ``labels``."""
    probabilities = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).numpy()
    predicted = probabilities.argmax(axis=-1)
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1_macro": float(f1_score(labels, predicted, average="macro")),
    }
    if probabilities.shape[1] == 2 and len(np.unique(labels)) == 2:
        metrics["auroc"] = float(roc_auc_score(labels, probabilities[:, 1]))
    return metrics


def _compute_metrics(eval_prediction) -> dict[str, float]:
    return classification_metrics(eval_prediction.predictions, eval_prediction.label_ids)


def run_classifier_training(
    store: RunStore,
    run_id: str,
    config: ClassifierTrainConfig,
    *,
    stop_signal: StopSignal | None = None,
    resume: bool = False,
    allow_pickle: bool = False,
) -> dict[str, Any]:
    """Fine-tune a classifier for ``run_id``; return the final metrics.

    The run is marked running at the start and completed, cancelled or failed
    at the end. Exceptions are re-raised after the run is marked failed.

    Args:
        store: The run store.
        run_id: The run to train, created by ``RunStore.create_run``.
        config: The training settings.
        stop_signal: Turns SIGTERM and SIGINT into a cancel request.
        resume: Continue from the last complete checkpoint in the run folder.
        allow_pickle: Accept a local model folder with pickle weights only.

    Raises:
        DataError: The data file is invalid (the run is marked failed first).
        ModelError: The model cannot be resolved or is unsafe to load.
        ResumeError: ``resume`` is set but no complete checkpoint exists.
        CheckpointSaveError: The disk filled up while a checkpoint was saved.
        NonFiniteLossError: The training loss became NaN or infinite.
    """
    # Invalid data or an unknown model is the user's to fix, so it fails the
    # run with its message and no traceback in the log.
    try:
        data = load_classification_data(config)
        resolve_model(config.model, allow_hub=config.allow_hub, allow_pickle=allow_pickle)
        checkpoint = None
        if resume:
            _check_data_unchanged(store, run_id, config)
            checkpoint = _checkpoint_to_resume(store, run_id)
    except (DataError, ModelError, ResumeError) as error:
        message = getattr(error, "message", None) or str(error)
        store.append_event(run_id, {"type": "error", "message": message})
        store.set_status(run_id, "failed", message=message)
        logger.error("Run %s failed: %s", run_id, message)
        raise

    return run_with_status(
        store,
        run_id,
        lambda: _train(store, run_id, config, data, stop_signal, checkpoint, allow_pickle),
    )


def _check_data_unchanged(store: RunStore, run_id: str, config: ClassifierTrainConfig) -> None:
    """Raise ResumeError when the data file differs from the one the run started on."""
    started = [event for event in store.read_events(run_id) if event.get("type") == "data"]
    if not started or "data_sha256" not in started[0]:
        return
    if file_sha256(config.data_path) != started[0]["data_sha256"]:
        raise ResumeError(
            f"The data file {config.data_path} changed since run '{run_id}' started, so its "
            "checkpoints belong to other data. Start a new run instead of resuming."
        )


def _checkpoint_to_resume(store: RunStore, run_id: str) -> Path:
    """Return the last complete checkpoint of ``run_id`` after removing incomplete ones."""
    folder = store.run_dir(run_id) / CHECKPOINT_FOLDER
    remove_incomplete_checkpoints(folder)
    checkpoints = complete_checkpoints(folder)
    if not checkpoints:
        raise ResumeError(
            f"Run '{run_id}' has no complete checkpoint in {folder} to resume from; it "
            "stopped before its first epoch ended. Start a new run with the same settings."
        )
    logger.info("Run %s: resuming from %s.", run_id, checkpoints[-1])
    return checkpoints[-1]


def _train(
    store: RunStore,
    run_id: str,
    config: ClassifierTrainConfig,
    data: ClassificationData,
    stop_signal: StopSignal | None,
    checkpoint: Path | None,
    allow_pickle: bool,
) -> tuple[dict[str, Any], bool]:
    run_dir = store.run_dir(run_id)
    set_seed(config.seed)

    # Data: a stratified split with a fixed seed, so a resumed run gets the same split.
    for warning in data.warnings:
        store.append_event(run_id, {"type": "warning", "message": warning})
    indices = np.arange(len(data.labels))
    train_idx, val_idx = train_test_split(
        indices,
        test_size=config.validation_fraction,
        random_state=config.seed,
        stratify=np.asarray(data.labels),
    )
    if config.drop_label_issues:
        train_idx = _drop_label_issues(store, run_id, config, data, train_idx)
    save_split(run_dir / SPLIT_FILE, data, train_idx, val_idx)
    store.append_event(
        run_id,
        {
            "type": "data",
            "rows": len(data.labels),
            "train_rows": len(train_idx),
            "validation_rows": len(val_idx),
            "dropped_rows": data.dropped,
            "labels": list(data.label_names),
            "data_sha256": file_sha256(config.data_path),
        },
    )

    # Model and tokenizer. Training uses the fused attention kernels; the
    # explanations reload the saved model with eager attention.
    resolved = resolve_model(config.model, allow_hub=config.allow_hub, allow_pickle=allow_pickle)
    tokenizer = load_tokenizer(config.model, allow_hub=config.allow_hub, allow_pickle=allow_pickle)
    id2label = dict(enumerate(data.label_names))
    model = load_sequence_classifier(
        config.model,
        id2label=id2label,
        attention="sdpa",
        allow_hub=config.allow_hub,
        allow_pickle=allow_pickle,
    )
    if config.dropout is not None:
        set_dropout(model, config.dropout)
    logger.info("Run %s: fine-tuning %s on %d rows.", run_id, resolved.path, len(train_idx))

    # Inputs longer than the position table would index past it, so the
    # token limit is capped at what the model and tokenizer accept.
    max_length = clamp_max_length(model, tokenizer, config.max_length)
    if max_length < config.max_length:
        store.append_event(
            run_id,
            {
                "type": "warning",
                "message": f"max_length {config.max_length} is more than the model accepts; "
                f"examples are cut to {max_length} tokens.",
            },
        )
    _warn_truncated_rows(store, run_id, data, tokenizer, max_length)

    def subset(rows: np.ndarray) -> _EncodedDataset:
        texts = [data.texts[i] for i in rows]
        pairs = [data.text_pairs[i] for i in rows] if data.text_pairs is not None else None
        return _EncodedDataset(
            encode(tokenizer, texts, pairs, max_length), [data.labels[i] for i in rows]
        )

    train_dataset, val_dataset = subset(train_idx), subset(val_idx)

    # Training, keeping the epoch with the lowest validation loss.
    arguments = epoch_training_arguments(
        str(run_dir / CHECKPOINT_FOLDER),
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        seed=config.seed,
        per_device_eval_batch_size=max(config.batch_size, 32),
        save_only_model=False,
        label_smoothing_factor=config.label_smoothing,
        load_best_model_at_end=config.keep_best_epoch,
    )
    progress = ProgressEventsCallback(store, run_id, stop_signal)
    callbacks: list = [progress]
    if config.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
    if config.record_dynamics:
        callbacks.append(
            TrainingDynamicsCallback(
                train_dataset,
                DataCollatorWithPadding(tokenizer),
                [data.row_numbers[i] for i in train_idx],
                data.label_names,
                run_dir / DYNAMICS_FILE,
                batch_size=max(config.batch_size, 32),
            )
        )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train_dataset,
        eval_dataset=val_dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=_compute_metrics,
        callbacks=callbacks,
    )
    # With tqdm off, the Trainer prints each log dict on stdout. Stdout is kept
    # for the CLI's result, so progress goes to the run's events and the log.
    trainer.remove_callback(PrinterCallback)
    _train_with_checkpoints(trainer, run_id, run_dir / CHECKPOINT_FOLDER, checkpoint)

    if progress.cancelled:
        return {}, True

    # Final evaluation of the kept model, then save it with its tokenizer.
    eval_output = trainer.predict(val_dataset)
    metrics = {
        **classification_metrics(eval_output.predictions, eval_output.label_ids),
        "eval_loss": float(eval_output.metrics.get("test_loss", float("nan"))),
        "train_rows": int(len(train_idx)),
        "validation_rows": int(len(val_idx)),
        "epochs_run": float(trainer.state.epoch or 0.0),
        "steps": int(trainer.state.global_step),
    }
    model_dir = run_dir / MODEL_FOLDER
    trainer.save_model(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    store.write_json(run_id, "validation_logits.json", eval_output.predictions.tolist())
    shutil.rmtree(run_dir / CHECKPOINT_FOLDER, ignore_errors=True)

    store.set_metrics(run_id, metrics)
    store.append_event(run_id, {"type": "metrics", **metrics})
    logger.info("Run %s finished: %s", run_id, metrics)
    return metrics, False


def set_dropout(model: torch.nn.Module, probability: float) -> None:
    """Set every dropout layer of ``model`` and the dropout fields of its config to ``probability``.

    The config fields are set too, so the saved model reloads with the same values.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = probability
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        if hasattr(model.config, name):
            setattr(model.config, name, probability)


def _drop_label_issues(
    store: RunStore,
    run_id: str,
    config: ClassifierTrainConfig,
    data: ClassificationData,
    train_idx: np.ndarray,
) -> np.ndarray:
    """Return ``train_idx`` without the rows that the label-error ranking marks as likely wrong."""
    from halluscope.training.embeddings import load_encoder
    from halluscope.training.label_errors import rank_label_issues
    from halluscope.training.splits import SplitExamples

    examples = SplitExamples(
        texts=tuple(data.texts[i] for i in train_idx),
        text_pairs=(
            tuple(data.text_pairs[i] for i in train_idx) if data.text_pairs is not None else None
        ),
        labels=tuple(int(data.labels[i]) for i in train_idx),
        label_names=tuple(data.label_names),
        row_numbers=tuple(int(data.row_numbers[i]) for i in train_idx),
    )
    encoder = load_encoder(config.model, max_length=config.max_length, allow_hub=config.allow_hub)
    issues = rank_label_issues(examples, encoder, seed=config.seed)
    dropped = [int(examples.row_numbers[i]) for i in np.flatnonzero(issues.is_issue)]
    message = (
        f"Left out {len(dropped)} of {len(train_idx)} training rows marked as likely label "
        f"errors ({format_rows(dropped)})."
        if dropped
        else "No training row was marked as a likely label error, so none was left out."
    )
    store.append_event(run_id, {"type": "label_issues_dropped", "rows": dropped})
    store.append_event(run_id, {"type": "warning", "message": message})
    logger.info("Run %s: %s", run_id, message)
    return np.asarray(train_idx)[~issues.is_issue]


def _warn_truncated_rows(
    store: RunStore,
    run_id: str,
    data: ClassificationData,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
) -> None:
    """Add a warning event naming the data rows that tokenization cuts to ``max_length``."""
    positions = truncated_rows(tokenizer, data.texts, data.text_pairs, max_length)
    if not positions:
        return
    rows = [data.row_numbers[position] for position in positions]
    what = "context" if data.text_pairs is not None else "text"
    message = (
        f"{len(rows)} of {len(data.texts)} examples are longer than {max_length} tokens "
        f"({format_rows(rows)}); their {what} is cut to fit."
    )
    logger.warning("Run %s: %s", run_id, message)
    store.append_event(run_id, {"type": "warning", "message": message})


def _train_with_checkpoints(
    trainer: Trainer, run_id: str, checkpoint_dir: Path, checkpoint: Path | None
) -> None:
    """Run ``trainer.train``, from ``checkpoint`` when given, and explain a full disk."""
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except OSError as error:
        if error.errno not in _DISK_FULL_ERRNOS:
            raise
        remove_incomplete_checkpoints(checkpoint_dir)
        kept = complete_checkpoints(checkpoint_dir)
        if kept:
            kept_text = f"The last complete checkpoint, {kept[-1].name}, is intact."
            fix = f"Free disk space, then continue with `halluscope train --resume {run_id}`."
        else:
            kept_text = "No complete checkpoint was saved before."
            fix = "Free disk space, then start the run again."
        raise CheckpointSaveError(
            f"The disk is full: saving a checkpoint in {checkpoint_dir} failed at step "
            f"{trainer.state.global_step} ({error.strerror or error}). {kept_text} {fix}"
        ) from error
