"""Read a table from a file path or uploaded bytes.

Supported formats, chosen by file extension:

- ``.csv``, ``.tsv``, ``.txt``: delimited text (comma, tab, semicolon or pipe,
  detected). Every cell is read as a string, so ``"01"`` stays ``"01"``.
- ``.jsonl``: JSON Lines, one object per line. Values keep their JSON types.
- ``.json``: one array of objects. Values keep their JSON types.
- ``.parquet``: read with pyarrow. Columns keep their types.

Data rows are numbered from 1, starting at the first row after the header
(or the first object). Blank lines in text formats are not rows. Rows whose
cells are all empty are dropped with a warning, but keep their numbers, so the
numbers in later messages still point into the file.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from halluscope.data.cells import blank_mask
from halluscope.data.delimited import delimiter_name, detect_delimiter, parse_delimited
from halluscope.data.encoding import decode_text
from halluscope.data.errors import (
    DataError,
    DataFormatError,
    DataTooLargeError,
    count_of,
    format_rows,
    format_value,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200_000_000
"""Largest file ``read_table`` accepts by default: 200 MB (decimal, 200 000 000 bytes).

A file is held in memory several times while it is parsed (bytes, text, cells
and the DataFrame). Reading and validating a 64 MB CSV of 300 000 rows peaked
at about 700 MB of resident memory on a CPU machine, so a file at this limit
needs an estimated 2 to 3 GB.
"""

FORMAT_BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}
"""Table format for each supported file extension (lower case)."""

_EXTENSION_HINTS = {
    ".xlsx": "For an Excel workbook, save the sheet as CSV UTF-8 and upload that file.",
    ".xls": "For an Excel workbook, save the sheet as CSV UTF-8 and upload that file.",
    ".ndjson": "Rename a newline-delimited JSON file to .jsonl.",
    ".gz": "Decompress the file first.",
    ".zip": "Extract the file from the archive first.",
}


@dataclass(frozen=True)
class LoadedTable:
    """A table read from one file, with what was detected while reading it.

    Attributes:
        frame: The rows, with a fresh 0-based RangeIndex and string column names.
        file_name: The file name shown in messages (no folder).
        format: One of ``"csv"``, ``"tsv"``, ``"txt"``, ``"jsonl"``, ``"json"``, ``"parquet"``.
        encoding: The codec that decoded a text format, None for Parquet.
        delimiter: The cell delimiter of delimited text, None for other formats.
        warnings: Notes for the user about what the reader changed or guessed.
        row_numbers: 1-based data row number of each frame row, in frame order.
        line_numbers: 1-based line of the file where each frame row starts, for
            delimited text and JSON Lines; None for JSON and Parquet.
    """

    frame: pd.DataFrame
    file_name: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    warnings: tuple[str, ...] = ()
    row_numbers: tuple[int, ...] = field(default=())
    line_numbers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMAT_BY_EXTENSION.values():
            raise ValueError(
                f"format must be one of {sorted(set(FORMAT_BY_EXTENSION.values()))}, "
                f"got {self.format!r}"
            )
        if not self.row_numbers:
            object.__setattr__(self, "row_numbers", tuple(range(1, len(self.frame) + 1)))
        if len(self.row_numbers) != len(self.frame):
            raise ValueError(
                f"row_numbers has {len(self.row_numbers)} entries for {len(self.frame)} frame rows"
            )
        if self.line_numbers is not None and len(self.line_numbers) != len(self.frame):
            raise ValueError(
                f"line_numbers has {len(self.line_numbers)} entries "
                f"for {len(self.frame)} frame rows"
            )
        if not all(isinstance(name, str) for name in self.frame.columns):
            raise ValueError("frame column names must all be strings")

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names in file order."""
        return tuple(self.frame.columns)

    def row_number(self, position: int) -> int:
        """Return the 1-based data row number of the frame row at 0-based ``position``."""
        return self.row_numbers[position]

    def file_line(self, position: int) -> int | None:
        """Return the 1-based file line where the frame row at ``position`` starts.

        Returns None for JSON and Parquet, which have no line per row.
        """
        if self.line_numbers is None:
            return None
        return self.line_numbers[position]


def read_table(
    source: str | Path | bytes,
    *,
    file_name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedTable:
    """Read a data table from a path or from raw bytes, choosing the format by extension.

    Args:
        source: A file path, or the raw bytes of an uploaded file.
        file_name: The name shown in messages and used for the extension. It is
            required with bytes. With a path it defaults to the path's name.
        max_bytes: Largest accepted file size in bytes (default ``DEFAULT_MAX_BYTES``).

    Returns:
        The table, with the detected encoding, delimiter and warnings.

    Raises:
        DataError: The file is missing, too large, of an unknown type, not
            parseable or empty. The message names the file and the fix.
        ValueError: ``source`` is bytes and ``file_name`` is missing.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not file_name:
            raise ValueError("file_name is required when source is bytes: it selects the format")
        table_format = _format_for(file_name)
        data = bytes(source)
        _check_size(len(data), max_bytes, file_name)
    else:
        path = Path(source)
        file_name = file_name or path.name
        table_format = _format_for(file_name)
        data = _read_path(path, file_name, max_bytes)

    if not data or data.isspace():
        raise DataFormatError("the file is empty.", file_name=file_name, fix=_EMPTY_FIX)

    if table_format == "parquet":
        table = _read_parquet(data, file_name)
    else:
        table = _read_text(data, file_name, table_format)

    table = _drop_empty_rows(table)
    logger.info(
        "read %s: %d rows, %d columns (format=%s, encoding=%s, delimiter=%r)",
        file_name,
        len(table.frame),
        len(table.frame.columns),
        table.format,
        table.encoding,
        table.delimiter,
    )
    return table


_EMPTY_FIX = "Use a file with a header line (or JSON objects) and at least one data row."


def _check_size(size: int, max_bytes: int, file_name: str) -> None:
    """Raise DataTooLargeError when ``size`` exceeds ``max_bytes``."""
    if size > max_bytes:
        raise DataTooLargeError(
            f"the file is {_format_size(size)}, over the {_format_size(max_bytes)} limit "
            "of the reader.",
            file_name=file_name,
            fix=(
                "Keep only the rows and columns you need, or split the file into parts. "
                "Code that calls read_table can raise the limit with max_bytes."
            ),
        )


def _format_size(size: int) -> str:
    """Format a byte count as ``"250.3 MB (250,300,000 bytes)"``, or as bytes below 1 MB.

    The exact count is kept because a file just over the limit rounds to the limit in MB.
    """
    if size < 1_000_000:
        return f"{size:,} bytes"
    return f"{size / 1e6:.1f} MB ({size:,} bytes)"


def _read_path(path: Path, file_name: str, max_bytes: int) -> bytes:
    """Read the bytes of ``path`` after checking that it is a file within the size limit."""
    if not path.exists():
        raise DataError(
            f"file not found at {path}.", file_name=file_name, fix="Check the path and try again."
        )
    if not path.is_file():
        raise DataError(
            f"{path} is not a file.", file_name=file_name, fix="Give the path of a data file."
        )
    _check_size(path.stat().st_size, max_bytes, file_name)
    return path.read_bytes()


def _format_for(file_name: str) -> str:
    """Return the table format for the extension of ``file_name``."""
    extension = Path(file_name).suffix.lower()
    if extension in FORMAT_BY_EXTENSION:
        return FORMAT_BY_EXTENSION[extension]
    supported = ", ".join(FORMAT_BY_EXTENSION)
    shown = f"extension {extension!r}" if extension else "no extension"
    fix = f"Use one of the supported extensions: {supported}."
    if extension in _EXTENSION_HINTS:
        fix += " " + _EXTENSION_HINTS[extension]
    raise DataFormatError(
        f"unsupported file type: the file name has {shown}.",
        file_name=file_name,
        value=extension,
        fix=fix,
    )


def _read_text(data: bytes, file_name: str, table_format: str) -> LoadedTable:
    """Decode a text format and parse it as delimited text, JSON or JSON Lines."""
    decoded = decode_text(data, file_name)
    if not decoded.text or decoded.text.isspace():
        raise DataFormatError("the file is empty.", file_name=file_name, fix=_EMPTY_FIX)

    if table_format == "json":
        frame = _parse_json(decoded.text, file_name)
        return LoadedTable(frame, file_name, "json", decoded.encoding, None, decoded.warnings)

    if table_format == "jsonl":
        frame, row_numbers, lines = _parse_jsonl(decoded.text, file_name)
        return LoadedTable(
            frame, file_name, "jsonl", decoded.encoding, None, decoded.warnings, row_numbers, lines
        )

    preferred = "\t" if table_format == "tsv" else None
    delimiter, delimiter_warnings = detect_delimiter(decoded.text, preferred)
    rows = parse_delimited(decoded.text, delimiter, file_name)
    frame = pd.DataFrame(rows.records, columns=list(rows.header), dtype=str)
    warnings = decoded.warnings + delimiter_warnings + rows.warnings
    logger.debug("%s: %s-delimited", file_name, delimiter_name(delimiter))
    return LoadedTable(
        frame,
        file_name,
        table_format,
        decoded.encoding,
        delimiter,
        warnings,
        rows.row_numbers,
        rows.line_numbers,
    )


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, raising _DuplicateKeyError when a key repeats."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


class _DuplicateKeyError(ValueError):
    """A JSON object repeats a key; ``args[0]`` is the key."""


def _parse_json(text: str, file_name: str) -> pd.DataFrame:
    """Parse a JSON array of objects into a DataFrame."""
    try:
        parsed = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKeyError as error:
        key = error.args[0]
        raise DataFormatError(
            f"an object repeats the key {key!r}.",
            file_name=file_name,
            column=key,
            value=key,
            fix="Give every key of an object a unique name.",
        ) from error
    except json.JSONDecodeError as error:
        raise DataFormatError(
            f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}.",
            file_name=file_name,
            line=error.lineno,
            fix="Fix the JSON syntax there, or save the data as JSON Lines (.jsonl).",
        ) from error

    if isinstance(parsed, dict):
        raise DataFormatError(
            f"the top-level JSON value is an object, but the reader needs a list of objects "
            f"(one per row).{_describe_nested_rows(parsed)}",
            file_name=file_name,
            fix=(
                'Save the rows as a JSON list, [{"text": ..., "label": ...}, ...], '
                "or as JSON Lines."
            ),
        )
    if not isinstance(parsed, list):
        raise DataFormatError(
            f"the top-level JSON value is a {type(parsed).__name__}, not a list of objects.",
            file_name=file_name,
            value=parsed,
            fix='Save the rows as a JSON list, [{"text": ..., "label": ...}, ...].',
        )
    if not parsed:
        raise DataFormatError("the JSON list is empty.", file_name=file_name, fix=_EMPTY_FIX)

    _check_objects(parsed, file_name, lines=None)
    return pd.DataFrame(parsed)


def _describe_nested_rows(parsed: dict[str, Any]) -> str:
    """Name the key whose value looks like the row list, to help the user fix the file."""
    for key, value in parsed.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return f" The list under key {key!r} looks like the rows."
    return f" Its keys are {format_value(list(parsed)[:10])}."


def _check_objects(items: Sequence[Any], file_name: str, lines: Sequence[int] | None) -> None:
    """Raise DataFormatError naming the rows that are not JSON objects."""
    bad = [index for index, item in enumerate(items) if not isinstance(item, dict)]
    if not bad:
        return
    rows = [index + 1 for index in bad]
    first = items[bad[0]]
    where = format_rows(rows)
    if lines is not None:
        where += f" ({format_rows([lines[index] for index in bad], noun='line')})"
    raise DataFormatError(
        f"every row must be a JSON object, but {where} "
        f"{'is' if len(bad) == 1 else 'are'} not; the first is the {type(first).__name__} "
        f"{format_value(first)}.",
        file_name=file_name,
        rows=rows,
        value=first,
        line=None if lines is None else lines[bad[0]],
        fix='Write each row as an object with named fields, such as {"text": ..., "label": ...}.',
    )


def _parse_jsonl(
    text: str, file_name: str
) -> tuple[pd.DataFrame, tuple[int, ...], tuple[int, ...]]:
    """Parse JSON Lines into a DataFrame, its row numbers and the line of each row."""
    items: list[Any] = []
    lines: list[int] = []
    # Split on "\n" only: str.splitlines would also split on U+2028, which JSON
    # allows unescaped inside strings.
    for line_number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            items.append(json.loads(stripped, object_pairs_hook=_reject_duplicate_keys))
        except _DuplicateKeyError as error:
            key = error.args[0]
            raise DataFormatError(
                f"the object on line {line_number} repeats the key {key!r}.",
                file_name=file_name,
                column=key,
                rows=[len(items) + 1],
                value=key,
                line=line_number,
                fix="Give every key of an object a unique name.",
            ) from error
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"line {line_number} is not valid JSON ({error.msg} at character {error.colno}): "
                f"{format_value(stripped)}.",
                file_name=file_name,
                rows=[len(items) + 1],
                value=stripped,
                line=line_number,
                fix="Write one complete JSON object per line, with no line breaks inside it.",
            ) from error
        lines.append(line_number)

    _check_objects(items, file_name, lines)
    row_numbers = tuple(range(1, len(items) + 1))
    return pd.DataFrame(items), row_numbers, tuple(lines)


def _read_parquet(data: bytes, file_name: str) -> LoadedTable:
    """Read Parquet bytes with pyarrow into a DataFrame."""
    if not (data.startswith(b"PAR1") and data.endswith(b"PAR1")):
        raise DataFormatError(
            "the file is not a Parquet file: it lacks the PAR1 marks at its start and end.",
            file_name=file_name,
            fix="Check that the file was saved as Parquet, or rename it to its real extension.",
        )

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        arrow_table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as error:
        raise DataFormatError(
            f"the Parquet file could not be read: {error}.",
            file_name=file_name,
            fix="Write the file again with pandas.DataFrame.to_parquet or pyarrow.",
        ) from error

    # to_pandas moves a stored pandas index (``__index_level_0__``) back into the
    # index, which is then dropped, so names come from the frame, not the schema.
    frame = arrow_table.to_pandas().reset_index(drop=True)
    names = [str(name) for name in frame.columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataFormatError(
            f"the Parquet file repeats column names: {', '.join(map(repr, repeated))}.",
            file_name=file_name,
            column=repeated[0],
            value=repeated[0],
            fix="Rename the repeated columns so that every column name is unique.",
        )
    frame.columns = names
    if frame.empty:
        raise DataFormatError(
            f"the Parquet file has columns ({', '.join(names)}) but no rows.",
            file_name=file_name,
            fix=_EMPTY_FIX,
        )
    return LoadedTable(frame, file_name, "parquet")


def _drop_empty_rows(table: LoadedTable) -> LoadedTable:
    """Drop rows whose cells are all blank, keeping the row numbers of the others."""
    frame = table.frame
    if frame.columns.empty:
        raise DataFormatError(
            "the file has rows but no columns.", file_name=table.file_name, fix=_EMPTY_FIX
        )
    blank = np.logical_and.reduce([blank_mask(frame[name]) for name in frame.columns])
    if not blank.any():
        return table

    dropped_rows = [row for row, is_blank in zip(table.row_numbers, blank, strict=True) if is_blank]
    if len(dropped_rows) == len(frame):
        raise DataFormatError(
            f"every data row is empty ({len(frame)} rows).",
            file_name=table.file_name,
            fix=_EMPTY_FIX,
        )

    keep = ~blank
    row_numbers = tuple(row for row, kept in zip(table.row_numbers, keep, strict=True) if kept)
    line_numbers = None
    if table.line_numbers is not None:
        line_numbers = tuple(
            line for line, kept in zip(table.line_numbers, keep, strict=True) if kept
        )
    note = (
        f"Skipped {count_of(len(dropped_rows), 'row')} whose cells are all empty "
        f"({format_rows(dropped_rows)})."
    )
    return LoadedTable(
        frame.loc[keep].reset_index(drop=True),
        table.file_name,
        table.format,
        table.encoding,
        table.delimiter,
        table.warnings + (note,),
        row_numbers,
        line_numbers,
    )
