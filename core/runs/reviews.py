"""Review marks: a reviewer's verdict on a flagged example of a run.

A reviewer marks an example that a detector flagged as a confirmed
hallucination or as a false alarm, with an optional note. The marks of one run
live in ``runs/<run_id>/reviews.sqlite``, so they are deleted with the run, and
every write is one SQLite transaction. Two dashboard sessions can therefore
mark examples of the same run at once: the later write of the same example wins,
and a reader never sees a half-written mark.

An example id is the 1-based row number of the example in the run's data file
(the ``row_number`` column of the prediction table), written as a string.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

import pandas as pd

from halluscope.runs.store import RunStore

logger = logging.getLogger(__name__)

REVIEWS_FILE = "reviews.sqlite"

VERDICTS = ("confirmed", "false_alarm")
"""``confirmed``: the flagged output is a hallucination; ``false_alarm``: it is not."""

MAX_NOTE_CHARS = 2_000
MAX_EXCERPT_CHARS = 200
MAX_EXAMPLE_ID_CHARS = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    example_id  TEXT PRIMARY KEY,
    verdict     TEXT NOT NULL,
    note        TEXT NOT NULL,
    reviewer    TEXT,
    excerpt     TEXT,
    updated_at  TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ReviewMark:
    """One reviewer verdict on one example of a run.

    Attributes:
        run_id: the run whose prediction was reviewed.
        example_id: the example's row number in the run's data file, as a string.
        verdict: one of ``VERDICTS``.
        note: free text from the reviewer (may be empty).
        reviewer: who marked it, when known.
        excerpt: the start of the reviewed text, so a CSV of marks is readable alone.
        updated_at: UTC time of the last change, ISO 8601.
    """

    run_id: str
    example_id: str
    verdict: str
    note: str
    reviewer: str | None
    excerpt: str | None
    updated_at: str


MARK_COLUMNS = tuple(field.name for field in fields(ReviewMark))
"""Column order of ``marks_frame`` and of the CSV download."""


def _validate(example_id: str, verdict: str, note: str) -> str:
    example_id = str(example_id).strip()
    if not example_id or len(example_id) > MAX_EXAMPLE_ID_CHARS:
        raise ValueError(
            f"Invalid example id {example_id!r}: use the example's row number "
            f"(1 to {MAX_EXAMPLE_ID_CHARS} characters)."
        )
    if verdict not in VERDICTS:
        raise ValueError(f"Invalid verdict {verdict!r}; expected one of {', '.join(VERDICTS)}.")
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(
            f"The review note has {len(note)} characters; shorten it to at most {MAX_NOTE_CHARS}."
        )
    return example_id


@contextlib.contextmanager
def _connect(store: RunStore, run_id: str, *, create: bool) -> Iterator[sqlite3.Connection | None]:
    """Open the run's review database; yield None when it does not exist and ``create`` is off.

    Raises ``RunNotFoundError`` for an unknown run, so a mark never creates a run folder.
    """
    store.get(run_id)
    path = store.run_dir(run_id) / REVIEWS_FILE
    if not create and not path.is_file():
        yield None
        return
    connection = sqlite3.connect(path, timeout=30.0)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SCHEMA)
        with connection:
            yield connection
    finally:
        connection.close()


def set_mark(
    store: RunStore,
    run_id: str,
    example_id: str,
    verdict: str,
    note: str = "",
    *,
    reviewer: str | None = None,
    excerpt: str | None = None,
) -> ReviewMark:
    """Create or replace the mark of ``example_id`` in ``run_id`` and return it.

    Raises:
        RunNotFoundError: the run does not exist.
        ValueError: the example id is empty, the verdict is not one of
            ``VERDICTS``, or the note is longer than ``MAX_NOTE_CHARS``.
    """
    note = (note or "").strip()
    example_id = _validate(example_id, verdict, note)
    excerpt = excerpt[:MAX_EXCERPT_CHARS] if excerpt else None
    updated_at = datetime.now(UTC).isoformat(timespec="seconds")
    with _connect(store, run_id, create=True) as connection:
        connection.execute(
            "INSERT INTO reviews (example_id, verdict, note, reviewer, excerpt, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(example_id) DO UPDATE SET "
            "verdict = excluded.verdict, note = excluded.note, reviewer = excluded.reviewer, "
            "excerpt = COALESCE(excluded.excerpt, reviews.excerpt), "
            "updated_at = excluded.updated_at",
            (example_id, verdict, note, reviewer, excerpt, updated_at),
        )
    logger.info("Run %s: example %s marked %s.", run_id, example_id, verdict)
    return get_mark(store, run_id, example_id)


def get_mark(store: RunStore, run_id: str, example_id: str) -> ReviewMark | None:
    """Return the mark of ``example_id`` in ``run_id``, or None if it has none."""
    with _connect(store, run_id, create=False) as connection:
        if connection is None:
            return None
        row = connection.execute(
            "SELECT * FROM reviews WHERE example_id = ?", (str(example_id).strip(),)
        ).fetchone()
    return None if row is None else _mark(run_id, row)


def list_marks(store: RunStore, run_id: str) -> list[ReviewMark]:
    """Return every mark of ``run_id``, ordered by example row number."""
    with _connect(store, run_id, create=False) as connection:
        if connection is None:
            return []
        rows = connection.execute("SELECT * FROM reviews").fetchall()
    marks = [_mark(run_id, row) for row in rows]
    return sorted(marks, key=lambda mark: _sort_key(mark.example_id))


def clear_mark(store: RunStore, run_id: str, example_id: str) -> bool:
    """Remove the mark of ``example_id``; return whether there was one."""
    with _connect(store, run_id, create=False) as connection:
        if connection is None:
            return False
        cursor = connection.execute(
            "DELETE FROM reviews WHERE example_id = ?", (str(example_id).strip(),)
        )
    removed = cursor.rowcount > 0
    if removed:
        logger.info("Run %s: mark of example %s removed.", run_id, example_id)
    return removed


def marks_frame(marks: list[ReviewMark]) -> pd.DataFrame:
    """Return the marks as a table with the columns ``MARK_COLUMNS``, one row per mark."""
    return pd.DataFrame([asdict(mark) for mark in marks], columns=list(MARK_COLUMNS))


def _mark(run_id: str, row: sqlite3.Row) -> ReviewMark:
    return ReviewMark(
        run_id=run_id,
        example_id=row["example_id"],
        verdict=row["verdict"],
        note=row["note"],
        reviewer=row["reviewer"],
        excerpt=row["excerpt"],
        updated_at=row["updated_at"],
    )


def _sort_key(example_id: str) -> tuple[int, int, str]:
    """Sort numeric ids by value, before any non-numeric id."""
    if example_id.isdigit():
        return (0, int(example_id), "")
    return (1, 0, example_id)
