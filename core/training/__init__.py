"""Fine-tuning with the Hugging Face Trainer, with progress events and cancel."""

from halluscope.training.classifier import (
    MODEL_FOLDER,
    classification_metrics,
    run_classifier_training,
)
from halluscope.training.config import ClassifierTrainConfig
from halluscope.training.events import NonFiniteLossError, StopSignal
from halluscope.training.splits import SplitExamples, load_validation_split

__all__ = [
    "MODEL_FOLDER",
    "ClassifierTrainConfig",
    "NonFiniteLossError",
    "SplitExamples",
    "StopSignal",
    "classification_metrics",
    "load_validation_split",
    "run_classifier_training",
]
