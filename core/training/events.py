"""Trainer callbacks that write progress events and stop a run on request."""

from __future__ import annotations

import logging
import math
import signal
import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from halluscope.runs import RunStore

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class CheckpointSaveError(OSError):
    """Saving a checkpoint failed because the disk is full; the earlier checkpoints are kept."""


class ResumeError(ValueError):
    """A run cannot be resumed: it has no complete checkpoint, or its data file changed."""


class StopSignal:
    """Turns SIGTERM and SIGINT into a flag that the training loop polls.

    The dashboard's Cancel button sends SIGTERM to the worker; stopping at the
    next step boundary lets the run be saved and marked cancelled cleanly.
    """

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> None:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, self._handle)

    def _handle(self, signal_number: int, _frame: Any) -> None:
        logger.warning("Received signal %d; stopping after the current step.", signal_number)
        self.received = signal_number


class ProgressEventsCallback(TrainerCallback):
    """Writes step, loss, eval metrics and ETA events to the run's events.jsonl.

    Also stops training when a cancel is requested (a ``cancel.requested`` file
    or a stop signal) and raises ``NonFiniteLossError`` on a NaN loss.
    """

    def __init__(self, store: RunStore, run_id: str, stop_signal: StopSignal | None = None):
        self.store = store
        self.run_id = run_id
        self.stop_signal = stop_signal
        self.cancelled = False
        self._started_at = time.monotonic()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control, **kwargs):
        self._started_at = time.monotonic()
        self.store.append_event(
            self.run_id,
            {"type": "train_begin", "max_steps": state.max_steps, "epochs": args.num_train_epochs},
        )

    def on_step_end(self, args, state: TrainerState, control: TrainerControl, **kwargs):
        if self._stop_requested():
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = False
        return control

    def on_log(self, args, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        logs = dict(logs or {})
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            # The logged loss is the mean since the previous log, so the first
            # non-finite step lies in that window.
            first_step = max(state.global_step - args.logging_steps + 1, 1)
            window = (
                f"step {state.global_step}"
                if first_step >= state.global_step
                else f"steps {first_step} to {state.global_step}"
            )
            raise NonFiniteLossError(
                f"The training loss became {loss} in {window} (epoch {state.epoch or 0.0:.2f}). "
                "Lower the learning rate, check the labels and texts for invalid values, "
                "or shorten max_length."
            )

        elapsed = time.monotonic() - self._started_at
        steps_left = max(state.max_steps - state.global_step, 0)
        eta_s = elapsed / state.global_step * steps_left if state.global_step else None
        event_type = "eval" if any(key.startswith("eval_") for key in logs) else "train_step"
        if "train_runtime" in logs:
            event_type = "train_end"
        if event_type == "eval":
            logger.info(
                "Run %s: epoch %.2f, eval loss %.4f, eval accuracy %s.",
                self.run_id,
                state.epoch or 0.0,
                logs.get("eval_loss", float("nan")),
                logs.get("eval_accuracy", "n/a"),
            )
        elif loss is not None:
            logger.info(
                "Run %s: step %d of %d, loss %.4f, ETA %s s.",
                self.run_id,
                state.global_step,
                state.max_steps,
                loss,
                "?" if eta_s is None else round(eta_s),
            )
        self.store.append_event(
            self.run_id,
            {
                "type": event_type,
                "step": state.global_step,
                "max_steps": state.max_steps,
                "epoch": state.epoch,
                "elapsed_s": round(elapsed, 2),
                "eta_s": None if eta_s is None else round(eta_s, 1),
                **logs,
            },
        )
        return control

    def _stop_requested(self) -> bool:
        if self.stop_signal is not None and self.stop_signal.received is not None:
            return True
        return self.store.cancel_requested(self.run_id)
