"""Errors raised while reading or validating a data file.

Every error carries a message meant for the user. It names the file and, where
they apply, the column, the data rows, the offending value and what to do. The
same facts are stored as attributes so that the dashboard can lay them out.
Data rows are numbered from 1, starting at the first row after the header.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MAX_LISTED_ROWS = 10
MAX_SHOWN_VALUE_CHARS = 60


def format_rows(rows: Iterable[int], *, noun: str = "row", limit: int = MAX_LISTED_ROWS) -> str:
    """Format numbers as ``"row 3"`` or ``"rows 3, 7 and 12 more"``, listing at most ``limit``."""
    rows = list(rows)
    shown = ", ".join(str(row) for row in rows[:limit])
    if len(rows) > limit:
        shown += f" and {len(rows) - limit} more"
    return f"{noun}{'' if len(rows) == 1 else 's'} {shown}"


def count_of(count: int, noun: str) -> str:
    """Format a count with its noun, as ``"1 row"`` or ``"3 rows"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_value(value: object, limit: int = MAX_SHOWN_VALUE_CHARS) -> str:
    """Format a cell value for a message: its ``repr``, cut to ``limit`` characters."""
    shown = repr(value)
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


class DataError(Exception):
    """Base class for data errors whose message is meant for the user.

    Attributes:
        message: The full message: file name, problem and fix.
        file_name: The file the problem is in, or None when no file is involved.
        column: The column the problem is in, if any.
        rows: 1-based data row numbers that show the problem (all of them, the
            message lists at most ``MAX_LISTED_ROWS``).
        value: The first offending value, if any.
        line: The 1-based line in the file, for problems found while parsing text.
        fix: What the user can do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        file_name: str | None = None,
        column: str | None = None,
        rows: Sequence[int] = (),
        value: object = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.file_name = file_name
        self.column = column
        self.rows = tuple(rows)
        self.value = value
        self.line = line
        self.fix = fix
        self.problem = problem

        parts = [f"{file_name}: {problem}" if file_name else problem]
        if fix:
            parts.append(fix)
        self.message = " ".join(parts)
        super().__init__(self.message)


class DataFormatError(DataError):
    """The file cannot be parsed: unknown extension, not text, invalid JSON, ragged rows."""


class DataTooLargeError(DataError):
    """The file is larger than the size limit of the reader."""


class DataValidationError(DataError):
    """The file parses, but a column or cell does not fit the task: missing column, bad labels."""
