"""Check a loaded table against a schema and turn it into model-ready texts and labels.

Checks, in order: the schema's columns exist, the labels are valid (see
``halluscope.data.labels``), and every kept text cell is non-empty. Cells longer
than ``max_chars`` are cut to that length with a warning; that is never an error.
Numbers in text columns (JSON or Parquet) are converted to text with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from halluscope.data.cells import blank_mask
from halluscope.data.errors import DataValidationError, count_of, format_rows, format_value
from halluscope.data.labels import encode_labels
from halluscope.data.reading import LoadedTable
from halluscope.data.schema import ClassificationSchema, GenerationSchema

logger = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 20_000
"""Maximum length of a text cell in characters. Longer cells are cut to this length."""


@dataclass(frozen=True)
class ClassificationData:
    """Texts and label ids ready for a sequence classifier.

    Attributes:
        texts: The first text of each kept row (the context, for pairs).
        text_pairs: The second text of each kept row (the claim), or None.
        labels: The label id of each kept row.
        label_names: The class name of each label id (index = id).
        row_numbers: The 1-based data row in the file of each kept row.
        dropped: The number of rows that the label map dropped.
        warnings: Notes for the user, from reading and from validation.
        file_name: The file the rows came from.
        schema: The columns the rows came from.
    """

    texts: tuple[str, ...]
    text_pairs: tuple[str, ...] | None
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    row_numbers: tuple[int, ...]
    dropped: int
    warnings: tuple[str, ...]
    file_name: str
    schema: ClassificationSchema

    def __post_init__(self) -> None:
        size = len(self.texts)
        for name in ("labels", "row_numbers"):
            if len(getattr(self, name)) != size:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {size} texts")
        if self.text_pairs is not None and len(self.text_pairs) != size:
            raise ValueError(f"text_pairs has {len(self.text_pairs)} entries for {size} texts")
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"label_names must be unique, got {self.label_names}")
        if any(not 0 <= label < len(self.label_names) for label in self.labels):
            raise ValueError(f"labels must be ids in 0..{len(self.label_names) - 1}")
        if self.dropped < 0:
            raise ValueError(f"dropped must be >= 0, got {self.dropped}")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        """Label id to class name, the form a model config stores."""
        return dict(enumerate(self.label_names))

    def to_frame(self) -> pd.DataFrame:
        """Return the rows as a DataFrame.

        Columns: row, text, text_pair (only for pairs), label (id) and label_name.
        """
        columns: dict[str, Any] = {"row": list(self.row_numbers), "text": list(self.texts)}
        if self.text_pairs is not None:
            columns["text_pair"] = list(self.text_pairs)
        columns["label"] = list(self.labels)
        columns["label_name"] = [self.label_names[label] for label in self.labels]
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class GenerationData:
    """Prompts, with optional answers and contexts, for the generative path.

    Attributes:
        prompts: The prompt of each row.
        answers: The reference or given answer of each row, or None.
        contexts: The grounding text of each row, or None.
        row_numbers: The 1-based data row in the file of each row.
        warnings: Notes for the user, from reading and from validation.
        file_name: The file the rows came from.
        schema: The columns the rows came from.
    """

    prompts: tuple[str, ...]
    answers: tuple[str, ...] | None
    contexts: tuple[str, ...] | None
    row_numbers: tuple[int, ...]
    warnings: tuple[str, ...]
    file_name: str
    schema: GenerationSchema

    def __post_init__(self) -> None:
        size = len(self.prompts)
        if len(self.row_numbers) != size:
            raise ValueError(f"row_numbers has {len(self.row_numbers)} entries for {size} prompts")
        for name in ("answers", "contexts"):
            values = getattr(self, name)
            if values is not None and len(values) != size:
                raise ValueError(f"{name} has {len(values)} entries for {size} prompts")

    def __len__(self) -> int:
        return len(self.prompts)

    def to_frame(self) -> pd.DataFrame:
        """Return the rows as a DataFrame with columns row, prompt, answer and context (if set)."""
        columns: dict[str, Any] = {"row": list(self.row_numbers), "prompt": list(self.prompts)}
        if self.answers is not None:
            columns["answer"] = list(self.answers)
        if self.contexts is not None:
            columns["context"] = list(self.contexts)
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class UnlabeledTexts:
    """Texts (and optional text pairs) without labels, ready for prediction."""

    texts: tuple[str, ...]
    text_pairs: tuple[str, ...] | None
    row_numbers: tuple[int, ...]
    warnings: tuple[str, ...]
    file_name: str

    def __post_init__(self) -> None:
        if len(self.row_numbers) != len(self.texts):
            raise ValueError(
                f"row_numbers has {len(self.row_numbers)} entries for {len(self.texts)} texts"
            )
        if self.text_pairs is not None and len(self.text_pairs) != len(self.texts):
            raise ValueError(
                f"text_pairs has {len(self.text_pairs)} entries for {len(self.texts)} texts"
            )

    def __len__(self) -> int:
        return len(self.texts)


def _check_max_chars(max_chars: int) -> None:
    """Raise ValueError unless ``max_chars`` is a positive integer."""
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")


def _check_columns_exist(table: LoadedTable, columns: Sequence[str]) -> None:
    """Raise DataValidationError naming the first missing column and listing the available ones."""
    missing = [column for column in columns if column not in table.frame.columns]
    if not missing:
        return
    available = ", ".join(repr(column) for column in table.frame.columns)
    listed = ", ".join(repr(column) for column in missing)
    raise DataValidationError(
        f"column{'s' if len(missing) > 1 else ''} {listed} not found. "
        f"Available columns: {available}.",
        file_name=table.file_name,
        column=missing[0],
        value=missing[0],
        fix="Pick columns from the available ones, or rename the columns in the file.",
    )


def _text_cells(
    table: LoadedTable,
    column: str,
    keep: np.ndarray,
    max_chars: int,
    *,
    allow_blank: bool = False,
) -> tuple[tuple[str, ...], list[str]]:
    """Return the kept cells of a text column as strings, with warnings.

    Blank cells raise DataValidationError, unless ``allow_blank``, where they
    become ``""`` with a warning. Numbers and booleans become text with a
    warning. Lists, objects and other values raise DataValidationError.
    """
    series = table.frame[column]
    row_numbers = np.asarray(table.row_numbers)
    blank = blank_mask(series) & keep
    if blank.any():
        rows = row_numbers[blank].tolist()
        first = series[blank].iloc[0]
        problem = f"column {column!r} has {count_of(len(rows), 'empty cell')}: {format_rows(rows)}."
        if not allow_blank:
            raise DataValidationError(
                problem,
                file_name=table.file_name,
                column=column,
                rows=rows,
                value=first,
                fix="Fill in these cells, or remove their rows.",
            )
        warnings = [f"{problem[0].upper()}{problem[1:]} They were kept as empty text."]
    else:
        warnings = []

    texts: list[str] = []
    converted: list[int] = []
    unsupported: list[int] = []
    truncated: list[int] = []
    for value, row, kept, is_blank in zip(series, row_numbers, keep, blank, strict=True):
        if not kept:
            continue
        if is_blank:
            texts.append("")
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
            text = str(value)
            converted.append(int(row))
        else:
            unsupported.append(int(row))
            continue
        if len(text) > max_chars:
            text = text[:max_chars]
            truncated.append(int(row))
        texts.append(text)

    if unsupported:
        first = series[np.isin(row_numbers, unsupported)].iloc[0]
        raise DataValidationError(
            f"column {column!r} has cells that are not text in {format_rows(unsupported)}; "
            f"the first is the {type(first).__name__} {format_value(first)}.",
            file_name=table.file_name,
            column=column,
            rows=unsupported,
            value=first,
            fix="Store plain text in this column.",
        )
    if converted:
        warnings.append(
            f"Column {column!r} has numbers or booleans instead of text in "
            f"{format_rows(converted)}; they were converted to text."
        )
    if truncated:
        warnings.append(
            f"Column {column!r} has {count_of(len(truncated), 'cell')} longer than {max_chars} "
            f"characters ({format_rows(truncated)}); they were cut to that length."
        )
    return tuple(texts), warnings


def prepare_classification(
    table: LoadedTable,
    schema: ClassificationSchema,
    *,
    label_map: Mapping[str, str | None] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> ClassificationData:
    """Validate a table for text classification and return texts with label ids.

    Args:
        table: The table from ``read_table``.
        schema: The text, text pair and label columns.
        label_map: Raw label value to class name, or to None to drop the row.
            Rows whose label is not in the map are dropped too. With a map, ids
            follow the order of the map's names; without one, see
            ``halluscope.data.labels``.
        max_chars: Maximum length of a text cell in characters (default 20 000).

    Returns:
        The kept rows with their texts, label ids, class names and row numbers.

    Raises:
        DataValidationError: A column is missing, a label is empty, mixed-type
            or fractional, only one class remains, or a kept text cell is empty.
        ValueError: ``max_chars`` or ``label_map`` is malformed.
    """
    _check_max_chars(max_chars)
    _check_columns_exist(table, schema.columns)

    encoded = encode_labels(
        table.frame[schema.label],
        table.row_numbers,
        column_name=schema.label,
        file_name=table.file_name,
        label_map=label_map,
    )
    warnings = list(table.warnings) + list(encoded.warnings)

    texts, text_warnings = _text_cells(table, schema.text, encoded.keep, max_chars)
    warnings.extend(text_warnings)
    text_pairs = None
    if schema.text_pair is not None:
        text_pairs, pair_warnings = _text_cells(table, schema.text_pair, encoded.keep, max_chars)
        warnings.extend(pair_warnings)

    row_numbers = tuple(np.asarray(table.row_numbers)[encoded.keep].tolist())
    logger.info(
        "%s: %d rows for classification, %d dropped, classes %s",
        table.file_name,
        len(texts),
        encoded.dropped,
        encoded.label_names,
    )
    return ClassificationData(
        texts=texts,
        text_pairs=text_pairs,
        labels=encoded.labels,
        label_names=encoded.label_names,
        row_numbers=row_numbers,
        dropped=encoded.dropped,
        warnings=tuple(warnings),
        file_name=table.file_name,
        schema=schema,
    )


def prepare_unlabeled(
    table: LoadedTable,
    text: str,
    text_pair: str | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> UnlabeledTexts:
    """Validate the text columns of a table that has no labels, for prediction.

    The same checks as ``prepare_classification`` apply to the text cells.

    Raises:
        DataValidationError: A column is missing, or a text cell is empty or not text.
    """
    _check_max_chars(max_chars)
    columns = [text] if text_pair is None else [text, text_pair]
    _check_columns_exist(table, columns)
    keep = np.ones(len(table.frame), dtype=bool)
    warnings = list(table.warnings)

    texts, text_warnings = _text_cells(table, text, keep, max_chars)
    warnings.extend(text_warnings)
    text_pairs = None
    if text_pair is not None:
        text_pairs, pair_warnings = _text_cells(table, text_pair, keep, max_chars)
        warnings.extend(pair_warnings)
    return UnlabeledTexts(
        texts=texts,
        text_pairs=text_pairs,
        row_numbers=tuple(table.row_numbers),
        warnings=tuple(warnings),
        file_name=table.file_name,
    )


def prepare_generation(
    table: LoadedTable,
    schema: GenerationSchema,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> GenerationData:
    """Validate a table for the generative path and return prompts, answers and contexts.

    Empty prompts are an error. Empty answer or context cells are kept as
    ``""`` with a warning, because a row may lack a reference answer or a
    retrieved context.

    Args:
        table: The table from ``read_table``.
        schema: The prompt, answer and context columns.
        max_chars: Maximum length of a text cell in characters (default 20 000).

    Returns:
        The prompts, answers and contexts of every row, with row numbers.

    Raises:
        DataValidationError: A column is missing, or a prompt cell is empty or not text.
        ValueError: ``max_chars`` is not a positive integer.
    """
    _check_max_chars(max_chars)
    _check_columns_exist(table, schema.columns)
    keep = np.ones(len(table.frame), dtype=bool)
    warnings = list(table.warnings)

    prompts, prompt_warnings = _text_cells(table, schema.prompt, keep, max_chars)
    warnings.extend(prompt_warnings)
    answers = contexts = None
    if schema.answer is not None:
        answers, answer_warnings = _text_cells(
            table, schema.answer, keep, max_chars, allow_blank=True
        )
        warnings.extend(answer_warnings)
    if schema.context is not None:
        contexts, context_warnings = _text_cells(
            table, schema.context, keep, max_chars, allow_blank=True
        )
        warnings.extend(context_warnings)

    logger.info("%s: %d rows for generation", table.file_name, len(prompts))
    return GenerationData(
        prompts=prompts,
        answers=answers,
        contexts=contexts,
        row_numbers=tuple(table.row_numbers),
        warnings=tuple(warnings),
        file_name=table.file_name,
        schema=schema,
    )
