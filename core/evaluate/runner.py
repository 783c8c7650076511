"""Run detectors over labelled responses and measure them at word, response and pair level.

``run_detectors`` gives every detector's verdict on every example, reusing
the numbers of ``extract_features``. ``measure_detectors`` turns verdicts
and labels into one row of metrics per detector:

- word level (XSum word labels): a word's score is the max over its tokens;
- response level: the detector's response score against the response label;
- pairwise (HaluEval): the share of questions whose hallucinated answer
  scores above the faithful one, ties counted as half.

Trained detectors are trained with ``train_detector`` (the token classifier
with ``train_token_classifier_on``) or measured out of fold with
``out_of_fold_results``, so no example is scored by a model that saw it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.base import DetectionResult
from halluscope.detect.generation import GenerationDetector, create_generation_detectors
from halluscope.detect.grounding import LowLookbackDetector
from halluscope.detect.token_classifier import (
    TokenClassifierDetector,
    WordLabelledResponse,
    train_token_classifier,
)
from halluscope.detect.trained import StackedEnsembleDetector, TrainedDetector
from halluscope.evaluate.datasets import LabelledResponse
from halluscope.evaluate.features import ExampleFeatures
from halluscope.evaluate.metrics import (
    auprc,
    auroc,
    best_f1,
    expected_calibration_error,
    metrics_at_threshold,
    pairwise_accuracy,
)
from halluscope.inference.scoring import word_scores

logger = logging.getLogger(__name__)

#: The threshold for "F1@thr" of a detector without a ``threshold`` setting,
#: such as ``unsupported_word`` whose scores are 0 or 1.
DEFAULT_THRESHOLD = 0.5

#: Metric columns of a quality table, in display order, with their headers.
METRIC_COLUMNS: dict[str, str] = {
    "word_auroc": "word AUROC",
    "word_auprc": "word AUPRC",
    "word_best_f1": "word best F1",
    "word_best_threshold": "word best thr",
    "word_f1_at_threshold": "word F1@thr",
    "response_auroc": "resp AUROC",
    "response_auprc": "resp AUPRC",
    "response_best_f1": "resp best F1",
    "response_f1_at_threshold": "resp F1@thr",
    "response_ece": "resp ECE",
    "pairwise_accuracy": "pair acc",
}


@dataclass(frozen=True)
class DetectorQuality:
    """The metrics of one detector on one set of labelled examples.

    Attributes:
        detector: the detector's name, or a label such as "lookback_lens (train: a)".
        threshold: the detector's own decision threshold used for "F1@thr".
        metrics: values by key of ``METRIC_COLUMNS``; None where a metric does
            not apply or is undefined on this data.
        notes: why a metric is None, by key.
        counts: items measured, such as ``{"words": 812, "responses": 40}``.
    """

    detector: str
    threshold: float | None
    metrics: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "notes": self.notes,
            "counts": self.counts,
        }


def _cached_lookback_result(
    detector: LowLookbackDetector, example: ExampleFeatures
) -> DetectionResult:
    """Return the ``low_lookback`` verdict from the example's lookback ratios, without a rerun.

    The token scores are ``1 - mean ratio over layers and heads``, the
    formula of ``LowLookbackDetector.detect``; a test checks the two agree.
    """
    ratios = example.features.lookback_ratios
    mean_ratios = ratios.mean(axis=(1, 2))
    token_scores = np.clip(1.0 - mean_ratios, 0.0, 1.0).astype(np.float32)
    return detector.verdict(
        token_scores, f"mean lookback ratio {float(mean_ratios.mean()):.2f} (from cached ratios)"
    )


def context_for(detector: GenerationDetector, example: ExampleFeatures) -> str | None:
    """Return the context ``detector`` reads for ``example``.

    Most detectors read the context as the scoring model saw it, cut to its
    token limit. A detector with ``reads_full_context`` (the token classifier,
    which windows long inputs itself) reads the whole context of the record.
    """
    if getattr(detector, "reads_full_context", False):
        return example.record.context
    return example.features.context


def run_detectors(
    examples: Sequence[ExampleFeatures],
    detectors: Sequence[GenerationDetector],
    *,
    model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> dict[str, list[DetectionResult]]:
    """Return every detector's verdict on every example, by detector name.

    Rule-based detectors run first and their token scores are stored in each
    example's ``features.detector_scores``, where trained detectors read
    them. Base detectors that a stacked ensemble needs but that are not in
    ``detectors`` run as well (they need ``model`` when they rerun it), and
    are not returned.
    """
    trained = [detector for detector in detectors if isinstance(detector, TrainedDetector)]
    rule_based = [detector for detector in detectors if not isinstance(detector, TrainedDetector)]
    needed = {
        name
        for detector in trained
        if isinstance(detector, StackedEnsembleDetector)
        for name in detector.base_detectors
    } - {detector.name for detector in rule_based}
    helpers = (
        create_generation_detectors(sorted(needed), model=model, tokenizer=tokenizer)
        if needed
        else []
    )

    results: dict[str, list[DetectionResult]] = {}
    for detector in [*rule_based, *helpers]:
        verdicts = []
        for example in examples:
            if (
                isinstance(detector, LowLookbackDetector)
                and example.features.lookback_ratios is not None
            ):
                verdict = _cached_lookback_result(detector, example)
            else:
                verdict = detector.detect(
                    example.features.response, context=context_for(detector, example)
                )
            example.features.detector_scores[detector.name] = verdict.token_scores
            verdicts.append(verdict)
        results[detector.name] = verdicts
    for detector in trained:
        results[detector.name] = [detector.result_from(example.features) for example in examples]
    return {detector.name: results[detector.name] for detector in detectors}


def _try_metric(
    metrics: dict[str, float | None],
    notes: dict[str, str],
    key: str,
    compute: Callable[[], float],
) -> None:
    try:
        metrics[key] = float(compute())
    except ValueError as error:
        metrics[key] = None
        notes[key] = str(error)


def word_level_arrays(
    examples: Sequence[ExampleFeatures], results: Sequence[DetectionResult]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the word labels and word scores (max over a word's tokens) of labelled examples.

    Words that no token overlaps are left out.
    """
    labels, scores = [], []
    for example, result in zip(examples, results, strict=True):
        if example.record.word_labels is None:
            continue
        words = word_scores(example.features.response, result.token_scores, reduce="max")
        for word, label in zip(words, example.record.word_labels, strict=True):
            if not math.isnan(word.score):
                labels.append(label)
                scores.append(word.score)
    return np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=np.float64)


def measure_detector(
    name: str,
    examples: Sequence[ExampleFeatures],
    results: Sequence[DetectionResult],
    *,
    threshold: float | None = None,
    probabilistic: bool = False,
) -> DetectorQuality:
    """Compute the word-level, response-level and pairwise metrics of one detector.

    Args:
        name: the row label.
        examples: the labelled examples.
        results: the detector's verdict on each example, in order.
        threshold: the detector's decision threshold, for "F1@thr"; None skips it.
        probabilistic: whether the response scores are probabilities, which
            gives the expected calibration error.
    """
    if len(examples) != len(results):
        raise ValueError(f"{len(examples)} examples but {len(results)} results for {name}.")
    metrics: dict[str, float | None] = dict.fromkeys(METRIC_COLUMNS)
    notes: dict[str, str] = {}
    counts: dict[str, int] = {"responses": len(examples)}

    word_labels, word_values = word_level_arrays(examples, results)
    if word_labels.size:
        counts["words"] = int(word_labels.size)
        _try_metric(metrics, notes, "word_auroc", lambda: auroc(word_labels, word_values))
        _try_metric(metrics, notes, "word_auprc", lambda: auprc(word_labels, word_values))
        best = None
        try:
            best = best_f1(word_labels, word_values)
        except ValueError as error:
            notes["word_best_f1"] = str(error)
        if best is not None:
            metrics["word_best_f1"] = best.f1
            metrics["word_best_threshold"] = best.threshold
        if threshold is not None:
            _try_metric(
                metrics,
                notes,
                "word_f1_at_threshold",
                lambda: metrics_at_threshold(word_labels, word_values, threshold).f1,
            )

    labels = np.asarray([example.record.label for example in examples], dtype=np.int64)
    scores = np.asarray([result.score for result in results], dtype=np.float64)
    _try_metric(metrics, notes, "response_auroc", lambda: auroc(labels, scores))
    _try_metric(metrics, notes, "response_auprc", lambda: auprc(labels, scores))
    _try_metric(metrics, notes, "response_best_f1", lambda: best_f1(labels, scores).f1)
    if threshold is not None:
        _try_metric(
            metrics,
            notes,
            "response_f1_at_threshold",
            lambda: metrics_at_threshold(labels, scores, threshold).f1,
        )
    if probabilistic:
        _try_metric(
            metrics, notes, "response_ece", lambda: expected_calibration_error(labels, scores)
        )

    faithful, hallucinated = matched_pair_scores(examples, scores)
    if faithful.size:
        counts["pairs"] = int(faithful.size)
        _try_metric(
            metrics, notes, "pairwise_accuracy", lambda: pairwise_accuracy(faithful, hallucinated)
        )
    return DetectorQuality(name, threshold, metrics, notes, counts)


def matched_pair_scores(
    examples: Sequence[ExampleFeatures], scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the scores of the faithful and the hallucinated answer of each complete pair.

    A pair is the examples sharing a ``pair_id``, one labelled 0 and one 1;
    other groups are left out.
    """
    groups: dict[str, dict[int, float]] = defaultdict(dict)
    for example, score in zip(examples, scores, strict=True):
        if example.record.pair_id is not None:
            groups[example.record.pair_id][example.record.label] = float(score)
    pairs = [group for group in groups.values() if set(group) == {0, 1}]
    faithful = np.asarray([group[0] for group in pairs], dtype=np.float64)
    hallucinated = np.asarray([group[1] for group in pairs], dtype=np.float64)
    return faithful, hallucinated


def is_probabilistic(detector: GenerationDetector) -> bool:
    """Return whether the detector's response scores are probabilities (trained detectors)."""
    return isinstance(detector, TrainedDetector) or getattr(detector, "probabilistic", False)


def measure_detectors(
    examples: Sequence[ExampleFeatures],
    detectors: Sequence[GenerationDetector],
    results: Mapping[str, Sequence[DetectionResult]],
) -> list[DetectorQuality]:
    """Return one ``DetectorQuality`` per detector, in order, from ``run_detectors`` output."""
    return [
        measure_detector(
            detector.name,
            examples,
            results[detector.name],
            threshold=getattr(detector, "threshold", DEFAULT_THRESHOLD),
            probabilistic=is_probabilistic(detector),
        )
        for detector in detectors
    ]


def token_labels_of(examples: Sequence[ExampleFeatures]) -> list[np.ndarray]:
    """Return the training labels of each example's tokens; see ``ExampleFeatures.token_labels``."""
    return [example.token_labels() for example in examples]


def train_detector(
    cls: type[TrainedDetector],
    examples: Sequence[ExampleFeatures],
    *,
    model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    training: Mapping[str, Any] | None = None,
    **options: Any,
) -> TrainedDetector:
    """Train a detector of class ``cls`` on labelled examples and attach the model to it.

    Base detectors of a stacked ensemble are run first when their token
    scores are missing from the examples.
    """
    if issubclass(cls, StackedEnsembleDetector):
        probe = cls(**options)
        missing = [
            name
            for name in probe.base_detectors
            if any(name not in example.features.detector_scores for example in examples)
        ]
        if missing:
            run_detectors(
                examples,
                create_generation_detectors(missing, model=model, tokenizer=tokenizer),
                model=model,
                tokenizer=tokenizer,
            )
    files = sorted({example.record.source_file for example in examples})
    facts = {"files": files, **(training or {})}
    trained = cls.train(
        [example.features for example in examples],
        token_labels_of(examples),
        training=facts,
        **options,
    )
    return dataclasses.replace(trained, model=model, tokenizer=tokenizer)


def word_labelled_responses(
    records: Sequence[LabelledResponse],
) -> list[WordLabelledResponse]:
    """Return the token classifier's training examples: word labels, or the response label.

    A record without word labels (HaluEval, FaithDial) gives every word its
    response label, as ``ExampleFeatures.token_labels`` does for tokens.
    """
    return [
        WordLabelledResponse(
            response=record.response,
            context=record.context,
            word_labels=record.word_labels or (record.label,) * len(record.response.split()),
        )
        for record in records
    ]


def train_token_classifier_on(
    records: Sequence[LabelledResponse], **options: Any
) -> TokenClassifierDetector:
    """Train the token classifier on labelled records.

    ``options`` are passed to ``train_token_classifier``.
    """
    files = sorted({record.source_file for record in records})
    training = {"files": files, **options.pop("training", {})}
    return train_token_classifier(word_labelled_responses(records), training=training, **options)


def out_of_fold_results(
    cls: type[TrainedDetector] | type[TokenClassifierDetector],
    examples: Sequence[ExampleFeatures],
    groups: Sequence[Hashable],
    *,
    max_folds: int = 5,
    **options: Any,
) -> tuple[list[DetectionResult], list[float]]:
    """Cross-validate a trained detector: score each example with a model trained without its group.

    Groups (files, questions) are split into at most ``max_folds`` folds,
    keeping each group whole; with fewer groups than ``max_folds``, each group
    is a fold. ``options`` go to ``train_detector``, or for the token
    classifier to ``train_token_classifier``.

    Returns:
        The out-of-fold verdict of every example, in order, and the training
        time of each fold in seconds.

    Raises:
        ValueError: fewer than two groups.
    """
    from sklearn.model_selection import GroupKFold

    unique = list(dict.fromkeys(groups))
    if len(unique) < 2:
        raise ValueError(
            f"Cross-validation needs at least two groups (files or questions), got {len(unique)}."
        )
    folds = GroupKFold(n_splits=min(max_folds, len(unique)))
    results: list[DetectionResult | None] = [None] * len(examples)
    seconds = []
    group_ids = np.asarray([unique.index(group) for group in groups])
    for train_index, test_index in folds.split(np.zeros(len(examples)), groups=group_ids):
        if issubclass(cls, TokenClassifierDetector):
            detector = train_token_classifier_on(
                [examples[i].record for i in train_index], **options
            )
        else:
            detector = train_detector(cls, [examples[i] for i in train_index], **options)
        seconds.append(float(detector.training.get("seconds", 0.0)))
        for index in test_index:
            example = examples[index]
            if isinstance(detector, TokenClassifierDetector):
                results[index] = detector.detect(
                    example.features.response, context=context_for(detector, example)
                )
            else:
                results[index] = detector.result_from(example.features)
    return [result for result in results if result is not None], seconds


def format_table(rows: Sequence[DetectorQuality], *, columns: Sequence[str] | None = None) -> str:
    """Format quality rows as a markdown table; columns without any value are left out."""
    if columns is None:
        columns = [
            key for key in METRIC_COLUMNS if any(row.metrics.get(key) is not None for row in rows)
        ]
    header = "| detector | " + " | ".join(METRIC_COLUMNS[key] for key in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [header, rule]
    for row in rows:
        cells = []
        for key in columns:
            value = row.metrics.get(key)
            cells.append("–" if value is None else f"{value:.3f}")
        lines.append(f"| {row.detector} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
