"""Training and validation losses of a run, read back from its progress events.

The event format is the one ``ProgressEventsCallback`` writes, which both the
classifier and the causal LM training use. The dashboard's live curve and the
HTML report draw from the same history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LossHistory:
    """Loss values read from a run's progress events.

    Attributes:
        train_steps: Optimisation steps with a logged training loss.
        train_loss: Training loss at each of ``train_steps``.
        eval_steps: Steps at which the validation set was evaluated.
        eval_loss: Validation loss at each of ``eval_steps``.
        eval_accuracy: Validation accuracy at each of ``eval_steps`` (None if not logged).
    """

    train_steps: tuple[int, ...]
    train_loss: tuple[float, ...]
    eval_steps: tuple[int, ...]
    eval_loss: tuple[float, ...]
    eval_accuracy: tuple[float | None, ...]

    def __post_init__(self) -> None:
        if len(self.train_steps) != len(self.train_loss):
            raise ValueError("train_steps and train_loss must have equal lengths.")
        if not len(self.eval_steps) == len(self.eval_loss) == len(self.eval_accuracy):
            raise ValueError("eval_steps, eval_loss and eval_accuracy must have equal lengths.")

    @property
    def is_empty(self) -> bool:
        return not self.train_steps and not self.eval_steps


def loss_history(events: Sequence[dict[str, Any]]) -> LossHistory:
    """Collect training and validation losses from ``train_step`` and ``eval`` events."""
    train_steps: list[int] = []
    train_loss: list[float] = []
    eval_steps: list[int] = []
    eval_loss: list[float] = []
    eval_accuracy: list[float | None] = []
    for event in events:
        step = event.get("step")
        if step is None:
            continue
        if event.get("type") == "train_step" and isinstance(event.get("loss"), int | float):
            train_steps.append(int(step))
            train_loss.append(float(event["loss"]))
        elif event.get("type") == "eval" and isinstance(event.get("eval_loss"), int | float):
            eval_steps.append(int(step))
            eval_loss.append(float(event["eval_loss"]))
            accuracy = event.get("eval_accuracy")
            eval_accuracy.append(float(accuracy) if isinstance(accuracy, int | float) else None)
    return LossHistory(
        tuple(train_steps), tuple(train_loss), tuple(eval_steps), tuple(eval_loss),
        tuple(eval_accuracy),
    )  # fmt: skip
