"""Invented name pools for the demo data: people, towns, rivers, companies, ships, festivals.

Every name is assembled from syllables, so no pretrained model has seen facts
about it. The pools are drawn once per generator from its seeded
``random.Random``, which makes the same seed yield the same names.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# Syllable parts. The mix of consonant clusters and vowel pairs keeps the
# results pronounceable while making real words rare.
_ONSETS = (
    "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n",
    "p", "r", "s", "sk", "st", "t", "th", "tr", "v", "z", "qu", "w",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ei", "ou", "y", "ia")
_CODAS = ("", "", "n", "r", "l", "s", "th", "m", "k", "nd", "rn", "sk", "v")
# Inner syllables take light codas only, which avoids clusters like "skstr".
_INNER_CODAS = ("", "", "", "n", "r", "l")

_TOWN_SUFFIXES = ("ford", "wick", "mere", "holm", "stead", "by", "vale", "thorpe", "moor")
_COMPANY_SUFFIXES = ("Works", "Foundry", "Mills", "Ropeworks", "Trading", "Looms", "Glassworks")
_FESTIVAL_SUFFIXES = (
    "Lantern Fair",
    "Kite Festival",
    "Salt Fair",
    "Reed Festival",
    "Harvest Feast",
)

# Names that happen to be real English words or common names are dropped.
# NOTE: the list is hand-made (words found by checking generated pools against
# the minilm WordPiece vocabulary, plus common look-alikes), so a rare real word
# can still slip through.
_BLOCKED = frozenset(
    {"baby", "body", "busy", "lady", "many", "navy", "pony", "tidy", "holy", "rely",
     "sara", "maria", "tina", "nina", "dora", "mary", "rosa", "vera", "lena", "dana",
     "sole", "diary", "risen", "rome", "rosen", "brandy", "wake", "grand", "baron",
     "melon", "lemon", "salon", "demon", "tenor", "hero", "zero", "silo", "solo",
     "polo", "halo", "tuna", "lava", "data", "sofa", "diva", "visa", "ruin", "lion",
     "riot", "diet", "poet", "duel", "fuel", "quiet", "rival", "metal", "total"}
)  # fmt: skip

PERSON = "person"
TOWN = "town"
RIVER = "river"
COMPANY = "company"
SHIP = "ship"
FESTIVAL = "festival"

POOL_KINDS = (PERSON, TOWN, RIVER, COMPANY, SHIP, FESTIVAL)


def _syllable(rng: random.Random, final: bool) -> str:
    codas = _CODAS if final else _INNER_CODAS
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(codas)


def _word(rng: random.Random, syllables: int) -> str:
    while True:
        word = "".join(_syllable(rng, index == syllables - 1) for index in range(syllables))
        if 4 <= len(word) <= 10 and word not in _BLOCKED:
            return word.capitalize()


def _unique(rng: random.Random, size: int, make: Callable[[random.Random], str]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    while len(names) < size:
        names[make(rng)] = None
    return tuple(names)


@dataclass(frozen=True)
class NamePools:
    """Fixed pools of invented names, one tuple per kind of name.

    ``person`` names are "First Last", ``town`` names end in an English place
    suffix, ``river`` names are one word used as "the Name", ``company`` names
    are "Name Works"-style, ``ship`` names are one word used as "the Name" and
    ``festival`` names are "Name Kite Festival"-style.
    """

    person: tuple[str, ...]
    town: tuple[str, ...]
    river: tuple[str, ...]
    company: tuple[str, ...]
    ship: tuple[str, ...]
    festival: tuple[str, ...]

    def __post_init__(self) -> None:
        for kind in POOL_KINDS:
            pool = getattr(self, kind)
            if len(pool) < 2:
                raise ValueError(f"The {kind} name pool needs at least 2 names, got {len(pool)}.")
            if len(set(pool)) != len(pool):
                raise ValueError(f"The {kind} name pool contains duplicate names.")

    @classmethod
    def draw(cls, rng: random.Random, size: int = 300) -> NamePools:
        """Draw ``size`` distinct names per kind from ``rng`` (default 300)."""
        if size < 2:
            raise ValueError(f"size must be at least 2, got {size}.")

        return cls(
            person=_unique(rng, size, lambda r: f"{_word(r, 2)} {_word(r, 2)}"),
            town=_unique(rng, size, lambda r: _word(r, 1) + r.choice(_TOWN_SUFFIXES)),
            river=_unique(rng, size, lambda r: _word(r, 2)),
            company=_unique(rng, size, lambda r: f"{_word(r, 2)} {r.choice(_COMPANY_SUFFIXES)}"),
            ship=_unique(rng, size, lambda r: _word(r, 2)),
            festival=_unique(rng, size, lambda r: f"{_word(r, 2)} {r.choice(_FESTIVAL_SUFFIXES)}"),
        )

    def pick(
        self, rng: random.Random, kind: str, exclude: set[str] | frozenset[str] = frozenset()
    ) -> str:
        """Pick one name of ``kind`` that is not in ``exclude``.

        Raises:
            ValueError: ``kind`` is not one of :data:`POOL_KINDS`, or every name
                of the pool is excluded.
        """
        if kind not in POOL_KINDS:
            raise ValueError(f"Unknown name kind {kind!r}; expected one of {POOL_KINDS}.")

        pool = getattr(self, kind)
        for _ in range(50):
            name = rng.choice(pool)
            if name not in exclude:
                return name

        remaining = [name for name in pool if name not in exclude]
        if not remaining:
            raise ValueError(f"Every name of the {kind} pool is excluded; draw a larger pool.")
        return rng.choice(remaining)
