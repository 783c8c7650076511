"""Split text into words and aggregate token attributions to them.

Sub-word tokens ("un", "##bel", "##ie", "##va", "##bly") are hard to read,
so scores are shown per word of the original text. A word is:

* a run of letters, digits, combining marks and underscores;
* a single CJK ideograph or kana, because Chinese and Japanese do not
  delimit words with spaces (and BERT tokenizers split them per character);
* an emoji with its modifiers, variation selectors and zero-width-joined parts;
* any other visible character (punctuation, a maths or currency sign) alone.

Whitespace and invisible control characters belong to no word. Words refer
to the original string by character offsets, so ``text[word.start:word.end]
== word.text`` always holds.
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass
from typing import Literal

import numpy as np

from halluscope.explain.attribution import TokenAttributions

Reduce = Literal["sum", "mean", "max"]

_ZERO_WIDTH_JOINER = "\u200d"

# Ideographs and kana, which form one word per character.
_CJK_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0xFF66, 0xFF9F),  # Halfwidth Katakana
    (0x20000, 0x3134F),  # CJK Unified Ideographs Extensions B to H
)


def _is_cjk(character: str) -> bool:
    code = ord(character)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _is_emoji_extender(character: str) -> bool:
    """Whether the character modifies the preceding emoji instead of starting a new one."""
    code = ord(character)
    return (
        character == _ZERO_WIDTH_JOINER
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters of subdivision flags
    )


def _is_regional_indicator(character: str) -> bool:
    return 0x1F1E6 <= ord(character) <= 0x1F1FF


def _kind(character: str) -> str:
    """Classify one character as space, cjk, word, mark, extender, symbol or other."""
    if character.isspace():
        return "space"
    if _is_emoji_extender(character):
        return "extender"
    if _is_cjk(character):
        return "cjk"
    category = unicodedata.category(character)
    if category[0] == "M":
        return "mark"
    if category[0] in "LN" or category == "Pc":
        return "word"
    if category == "So":
        return "symbol"
    if category in ("Cc", "Cf"):
        return "space"
    return "other"


def split_words(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into words and return their (start, end) character offsets, in order.

    See the module docstring for what counts as a word.
    """
    spans: list[tuple[int, int]] = []
    start: int | None = None
    current = ""  # kind of the open word: "word", "cjk", "symbol" or "other"
    previous = ""

    def close(end: int) -> None:
        nonlocal start, current
        if start is not None:
            spans.append((start, end))
        start, current = None, ""

    for index, character in enumerate(text):
        kind = _kind(character)

        if kind == "space":
            close(index)
        elif kind in ("mark", "extender"):
            # Combining marks and emoji modifiers extend whatever precedes them.
            if start is None:
                start, current = index, "other"
        elif kind == "word":
            if current != "word":
                close(index)
                start, current = index, "word"
        elif kind == "symbol":
            joined = previous == _ZERO_WIDTH_JOINER and current == "symbol"
            flag_pair = (
                _is_regional_indicator(character)
                and current == "symbol"
                and _is_regional_indicator(previous)
                and (index - start) % 2 == 1  # type: ignore[operator]
            )
            if not (joined or flag_pair):
                close(index)
                start, current = index, "symbol"
        else:  # "cjk" and "other" characters are words of their own
            close(index)
            start, current = index, kind

        previous = character
    close(len(text))
    return spans


@dataclass(frozen=True)
class Word:
    """One word of an original text with its aggregated attribution.

    Attributes:
        text: the word, equal to ``segment_text[start:end]``.
        start: character offset of the first character in its segment's text.
        end: character offset one past the last character.
        score: the aggregated attribution of the tokens that cover the word.
        segment: 0 for the text (context), 1 for the text pair (claim).
        num_tokens: how many tokens cover the word; 0 means the model never saw
            it (it was truncated away) and the score is 0.
    """

    text: str
    start: int
    end: int
    score: float
    segment: int
    num_tokens: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(
                f"Word {self.text!r}: need 0 <= start < end, got {self.start}, {self.end}."
            )
        if len(self.text) != self.end - self.start:
            raise ValueError(
                f"Word {self.text!r} has {len(self.text)} characters but spans "
                f"[{self.start}, {self.end})."
            )
        if self.segment not in (0, 1):
            raise ValueError(f"Word {self.text!r}: segment must be 0 or 1, got {self.segment}.")


@dataclass(frozen=True)
class WordAttributions:
    """Token attributions aggregated to the words of the original text(s).

    Attributes:
        text_words: the words of ``text`` (segment 0), in order.
        pair_words: the words of ``text_pair`` (segment 1), in order; empty without a pair.
        method: the attribution method name.
        target_label: the explained class name.
        reduce: how token scores were combined per word: "sum", "mean" or "max".
        unassigned_score: total attribution of tokens that cover no word:
            special tokens ([CLS], [SEP]), tokens made of whitespace only, and
            a causal LM's response tokens.
    """

    text_words: tuple[Word, ...]
    pair_words: tuple[Word, ...]
    method: str
    target_label: str
    reduce: Reduce
    unassigned_score: float

    def __post_init__(self) -> None:
        for segment, words in ((0, self.text_words), (1, self.pair_words)):
            for word in words:
                if word.segment != segment:
                    raise ValueError(
                        f"Word {word.text!r} has segment {word.segment} but is listed in "
                        f"segment {segment}."
                    )

    def words(self, segment: int | None = None) -> tuple[Word, ...]:
        """Return the words of one segment (0 or 1), or of both when ``segment`` is None."""
        if segment is None:
            return self.text_words + self.pair_words
        if segment == 0:
            return self.text_words
        if segment == 1:
            return self.pair_words
        raise ValueError(f"segment must be 0, 1 or None, got {segment}.")

    def top_words(self, k: int, segment: int | None = None) -> list[Word]:
        """Return the ``k`` words with the largest absolute score, largest first."""
        if k < 0:
            raise ValueError(f"k must not be negative, got {k}.")
        ranked = sorted(self.words(segment), key=lambda word: abs(word.score), reverse=True)
        return ranked[:k]

    def max_abs_score(self) -> float:
        """Return the largest absolute word score over both segments (0.0 without words)."""
        return max((abs(word.score) for word in self.words()), default=0.0)


def _aggregate_segment(
    attributions: TokenAttributions,
    segment: int,
    text: str,
    reduce: Reduce,
) -> tuple[list[Word], float]:
    """Aggregate the tokens of one segment to its words; return the words and unassigned score."""
    spans = split_words(text)
    starts = [start for start, _ in spans]
    totals = np.zeros(len(spans), dtype=np.float64)
    counts = np.zeros(len(spans), dtype=np.int64)
    maxima = np.zeros(len(spans), dtype=np.float64)
    unassigned = 0.0

    rows = np.flatnonzero(attributions.segment_ids == segment)
    for row in rows:
        token_start, token_end = (int(value) for value in attributions.offsets[row])
        score = float(attributions.scores[row])
        if token_end > len(text):
            raise ValueError(
                f"Token {row} ({attributions.tokens[row]!r}) ends at character {token_end}, "
                f"past the end of the segment {segment} text ({len(text)} characters). "
                "Pass the same text that was attributed."
            )

        # A token may overlap several words (a byte-level token " world." for
        # example); its score is shared in proportion to the overlap.
        first = max(bisect.bisect_right(starts, token_start) - 1, 0)
        overlaps: list[tuple[int, int]] = []
        for index in range(first, len(spans)):
            word_start, word_end = spans[index]
            if word_start >= token_end:
                break
            overlap = min(token_end, word_end) - max(token_start, word_start)
            if overlap > 0:
                overlaps.append((index, overlap))

        if not overlaps:
            unassigned += score
            continue
        covered = sum(overlap for _, overlap in overlaps)
        for index, overlap in overlaps:
            share = score * overlap / covered
            totals[index] += share
            counts[index] += 1
            if abs(share) > abs(maxima[index]):
                maxima[index] = share

    words = []
    for index, (start, end) in enumerate(spans):
        if reduce == "sum":
            value = totals[index]
        elif reduce == "mean":
            value = totals[index] / counts[index] if counts[index] else 0.0
        else:
            value = maxima[index]
        words.append(
            Word(
                text=text[start:end],
                start=start,
                end=end,
                score=float(value),
                segment=segment,
                num_tokens=int(counts[index]),
            )
        )
    return words, unassigned


def aggregate_to_words(
    attributions: TokenAttributions,
    text: str,
    text_pair: str | None = None,
    reduce: Reduce = "sum",
) -> WordAttributions:
    """Group token attributions into words of the original text(s) by character offsets.

    Args:
        attributions: the token attributions of ``text`` (and ``text_pair``).
        text: the same first text that was attributed.
        text_pair: the same second text, or None if there was none.
        reduce: how to combine the tokens of a word. "sum" (the default)
            keeps the total, so integrated gradients' completeness carries
            over. "mean" averages over the covering tokens. "max" takes the
            token share with the largest absolute value, keeping its sign.

    Raises:
        ValueError: the texts do not match the attributions' offsets, or a
            text_pair was attributed but not passed.
    """
    if reduce not in ("sum", "mean", "max"):
        raise ValueError(f"reduce must be 'sum', 'mean' or 'max', got {reduce!r}.")
    has_pair_tokens = bool(np.any(attributions.segment_ids == 1))
    if has_pair_tokens and text_pair is None:
        raise ValueError(
            "The attributions contain text_pair tokens but no text_pair was passed; "
            "pass the same text_pair that was attributed."
        )

    text_words, unassigned = _aggregate_segment(attributions, 0, text, reduce)
    pair_words: list[Word] = []
    if text_pair is not None:
        pair_words, pair_unassigned = _aggregate_segment(attributions, 1, text_pair, reduce)
        unassigned += pair_unassigned

    # Special tokens, and a causal LM's response tokens (segment 2), belong to no word here.
    outside = ~np.isin(attributions.segment_ids, (0, 1))
    unassigned += float(attributions.scores[outside].sum())
    return WordAttributions(
        text_words=tuple(text_words),
        pair_words=tuple(pair_words),
        method=attributions.method,
        target_label=attributions.target_label,
        reduce=reduce,
        unassigned_score=unassigned,
    )
