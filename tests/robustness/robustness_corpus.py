"""Generate the bad-input corpus that the robustness tests feed to every entry point.

Each case is built in memory from a fixed seed, so no binary fixture is stored.
A case either loads (``loads`` is True, with the texts it must yield) or is
rejected with a ``DataError`` whose message contains every ``fragments`` item.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

LONG_CELL_CHARS = 200_000
ACCENTED_TEXTS = ("Café crème à Zürich", "Naïve façade, déjà vu")
PLAIN_ROWS = (
    ("The river Velmar runs 212 kilometres to the sea.", "yes"),
    ("The Quaskel Works opened in 1912.", "no"),
    ("Brena Tholk founded the works in 1874.", "yes"),
    ("The Velmar floods every spring.", "no"),
)


@dataclass(frozen=True)
class BadInput:
    """One generated input file and what every entry point must do with it.

    Attributes:
        name: Short case id, used as the pytest parameter id.
        file_name: The file name, whose extension selects the format.
        content: The file bytes.
        loads: True when the file must load (with warnings at most).
        fragments: Substrings the user-facing message must contain.
        texts: For a file that loads, the first texts of column ``text``.
        rows: For a file that loads, the number of data rows.
    """

    name: str
    file_name: str
    content: bytes
    loads: bool
    fragments: tuple[str, ...] = ()
    texts: tuple[str, ...] = field(default=())
    rows: int = 0


def _csv(rows: list[tuple[str, str]], *, header: str = "text,label", delimiter: str = ",") -> str:
    lines = [header.replace(",", delimiter)]
    lines.extend(delimiter.join(row) for row in rows)
    return "\n".join(lines) + "\n"


def _accented_rows() -> list[tuple[str, str]]:
    return [
        (f'"{ACCENTED_TEXTS[0]}"', "yes"),
        (f'"{ACCENTED_TEXTS[1]}"', "no"),
        *PLAIN_ROWS,
    ]


def _garbage(size: int = 4096, seed: int = 7) -> bytes:
    generator = random.Random(seed)
    # Random bytes with NULs, as in a compiled or compressed file without a signature.
    return bytes(generator.randrange(256) for _ in range(size))


def build_corpus() -> list[BadInput]:
    """Return every bad-input case, built fresh."""
    plain = list(PLAIN_ROWS)
    long_text = "word " * (LONG_CELL_CHARS // 5)
    mixed_labels = [
        {"text": PLAIN_ROWS[0][0], "label": 1},
        {"text": PLAIN_ROWS[1][0], "label": "1"},
        {"text": PLAIN_ROWS[2][0], "label": 0.5},
        {"text": PLAIN_ROWS[3][0], "label": 0},
    ]
    return [
        BadInput("empty", "empty.csv", b"", False, ("empty.csv", "the file is empty")),
        BadInput(
            "header_only",
            "header_only.csv",
            b"text,label\n",
            False,
            ("header_only.csv", "no data rows", "text, label"),
        ),
        BadInput(
            "utf16",
            "accents_utf16.csv",
            _csv(_accented_rows()).encode("utf-16"),
            True,
            texts=ACCENTED_TEXTS,
            rows=6,
        ),
        BadInput(
            "cp1252",
            "accents_cp1252.csv",
            _csv(_accented_rows()).encode("cp1252"),
            True,
            texts=ACCENTED_TEXTS,
            rows=6,
        ),
        BadInput(
            "utf8_bom",
            "bom.csv",
            b"\xef\xbb\xbf" + _csv(plain).encode("utf-8"),
            True,
            texts=(PLAIN_ROWS[0][0],),
            rows=4,
        ),
        BadInput(
            "semicolon",
            "semicolon.csv",
            _csv(plain, delimiter=";").encode("utf-8"),
            True,
            texts=(PLAIN_ROWS[0][0],),
            rows=4,
        ),
        BadInput(
            "ragged",
            "ragged.csv",
            (
                _csv(plain[:2]) + "A third row,yes,extra field\n" + _csv(plain[2:], header="")[1:]
            ).encode("utf-8"),
            False,
            ("ragged.csv", "line 4 (data row 3) has 3 fields", "header has 2"),
        ),
        BadInput(
            "mixed_labels",
            "mixed_labels.jsonl",
            "\n".join(json.dumps(row) for row in mixed_labels).encode("utf-8"),
            False,
            ("mixed_labels.jsonl", "column 'label' mixes label types", "row 2"),
        ),
        BadInput(
            "one_class",
            "one_class.csv",
            _csv([(text, "yes") for text, _ in plain]).encode("utf-8"),
            False,
            ("one_class.csv", "column 'label' has only one class, 'yes'"),
        ),
        BadInput(
            "blank_text",
            "blank_text.csv",
            _csv([plain[0], ("", "no"), *plain[2:]]).encode("utf-8"),
            False,
            ("blank_text.csv", "'text'", "row 2"),
        ),
        BadInput(
            "long_cell",
            "long_cell.csv",
            _csv([(long_text.strip(), "yes"), *plain]).encode("utf-8"),
            True,
            ("longer than 20000 characters", "row 1"),
            rows=5,
        ),
        BadInput(
            "binary",
            "garbage.csv",
            _garbage(),
            False,
            ("garbage.csv", "the file is not text", "NUL byte"),
        ),
        BadInput(
            "json_object",
            "object.json",
            json.dumps({"rows": [{"text": t, "label": label} for t, label in plain]}).encode(),
            False,
            ("object.json", "is an object", "'rows'"),
        ),
        BadInput(
            "duplicate_columns",
            "duplicates.csv",
            _csv(
                [(text, f"{text},{label}") for text, label in plain], header="text,text,label"
            ).encode("utf-8"),
            False,
            ("duplicates.csv", "repeats column names", "'text'"),
        ),
    ]


CORPUS = build_corpus()
CORPUS_IDS = [case.name for case in CORPUS]
