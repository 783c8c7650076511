"""Evaluate detectors on a labelled file in one call, as ``halluscope evaluate`` does."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.detect.generation import GenerationDetector, create_generation_detectors
from halluscope.detect.token_classifier import TokenClassifierDetector
from halluscope.detect.trained import TRAINED_DETECTORS, load_trained_detector
from halluscope.evaluate.datasets import LabelledDataset
from halluscope.evaluate.features import DEFAULT_MAX_CONTEXT_TOKENS, extract_features
from halluscope.evaluate.runner import (
    DetectorQuality,
    measure_detectors,
    run_detectors,
    train_detector,
    train_token_classifier_on,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationOutcome:
    """The quality rows of an evaluation and the trained detectors it saved.

    Attributes:
        rows: one ``DetectorQuality`` per detector, in order.
        saved: paths of the detectors trained and saved during the evaluation.
    """

    rows: list[DetectorQuality]
    saved: list[Path] = field(default_factory=list)


def evaluate_labelled_data(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: LabelledDataset,
    *,
    detectors: Sequence[str] | None = None,
    trained_paths: Sequence[Path] = (),
    train_dataset: LabelledDataset | None = None,
    detector_dir: Path | None = None,
    window: int = 8,
    max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS,
    progress: Callable[[int, int], None] | None = None,
    training_progress: Callable[[int, int], None] | None = None,
) -> EvaluationOutcome:
    """Score a labelled dataset with detectors and return their quality rows.

    Args:
        model: the causal LM that scores the responses, with eager attention.
        tokenizer: its tokenizer.
        dataset: the labelled responses to measure on.
        detectors: registered generation detector names. None means every
            detector that is not expensive, plus the trained detectors when
            ``train_dataset`` is given. A trained detector's name needs
            ``train_dataset``.
        trained_paths: saved trained detectors to measure too: JSON files, or
            a token classifier's folder.
        train_dataset: labelled data to train ``lookback_lens``,
            ``stacked_ensemble`` and ``token_classifier`` on before measuring
            them on ``dataset``.
        detector_dir: where to save the detectors trained on ``train_dataset``;
            None keeps them in memory only.
        window: token window of the detectors trained here.
        max_context_tokens: contexts are cut after this many tokens.
        progress: called as ``progress(done, total)`` while ``dataset`` is scored.
        training_progress: called as ``progress(steps_done, steps_total)``
            while the token classifier trains.

    Raises:
        KeyError: an unknown detector name.
        ValueError: a trained detector named without ``train_dataset``.
    """
    if detectors is None:
        names = [
            detector.name
            for detector in create_generation_detectors(None, model=model, tokenizer=tokenizer)
        ]
        if train_dataset is not None:
            names += [*TRAINED_DETECTORS, TokenClassifierDetector.name]
    else:
        names = list(detectors)
    to_train = [name for name in names if name in TRAINED_DETECTORS]
    train_classifier = TokenClassifierDetector.name in names
    if (to_train or train_classifier) and train_dataset is None:
        raise ValueError(
            f"{to_train} must be trained first: pass labelled training data "
            "(--train-on FILE) or a saved detector (--trained FILE)."
        )
    rule_names = [
        name
        for name in names
        if name not in TRAINED_DETECTORS and name != TokenClassifierDetector.name
    ]
    selected: list[GenerationDetector] = create_generation_detectors(
        rule_names, model=model, tokenizer=tokenizer
    )

    saved: list[Path] = []
    if to_train:
        logger.info("Scoring %d training responses", len(train_dataset))
        train_examples = extract_features(
            model, tokenizer, train_dataset.records, max_context_tokens=max_context_tokens
        )
        for name in to_train:
            detector = train_detector(
                TRAINED_DETECTORS[name],
                train_examples,
                model=model,
                tokenizer=tokenizer,
                window=window,
                reduce="max" if train_dataset.name == "xsum" else "mean",
            )
            if detector_dir is not None:
                saved.append(detector.save(Path(detector_dir) / f"{name}.json"))
            selected.append(detector)
    if train_classifier:
        logger.info("Training the token classifier on %d responses", len(train_dataset))
        classifier = train_token_classifier_on(
            train_dataset.records,
            reduce="max" if train_dataset.name == "xsum" else "mean",
            progress=training_progress,
        )
        if detector_dir is not None:
            saved.append(classifier.save(Path(detector_dir) / TokenClassifierDetector.name))
        selected.append(classifier)
    for path in trained_paths:
        detector: GenerationDetector = (
            TokenClassifierDetector.load(path)
            if Path(path).is_dir()
            else load_trained_detector(path, model=model, tokenizer=tokenizer)
        )
        if any(existing.name == detector.name for existing in selected):
            raise ValueError(
                f"{path}: a {detector.name} detector is already in this evaluation; "
                "evaluate one trained file per detector."
            )
        selected.append(detector)

    examples = extract_features(
        model,
        tokenizer,
        dataset.records,
        max_context_tokens=max_context_tokens,
        progress=progress,
    )
    results = run_detectors(examples, selected, model=model, tokenizer=tokenizer)
    return EvaluationOutcome(measure_detectors(examples, selected, results), saved)
