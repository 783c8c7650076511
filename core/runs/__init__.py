"""The run store: a SQLite index plus one folder per run."""

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
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "process_is_alive",
    "validate_run_id",
    "write_json_atomic",
]
