"""Column roles of a table (texts, labels, prompts) and guesses of them from column names.

Column names are compared after lower-casing and replacing every run of
characters other than letters and digits by ``_``, so ``"BEGIN"``,
``"Begin Label"`` and ``"begin_label"`` compare as ``begin`` and ``begin_label``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from halluscope.data.cells import blank_mask
from halluscope.data.errors import DataValidationError

LABEL_COLUMN_NAMES = (
    "label",
    "labels",
    "class",
    "target",
    "begin",
    "begin_label",
    "gold_label",
    "gold",
    "hallucinated",
    "hallucination",
    "is_hallucinated",
    "is_hallucination",
    "faithful",
    "is_faithful",
    "category",
    "y",
)
"""Names of label columns, in order of preference."""

CONTEXT_COLUMN_NAMES = (
    "context",
    "evidence",
    "knowledge",
    "premise",
    "document",
    "source",
    "passage",
    "article",
)
"""Names of columns with the grounding text (context, evidence), in order of preference."""

CLAIM_COLUMN_NAMES = (
    "claim",
    "hypothesis",
    "response",
    "answer",
    "summary",
    "output",
    "generation",
    "completion",
    "statement",
)
"""Names of columns with the text to check against a context, in order of preference."""

GENERIC_TEXT_COLUMN_NAMES = ("text", "sentence", "content", "input", "question", "prompt")
"""Names of text columns that are neither a context nor a claim, in order of preference."""

PROMPT_COLUMN_NAMES = (
    "question",
    "prompt",
    "instruction",
    "query",
    "input",
    "history",
    "dialogue",
    "dialog",
)
"""Names of prompt columns for the generative path, in order of preference."""

ANSWER_COLUMN_NAMES = (
    "answer",
    "right_answer",
    "gold_answer",
    "reference",
    "response",
    "output",
    "summary",
    "completion",
    "target",
)
"""Names of answer columns for the generative path, in order of preference."""

GENERATION_CONTEXT_COLUMN_NAMES = (
    "context",
    "knowledge",
    "evidence",
    "source",
    "document",
    "passage",
    "article",
)
"""Names of context columns for the generative path, in order of preference."""

MAX_GUESSED_LABEL_CLASSES = 20
"""A column with more distinct values than this is never guessed to be the label."""

MAX_GUESSED_LABEL_CHARS = 40
"""A column whose values average more characters than this is never guessed to be the label."""

MIN_GUESSED_TEXT_CHARS = 15
"""A column whose values average fewer characters than this is never guessed to be a text."""

CONTENT_SAMPLE_ROWS = 5_000
"""Guesses from column content look at the first this many rows only."""


@dataclass(frozen=True)
class ClassificationSchema:
    """Columns of a text classification table.

    Attributes:
        text: The column with the first text. For a (context, claim) pair this
            is the context (evidence, premise, knowledge).
        label: The column with the class labels.
        text_pair: The column with the second text of a pair (the claim,
            hypothesis or response), or None for single texts.
    """

    text: str
    label: str
    text_pair: str | None = None

    def __post_init__(self) -> None:
        _check_column_names({"text": self.text, "label": self.label, "text_pair": self.text_pair})

    @property
    def columns(self) -> tuple[str, ...]:
        """The named columns: text, text_pair (if set), label."""
        return tuple(name for name in (self.text, self.text_pair, self.label) if name is not None)


@dataclass(frozen=True)
class GenerationSchema:
    """Columns of a table for the generative path.

    Attributes:
        prompt: The column with the prompt (question, instruction) given to the model.
        answer: The column with a reference or given answer, or None.
        context: The column with grounding text (knowledge, document), or None.
    """

    prompt: str
    answer: str | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        _check_column_names({"prompt": self.prompt, "answer": self.answer, "context": self.context})

    @property
    def columns(self) -> tuple[str, ...]:
        """The named columns: prompt, answer and context, where set."""
        return tuple(name for name in (self.prompt, self.answer, self.context) if name is not None)


def _check_column_names(fields: dict[str, str | None]) -> None:
    """Raise ValueError unless set fields are non-empty strings naming distinct columns."""
    seen: dict[str, str] = {}
    for field_name, column in fields.items():
        if column is None:
            continue
        if not isinstance(column, str) or not column:
            raise ValueError(f"{field_name} must be a non-empty column name, got {column!r}")
        if column in seen:
            raise ValueError(
                f"{field_name} and {seen[column]} both name column {column!r}; "
                "each role needs its own column"
            )
        seen[column] = field_name


def normalize_column_name(name: str) -> str:
    """Return ``name`` lower-cased, each run of non-alphanumeric characters replaced by ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


def _find_by_name(
    columns: Sequence[str], names: Sequence[str], exclude: Sequence[str | None] = ()
) -> str | None:
    """Return the column whose normalized name comes first in ``names``, or None."""
    by_normalized: dict[str, str] = {}
    for column in columns:
        if column not in exclude:
            by_normalized.setdefault(normalize_column_name(column), column)
    for name in names:
        if name in by_normalized:
            return by_normalized[name]
    return None


def _text_stats(column: pd.Series) -> tuple[float, int, float]:
    """Return (share of non-blank cells that are strings, distinct values, mean string length)."""
    values = column[~blank_mask(column)]
    if values.empty:
        return 0.0, 0, 0.0
    is_text = values.map(lambda value: isinstance(value, str))
    texts = values[is_text.to_numpy(dtype=bool)]
    mean_length = float(texts.str.len().mean()) if not texts.empty else 0.0
    distinct = int(values.astype(str).str.strip().nunique())
    return float(is_text.mean()), distinct, mean_length


def _guess_label_by_content(frame: pd.DataFrame, exclude: Sequence[str | None]) -> str | None:
    """Return the column with the fewest distinct short values (2 to 20), preferring later ones."""
    frame = frame.head(CONTENT_SAMPLE_ROWS)
    best: tuple[int, int] | None = None
    best_column = None
    for position, column in enumerate(frame.columns):
        if column in exclude:
            continue
        text_share, distinct, mean_length = _text_stats(frame[column])
        if not 2 <= distinct <= MAX_GUESSED_LABEL_CLASSES:
            continue
        if distinct > max(2, len(frame) // 2):
            continue
        if text_share > 0 and mean_length > MAX_GUESSED_LABEL_CHARS:
            continue
        key = (distinct, -position)
        if best is None or key < best:
            best, best_column = key, column
    return best_column


def _text_columns_by_length(frame: pd.DataFrame, exclude: Sequence[str | None]) -> list[str]:
    """Return the mostly-string columns averaging at least 15 characters, longest first."""
    frame = frame.head(CONTENT_SAMPLE_ROWS)
    scored = []
    for column in frame.columns:
        if column in exclude:
            continue
        text_share, _, mean_length = _text_stats(frame[column])
        if text_share >= 0.9 and mean_length >= MIN_GUESSED_TEXT_CHARS:
            scored.append((mean_length, column))
    scored.sort(key=lambda item: item[0], reverse=True)
    return [column for _, column in scored]


def _no_guess_error(role: str, frame: pd.DataFrame, fix: str) -> DataValidationError:
    """Build the error for a column role that could not be guessed."""
    available = ", ".join(repr(column) for column in frame.columns)
    return DataValidationError(
        f"could not guess the {role} column from the columns {available}.",
        fix=fix,
    )


def guess_classification_schema(frame: pd.DataFrame) -> ClassificationSchema:
    """Guess the text, text pair and label columns of a classification table.

    Rules, in order:

    1. Label: the column whose name comes first in ``LABEL_COLUMN_NAMES``. Else
       the column with the fewest distinct values among those with 2 to 20
       distinct short values (mean at most 40 characters), the later column on a tie.
    2. Texts by name: a context column (``CONTEXT_COLUMN_NAMES``) becomes
       ``text`` and a claim column (``CLAIM_COLUMN_NAMES``) becomes
       ``text_pair``. A generic text column (``GENERIC_TEXT_COLUMN_NAMES``)
       fills whichever of the two is missing, or is ``text`` alone.
    3. Texts by content, when no name matched: mostly-string columns averaging
       at least 15 characters, ranked by mean length. The one with the maximum
       mean length is ``text``, because a context is usually longer than the
       claim about it. The next one, if any, is ``text_pair``.

    Args:
        frame: The table, for example ``LoadedTable.frame``.

    Returns:
        The guessed schema. The user should confirm it.

    Raises:
        DataValidationError: No label or no text column could be found. The
            message lists the available columns.
    """
    columns = [str(column) for column in frame.columns]
    fix = "Pick the columns yourself, for example ClassificationSchema(text=..., label=...)."

    label = _find_by_name(columns, LABEL_COLUMN_NAMES)
    context = _find_by_name(columns, CONTEXT_COLUMN_NAMES, exclude=[label])
    claim = _find_by_name(columns, CLAIM_COLUMN_NAMES, exclude=[label, context])
    generic = _find_by_name(columns, GENERIC_TEXT_COLUMN_NAMES, exclude=[label, context, claim])

    if context is not None:
        text, text_pair = context, claim or generic
    elif claim is not None:
        text, text_pair = (generic, claim) if generic is not None else (claim, None)
    else:
        text, text_pair = generic, None

    if text is None:
        by_length = _text_columns_by_length(frame, exclude=[label])
        if by_length:
            text = by_length[0]
            text_pair = by_length[1] if len(by_length) > 1 else None

    if label is None:
        label = _guess_label_by_content(frame, exclude=[text, text_pair])
    if label is None:
        raise _no_guess_error("label", frame, fix)
    if text is None:
        raise _no_guess_error("text", frame, fix)
    return ClassificationSchema(text=text, label=label, text_pair=text_pair)


def guess_generation_schema(frame: pd.DataFrame) -> GenerationSchema:
    """Guess the prompt, answer and context columns of a table for the generative path.

    Each role takes the column whose name comes first in its list:
    ``PROMPT_COLUMN_NAMES``, ``ANSWER_COLUMN_NAMES`` and
    ``GENERATION_CONTEXT_COLUMN_NAMES``. When no prompt column matches but a
    context column does (a summarization table with ``source`` and
    ``summary``), the context column becomes the prompt and ``context`` stays None.

    Args:
        frame: The table, for example ``LoadedTable.frame``.

    Returns:
        The guessed schema. The user should confirm it.

    Raises:
        DataValidationError: No prompt column could be found. The message lists
            the available columns.
    """
    columns = [str(column) for column in frame.columns]
    context = _find_by_name(columns, GENERATION_CONTEXT_COLUMN_NAMES)
    prompt = _find_by_name(columns, PROMPT_COLUMN_NAMES, exclude=[context])
    answer = _find_by_name(columns, ANSWER_COLUMN_NAMES, exclude=[context, prompt])

    if prompt is None and context is not None:
        prompt, context = context, None
    if prompt is None:
        raise _no_guess_error(
            "prompt",
            frame,
            "Pick the columns yourself, for example GenerationSchema(prompt=..., answer=...).",
        )
    return GenerationSchema(prompt=prompt, answer=answer, context=context)
