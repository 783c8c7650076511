"""Fine-tuning with the Hugging Face Trainer, with progress events and cancel."""

from halluscope.training.causal_config import CausalLMTrainConfig
from halluscope.training.causal_lm import (
    GENERATION_SPLIT_FILE,
    IGNORE_INDEX,
    CompletionCollator,
    EncodedExample,
    GenerationSplit,
    completion_nll_per_example,
    completion_token_nll,
    encode_example,
    load_generation_split,
    load_run_causal_lm,
    run_causal_lm_training,
    save_run_model,
)
from halluscope.training.classifier import (
    MODEL_FOLDER,
    classification_metrics,
    run_classifier_training,
)
from halluscope.training.config import ClassifierTrainConfig
from halluscope.training.dynamics import TrainingDynamics, load_dynamics
from halluscope.training.events import NonFiniteLossError, StopSignal
from halluscope.training.splits import SplitExamples, load_validation_split

__all__ = [
    "GENERATION_SPLIT_FILE",
    "IGNORE_INDEX",
    "MODEL_FOLDER",
    "CausalLMTrainConfig",
    "ClassifierTrainConfig",
    "CompletionCollator",
    "EncodedExample",
    "GenerationSplit",
    "NonFiniteLossError",
    "SplitExamples",
    "StopSignal",
    "TrainingDynamics",
    "classification_metrics",
    "completion_nll_per_example",
    "completion_token_nll",
    "encode_example",
    "load_dynamics",
    "load_generation_split",
    "load_run_causal_lm",
    "load_validation_split",
    "run_causal_lm_training",
    "run_classifier_training",
    "save_run_model",
]
