"""Detectors trained on labelled data: the lookback-lens classifier and a stacked ensemble.

Both are logistic regressions over per-token features, behind the same
``GenerationDetector`` interface as the rule-based detectors:

- ``lookback_lens`` reads the lookback ratio of every layer and head
  (``halluscope.explain.lookback``), averaged over a window of tokens around
  each token, as in Chuang et al., "Lookback Lens" (arXiv:2407.07071, 2024);
- ``stacked_ensemble`` reads the token scores of other detectors
  (``low_logprob``, ``high_entropy``, ``unsupported_word``, ``low_lookback``),
  the token's surprisal and log rank, its pointwise mutual information with
  the context, whether its word and the word n-grams around it occur in the
  context, and the window and response means of all of these.

A trained detector is stored as a JSON file (feature standardisation, weights,
threshold and training facts), so loading one never unpickles code. Train one
with ``train_lookback_lens`` or ``train_stacked_ensemble`` from
``TokenFeatures`` and per-token labels; ``halluscope.evaluate`` builds both
from labelled files.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.base import DetectionResult, register_detector
from halluscope.detect.generation import (
    RESPONSE_REDUCES,
    GenerationDetector,
    ResponseReduce,
    create_generation_detectors,
    empty_result,
    reduce_token_scores,
    token_text,
)
from halluscope.inference.generate import TokenScores
from halluscope.inference.scoring import tokens_in_span, whitespace_words

logger = logging.getLogger(__name__)

#: Version 2 added the context-free log-probs and the response means of the ensemble.
FORMAT_VERSION = 2
DEFAULT_WINDOW = 8
#: The detectors whose token scores the stacked ensemble combines by default.
DEFAULT_BASE_DETECTORS = ("high_entropy", "low_logprob", "low_lookback", "unsupported_word")


@dataclass(frozen=True)
class TokenFeatures:
    """The inputs of trained detectors for one response, computed once and shared.

    Attributes:
        response: the scored or generated response.
        context: the text the response should be grounded in, or None.
        lookback_ratios: float array [n_tokens, layers, heads], or None when not computed.
        detector_scores: token scores of other detectors by name, float arrays [n_tokens].
        context_free_logprobs: float array [n_tokens], the log-prob of each
            token after the prompt without the context
            (``halluscope.inference.context_free``), or None when not computed.
    """

    response: TokenScores
    context: str | None = None
    lookback_ratios: np.ndarray | None = None
    detector_scores: Mapping[str, np.ndarray] = field(default_factory=dict)
    context_free_logprobs: np.ndarray | None = None


def window_means(values: np.ndarray, window: int) -> np.ndarray:
    """Average ``values`` [n, features] over a window of ``window`` tokens centred on each token.

    The window of token t covers ``[t - window // 2, t - window // 2 + window)``,
    cut at the ends of the response, so border tokens average fewer tokens.
    ``window=1`` returns the values unchanged.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}.")
    count = values.shape[0]
    if count == 0:
        return values.astype(np.float64)
    sums = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    first = np.arange(count) - window // 2
    starts = np.clip(first, 0, count)
    stops = np.clip(first + window, 0, count)
    return (sums[stops] - sums[starts]) / (stops - starts)[:, None]


@dataclass(frozen=True)
class LinearModel:
    """A standardised logistic regression, stored as plain numbers.

    ``probability(x) = sigmoid(((x - mean) / scale) @ coefficients + intercept)``.

    Attributes:
        feature_names: one name per feature column.
        mean: float array [features], subtracted from each column.
        scale: float array [features], each column is divided by it (never 0).
        coefficients: float array [features].
        intercept: the bias term.
    """

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float

    def __post_init__(self) -> None:
        size = len(self.feature_names)
        for name in ("mean", "scale", "coefficients"):
            array = np.asarray(getattr(self, name), dtype=np.float64)
            if array.shape != (size,):
                raise ValueError(
                    f"LinearModel.{name} must have shape ({size},), one per feature, got "
                    f"{array.shape}."
                )
            if not np.all(np.isfinite(array)):
                raise ValueError(f"LinearModel.{name} must be finite.")
            object.__setattr__(self, name, array)
        if np.any(self.scale <= 0):
            raise ValueError("LinearModel.scale must be positive.")

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Return the positive-class probability of each row of ``features`` [n, features]."""
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"Expected features of shape (n, {len(self.feature_names)}), got {features.shape}."
            )
        logits = ((features - self.mean) / self.scale) @ self.coefficients + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coefficients": self.coefficients.tolist(),
            "intercept": float(self.intercept),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LinearModel:
        return cls(
            feature_names=tuple(data["feature_names"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            coefficients=np.asarray(data["coefficients"], dtype=np.float64),
            intercept=float(data["intercept"]),
        )


def fit_linear_model(
    features: np.ndarray,
    labels: np.ndarray,
    feature_names: Sequence[str],
    *,
    regularization: float = 1.0,
    seed: int = 0,
) -> LinearModel:
    """Fit a logistic regression on standardised features.

    Args:
        features: float array [n, features].
        labels: int array [n] of 0/1 labels.
        feature_names: one name per column.
        regularization: inverse L2 strength ``C`` of scikit-learn (default 1.0).
        seed: random seed of the solver.

    Raises:
        ValueError: shape mismatch, or only one class in ``labels``.
    """
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, dtype=np.int64)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"features {features.shape} and labels {labels.shape} must have one row per token."
        )
    if np.unique(labels).size < 2:
        raise ValueError(
            f"Training needs both faithful (0) and hallucinated (1) tokens, but all "
            f"{labels.size} labels are {int(labels[0]) if labels.size else 'missing'}."
        )
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-8] = 1.0
    classifier = LogisticRegression(C=regularization, max_iter=2000, random_state=seed)
    classifier.fit((features - mean) / scale, labels)
    return LinearModel(
        feature_names=tuple(feature_names),
        mean=mean,
        scale=scale,
        coefficients=classifier.coef_[0],
        intercept=float(classifier.intercept_[0]),
    )


def _best_f1_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    from halluscope.evaluate.metrics import best_f1

    return best_f1(labels, probabilities).threshold


@dataclass(frozen=True)
class TrainedDetector(GenerationDetector):
    """A detector whose token scores come from a ``LinearModel`` over per-token features.

    Subclasses define ``feature_matrix``. Build one with ``train``, ``load`` or
    ``for_model(model, tokenizer, path=...)``.

    Attributes:
        classifier: the fitted model.
        window: tokens averaged around each token (see ``window_means``).
        threshold: the response is flagged when its score is at least this;
            by default the best-F1 threshold on the training tokens.
        reduce: how token scores become the response score, "max" or "mean".
        training: facts about the training data (files, rows, tokens, seconds).
        model: the causal LM, needed to compute features of a new response.
        tokenizer: its tokenizer.
    """

    classifier: LinearModel | None = None
    window: int = DEFAULT_WINDOW
    threshold: float = 0.5
    reduce: ResponseReduce = "mean"
    training: Mapping[str, Any] = field(default_factory=dict, compare=False)
    model: PreTrainedModel | None = field(default=None, repr=False, compare=False)
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False, compare=False)

    # Trained detectors run only when named, because they need a trained file.
    expensive: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.reduce not in RESPONSE_REDUCES:
            raise ValueError(f"reduce must be one of {RESPONSE_REDUCES}, got {self.reduce!r}.")
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}.")

    @classmethod
    def for_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        **options: Any,
    ) -> GenerationDetector:
        """Load the trained detector from ``options["path"]`` for analysing responses of ``model``.

        Raises:
            ValueError: no ``path`` was given.
        """
        path = options.pop("path", None)
        if path is None:
            raise ValueError(
                f"The {cls.name} detector must be trained first: train it with "
                "`halluscope evaluate FILE --dataset ... --train-on TRAIN_FILE` and pass the "
                f"saved file as {cls.__name__}.for_model(model, tokenizer, path=FILE)."
            )
        return cls.load(path, model=model, tokenizer=tokenizer, **options)

    # --- features -------------------------------------------------------------

    def feature_matrix(self, features: TokenFeatures) -> np.ndarray:
        """Return the feature rows [n_tokens, n_features] of one response."""
        raise NotImplementedError

    def complete_features(self, response: TokenScores, context: str | None) -> TokenFeatures:
        """Compute what ``feature_matrix`` needs for a response, running the model if needed."""
        raise NotImplementedError

    def token_scores_from(self, features: TokenFeatures) -> np.ndarray:
        """Return the token scores [n_tokens] in [0, 1] of one response from its features."""
        if self.classifier is None:
            raise ValueError(
                f"The {self.name} detector has no trained classifier; load or train it."
            )
        if len(features.response) == 0:
            return np.zeros(0, dtype=np.float32)
        return self.classifier.probabilities(self.feature_matrix(features))

    def result_from(self, features: TokenFeatures) -> DetectionResult:
        """Return the verdict on one response from its precomputed features."""
        if len(features.response) == 0:
            return empty_result(self.name)
        token_scores = self.token_scores_from(features)
        score = reduce_token_scores(token_scores, self.reduce)
        worst = int(np.argmax(token_scores))
        reason = (
            f"{self.reduce} token probability {score:.2f}; highest "
            f"{float(token_scores[worst]):.2f} at {token_text(features.response, worst)!r}"
        )
        return DetectionResult(
            detector=self.name,
            score=score,
            flagged=score >= self.threshold,
            reason=reason,
            token_scores=token_scores,
        )

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response, computing its features with the model."""
        if len(response) == 0:
            return empty_result(self.name)
        return self.result_from(self.complete_features(response, context))

    # --- training and storage ---------------------------------------------------

    @classmethod
    def train(
        cls,
        examples: Sequence[TokenFeatures],
        token_labels: Sequence[np.ndarray],
        *,
        regularization: float = 1.0,
        training: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> TrainedDetector:
        """Fit the detector on responses with one label per token.

        Args:
            examples: the features of each training response.
            token_labels: per response, an int array [n_tokens] of 1
                (hallucinated), 0 (faithful) or -1 (left out, such as a
                whitespace token outside every labelled word).
            regularization: inverse L2 strength of the logistic regression.
            training: facts to store with the detector, such as the file names.
            options: detector settings (``window``, ``reduce``, ...).

        Raises:
            ValueError: mismatched lengths, or only one class among the labels.
        """
        if len(examples) != len(token_labels):
            raise ValueError(
                f"{len(examples)} examples but {len(token_labels)} label arrays; "
                "pass one per example."
            )
        started = time.perf_counter()
        untrained = cls(**options)
        rows, labels = [], []
        for index, (example, labels_of_example) in enumerate(
            zip(examples, token_labels, strict=True)
        ):
            labels_of_example = np.asarray(labels_of_example, dtype=np.int64)
            if labels_of_example.shape != (len(example.response),):
                raise ValueError(
                    f"example {index}: {labels_of_example.shape[0]} token labels for "
                    f"{len(example.response)} tokens."
                )
            if len(example.response) == 0:
                continue
            keep = labels_of_example >= 0
            rows.append(untrained.feature_matrix(example)[keep])
            labels.append(labels_of_example[keep])
        features = np.concatenate(rows) if rows else np.zeros((0, 0))
        label_array = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)

        first = next((example for example in examples if len(example.response)), None)
        classifier = fit_linear_model(
            features, label_array, untrained.feature_names(first), regularization=regularization
        )
        threshold = _best_f1_threshold(label_array, classifier.probabilities(features))
        seconds = time.perf_counter() - started
        facts = {
            **(training or {}),
            "responses": len(examples),
            "tokens": int(label_array.size),
            "positive_tokens": int(label_array.sum()),
            "seconds": round(seconds, 2),
        }
        logger.info(
            "Trained %s on %d tokens of %d responses in %.1f s",
            cls.name,
            label_array.size,
            len(examples),
            seconds,
        )
        settings = {key: value for key, value in options.items() if key != "threshold"}
        return cls(classifier=classifier, threshold=threshold, training=facts, **settings)

    def feature_names(self, example: TokenFeatures | None = None) -> tuple[str, ...]:
        """Return the feature column names; an untrained detector reads them off ``example``."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Return the JSON-ready settings saved with the weights."""
        return {"window": self.window, "threshold": self.threshold, "reduce": self.reduce}

    def save(self, path: Path | str) -> Path:
        """Write the detector to a JSON file (parent folders are created) and return its path."""
        if self.classifier is None:
            raise ValueError(f"The {self.name} detector is not trained; nothing to save.")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "detector": self.name,
            "format_version": FORMAT_VERSION,
            "settings": self.settings(),
            "classifier": self.classifier.to_json(),
            "training": dict(self.training),
        }
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
        temporary.replace(path)
        return path

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        **overrides: Any,
    ) -> TrainedDetector:
        """Read a detector saved by ``save``; ``overrides`` replace saved settings (threshold, ...).

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not a saved ``cls.name`` detector.
        """
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}: not a saved detector (invalid JSON: {error.msg})."
            ) from error
        if not isinstance(document, dict) or document.get("detector") != cls.name:
            found = document.get("detector") if isinstance(document, dict) else None
            raise ValueError(
                f"{path}: expected a saved {cls.name!r} detector, found {found!r}. "
                "Load it with the class of that detector (see load_trained_detector)."
            )
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format version {document.get('format_version')!r} is not supported "
                f"(expected {FORMAT_VERSION}); train the detector again."
            )
        settings = {**document.get("settings", {}), **overrides}
        return cls(
            classifier=LinearModel.from_json(document["classifier"]),
            training=document.get("training", {}),
            model=model,
            tokenizer=tokenizer,
            **settings,
        )

    def _require_model(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self.model is None or self.tokenizer is None:
            raise ValueError(
                f"The {self.name} detector reruns the model on new responses; create it with "
                f"{type(self).__name__}.load(path, model=model, tokenizer=tokenizer)."
            )
        return self.model, self.tokenizer


@register_detector
@dataclass(frozen=True)
class LookbackLensDetector(TrainedDetector):
    """Score tokens with a logistic regression over per-head lookback ratios.

    Features of a token: the lookback ratio of every layer and head, averaged
    over ``window`` tokens around it (layers x heads features, 270 for
    SmolLM2-135M). Response score: the mean (default) or max token probability.

    NOTE: the weights are tied to the model they were trained with: its
    number of layers and heads, and what each head does.
    """

    name: ClassVar[str] = "lookback_lens"
    description: ClassVar[str] = (
        "Logistic regression over the lookback ratio of every attention head, trained on "
        "labelled data; needs a trained file."
    )

    def feature_names(self, example: TokenFeatures | None = None) -> tuple[str, ...]:
        if self.classifier is not None:
            return self.classifier.feature_names
        if example is None or example.lookback_ratios is None:
            raise ValueError("The lookback lens needs lookback_ratios for its training examples.")
        _, layers, heads = example.lookback_ratios.shape
        return tuple(f"L{layer}H{head}" for layer in range(layers) for head in range(heads))

    def feature_matrix(self, features: TokenFeatures) -> np.ndarray:
        ratios = features.lookback_ratios
        if ratios is None:
            raise ValueError("The lookback lens needs lookback_ratios in its TokenFeatures.")
        count = len(features.response)
        if ratios.ndim != 3 or ratios.shape[0] != count:
            raise ValueError(
                f"lookback_ratios must have shape ({count}, layers, heads), got {ratios.shape}."
            )
        flat = ratios.reshape(count, -1).astype(np.float64)
        if self.classifier is not None and flat.shape[1] != len(self.classifier.feature_names):
            raise ValueError(
                f"The lookback lens was trained on {len(self.classifier.feature_names)} heads, "
                f"but this model has {flat.shape[1]}; train it for this model."
            )
        return window_means(flat, self.window)

    def complete_features(self, response: TokenScores, context: str | None) -> TokenFeatures:
        from halluscope.explain.lookback import compute_lookback_ratios
        from halluscope.explain.sequence import encode_prompt_response

        model, tokenizer = self._require_model()
        sequence = encode_prompt_response(
            tokenizer, response.prompt, response.token_ids.tolist(), context=context
        )
        return TokenFeatures(response, context, compute_lookback_ratios(model, sequence))


_WORD_ITEM = re.compile(r"[^\W_]+")


def surprisal(features: TokenFeatures) -> np.ndarray:
    """Return each token's surprisal ``-log p`` in nats, float array [n_tokens]."""
    return -features.response.logprobs.astype(np.float64)


def log_rank(features: TokenFeatures) -> np.ndarray:
    """Return ``log(1 + rank)`` of each token under the model, float array [n_tokens]."""
    return np.log1p(features.response.ranks.astype(np.float64))


def _context_free(features: TokenFeatures) -> np.ndarray:
    if not features.context:
        return features.response.logprobs.astype(np.float64)
    if features.context_free_logprobs is None:
        raise ValueError(
            "This token feature needs the response's log-probs without the context; compute "
            "TokenFeatures.context_free_logprobs with "
            "halluscope.inference.context_free.context_free_logprobs."
        )
    values = np.asarray(features.context_free_logprobs, dtype=np.float64)
    if values.shape != (len(features.response),):
        raise ValueError(
            f"context_free_logprobs has shape {values.shape}; expected one value per token "
            f"({len(features.response)},)."
        )
    return values


def source_pmi(features: TokenFeatures) -> np.ndarray:
    """Return each token's pointwise mutual information with the context, in nats.

    ``log p(token | with context) - log p(token | without context)``: negative
    where the context makes the token less likely. 0 without a context.
    """
    return features.response.logprobs.astype(np.float64) - _context_free(features)


def context_free_surprisal(features: TokenFeatures) -> np.ndarray:
    """Return each token's surprisal after the prompt without the context, in nats."""
    return -_context_free(features)


def _spread_over_tokens(features: TokenFeatures, word_values: Sequence[float]) -> np.ndarray:
    """Give each token the largest value of the whitespace words it overlaps (0 outside words)."""
    response = features.response
    values = np.zeros(len(response), dtype=np.float64)
    for value, (_, start, end) in zip(word_values, whitespace_words(response.text), strict=True):
        indices = tokens_in_span(response.offsets, start, end)
        values[indices] = np.maximum(values[indices], value)
    return values


def novel_word_share(features: TokenFeatures) -> np.ndarray:
    """Return, per token, the share of its word's letter-digit runs that the context lacks.

    Words are the whitespace-separated words of the response; "France's"
    has the runs "france" and "s". Comparison ignores case. A token outside
    every word, or any token when there is no context, gets 0.
    """
    words = whitespace_words(features.response.text)
    if not features.context:
        return np.zeros(len(features.response), dtype=np.float64)
    context_items = {item.casefold() for item in _WORD_ITEM.findall(features.context)}
    shares = []
    for word, _, _ in words:
        items = [item.casefold() for item in _WORD_ITEM.findall(word)]
        shares.append(
            sum(item not in context_items for item in items) / len(items) if items else 0.0
        )
    return _spread_over_tokens(features, shares)


def novel_ngram(features: TokenFeatures, size: int) -> np.ndarray:
    """Return 1 for tokens of words with a letter-digit run in no context n-gram of ``size``.

    The response's runs are read in order across words; a run is supported
    when some ``size`` consecutive runs around it occur, in that order, in
    the context (ignoring case). So a phrase made of context words can still
    be flagged: against a context with "the mayor of Paris" and "Germany
    met", every word and bigram of "the mayor of Germany" is supported, but
    "mayor of germany" is a new trigram.
    """
    words = whitespace_words(features.response.text)
    if not features.context:
        return np.zeros(len(features.response), dtype=np.float64)
    context_items = [item.casefold() for item in _WORD_ITEM.findall(features.context)]
    context_ngrams = set(zip(*(context_items[offset:] for offset in range(size)), strict=False))
    items = [
        (item.casefold(), position)
        for position, (word, _, _) in enumerate(words)
        for item in _WORD_ITEM.findall(word)
    ]
    novel = [0.0] * len(words)
    for index, (_, position) in enumerate(items):
        starts = range(max(0, index - size + 1), min(index, len(items) - size) + 1)
        supported = any(
            tuple(item for item, _ in items[start : start + size]) in context_ngrams
            for start in starts
        )
        if not supported:
            novel[position] = 1.0
    return _spread_over_tokens(features, novel)


#: Per-token features computed from a response's ``TokenFeatures``, by name.
TOKEN_FEATURES = {
    "surprisal": surprisal,
    "log_rank": log_rank,
    "novel_word_share": novel_word_share,
    "source_pmi": source_pmi,
    "context_free_surprisal": context_free_surprisal,
    "novel_bigram": lambda features: novel_ngram(features, 2),
    "novel_trigram": lambda features: novel_ngram(features, 3),
}
#: The token features that need ``TokenFeatures.context_free_logprobs``.
CONTEXT_FREE_FEATURES = frozenset({"source_pmi", "context_free_surprisal"})
DEFAULT_TOKEN_FEATURES = (
    "surprisal",
    "log_rank",
    "novel_word_share",
    "source_pmi",
    "context_free_surprisal",
    "novel_bigram",
    "novel_trigram",
)


@register_detector
@dataclass(frozen=True)
class StackedEnsembleDetector(TrainedDetector):
    """Score tokens with a logistic regression over other detectors' token scores.

    Features of a token: each base detector's token score, the token
    features named in ``token_features`` (by default surprisal, log rank,
    pointwise mutual information with the context, surprisal without the
    context, and whether the token's word, bigrams and trigrams occur in the
    context), the mean of each over ``window`` tokens around the token, and,
    with ``response_means``, the mean of each over the whole response.
    Response score: the mean (default) or max token probability.

    The response means let one model serve summaries that are faithful
    almost throughout and summaries that are hallucinated almost throughout.
    On the 500 XSum summaries of each system, trained on one system and
    tested on the other, they raised the word-level AUROC by about 0.02.

    Attributes:
        base_detectors: names of the registered generation detectors combined.
        token_features: names of ``TOKEN_FEATURES`` added to their scores.
        response_means: whether to add the response mean of every feature.
    """

    name: ClassVar[str] = "stacked_ensemble"
    description: ClassVar[str] = (
        "Logistic regression over the token scores of the other detectors, each token's "
        "mutual information with the context and whether its words occur there, trained on "
        "labelled data; needs a trained file."
    )

    base_detectors: tuple[str, ...] = DEFAULT_BASE_DETECTORS
    token_features: tuple[str, ...] = DEFAULT_TOKEN_FEATURES
    response_means: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "base_detectors", tuple(self.base_detectors))
        object.__setattr__(self, "token_features", tuple(self.token_features))
        if not self.base_detectors:
            raise ValueError("base_detectors must name at least one detector.")
        unknown = sorted(set(self.token_features) - set(TOKEN_FEATURES))
        if unknown:
            raise ValueError(
                f"Unknown token features {unknown}; choose from {sorted(TOKEN_FEATURES)}."
            )

    def feature_names(self, example: TokenFeatures | None = None) -> tuple[str, ...]:
        names = self.base_detectors + self.token_features
        columns = names + tuple(f"{name}_window_mean" for name in names)
        if self.response_means:
            columns += tuple(f"{name}_response_mean" for name in names)
        return columns

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "base_detectors": list(self.base_detectors),
            "token_features": list(self.token_features),
            "response_means": self.response_means,
        }

    @property
    def needs_context_free_logprobs(self) -> bool:
        """Whether a token feature reads ``TokenFeatures.context_free_logprobs``."""
        return bool(CONTEXT_FREE_FEATURES & set(self.token_features))

    def feature_matrix(self, features: TokenFeatures) -> np.ndarray:
        missing = [name for name in self.base_detectors if name not in features.detector_scores]
        if missing:
            raise ValueError(
                f"The stacked ensemble needs the token scores of {missing}; "
                "run those detectors first."
            )
        columns = [
            np.asarray(features.detector_scores[name], dtype=np.float64)
            for name in self.base_detectors
        ]
        columns += [TOKEN_FEATURES[name](features) for name in self.token_features]
        values = np.stack(columns, axis=1)
        blocks = [values, window_means(values, self.window)]
        if self.response_means:
            blocks.append(np.broadcast_to(values.mean(axis=0), values.shape))
        return np.concatenate(blocks, axis=1)

    def complete_features(self, response: TokenScores, context: str | None) -> TokenFeatures:
        model, tokenizer = self._require_model()
        detectors = create_generation_detectors(
            list(self.base_detectors), model=model, tokenizer=tokenizer
        )
        scores = {
            detector.name: detector.detect(response, context=context).token_scores
            for detector in detectors
        }
        context_free = None
        if self.needs_context_free_logprobs:
            from halluscope.inference.context_free import context_free_logprobs

            context_free = context_free_logprobs(model, tokenizer, response, context)
        return TokenFeatures(
            response, context, detector_scores=scores, context_free_logprobs=context_free
        )


TRAINED_DETECTORS: dict[str, type[TrainedDetector]] = {
    LookbackLensDetector.name: LookbackLensDetector,
    StackedEnsembleDetector.name: StackedEnsembleDetector,
}


def load_trained_detector(
    path: Path | str,
    *,
    model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    **overrides: Any,
) -> TrainedDetector:
    """Load any saved trained detector, choosing the class by the name stored in the file.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a saved trained detector.
    """
    path = Path(path)
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("detector")
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(
            f"{path}: not a saved trained detector (expected a JSON object)."
        ) from error
    cls = TRAINED_DETECTORS.get(name)
    if cls is None:
        raise ValueError(
            f"{path}: stores a detector named {name!r}; trained detectors are "
            f"{sorted(TRAINED_DETECTORS)}."
        )
    return cls.load(path, model=model, tokenizer=tokenizer, **overrides)
