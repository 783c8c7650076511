"""Typed slot values of the demo facts: numbers, years, full dates and names.

A :class:`Slot` draws a value. For a hallucinated claim it draws a different
value of the same kind and format: a number of similar magnitude, a year a few
years away, a date with one part changed, or another name of the same pool.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from halluscope.demo.names import POOL_KINDS, NamePools

NUMBER = "number"
YEAR = "year"
DATE = "date"
NAME = "name"

SLOT_KINDS = (NUMBER, YEAR, DATE, NAME)

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

# Name pools whose names are places; questions about them have answer type "place".
PLACE_POOLS = frozenset({"town", "river"})

_MAX_TRIES = 200


def context_words(text: str) -> set[str]:
    """Return the whitespace-separated words of ``text`` with edge punctuation stripped."""
    return {word.strip(".,;:?!") for word in text.split()}


def format_number(value: int) -> str:
    """Format ``value`` with thousands separators, e.g. ``4,200``."""
    return f"{value:,}"


def parse_number(text: str) -> int:
    """Parse a number written by :func:`format_number`."""
    return int(text.replace(",", ""))


def _round_significant(value: float, digits: int) -> int:
    if value < 1:
        return 1
    magnitude = 10 ** max(int(math.floor(math.log10(value))) - digits + 1, 0)
    return int(round(value / magnitude) * magnitude)


@dataclass(frozen=True)
class Slot:
    """A typed value position in a fact template.

    Attributes:
        kind: One of ``number``, ``year``, ``date`` (day month year) or ``name``.
        low: Smallest value of a number or year slot (for a date, the earliest year).
        high: Largest value of a number or year slot (for a date, the latest year).
        pool: The name pool of a name slot (``person``, ``town``, ``river``, ...).
        digits: Significant digits a number slot keeps (2 makes 4,200 and 38).
    """

    kind: str
    low: int = 0
    high: int = 0
    pool: str = ""
    digits: int = 2

    def __post_init__(self) -> None:
        if self.kind not in SLOT_KINDS:
            raise ValueError(f"Unknown slot kind {self.kind!r}; expected one of {SLOT_KINDS}.")
        if self.kind == NAME:
            if self.pool not in POOL_KINDS:
                raise ValueError(f"Name slot pool {self.pool!r} is not one of {POOL_KINDS}.")
            return
        if not 1 <= self.low < self.high:
            raise ValueError(
                f"A {self.kind} slot needs 1 <= low < high, got low={self.low}, high={self.high}."
            )
        if self.digits < 1:
            raise ValueError(f"digits must be at least 1, got {self.digits}.")

    @property
    def category(self) -> str:
        """The hallucination type that altering this slot produces: number, date or name."""
        return {NUMBER: "number", YEAR: "date", DATE: "date", NAME: "name"}[self.kind]

    @property
    def answer_type(self) -> str:
        """The answer type of a question about this slot: number, date, name or place."""
        if self.kind == NAME:
            return "place" if self.pool in PLACE_POOLS else "name"
        return self.category

    def draw(
        self, rng: random.Random, pools: NamePools, exclude: set[str] | frozenset[str] = frozenset()
    ) -> str:
        """Draw a value as text; name slots skip names in ``exclude``."""
        if self.kind == NUMBER:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            rounded = _round_significant(value, self.digits)
            return format_number(min(max(rounded, self.low), self.high))

        if self.kind == YEAR:
            return str(rng.randint(self.low, self.high))

        if self.kind == DATE:
            day = rng.randint(1, 28)
            return f"{day} {rng.choice(MONTHS)} {rng.randint(self.low, self.high)}"

        return pools.pick(rng, self.pool, exclude)

    def alter(self, rng: random.Random, value: str, pools: NamePools, context: str) -> str:
        """Draw a value of the same kind and format that differs from ``value``.

        The new value is not a word (or, for names, a substring) of ``context``,
        so a claim that uses it cannot be read as supported by another fact.

        Raises:
            ValueError: no such value exists within the slot's range.
        """
        words = context_words(context)
        for _ in range(_MAX_TRIES):
            candidate = self._near(rng, value, pools)
            if candidate == value:
                continue
            if self.kind in (NAME, DATE) and candidate in context:
                continue
            if self.kind in (NUMBER, YEAR) and candidate in words:
                continue
            return candidate

        raise ValueError(
            f"Could not find a {self.kind} value different from {value!r} that is absent "
            f"from the context; widen the slot range ({self.low}..{self.high})."
        )

    def _near(self, rng: random.Random, value: str, pools: NamePools) -> str:
        if self.kind == NUMBER:
            original = parse_number(value)
            if rng.random() < 0.5:
                factor = rng.uniform(0.5, 0.85)
            else:
                factor = rng.uniform(1.2, 1.9)
            candidate = _round_significant(original * factor, self.digits)
            if not self.low <= candidate <= self.high:
                candidate = rng.randint(self.low, self.high)
                candidate = _round_significant(candidate, self.digits)
            return format_number(candidate)

        if self.kind == YEAR:
            return str(int(value) + rng.choice((-1, 1)) * rng.randint(2, 30))

        if self.kind == DATE:
            day, month, year = value.split()
            part = rng.choice(("day", "month", "year"))
            if part == "day":
                day = str(rng.randint(1, 28))
            elif part == "month":
                month = rng.choice(MONTHS)
            else:
                year = str(int(year) + rng.choice((-1, 1)) * rng.randint(1, 30))
            return f"{day} {month} {year}"

        return pools.pick(rng, self.pool, {value})
