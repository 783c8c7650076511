"""Turn a column of class labels into integer label ids.

Without a label map, every cell must be of one kind:

- integers, as numbers (``0``, ``1``, ``1.0``) or as text (``"0"``, ``"01"``):
  ids follow integer order and the names are the integers written out, so
  ``"01"`` and ``"1"`` are one class named ``"1"``;
- booleans (``true``/``false`` in JSON): ``false`` is id 0, ``true`` is id 1;
- words: surrounding whitespace is trimmed and ids follow the sorted names.

Numbers with a fraction (``0.5``) are rejected, because they are scores rather
than classes. A label map instead names the classes itself, see ``encode_labels``.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from halluscope.data.cells import is_blank
from halluscope.data.errors import DataValidationError, count_of, format_rows, format_value

logger = logging.getLogger(__name__)

FAITHDIAL_BEGIN_LABEL_MAP: Mapping[str, str | None] = MappingProxyType(
    {
        "Entailment": "supported",
        "Hallucination": "hallucinated",
        "Partial Hallucination": "hallucinated",
        "Generic": None,
        "Uncooperative": None,
    }
)
"""Label map for the ``BEGIN`` column of FaithDial: ``supported`` is id 0, ``hallucinated`` id 1.

Partial hallucinations count as hallucinated. Generic and uncooperative
responses make no claim about the evidence, so their rows are dropped.
"""

_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_DECIMAL_TEXT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")

# Kinds of label cells, and the family of each for the mixed-type check.
_FAMILY_BY_KIND = {
    "integer": "numbers",
    "decimal": "numbers",
    "integer text": "numbers written as text",
    "decimal text": "numbers written as text",
    "word": "words",
    "boolean": "booleans",
}


@dataclass(frozen=True)
class EncodedLabels:
    """Label ids of the rows that a label column keeps.

    Attributes:
        labels: Label id of each kept row, in row order.
        label_names: Class name of each label id (index = id).
        keep: Boolean mask over the input rows, True where the row is kept.
        dropped: Number of rows that the label map dropped.
        warnings: Notes for the user.
    """

    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    keep: np.ndarray
    dropped: int
    warnings: tuple[str, ...]


def _classify_cell(value: Any) -> tuple[str, str | None]:
    """Return (kind, class name) of a label cell; the kind of a bad cell is blank or unsupported."""
    if is_blank(value):
        return "blank", None
    if isinstance(value, (bool, np.bool_)):
        return "boolean", "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return "integer", str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return "integer", str(int(value))
        return "decimal", repr(float(value))
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER_TEXT.fullmatch(text):
            return "integer text", str(int(text))
        if _DECIMAL_TEXT.fullmatch(text):
            number = float(text)
            if math.isfinite(number) and number.is_integer():
                return "integer text", str(int(number))
            return "decimal text", text
        return "word", text
    return "unsupported", None


def _map_key(value: Any) -> str | None:
    """Return the text a label map is looked up with: the trimmed cell as written in the file."""
    if is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, str):
        return value.strip()
    return None


def _rows_where(mask: Sequence[bool], row_numbers: Sequence[int]) -> list[int]:
    """Return the row numbers at the positions where ``mask`` is True."""
    return [row for row, flagged in zip(row_numbers, mask, strict=True) if flagged]


def encode_labels(
    column: pd.Series,
    row_numbers: Sequence[int],
    *,
    column_name: str,
    file_name: str | None,
    label_map: Mapping[str, str | None] | None = None,
) -> EncodedLabels:
    """Validate a label column and turn it into label ids.

    With ``label_map``, each cell is trimmed and looked up as written (numbers as
    their integer text, booleans as ``true``/``false``). A value mapped to a
    name becomes that class, and a value mapped to None or missing from the
    map drops its row. Ids follow the order in which the names first appear
    among the map's values, so ``FAITHDIAL_BEGIN_LABEL_MAP`` makes
    ``supported`` id 0 and ``hallucinated`` id 1 in every file.

    Args:
        column: The label cells, one per row.
        row_numbers: The 1-based data row number of each cell, for messages.
        column_name: The column name, for messages.
        file_name: The file name, for messages.
        label_map: Raw label value to class name, or to None to drop the row.

    Returns:
        The ids of the kept rows, the class names, the keep mask and warnings.

    Raises:
        DataValidationError: Empty, mixed-type, fractional or unsupported
            labels, or fewer than two classes.
        ValueError: ``label_map`` has a key or value that is not text.
    """
    values = column.tolist()
    if len(values) != len(row_numbers):
        raise ValueError(f"{len(values)} label cells but {len(row_numbers)} row numbers")

    classified = [_classify_cell(value) for value in values]
    kinds = [kind for kind, _ in classified]
    context = _LabelContext(values, kinds, row_numbers, column_name, file_name)
    context.reject_kind("unsupported")

    if label_map is not None:
        return _encode_with_map(context, label_map)

    context.reject_kind("blank")
    context.reject_mixed_families()
    context.reject_kind("decimal")
    context.reject_kind("decimal text")
    names = [name for _, name in classified]
    return _encode_without_map(context, names)


@dataclass(frozen=True)
class _LabelContext:
    """A label column with the facts that error messages name."""

    values: list[Any]
    kinds: list[str]
    row_numbers: Sequence[int]
    column_name: str
    file_name: str | None

    def error(self, problem: str, rows: list[int], value: Any, fix: str) -> DataValidationError:
        """Build a DataValidationError about this column."""
        return DataValidationError(
            f"column {self.column_name!r} {problem}",
            file_name=self.file_name,
            column=self.column_name,
            rows=rows,
            value=value,
            fix=fix,
        )

    def reject_kind(self, kind: str) -> None:
        """Raise a DataValidationError naming the rows whose cells are of ``kind``."""
        positions = [index for index, found in enumerate(self.kinds) if found == kind]
        if not positions:
            return
        rows = [self.row_numbers[index] for index in positions]
        first = self.values[positions[0]]
        count = count_of(len(rows), "row")
        if kind == "blank":
            raise self.error(
                f"has empty labels in {count}: {format_rows(rows)}.",
                rows,
                first,
                "Fill in a label for these rows, or remove them.",
            )
        if kind == "unsupported":
            raise self.error(
                f"has labels that are neither text nor numbers in {count}: rows "
                f"{format_rows(rows)}; the first is the {type(first).__name__} "
                f"{format_value(first)}.",
                rows,
                first,
                "Store one class name or integer class id per cell.",
            )
        raise self.error(
            f"has labels that are not whole numbers in {count}: {format_rows(rows)}; "
            f"the first is {format_value(first)}.",
            rows,
            first,
            "Class labels must be names or integer ids. If the column holds scores, "
            "turn them into classes first (for example score >= 0.5 becomes 1).",
        )

    def reject_mixed_families(self) -> None:
        """Raise DataValidationError when cells mix numbers, numeric text, words or booleans."""
        families = [_FAMILY_BY_KIND[kind] for kind in self.kinds]
        counts = Counter(families)
        if len(counts) < 2:
            return
        # The family of the most cells is taken as the intended one; on a tie, the
        # family of the first row wins. The rows of every other family are reported.
        first_seen = {family: index for index, family in reversed(list(enumerate(families)))}
        main = max(counts, key=lambda family: (counts[family], -first_seen[family]))
        odd_positions = [index for index, family in enumerate(families) if family != main]
        rows = [self.row_numbers[index] for index in odd_positions]
        first = self.values[odd_positions[0]]
        described = ", ".join(f"{family}: {count}" for family, count in counts.most_common())
        raise self.error(
            f"mixes label types ({described}). Most labels are {main}, but not in "
            f"{format_rows(rows)}; the first is {format_value(first)}.",
            rows,
            first,
            "Write every label the same way: all class names, or all integer class ids.",
        )


def _check_two_classes(context: _LabelContext, present: Counter[str], fix: str) -> None:
    """Raise a DataValidationError when fewer than two classes have rows."""
    if len(present) >= 2:
        return
    if not present:
        raise context.error("has no row whose label the label map keeps.", [], None, fix)
    ((name, count),) = present.items()
    raise context.error(
        f"has only one class, {name!r} (all {count_of(count, 'kept row')}); "
        "a classifier needs at least two classes.",
        [],
        name,
        fix,
    )


def _encode_without_map(context: _LabelContext, names: list[str | None]) -> EncodedLabels:
    """Assign ids in integer order, false-before-true order or sorted name order."""
    kind = context.kinds[0]
    present = Counter(name for name in names if name is not None)
    _check_two_classes(
        context,
        present,
        "Check that the right column is the label, or add rows of the other classes.",
    )

    warnings: list[str] = []
    if kind in ("integer", "integer text"):
        label_names = tuple(sorted(present, key=int))
        expected = tuple(str(index) for index in range(len(label_names)))
        if label_names != expected:
            pairs = ", ".join(f"{name} -> {index}" for index, name in enumerate(label_names))
            warnings.append(
                f"Column {context.column_name!r} has integer labels that are not 0 to "
                f"{len(label_names) - 1}; they were given label ids in order: {pairs}."
            )
        warnings.extend(_merged_spellings(context))
    elif kind == "boolean":
        label_names = tuple(name for name in ("false", "true") if name in present)
    else:
        label_names = tuple(sorted(present))
        warnings.extend(_case_only_differences(context.column_name, label_names))

    id_by_name = {name: index for index, name in enumerate(label_names)}
    labels = tuple(id_by_name[name] for name in names if name is not None)
    keep = np.ones(len(names), dtype=bool)
    return EncodedLabels(labels, label_names, keep, 0, tuple(warnings))


def _merged_spellings(context: _LabelContext) -> list[str]:
    """Warn when integer labels written differently (``"1"`` and ``"01"``) became one class."""
    spellings: dict[int, set[str]] = {}
    for value, kind in zip(context.values, context.kinds, strict=True):
        if kind == "integer text":
            name = _classify_cell(value)[1]
            spellings.setdefault(int(name), set()).add(value.strip())
    merged = {number: sorted(found) for number, found in spellings.items() if len(found) > 1}
    if not merged:
        return []
    listed = "; ".join(
        f"{', '.join(map(repr, found))} as {number}" for number, found in sorted(merged.items())
    )
    return [
        f"Column {context.column_name!r} writes the same integer label in different ways, "
        f"which were read as one class: {listed}."
    ]


def _case_only_differences(column_name: str, label_names: Sequence[str]) -> list[str]:
    """Warn about class names that differ only in letter case (``Generic``, ``generic``)."""
    by_folded: dict[str, list[str]] = {}
    for name in label_names:
        by_folded.setdefault(name.casefold(), []).append(name)
    groups = [names for names in by_folded.values() if len(names) > 1]
    if not groups:
        return []
    listed = "; ".join(" and ".join(map(repr, names)) for names in groups)
    return [
        f"Column {column_name!r} has labels that differ only in letter case ({listed}); "
        "they are different classes. Merge them with a label map if they mean the same."
    ]


def _normalize_label_map(label_map: Mapping[str, str | None]) -> dict[str, str | None]:
    """Trim the keys and values of ``label_map`` and check their types."""
    normalized: dict[str, str | None] = {}
    for key, name in label_map.items():
        if not isinstance(key, str):
            raise ValueError(f"label_map keys must be text as written in the file, got {key!r}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(
                f"label_map[{key!r}] must be a class name or None (drop the row), got {name!r}"
            )
        trimmed = key.strip()
        if trimmed in normalized:
            raise ValueError(f"label_map has two keys that are {trimmed!r} after trimming")
        normalized[trimmed] = None if name is None else name.strip()
    return normalized


def _encode_with_map(context: _LabelContext, label_map: Mapping[str, str | None]) -> EncodedLabels:
    """Map raw labels to class names, dropping rows mapped to None or missing from the map."""
    mapping = _normalize_label_map(label_map)
    label_names = tuple(dict.fromkeys(name for name in mapping.values() if name is not None))
    id_by_name = {name: index for index, name in enumerate(label_names)}

    keep = np.zeros(len(context.values), dtype=bool)
    labels: list[int] = []
    present: Counter[str] = Counter()
    mapped_to_none: Counter[str] = Counter()
    not_in_map: Counter[str] = Counter()
    for index, value in enumerate(context.values):
        key = _map_key(value)
        if key is None:
            not_in_map["(empty)"] += 1
            continue
        if key not in mapping:
            not_in_map[key] += 1
            continue
        name = mapping[key]
        if name is None:
            mapped_to_none[key] += 1
            continue
        keep[index] = True
        labels.append(id_by_name[name])
        present[name] += 1

    found = ", ".join(repr(key) for key, _ in (mapped_to_none + not_in_map).most_common(10))
    _check_two_classes(
        context,
        present,
        f"Check the label map keys against the values in the column ({found or 'none'}).",
    )

    warnings: list[str] = []
    dropped = sum(mapped_to_none.values()) + sum(not_in_map.values())
    if dropped:
        parts = []
        if mapped_to_none:
            parts.append("mapped to None: " + _format_counts(mapped_to_none))
        if not_in_map:
            parts.append("not in the label map: " + _format_counts(not_in_map))
        warnings.append(
            f"The label map dropped {dropped} of {len(context.values)} rows "
            f"of column {context.column_name!r} ({'; '.join(parts)})."
        )
    unused = [name for name in label_names if name not in present]
    if unused:
        warnings.append(
            f"Classes {', '.join(map(repr, unused))} of the label map have no rows in this file; "
            "they keep their label ids."
        )
    logger.debug("label map kept %d rows, dropped %d", len(labels), dropped)
    return EncodedLabels(tuple(labels), label_names, keep, dropped, tuple(warnings))


def _format_counts(counts: Counter[str]) -> str:
    """Format counts as ``"'Generic' 29, 'Uncooperative' 8"``, most common first."""
    return ", ".join(f"{key!r} {count}" for key, count in counts.most_common())
