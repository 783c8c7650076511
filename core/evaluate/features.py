"""One teacher-forced pass per labelled response: token numbers, lookback ratios and token labels.

Evaluating many detectors on a labelled file needs, for each response, the
model's log-probs and entropies (``low_logprob``, ``high_entropy``), the
lookback ratio of every head (``low_lookback``, ``lookback_lens``), the
log-probs without the context and the other detectors' token scores
(``stacked_ensemble``). ``extract_features`` reads the first two from one
forward pass with attentions and the third from a pass over the short
prompt without the context, so each response costs about one pass over its
context however many detectors run.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.trained import TokenFeatures
from halluscope.evaluate.datasets import XSUM_QUESTION, LabelledResponse
from halluscope.explain.lookback import lookback_ratios_from_output
from halluscope.explain.sequence import encode_prompt_response
from halluscope.inference.context_free import context_free_logprobs
from halluscope.inference.generate import token_statistics
from halluscope.inference.prompting import render_prompt
from halluscope.inference.runtime import eval_mode, model_device
from halluscope.inference.scoring import (
    ScoredResponse,
    tokens_in_span,
    truncate_context,
    whitespace_words,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONTEXT_TOKENS = 1024


@dataclass(frozen=True)
class ExampleFeatures:
    """A labelled response with the numbers every detector reads.

    Attributes:
        record: the labelled response.
        features: the scored response, the (possibly cut) context, the
            lookback ratios [n_tokens, layers, heads] and the log-probs without
            the context; detectors' token scores are added by the evaluation.
        context_truncated: whether the context was cut to the token limit.
    """

    record: LabelledResponse
    features: TokenFeatures
    context_truncated: bool

    def word_token_indices(self) -> list[np.ndarray]:
        """Return, per whitespace-separated word of the response, the indices of its tokens."""
        response = self.features.response
        return [
            tokens_in_span(response.offsets, start, end)
            for _, start, end in whitespace_words(response.text)
        ]

    def token_labels(self) -> np.ndarray:
        """Return an int array [n_tokens] of training labels for the response's tokens.

        With word labels, a token takes the largest label of the words it
        overlaps, and a token outside every word (a lone space) gets -1 (left
        out). Without word labels every token takes the response label.
        """
        count = len(self.features.response)
        if self.record.word_labels is None:
            return np.full(count, self.record.label, dtype=np.int64)
        labels = np.full(count, -1, dtype=np.int64)
        for indices, label in zip(self.word_token_indices(), self.record.word_labels, strict=True):
            labels[indices] = np.maximum(labels[indices], label)
        return labels


def _forward_with_attentions(model: PreTrainedModel, sequence) -> object:
    """Run the model once over prompt and response, with attentions and the response's logits.

    Only the logits of the last ``response_length + 1`` positions are computed
    where the model supports ``logits_to_keep``: the LM head over a long
    article would otherwise cost about a fifth of the pass.
    """
    inputs = {
        "input_ids": sequence.input_ids.to(model_device(model)),
        "output_attentions": True,
        "use_cache": False,
    }
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        inputs["logits_to_keep"] = sequence.response_length + 1
    with eval_mode(model), torch.inference_mode():
        return model(**inputs)


def extract_example(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    record: LabelledResponse,
    *,
    max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS,
    system: str | None = None,
    context_free: bool = True,
) -> ExampleFeatures:
    """Score one labelled response by teacher forcing and read its lookback ratios.

    The prompt is ``render_prompt`` of the record's question (the summary
    instruction for XSum) and its context cut to ``max_context_tokens``, as
    ``halluscope analyze`` builds it. With ``context_free`` (default), the
    response is also scored after the same prompt without the context, for
    the stacked ensemble's pointwise mutual information.

    Raises:
        AttentionUnavailableError: the model was not loaded with eager attention.
    """
    context, truncated = truncate_context(tokenizer, record.context, max_context_tokens)
    question = record.question or XSUM_QUESTION
    prompt = render_prompt(tokenizer, question, context, system=system)
    sequence = encode_prompt_response(
        tokenizer, prompt, record.response, context=context, question=question
    )
    output = _forward_with_attentions(model, sequence)

    prompt_length = sequence.prompt_length
    response_ids = sequence.input_ids[0, prompt_length:]
    # The last response_length + 1 positions are kept; all but the last predict a response token.
    logits = output.logits[0, -(sequence.response_length + 1) : -1]
    logprobs, entropies, ranks = token_statistics(logits, response_ids.to(logits.device))
    scored = ScoredResponse(
        prompt=prompt,
        text=sequence.response,
        token_ids=response_ids.cpu().numpy(),
        tokens=sequence.response_tokens,
        offsets=sequence.offsets[prompt_length:],
        logprobs=logprobs,
        entropies=entropies,
        ranks=ranks,
        vocab_size=int(output.logits.shape[-1]),
        prompt_length=prompt_length,
    )
    ratios = lookback_ratios_from_output(model, output, sequence)
    free = context_free_logprobs(model, tokenizer, scored, context) if context_free else None
    return ExampleFeatures(
        record, TokenFeatures(scored, context, ratios, context_free_logprobs=free), truncated
    )


def extract_features(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[LabelledResponse],
    *,
    max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS,
    system: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ExampleFeatures]:
    """Run ``extract_example`` on every record, in order (one unbatched forward pass each).

    Args:
        model: a causal LM loaded with eager attention.
        tokenizer: its fast tokenizer.
        records: the labelled responses.
        max_context_tokens: contexts are cut after this many tokens (default 1024).
        system: a system prompt for ``render_prompt``, or None.
        progress: called as ``progress(done, total)`` after each response.
    """
    examples = []
    for index, record in enumerate(records):
        if not record.response.strip():
            raise ValueError(f"{record.example_id}: the response is empty; nothing to score.")
        examples.append(
            extract_example(
                model, tokenizer, record, max_context_tokens=max_context_tokens, system=system
            )
        )
        if progress is not None:
            progress(index + 1, len(records))
    cut = sum(example.context_truncated for example in examples)
    if cut:
        logger.info(
            "%d of %d contexts were cut to %d tokens", cut, len(examples), max_context_tokens
        )
    return examples
