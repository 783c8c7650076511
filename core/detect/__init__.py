"""Hallucination detectors behind one interface, with a registry by name."""

from halluscope.detect.base import (
    DETECTOR_KINDS,
    DetectionResult,
    Detector,
    DetectorKind,
    available_detectors,
    get_detector,
    register_detector,
)
from halluscope.detect.classification import (
    ClassificationDetector,
    ConfidenceDetector,
    flag_predictions,
)
from halluscope.detect.consistency import SamplingConsistencyDetector
from halluscope.detect.generation import (
    FactualItem,
    GenerationDetector,
    HighEntropyDetector,
    LowLogprobDetector,
    UnsupportedWordDetector,
    checked_items,
    create_generation_detectors,
    find_unsupported_words,
)
from halluscope.detect.grounding import ContextAttributionDetector, LowLookbackDetector
from halluscope.detect.token_classifier import TokenClassifierDetector, train_token_classifier
from halluscope.detect.trained import (
    LookbackLensDetector,
    StackedEnsembleDetector,
    TokenFeatures,
    TrainedDetector,
    load_trained_detector,
)

__all__ = [
    "DETECTOR_KINDS",
    "ClassificationDetector",
    "ConfidenceDetector",
    "ContextAttributionDetector",
    "DetectionResult",
    "Detector",
    "DetectorKind",
    "FactualItem",
    "GenerationDetector",
    "HighEntropyDetector",
    "LowLogprobDetector",
    "LookbackLensDetector",
    "LowLookbackDetector",
    "SamplingConsistencyDetector",
    "StackedEnsembleDetector",
    "TokenClassifierDetector",
    "TokenFeatures",
    "TrainedDetector",
    "UnsupportedWordDetector",
    "available_detectors",
    "checked_items",
    "create_generation_detectors",
    "find_unsupported_words",
    "flag_predictions",
    "get_detector",
    "load_trained_detector",
    "register_detector",
    "train_token_classifier",
]
