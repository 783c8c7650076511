"""Fine-tune a sequence classifier with the Hugging Face Trainer.

``run_classifier_training`` is the whole life of one run: read and validate the
data, split it, train with progress events, save the model and the validation
predictions, and record the final metrics and status in the run store. A run
that fails or is cancelled is marked so; it never stays "running".
"""

from __future__ import annotations

import hashlib
import logging
import os
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
    prepare_classification,
    read_table,
)
from halluscope.models import load_sequence_classifier, load_tokenizer, resolve_model
from halluscope.runs import RunStore
from halluscope.training.config import ClassifierTrainConfig
from halluscope.training.events import ProgressEventsCallback, StopSignal
from halluscope.training.lifecycle import epoch_training_arguments, run_with_status
from halluscope.training.splits import SPLIT_FILE, save_split

logger = logging.getLogger(__name__)

MODEL_FOLDER = "model"
CHECKPOINT_FOLDER = "checkpoints"


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
) -> dict[str, Any]:
    """Fine-tune a classifier for ``run_id``; return the final metrics.

    The run is marked running at the start and completed, cancelled or failed
    at the end. Exceptions are re-raised after the run is marked failed.
    """
    return run_with_status(store, run_id, lambda: _train(store, run_id, config, stop_signal))


def _train(
    store: RunStore,
    run_id: str,
    config: ClassifierTrainConfig,
    stop_signal: StopSignal | None,
) -> tuple[dict[str, Any], bool]:
    run_dir = store.run_dir(run_id)
    set_seed(config.seed)

    # Data: validate, then a stratified split with a fixed seed.
    data = load_classification_data(config)
    for warning in data.warnings:
        store.append_event(run_id, {"type": "warning", "message": warning})
    indices = np.arange(len(data.labels))
    train_idx, val_idx = train_test_split(
        indices,
        test_size=config.validation_fraction,
        random_state=config.seed,
        stratify=np.asarray(data.labels),
    )
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
    resolved = resolve_model(config.model, allow_hub=config.allow_hub)
    tokenizer = load_tokenizer(config.model, allow_hub=config.allow_hub)
    id2label = dict(enumerate(data.label_names))
    model = load_sequence_classifier(
        config.model, id2label=id2label, attention="sdpa", allow_hub=config.allow_hub
    )
    logger.info("Run %s: fine-tuning %s on %d rows.", run_id, resolved.path, len(train_idx))

    def subset(rows: np.ndarray) -> _EncodedDataset:
        texts = [data.texts[i] for i in rows]
        pairs = [data.text_pairs[i] for i in rows] if data.text_pairs is not None else None
        return _EncodedDataset(
            encode(tokenizer, texts, pairs, config.max_length), [data.labels[i] for i in rows]
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
    )
    progress = ProgressEventsCallback(store, run_id, stop_signal)
    callbacks: list = [progress]
    if config.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
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
    trainer.train()

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
