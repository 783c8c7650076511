"""Fact templates of the six demo entity kinds: person, town, company, river, ship, festival.

A template is a verb phrase with typed slots, such as
``was founded in {year} by {founder}``. A context sentence, a claim clause and
a question all come from the same template, so supported and hallucinated
claims share one set of sentence shapes.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from halluscope.demo.names import COMPANY, FESTIVAL, PERSON, RIVER, SHIP, TOWN
from halluscope.demo.values import DATE, NAME, NUMBER, YEAR, Slot


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@dataclass(frozen=True)
class FactTemplate:
    """A verb phrase with typed slots and one question per slot.

    Attributes:
        key: Identifier, unique within its entity kind (``founded``).
        text: The predicate with ``{slot}`` and ``{filler}`` fields.
        slots: Typed value positions by field name.
        questions: A question per slot field, with ``{subject}`` and any other field.
        fillers: Untyped word choices by field name; they are never altered or asked about.
    """

    key: str
    text: str
    slots: Mapping[str, Slot]
    questions: Mapping[str, str]
    fillers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.slots:
            raise ValueError(f"Template {self.key!r} has no slot; every fact needs one.")

        expected = set(self.slots) | set(self.fillers)
        found = _fields(self.text)
        if found != expected:
            raise ValueError(
                f"Template {self.key!r} text fields {sorted(found)} do not match its slots "
                f"and fillers {sorted(expected)}."
            )

        for slot_name, question in self.questions.items():
            if slot_name not in self.slots:
                raise ValueError(
                    f"Template {self.key!r} has a question for unknown slot {slot_name!r}."
                )
            unknown = _fields(question) - expected - {"subject"}
            if unknown:
                raise ValueError(
                    f"Template {self.key!r} question for {slot_name!r} uses unknown fields "
                    f"{sorted(unknown)}."
                )

    def slots_of(self, category: str) -> list[str]:
        """Return the slot names whose alteration is of ``category`` (number, date or name)."""
        return [name for name, slot in self.slots.items() if slot.category == category]


@dataclass(frozen=True)
class EntityKind:
    """A kind of invented entity and the facts a context can state about it.

    Attributes:
        name: The kind (``town``).
        pool: The name pool its own name comes from.
        article: Whether the name is written with "the" (``the Tesk``).
        references: Words that can stand for the entity after the first sentence;
            one of them is chosen per entity (``It``, ``The town``).
        templates: At least six fact templates, so a context of up to five
            facts leaves one unused template for an added fact.
    """

    name: str
    pool: str
    article: bool
    references: tuple[str, ...]
    templates: tuple[FactTemplate, ...]

    def __post_init__(self) -> None:
        if len(self.templates) < 6:
            raise ValueError(
                f"Entity kind {self.name!r} needs at least 6 templates, got {len(self.templates)}."
            )
        keys = [template.key for template in self.templates]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Entity kind {self.name!r} has duplicate template keys: {keys}.")
        if not self.references:
            raise ValueError(f"Entity kind {self.name!r} needs at least one reference word.")


def _year(low: int, high: int) -> Slot:
    return Slot(YEAR, low, high)


def _date(low: int, high: int) -> Slot:
    return Slot(DATE, low, high)


def _number(low: int, high: int) -> Slot:
    return Slot(NUMBER, low, high)


def _name(pool: str) -> Slot:
    return Slot(NAME, pool=pool)


_JOBS = (
    "ferry pilot",
    "clockmaker",
    "surveyor",
    "beekeeper",
    "glassblower",
    "bookbinder",
    "stonemason",
)
_TOPICS = (
    "river birds",
    "salt mining",
    "old maps",
    "lighthouse repair",
    "wool dyeing",
    "hill farming",
)
_PRODUCTS = ("copper kettles", "rope", "window glass", "wool blankets", "iron hinges", "barrels")

PERSON_KIND = EntityKind(
    name=PERSON,
    pool=PERSON,
    article=False,
    references=("She", "He"),
    templates=(
        FactTemplate(
            "born",
            "was born in {town} in {year}",
            {"town": _name(TOWN), "year": _year(1780, 1960)},
            {"town": "Where was {subject} born?", "year": "In what year was {subject} born?"},
        ),
        FactTemplate(
            "career",
            "worked as a {job} for {years} years",
            {"years": _number(3, 45)},
            {"years": "For how many years did {subject} work as a {job}?"},
            {"job": _JOBS},
        ),
        FactTemplate(
            "married",
            "married {spouse} in {year}",
            {"spouse": _name(PERSON), "year": _year(1800, 1990)},
            {
                "spouse": "Whom did {subject} marry?",
                "year": "In what year did {subject} marry {spouse}?",
            },
        ),
        FactTemplate(
            "books",
            "wrote {count} books about {topic}",
            {"count": _number(2, 60)},
            {"count": "How many books about {topic} did {subject} write?"},
            {"topic": _TOPICS},
        ),
        FactTemplate(
            "moved",
            "moved to {town} on {date}",
            {"town": _name(TOWN), "date": _date(1800, 1990)},
            {
                "town": "To which town did {subject} move?",
                "date": "On what date did {subject} move to {town}?",
            },
        ),
        FactTemplate(
            "trained",
            "trained under {teacher} at {company}",
            {"teacher": _name(PERSON), "company": _name(COMPANY)},
            {
                "teacher": "Under whom did {subject} train?",
                "company": "At which company did {subject} train?",
            },
        ),
        FactTemplate(
            "farm",
            "owned a farm of {area} hectares near {town}",
            {"area": _number(20, 900), "town": _name(TOWN)},
            {
                "area": "How many hectares was the farm that {subject} owned?",
                "town": "Near which town did {subject} own a farm?",
            },
        ),
    ),
)

TOWN_KIND = EntityKind(
    name=TOWN,
    pool=TOWN,
    article=False,
    references=("It", "The town"),
    templates=(
        FactTemplate(
            "river",
            "lies on the {river}",
            {"river": _name(RIVER)},
            {"river": "On which river does {subject} lie?"},
        ),
        FactTemplate(
            "population",
            "has a population of {population}",
            {"population": _number(300, 60000)},
            {"population": "What is the population of {subject}?"},
        ),
        FactTemplate(
            "founded",
            "was founded in {year} by {founder}",
            {"year": _year(1500, 1900), "founder": _name(PERSON)},
            {"year": "In what year was {subject} founded?", "founder": "Who founded {subject}?"},
        ),
        FactTemplate(
            "distance",
            "is {distance} kilometres from {town}",
            {"distance": _number(4, 300), "town": _name(TOWN)},
            {
                "distance": "How many kilometres is {subject} from {town}?",
                "town": "Which town is {distance} kilometres from {subject}?",
            },
        ),
        FactTemplate(
            "mayor",
            "elected {mayor} as mayor in {year}",
            {"mayor": _name(PERSON), "year": _year(1850, 2020)},
            {
                "mayor": "Whom did {subject} elect as mayor?",
                "year": "In what year did {subject} elect {mayor} as mayor?",
            },
        ),
        FactTemplate(
            "school",
            "opened its first school on {date}",
            {"date": _date(1700, 1950)},
            {"date": "On what date did {subject} open its first school?"},
        ),
        FactTemplate(
            "bridges",
            "has {count} stone bridges",
            {"count": _number(2, 40)},
            {"count": "How many stone bridges does {subject} have?"},
        ),
    ),
)

COMPANY_KIND = EntityKind(
    name=COMPANY,
    pool=COMPANY,
    article=False,
    references=("It", "The company"),
    templates=(
        FactTemplate(
            "founded",
            "was founded in {year} by {founder}",
            {"year": _year(1780, 1990), "founder": _name(PERSON)},
            {"year": "In what year was {subject} founded?", "founder": "Who founded {subject}?"},
        ),
        FactTemplate(
            "based",
            "is based in {town}",
            {"town": _name(TOWN)},
            {"town": "Where is {subject} based?"},
        ),
        FactTemplate(
            "staff",
            "employs {staff} people",
            {"staff": _number(12, 9000)},
            {"staff": "How many people does {subject} employ?"},
        ),
        FactTemplate(
            "bought",
            "was bought by {buyer} in {year}",
            {"buyer": _name(COMPANY), "year": _year(1850, 2020)},
            {
                "buyer": "Which company bought {subject}?",
                "year": "In what year was {subject} bought by {buyer}?",
            },
        ),
        FactTemplate(
            "factory",
            "opened a second factory in {town} on {date}",
            {"town": _name(TOWN), "date": _date(1800, 2010)},
            {
                "town": "In which town did {subject} open a second factory?",
                "date": "On what date did {subject} open a second factory?",
            },
        ),
        FactTemplate(
            "shops",
            "ran {count} shops by {year}",
            {"count": _number(3, 250), "year": _year(1850, 2020)},
            {
                "count": "How many shops did {subject} run by {year}?",
                "year": "By what year did {subject} run {count} shops?",
            },
        ),
        FactTemplate(
            "supplies",
            "supplies {product} to {customer}",
            {"customer": _name(COMPANY)},
            {"customer": "To which company does {subject} supply {product}?"},
            {"product": _PRODUCTS},
        ),
    ),
)

RIVER_KIND = EntityKind(
    name=RIVER,
    pool=RIVER,
    article=True,
    references=("It", "The river"),
    templates=(
        FactTemplate(
            "source",
            "rises near {town}",
            {"town": _name(TOWN)},
            {"town": "Near which town does {subject} rise?"},
        ),
        FactTemplate(
            "length",
            "is {length} kilometres long",
            {"length": _number(12, 900)},
            {"length": "How many kilometres long is {subject}?"},
        ),
        FactTemplate(
            "through",
            "flows through {town}",
            {"town": _name(TOWN)},
            {"town": "Which town does {subject} flow through?"},
        ),
        FactTemplate(
            "mapped",
            "was first mapped by {mapper} in {year}",
            {"mapper": _name(PERSON), "year": _year(1600, 1900)},
            {
                "mapper": "Who first mapped {subject}?",
                "year": "In what year was {subject} first mapped?",
            },
        ),
        FactTemplate(
            "flood",
            "flooded on {date}",
            {"date": _date(1700, 2000)},
            {"date": "On what date did {subject} flood?"},
        ),
        FactTemplate(
            "bridges",
            "is crossed by {count} bridges",
            {"count": _number(2, 60)},
            {"count": "How many bridges cross {subject}?"},
        ),
        FactTemplate(
            "joins",
            "joins the {river} at {town}",
            {"river": _name(RIVER), "town": _name(TOWN)},
            {
                "river": "Which river does {subject} join?",
                "town": "At which town does {subject} join the {river}?",
            },
        ),
    ),
)

SHIP_KIND = EntityKind(
    name=SHIP,
    pool=SHIP,
    article=True,
    references=("It", "The ship"),
    templates=(
        FactTemplate(
            "built",
            "was built in {town} in {year}",
            {"town": _name(TOWN), "year": _year(1700, 1960)},
            {"town": "Where was {subject} built?", "year": "In what year was {subject} built?"},
        ),
        FactTemplate(
            "crew",
            "carried a crew of {crew}",
            {"crew": _number(8, 600)},
            {"crew": "How large was the crew of {subject}?"},
        ),
        FactTemplate(
            "captain",
            "was commanded by {captain}",
            {"captain": _name(PERSON)},
            {"captain": "Who commanded {subject}?"},
        ),
        FactTemplate(
            "launched",
            "was launched on {date}",
            {"date": _date(1700, 1960)},
            {"date": "On what date was {subject} launched?"},
        ),
        FactTemplate(
            "owner",
            "was owned by {owner}",
            {"owner": _name(COMPANY)},
            {"owner": "Which company owned {subject}?"},
        ),
        FactTemplate(
            "length",
            "was {length} metres long",
            {"length": _number(15, 240)},
            {"length": "How many metres long was {subject}?"},
        ),
        FactTemplate(
            "route",
            "sailed between {port} and {other_port}",
            {"port": _name(TOWN), "other_port": _name(TOWN)},
            {
                "port": "Between which town and {other_port} did {subject} sail?",
                "other_port": "Between {port} and which town did {subject} sail?",
            },
        ),
    ),
)

FESTIVAL_KIND = EntityKind(
    name=FESTIVAL,
    pool=FESTIVAL,
    article=True,
    references=("It", "The festival"),
    templates=(
        FactTemplate(
            "venue",
            "takes place in {town}",
            {"town": _name(TOWN)},
            {"town": "Where does {subject} take place?"},
        ),
        FactTemplate(
            "first",
            "was first held in {year}",
            {"year": _year(1600, 1990)},
            {"year": "In what year was {subject} first held?"},
        ),
        FactTemplate(
            "visitors",
            "draws about {visitors} visitors",
            {"visitors": _number(200, 90000)},
            {"visitors": "About how many visitors does {subject} draw?"},
        ),
        FactTemplate(
            "started",
            "was started by {founder}",
            {"founder": _name(PERSON)},
            {"founder": "Who started {subject}?"},
        ),
        FactTemplate(
            "days",
            "lasts {days} days",
            {"days": _number(2, 14)},
            {"days": "How many days does {subject} last?"},
        ),
        FactTemplate(
            "sponsor",
            "is sponsored by {sponsor}",
            {"sponsor": _name(COMPANY)},
            {"sponsor": "Which company sponsors {subject}?"},
        ),
        FactTemplate(
            "parade",
            "held its largest parade on {date}",
            {"date": _date(1800, 2020)},
            {"date": "On what date did {subject} hold its largest parade?"},
        ),
    ),
)

ENTITY_KINDS: tuple[EntityKind, ...] = (
    PERSON_KIND,
    TOWN_KIND,
    COMPANY_KIND,
    RIVER_KIND,
    SHIP_KIND,
    FESTIVAL_KIND,
)
