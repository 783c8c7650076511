"""The run store: a SQLite index plus one folder per run.

Layout under the store's home folder::

    index.sqlite              one row per run (id, name, kind, status, ...)
    runs/<run_id>/config.json the settings the run started with
    runs/<run_id>/events.jsonl progress events, one JSON object per line
    runs/<run_id>/metrics.json final metrics
    runs/<run_id>/model/      the fine-tuned model (safetensors)
    runs/<run_id>/...         predictions, logs, checkpoints

JSON files are written atomically (a temporary file renamed into place), so a
reader never sees a half-written file. The index is the source of truth for a
run's status. A run whose process died is marked failed by ``reap_stale_runs``,
so no run stays "running" forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from halluscope.paths import default_home

logger = logging.getLogger(__name__)

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")

_RUN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    model       TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    pid         INTEGER,
    message     TEXT,
    metrics     TEXT
);
"""


class RunNotFoundError(KeyError):
    """No run with this id exists in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


@dataclass(frozen=True)
class RunRecord:
    """One row of the run index."""

    run_id: str
    name: str
    kind: str
    status: str
    model: str
    data: str
    created_at: str
    updated_at: str
    pid: int | None
    message: str | None
    metrics: dict[str, Any]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, ensure_ascii=False, default=str)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a safe folder name, else raise ``ValueError``.

    Run ids become folder names, so anything that could leave the store's
    ``runs/`` folder (``..``, slashes, absolute paths) is rejected.
    """
    if not isinstance(run_id, str) or not _RUN_ID_PATTERN.match(run_id):
        raise ValueError(
            f"Invalid run id {run_id!r}: use 3 to 64 lowercase letters, digits and dashes."
        )
    return run_id


def process_is_alive(pid: int | None) -> bool:
    """Return whether a process with ``pid`` exists (and is not a zombie)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat_file = Path(f"/proc/{pid}/stat")
    if stat_file.exists():
        with contextlib.suppress(OSError, IndexError):
            state = stat_file.read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z"
    return True


class RunStore:
    """Create, list and update runs under one home folder.

    Safe to use from several processes at once: SQLite serialises writes, and
    each connection waits up to ``busy_timeout_s`` for a lock instead of failing
    with "database is locked".
    """

    def __init__(self, home: Path | str | None = None, *, busy_timeout_s: float = 30.0) -> None:
        self.home = Path(home).expanduser().resolve() if home else default_home()
        self.runs_dir = self.home / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.home / "index.sqlite"
        self._busy_timeout_s = busy_timeout_s
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.index_path, timeout=self._busy_timeout_s)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            with connection:
                yield connection
        finally:
            connection.close()

    # Creating and reading runs

    def create_run(
        self,
        *,
        kind: str,
        model: str,
        data: str,
        config: dict[str, Any],
        name: str | None = None,
    ) -> RunRecord:
        """Create a queued run with its folder and ``config.json``; return its record."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_id = validate_run_id(f"{stamp}-{secrets.token_hex(3)}")
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=False)
        write_json_atomic(folder / "config.json", config)

        display_name = (name or f"{kind} {model} {stamp}").strip()[:200]
        now = _now()
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO runs (run_id, name, kind, status, model, data, created_at, "
                "updated_at, pid, message, metrics) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, "
                "NULL, NULL, '{}')",
                (run_id, display_name, kind, model, data, now, now),
            )
        logger.info("Created run %s (%s, model %s).", run_id, kind, model)
        return self.get(run_id)

    def run_dir(self, run_id: str) -> Path:
        """Return the folder of ``run_id`` (which need not exist yet)."""
        return self.runs_dir / validate_run_id(run_id)

    def get(self, run_id: str) -> RunRecord:
        """Return the record of ``run_id``, or raise ``RunNotFoundError``."""
        validate_run_id(run_id)
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"No run with id '{run_id}' in {self.home}.")
        return _record(row)

    def list_runs(self, *, kind: str | None = None) -> list[RunRecord]:
        """Return all runs, newest first, optionally only those of ``kind``."""
        query = "SELECT * FROM runs"
        params: tuple = ()
        if kind:
            query += " WHERE kind = ?"
            params = (kind,)
        query += " ORDER BY created_at DESC, run_id DESC"
        with self._connect() as connection:
            rows = connection.execute(query, params).fetchall()
        return [_record(row) for row in rows]

    def config(self, run_id: str) -> dict[str, Any]:
        """Return the settings the run started with."""
        return self.read_json(run_id, "config.json") or {}

    # Updating runs

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        message: str | None = None,
        pid: int | None = None,
    ) -> None:
        """Set the status of ``run_id`` (and optionally a message and the worker pid)."""
        if status not in STATUSES:
            raise ValueError(f"Invalid status {status!r}; expected one of {', '.join(STATUSES)}.")
        assignments = ["status = ?", "updated_at = ?"]
        params: list[Any] = [status, _now()]
        if message is not None:
            assignments.append("message = ?")
            params.append(message)
        if pid is not None:
            assignments.append("pid = ?")
            params.append(pid)
        params.append(validate_run_id(run_id))
        with self._connect() as connection:
            cursor = connection.execute(
                f"UPDATE runs SET {', '.join(assignments)} WHERE run_id = ?", params
            )
        if cursor.rowcount == 0:
            raise RunNotFoundError(f"No run with id '{run_id}' in {self.home}.")
        logger.info("Run %s is now %s%s", run_id, status, f": {message}" if message else ".")

    def set_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        """Store the final ``metrics`` in the index and in ``metrics.json``."""
        write_json_atomic(self.run_dir(run_id) / "metrics.json", metrics)
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET metrics = ?, updated_at = ? WHERE run_id = ?",
                (json.dumps(metrics, default=str), _now(), run_id),
            )

    def rename(self, run_id: str, name: str) -> None:
        """Change the display name of ``run_id``."""
        name = name.strip()
        if not name:
            raise ValueError("A run name cannot be empty.")
        with self._connect() as connection:
            connection.execute(
                "UPDATE runs SET name = ?, updated_at = ? WHERE run_id = ?",
                (name[:200], _now(), validate_run_id(run_id)),
            )

    def delete(self, run_id: str) -> None:
        """Delete ``run_id`` from the index and remove its folder."""
        record = self.get(run_id)
        if record.is_active and process_is_alive(record.pid):
            raise ValueError(f"Run '{run_id}' is still running; cancel it before deleting it.")
        with self._connect() as connection:
            connection.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        logger.info("Deleted run %s.", run_id)

    # Files inside a run folder

    def write_json(self, run_id: str, name: str, data: Any) -> Path:
        """Write ``data`` atomically to ``runs/<run_id>/<name>``; return the path."""
        path = self._file(run_id, name)
        write_json_atomic(path, data)
        return path

    def read_json(self, run_id: str, name: str) -> Any | None:
        """Return the parsed JSON file ``name`` of the run, or None if it is missing."""
        path = self._file(run_id, name)
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def append_event(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one progress event (a JSON object) to the run's ``events.jsonl``."""
        line = json.dumps({"time": time.time(), **event}, default=str, ensure_ascii=False)
        with self._file(run_id, "events.jsonl").open("a", encoding="utf-8") as stream:
            stream.write(line + "\n")
            stream.flush()

    def read_events(self, run_id: str) -> list[dict[str, Any]]:
        """Return the run's progress events; a partly written last line is skipped."""
        path = self._file(run_id, "events.jsonl")
        if not path.is_file():
            return []
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
        return events

    def _file(self, run_id: str, name: str) -> Path:
        folder = self.run_dir(run_id)
        path = (folder / name).resolve()
        if folder.resolve() not in path.parents:
            raise ValueError(f"Invalid file name {name!r}: it must stay inside the run folder.")
        return path

    # Cancellation and crash recovery

    def request_cancel(self, run_id: str) -> None:
        """Ask the worker of ``run_id`` to stop at its next step.

        The worker polls for the ``cancel.requested`` file; a queued run whose
        worker never started is marked cancelled at once.
        """
        record = self.get(run_id)
        self._file(run_id, "cancel.requested").write_text(_now(), encoding="utf-8")
        if record.status == "queued" and not process_is_alive(record.pid):
            self.set_status(run_id, "cancelled", message="Cancelled before it started.")
        logger.info("Cancel requested for run %s.", run_id)

    def clear_cancel(self, run_id: str) -> None:
        """Remove a pending cancel request of ``run_id``, so that a resumed worker keeps going."""
        with contextlib.suppress(FileNotFoundError):
            self._file(run_id, "cancel.requested").unlink()

    def cancel_requested(self, run_id: str) -> bool:
        """Return whether a cancel was requested for ``run_id``."""
        return self._file(run_id, "cancel.requested").exists()

    def reap_stale_runs(self, *, grace_s: float = 60.0) -> list[str]:
        """Mark active runs whose worker process is gone as failed; return their ids.

        A queued run with no pid gets ``grace_s`` seconds to start its worker.
        """
        reaped = []
        for record in self.list_runs():
            if not record.is_active or process_is_alive(record.pid):
                continue
            if record.pid is None:
                updated = datetime.fromisoformat(record.updated_at)
                if (datetime.now(UTC) - updated).total_seconds() < grace_s:
                    continue
            self.set_status(
                record.run_id,
                "failed",
                message="The training process stopped unexpectedly (it was killed or crashed). "
                "See the run's log.txt for details. A classification run that saved a "
                f"checkpoint continues with `halluscope train --resume {record.run_id}`.",
            )
            reaped.append(record.run_id)
        return reaped


def _record(row: sqlite3.Row) -> RunRecord:
    metrics = json.loads(row["metrics"]) if row["metrics"] else {}
    return RunRecord(
        run_id=row["run_id"],
        name=row["name"],
        kind=row["kind"],
        status=row["status"],
        model=row["model"],
        data=row["data"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        pid=row["pid"],
        message=row["message"],
        metrics=metrics,
    )
