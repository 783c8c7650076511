"""A causal LM's prompt and response as one token sequence, each token labelled by its part.

Attention maps, lookback ratios and attributions of generated text all read
one teacher-forced forward pass over the prompt followed by the response. To
say where an answer token looks, every position of that sequence is labelled:

- ``CONTEXT_SEGMENT`` (0): tokens of the grounding context inside the prompt;
- ``QUESTION_SEGMENT`` (1): tokens of the question inside the prompt;
- ``ANSWER_SEGMENT`` (2): the response tokens;
- ``SPECIAL_SEGMENT`` (-1): everything else: BOS, the chat template's role
  headers, the system prompt, and the "Context:" and "Question:" labels.

Offsets index into the text of each token's own part (the context, the
question or the response), as they do for a classifier's text and text pair,
so the word tools in ``halluscope.explain.words`` work on them unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from halluscope.inference.encoding import ANSWER_SEGMENT, SPECIAL_SEGMENT, validate_alignment
from halluscope.inference.prompting import encode_prompt
from halluscope.inference.scoring import encode_response

logger = logging.getLogger(__name__)

CONTEXT_SEGMENT = 0
QUESTION_SEGMENT = 1

#: Names of the segments, for tables and figures.
SEGMENT_NAMES = {
    SPECIAL_SEGMENT: "template",
    CONTEXT_SEGMENT: "context",
    QUESTION_SEGMENT: "question",
    ANSWER_SEGMENT: "answer",
}

# The labels that ``halluscope.inference.build_messages`` puts before each part.
_CONTEXT_LABEL = "Context: "
_QUESTION_LABEL = "Question: "


@dataclass(frozen=True)
class PromptResponseSequence:
    """A prompt followed by a response, tokenized as the model reads them in one pass.

    Attributes:
        input_ids: the prompt tokens then the response tokens, long tensor [1, seq].
        tokens: the text of each token, seq strings; the response tokens'
            pieces join to ``response``.
        segment_ids: int8 array [seq] of segment ids (see the module docstring).
        offsets: int64 array [seq, 2] of ``[start, end)`` character spans in the
            text of the token's segment; (0, 0) for template tokens.
        prompt_length: number of prompt tokens, so response token i sits at
            position ``prompt_length + i``.
        prompt: the prompt text.
        context: the context text located in the prompt, or None.
        question: the question text located in the prompt, or None.
        response: the response text.
    """

    input_ids: torch.Tensor
    tokens: tuple[str, ...]
    segment_ids: np.ndarray
    offsets: np.ndarray
    prompt_length: int
    prompt: str
    context: str | None
    question: str | None
    response: str

    def __post_init__(self) -> None:
        seq = len(self.tokens)
        if tuple(self.input_ids.shape) != (1, seq):
            raise ValueError(f"input_ids must have shape (1, {seq}), got {self.input_ids.shape}.")
        validate_alignment(self.tokens, self.segment_ids, self.offsets)
        if not 0 < self.prompt_length <= seq:
            raise ValueError(
                f"prompt_length must lie in [1, {seq}] for {seq} tokens, got {self.prompt_length}."
            )
        if np.any(self.segment_ids[self.prompt_length :] != ANSWER_SEGMENT):
            raise ValueError("Every token after the prompt must be in the answer segment.")

    @property
    def seq_len(self) -> int:
        """Number of tokens, prompt and response together."""
        return len(self.tokens)

    @property
    def response_length(self) -> int:
        """Number of response tokens."""
        return self.seq_len - self.prompt_length

    @property
    def response_tokens(self) -> tuple[str, ...]:
        """The text of each response token."""
        return self.tokens[self.prompt_length :]

    def segment_text(self, segment: int) -> str:
        """Return the text that the offsets of ``segment`` index into ("" for the template)."""
        texts = {
            CONTEXT_SEGMENT: self.context or "",
            QUESTION_SEGMENT: self.question or "",
            ANSWER_SEGMENT: self.response,
        }
        return texts.get(segment, "")

    def token_labels(self) -> tuple[str, ...]:
        """Return unique axis labels ``"<position>: <token>"``, so repeated tokens stay apart."""
        return tuple(f"{position}: {token}" for position, token in enumerate(self.tokens))


def _locate(prompt: str, part: str | None, label: str, start: int) -> tuple[int, int] | None:
    """Find ``part`` in ``prompt`` at or after ``start``, preferring it right after ``label``."""
    if not part:
        return None
    labelled = prompt.find(label + part, start)
    if labelled >= 0:
        begin = labelled + len(label)
        return begin, begin + len(part)
    plain = prompt.find(part, start)
    if plain >= 0:
        return plain, plain + len(part)
    return None


def _prompt_offsets(
    tokenizer: PreTrainedTokenizerBase, prompt: str, prompt_ids: list[int]
) -> np.ndarray:
    """Return the character span of each prompt token, tokenized as ``encode_prompt`` does it."""
    for add_special_tokens in (False, True):
        encoding = tokenizer(
            prompt, add_special_tokens=add_special_tokens, return_offsets_mapping=True
        )
        if list(encoding["input_ids"]) == prompt_ids:
            return np.asarray(encoding["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    raise ValueError(
        "Tokenizing the prompt with offsets did not reproduce encode_prompt's tokens, so "
        "the prompt tokens cannot be located in the text."
    )


def _label_prompt_tokens(
    offsets: np.ndarray, spans: Sequence[tuple[int, tuple[int, int] | None]]
) -> tuple[np.ndarray, np.ndarray]:
    """Give each prompt token the segment whose span it overlaps, with offsets in that span.

    A token that straddles a span boundary (a byte-level token " The" whose
    space belongs to the label before the context) joins the span, and its
    offsets are clipped to it.
    """
    segment_ids = np.full(len(offsets), SPECIAL_SEGMENT, dtype=np.int8)
    local = np.zeros_like(offsets)
    for index, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        for segment, span in spans:
            if span is None:
                continue
            span_start, span_end = span
            if start < span_end and end > span_start:
                segment_ids[index] = segment
                local[index] = (
                    max(start, span_start) - span_start,
                    min(end, span_end) - span_start,
                )
                break
    return segment_ids, local


def encode_prompt_response(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    response: str | Sequence[int],
    *,
    context: str | None = None,
    question: str | None = None,
    device: torch.device | str | None = None,
) -> PromptResponseSequence:
    """Tokenize a prompt and a response into one labelled sequence.

    The prompt is tokenized with ``encode_prompt`` and the response on its own
    (or taken as the given token ids), exactly as ``score_responses`` does, so
    the numbers read from this sequence match the scored response token by token.

    Args:
        tokenizer: the causal LM's fast tokenizer (offsets need one).
        prompt: the prompt text, for example from ``halluscope.inference.render_prompt``.
        response: the response text, or its token ids (``GeneratedAnswer.token_ids``).
        context: the context inside the prompt, or None. When it cannot be found
            in the prompt its tokens stay in the template segment and a warning
            is logged.
        question: the question inside the prompt, or None.
        device: where to put ``input_ids`` (default: the CPU).

    Raises:
        ValueError: the tokenizer is not a fast tokenizer, or the prompt is empty.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is a slow tokenizer without offsets. "
            "Load the model's fast tokenizer."
        )
    prompt_ids = encode_prompt(tokenizer, prompt)
    if not prompt_ids:
        raise ValueError("The prompt is empty, so nothing predicts the first response token.")
    prompt_offsets = _prompt_offsets(tokenizer, prompt, prompt_ids)

    context_span = _locate(prompt, context, _CONTEXT_LABEL, 0)
    if context and context_span is None:
        logger.warning("The context was not found in the prompt; its tokens count as template.")
    question_start = context_span[1] if context_span else 0
    question_span = _locate(prompt, question, _QUESTION_LABEL, question_start)
    if question and question_span is None:
        logger.warning("The question was not found in the prompt; its tokens count as template.")
    prompt_segments, prompt_local = _label_prompt_tokens(
        prompt_offsets, [(CONTEXT_SEGMENT, context_span), (QUESTION_SEGMENT, question_span)]
    )
    # A token the tokenizer added (a BOS) has an empty span; show its name instead.
    prompt_tokens = tuple(
        prompt[start:end] if end > start else tokenizer.convert_ids_to_tokens(token_id)
        for token_id, (start, end) in zip(prompt_ids, prompt_offsets, strict=True)
    )

    response_ids, response_text, response_pieces, response_offsets = encode_response(
        tokenizer, response, 0
    )

    ids = [*prompt_ids, *response_ids]
    segment_ids = np.concatenate(
        [prompt_segments, np.full(len(response_ids), ANSWER_SEGMENT, dtype=np.int8)]
    )
    offsets = np.concatenate([prompt_local, response_offsets.reshape(-1, 2)]).astype(np.int64)
    return PromptResponseSequence(
        input_ids=torch.as_tensor([ids], dtype=torch.long, device=device),
        tokens=prompt_tokens + tuple(response_pieces),
        segment_ids=segment_ids,
        offsets=offsets,
        prompt_length=len(prompt_ids),
        prompt=prompt,
        context=context if context_span else None,
        question=question if question_span else None,
        response=response_text,
    )
