"""Generate the context-question-answer demo set for the generative path.

Each row contains a passage of 3 to 5 facts about one invented entity and one
question about it. An answerable question asks for a slot value of a stated
fact, and its answer is that value, verbatim from the passage. An unanswerable
question asks about a fact of the same kind that the passage does not state,
and its answer is :data:`REFUSAL_ANSWER`.
"""

from __future__ import annotations

import logging
import random

import pandas as pd

from halluscope.demo.entities import Entity, Fact, draw_entity, draw_fact
from halluscope.demo.names import NamePools
from halluscope.demo.templates import ENTITY_KINDS

logger = logging.getLogger(__name__)

REFUSAL_ANSWER = "The context does not say."
REFUSAL_TYPE = "refusal"
ANSWER_TYPES = ("number", "name", "date", "place", REFUSAL_TYPE)

QA_COLUMNS = ("id", "context", "question", "answer", "answerable", "answer_type")

UNANSWERABLE_SHARE = 0.2
MIN_FACTS = 3
MAX_FACTS = 5

_MAX_TRIES = 100


def _question(entity: Entity, fact: Fact, slot_name: str) -> str:
    question = fact.template.questions[slot_name]
    return question.format(subject=entity.inline_subject, **fact.values)


def _askable(fact: Fact) -> list[str]:
    return [name for name in fact.template.slots if name in fact.template.questions]


def _draw_row(rng: random.Random, pools: NamePools, answerable: bool) -> dict[str, object]:
    kind = rng.choice(ENTITY_KINDS)
    entity = draw_entity(rng, pools, kind, rng.randint(MIN_FACTS, MAX_FACTS))

    if answerable:
        pairs = [(fact, slot_name) for fact in entity.facts for slot_name in _askable(fact)]
        fact, slot_name = rng.choice(pairs)
        answer = fact.values[slot_name]
        answer_type = fact.template.slots[slot_name].answer_type
    else:
        template = rng.choice([t for t in entity.unused_templates() if t.questions])
        fact = draw_fact(rng, pools, template, entity.names())
        slot_name = rng.choice(_askable(fact))
        answer = REFUSAL_ANSWER
        answer_type = REFUSAL_TYPE

    return {
        "context": entity.context(),
        "question": _question(entity, fact, slot_name),
        "answer": answer,
        "answerable": answerable,
        "answer_type": answer_type,
    }


def generate_qa(n_rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Generate a context-question-answer set about invented entities.

    Args:
        n_rows: Number of rows (default 400). ``round(0.2 * n_rows)`` of them
            ask a question that the context cannot answer.
        seed: Seed of the ``random.Random`` that draws everything; the same
            seed gives the same frame.

    Returns:
        A frame with the columns of :data:`QA_COLUMNS`: ``id`` (``q0001``,
        ...), ``context``, ``question``, ``answer`` (a number, name, date or
        place copied verbatim from the context, or :data:`REFUSAL_ANSWER`),
        ``answerable`` (bool) and ``answer_type`` (``number``, ``name``,
        ``date``, ``place`` or ``refusal``). No two rows share a
        (context, question) pair.

    Raises:
        ValueError: ``n_rows`` is less than 1.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}.")

    rng = random.Random(seed)
    pools = NamePools.draw(rng)
    n_unanswerable = round(UNANSWERABLE_SHARE * n_rows)
    plan = [False] * n_unanswerable + [True] * (n_rows - n_unanswerable)
    rng.shuffle(plan)

    seen: set[tuple[str, str]] = set()
    rows = []
    for index, answerable in enumerate(plan, start=1):
        for _ in range(_MAX_TRIES):
            row = _draw_row(rng, pools, answerable)
            key = (str(row["context"]), str(row["question"]))
            if key not in seen:
                break
        else:
            raise RuntimeError(f"Could not draw a new (context, question) pair for row {index}.")

        seen.add(key)
        rows.append({"id": f"q{index:04d}", **row})

    logger.info("Generated %d question rows with seed %d", n_rows, seed)
    frame = pd.DataFrame(rows, columns=list(QA_COLUMNS))
    frame["answerable"] = frame["answerable"].astype(bool)
    return frame
