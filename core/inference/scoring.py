"""Teacher-forced scoring of given responses, word-level scores, and record analysis.

Data labelled elsewhere (XSum summaries with word labels, HaluEval answers)
contains responses that the model did not generate. Teacher forcing feeds the
prompt and the response through the model in one forward pass and reads, at
each response position, the log-prob, entropy and rank that the model gives
the token that actually follows. For a greedy continuation these equal the
numbers ``generate_answers`` reports.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.inference.classify import InferenceCancelledError
from halluscope.inference.generate import (
    TokenScores,
    decode_token_pieces,
    left_pad,
    max_positions,
    token_statistics,
)
from halluscope.inference.prompting import encode_prompt, render_prompt
from halluscope.inference.runtime import eval_mode, model_device

if TYPE_CHECKING:
    from halluscope.detect.base import DetectionResult
    from halluscope.detect.generation import GenerationDetector

logger = logging.getLogger(__name__)

WordReduce = Literal["max", "mean"]
WORD_REDUCES: tuple[WordReduce, ...] = ("max", "mean")

#: The question given with rows that have a context and a response but no
#: question, such as the XSum article-summary pairs.
SUMMARY_INSTRUCTION = "Summarise the article in one sentence."

#: Record keys tried, in order, for each role when ``analyze_records`` is given no key.
CONTEXT_KEYS = ("context", "knowledge", "evidence", "source", "document", "passage")
QUESTION_KEYS = ("question", "prompt", "instruction", "query")
RESPONSE_KEYS = ("response", "answer", "summary", "output", "generation")

_WORD_PATTERN = re.compile(r"\S+")


@dataclass(frozen=True, kw_only=True)
class ScoredResponse(TokenScores):
    """A given response scored by teacher forcing, with the numbers of each of its tokens.

    ``offsets`` index into ``text``, which equals the response string that was
    scored (or the decoded text, when the response was given as token ids).
    """


@dataclass(frozen=True)
class WordScore:
    """The score of one whitespace-separated word of a response.

    Attributes:
        word: the word, equal to ``text[start:end]`` of the response.
        start: index of the word's first character in the response.
        end: index one past the word's last character.
        score: the reduced score of the tokens that overlap the word, or NaN
            when no token overlaps it.
        token_indices: the indices of those tokens.
    """

    word: str
    start: int
    end: int
    score: float
    token_indices: tuple[int, ...]


def whitespace_words(text: str) -> list[tuple[str, int, int]]:
    """Split ``text`` at whitespace into ``(word, start, end)`` spans.

    The words equal ``text.split()``, the word definition of the XSum
    hallucination labels.
    """
    return [(match.group(), match.start(), match.end()) for match in _WORD_PATTERN.finditer(text)]


def tokens_in_span(offsets: np.ndarray, start: int, end: int) -> np.ndarray:
    """Return the indices of the tokens whose character span overlaps ``[start, end)``.

    Args:
        offsets: int array [n, 2] of token character spans.
        start: first character of the span.
        end: one past the last character of the span.
    """
    if offsets.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    overlaps = (offsets[:, 0] < end) & (offsets[:, 1] > start)
    return np.flatnonzero(overlaps)


def word_scores(
    scored: TokenScores,
    token_scores: np.ndarray | Sequence[float] | None = None,
    *,
    reduce: WordReduce = "max",
) -> list[WordScore]:
    """Map per-token scores to the whitespace-separated words of the response.

    A token belongs to every word its character span overlaps. A token that
    covers only whitespace (a lone space token) belongs to no word, and the
    byte tokens of one emoji or CJK character all belong to its word.

    Args:
        scored: a scored or generated response.
        token_scores: float array [n] with one score per token. None (the
            default) uses the surprisal ``-logprob`` in nats.
        reduce: "max" (default) or "mean" over the tokens of a word.

    Returns:
        One ``WordScore`` per word of ``scored.text.split()``, in order.

    Raises:
        ValueError: ``token_scores`` does not have one entry per token, or
            ``reduce`` is unknown.
    """
    if reduce not in WORD_REDUCES:
        raise ValueError(f"reduce must be one of {WORD_REDUCES}, got {reduce!r}.")
    if token_scores is None:
        values = -scored.logprobs.astype(np.float64)
    else:
        values = np.asarray(token_scores, dtype=np.float64)
    if values.shape != (len(scored),):
        raise ValueError(
            f"token_scores must have shape ({len(scored)},), one per token, got {values.shape}."
        )

    words = []
    for word, start, end in whitespace_words(scored.text):
        indices = tokens_in_span(scored.offsets, start, end)
        if indices.size == 0:
            score = math.nan
        elif reduce == "max":
            score = float(values[indices].max())
        else:
            score = float(values[indices].mean())
        words.append(WordScore(word, start, end, score, tuple(int(i) for i in indices)))
    return words


def encode_response(
    tokenizer: PreTrainedTokenizerBase, response: str | Sequence[int], row: int
) -> tuple[list[int], str, tuple[str, ...], np.ndarray]:
    """Tokenize one response; return its ids, text, token pieces and token offsets."""
    if not isinstance(response, str):
        if not all(isinstance(token_id, (int, np.integer)) for token_id in response):
            raise TypeError(f"responses row {row}: expected a string or a sequence of token ids.")
        ids = [int(token_id) for token_id in response]
        pieces, offsets = decode_token_pieces(tokenizer, ids)
        return ids, "".join(pieces), pieces, offsets

    ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    pieces, offsets = decode_token_pieces(tokenizer, ids)
    if "".join(pieces) == response:
        return ids, response, pieces, offsets

    # Decoding did not give back the response (a normalising tokenizer, or a
    # SentencePiece tokenizer that drops a leading space). The offset mapping
    # of a fast tokenizer still locates every token in the original string.
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"responses row {row}: the tokens of the response decode to "
            f"{''.join(pieces)!r:.80} rather than {response!r:.80}, and the slow "
            f"{type(tokenizer).__name__} has no offset mapping to locate them. "
            "Use the model's fast tokenizer."
        )
    encoding = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
    offsets = np.asarray(encoding["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    return ids, response, _pieces_from_offsets(response, offsets), offsets


def _pieces_from_offsets(text: str, offsets: np.ndarray) -> tuple[str, ...]:
    """Give each character of ``text`` to the first token whose span reaches it."""
    pieces = []
    covered = 0
    for _, end in offsets:
        end = int(end)
        pieces.append(text[covered:end] if end > covered else "")
        covered = max(covered, end)
    if pieces and covered < len(text):
        pieces[-1] += text[covered:]
    return tuple(pieces)


def _accepts_logits_to_keep(model: PreTrainedModel) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def score_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str | Sequence[int]],
    *,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[ScoredResponse]:
    """Score given responses to prompts by teacher forcing, one forward pass per batch.

    Each prompt is tokenized like ``generate_answers`` does (``encode_prompt``)
    and each response with ``add_special_tokens=False``, and the two are
    concatenated. Rows are sorted by length and left-padded, with position
    ids taken from the attention mask. Only the logits of the last
    ``longest response + 1`` positions are computed where the model supports
    ``logits_to_keep``.

    Args:
        model: a decoder-only causal LM.
        tokenizer: its tokenizer, with a pad token.
        prompts: the prompt texts, for example from ``render_prompt``.
        responses: one response per prompt: a string, or a sequence of token
            ids to score exactly as given (such as ``GeneratedAnswer.token_ids``).
        batch_size: rows per forward pass (default 8).
        progress: called as ``progress(rows_done, rows_total)`` after each batch.
        should_stop: polled before each batch; returning True cancels the run.

    Returns:
        One ``ScoredResponse`` per row, in the order of ``prompts``.

    Raises:
        InferenceCancelledError: ``should_stop`` returned True.
        ValueError: bad arguments, or a row longer than the model's limit.
    """
    if isinstance(prompts, str) or isinstance(responses, str):
        raise TypeError("prompts and responses must be sequences; wrap a single one in a list.")
    if len(prompts) != len(responses):
        raise ValueError(
            f"prompts has {len(prompts)} rows but responses has {len(responses)}; "
            "pass one response per prompt."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "The tokenizer has no pad token, which batching needs. Set tokenizer.pad_token "
            "(for example to tokenizer.eos_token) before calling score_responses."
        )

    rows = _encode_rows(model, tokenizer, prompts, responses)
    total = len(rows)
    results: list[ScoredResponse | None] = [None] * total
    order = sorted(range(total), key=lambda row: -(len(rows[row][0]) + len(rows[row][1])))
    keep_logits = _accepts_logits_to_keep(model)
    device = model_device(model)
    done = 0

    with eval_mode(model), torch.inference_mode():
        for start in range(0, total, batch_size):
            if should_stop is not None and should_stop():
                logger.info("Scoring cancelled after %d of %d rows", done, total)
                raise InferenceCancelledError(done, total)

            batch = order[start : start + batch_size]
            for row, scored in zip(
                batch,
                _score_batch(model, tokenizer, prompts, rows, batch, keep_logits, device),
                strict=True,
            ):
                results[row] = scored

            done += len(batch)
            if progress is not None:
                progress(done, total)

    return [result for result in results if result is not None]


_EncodedRow = tuple[list[int], list[int], str, tuple[str, ...], np.ndarray]


def _encode_rows(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str | Sequence[int]],
) -> list[_EncodedRow]:
    """Tokenize every (prompt, response) row and check it fits the model."""
    limit = max_positions(model)
    rows = []
    for row, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        if not isinstance(prompt, str):
            raise TypeError(f"prompts row {row}: expected a string, got {type(prompt).__name__}.")
        prompt_ids = encode_prompt(tokenizer, prompt)
        if not prompt_ids:
            raise ValueError(
                f"prompts row {row}: the prompt is empty, so nothing predicts the first "
                "response token. Pass a prompt of at least one token."
            )
        response_ids, text, pieces, offsets = encode_response(tokenizer, response, row)
        if limit is not None and len(prompt_ids) + len(response_ids) > limit:
            raise ValueError(
                f"row {row}: {len(prompt_ids)} prompt tokens plus {len(response_ids)} response "
                f"tokens exceed the model's limit of {limit} positions. Shorten the context "
                "(analyze_records cuts it to max_context_tokens)."
            )
        rows.append((prompt_ids, response_ids, text, pieces, offsets))
    return rows


def _score_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    rows: list[_EncodedRow],
    batch: list[int],
    keep_logits: bool,
    device: torch.device,
) -> list[ScoredResponse]:
    """Run one forward pass over the rows ``batch`` and score each response."""
    sequences = [rows[row][0] + rows[row][1] for row in batch]
    input_ids, attention_mask = left_pad(sequences, tokenizer.pad_token_id, device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)

    # The logit at position t predicts token t + 1, and every row ends at the
    # last position, so the last (longest response + 1) logits cover them all.
    kept_positions = max(len(rows[row][1]) for row in batch) + 1
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "use_cache": False,
    }
    if keep_logits:
        inputs["logits_to_keep"] = kept_positions
    logits = model(**inputs).logits[:, -kept_positions:, :]

    scored = []
    for batch_row, row in enumerate(batch):
        prompt_ids, response_ids, text, pieces, offsets = rows[row]
        length = len(response_ids)
        row_logits = logits[batch_row, kept_positions - 1 - length : kept_positions - 1]
        logprobs, entropies, ranks = token_statistics(
            row_logits, torch.as_tensor(response_ids, dtype=torch.long)
        )
        scored.append(
            ScoredResponse(
                prompt=prompts[row],
                text=text,
                token_ids=np.asarray(response_ids, dtype=np.int64),
                tokens=pieces,
                offsets=offsets,
                logprobs=logprobs,
                entropies=entropies,
                ranks=ranks,
                vocab_size=int(logits.shape[-1]),
                prompt_length=len(prompt_ids),
            )
        )
    return scored


def score_response(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    response: str | Sequence[int],
) -> ScoredResponse:
    """Score one response to one prompt by teacher forcing; see ``score_responses``."""
    return score_responses(model, tokenizer, [prompt], [response], batch_size=1)[0]


def _resolve_key(
    records: Sequence[Mapping[str, object]], given: str | None, candidates: tuple[str, ...]
) -> str | None:
    if given is not None:
        return given
    first = records[0]
    return next((key for key in candidates if key in first), None)


def _text_field(record: Mapping[str, object], key: str, row: int) -> str:
    if key not in record:
        raise ValueError(
            f"records row {row}: the key {key!r} is missing (the row has {sorted(record)}). "
            "Give every row that key, or name another with the *_key arguments."
        )
    value = record[key]
    if not isinstance(value, str):
        raise ValueError(
            f"records row {row}: {key!r} must be text, got {type(value).__name__}: {value!r:.80}."
        )
    return value


def truncate_context(
    tokenizer: PreTrainedTokenizerBase, context: str, max_tokens: int
) -> tuple[str, bool]:
    """Cut ``context`` after its first ``max_tokens`` tokens.

    Returns:
        The kept text and whether anything was cut.
    """
    ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return context, False
    pieces, _ = decode_token_pieces(tokenizer, ids[:max_tokens])
    prefix = "".join(pieces)
    if not context.startswith(prefix):
        # NOTE: for a tokenizer whose decoding does not reproduce the text,
        # the cut falls at the same share of characters as of tokens.
        prefix = context[: int(len(context) * max_tokens / len(ids))]
    return prefix, True


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def analyze_records(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[Mapping[str, object]],
    *,
    detectors: Sequence[str | GenerationDetector] | None = None,
    batch_size: int = 4,
    context_key: str | None = None,
    question_key: str | None = None,
    response_key: str | None = None,
    default_question: str = SUMMARY_INSTRUCTION,
    system: str | None = None,
    max_context_tokens: int = 1024,
    word_reduce: WordReduce = "max",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict[str, object]]:
    """Score the response of every record by teacher forcing and run the generation detectors.

    Each record needs a context and a response, and may have a question. The
    keys are the first of ``CONTEXT_KEYS``, ``QUESTION_KEYS`` and
    ``RESPONSE_KEYS`` present in the first record, unless given. An XSum row
    (``source``, ``summary``) thus uses the article as context and
    ``default_question`` as question. The prompt is ``render_prompt`` of the
    question and the context, after cutting the context to
    ``max_context_tokens`` tokens.

    Args:
        model: a decoder-only causal LM.
        tokenizer: its tokenizer, with a pad token.
        records: the rows, as mappings such as the lines of a JSONL file.
        detectors: generation detectors, as registered names or instances.
            None (the default) runs every registered generation detector.
        batch_size: rows per forward pass (default 4).
        context_key: the key of the context; None guesses it.
        question_key: the key of the question; None guesses it, and rows
            without a question get ``default_question``.
        response_key: the key of the response; None guesses it.
        default_question: the question for rows without one (default
            ``SUMMARY_INSTRUCTION``).
        system: a system prompt for ``render_prompt``, or None.
        max_context_tokens: contexts are cut after this many tokens (default 1024).
        word_reduce: "max" (default) or "mean" over the tokens of a word.
        progress: called as ``progress(rows_done, rows_total)`` after each batch.
        should_stop: polled before each batch; returning True cancels the run.

    Returns:
        One JSON-ready dict per record, in order, with these keys:

        * ``index``, ``prompt``, ``response`` and ``context_truncated``;
        * ``tokens``: per token, token, token_id, start, end, logprob,
          entropy, rank and ``scores`` by detector name;
        * ``detectors``: score, flagged and reason by detector name;
        * ``words``: per whitespace-separated word, word, start, end and
          ``scores`` by detector name. A score is None where no token
          overlaps the word;
        * ``fields``: every other key of the record, such as ``id``,
          ``words`` and ``word_labels`` of XSum.

    Raises:
        ValueError: no records, a missing or non-text field (the message names
            the row and key), or bad arguments.
        InferenceCancelledError: ``should_stop`` returned True.
    """
    # Imported here because halluscope.detect imports this package.
    from halluscope.detect.generation import create_generation_detectors

    if isinstance(records, Mapping):
        raise TypeError("records must be a sequence of mappings; wrap a single record in a list.")
    if not records:
        raise ValueError("records is empty; pass at least one row.")
    if max_context_tokens < 1:
        raise ValueError(f"max_context_tokens must be at least 1, got {max_context_tokens}.")
    if word_reduce not in WORD_REDUCES:
        raise ValueError(f"word_reduce must be one of {WORD_REDUCES}, got {word_reduce!r}.")

    context_key = _resolve_key(records, context_key, CONTEXT_KEYS)
    question_key = _resolve_key(records, question_key, QUESTION_KEYS)
    response_key = _resolve_key(records, response_key, RESPONSE_KEYS)
    if context_key is None or response_key is None:
        raise ValueError(
            f"records row 0 has the keys {sorted(records[0])}, but analysis needs a context "
            f"(one of {CONTEXT_KEYS}) and a response (one of {RESPONSE_KEYS}). "
            "Name them with context_key and response_key."
        )
    if question_key is None:
        logger.info("The records have no question key; using %r as the question", default_question)
    detector_list = create_generation_detectors(detectors, model=model, tokenizer=tokenizer)

    prompts, responses, contexts, truncated = [], [], [], []
    for row, record in enumerate(records):
        context = _text_field(record, context_key, row)
        context, was_cut = truncate_context(tokenizer, context, max_context_tokens)
        question = default_question
        if question_key is not None and record.get(question_key) not in (None, ""):
            question = _text_field(record, question_key, row)
        prompts.append(render_prompt(tokenizer, question, context, system=system))
        responses.append(_text_field(record, response_key, row))
        contexts.append(context)
        truncated.append(was_cut)
    if any(truncated):
        logger.info(
            "%d of %d contexts are longer than max_context_tokens=%d and were cut",
            sum(truncated),
            len(records),
            max_context_tokens,
        )

    scored = score_responses(
        model,
        tokenizer,
        prompts,
        responses,
        batch_size=batch_size,
        progress=progress,
        should_stop=should_stop,
    )

    used_keys = {context_key, question_key, response_key}
    analyses = []
    for row, (record, response) in enumerate(zip(records, scored, strict=True)):
        results = [detector.detect(response, context=contexts[row]) for detector in detector_list]
        analyses.append(
            _analysis_of_row(row, record, response, results, truncated[row], used_keys, word_reduce)
        )
    return analyses


def _analysis_of_row(
    row: int,
    record: Mapping[str, object],
    response: ScoredResponse,
    results: Sequence[DetectionResult],
    context_truncated: bool,
    used_keys: set[str | None],
    word_reduce: WordReduce,
) -> dict[str, object]:
    """Assemble the JSON-ready analysis of one record."""
    tokens = response.token_records()
    for index, token in enumerate(tokens):
        token["scores"] = {result.detector: float(result.token_scores[index]) for result in results}

    words: list[dict[str, object]] = [
        {"word": word, "start": start, "end": end, "scores": {}}
        for word, start, end in whitespace_words(response.text)
    ]
    for result in results:
        for entry, word in zip(
            words, word_scores(response, result.token_scores, reduce=word_reduce), strict=True
        ):
            entry["scores"][result.detector] = _json_float(word.score)

    return {
        "index": row,
        "prompt": response.prompt,
        "response": response.text,
        "context_truncated": context_truncated,
        "tokens": tokens,
        "detectors": {
            result.detector: {
                "score": result.score,
                "flagged": result.flagged,
                "reason": result.reason,
            }
            for result in results
        },
        "words": words,
        "fields": {key: value for key, value in record.items() if key not in used_keys},
    }
