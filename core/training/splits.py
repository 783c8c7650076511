"""Save and reload a run's train/validation split.

The validation examples are stored in full (texts, labels and the row numbers
of the source file), so prediction and inspection of a finished run work even
if the original file has moved or changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halluscope.data import ClassificationData
from halluscope.runs import write_json_atomic

SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class SplitExamples:
    """The examples of one split of a run's data.

    ``row_numbers`` are 1-based data rows of the source file (the first row
    after the header is row 1), so a reviewer can find each example there.
    """

    texts: tuple[str, ...]
    text_pairs: tuple[str, ...] | None
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    row_numbers: tuple[int, ...]

    def __post_init__(self) -> None:
        count = len(self.texts)
        lengths = [len(self.labels), len(self.row_numbers)]
        if self.text_pairs is not None:
            lengths.append(len(self.text_pairs))
        if any(length != count for length in lengths):
            raise ValueError("texts, text_pairs, labels and row_numbers must have equal lengths.")

    def __len__(self) -> int:
        return len(self.texts)


def save_split(
    path: Path,
    data: ClassificationData,
    train_indices: Sequence[int] | np.ndarray,
    validation_indices: Sequence[int] | np.ndarray,
) -> None:
    """Write the split of ``data`` to ``path`` as JSON."""
    validation = [int(i) for i in validation_indices]
    payload = {
        "label_names": list(data.label_names),
        "train_row_numbers": [int(data.row_numbers[i]) for i in train_indices],
        "validation": {
            "texts": [data.texts[i] for i in validation],
            "text_pairs": (
                [data.text_pairs[i] for i in validation] if data.text_pairs is not None else None
            ),
            "labels": [int(data.labels[i]) for i in validation],
            "row_numbers": [int(data.row_numbers[i]) for i in validation],
        },
    }
    write_json_atomic(path, payload)


def load_validation_split(run_dir: Path) -> SplitExamples:
    """Return the validation examples saved in ``run_dir``."""
    path = run_dir / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"The run folder {run_dir} has no {SPLIT_FILE}; the run probably failed before "
            "its data was split. Start a new run."
        )
    payload = json.loads(path.read_text(encoding="utf-8"))
    validation = payload["validation"]
    pairs = validation.get("text_pairs")
    return SplitExamples(
        texts=tuple(validation["texts"]),
        text_pairs=tuple(pairs) if pairs is not None else None,
        labels=tuple(validation["labels"]),
        label_names=tuple(payload["label_names"]),
        row_numbers=tuple(validation["row_numbers"]),
    )
