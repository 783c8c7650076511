"""Reload the training rows of a finished classification run from its data file.

``split.json`` stores the validation examples in full but only the row numbers
of the training examples, so the training rows are read again from the file
the run trained on. A changed file is detected by its SHA-256, which the run
recorded in its ``data`` event.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from halluscope.runs import RunStore
from halluscope.training.classifier import file_sha256, load_classification_data
from halluscope.training.config import ClassifierTrainConfig
from halluscope.training.splits import SPLIT_FILE, SplitExamples

FLIPPED_COLUMN = "label_flipped"
"""Boolean column that ``halluscope.demo.inject_label_noise`` adds to mark flipped labels."""


class TrainExamplesError(ValueError):
    """The training rows of a run cannot be reloaded (missing split or changed file)."""


def load_train_examples(store: RunStore, run_id: str) -> SplitExamples:
    """Return the training examples of ``run_id``, in the order of ``split.json``.

    Raises:
        TrainExamplesError: the run has no split, its data file is missing, or
            the file changed since the run started.
    """
    import json

    run_dir = store.run_dir(run_id)
    split_path = run_dir / SPLIT_FILE
    if not split_path.is_file():
        raise TrainExamplesError(
            f"Run '{run_id}' has no {SPLIT_FILE}; it failed before its data was split."
        )
    payload = json.loads(split_path.read_text(encoding="utf-8"))
    config = ClassifierTrainConfig.from_dict(store.config(run_id))
    _check_same_file(store, run_id, Path(config.data_path))

    data = load_classification_data(config)
    position_of = {row: position for position, row in enumerate(data.row_numbers)}
    positions = [position_of[row] for row in payload["train_row_numbers"] if row in position_of]
    if len(positions) != len(payload["train_row_numbers"]):
        raise TrainExamplesError(
            f"{config.data_path} no longer has every training row of run '{run_id}'. "
            "Start a new run on the current file."
        )

    label_names = tuple(payload["label_names"])
    labels = tuple(label_names.index(data.label_names[data.labels[i]]) for i in positions)
    return SplitExamples(
        texts=tuple(data.texts[i] for i in positions),
        text_pairs=(
            tuple(data.text_pairs[i] for i in positions) if data.text_pairs is not None else None
        ),
        labels=labels,
        label_names=label_names,
        row_numbers=tuple(int(data.row_numbers[i]) for i in positions),
    )


def flipped_rows(data_path: str | Path, row_numbers: tuple[int, ...]) -> np.ndarray | None:
    """Return which of ``row_numbers`` have ``label_flipped`` set in the data file, or None.

    None means the file has no ``label_flipped`` column, so the injected noise is unknown.
    """
    from halluscope.data import read_table

    frame = read_table(Path(data_path)).frame
    if FLIPPED_COLUMN not in frame.columns:
        return None
    values = frame[FLIPPED_COLUMN].astype(str).str.strip().str.lower().isin(["true", "1"])
    return np.asarray([bool(values.iloc[row - 1]) for row in row_numbers], dtype=bool)


def _check_same_file(store: RunStore, run_id: str, path: Path) -> None:
    if not path.is_file():
        raise TrainExamplesError(
            f"The data file {path} of run '{run_id}' is missing. Put it back to see its "
            "training rows."
        )
    started = [event for event in store.read_events(run_id) if event.get("type") == "data"]
    if started and "data_sha256" in started[0] and file_sha256(path) != started[0]["data_sha256"]:
        raise TrainExamplesError(
            f"The data file {path} changed since run '{run_id}' trained on it, so its row "
            "numbers no longer match. Restore the file or start a new run."
        )
