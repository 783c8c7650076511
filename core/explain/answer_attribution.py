"""Attribute each response token of a causal LM to the tokens before it.

The explained score of response token i is its log-prob, read from the
logits at the position before it. Attributions are computed on the word
embeddings with captum, for many response tokens at once. The sequence is
repeated once per explained token, and each row of the batch gets its own
score, so one backward pass gives every row its gradients. Because the model
is causal, a row's attributions are zero from its target's position on.

Two methods are offered:

- ``input_x_gradient``: gradient times embedding, one pass per batch of
  targets; signed and first-order.
- ``integrated_gradients``: captum's ``LayerIntegratedGradients`` from a
  baseline that keeps the template tokens and replaces the context, question
  and response by the pad token; about ``n_steps`` passes, and per target the
  scores sum to ``log-prob(input) - log-prob(baseline)`` up to the
  convergence delta.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from captum.attr import InputXGradient, LayerIntegratedGradients
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.explain.attribution import TokenAttributions
from halluscope.explain.sequence import (
    CONTEXT_SEGMENT,
    QUESTION_SEGMENT,
    PromptResponseSequence,
)
from halluscope.explain.words import WordAttributions, aggregate_to_words
from halluscope.inference.classify import InferenceCancelledError
from halluscope.inference.encoding import ANSWER_SEGMENT, SPECIAL_SEGMENT
from halluscope.inference.runtime import eval_mode, model_device

logger = logging.getLogger(__name__)

AnswerAttributionMethod = Literal["input_x_gradient", "integrated_gradients"]
ANSWER_ATTRIBUTION_METHODS: tuple[AnswerAttributionMethod, ...] = (
    "input_x_gradient",
    "integrated_gradients",
)

#: Segments whose share of attribution ``AnswerAttributions.segment_shares`` reports, in order.
SHARE_SEGMENTS = (CONTEXT_SEGMENT, QUESTION_SEGMENT, ANSWER_SEGMENT)


@dataclass(frozen=True)
class AnswerAttributions:
    """Attributions of response tokens to the tokens of their prompt-response sequence.

    Attributes:
        sequence: the labelled prompt and response that was attributed.
        targets: int64 array [k], the explained response tokens (indices into
            the response, 0 for its first token), in increasing order.
        scores: float64 array [k, seq]; ``scores[j, t]`` is how much token t
            pushed the log-prob of response token ``targets[j]`` up. Zero at and
            after that token's position.
        target_logprobs: float64 array [k], each explained token's log-prob.
        method: ``"input_x_gradient"`` or ``"integrated_gradients"``.
        baseline_logprobs: float64 array [k] of log-probs at the baseline input
            (integrated gradients only), else None.
        convergence_deltas: float64 array [k], integrated gradients'
            ``sum(scores) - (target - baseline log-prob)``, else None.
    """

    sequence: PromptResponseSequence
    targets: np.ndarray
    scores: np.ndarray
    target_logprobs: np.ndarray
    method: str
    baseline_logprobs: np.ndarray | None = None
    convergence_deltas: np.ndarray | None = None

    def __post_init__(self) -> None:
        count, seq = len(self.targets), self.sequence.seq_len
        if self.scores.shape != (count, seq):
            raise ValueError(f"scores must have shape ({count}, {seq}), got {self.scores.shape}.")
        if self.target_logprobs.shape != (count,):
            raise ValueError(f"target_logprobs must have shape ({count},).")
        if not np.all(np.isfinite(self.scores)):
            raise ValueError(f"{self.method}: attribution scores contain NaN or inf.")

    def _index(self, target: int) -> int:
        matches = np.flatnonzero(self.targets == target)
        if matches.size == 0:
            raise KeyError(
                f"Response token {target} was not attributed; attributed tokens: "
                f"{self.targets.tolist()}."
            )
        return int(matches[0])

    def row(self, target: int) -> np.ndarray:
        """Return the attributions of one explained response token, float64 [seq].

        Raises:
            KeyError: ``target`` was not explained.
        """
        return self.scores[self._index(target)]

    def segment_shares(self) -> np.ndarray:
        """Split each target's absolute attribution between context, question and earlier answer.

        Absolute values are used, so a token that pushed the log-prob down
        still counts as read. Template tokens (BOS, role headers, the system
        prompt) are left out, because they carry large attributions that say
        nothing about grounding.

        Returns:
            float64 array [k, 3]: the shares of ``SHARE_SEGMENTS`` (context,
            question, answer), each row summing to 1 (all zeros when nothing
            but template tokens was attributed).
        """
        magnitudes = np.abs(self.scores)
        segment_ids = self.sequence.segment_ids
        totals = np.stack(
            [magnitudes[:, segment_ids == segment].sum(axis=1) for segment in SHARE_SEGMENTS],
            axis=1,
        )
        sums = totals.sum(axis=1, keepdims=True)
        return np.divide(totals, sums, out=np.zeros_like(totals), where=sums > 0)

    def token_attributions(self, target: int) -> TokenAttributions:
        """Return one explained token's attributions in the classifier's ``TokenAttributions`` form.

        ``target`` there is the vocabulary id of the explained token and
        ``target_logit`` its log-prob.
        """
        index = self._index(target)
        position = self.sequence.prompt_length + target
        token_id = int(self.sequence.input_ids[0, position])
        return TokenAttributions(
            tokens=self.sequence.tokens,
            scores=self.scores[index],
            segment_ids=self.sequence.segment_ids,
            offsets=self.sequence.offsets,
            method=self.method,
            target=token_id,
            target_label=self.sequence.tokens[position],
            convergence_delta=(
                None if self.convergence_deltas is None else float(self.convergence_deltas[index])
            ),
            target_logit=float(self.target_logprobs[index]),
            baseline_logit=(
                None if self.baseline_logprobs is None else float(self.baseline_logprobs[index])
            ),
        )

    def words(self, target: int, reduce: Literal["sum", "mean", "max"] = "sum") -> WordAttributions:
        """Aggregate one explained token's attributions to the words of the context and question.

        The context's words are ``text_words`` and the question's are
        ``pair_words``. Earlier response tokens and template tokens go into
        ``unassigned_score``.
        """
        sequence = self.sequence
        has_question = bool(np.any(sequence.segment_ids == QUESTION_SEGMENT))
        return aggregate_to_words(
            self.token_attributions(target),
            sequence.segment_text(CONTEXT_SEGMENT),
            sequence.segment_text(QUESTION_SEGMENT) if has_question else None,
            reduce=reduce,
        )


def _log_prob_forward(model: PreTrainedModel, *, embeddings: bool) -> Callable[..., torch.Tensor]:
    """Build ``forward(inputs, positions, token_ids) -> log-probs [batch]`` for captum.

    Row b's score is the log-prob of ``token_ids[b]`` at ``positions[b]``,
    read from the logits one position earlier.
    """

    def forward(
        inputs: torch.Tensor, positions: torch.Tensor, token_ids: torch.Tensor
    ) -> torch.Tensor:
        mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=inputs.device)
        key = "inputs_embeds" if embeddings else "input_ids"
        output = model(**{key: inputs}, attention_mask=mask, use_cache=False)
        rows = torch.arange(inputs.shape[0], device=inputs.device)
        logits = output.logits[rows, positions - 1].float()
        return torch.log_softmax(logits, dim=-1)[rows, token_ids]

    return forward


def _target_logprobs(
    model: PreTrainedModel, input_ids: torch.Tensor, positions: torch.Tensor
) -> np.ndarray:
    """Return the log-prob of the token at each of ``positions`` in one forward pass."""
    with torch.no_grad():
        output = model(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False
        )
        logits = output.logits[0, positions - 1].float()
        chosen = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[0, positions, None])
    return chosen[:, 0].double().cpu().numpy()


def _check_targets(targets: Sequence[int] | None, response_length: int) -> np.ndarray:
    if response_length == 0:
        raise ValueError("The response has no tokens to attribute.")
    if targets is None:
        return np.arange(response_length, dtype=np.int64)
    chosen = np.unique(np.asarray(list(targets), dtype=np.int64))
    if chosen.size == 0:
        raise ValueError("targets is empty; pass the response token indices to explain.")
    if chosen[0] < 0 or chosen[-1] >= response_length:
        raise ValueError(
            f"targets must be response token indices in [0, {response_length - 1}], "
            f"got {chosen.tolist()}."
        )
    return chosen


def attribute_answer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sequence: PromptResponseSequence,
    *,
    targets: Sequence[int] | None = None,
    method: AnswerAttributionMethod = "input_x_gradient",
    n_steps: int = 16,
    target_batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AnswerAttributions:
    """Attribute the log-prob of response tokens to every earlier token of the sequence.

    Args:
        model: the causal LM; it runs in eval mode during the call. float32
            weights give the most reliable gradients.
        tokenizer: its tokenizer (the pad token is integrated gradients' baseline).
        sequence: the labelled prompt and response from ``encode_prompt_response``.
        targets: indices of the response tokens to explain (default: all).
        method: ``"input_x_gradient"`` (one pass) or ``"integrated_gradients"``.
        n_steps: integrated gradients' path points (default 16).
        target_batch_size: response tokens explained per batch (default 8);
            memory grows with it times ``n_steps`` for integrated gradients.
        progress: called as ``progress(targets_done, targets_total)`` after each batch.
        should_stop: polled before each batch; returning True cancels.

    Raises:
        ValueError: bad targets or options, or no pad token for integrated gradients.
        InferenceCancelledError: ``should_stop`` returned True.
    """
    if method not in ANSWER_ATTRIBUTION_METHODS:
        raise ValueError(
            f"method must be one of {', '.join(ANSWER_ATTRIBUTION_METHODS)}, got {method!r}."
        )
    if target_batch_size < 1 or n_steps < 2:
        raise ValueError(
            f"target_batch_size must be >= 1 and n_steps >= 2, got {target_batch_size} "
            f"and {n_steps}."
        )
    pad_token_id = tokenizer.pad_token_id
    if method == "integrated_gradients" and pad_token_id is None:
        raise ValueError(
            "Integrated gradients needs a pad token for its baseline, but the tokenizer has "
            "none. Set tokenizer.pad_token (for example to tokenizer.eos_token)."
        )

    chosen = _check_targets(targets, sequence.response_length)
    device = model_device(model)
    input_ids = sequence.input_ids.to(device)
    template = torch.as_tensor(sequence.segment_ids == SPECIAL_SEGMENT, device=device)

    all_positions = torch.as_tensor(chosen + sequence.prompt_length, device=device)
    scores = np.zeros((chosen.size, sequence.seq_len), dtype=np.float64)
    baselines = np.zeros(chosen.size, dtype=np.float64)
    deltas = np.zeros(chosen.size, dtype=np.float64)

    with eval_mode(model):
        logprobs = _target_logprobs(model, input_ids, all_positions)
        for start in range(0, chosen.size, target_batch_size):
            if should_stop is not None and should_stop():
                logger.info("Attribution cancelled after %d of %d tokens", start, chosen.size)
                raise InferenceCancelledError(start, int(chosen.size))

            batch = chosen[start : start + target_batch_size]
            positions = torch.as_tensor(batch + sequence.prompt_length, device=device)
            # Tokens at and after the last target never influence its score.
            length = int(positions.max())
            ids = input_ids[:, :length].expand(len(batch), length)
            token_ids = input_ids[0, positions]
            extra = (positions, token_ids)

            if method == "input_x_gradient":
                forward = _log_prob_forward(model, embeddings=True)
                with torch.no_grad():
                    embeddings = model.get_input_embeddings()(ids)
                attributions = InputXGradient(forward).attribute(
                    embeddings.detach().requires_grad_(True), additional_forward_args=extra
                )
            else:
                forward = _log_prob_forward(model, embeddings=False)
                baseline_ids = torch.where(
                    template[:length], ids, torch.full_like(ids, pad_token_id)
                )
                with torch.no_grad():
                    baselines[start : start + len(batch)] = forward(baseline_ids, *extra).cpu()
                attributions, delta = LayerIntegratedGradients(
                    forward, model.get_input_embeddings()
                ).attribute(
                    inputs=ids,
                    baselines=baseline_ids,
                    additional_forward_args=extra,
                    n_steps=n_steps,
                    internal_batch_size=n_steps * len(batch),
                    return_convergence_delta=True,
                )
                deltas[start : start + len(batch)] = delta.detach().double().cpu().numpy()

            scores[start : start + len(batch), :length] = (
                attributions.detach().sum(dim=-1).double().cpu().numpy()
            )
            if progress is not None:
                progress(start + len(batch), int(chosen.size))

    is_integrated = method == "integrated_gradients"
    return AnswerAttributions(
        sequence=sequence,
        targets=chosen,
        scores=scores,
        target_logprobs=logprobs,
        method=method,
        baseline_logprobs=baselines if is_integrated else None,
        convergence_deltas=deltas if is_integrated else None,
    )
