"""The one detector interface, shared by classification and generation detectors.

A detector looks at a model's output and returns a ``DetectionResult``: a
suspicion score in [0, 1], a flag, a short human-readable reason and, for
generated text, one score per token. Detectors register themselves by name,
so the dashboard, the CLI and the evaluation list whatever is registered:

    @register_detector
    class MyDetector(ClassificationDetector):
        name = "my-detector"
        description = "Flags ..."

        def detect_batch(self, predictions, gold=None): ...
"""

from __future__ import annotations

import math
import numbers
from abc import ABC
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

DetectorKind = Literal["classification", "generation"]
DETECTOR_KINDS: tuple[DetectorKind, ...] = ("classification", "generation")


@dataclass(frozen=True)
class DetectionResult:
    """One detector's verdict on one prediction or one generated response.

    Attributes:
        detector: the registered name of the detector that produced it.
        score: suspicion of the whole prediction or response, in [0, 1];
            higher means more likely a hallucination.
        flagged: whether the detector's decision rule marks it as a hallucination.
        reason: a short human-readable explanation, such as
            "wrong with confidence 0.97 (gold: supported)".
        token_scores: float array [num_tokens] of per-token suspicion in [0, 1]
            for generated text; None for classification.
    """

    detector: str
    score: float
    flagged: bool
    reason: str
    token_scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.detector:
            raise ValueError("DetectionResult.detector must name the detector.")
        if isinstance(self.score, bool) or not isinstance(self.score, numbers.Real):
            raise ValueError(f"{self.detector}: score must be a number, got {self.score!r}.")
        # NumPy scalars are accepted and stored as plain Python values.
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "flagged", bool(self.flagged))
        if not math.isfinite(self.score):
            raise ValueError(f"{self.detector}: score must be finite, got {self.score}.")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"{self.detector}: score must lie in [0, 1], got {self.score}.")
        if self.token_scores is not None:
            scores = self.token_scores
            if scores.ndim != 1:
                raise ValueError(
                    f"{self.detector}: token_scores must be 1-dimensional, "
                    f"got shape {scores.shape}."
                )
            if not np.all(np.isfinite(scores)) or np.any(scores < 0) or np.any(scores > 1):
                raise ValueError(f"{self.detector}: token_scores must be finite and lie in [0, 1].")


class Detector(ABC):
    """Base class of every hallucination detector.

    Subclasses set the class attributes and implement the method of their kind:
    ``ClassificationDetector.detect_batch`` for classifiers. Generation
    detectors will subclass ``Detector`` with ``kind = "generation"``.

    Attributes:
        name: the registry key, lowercase, for example "confidence".
        description: one sentence shown in the dashboard and the CLI help.
        kind: which outputs the detector reads, "classification" or "generation".
    """

    name: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[DetectorKind]


_DETECTORS: dict[str, type[Detector]] = {}

DetectorType = TypeVar("DetectorType", bound=type[Detector])


def register_detector(cls: DetectorType) -> DetectorType:
    """Add a detector class to the registry under its ``name`` (use as a class decorator).

    Raises:
        TypeError: the class lacks ``name``, ``description`` or a valid ``kind``.
        ValueError: another class is already registered under the same name.
    """
    for attribute in ("name", "description", "kind"):
        if not isinstance(getattr(cls, attribute, None), str) or not getattr(cls, attribute):
            raise TypeError(f"{cls.__name__} must set the class attribute {attribute!r}.")
    if cls.kind not in DETECTOR_KINDS:
        raise TypeError(f"{cls.__name__}.kind must be one of {DETECTOR_KINDS}, got {cls.kind!r}.")

    existing = _DETECTORS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"A detector named {cls.name!r} is already registered "
            f"({existing.__module__}.{existing.__qualname__}); choose another name."
        )
    _DETECTORS[cls.name] = cls
    return cls


def available_detectors(kind: DetectorKind | None = None) -> list[type[Detector]]:
    """List the registered detector classes, sorted by name, optionally only of one kind."""
    if kind is not None and kind not in DETECTOR_KINDS:
        raise ValueError(f"kind must be one of {DETECTOR_KINDS} or None, got {kind!r}.")
    return [cls for name, cls in sorted(_DETECTORS.items()) if kind is None or cls.kind == kind]


def get_detector(name: str, **options: Any) -> Detector:
    """Create the detector registered as ``name``, passing ``options`` to its constructor.

    Raises:
        KeyError: no detector has that name (the message lists the registered ones).
    """
    cls = _DETECTORS.get(name)
    if cls is None:
        raise KeyError(f"No detector named {name!r}. Registered detectors: {sorted(_DETECTORS)}.")
    return cls(**options)
