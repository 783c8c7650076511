"""Detectors that read the model's internals to see whether an answer leans on its context.

Both rerun the model over the prompt and the response (teacher forcing), so
they are created with ``for_model``:

- ``low_lookback``: attention heads that read the context little while a
  token was produced (lookback ratio, see ``halluscope.explain.lookback``);
- ``low_context_attribution``: tokens whose log-prob owes little to the
  context's tokens (input x gradient, see ``halluscope.explain.answer_attribution``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.base import DetectionResult, register_detector
from halluscope.detect.generation import (
    GenerationDetector,
    ResponseReduce,
    ThresholdDetector,
    empty_result,
    token_text,
)
from halluscope.explain.answer_attribution import attribute_answer
from halluscope.explain.lookback import compute_lookback_ratios
from halluscope.explain.sequence import PromptResponseSequence, encode_prompt_response
from halluscope.inference.generate import TokenScores


@dataclass(frozen=True)
class _ModelDetector(ThresholdDetector):
    """A threshold detector that reruns the model; build it with ``for_model``.

    Attributes:
        model: the causal LM whose responses are analysed.
        tokenizer: its fast tokenizer.
    """

    model: PreTrainedModel | None = field(default=None, repr=False, compare=False)
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False, compare=False)

    @classmethod
    def for_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        **options: Any,
    ) -> GenerationDetector:
        """Create the detector for ``model``, keeping the model and its tokenizer."""
        return cls(model=model, tokenizer=tokenizer, **options)

    def _sequence(self, response: TokenScores, context: str | None) -> PromptResponseSequence:
        if self.model is None or self.tokenizer is None:
            raise ValueError(
                f"The {self.name} detector runs the model; create it with "
                f"{type(self).__name__}.for_model(model, tokenizer)."
            )
        return encode_prompt_response(
            self.tokenizer, response.prompt, response.token_ids.tolist(), context=context
        )


@register_detector
@dataclass(frozen=True)
class LowLookbackDetector(_ModelDetector):
    """Flag responses produced while the attention heads looked away from the context.

    Token score: ``1 - mean lookback ratio`` over every layer and head, at the
    step that produced the token. The first token has ratio 1 (nothing was
    generated before it), so its score is 0. Response score: the mean
    (default) or max over the tokens, flagged at ``threshold``.

    NOTE: the default threshold (0.65) comes from 80 held-out demo questions
    answered by SmolLM2-135M after the default LoRA fine-tune (F1 0.52). A
    classifier over per-head ratios trained on labelled data is more reliable.
    """

    name: ClassVar[str] = "low_lookback"
    description: ClassVar[str] = (
        "Scores each token by how little the attention heads looked at the context "
        "while producing it (1 - lookback ratio)."
    )

    threshold: float = 0.65
    reduce: ResponseReduce = "mean"

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response, rerunning the model over prompt and response."""
        if len(response) == 0:
            return empty_result(self.name)

        ratios = compute_lookback_ratios(self.model, self._sequence(response, context))
        mean_ratios = ratios.mean(axis=(1, 2))
        token_scores = np.clip(1.0 - mean_ratios, 0.0, 1.0).astype(np.float32)
        worst = int(np.argmax(token_scores))
        reason = (
            f"mean lookback ratio {float(mean_ratios.mean()):.2f}; lowest "
            f"{float(mean_ratios[worst]):.2f} at {token_text(response, worst)!r}"
        )
        return self.verdict(token_scores, reason)


@register_detector
@dataclass(frozen=True)
class ContextAttributionDetector(_ModelDetector):
    """Flag responses whose tokens draw little attribution from the context.

    Token score: ``1 - share of the context`` in the token's absolute input x
    gradient attribution over context, question and earlier answer tokens
    (template tokens left out). Response score: the mean (default) or max,
    flagged at ``threshold``. A response without a context scores 0.

    It costs about one forward and backward pass per ``target_batch_size``
    response tokens, so it is not among the default detectors.

    NOTE: the default threshold (0.6) is a guess, not calibrated on labelled data.
    """

    name: ClassVar[str] = "low_context_attribution"
    description: ClassVar[str] = (
        "Scores each token by the share of its attribution that does not come from the "
        "context (input x gradient); slow, one backward pass per batch of tokens."
    )
    expensive: ClassVar[bool] = True

    threshold: float = 0.6
    reduce: ResponseReduce = "mean"
    target_batch_size: int = 16

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response, attributing every token of it."""
        if len(response) == 0:
            return empty_result(self.name)
        if not context:
            return DetectionResult(
                detector=self.name,
                score=0.0,
                flagged=False,
                reason="no context to be grounded in",
                token_scores=np.zeros(len(response), dtype=np.float32),
            )

        attributions = attribute_answer(
            self.model,
            self.tokenizer,
            self._sequence(response, context),
            target_batch_size=self.target_batch_size,
        )
        context_shares = attributions.segment_shares()[:, 0]
        token_scores = np.clip(1.0 - context_shares, 0.0, 1.0).astype(np.float32)
        worst = int(np.argmax(token_scores))
        reason = (
            f"mean context share {float(context_shares.mean()):.2f}; lowest "
            f"{float(context_shares[worst]):.2f} at {token_text(response, worst)!r}"
        )
        return self.verdict(token_scores, reason)
