"""The run store: a SQLite index plus one folder per run."""

from halluscope.runs.reviews import (
    VERDICTS,
    ReviewMark,
    clear_mark,
    get_mark,
    list_marks,
    marks_frame,
    set_mark,
)
from halluscope.runs.store import (
    ACTIVE_STATUSES,
    STATUSES,
    RunNotFoundError,
    RunRecord,
    RunStore,
    process_is_alive,
    validate_run_id,
    write_json_atomic,
)

__all__ = [
    "ACTIVE_STATUSES",
    "STATUSES",
    "VERDICTS",
    "ReviewMark",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "clear_mark",
    "get_mark",
    "list_marks",
    "marks_frame",
    "process_is_alive",
    "set_mark",
    "validate_run_id",
    "write_json_atomic",
]
