"""Answer-loss dynamics of a causal LM fine-tune: how each training answer is learnt.

``AnswerDynamicsCallback`` scores every training example once before the
first step and again at every epoch end, in eval mode (dropout off) and with
teacher forcing. Per example it records the mean negative log-likelihood of
the answer tokens (minus their mean log-prob, in nats) and whether every
answer token is the argmax of its logits. Grouped by what the base model
knew (see ``halluscope.training.knowledge``), these curves show whether
facts new to the model are learnt more slowly than known ones.

The records are written to ``answer_dynamics.json`` in the run folder after
each record, so a crashed run keeps what it measured.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from halluscope.inference.runtime import eval_mode, model_device
from halluscope.runs import write_json_atomic
from halluscope.training.causal_lm import completion_nll_per_example

logger = logging.getLogger(__name__)

ANSWER_DYNAMICS_FILE = "answer_dynamics.json"
"""File in a generation run's folder with the per-example answer losses by epoch."""


@dataclass(frozen=True)
class AnswerDynamics:
    """Per-epoch answer losses of the training examples of one generation run.

    Attributes:
        row_numbers: 1-based data rows of the training examples, length n.
        epochs: the epoch of each record, length e; 0.0 is the record before training.
        mean_nll: mean NLL per answer token in nats, float array [e, n].
        exact_match: whether every answer token was the argmax, bool array [e, n].
        answer_tokens: answer tokens per example (end-of-turn token included), int array [n].
    """

    row_numbers: tuple[int, ...]
    epochs: tuple[float, ...]
    mean_nll: np.ndarray
    exact_match: np.ndarray
    answer_tokens: np.ndarray

    def __post_init__(self) -> None:
        n, e = len(self.row_numbers), len(self.epochs)
        if self.answer_tokens.shape != (n,):
            raise ValueError(
                f"answer_tokens has shape {self.answer_tokens.shape}, expected ({n},)."
            )
        for name in ("mean_nll", "exact_match"):
            shape = getattr(self, name).shape
            if shape != (e, n):
                raise ValueError(f"{name} has shape {shape}, expected ({e}, {n}).")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``from_dict`` reads it back)."""
        return {
            "row_numbers": list(self.row_numbers),
            "epochs": list(self.epochs),
            "mean_nll": np.round(self.mean_nll, 5).tolist(),
            "exact_match": self.exact_match.tolist(),
            "answer_tokens": self.answer_tokens.tolist(),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AnswerDynamics:
        """Rebuild the dynamics from ``to_dict`` output."""
        n = len(values["row_numbers"])
        return cls(
            row_numbers=tuple(int(row) for row in values["row_numbers"]),
            epochs=tuple(float(epoch) for epoch in values["epochs"]),
            mean_nll=np.asarray(values["mean_nll"], dtype=np.float64).reshape(-1, n),
            exact_match=np.asarray(values["exact_match"], dtype=bool).reshape(-1, n),
            answer_tokens=np.asarray(values["answer_tokens"], dtype=np.int64),
        )


def load_answer_dynamics(run_dir: Path | str) -> AnswerDynamics | None:
    """Return the answer dynamics stored in ``run_dir``, or None when there are none."""
    path = Path(run_dir) / ANSWER_DYNAMICS_FILE
    if not path.is_file():
        return None
    return AnswerDynamics.from_dict(json.loads(path.read_text(encoding="utf-8")))


class AnswerDynamicsCallback(TrainerCallback):
    """Score every training answer before training and at each epoch end.

    The extra cost is one teacher-forced forward pass (no backward pass) over
    the training split per record, so e + 1 passes for e epochs. Each pass
    is logged with its duration.

    Args:
        dataset: the training examples, each a dict with ``input_ids`` and
            ``labels``, in a fixed order.
        collate: the data collator that pads a list of examples into a batch.
        row_numbers: 1-based data rows of the examples, in ``dataset`` order.
        path: where to write the records.
        batch_size: examples per forward pass.
        is_cancelled: polled before each record; when it returns True the
            record is skipped, so a cancelled run stops without another pass.
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        row_numbers: Sequence[int],
        path: Path,
        *,
        batch_size: int = 8,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> None:
        if len(row_numbers) != len(dataset):
            raise ValueError(
                f"row_numbers has {len(row_numbers)} entries for {len(dataset)} examples."
            )
        self.dataset = dataset
        self.collate = collate
        self.row_numbers = tuple(int(row) for row in row_numbers)
        self.path = Path(path)
        self.batch_size = batch_size
        self.is_cancelled = is_cancelled
        self.epochs: list[float] = []
        self.mean_nll: list[np.ndarray] = []
        self.exact_match: list[np.ndarray] = []
        self.answer_tokens = np.zeros(len(self.row_numbers), dtype=np.int64)
        self.seconds: list[float] = []
        """Duration of each scoring pass of this process, in seconds."""

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        # A resumed run starts at its checkpoint's epoch: keep the records up to it.
        previous = load_answer_dynamics(self.path.parent) if self.path.is_file() else None
        if previous is not None and previous.row_numbers == self.row_numbers and state.epoch:
            keep = [i for i, epoch in enumerate(previous.epochs) if epoch <= state.epoch + 1e-6]
            self.epochs = [previous.epochs[i] for i in keep]
            self.mean_nll = [previous.mean_nll[i] for i in keep]
            self.exact_match = [previous.exact_match[i] for i in keep]
            self.answer_tokens = previous.answer_tokens.copy()
            return
        if model is not None:
            self._record(model, 0.0)

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
        self._record(model, float(state.epoch or len(self.epochs)))

    def dynamics(self) -> AnswerDynamics:
        """Return the records so far."""
        n = len(self.row_numbers)
        return AnswerDynamics(
            row_numbers=self.row_numbers,
            epochs=tuple(self.epochs),
            mean_nll=np.asarray(self.mean_nll, dtype=np.float64).reshape(-1, n),
            exact_match=np.asarray(self.exact_match, dtype=bool).reshape(-1, n),
            answer_tokens=self.answer_tokens,
        )

    def _record(self, model: torch.nn.Module, epoch: float) -> None:
        if self.is_cancelled is not None and self.is_cancelled():
            logger.info("Skipped the answer-loss record of epoch %s: the run was cancelled.", epoch)
            return
        started = time.monotonic()
        nll_sum, token_count, exact = self._score(model)
        self.answer_tokens = token_count
        self.epochs.append(epoch)
        self.mean_nll.append(nll_sum / np.maximum(token_count, 1))
        self.exact_match.append(exact)
        write_json_atomic(self.path, self.dynamics().to_dict())

        seconds = time.monotonic() - started
        self.seconds.append(seconds)
        logger.info(
            "Recorded the answer loss of %d training examples at epoch %s in %.1f s.",
            len(self.row_numbers),
            epoch,
            seconds,
        )

    @torch.no_grad()
    def _score(self, model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        device = model_device(model)
        sums, counts, matches = [], [], []
        with eval_mode(model):
            for start in range(0, len(self.dataset), self.batch_size):
                stop = min(start + self.batch_size, len(self.dataset))
                batch = self.collate([self.dataset[i] for i in range(start, stop)])
                inputs = {key: value.to(device) for key, value in batch.items()}
                nll_sum, token_count, exact = completion_nll_per_example(model, inputs)
                sums.append(nll_sum.cpu().numpy())
                counts.append(token_count.cpu().numpy())
                matches.append(exact.cpu().numpy())
        if not sums:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        return (
            np.concatenate(sums).astype(np.float64),
            np.concatenate(counts).astype(np.int64),
            np.concatenate(matches).astype(bool),
        )
