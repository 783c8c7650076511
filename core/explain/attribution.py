"""Token attributions with captum, behind a registry of methods.

An attribution method estimates how much each input token pushed a
score, where the score is a scalar picked from the model output: the logit
of a class for a classifier (``attribute``), or, for a causal LM, the
log-prob of one generated token (pass your own ``score_fn`` to
``attribute_score``). Every method works on the word embeddings, the output of
``model.get_input_embeddings()``, so position and token-type embeddings are
left out of every attribution, and integer token ids are never differentiated.

Adding a method is one class and one decorator:

    @register_attribution_method
    @dataclass(frozen=True)
    class MyMethod(AttributionMethod):
        name = "my_method"
        description = "..."

        def compute(self, model, example, score_fn, *, pad_token_id): ...
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from captum.attr import InputXGradient, LayerIntegratedGradients, Saliency
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.inference.encoding import EncodedExample, encode_example, validate_alignment
from halluscope.inference.runtime import (
    clamp_max_length,
    eval_mode,
    label_names_of,
    model_device,
)

logger = logging.getLogger(__name__)

#: Picks the scalar to explain from a model output, one value per batch row: shape [batch].
ScoreFunction = Callable[[Any], torch.Tensor]

#: Integrated gradients warns when |convergence delta| exceeds both this share
#: of |target_logit - baseline_logit| ...
DELTA_RELATIVE_TOLERANCE = 0.05
#: ... and this absolute amount in logits.
DELTA_ABSOLUTE_TOLERANCE = 0.05


@dataclass(frozen=True)
class MethodOutput:
    """The raw result of one attribution method on one example.

    Attributes:
        scores: float64 array [seq], one score per token (summed over the embedding dimension).
        convergence_delta: for integrated gradients, ``sum(scores) - (score(input) -
            score(baseline))``; None for methods without a completeness property.
        baseline_score: the explained score at the baseline input, or None.
    """

    scores: np.ndarray
    convergence_delta: float | None = None
    baseline_score: float | None = None


@dataclass(frozen=True)
class TokenAttributions:
    """Per-token attributions of one prediction.

    Attributes:
        tokens: the token strings, length seq.
        scores: float64 array [seq], the attribution of each token, summed over
            the embedding dimension. Positive pushes the target logit up.
        segment_ids: int8 array [seq]: 0 for ``text``, 1 for ``text_pair``, -1 for
            special tokens.
        offsets: int64 array [seq, 2] of (start, end) character offsets into the
            text of the token's segment; (0, 0) for special tokens.
        method: the registered name of the attribution method.
        target: the explained class id.
        target_label: the explained class name.
        convergence_delta: integrated gradients' completeness error
            ``sum(scores) - (target_logit - baseline_logit)``; None for other methods.
        target_logit: the logit of ``target`` for the input.
        baseline_logit: the logit of ``target`` at the baseline input
            (integrated gradients only), else None.
        delta_warning: a message when ``convergence_delta`` is large (see
            ``convergence_warning``), else None.
        truncated: whether the input was longer than ``max_length`` and was cut.
    """

    tokens: tuple[str, ...]
    scores: np.ndarray
    segment_ids: np.ndarray
    offsets: np.ndarray
    method: str
    target: int
    target_label: str
    convergence_delta: float | None
    target_logit: float
    baseline_logit: float | None = None
    delta_warning: str | None = None
    truncated: bool = False

    def __post_init__(self) -> None:
        seq = len(self.tokens)
        if self.scores.shape != (seq,):
            raise ValueError(
                f"scores must have shape ({seq},) for {seq} tokens, got {self.scores.shape}."
            )
        if not np.all(np.isfinite(self.scores)):
            raise ValueError(f"{self.method}: attribution scores contain NaN or inf.")
        validate_alignment(self.tokens, self.segment_ids, self.offsets)
        if self.target < 0:
            raise ValueError(f"target must be a non-negative class id, got {self.target}.")

    @property
    def total(self) -> float:
        """Sum of all token scores."""
        return float(self.scores.sum())


class AttributionMethod(ABC):
    """Base class of attribution methods; subclasses are frozen dataclasses of their options.

    Attributes:
        name: the registry key, for example "integrated_gradients".
        description: one sentence shown in the dashboard.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def compute(
        self,
        model: PreTrainedModel,
        example: EncodedExample,
        score_fn: ScoreFunction,
        *,
        pad_token_id: int | None,
    ) -> MethodOutput:
        """Attribute ``score_fn(model(**inputs))`` to the tokens of ``example``."""

    def num_passes(self) -> int:
        """Return the number of forward and backward passes one attribution costs."""
        return 1


_METHODS: dict[str, type[AttributionMethod]] = {}

MethodType = TypeVar("MethodType", bound=type[AttributionMethod])


def register_attribution_method(cls: MethodType) -> MethodType:
    """Add an attribution method class to the registry under its ``name`` (a class decorator).

    Raises:
        TypeError: the class lacks ``name`` or ``description``.
        ValueError: another class is already registered under the same name.
    """
    for attribute in ("name", "description"):
        if not isinstance(getattr(cls, attribute, None), str) or not getattr(cls, attribute):
            raise TypeError(f"{cls.__name__} must set the class attribute {attribute!r}.")
    existing = _METHODS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"An attribution method named {cls.name!r} is already registered "
            f"({existing.__module__}.{existing.__qualname__}); choose another name."
        )
    _METHODS[cls.name] = cls
    return cls


def available_attribution_methods() -> list[type[AttributionMethod]]:
    """List the registered attribution method classes, sorted by name."""
    return [cls for _, cls in sorted(_METHODS.items())]


def get_attribution_method(name: str, **options: Any) -> AttributionMethod:
    """Create the attribution method registered as ``name``.

    Options the method does not take (for example ``n_steps`` for saliency)
    are ignored, so callers can pass the same options to every method.

    Raises:
        KeyError: no method has that name (the message lists the registered ones).
    """
    cls = _METHODS.get(name)
    if cls is None:
        raise KeyError(
            f"No attribution method named {name!r}. Registered methods: {sorted(_METHODS)}."
        )
    accepted = (
        {field.name for field in dataclasses.fields(cls)}
        if dataclasses.is_dataclass(cls)
        else set()
    )
    return cls(**{key: value for key, value in options.items() if key in accepted})


def _extra_input_names(example: EncodedExample) -> list[str]:
    """Names of the model inputs besides ``input_ids``, in a fixed order."""
    return [name for name in example.model_inputs if name != "input_ids"]


def _embeddings_of(model: PreTrainedModel, example: EncodedExample) -> torch.Tensor:
    """Look up the word embeddings [1, seq, hidden] as a new leaf tensor that requires grad."""
    with torch.no_grad():
        embeddings = model.get_input_embeddings()(example.input_ids)
    return embeddings.detach().requires_grad_(True)


def _embedding_forward(
    model: PreTrainedModel, score_fn: ScoreFunction, names: list[str]
) -> Callable[..., torch.Tensor]:
    """Build ``forward(inputs_embeds, *extra_inputs) -> scores [batch]`` for captum."""

    def forward(inputs_embeds: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return score_fn(model(inputs_embeds=inputs_embeds, **dict(zip(names, extra, strict=True))))

    return forward


def _scores_to_numpy(attributions: torch.Tensor) -> np.ndarray:
    """Sum [1, seq, hidden] attributions over the embedding dimension: float64 [seq]."""
    return attributions.detach().sum(dim=-1)[0].double().cpu().numpy()


@register_attribution_method
@dataclass(frozen=True)
class IntegratedGradientsMethod(AttributionMethod):
    """Integrated gradients on the word embeddings (captum ``LayerIntegratedGradients``).

    The baseline keeps the special tokens ([CLS], [SEP], BOS, EOS) and replaces
    every other token by the pad token. Token scores sum to
    ``score(input) - score(baseline)`` up to the convergence delta.

    Warning:
        The path integral is approximated by a quadrature over ``n_steps``
        points (captum 0.9 uses Gauss-Legendre by default), so the scores are
        approximate.
        Check ``convergence_delta``; if it is large relative to the logit
        difference, raise ``n_steps``.

    Attributes:
        n_steps: points on the path from the baseline to the input (default 50).
        internal_batch_size: points per forward pass, to bound memory (default 16).
    """

    name: ClassVar[str] = "integrated_gradients"
    description: ClassVar[str] = (
        "Integrated gradients from a pad-token baseline; scores sum to the logit change "
        "(approximate, slow: n_steps passes)."
    )

    n_steps: int = 50
    internal_batch_size: int = 16

    def __post_init__(self) -> None:
        if self.n_steps < 2:
            raise ValueError(f"n_steps must be at least 2, got {self.n_steps}.")
        if self.internal_batch_size < 1:
            raise ValueError(
                f"internal_batch_size must be at least 1, got {self.internal_batch_size}."
            )

    def num_passes(self) -> int:
        """Return ``n_steps`` plus the baseline and input forward passes."""
        return self.n_steps + 2

    def compute(
        self,
        model: PreTrainedModel,
        example: EncodedExample,
        score_fn: ScoreFunction,
        *,
        pad_token_id: int | None,
    ) -> MethodOutput:
        """Attribute the score with integrated gradients from the pad-token baseline."""
        if pad_token_id is None:
            raise ValueError(
                "Integrated gradients needs a pad token for its baseline, but the tokenizer "
                "has none. Set tokenizer.pad_token (for example to tokenizer.eos_token)."
            )
        input_ids = example.input_ids
        keep = torch.as_tensor(example.special_tokens_mask, device=input_ids.device)
        baseline_ids = torch.where(keep, input_ids, torch.full_like(input_ids, pad_token_id))

        names = _extra_input_names(example)
        extra = tuple(example.model_inputs[name] for name in names)

        def forward(ids: torch.Tensor, *extra_inputs: torch.Tensor) -> torch.Tensor:
            return score_fn(model(input_ids=ids, **dict(zip(names, extra_inputs, strict=True))))

        with torch.no_grad():
            baseline_score = float(forward(baseline_ids, *extra)[0])

        explainer = LayerIntegratedGradients(forward, model.get_input_embeddings())
        attributions, delta = explainer.attribute(
            inputs=input_ids,
            baselines=baseline_ids,
            additional_forward_args=extra,
            n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size,
            return_convergence_delta=True,
        )
        return MethodOutput(
            scores=_scores_to_numpy(attributions),
            convergence_delta=float(delta.reshape(-1)[0]),
            baseline_score=baseline_score,
        )


@register_attribution_method
@dataclass(frozen=True)
class SaliencyMethod(AttributionMethod):
    """Gradient magnitude with respect to the word embeddings (captum ``Saliency``).

    Scores are the sum over the embedding dimension of ``|d score / d embedding|``,
    so they are never negative. Saliency measures how sensitive the score is to
    a token, not in which direction the token pushed it.
    """

    name: ClassVar[str] = "saliency"
    description: ClassVar[str] = (
        "Gradient magnitude per token (one backward pass; unsigned, local sensitivity)."
    )

    def compute(
        self,
        model: PreTrainedModel,
        example: EncodedExample,
        score_fn: ScoreFunction,
        *,
        pad_token_id: int | None,
    ) -> MethodOutput:
        """Attribute the score with absolute gradients of the word embeddings."""
        names = _extra_input_names(example)
        extra = tuple(example.model_inputs[name] for name in names)
        explainer = Saliency(_embedding_forward(model, score_fn, names))
        attributions = explainer.attribute(
            _embeddings_of(model, example), additional_forward_args=extra, abs=True
        )
        return MethodOutput(scores=_scores_to_numpy(attributions))


@register_attribution_method
@dataclass(frozen=True)
class InputXGradientMethod(AttributionMethod):
    """Gradient times word embedding, summed over the embedding dimension (captum).

    This is the first-order Taylor estimate of how much the score would drop
    if each word embedding were replaced by zero. The scores are signed.
    """

    name: ClassVar[str] = "input_x_gradient"
    description: ClassVar[str] = (
        "Gradient times word embedding per token (one backward pass; signed, first-order)."
    )

    def compute(
        self,
        model: PreTrainedModel,
        example: EncodedExample,
        score_fn: ScoreFunction,
        *,
        pad_token_id: int | None,
    ) -> MethodOutput:
        """Attribute the score with gradient times word embedding."""
        names = _extra_input_names(example)
        extra = tuple(example.model_inputs[name] for name in names)
        explainer = InputXGradient(_embedding_forward(model, score_fn, names))
        attributions = explainer.attribute(
            _embeddings_of(model, example), additional_forward_args=extra
        )
        return MethodOutput(scores=_scores_to_numpy(attributions))


def convergence_warning(delta: float, score_difference: float, n_steps: int) -> str | None:
    """Return a warning when integrated gradients' convergence delta is large, else None.

    Rule: warn when ``|delta|`` exceeds both ``DELTA_RELATIVE_TOLERANCE`` (5%) of
    ``|score_difference|`` and ``DELTA_ABSOLUTE_TOLERANCE`` (0.05 logits). The
    absolute floor keeps a tiny delta from warning when the logit barely moves
    between baseline and input.
    """
    threshold = max(DELTA_RELATIVE_TOLERANCE * abs(score_difference), DELTA_ABSOLUTE_TOLERANCE)
    if abs(delta) <= threshold:
        return None
    return (
        f"Integrated gradients did not converge: the token scores sum to {delta:+.3f} away "
        f"from the logit difference {score_difference:+.3f} between input and baseline, so "
        f"word scores may be off by that much. Raise n_steps (now {n_steps}), for example "
        f"to {n_steps * 4}."
    )


def attribute_score(
    model: PreTrainedModel,
    example: EncodedExample,
    score_fn: ScoreFunction,
    *,
    method: str | AttributionMethod = "integrated_gradients",
    pad_token_id: int | None = None,
    **options: Any,
) -> MethodOutput:
    """Attribute any scalar of the model output to the tokens of an encoded example.

    This is the model-agnostic core of ``attribute``: ``score_fn`` maps the
    model output to one value per batch row, shape [batch].

    Args:
        model: the model; it runs in eval mode during the call.
        example: the tokenized input from ``encode_example``, on the model's device.
        score_fn: picks the explained scalar, for example ``lambda out: out.logits[:, 1]``.
        method: a registered method name or a method instance.
        pad_token_id: the tokenizer's pad token id (the integrated gradients baseline).
        **options: method options such as ``n_steps``; ignored by methods without them.
    """
    if isinstance(method, str):
        method = get_attribution_method(method, **options)
    with eval_mode(model):
        return method.compute(model, example, score_fn, pad_token_id=pad_token_id)


def attribute(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    text_pair: str | None = None,
    *,
    target: int | None = None,
    method: str = "integrated_gradients",
    n_steps: int = 50,
    max_length: int = 256,
    internal_batch_size: int = 16,
) -> TokenAttributions:
    """Attribute a classifier's logit for ``target`` to the input tokens.

    Warning:
        Integrated gradients is approximate and costs about ``n_steps`` forward
        and backward passes. Read ``delta_warning`` on the result. Saliency and
        input x gradient are single-pass, local (first-order) estimates.

    Args:
        model: a sequence classifier; float32 or float64 weights give the most
            reliable gradients.
        tokenizer: its fast tokenizer.
        text: the input, or the context of a pair.
        text_pair: the claim of a pair, or None.
        target: the class id to explain (default: the predicted class).
        method: a registered method name (see ``available_attribution_methods``).
        n_steps: integrated gradients' path points (default 50).
        max_length: the maximum number of tokens, special tokens included (default 256).
        internal_batch_size: integrated gradients' path points per forward pass (default 16).

    Raises:
        ValueError: ``target`` is not a class id of the model.
        KeyError: ``method`` is not registered.
    """
    label_names = label_names_of(model)
    if target is not None and not 0 <= target < len(label_names):
        raise ValueError(
            f"target must be a class id in [0, {len(label_names) - 1}] for labels "
            f"{label_names}, got {target}."
        )
    explainer = get_attribution_method(
        method, n_steps=n_steps, internal_batch_size=internal_batch_size
    )

    device = model_device(model)
    max_length = clamp_max_length(model, tokenizer, max_length)
    example = encode_example(tokenizer, text, text_pair, max_length=max_length, device=device)
    with eval_mode(model), torch.no_grad():
        logits = model(**example.model_inputs).logits[0]
    if target is None:
        target = int(torch.argmax(logits))
    target_logit = float(logits[target])

    def target_score(output: Any) -> torch.Tensor:
        return output.logits[:, target]

    logger.debug("Attributing class %d with %s over %d tokens", target, method, len(example.tokens))
    # NOTE: in bfloat16 or float16 the gradients, and so the scores, are coarse;
    # the completeness check of integrated gradients then shows a larger delta.
    result = attribute_score(
        model, example, target_score, method=explainer, pad_token_id=tokenizer.pad_token_id
    )

    warning = None
    if result.convergence_delta is not None and result.baseline_score is not None:
        steps = getattr(explainer, "n_steps", n_steps)
        warning = convergence_warning(
            result.convergence_delta, target_logit - result.baseline_score, steps
        )
        if warning:
            logger.warning("%s", warning)

    return TokenAttributions(
        tokens=example.tokens,
        scores=result.scores,
        segment_ids=example.segment_ids,
        offsets=example.offsets,
        method=explainer.name,
        target=target,
        target_label=label_names[target],
        convergence_delta=result.convergence_delta,
        target_logit=target_logit,
        baseline_logit=result.baseline_score,
        delta_warning=warning,
        truncated=example.truncated,
    )
