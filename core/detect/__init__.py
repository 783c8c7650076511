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

__all__ = [
    "DETECTOR_KINDS",
    "ClassificationDetector",
    "ConfidenceDetector",
    "DetectionResult",
    "Detector",
    "DetectorKind",
    "available_detectors",
    "flag_predictions",
    "get_detector",
    "register_detector",
]
