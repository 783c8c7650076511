"""Extract the attention weights of one example and aggregate them.

Attention weights show where each token reads from, layer by layer. They are
not an explanation of the prediction on their own (a head can attend to a
token whose value vector contributes little), so the dashboard shows them
next to gradient-based attributions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.explain.sequence import PromptResponseSequence
from halluscope.inference.encoding import SPECIAL_SEGMENT, encode_example, validate_alignment
from halluscope.inference.runtime import clamp_max_length, eval_mode, model_device

logger = logging.getLogger(__name__)

# Rows of every attention matrix must sum to 1 within this tolerance.
_ROW_SUM_TOLERANCE = 1e-3

HeadStatistic = Literal["entropy", "to_special", "pair_to_text"]


class AttentionUnavailableError(RuntimeError):
    """Raised when a model returns no attention weights (a fused attention kernel)."""


@dataclass(frozen=True)
class AttentionMaps:
    """The attention weights of every layer and head for one unpadded input.

    Attributes:
        tokens: the token strings, length seq.
        weights: float32 array [num_layers, num_heads, seq, seq]; ``weights[l, h, q, k]``
            is how much query token q attends to key token k. Every row sums to 1.
        segment_ids: int8 array [seq]: 0 for ``text`` (or a causal LM's context),
            1 for ``text_pair`` (or the question), 2 for a causal LM's response
            tokens, -1 for special and template tokens.
        offsets: int64 array [seq, 2] of (start, end) character offsets into the
            text of the token's segment; (0, 0) for special tokens.
        truncated: whether the input was longer than ``max_length`` and was cut.
        causal: whether the maps come from a causal LM, whose queries attend
            only to themselves and earlier keys.
    """

    tokens: tuple[str, ...]
    weights: np.ndarray
    segment_ids: np.ndarray
    offsets: np.ndarray
    truncated: bool = False
    causal: bool = False

    def __post_init__(self) -> None:
        seq = len(self.tokens)
        if self.weights.ndim != 4 or self.weights.shape[2:] != (seq, seq):
            raise ValueError(
                f"weights must have shape [num_layers, num_heads, {seq}, {seq}] for {seq} "
                f"tokens, got {self.weights.shape}."
            )
        if self.weights.shape[0] < 1 or self.weights.shape[1] < 1:
            raise ValueError(
                f"weights must hold at least one layer and head, got {self.weights.shape}."
            )
        validate_alignment(self.tokens, self.segment_ids, self.offsets)
        if not np.all(np.isfinite(self.weights)):
            raise ValueError("weights contain NaN or inf.")
        row_sums = self.weights.sum(axis=-1)
        worst = float(np.max(np.abs(row_sums - 1.0))) if seq else 0.0
        if worst > _ROW_SUM_TOLERANCE:
            raise ValueError(
                f"Every attention row must sum to 1, but one is off by {worst:.4f}. "
                "Pass softmax-normalised attention probabilities."
            )
        if self.causal and seq:
            above = float(np.max(np.abs(np.triu(self.weights, k=1))))
            if above > _ROW_SUM_TOLERANCE:
                raise ValueError(
                    f"Causal attention maps must be zero above the diagonal, but a weight of "
                    f"{above:.4f} sits there. Check the attention mask passed to the model."
                )

    @property
    def num_layers(self) -> int:
        """Number of layers."""
        return int(self.weights.shape[0])

    @property
    def num_heads(self) -> int:
        """Number of attention heads per layer."""
        return int(self.weights.shape[1])

    @property
    def seq_len(self) -> int:
        """Number of tokens."""
        return len(self.tokens)

    def token_labels(self) -> tuple[str, ...]:
        """Return unique axis labels ``"<position>: <token>"``, so repeated tokens stay apart."""
        return tuple(f"{position}: {token}" for position, token in enumerate(self.tokens))

    def _check_layer(self, layer: int) -> None:
        if not 0 <= layer < self.num_layers:
            raise IndexError(f"layer must lie in [0, {self.num_layers - 1}], got {layer}.")

    def head(self, layer: int, head: int) -> np.ndarray:
        """Return the attention matrix of one head, [seq, seq] (rows: queries, columns: keys)."""
        self._check_layer(layer)
        if not 0 <= head < self.num_heads:
            raise IndexError(f"head must lie in [0, {self.num_heads - 1}], got {head}.")
        return self.weights[layer, head]

    def layer_mean(self, layer: int) -> np.ndarray:
        """Return the mean attention matrix over the heads of one layer, [seq, seq]."""
        self._check_layer(layer)
        return self.weights[layer].mean(axis=0)

    def rollout(self, residual_weight: float = 0.5) -> np.ndarray:
        """Compute attention rollout through all layers, [seq, seq].

        Each layer's head-mean matrix A is mixed with the identity to account
        for the residual connection, ``(1 - r) * A + r * I`` with
        ``r = residual_weight``, whose rows still sum to 1. The layers are then
        multiplied from the first to the last, so row q of the result is how
        much the last layer's token q draws from each input token. The default
        r = 0.5 equals adding the identity and renormalising the rows.
        """
        if not 0.0 <= residual_weight <= 1.0:
            raise ValueError(f"residual_weight must lie in [0, 1], got {residual_weight}.")
        identity = np.eye(self.seq_len, dtype=np.float64)
        result = identity
        for layer in range(self.num_layers):
            mixed = (1.0 - residual_weight) * self.layer_mean(layer).astype(np.float64)
            mixed += residual_weight * identity
            mixed /= mixed.sum(axis=-1, keepdims=True)
            result = mixed @ result
        return result

    def head_summary(self, statistic: HeadStatistic = "entropy") -> np.ndarray:
        """Summarise every head by one number, float array [num_layers, num_heads].

        Statistics:
            ``"entropy"``: mean entropy of the query rows in nats; low means the
            head focuses on few tokens.
            ``"to_special"``: mean attention that non-special queries pay to
            special tokens ([CLS], [SEP]), which many heads use as a no-op.
            ``"pair_to_text"``: mean attention that ``text_pair`` queries (the
            claim) pay to ``text`` keys (the context); NaN without a text_pair.
        """
        weights = self.weights.astype(np.float64)
        if statistic == "entropy":
            entropy = -(weights * np.log(np.clip(weights, 1e-12, None))).sum(axis=-1)
            return entropy.mean(axis=-1)

        special = self.segment_ids == SPECIAL_SEGMENT
        if statistic == "to_special":
            queries = ~special if np.any(~special) else np.ones_like(special)
            return weights[:, :, queries][:, :, :, special].sum(axis=-1).mean(axis=-1)

        if statistic == "pair_to_text":
            pair_queries = self.segment_ids == 1
            text_keys = self.segment_ids == 0
            if not np.any(pair_queries):
                return np.full((self.num_layers, self.num_heads), np.nan)
            return weights[:, :, pair_queries][:, :, :, text_keys].sum(axis=-1).mean(axis=-1)

        raise ValueError(
            f"statistic must be 'entropy', 'to_special' or 'pair_to_text', got {statistic!r}."
        )


def extract_attention(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    text_pair: str | None = None,
    *,
    max_length: int = 256,
) -> AttentionMaps:
    """Run one forward pass and return the attention weights of every layer and head.

    The input is tokenized exactly as ``predict_classifier`` does (the same
    truncation) but never padded, so no pad token appears in the maps.

    Args:
        model: a transformer loaded with ``attn_implementation="eager"``.
        tokenizer: its fast tokenizer.
        text: the input, or the context of a pair.
        text_pair: the claim of a pair, or None.
        max_length: the maximum number of tokens, special tokens included (default 256).

    Raises:
        AttentionUnavailableError: the model returned no attention weights,
            because it uses a fused kernel (SDPA, flash attention).
    """
    device = model_device(model)
    max_length = clamp_max_length(model, tokenizer, max_length)
    example = encode_example(tokenizer, text, text_pair, max_length=max_length, device=device)

    # A single unpadded input attends to every token; a pad token id here comes
    # from the text itself (a literal "[PAD]"), not from padding.
    if not bool(torch.all(example.model_inputs["attention_mask"] == 1)):
        raise RuntimeError("The unpadded input has a zero in its attention mask.")
    pad_id = tokenizer.pad_token_id
    if pad_id is not None and bool(torch.any(example.input_ids == pad_id)):
        logger.warning(
            "The text contains the pad token %r literally; it is attended like any other token.",
            tokenizer.pad_token,
        )

    with eval_mode(model), torch.inference_mode():
        output = model(**example.model_inputs, output_attentions=True)

    return AttentionMaps(
        tokens=example.tokens,
        weights=_attention_weights(model, output),
        segment_ids=example.segment_ids,
        offsets=example.offsets,
        truncated=example.truncated,
    )


def output_attentions(model: PreTrainedModel, output: object) -> tuple[torch.Tensor, ...]:
    """Return the per-layer attention tensors of a model output, [batch, heads, seq, seq] each.

    Raises:
        AttentionUnavailableError: the output has none, because the model uses
            a fused attention kernel.
    """
    attentions = getattr(output, "attentions", None)
    if not attentions or any(layer is None for layer in attentions):
        implementation = getattr(model.config, "_attn_implementation", "unknown")
        raise AttentionUnavailableError(
            f"The model returned no attention weights (attention implementation: "
            f'{implementation!r}). Load it with attention="eager" (see '
            "halluscope.models.load_sequence_classifier and load_causal_lm)."
        )
    return tuple(attentions)


def _attention_weights(model: PreTrainedModel, output: object) -> np.ndarray:
    """Stack the attention weights of the first batch row: float32 [layers, heads, seq, seq]."""
    layers = output_attentions(model, output)
    return torch.stack([layer[0] for layer in layers]).float().cpu().numpy()


def teacher_forced_output(model: PreTrainedModel, sequence: PromptResponseSequence) -> object:
    """Run a causal LM once over a whole unpadded prompt-response sequence, with attentions."""
    input_ids = sequence.input_ids.to(model_device(model))
    with eval_mode(model), torch.inference_mode():
        return model(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            output_attentions=True,
            use_cache=False,
        )


def extract_sequence_attention(
    model: PreTrainedModel, sequence: PromptResponseSequence
) -> AttentionMaps:
    """Return the attention of a causal LM over a prompt and its response, from one pass.

    The sequence is teacher-forced: prompt and response go through the model
    together, unpadded, so every response token's row shows what the model
    attended to when it read that token (and predicted the next one).

    Args:
        model: a causal LM loaded with ``attention="eager"``.
        sequence: the labelled prompt and response from ``encode_prompt_response``.

    Raises:
        AttentionUnavailableError: the model uses a fused attention kernel.
        ValueError: the returned weights are not causal.
    """
    output = teacher_forced_output(model, sequence)
    return AttentionMaps(
        tokens=sequence.tokens,
        weights=_attention_weights(model, output),
        segment_ids=sequence.segment_ids,
        offsets=sequence.offsets,
        causal=True,
    )
