"""Write the demo files (claims.csv, qa.jsonl, README.md) and locate the committed ones."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from halluscope.demo.claims import generate_claims
from halluscope.demo.qa import REFUSAL_ANSWER, generate_qa

logger = logging.getLogger(__name__)

# NOTE: this path is right for a source checkout or an editable install, where
# core/ sits next to assets/. A wheel install does not ship assets/.
DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo"

CLAIMS_FILE = "claims.csv"
QA_FILE = "qa.jsonl"
README_FILE = "README.md"

CLAIM_ROWS = 600
QA_ROWS = 400

REGENERATE_COMMAND = "python -m halluscope.demo assets/demo"


def demo_path(name: str) -> Path:
    """Return the path of ``assets/demo/<name>`` in the source checkout.

    Raises:
        FileNotFoundError: the file does not exist; the message gives the
            command that writes the demo files.
    """
    path = DEMO_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"Demo file {path} not found. Write the demo files with `{REGENERATE_COMMAND}` "
            "from the repository root."
        )
    return path


def _readme(seed: int) -> str:
    return f"""# Demo data

Synthetic data about invented people, towns, companies, rivers, ships and
festivals. The names are built from syllables, so no pretrained model has
seen a fact about them, and every answer has to come from the context passage.
A passage states 3 or 4 facts (claims.csv) or 3 to 5 facts (qa.jsonl) about
one entity.

## claims.csv

{CLAIM_ROWS} rows for claim verification (a cross-encoder reads the context as
the first segment and the claim as the second).

| column | meaning |
| --- | --- |
| `id` | row id, `c0001` to `c{CLAIM_ROWS:04d}` |
| `context` | the passage |
| `claim` | one fact about the entity, or two joined by "and" |
| `label` | `supported` or `hallucinated`, 50/50 |
| `hallucination_type` | `none` (supported), or `number`, `name`, `date`, `added_fact` |
| `altered_words` | JSON list of the altered or added claim words (empty if supported) |
| `altered_spans` | JSON list of `[start, end)` character offsets of those words in `claim` |

A hallucinated claim changes one value of a stated fact: a number (to one of
similar magnitude), a name (to another invented name of the same kind) or a
date (in the same format). An `added_fact` claim states a fact that the
passage does not contain. For an added fact, `altered_words` lists the content
words of the added part. Supported claims restate stated facts with the
entity's name as the subject.

The rows come in minimal pairs. Each passage appears in two rows: once with a
hallucinated claim and once with a supported twin of the same shape (the same
clause unaltered, or a stated fact in place of the added one). A quarter of
the pairs add the same second, stated clause to both claims. Both labels
therefore share one length distribution and one set of sentence templates.
A split by row puts most twins on both sides, so memorising a passage lowers
validation accuracy there. Group rows by `context` to keep twins together.

## qa.jsonl

{QA_ROWS} JSON lines for the generative path, with the keys `id` (`q0001` to
`q{QA_ROWS:04d}`), `context`, `question`, `answer`, `answerable` (bool) and
`answer_type` (`number`, `name`, `date`, `place` or `refusal`). An answerable
answer is a value copied verbatim from the passage. A fifth of the questions
ask about a fact the passage does not state, and their answer is
"{REFUSAL_ANSWER}".

## How the files are made

`halluscope.demo` draws every value from one `random.Random({seed})` per file,
so the same seed writes the same bytes. To regenerate from the repository root:

```
{REGENERATE_COMMAND}
```
"""


def _write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    lines = []
    for record in frame.to_dict(orient="records"):
        record = {
            key: bool(value) if key == "answerable" else value for key, value in record.items()
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_demo_assets(out_dir: Path, *, seed: int = 0) -> dict[str, Path]:
    """Generate the demo sets and write them into ``out_dir``.

    Writes ``claims.csv`` (600 rows from :func:`generate_claims`),
    ``qa.jsonl`` (400 rows from :func:`generate_qa`) and ``README.md``.
    The bytes depend only on ``seed`` (default 0).

    Returns:
        The written paths by key: ``claims``, ``qa`` and ``readme``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    paths = {
        "claims": out_dir / CLAIMS_FILE,
        "qa": out_dir / QA_FILE,
        "readme": out_dir / README_FILE,
    }
    generate_claims(CLAIM_ROWS, seed).to_csv(paths["claims"], index=False, lineterminator="\n")
    _write_jsonl(generate_qa(QA_ROWS, seed), paths["qa"])
    paths["readme"].write_text(_readme(seed), encoding="utf-8")

    for path in paths.values():
        logger.info("Wrote %s", path)
    return paths
