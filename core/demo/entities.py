"""Invented entities with facts, rendered as context passages and claim clauses."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from halluscope.demo.names import NamePools
from halluscope.demo.templates import EntityKind, FactTemplate
from halluscope.demo.values import NAME

# Function words left out of the "content words" of an added fact.
STOPWORDS = frozenset(
    {"a", "an", "the", "of", "in", "on", "at", "by", "to", "for", "and", "as", "its",
     "it", "was", "is", "has", "had", "about", "from", "near", "between", "under", "with"}
)  # fmt: skip

_WORD_OR_SPACE = re.compile(r"(\s+)")


class Segment(NamedTuple):
    """A piece of rendered text and whether it was altered or added."""

    text: str
    altered: bool


@dataclass(frozen=True)
class Fact:
    """A fact template with a value for every slot and filler."""

    template: FactTemplate
    values: Mapping[str, str]

    def __post_init__(self) -> None:
        expected = set(self.template.slots) | set(self.template.fillers)
        if set(self.values) != expected:
            raise ValueError(
                f"Fact {self.template.key!r} needs values for {sorted(expected)}, "
                f"got {sorted(self.values)}."
            )

    @property
    def predicate(self) -> str:
        """The verb phrase with every field filled in."""
        return self.template.text.format(**self.values)

    def names(self) -> set[str]:
        """Return the name values of this fact."""
        return {self.values[key] for key, slot in self.template.slots.items() if slot.kind == NAME}

    def with_value(self, slot_name: str, value: str) -> Fact:
        """Return a copy of this fact with ``slot_name`` set to ``value``."""
        return Fact(self.template, {**self.values, slot_name: value})


@dataclass(frozen=True)
class Entity:
    """An invented entity: kind, name, reference word for later sentences, and facts."""

    kind: EntityKind
    name: str
    reference: str
    facts: tuple[Fact, ...]

    def __post_init__(self) -> None:
        keys = [fact.template.key for fact in self.facts]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Entity {self.name!r} states one template twice: {keys}.")

    @property
    def subject(self) -> str:
        """The name as the first words of a sentence (``The Tesk``, ``Orvenwick``)."""
        return f"The {self.name}" if self.kind.article else self.name

    @property
    def inline_subject(self) -> str:
        """The name inside a sentence (``the Tesk``, ``Orvenwick``)."""
        return f"the {self.name}" if self.kind.article else self.name

    def context(self) -> str:
        """Render the facts as a passage; sentences after the first open with the reference."""
        sentences = []
        for index, fact in enumerate(self.facts):
            opener = self.subject if index == 0 else self.reference
            sentences.append(f"{opener} {fact.predicate}.")
        return " ".join(sentences)

    def names(self) -> set[str]:
        """Return every name in the passage, the entity's own name included."""
        found = {self.name}
        for fact in self.facts:
            found |= fact.names()
        return found

    def unused_templates(self) -> list[FactTemplate]:
        """Return the templates of this kind that the passage does not state."""
        used = {fact.template.key for fact in self.facts}
        return [template for template in self.kind.templates if template.key not in used]


def draw_fact(
    rng: random.Random, pools: NamePools, template: FactTemplate, exclude: set[str]
) -> Fact:
    """Fill ``template`` with fresh values; name slots avoid the names in ``exclude``."""
    taken = set(exclude)
    values: dict[str, str] = {}
    for slot_name, slot in template.slots.items():
        values[slot_name] = slot.draw(rng, pools, taken)
        taken.add(values[slot_name])
    for filler_name, choices in template.fillers.items():
        values[filler_name] = rng.choice(choices)
    return Fact(template, values)


def draw_entity(
    rng: random.Random,
    pools: NamePools,
    kind: EntityKind,
    n_facts: int,
    required: Sequence[FactTemplate] = (),
) -> Entity:
    """Draw an entity of ``kind`` with ``n_facts`` facts in random order.

    Every template in ``required`` is among the facts; the rest are drawn
    without repeats from the kind's other templates.
    """
    if not 1 <= n_facts <= len(kind.templates):
        raise ValueError(
            f"n_facts must be in 1..{len(kind.templates)} for {kind.name!r}, got {n_facts}."
        )
    if len(required) > n_facts:
        raise ValueError(f"{len(required)} required templates do not fit in {n_facts} facts.")

    required_keys = {template.key for template in required}
    others = [template for template in kind.templates if template.key not in required_keys]
    chosen = list(required) + rng.sample(others, n_facts - len(required))
    rng.shuffle(chosen)

    name = pools.pick(rng, kind.pool)
    taken = {name}
    facts = []
    for template in chosen:
        fact = draw_fact(rng, pools, template, taken)
        taken |= fact.names()
        facts.append(fact)

    return Entity(kind, name, rng.choice(kind.references), tuple(facts))


def _split_words(text: str, content_only: bool) -> list[Segment]:
    segments = []
    for piece in _WORD_OR_SPACE.split(text):
        if not piece:
            continue
        is_word = not piece.isspace()
        altered = is_word and (not content_only or piece.lower() not in STOPWORDS)
        segments.append(Segment(piece, altered))
    return segments


def _diff_words(new: str, old: str) -> list[Segment]:
    new_words = new.split(" ")
    old_words = old.split(" ")
    segments = []
    for index, word in enumerate(new_words):
        if index:
            segments.append(Segment(" ", False))
        differs = len(new_words) != len(old_words) or word != old_words[index]
        segments.append(Segment(word, differs))
    return segments


def clause_segments(
    fact: Fact, *, original: Mapping[str, str] | None = None, added: bool = False
) -> list[Segment]:
    """Render ``fact.predicate`` as segments that mark altered or added words.

    Args:
        fact: The fact to render.
        original: For an altered fact, the original value of each changed slot.
            Each word of the new value that differs from the word at the same
            position of the original is marked.
        added: Mark every content word (all but :data:`STOPWORDS`), for a fact
            the context does not contain.
    """
    original = original or {}
    segments: list[Segment] = []
    for literal, field_name, _, _ in string.Formatter().parse(fact.template.text):
        if literal:
            segments.extend(_split_words(literal, True) if added else [Segment(literal, False)])
        if not field_name:
            continue

        value = fact.values[field_name]
        if field_name in original:
            segments.extend(_diff_words(value, original[field_name]))
        elif added:
            segments.extend(_split_words(value, True))
        else:
            segments.append(Segment(value, False))
    return segments


def join_segments(segments: Sequence[Segment]) -> tuple[str, list[str], list[list[int]]]:
    """Join segments into text, the altered words and their ``[start, end)`` offsets."""
    text_parts: list[str] = []
    words: list[str] = []
    spans: list[list[int]] = []
    offset = 0
    for segment in segments:
        if segment.altered:
            words.append(segment.text)
            spans.append([offset, offset + len(segment.text)])
        text_parts.append(segment.text)
        offset += len(segment.text)
    return "".join(text_parts), words, spans
