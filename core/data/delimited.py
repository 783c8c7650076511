"""Detect the delimiter of CSV-like text and parse it into rows of strings.

Parsing uses the standard ``csv`` module with RFC 4180 quoting: ``"`` quotes a
cell and ``""`` is a literal quote inside it. Strict mode is on, so an unclosed
quote raises an error that names its line. Without it, the rest of the file
would become one cell. Every cell stays a string, so labels such as ``"01"``
keep their spelling.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from dataclasses import dataclass

from halluscope.data.errors import DataFormatError, count_of, format_rows, format_value

logger = logging.getLogger(__name__)

DELIMITER_CANDIDATES = (",", "\t", ";", "|")
SNIFF_SAMPLE_CHARS = 64 * 1024

_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def delimiter_name(delimiter: str) -> str:
    """Return a readable name such as ``"comma"`` for a delimiter character."""
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


@dataclass(frozen=True)
class DelimitedRows:
    """Rows parsed from delimited text.

    Attributes:
        header: Column names, stripped of surrounding whitespace.
        records: One list of cells per data row, padded to the header length.
        row_numbers: 1-based data row number of each record. Blank lines are
            not rows, so they take no number.
        line_numbers: 1-based line of the file where each record starts.
        warnings: Notes for the user, such as padded short rows.
    """

    header: tuple[str, ...]
    records: list[list[str]]
    row_numbers: tuple[int, ...]
    line_numbers: tuple[int, ...]
    warnings: tuple[str, ...]


def detect_delimiter(text: str, preferred: str | None = None) -> tuple[str, tuple[str, ...]]:
    """Detect the delimiter of ``text`` among comma, tab, semicolon and pipe.

    ``csv.Sniffer`` proposes a delimiter first. Its choice is kept only when the
    header splits into more than one field and the sampled rows all have as many
    fields as the header. Otherwise each candidate is tried, ``preferred`` first,
    and the consistent one with the most header fields wins. When no candidate
    splits the header, the file is read as a single column, split only on
    the candidate that occurs least often in it.

    Args:
        text: The decoded file content.
        preferred: The delimiter that the file extension implies (tab for .tsv).

    Returns:
        The delimiter and any warnings for the user.
    """
    sample = text[:SNIFF_SAMPLE_CHARS]
    sample_is_cut = len(text) > len(sample)
    if sample_is_cut and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]

    candidates = list(DELIMITER_CANDIDATES)
    if preferred in candidates:
        candidates.remove(preferred)
        candidates.insert(0, preferred)

    if preferred is not None and _field_counts(sample, preferred, sample_is_cut)[0]:
        return preferred, ()

    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(candidates)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed is not None and _field_counts(sample, sniffed, sample_is_cut)[0]:
        return sniffed, ()

    scored = []
    for order, candidate in enumerate(candidates):
        consistent, header_fields = _field_counts(sample, candidate, sample_is_cut)
        if header_fields > 1:
            scored.append((consistent, header_fields, -order, candidate))
    if scored:
        best = max(scored)
        logger.debug("delimiter fallback picked %r from %s", best[3], scored)
        return best[3], ()

    # A single column: parse with the candidate that occurs least often, so that
    # commas inside the text do not split it into extra fields.
    fallback = min(candidates, key=sample.count)
    note = (
        "No comma, tab, semicolon or pipe separates the header line, "
        "so the file was read as a single column."
    )
    return fallback, (note,)


def _field_counts(sample: str, delimiter: str, sample_is_cut: bool) -> tuple[bool, int]:
    """Return (every sampled row has the header's field count and it exceeds 1, header fields)."""
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    try:
        for record in reader:
            if record:
                records.append(record)
    except csv.Error:
        # A quoted cell that runs past the sample end, or a stray quote: judge
        # the delimiter on the rows parsed so far.
        sample_is_cut = False
    if not records:
        return False, 0
    if sample_is_cut and len(records) > 1:
        records = records[:-1]
    header_fields = len(records[0])
    consistent = header_fields > 1 and all(len(record) == header_fields for record in records)
    return consistent, header_fields


def parse_delimited(text: str, delimiter: str, file_name: str) -> DelimitedRows:
    """Parse delimited ``text`` into a header and data rows of strings.

    Rows with fewer fields than the header are padded with empty cells and
    reported in a warning. Rows with more fields raise an error, because the
    extra field usually comes from an unquoted delimiter inside a cell.

    Args:
        text: The decoded file content.
        delimiter: One character that separates cells.
        file_name: The file name, used in messages.

    Returns:
        The header, records, row and line numbers and warnings.

    Raises:
        DataFormatError: No header, a malformed quote, duplicate column names or
            a row with more fields than the header.
    """
    _allow_large_fields(len(text))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    line_numbers: list[int] = []
    header: list[str] | None = None
    header_line = 0
    previous_line = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise _quote_error(error, previous_line + 1, reader.line_num, file_name) from error
        start_line = previous_line + 1
        previous_line = reader.line_num
        if not record:
            continue
        if header is None:
            header = record
            header_line = start_line
            continue
        records.append(record)
        line_numbers.append(start_line)

    if header is None:
        raise DataFormatError("the file is empty.", file_name=file_name, fix=_EMPTY_FIX)

    names, warnings = _clean_header(header, header_line, file_name)
    if not records:
        raise DataFormatError(
            f"the file has a header ({', '.join(names)}) but no data rows.",
            file_name=file_name,
            line=header_line,
            fix="Add at least one data row below the header.",
        )

    row_numbers = tuple(range(1, len(records) + 1))
    _check_long_rows(records, row_numbers, line_numbers, len(names), delimiter, file_name)
    warnings.extend(_pad_short_rows(records, row_numbers, len(names)))
    return DelimitedRows(tuple(names), records, row_numbers, tuple(line_numbers), tuple(warnings))


_EMPTY_FIX = "Use a file with a header line and at least one data row."


def _allow_large_fields(text_length: int) -> None:
    """Raise the csv module's cell size limit (131 072 characters by default) to fit this text."""
    # NOTE: field_size_limit is process-wide. It is only ever raised here, never
    # lowered, so a parse running in another thread cannot be cut short by it.
    needed = min(max(text_length, 1), sys.maxsize, 2**31 - 1)
    if csv.field_size_limit() < needed:
        csv.field_size_limit(needed)


def _quote_error(
    error: csv.Error, start_line: int, end_line: int, file_name: str
) -> DataFormatError:
    """Build the error for malformed quoting in the record that starts at ``start_line``."""
    if "unexpected end of data" in str(error):
        problem = (
            f"a quoted cell that starts on line {start_line} is never closed, "
            f"so the rest of the file (to line {end_line}) would be read as one cell."
        )
    else:
        problem = f"malformed quoting on line {end_line}: {error}."
    return DataFormatError(
        problem,
        file_name=file_name,
        line=start_line,
        fix=(
            'A quoted cell must end with " followed by the delimiter or the line end, '
            'and a quote inside a quoted cell is written twice ("").'
        ),
    )


def _clean_header(header: list[str], line: int, file_name: str) -> tuple[list[str], list[str]]:
    """Strip column names, name blank ones ``"Unnamed: i"`` and reject duplicates."""
    warnings: list[str] = []
    names = [name.strip() for name in header]
    blank = [index for index, name in enumerate(names) if not name]
    for index in blank:
        names[index] = f"Unnamed: {index}"
    if blank:
        positions = ", ".join(str(index + 1) for index in blank)
        warnings.append(
            f"The header has blank column names at positions {positions}; "
            f"they were named {', '.join(names[index] for index in blank)}."
        )

    positions_by_name: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        positions_by_name.setdefault(name, []).append(index + 1)
    duplicates = {name: spots for name, spots in positions_by_name.items() if len(spots) > 1}
    if duplicates:
        first_name, first_spots = next(iter(duplicates.items()))
        listed = "; ".join(
            f"{name!r} at positions {', '.join(map(str, spots))}"
            for name, spots in duplicates.items()
        )
        raise DataFormatError(
            f"the header repeats column names: {listed}.",
            file_name=file_name,
            column=first_name,
            value=first_name,
            line=line,
            fix="Rename the repeated columns so that every column name is unique.",
        )
    return names, warnings


def _check_long_rows(
    records: list[list[str]],
    row_numbers: tuple[int, ...],
    line_numbers: list[int],
    header_fields: int,
    delimiter: str,
    file_name: str,
) -> None:
    """Raise DataFormatError naming the rows that have more fields than the header."""
    long_rows = [index for index, record in enumerate(records) if len(record) > header_fields]
    if not long_rows:
        return
    first = long_rows[0]
    rows = [row_numbers[index] for index in long_rows]
    lines = [line_numbers[index] for index in long_rows]
    problem = (
        f"line {lines[0]} (data row {rows[0]}) has {len(records[first])} fields, "
        f"but the header has {header_fields}."
    )
    if len(long_rows) > 1:
        problem += (
            f" {len(long_rows)} rows have more fields than the header: {format_rows(rows)} "
            f"({format_rows(lines, noun='line')})."
        )
    content = delimiter.join(records[first])
    problem += f" Line {lines[0]} reads {format_value(content)}."
    raise DataFormatError(
        problem,
        file_name=file_name,
        rows=rows,
        value=content,
        line=lines[0],
        fix=(
            f"Put double quotes around cells that contain the {delimiter_name(delimiter)} "
            "delimiter, or remove the extra fields."
        ),
    )


def _pad_short_rows(
    records: list[list[str]], row_numbers: tuple[int, ...], header_fields: int
) -> list[str]:
    """Pad rows with fewer fields than the header with empty cells; return a warning if any."""
    short_rows = []
    for index, record in enumerate(records):
        if len(record) < header_fields:
            record.extend([""] * (header_fields - len(record)))
            short_rows.append(row_numbers[index])
    if not short_rows:
        return []
    return [
        f"{count_of(len(short_rows), 'row')} with fewer fields than the header "
        f"({format_rows(short_rows)}) had their missing cells read as empty."
    ]
