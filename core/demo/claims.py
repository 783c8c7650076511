"""Generate the claim-verification demo set: context passages, claims and labels.

Each row contains a passage of 3 or 4 facts about one invented entity and one
claim about it. Half of the claims are supported, half are hallucinated, and
the hallucinated ones split evenly into four types:

* ``number``: a number of a context fact changed to one of similar magnitude;
* ``name``: a name changed to another name of the same pool;
* ``date``: a year or a full date changed, in the same format;
* ``added_fact``: a fact that the passage does not state.

The rows come in minimal pairs: every passage appears twice, once with a
hallucinated claim and once with a supported twin of the same shape: the same
clause unaltered or, for an added fact, a stated fact in its place. A claim is
one fact clause, or in a quarter of the pairs two joined by "and" (the second
one stated). So both labels share one length distribution and one set of
templates, and the label can only be read by comparing the claim with the
passage.
"""

from __future__ import annotations

import json
import logging
import random

import pandas as pd

from halluscope.demo.entities import (
    Entity,
    Fact,
    Segment,
    clause_segments,
    draw_entity,
    draw_fact,
    join_segments,
)
from halluscope.demo.names import NamePools
from halluscope.demo.templates import ENTITY_KINDS, EntityKind

logger = logging.getLogger(__name__)

SUPPORTED = "supported"
HALLUCINATED = "hallucinated"
NO_HALLUCINATION = "none"
HALLUCINATION_TYPES = ("number", "name", "date", "added_fact")

CLAIM_COLUMNS = (
    "id",
    "context",
    "claim",
    "label",
    "hallucination_type",
    "altered_words",
    "altered_spans",
)

MIN_FACTS = 3
MAX_FACTS = 4

# Share of pairs whose two claims also state a second context fact, joined by
# "and". Keeping most claims to one clause makes the altered words a large
# share of the claim tokens.
TWO_CLAUSE_SHARE = 0.25

_MAX_TRIES = 100


def _plan_types(n_pairs: int, rng: random.Random) -> list[str]:
    plan: list[str] = []
    for index, kind in enumerate(HALLUCINATION_TYPES):
        share = n_pairs // len(HALLUCINATION_TYPES)
        if index < n_pairs % len(HALLUCINATION_TYPES):
            share += 1
        plan += [kind] * share
    rng.shuffle(plan)
    return plan


def _claim_segments(entity: Entity, clauses: list[list[Segment]]) -> list[Segment]:
    segments = [Segment(entity.subject + " ", False)]
    for index, clause in enumerate(clauses):
        if index:
            segments.append(Segment(" and ", False))
        segments.extend(clause)
    segments.append(Segment(".", False))
    return segments


def _row(entity: Entity, clauses: list[list[Segment]], hallucination_type: str) -> dict[str, str]:
    claim, words, spans = join_segments(_claim_segments(entity, clauses))
    return {
        "context": entity.context(),
        "claim": claim,
        "label": SUPPORTED if hallucination_type == NO_HALLUCINATION else HALLUCINATED,
        "hallucination_type": hallucination_type,
        "altered_words": json.dumps(words),
        "altered_spans": json.dumps(spans),
    }


def _with_optional_clause(
    rng: random.Random,
    entity: Entity,
    hallucinated: list[Segment],
    supported: list[Segment],
    used: Fact,
) -> tuple[list[list[Segment]], list[list[Segment]]]:
    """Give both twins the same second, stated clause in a share of the pairs."""
    if rng.random() >= TWO_CLAUSE_SHARE:
        return [hallucinated], [supported]

    other = clause_segments(rng.choice([fact for fact in entity.facts if fact is not used]))
    if rng.random() < 0.5:
        return [hallucinated, other], [supported, other]
    return [other, hallucinated], [other, supported]


def _altered_pair(
    rng: random.Random, pools: NamePools, kind: EntityKind, category: str
) -> tuple[Entity, list[list[Segment]], list[list[Segment]]]:
    targets = [template for template in kind.templates if template.slots_of(category)]
    target = rng.choice(targets)
    entity = draw_entity(rng, pools, kind, rng.randint(MIN_FACTS, MAX_FACTS), required=[target])
    fact = next(fact for fact in entity.facts if fact.template.key == target.key)

    slot_name = rng.choice(target.slots_of(category))
    old_value = fact.values[slot_name]
    new_value = target.slots[slot_name].alter(rng, old_value, pools, entity.context())
    altered = clause_segments(
        fact.with_value(slot_name, new_value), original={slot_name: old_value}
    )
    return entity, *_with_optional_clause(rng, entity, altered, clause_segments(fact), fact)


def _added_fact_pair(
    rng: random.Random, pools: NamePools, kind: EntityKind
) -> tuple[Entity, list[list[Segment]], list[list[Segment]]]:
    entity = draw_entity(rng, pools, kind, rng.randint(MIN_FACTS, MAX_FACTS))
    template = rng.choice(entity.unused_templates())
    invented = clause_segments(draw_fact(rng, pools, template, entity.names()), added=True)

    # The supported twin states a context fact where the hallucinated one adds a new one.
    replacement = rng.choice(entity.facts)
    supported = clause_segments(replacement)
    return entity, *_with_optional_clause(rng, entity, invented, supported, replacement)


def _draw_pair(
    rng: random.Random, pools: NamePools, hallucination_type: str
) -> list[dict[str, str]]:
    kind = rng.choice(ENTITY_KINDS)
    if hallucination_type == "added_fact":
        entity, hallucinated, supported = _added_fact_pair(rng, pools, kind)
    else:
        entity, hallucinated, supported = _altered_pair(rng, pools, kind, hallucination_type)
    return [
        _row(entity, hallucinated, hallucination_type),
        _row(entity, supported, NO_HALLUCINATION),
    ]


def _draw_single_supported(rng: random.Random, pools: NamePools) -> list[dict[str, str]]:
    entity = draw_entity(rng, pools, rng.choice(ENTITY_KINDS), rng.randint(MIN_FACTS, MAX_FACTS))
    n_clauses = 2 if rng.random() < TWO_CLAUSE_SHARE else 1
    clauses = [clause_segments(fact) for fact in rng.sample(entity.facts, n_clauses)]
    return [_row(entity, clauses, NO_HALLUCINATION)]


def generate_claims(n_rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Generate a balanced claim-verification set about invented entities.

    Args:
        n_rows: Number of rows (default 600). ``n_rows // 2`` minimal pairs
            give one hallucinated and one supported row each, with the pairs
            split as evenly as possible over the four hallucination types. An
            odd ``n_rows`` adds one unpaired supported row.
        seed: Seed of the ``random.Random`` that draws everything; the same
            seed gives the same frame.

    Returns:
        A frame with the columns of :data:`CLAIM_COLUMNS`, in shuffled row
        order. They are ``id`` (``c0001``, ...), ``context``, ``claim``,
        ``label`` (``supported`` or ``hallucinated``) and
        ``hallucination_type`` (``none``, ``number``, ``name``, ``date``,
        ``added_fact``). ``altered_words`` is a JSON list of the altered or
        added words as they appear in the claim, and ``altered_spans`` a JSON
        list of their ``[start, end)`` character offsets into the claim.
        No two rows share a (context, claim) pair, but each paired context
        appears in two rows, so a split by row puts most twins on both
        sides. Group by ``context`` to keep them together.

    Raises:
        ValueError: ``n_rows`` is less than 1.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}.")

    rng = random.Random(seed)
    pools = NamePools.draw(rng)
    plan = _plan_types(n_rows // 2, rng)
    if n_rows % 2:
        plan.append(NO_HALLUCINATION)

    seen: set[tuple[str, str]] = set()
    rows: list[dict[str, str]] = []
    for hallucination_type in plan:
        for _ in range(_MAX_TRIES):
            if hallucination_type == NO_HALLUCINATION:
                drawn = _draw_single_supported(rng, pools)
            else:
                drawn = _draw_pair(rng, pools, hallucination_type)
            keys = {(row["context"], row["claim"]) for row in drawn}
            if not keys & seen:
                break
        else:
            raise RuntimeError(
                f"Could not draw a new (context, claim) pair after {len(rows)} rows."
            )

        seen |= keys
        rows.extend(drawn)

    # Twins of a pair would sit next to each other; shuffling spreads them out.
    rng.shuffle(rows)
    rows = [{"id": f"c{index:04d}", **row} for index, row in enumerate(rows, start=1)]

    logger.info("Generated %d claim rows with seed %d", n_rows, seed)
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
