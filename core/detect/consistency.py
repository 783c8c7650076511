"""Sampling consistency: flag the parts of a response that the model's own samples do not repeat.

SelfCheckGPT (Manakul, Liusie and Gales, "SelfCheckGPT: Zero-Resource
Black-Box Hallucination Detection for Generative Large Language Models",
arXiv:2303.08896, 2023) assumes that a model that has learned a fact tends to
state it again when it is sampled several times, while an invented detail
changes from sample to sample. ``SamplingConsistencyDetector`` samples N
answers to the prompt of a response and scores each response token by how
much the samples disagree with it, in two ways:

- token overlap (``word_overlap_scores``): per whitespace-separated word, the
  share of samples that lack the word's letter and digit runs (case-folded);
- embedding similarity (``sentence_similarity_scores``): per sentence, one
  minus the mean over samples of the cosine similarity between the sentence
  and its best-matching sentence of the sample, with the MiniLM encoder.

The token score is the mean of the two, or the overlap score alone when the
embedding part is switched off.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.base import DetectionResult, register_detector
from halluscope.detect.generation import (
    GenerationDetector,
    ResponseReduce,
    ThresholdDetector,
    empty_result,
)
from halluscope.inference.generate import TokenScores, generate_answers
from halluscope.inference.runtime import model_device
from halluscope.inference.scoring import tokens_in_span, whitespace_words

if TYPE_CHECKING:
    from halluscope.training.embeddings import Encoder

logger = logging.getLogger(__name__)

#: A function that returns ``count`` sampled answer texts for one prompt, used in
#: place of the model's sampling.
Sampler = Callable[[str, int], Sequence[str]]

# Letters and digits, so "Delhi," and "delhi" match and "wgc-hsbc" gives two runs.
_RUN_PATTERN = re.compile(r"[^\W_]+")
# A sentence ends after ".", "!" or "?" (and closing quotes or brackets) that
# whitespace follows, or at a line break. "3.5" and "U.S." inside a word stay whole.
_SENTENCE_END = re.compile(r"[.!?]+[\"'’”)\]]*(?=\s)|\n+")

# Log a progress line after every this many responses.
_LOG_EVERY = 10
# Prompts whose samples a seeded detector keeps. The responses of one prompt
# (a HaluEval pair) are usually scored one after another.
_CACHED_PROMPTS = 8


@dataclass(frozen=True)
class WordOverlap:
    """The number of samples that contain one whitespace-separated word of the response.

    Attributes:
        word: the word, equal to ``text[start:end]`` of the response.
        start: index of the word's first character in the response.
        end: index one past the word's last character.
        supporting: number of samples that contain every letter/digit run of the word.
        samples: number of samples compared.
        score: ``1 - supporting / samples``, or 0 for a word without letters or digits.
    """

    word: str
    start: int
    end: int
    supporting: int
    samples: int
    score: float


@dataclass(frozen=True)
class SentenceSimilarity:
    """The similarity of one sentence of the response to the samples.

    Attributes:
        start: index of the sentence's first character in the response.
        end: index one past its last character.
        similarity: mean over samples of the best cosine similarity to a sample sentence.
        score: ``1 - similarity``, clipped to [0, 1].
    """

    start: int
    end: int
    similarity: float
    score: float


def letter_digit_runs(text: str) -> list[str]:
    """Return the runs of letters and digits of ``text``, case-folded, in order."""
    return _RUN_PATTERN.findall(text.casefold())


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences and return their ``[start, end)`` character spans.

    A sentence ends after ".", "!" or "?" followed by whitespace, or at a line
    break. Spans exclude the surrounding whitespace, and blank parts are left out.

    NOTE: abbreviations such as "Dr. Smith" end a sentence too, so such a
    sentence is scored as two shorter ones.
    """
    boundaries = [match.end() for match in _SENTENCE_END.finditer(text)]
    spans = []
    start = 0
    for end in [*boundaries, len(text)]:
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            first = start + len(piece) - len(piece.lstrip())
            spans.append((first, first + len(stripped)))
        start = end
    return spans


def word_overlap_scores(response: str, samples: Sequence[str]) -> list[WordOverlap]:
    """Score each whitespace-separated word of ``response`` by the samples that lack it.

    A sample supports a word when every letter/digit run of the word (see
    ``letter_digit_runs``) is also a whole run of the sample, so "Delhi." is
    supported by "in delhi" but "Delhi" is not supported by "Delhite". An
    empty sample supports no word.

    Raises:
        ValueError: ``samples`` is empty.
    """
    if not samples:
        raise ValueError("word_overlap_scores needs at least one sample to compare with.")
    sample_runs = [set(letter_digit_runs(sample)) for sample in samples]

    overlaps = []
    for word, start, end in whitespace_words(response):
        runs = letter_digit_runs(word)
        if not runs:
            overlaps.append(WordOverlap(word, start, end, len(samples), len(samples), 0.0))
            continue
        supporting = sum(all(run in present for run in runs) for present in sample_runs)
        score = 1.0 - supporting / len(samples)
        overlaps.append(WordOverlap(word, start, end, supporting, len(samples), score))
    return overlaps


def sentence_similarity_scores(
    encoder: Encoder, response: str, samples: Sequence[str]
) -> list[SentenceSimilarity]:
    """Score each sentence of ``response`` by its dissimilarity to the samples.

    Every sentence of the response and of each sample is embedded with
    ``embed_texts`` (mean-pooled, L2-normalised). For each sample, the
    sentence's similarity is its best cosine similarity to a sentence of that
    sample. The mean over the samples gives ``similarity``, and
    ``1 - similarity`` clipped to [0, 1] the score. An empty sample has
    similarity 0.

    Raises:
        ValueError: ``samples`` is empty.
    """
    # Imported here because halluscope.training loads the transformers Trainer,
    # which an ``import halluscope.detect`` should not pay for.
    from halluscope.training.embeddings import embed_texts

    if not samples:
        raise ValueError("sentence_similarity_scores needs at least one sample to compare with.")
    spans = sentence_spans(response)
    if not spans:
        return []

    # Embed the response's sentences and every sample's sentences in one call.
    texts = [response[start:end] for start, end in spans]
    sample_rows: list[range] = []
    for sample in samples:
        sample_sentences = [sample[start:end] for start, end in sentence_spans(sample)]
        sample_rows.append(range(len(texts), len(texts) + len(sample_sentences)))
        texts.extend(sample_sentences)
    embeddings = embed_texts(encoder, texts)
    sentences = embeddings[: len(spans)]

    # best[i, j]: the best similarity of response sentence i to a sentence of sample j.
    best = np.zeros((len(spans), len(samples)), dtype=np.float64)
    for column, rows in enumerate(sample_rows):
        if len(rows) > 0:
            similarities = sentences @ embeddings[rows.start : rows.stop].T
            best[:, column] = similarities.max(axis=1)

    results = []
    for (start, end), similarity in zip(spans, best.mean(axis=1), strict=True):
        score = float(np.clip(1.0 - similarity, 0.0, 1.0))
        results.append(SentenceSimilarity(start, end, float(similarity), score))
    return results


class _DetectorState:
    """The mutable part of a frozen detector: the loaded encoder, cached samples and counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.encoder: Encoder | None = None
        # Sample texts by prompt, oldest first, kept only for a seeded detector.
        self.samples: OrderedDict[str, list[str]] = OrderedDict()
        self.responses = 0
        self.seconds = 0.0


@register_detector
@dataclass(frozen=True)
class SamplingConsistencyDetector(ThresholdDetector):
    """Flag response words and sentences that the model does not repeat when sampled again.

    SelfCheckGPT-style: ``samples`` answers to ``response.prompt`` are drawn
    from the model at ``temperature`` in one batch, seeded with ``seed`` so a
    rerun gives the same samples. Each token gets the mean of two scores (see
    the module docstring): the overlap score of its word and the embedding
    score of its sentence. A token outside every word, such as a lone space,
    has overlap score 0. With ``use_embeddings=False`` the token score is the
    overlap score alone. The response score is the max (default) or mean of
    the token scores, flagged at ``threshold``.

    The detector draws ``samples`` answers of up to ``max_new_tokens`` tokens
    per prompt, so it is expensive and runs only when named. With
    ``use_embeddings`` on, the sentence encoder is loaded on the first
    response, kept by the instance and moved to the device of ``model``.

    NOTE: for labelled data (XSum, HaluEval, FaithDial) another system wrote
    the response, and the samples come from the scoring model (SmolLM2-135M
    by default). So the check measures whether a proxy model agrees with the
    response, as SelfCheckGPT does with a proxy LLM, not whether the response's
    author was consistent.

    NOTE: the defaults come from only 20 HaluEval QA pairs (SmolLM2-135M on
    one CPU thread, about 15 s per batch of 5 samples). With them, pairwise
    accuracy was 0.80 and response AUROC 0.69. At temperature 1.0 (and
    ``reduce="mean"``) the samples rambled, and both fell below chance (0.25
    and 0.34). With ``use_embeddings=False`` they rose to 0.88 and 0.87,
    because a short correct answer ("Delhi") is unlike every full-sentence
    sample. On 6 XSum summaries (111 labelled words) the embedding part
    raised word AUROC from 0.54 to 0.69, so it stays on by default. The
    threshold (0.5) is a guess, not calibrated.

    Attributes:
        threshold: the response is flagged when its score is at least this (default 0.5).
        reduce: how token scores become the response score, "max" (default) or "mean".
        samples: number of sampled answers per prompt (default 5).
        temperature: sampling temperature (default 0.7).
        max_new_tokens: maximum length of each sampled answer, in tokens (default 64).
        seed: seeds the sampling of every response, or None for fresh randomness.
        use_embeddings: combine the embedding score with the overlap score (default True).
        encoder_name: the sentence encoder, a bundled model name or local folder
            (default "minilm").
        model: the causal LM that samples; set by ``for_model``.
        tokenizer: its tokenizer.
        sampler: replaces the model's sampling: called as
            ``sampler(prompt, samples)``, it returns the sample texts.
        encoder: a loaded sentence encoder to use instead of loading ``encoder_name``.
    """

    name: ClassVar[str] = "sampling_consistency"
    description: ClassVar[str] = (
        "Samples several answers to the same prompt and scores each token by how many "
        "samples lack its word and how unlike the samples its sentence is (SelfCheckGPT); "
        "slow, one batch of sampled answers per response."
    )
    expensive: ClassVar[bool] = True

    threshold: float = 0.5
    reduce: ResponseReduce = "max"
    samples: int = 5
    temperature: float = 0.7
    max_new_tokens: int = 64
    seed: int | None = 0
    use_embeddings: bool = True
    encoder_name: str = "minilm"
    model: PreTrainedModel | None = field(default=None, repr=False, compare=False)
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False, compare=False)
    sampler: Sampler | None = field(default=None, repr=False, compare=False)
    encoder: Encoder | None = field(default=None, repr=False, compare=False)
    _state: _DetectorState = field(
        default_factory=_DetectorState, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be a whole number of at least 1, got {self.samples!r}.")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be >= 0 or None, got {self.seed}.")

    @classmethod
    def for_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        **options: Any,
    ) -> GenerationDetector:
        """Create the detector for ``model``, which draws the samples."""
        return cls(model=model, tokenizer=tokenizer, **options)

    def sample_answers(self, prompt: str) -> list[str]:
        """Return ``samples`` sampled answers to ``prompt``, from ``sampler`` or the model.

        The model path passes the prompt ``samples`` times to
        ``generate_answers`` in one batch, seeded with ``seed``. A seeded
        detector keeps the samples of its last 8 prompts and returns them
        again for the same prompt, so both answers of a HaluEval pair are
        compared with the same samples at the cost of one batch.

        Raises:
            ValueError: neither a model nor a sampler is set, or the sampler
                returned no text.
        """
        if self.sampler is not None:
            texts = [str(text) for text in self.sampler(prompt, self.samples)]
            if not texts:
                raise ValueError(
                    f"The {self.name} sampler returned no samples for a prompt; "
                    "it must return at least one text."
                )
            return texts
        if self.model is None or self.tokenizer is None:
            raise ValueError(
                f"The {self.name} detector samples from the model; create it with "
                f"{type(self).__name__}.for_model(model, tokenizer), or pass a sampler."
            )

        # A seeded batch gives the same samples for the same prompt, so the
        # samples of a recent prompt are reused rather than drawn again.
        state = self._state
        if self.seed is not None:
            with state.lock:
                cached = state.samples.get(prompt)
                if cached is not None:
                    state.samples.move_to_end(prompt)
                    return list(cached)

        answers = generate_answers(
            self.model,
            self.tokenizer,
            [prompt] * self.samples,
            max_new_tokens=self.max_new_tokens,
            do_sample=True,
            temperature=self.temperature,
            seed=self.seed,
            batch_size=self.samples,
        )
        texts = [answer.text for answer in answers]
        if self.seed is not None:
            with state.lock:
                state.samples[prompt] = texts
                while len(state.samples) > _CACHED_PROMPTS:
                    state.samples.popitem(last=False)
        return list(texts)

    def sentence_encoder(self) -> Encoder:
        """Return the sentence encoder, loading ``encoder_name`` on the first call.

        The encoder is moved to the device of ``model`` when one is set.
        """
        if self.encoder is not None:
            return self.encoder
        state = self._state
        with state.lock:
            if state.encoder is None:
                from halluscope.training.embeddings import load_encoder

                logger.info("Loading the %s sentence encoder for %s", self.encoder_name, self.name)
                encoder = load_encoder(self.encoder_name)
                if self.model is not None:
                    encoder.model.to(model_device(self.model))
                state.encoder = encoder
            return state.encoder

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response, sampling new answers to its prompt.

        The context is not read, because the prompt of the response already contains it.
        """
        if len(response) == 0:
            return empty_result(self.name)

        started = time.perf_counter()
        sample_texts = self.sample_answers(response.prompt)
        token_scores, reason = self._score(response, sample_texts)
        self._log_progress(time.perf_counter() - started)
        return self.verdict(token_scores, reason)

    def _score(self, response: TokenScores, sample_texts: Sequence[str]) -> tuple[np.ndarray, str]:
        """Return the token scores [n] and the reason for one response and its samples."""
        overlap_scores = np.zeros(len(response), dtype=np.float64)
        overlaps = word_overlap_scores(response.text, sample_texts)
        for overlap in overlaps:
            indices = tokens_in_span(response.offsets, overlap.start, overlap.end)
            # A token that spans two words takes the higher score.
            overlap_scores[indices] = np.maximum(overlap_scores[indices], overlap.score)
        reason = self._overlap_reason(overlaps, len(sample_texts))

        if not self.use_embeddings:
            return overlap_scores.astype(np.float32), reason

        sentence_scores = np.zeros(len(response), dtype=np.float64)
        similarities = sentence_similarity_scores(
            self.sentence_encoder(), response.text, sample_texts
        )
        for sentence in similarities:
            indices = tokens_in_span(response.offsets, sentence.start, sentence.end)
            sentence_scores[indices] = np.maximum(sentence_scores[indices], sentence.score)
        if similarities:
            lowest = min(sentence.similarity for sentence in similarities)
            reason += f"; lowest sentence similarity to the samples {lowest:.2f}"

        token_scores = np.clip((overlap_scores + sentence_scores) / 2.0, 0.0, 1.0)
        return token_scores.astype(np.float32), reason

    @staticmethod
    def _overlap_reason(overlaps: Sequence[WordOverlap], sample_count: int) -> str:
        checked = [overlap for overlap in overlaps if letter_digit_runs(overlap.word)]
        if not checked:
            return f"no word with letters or digits to compare with {sample_count} samples"
        # max() keeps the first of equal scores, so ties go to the earliest word.
        worst = max(checked, key=lambda overlap: overlap.score)
        missing = sum(overlap.supporting < overlap.samples for overlap in checked)
        return (
            f"least repeated word {worst.word!r} occurs in {worst.supporting} of "
            f"{sample_count} samples; {missing} of {len(checked)} words are missing "
            "from at least one sample"
        )

    def _log_progress(self, seconds: float) -> None:
        state = self._state
        with state.lock:
            state.responses += 1
            state.seconds += seconds
            done, total_seconds = state.responses, state.seconds
        logger.debug("%s scored a response in %.2f s", self.name, seconds)
        if done == 1 or done % _LOG_EVERY == 0:
            logger.info(
                "%s has scored %d responses, %.2f s each on average",
                self.name,
                done,
                total_seconds / done,
            )
