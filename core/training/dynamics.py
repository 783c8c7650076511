"""Training dynamics of a classifier: how each training example is learnt, epoch by epoch.

At the end of every epoch ``TrainingDynamicsCallback`` predicts on the whole
training split (in eval mode, without dropout). It records the probability of
each example's given label and whether the argmax is right. From these the
data map (dataset cartography) places every example by its *confidence* (mean
probability of the given label over the epochs) and *variability* (standard
deviation of that probability):

* easy to learn: high confidence, low variability;
* ambiguous: high variability, whatever the confidence;
* hard to learn: low confidence, low variability. Mislabelled rows tend to fall here.

The records are written to ``dynamics.json`` in the run folder after each epoch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from halluscope.inference.runtime import eval_mode, model_device
from halluscope.runs import write_json_atomic

logger = logging.getLogger(__name__)

DYNAMICS_FILE = "dynamics.json"

AMBIGUOUS_VARIABILITY = 0.2
"""Variability from which an example counts as ambiguous."""
EASY_CONFIDENCE = 0.5
"""Confidence from which a low-variability example counts as easy to learn."""
# NOTE: both thresholds are fixed guesses, not tuned on any task. Data maps are
# usually read by eye, so the region counts are a rough guide only.

REGIONS = ("easy", "ambiguous", "hard")


@dataclass(frozen=True)
class TrainingDynamics:
    """Per-epoch predictions on the training split of one run.

    Attributes:
        row_numbers: 1-based data rows of the training examples, length n.
        labels: given label ids, int array [n].
        label_names: class names in label-id order.
        epochs: the epoch (a float, as the Trainer counts) of each record, length e.
        gold_probability: probability of the given label, float array [e, n].
        predicted: argmax label id, int array [e, n].
    """

    row_numbers: tuple[int, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    epochs: tuple[float, ...]
    gold_probability: np.ndarray
    predicted: np.ndarray

    def __post_init__(self) -> None:
        n, e = len(self.row_numbers), len(self.epochs)
        if self.labels.shape != (n,):
            raise ValueError(f"labels has shape {self.labels.shape}, expected ({n},).")
        for name in ("gold_probability", "predicted"):
            shape = getattr(self, name).shape
            if shape != (e, n):
                raise ValueError(f"{name} has shape {shape}, expected ({e}, {n}).")

    @property
    def confidence(self) -> np.ndarray:
        """Mean probability of the given label over the epochs, float array [n]."""
        return self.gold_probability.mean(axis=0)

    @property
    def variability(self) -> np.ndarray:
        """Standard deviation of the given label's probability over the epochs, float array [n]."""
        return self.gold_probability.std(axis=0)

    @property
    def correctness(self) -> np.ndarray:
        """Share of epochs in which the argmax is the given label, float array [n]."""
        return (self.predicted == self.labels[None, :]).mean(axis=0)

    def regions(self) -> np.ndarray:
        """Data-map region of each example: ``"easy"``, ``"ambiguous"`` or ``"hard"``."""
        return np.where(
            self.variability >= AMBIGUOUS_VARIABILITY,
            "ambiguous",
            np.where(self.confidence >= EASY_CONFIDENCE, "easy", "hard"),
        )

    def to_frame(self) -> pd.DataFrame:
        """Return one row per training example with its data-map coordinates and region."""
        names = np.asarray(self.label_names, dtype=object)
        return pd.DataFrame(
            {
                "row_number": list(self.row_numbers),
                "label": names[self.labels],
                "confidence": self.confidence.round(4),
                "variability": self.variability.round(4),
                "correctness": self.correctness.round(4),
                "region": self.regions(),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``from_dict`` reads it back)."""
        return {
            "row_numbers": list(self.row_numbers),
            "labels": self.labels.tolist(),
            "label_names": list(self.label_names),
            "epochs": list(self.epochs),
            "gold_probability": np.round(self.gold_probability, 5).tolist(),
            "predicted": self.predicted.tolist(),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingDynamics:
        """Rebuild dynamics from ``to_dict`` output."""
        n = len(values["row_numbers"])
        return cls(
            row_numbers=tuple(int(row) for row in values["row_numbers"]),
            labels=np.asarray(values["labels"], dtype=np.int64),
            label_names=tuple(values["label_names"]),
            epochs=tuple(float(epoch) for epoch in values["epochs"]),
            gold_probability=np.asarray(values["gold_probability"], dtype=np.float64).reshape(
                -1, n
            ),
            predicted=np.asarray(values["predicted"], dtype=np.int64).reshape(-1, n),
        )


def load_dynamics(run_dir: Path) -> TrainingDynamics | None:
    """Return the training dynamics stored in ``run_dir``, or None when there are none."""
    path = Path(run_dir) / DYNAMICS_FILE
    if not path.is_file():
        return None
    return TrainingDynamics.from_dict(json.loads(path.read_text(encoding="utf-8")))


class TrainingDynamicsCallback(TrainerCallback):
    """Predict on the training split at each epoch end and write ``dynamics.json``.

    The extra cost is one forward pass over the training split per epoch. For
    MiniLM on 480 demo claims and 2 shared CPU cores that pass took about 35 s
    of a 190 s epoch (one measurement).

    Args:
        dataset: the training examples, each a dict with ``labels``, in a fixed order.
        collate: the data collator that pads a list of examples into a batch.
        row_numbers: 1-based data rows of the examples, in ``dataset`` order.
        label_names: class names in label-id order.
        path: where to write the records.
        batch_size: examples per forward pass.
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        row_numbers: Sequence[int],
        label_names: Sequence[str],
        path: Path,
        *,
        batch_size: int = 32,
    ) -> None:
        self.dataset = dataset
        self.collate = collate
        self.row_numbers = tuple(int(row) for row in row_numbers)
        self.labels = np.asarray([int(dataset[i]["labels"]) for i in range(len(dataset))])
        self.label_names = tuple(label_names)
        self.path = Path(path)
        self.batch_size = batch_size
        self.epochs: list[float] = []
        self.gold_probability: list[np.ndarray] = []
        self.predicted: list[np.ndarray] = []

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        # A resumed run starts at its checkpoint's epoch: keep the records up to it.
        previous = load_dynamics(self.path.parent) if self.path.is_file() else None
        if previous is None or previous.row_numbers != self.row_numbers or not state.epoch:
            return
        keep = [i for i, epoch in enumerate(previous.epochs) if epoch <= state.epoch + 1e-6]
        self.epochs = [previous.epochs[i] for i in keep]
        self.gold_probability = [previous.gold_probability[i] for i in keep]
        self.predicted = [previous.predicted[i] for i in keep]

    def on_epoch_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            return
        probabilities = self._predict(model)
        gold = probabilities[np.arange(len(self.labels)), self.labels]
        self.epochs.append(float(state.epoch or len(self.epochs) + 1))
        self.gold_probability.append(gold)
        self.predicted.append(probabilities.argmax(axis=1))
        write_json_atomic(self.path, self.dynamics().to_dict())
        logger.debug("Recorded training dynamics of epoch %s.", state.epoch)

    def dynamics(self) -> TrainingDynamics:
        """Return the records so far."""
        n = len(self.labels)
        return TrainingDynamics(
            row_numbers=self.row_numbers,
            labels=self.labels,
            label_names=self.label_names,
            epochs=tuple(self.epochs),
            gold_probability=np.asarray(self.gold_probability, dtype=np.float64).reshape(-1, n),
            predicted=np.asarray(self.predicted, dtype=np.int64).reshape(-1, n),
        )

    @torch.no_grad()
    def _predict(self, model: torch.nn.Module) -> np.ndarray:
        device = model_device(model)
        chunks = []
        with eval_mode(model):
            for start in range(0, len(self.dataset), self.batch_size):
                items = [
                    self.dataset[i]
                    for i in range(start, min(start + self.batch_size, len(self.dataset)))
                ]
                batch = self.collate(items)
                batch.pop("labels", None)
                inputs = {key: value.to(device) for key, value in batch.items()}
                logits = model(**inputs).logits.float()
                chunks.append(torch.softmax(logits, dim=-1).cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.label_names)))
