"""Token-level detectors of hallucinations in generated or teacher-forced responses.

Each detector reads a ``TokenScores`` (a ``GeneratedAnswer`` or a
``ScoredResponse``) and, where it needs one, the context the response should
be grounded in. It returns one suspicion score in [0, 1] per token, a
response-level score, a flag and a short reason.

A detector that needs the model itself, such as one built on attention maps
(lookback ratio) or attributions, subclasses ``GenerationDetector``, overrides
``for_model`` to keep the model and tokenizer, and recomputes what it needs
from ``response.prompt`` and ``response.token_ids``.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.base import (
    DetectionResult,
    Detector,
    DetectorKind,
    available_detectors,
    register_detector,
)
from halluscope.inference.generate import TokenScores
from halluscope.inference.scoring import tokens_in_span, whitespace_words

ResponseReduce = Literal["max", "mean"]
RESPONSE_REDUCES: tuple[ResponseReduce, ...] = ("max", "mean")


class GenerationDetector(Detector):
    """A detector over the tokens of a response of a causal LM.

    Attributes:
        expensive: whether the detector costs much more than one forward
            pass per response; expensive detectors run only when named.
    """

    kind: ClassVar[DetectorKind] = "generation"
    expensive: ClassVar[bool] = False

    @classmethod
    def for_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        **options: Any,
    ) -> GenerationDetector:
        """Create the detector for analysing responses of ``model``.

        The default ignores the model and calls ``cls(**options)``. Detectors
        that run the model (attention, attributions) override this to keep it.
        """
        del model, tokenizer
        return cls(**options)

    @abstractmethod
    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response, with one token score per token.

        Args:
            response: the response with its per-token numbers.
            context: the text the response should be grounded in, or None.
        """

    def detect_batch(
        self,
        responses: Sequence[TokenScores],
        contexts: Sequence[str | None] | None = None,
    ) -> list[DetectionResult]:
        """Return one verdict per response, in order (``contexts`` contains one per response)."""
        if contexts is None:
            contexts = [None] * len(responses)
        if len(contexts) != len(responses):
            raise ValueError(
                f"contexts has {len(contexts)} entries for {len(responses)} responses; "
                "pass one context (or None) per response."
            )
        return [
            self.detect(response, context=context)
            for response, context in zip(responses, contexts, strict=True)
        ]


def create_generation_detectors(
    detectors: Sequence[str | GenerationDetector] | None,
    *,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
) -> list[GenerationDetector]:
    """Turn detector names and instances into generation detectors for ``model``.

    Args:
        detectors: registered names or ready instances; None means every
            registered generation detector that is not ``expensive``, sorted by name.
        model: the causal LM whose responses are analysed.
        tokenizer: its tokenizer.

    Raises:
        KeyError: a name is not a registered generation detector (the message
            lists the registered ones).
        TypeError: an entry is neither a name nor a generation detector.
        ValueError: two entries have the same name.
    """
    registered = {cls.name: cls for cls in available_detectors("generation")}
    if detectors is None:
        detectors = [name for name, cls in registered.items() if not cls.expensive]
    if isinstance(detectors, str):
        raise TypeError("detectors must be a sequence of names; wrap a single name in a list.")

    created: list[GenerationDetector] = []
    for entry in detectors:
        if isinstance(entry, str):
            cls = registered.get(entry)
            if cls is None or not issubclass(cls, GenerationDetector):
                raise KeyError(
                    f"No generation detector named {entry!r}. Registered generation "
                    f"detectors: {sorted(registered)}."
                )
            created.append(cls.for_model(model, tokenizer))
        elif isinstance(entry, GenerationDetector):
            created.append(entry)
        else:
            raise TypeError(
                f"detectors entries must be names or generation detectors, got "
                f"{type(entry).__name__} (kind {getattr(entry, 'kind', None)!r})."
            )

    names = [detector.name for detector in created]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Each detector may run once, but {duplicates} appear more than once.")
    return created


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}.")


def reduce_token_scores(scores: np.ndarray, reduce: ResponseReduce) -> float:
    if scores.size == 0:
        return 0.0
    value = scores.max() if reduce == "max" else scores.mean()
    return float(np.clip(value, 0.0, 1.0))


def token_text(response: TokenScores, index: int) -> str:
    """Return the text under the span of token ``index`` (the whole character for a byte token)."""
    start, end = response.offsets[index]
    return response.text[int(start) : int(end)]


def empty_result(name: str) -> DetectionResult:
    return DetectionResult(
        detector=name,
        score=0.0,
        flagged=False,
        reason="empty response",
        token_scores=np.zeros(0, dtype=np.float32),
    )


@dataclass(frozen=True)
class ThresholdDetector(GenerationDetector):
    """Shared settings of detectors that reduce token scores and compare them to a threshold.

    Attributes:
        threshold: the response is flagged when its score is at least this (in [0, 1]).
        reduce: how token scores become the response score, "max" or "mean".
    """

    threshold: float = 0.9
    reduce: ResponseReduce = "max"

    def __post_init__(self) -> None:
        _check_fraction("threshold", self.threshold)
        if self.reduce not in RESPONSE_REDUCES:
            raise ValueError(f"reduce must be one of {RESPONSE_REDUCES}, got {self.reduce!r}.")

    def verdict(self, token_scores: np.ndarray, reason: str) -> DetectionResult:
        """Reduce the token scores to the response score and flag it at ``threshold``."""
        score = reduce_token_scores(token_scores, self.reduce)
        return DetectionResult(
            detector=self.name,
            score=score,
            flagged=score >= self.threshold,
            reason=reason,
            token_scores=token_scores,
        )


@register_detector
@dataclass(frozen=True)
class LowLogprobDetector(ThresholdDetector):
    """Flag responses with tokens the model itself found unlikely.

    Token score: ``1 - p(token)``, with p from the raw logits. Response score:
    the max (default) or mean of the token scores, flagged at ``threshold``
    (default 0.4, that is some token has p <= 0.6 under "max").

    NOTE: the default threshold comes from 80 held-out demo questions answered
    by SmolLM2-135M after the default LoRA fine-tune (F1 0.56 against answers
    that differ from the reference); other models and data need their own.
    """

    name: ClassVar[str] = "low_logprob"
    description: ClassVar[str] = (
        "Scores each token by 1 - p(token) under the model and flags responses "
        "with improbable tokens."
    )

    threshold: float = 0.4

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response; the context is not used."""
        if len(response) == 0:
            return empty_result(self.name)

        token_scores = np.clip(1.0 - response.probabilities, 0.0, 1.0).astype(np.float32)
        worst = int(np.argmax(token_scores))
        below = int(np.sum(token_scores >= self.threshold))
        worst_probability = float(response.probabilities[worst])
        reason = (
            f"least likely token {token_text(response, worst)!r} has p={worst_probability:.3f}; "
            f"{below} of {len(response)} tokens have p <= {1.0 - self.threshold:.2f}"
        )
        return self.verdict(token_scores, reason)


@register_detector
@dataclass(frozen=True)
class HighEntropyDetector(ThresholdDetector):
    """Flag responses generated where the model's next-token distribution was flat.

    Token score: the entropy of the raw next-token distribution divided by
    ``log(vocab_size)``, the entropy of a uniform distribution. Response
    score: the max (default) or mean, flagged at ``threshold`` (default 0.1,
    that is about 1.1 nats for a 49152-token vocabulary).

    NOTE: the default threshold comes from the same 80 demo answers as
    ``LowLogprobDetector``'s (F1 0.49); other models and data need their own.
    """

    name: ClassVar[str] = "high_entropy"
    description: ClassVar[str] = (
        "Scores each token by the normalised entropy of the model's next-token "
        "distribution and flags responses produced under high uncertainty."
    )

    threshold: float = 0.1

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response; the context is not used."""
        if len(response) == 0:
            return empty_result(self.name)

        token_scores = response.normalized_entropies
        worst = int(np.argmax(token_scores))
        above = int(np.sum(token_scores >= self.threshold))
        reason = (
            f"highest entropy {response.entropies[worst]:.2f} nats "
            f"({token_scores[worst]:.2f} of the maximum) at {token_text(response, worst)!r}; "
            f"{above} of {len(response)} tokens at or above {self.threshold:.2f}"
        )
        return self.verdict(token_scores, reason)


# Words that are often capitalised only because they start a sentence.
_SENTENCE_STARTERS = frozenset(
    """
    a about according after all also although an and answer any are as at based because
    before both but by can context could did do does during each every for from he her here
    his how however i if in is it its many most my no not of on or our she since so some sure
    that the their then there therefore these they this those thus to unfortunately was we
    were what when where which while who whom whose why will with would yes you your
    """.split()
)
_MONTHS = frozenset(
    "january february march april june july august september october november december".split()
)
_MONTH_ABBREVIATIONS = frozenset("Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec".split())
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())

# A run of letters or digits, joined across inner "." "," and apostrophes,
# so "1,200", "3.5", "U.S" and "France's" are one item and "wgc-hsbc" is two.
_ITEM_PATTERN = re.compile(r"[^\W_]+(?:[.,'’][^\W_]+)*")
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_THOUSANDS_SEPARATOR = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


@dataclass(frozen=True)
class FactualItem:
    """A number, capitalised name or date in a response, which is checked against the context.

    Attributes:
        text: the checked item, such as "14" or "Paris".
        start: index of its first character in the response.
        end: index one past its last character.
        category: "number", "name" or "date".
    """

    text: str
    start: int
    end: int
    category: str


def _category(item: str) -> str | None:
    """Return "number", "date" or "name" for an item worth checking, else None."""
    if any(character.isdigit() for character in item):
        return "number"
    lowered = item.lower()
    # "may" in lower case is far more often the verb than the month.
    if lowered in _MONTHS or lowered in _WEEKDAYS or item == "May" or item in _MONTH_ABBREVIATIONS:
        return "date"
    if item[0].isupper() and lowered not in _SENTENCE_STARTERS:
        return "name"
    return None


def _normalize(text: str) -> str:
    return _THOUSANDS_SEPARATOR.sub("", text.casefold())


def _occurs_in(item: str, normalized_context: str) -> bool:
    pattern = r"(?<![^\W_])" + re.escape(_normalize(item)) + r"(?![^\W_])"
    return re.search(pattern, normalized_context) is not None


def checked_items(response: str) -> list[FactualItem]:
    """List the numbers, capitalised names and dates of ``response``, whether supported or not.

    Items are runs of letters and digits inside whitespace-separated words,
    without a possessive "'s"; "wgc-hsbc" gives two items and "1,200" one.
    """
    items = []
    for _, word_start, word_end in whitespace_words(response):
        word = response[word_start:word_end]
        for match in _ITEM_PATTERN.finditer(word):
            item = _POSSESSIVE.sub("", match.group())
            category = _category(item) if item else None
            if category is not None:
                start = word_start + match.start()
                items.append(FactualItem(item, start, start + len(item), category))
    return items


def find_unsupported_words(response: str, context: str) -> list[FactualItem]:
    """Find the numbers, capitalised names and dates of ``response`` that ``context`` lacks.

    An item of ``checked_items`` is supported when it occurs in the context as
    a whole word, ignoring case and thousands separators.

    NOTE: numbers written as words ("twelve"), paraphrased dates and
    sentence-initial words outside the built-in list of sentence starters
    ("Yesterday") are not handled: the first two are missed, the last is
    checked like a name.
    """
    normalized_context = _normalize(context)
    return [
        item for item in checked_items(response) if not _occurs_in(item.text, normalized_context)
    ]


@register_detector
@dataclass(frozen=True)
class UnsupportedWordDetector(GenerationDetector):
    """Flag numbers, capitalised names and dates of a response that the context lacks.

    Token score: 1 for the tokens of an unsupported item (see
    ``find_unsupported_words``), else 0. Response score: 1 when any item is
    unsupported, else 0, and flagged then. Without a context nothing is checked.
    """

    name: ClassVar[str] = "unsupported_word"
    description: ClassVar[str] = (
        "Flags numbers, capitalised names and dates in the response that do not "
        "occur in the context."
    )

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response, checked against ``context``."""
        token_scores = np.zeros(len(response), dtype=np.float32)
        if context is None:
            return DetectionResult(
                detector=self.name,
                score=0.0,
                flagged=False,
                reason="no context given; nothing was checked",
                token_scores=token_scores,
            )

        unsupported = find_unsupported_words(response.text, context)
        for item in unsupported:
            token_scores[tokens_in_span(response.offsets, item.start, item.end)] = 1.0

        if unsupported:
            listed = ", ".join(repr(item.text) for item in unsupported[:5])
            more = f" and {len(unsupported) - 5} more" if len(unsupported) > 5 else ""
            reason = f"not in the context: {listed}{more}"
        elif checked_items(response.text):
            reason = "every number, capitalised name and date occurs in the context"
        else:
            reason = "no numbers, capitalised names or dates to check"
        return DetectionResult(
            detector=self.name,
            score=1.0 if unsupported else 0.0,
            flagged=bool(unsupported),
            reason=reason,
            token_scores=token_scores,
        )
