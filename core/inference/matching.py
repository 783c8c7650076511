"""Whether a generated answer gives the reference answer: the correctness test of short answers.

Short factual answers come in many wrappings: "Weirvaen Looms", "It was owned
by Weirvaen Looms." and "weirvaen looms" all give the same fact. Both texts
are normalised (case folded, punctuation and the articles "a", "an", "the"
removed, whitespace collapsed). An answer matches when its normalised text
equals the reference's, or contains it as a run of whole words.

NOTE: the test is lexical. A paraphrase ("twelve" for "12", "Oct 10" for
"10 October") does not match, and an answer that names the reference next to a
wrong fact ("Looms or Quoumoor") does. Refusals match only when they repeat
the reference's words.
"""

from __future__ import annotations

import re
import string
import unicodedata

_ARTICLES = frozenset({"a", "an", "the"})
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d\u2013\u2014]")


def normalize_answer(text: str) -> str:
    """Return ``text`` case folded, without punctuation or articles, with single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCTUATION.sub(" ", text)
    return " ".join(word for word in text.split() if word not in _ARTICLES)


def answer_matches(answer: str, reference: str) -> bool:
    """Return whether ``answer`` gives ``reference`` (see the module docstring for the rule).

    Raises:
        ValueError: the reference is empty after normalisation, so nothing can match it.
    """
    expected = normalize_answer(reference)
    if not expected:
        raise ValueError(
            f"The reference answer {reference!r} is empty once case, punctuation and articles "
            "are removed; give a reference with at least one word."
        )
    given = normalize_answer(answer)
    return f" {expected} " in f" {given} "
