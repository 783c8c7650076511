"""Lookback ratios: how much each attention head reads the context while generating.

For the response token at position ``p`` the query is position ``p - 1``,
the token the model had just read when it predicted token ``p``. For every
layer and head, with ``a`` that query's attention row::

    A_context = mean of a over the context tokens
    A_new     = mean of a over the response tokens before p
    lookback  = A_context / (A_context + A_new)

A ratio near 1 means the head looked back at the context rather than at
what the model had written so far. Hallucinated spans tend to have lower
ratios. The definition follows Chuang et al., "Lookback Lens: Detecting and
Mitigating Contextual Hallucinations in Large Language Models Using Only
Attention Maps" (arXiv:2407.07071, 2024), which averages over each group of tokens so
that a long context does not win by length alone.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedModel

from halluscope.explain.attention import AttentionMaps, output_attentions, teacher_forced_output
from halluscope.explain.sequence import CONTEXT_SEGMENT, PromptResponseSequence
from halluscope.inference.encoding import ANSWER_SEGMENT


def lookback_ratios_from_rows(
    query_rows: np.ndarray, segment_ids: np.ndarray, prompt_length: int
) -> np.ndarray:
    """Compute lookback ratios from the attention rows of the queries before each response token.

    Args:
        query_rows: float array [num_layers, num_heads, n, seq]; row i is the
            attention of the query at position ``prompt_length + i - 1``.
        segment_ids: int array [seq] of segment ids.
        prompt_length: number of prompt tokens.
    """
    context = np.flatnonzero(segment_ids[:prompt_length] == CONTEXT_SEGMENT)
    if context.size == 0:
        context = np.arange(prompt_length)

    weights = query_rows.astype(np.float64)
    count = weights.shape[2]
    ratios = np.ones((count, weights.shape[0], weights.shape[1]), dtype=np.float64)
    for index in range(1, count):
        context_mean = weights[:, :, index, context].mean(axis=-1)
        new_mean = weights[:, :, index, prompt_length : prompt_length + index].mean(axis=-1)
        total = context_mean + new_mean
        ratios[index] = np.divide(
            context_mean, total, out=np.full_like(total, 0.5), where=total > 0
        )
    return ratios.astype(np.float32)


def lookback_ratios(maps: AttentionMaps) -> np.ndarray:
    """Compute the lookback ratio of every response token, layer and head.

    The context is the context segment of the prompt. A prompt without one
    (a bare question) counts all its tokens as context instead.

    Args:
        maps: causal attention maps over a prompt and its response, from
            ``extract_sequence_attention``.

    Returns:
        float32 array [num_response_tokens, num_layers, num_heads] in [0, 1].
        The first response token has no earlier response tokens to look at,
        so its ratio is 1 by definition.

    Raises:
        ValueError: the maps are not causal or contain no response tokens.
    """
    if not maps.causal:
        raise ValueError("Lookback ratios need causal attention maps of a prompt and response.")
    positions = np.flatnonzero(maps.segment_ids == ANSWER_SEGMENT)
    if positions.size == 0:
        raise ValueError("The attention maps contain no response tokens (segment 2).")
    prompt_length = int(positions[0])
    return lookback_ratios_from_rows(
        maps.weights[:, :, positions - 1], maps.segment_ids, prompt_length
    )


def compute_lookback_ratios(model: PreTrainedModel, sequence: PromptResponseSequence) -> np.ndarray:
    """Run one teacher-forced pass and return the lookback ratios of the response tokens.

    Equal to ``lookback_ratios(extract_sequence_attention(model, sequence))``,
    but only the attention rows that the ratios read leave the model, so a
    long context does not need the full [layers, heads, seq, seq] maps in memory.

    Raises:
        AttentionUnavailableError: the model uses a fused attention kernel.
        ValueError: the response is empty.
    """
    if sequence.response_length == 0:
        raise ValueError("The response has no tokens, so it has no lookback ratios.")
    return lookback_ratios_from_output(model, teacher_forced_output(model, sequence), sequence)


def lookback_ratios_from_output(
    model: PreTrainedModel, output: object, sequence: PromptResponseSequence
) -> np.ndarray:
    """Compute the lookback ratios of the response tokens from a teacher-forced model output.

    ``output`` is the model's output over the whole ``sequence`` with
    ``output_attentions=True`` (see ``teacher_forced_output``), so a caller
    that also needs its logits runs the model once.

    Raises:
        AttentionUnavailableError: the output has no attention weights.
    """
    attentions = output_attentions(model, output)
    start = sequence.prompt_length - 1
    stop = sequence.seq_len - 1
    rows = torch.stack([layer[0, :, start:stop] for layer in attentions]).float().cpu().numpy()
    return lookback_ratios_from_rows(rows, sequence.segment_ids, sequence.prompt_length)
