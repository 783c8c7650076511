"""The status life of one training run: running, then completed, cancelled or failed."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from halluscope.runs import RunStore

logger = logging.getLogger(__name__)

TrainFunction = Callable[[], tuple[dict[str, Any], bool]]
"""Runs the training and returns ``(metrics, cancelled)``."""


def run_with_status(store: RunStore, run_id: str, train: TrainFunction) -> dict[str, Any]:
    """Run ``train`` for ``run_id`` and record the outcome in the run store.

    The run is marked running (with this process's pid) before ``train``
    starts, and completed or cancelled after it returns. If it raises, the
    error becomes the run's message, the run is marked failed and the
    exception is re-raised, so no run stays "running".
    """
    store.set_status(run_id, "running", pid=os.getpid())
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
