"""Steps that combine several modules for one run, shared by the CLI and the dashboard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from halluscope.data import (
    ClassificationSchema,
    guess_classification_schema,
    prepare_classification,
    prepare_unlabeled,
    read_table,
)
from halluscope.detect import flag_predictions
from halluscope.inference import predict_classifier
from halluscope.models import load_sequence_classifier, load_tokenizer
from halluscope.runs import RunStore
from halluscope.training import (
    MODEL_FOLDER,
    ClassifierTrainConfig,
    SplitExamples,
    classification_metrics,
    load_validation_split,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPredictions:
    """Predictions of one run on one set of examples, with hallucination flags.

    ``table`` has one row per example: ``row_number`` (1-based data row of the
    source file), ``text``, ``text_pair``, ``gold`` (when labels are known),
    the prediction columns of the classifier and ``flagged``, ``flag_score``
    and ``flag_reason``.
    """

    run_id: str
    source: str
    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def run_model_folder(store: RunStore, run_id: str) -> Path:
    """Return the fine-tuned model folder of a completed run."""
    record = store.get(run_id)
    folder = store.run_dir(run_id) / MODEL_FOLDER
    if record.status != "completed" or not folder.is_dir():
        raise ValueError(
            f"Run '{run_id}' is {record.status} and has no saved model; pick a completed run."
        )
    return folder


def load_examples(
    store: RunStore,
    run_id: str,
    *,
    data_path: Path | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
) -> SplitExamples:
    """Return the run's validation split, or the examples of ``data_path``.

    For a file, columns not given are taken from the run's training settings
    when the file has them, and guessed otherwise. Labels are optional; when
    present they must use the run's label names.
    """
    if data_path is None:
        return load_validation_split(store.run_dir(run_id))

    config = ClassifierTrainConfig.from_dict(store.config(run_id))
    table = read_table(Path(data_path))
    columns = set(table.frame.columns)

    def pick(explicit: str | None, trained: str | None) -> str | None:
        if explicit:
            return explicit
        return trained if trained in columns else None

    text_column = pick(text_column, config.text_column)
    text_pair_column = pick(text_pair_column, config.text_pair_column)
    label_column = pick(label_column, config.label_column)
    if text_column is None:
        guessed = guess_classification_schema(table.frame)
        text_column, text_pair_column = guessed.text, text_pair_column or guessed.text_pair

    label_names = load_validation_split(store.run_dir(run_id)).label_names
    if label_column is None:
        unlabeled = prepare_unlabeled(table, text_column, text_pair_column)
        return SplitExamples(
            texts=unlabeled.texts,
            text_pairs=unlabeled.text_pairs,
            labels=tuple(-1 for _ in unlabeled.texts),
            label_names=label_names,
            row_numbers=unlabeled.row_numbers,
        )

    schema = ClassificationSchema(text=text_column, label=label_column, text_pair=text_pair_column)
    data = prepare_classification(table, schema, label_map=config.label_map)
    unknown = sorted(set(data.label_names) - set(label_names))
    if unknown:
        raise ValueError(
            f"{table.file_name}: column '{label_column}' has labels {unknown} that the run "
            f"was not trained on (it knows {list(label_names)}). Map or remove those rows."
        )
    return SplitExamples(
        texts=data.texts,
        text_pairs=data.text_pairs,
        labels=tuple(label_names.index(data.label_names[i]) for i in data.labels),
        label_names=label_names,
        row_numbers=data.row_numbers,
    )


def predict_run(
    store: RunStore,
    run_id: str,
    *,
    data_path: Path | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> RunPredictions:
    """Predict with a completed run and flag suspected hallucinations."""
    folder = run_model_folder(store, run_id)
    config = ClassifierTrainConfig.from_dict(store.config(run_id))
    examples = load_examples(
        store,
        run_id,
        data_path=data_path,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
    )

    model = load_sequence_classifier(str(folder), attention="sdpa")
    tokenizer = load_tokenizer(str(folder))
    predictions = predict_classifier(
        model,
        tokenizer,
        examples.texts,
        examples.text_pairs,
        batch_size=batch_size,
        max_length=config.max_length,
        progress=progress,
    )
    has_gold = all(label >= 0 for label in examples.labels)
    gold = list(examples.labels) if has_gold else None
    table = flag_predictions(
        predictions, gold=gold, texts=examples.texts, text_pairs=examples.text_pairs
    )
    table.insert(0, "row_number", list(examples.row_numbers))

    summary: dict[str, Any] = {
        "run_id": run_id,
        "source": str(data_path) if data_path else "validation split",
        "examples": len(table),
        "flagged": int(table["flagged"].sum()),
    }
    if has_gold:
        summary.update(classification_metrics(predictions.logits, np.asarray(gold)))
    return RunPredictions(run_id, summary["source"], table, summary)
