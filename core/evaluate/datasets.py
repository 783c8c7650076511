"""Loaders of labelled hallucination data: XSum word labels, HaluEval QA pairs, FaithDial audits.

Each loader returns a ``LabelledDataset`` of plain ``LabelledResponse`` records
(context, question, response, label) that the evaluation scores the same way,
whatever the file format. Bad input raises ``DatasetError`` naming the file,
the row and the field.

Formats:

- XSum (Zhou et al. 2021, from the annotations of Maynez et al. 2020), JSONL:
  ``source`` (the article), ``summary``, ``words`` (``summary.split()``) and
  ``word_labels`` (1 = hallucinated word). A summary is hallucinated when any
  of its words is.
- HaluEval QA (Li et al. 2023), JSONL: ``knowledge``, ``question``,
  ``right_answer`` and ``hallucinated_answer``. Each line gives a matched pair
  of responses that share ``pair_id``.
- FaithDial audit CSVs (Dziri et al. 2022): either ``evidence``, ``history``,
  ``response`` and ``BEGIN`` (the human-written "gold" files) or
  ``knowledge``, ``history``, ``gpt2`` and ``begin_label`` (GPT-2 responses,
  with comma-separated labels when annotators listed several).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

DatasetName = Literal["xsum", "halueval", "faithdial"]
DATASET_NAMES: tuple[DatasetName, ...] = ("xsum", "halueval", "faithdial")

#: The instruction used as the question of XSum rows, which have none.
XSUM_QUESTION = "Summarise the article in one sentence."
#: The instruction used as the question of FaithDial rows without a dialogue history.
DIALOGUE_QUESTION = "Reply to the user with a response grounded in the context."

# FaithDial's BEGIN taxonomy, lower-cased.
_POSITIVE_BEGIN = frozenset({"hallucination", "partial hallucination"})
_NEGATIVE_BEGIN = frozenset({"entailment"})
_DROPPED_BEGIN = frozenset({"generic", "uncooperative"})
# Spellings found in the GPT-2 audit files.
_BEGIN_ALIASES = {"hallucinated": "hallucination"}
# Annotators separated several labels with commas, and a few with a full stop.
_LABEL_SEPARATOR = re.compile(r"[,.;]")


class DatasetError(ValueError):
    """A labelled data file is missing, malformed or has an invalid row."""


@dataclass(frozen=True)
class LabelledResponse:
    """One response with its context and hallucination label.

    Attributes:
        example_id: an id unique within the dataset, such as "berts2s.jsonl:12".
        source_file: the name of the file the row came from.
        row: the row's line number in that file (1 for the first JSONL line or
            the first CSV data row).
        context: the text the response should be grounded in.
        question: the question or dialogue turn answered; None for XSum.
        response: the response whose faithfulness is labelled.
        label: 1 when the response is (partly) hallucinated, else 0.
        word_labels: for XSum, one 0/1 label per whitespace-separated word of
            ``response``; else None.
        pair_id: for HaluEval, the id shared by the faithful and the
            hallucinated answer to one question; else None.
    """

    example_id: str
    source_file: str
    row: int
    context: str
    question: str | None
    response: str
    label: int
    word_labels: tuple[int, ...] | None = None
    pair_id: str | None = None

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"{self.example_id}: label must be 0 or 1, got {self.label!r}.")
        if self.word_labels is not None and len(self.word_labels) != len(self.response.split()):
            raise ValueError(
                f"{self.example_id}: {len(self.word_labels)} word labels for "
                f"{len(self.response.split())} words."
            )


@dataclass(frozen=True)
class LabelledDataset:
    """The labelled responses of one or more files of one dataset.

    Attributes:
        name: "xsum", "halueval" or "faithdial".
        records: the kept responses, in file order.
        dropped: rows left out, counted by reason (for FaithDial: "generic",
            "uncooperative", "unlabelled", "no_context", "no_response").
    """

    name: DatasetName
    records: tuple[LabelledResponse, ...]
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def files(self) -> tuple[str, ...]:
        """The source files of the records, in first-seen order."""
        return tuple(dict.fromkeys(record.source_file for record in self.records))


def _check_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found. Pass the path of a labelled data file.")
    return path


def _read_jsonl(path: Path, limit: int | None) -> Iterable[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for the non-empty lines of a JSONL file."""
    with path.open(encoding="utf-8") as stream:
        count = 0
        for line_number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            if limit is not None and count >= limit:
                return
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(
                    f"{path.name} line {line_number}: invalid JSON ({error.msg} at column "
                    f"{error.colno}). Each line must be one JSON object."
                ) from error
            if not isinstance(value, dict):
                raise DatasetError(
                    f"{path.name} line {line_number}: expected a JSON object, got "
                    f"{type(value).__name__}."
                )
            count += 1
            yield line_number, value


def _text(row: dict, key: str, where: str, *, allow_empty: bool = False) -> str:
    if key not in row:
        raise DatasetError(f"{where}: the field {key!r} is missing (the row has {sorted(row)}).")
    value = row[key]
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str):
        raise DatasetError(f"{where}: {key!r} must be text, got {type(value).__name__}.")
    if not value.strip() and not allow_empty:
        raise DatasetError(f"{where}: {key!r} is empty; fill it in or remove the row.")
    return value


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")


def load_xsum(path: Path | str, *, limit: int | None = None) -> LabelledDataset:
    """Load XSum summaries with word-level hallucination labels.

    Args:
        path: a JSONL file with ``source``, ``summary``, ``words`` and ``word_labels``.
        limit: keep only the first ``limit`` rows.

    Raises:
        DatasetError: the file is missing, a line is invalid, or ``words`` is
            not ``summary.split()`` or has a different length than ``word_labels``.
    """
    _check_limit(limit)
    path = _check_file(Path(path))
    records = []
    for line_number, row in _read_jsonl(path, limit):
        where = f"{path.name} line {line_number}"
        source = _text(row, "source", where)
        summary = _text(row, "summary", where)
        words = row.get("words")
        labels = row.get("word_labels")
        if not isinstance(words, list) or not isinstance(labels, list):
            raise DatasetError(f"{where}: 'words' and 'word_labels' must both be lists.")
        if words != summary.split():
            raise DatasetError(
                f"{where}: 'words' is not the summary split at whitespace "
                f"({len(words)} words against {len(summary.split())}); the labels cannot be "
                "aligned with the summary."
            )
        if len(labels) != len(words):
            raise DatasetError(
                f"{where}: {len(labels)} word_labels for {len(words)} words; "
                "give one label per word."
            )
        bad = [label for label in labels if label not in (0, 1) or isinstance(label, float)]
        if bad:
            raise DatasetError(f"{where}: word_labels must be 0 or 1, found {bad[0]!r}.")
        word_labels = tuple(int(label) for label in labels)
        records.append(
            LabelledResponse(
                example_id=str(row.get("id") or f"{path.name}:{line_number}"),
                source_file=path.name,
                row=line_number,
                context=source,
                question=None,
                response=summary,
                label=int(any(word_labels)),
                word_labels=word_labels,
            )
        )
    _require_rows(records, path)
    return LabelledDataset("xsum", tuple(records))


def load_halueval(path: Path | str, *, limit: int | None = None) -> LabelledDataset:
    """Load HaluEval QA pairs as two responses per question: faithful (0) then hallucinated (1).

    Args:
        path: a JSONL file with ``knowledge``, ``question``, ``right_answer``
            and ``hallucinated_answer``.
        limit: keep only the first ``limit`` questions (2 * ``limit`` responses).

    Raises:
        DatasetError: the file is missing, or a line is invalid or lacks a field.
    """
    _check_limit(limit)
    path = _check_file(Path(path))
    records = []
    for line_number, row in _read_jsonl(path, limit):
        where = f"{path.name} line {line_number}"
        knowledge = _text(row, "knowledge", where)
        question = _text(row, "question", where)
        pair_id = f"{path.name}:{line_number}"
        for key, label in (("right_answer", 0), ("hallucinated_answer", 1)):
            records.append(
                LabelledResponse(
                    example_id=f"{pair_id}:{key}",
                    source_file=path.name,
                    row=line_number,
                    context=knowledge,
                    question=question,
                    response=_text(row, key, where),
                    label=label,
                    pair_id=pair_id,
                )
            )
    _require_rows(records, path)
    return LabelledDataset("halueval", tuple(records))


# Column names of the two FaithDial audit layouts: context, history, response, label.
_FAITHDIAL_LAYOUTS = (
    ("evidence", "history", "response", "BEGIN"),
    ("knowledge", "history", "gpt2", "begin_label"),
)


def faithdial_label(value: str) -> int | str:
    """Map a FaithDial BEGIN label (or a comma-separated list of them) to 1, 0 or a drop reason.

    Hallucination and Partial Hallucination are positive (1). Otherwise
    Entailment is negative (0). A row with only Generic or Uncooperative
    returns that label in lower case, and an empty label returns
    "unlabelled", so the caller can drop and count the row. When annotators
    listed several labels, any hallucination makes the row positive.

    Raises:
        ValueError: an unknown label.
    """
    parts = (part.strip().lower() for part in _LABEL_SEPARATOR.split(value))
    labels = {_BEGIN_ALIASES.get(part, part) for part in parts if part}
    if not labels:
        return "unlabelled"
    unknown = labels - _POSITIVE_BEGIN - _NEGATIVE_BEGIN - _DROPPED_BEGIN
    if unknown:
        raise ValueError(
            f"unknown BEGIN label {value!r}; expected Entailment, Hallucination, "
            "Partial Hallucination, Generic or Uncooperative."
        )
    if labels & _POSITIVE_BEGIN:
        return 1
    if labels & _NEGATIVE_BEGIN:
        return 0
    return ",".join(sorted(labels))


def load_faithdial(
    paths: Path | str | Sequence[Path | str], *, limit: int | None = None
) -> LabelledDataset:
    """Load FaithDial audit CSVs with response-level labels.

    Args:
        paths: one CSV file, several, or a folder (every ``*.csv`` below it, sorted).
        limit: keep only the first ``limit`` labelled rows of each file.

    Raises:
        DatasetError: a file is missing, has neither column layout, or a row
            has an unknown label. Rows without a faithfulness label, context or
            response are dropped and counted in ``LabelledDataset.dropped``.
    """
    _check_limit(limit)
    files = _faithdial_files(paths)
    records: list[LabelledResponse] = []
    dropped: Counter[str] = Counter()
    for path in files:
        records.extend(_load_faithdial_file(path, limit, dropped))
    if dropped:
        logger.info("Left out FaithDial rows without a faithfulness label: %s", dict(dropped))
    if not records:
        raise DatasetError(f"{', '.join(str(path) for path in files)}: no labelled rows.")
    return LabelledDataset("faithdial", tuple(records), dict(dropped))


def _faithdial_files(paths: Path | str | Sequence[Path | str]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            found = sorted(entry.rglob("*.csv"))
            if not found:
                raise DatasetError(f"{entry}: the folder contains no .csv files.")
            files.extend(found)
        else:
            files.append(_check_file(entry))
    return files


def _load_faithdial_file(
    path: Path, limit: int | None, dropped: Counter[str]
) -> list[LabelledResponse]:
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        columns = reader.fieldnames or []
        layout = next(
            (names for names in _FAITHDIAL_LAYOUTS if all(name in columns for name in names)), None
        )
        if layout is None:
            raise DatasetError(
                f"{path.name}: expected the columns evidence, history, response, BEGIN or "
                f"knowledge, history, gpt2, begin_label; found {columns}."
            )
        context_key, history_key, response_key, label_key = layout

        records = []
        for row_number, row in enumerate(reader, start=1):
            if limit is not None and len(records) >= limit:
                break
            where = f"{path.name} row {row_number} (line {reader.line_num})"
            try:
                label = faithdial_label(row.get(label_key) or "")
            except ValueError as error:
                raise DatasetError(f"{where}, column {label_key!r}: {error}") from error
            if isinstance(label, str):
                dropped[label] += 1
                continue
            context = (row.get(context_key) or "").strip()
            response = (row.get(response_key) or "").strip()
            if not context or not response:
                # A few audit rows lack the knowledge or the response; they cannot be scored.
                dropped["no_context" if not context else "no_response"] += 1
                continue
            history = (row.get(history_key) or "").strip()
            records.append(
                LabelledResponse(
                    example_id=f"{path.parent.name}/{path.name}:{row_number}",
                    source_file=f"{path.parent.name}/{path.name}",
                    row=row_number,
                    context=context,
                    question=history or DIALOGUE_QUESTION,
                    response=response,
                    label=label,
                )
            )
    return records


def _require_rows(records: list[LabelledResponse], path: Path) -> None:
    if not records:
        raise DatasetError(f"{path.name}: the file contains no rows.")


def load_dataset(
    name: DatasetName, paths: Path | str | Sequence[Path | str], *, limit: int | None = None
) -> LabelledDataset:
    """Load one or more files of the dataset ``name`` ("xsum", "halueval" or "faithdial").

    ``limit`` caps the rows of each file (questions for HaluEval).

    Raises:
        ValueError: an unknown dataset name.
        DatasetError: a bad file (see the loader of that dataset).
    """
    if name == "faithdial":
        return load_faithdial(paths, limit=limit)
    loaders = {"xsum": load_xsum, "halueval": load_halueval}
    if name not in loaders:
        raise ValueError(f"dataset must be one of {DATASET_NAMES}, got {name!r}.")
    if isinstance(paths, (str, Path)):
        paths = [paths]
    parts = [loaders[name](path, limit=limit) for path in paths]
    records = tuple(record for part in parts for record in part.records)
    return LabelledDataset(name, records)
