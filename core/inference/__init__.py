"""Run models on inputs: batched classification, with one tokenization policy.

The generation entry points (batched generation with log-probs, teacher-forced
scoring of given responses) belong here too.
"""

from halluscope.inference.classify import (
    ClassificationPredictions,
    InferenceCancelledError,
    gold_to_ids,
    predict_classifier,
)
from halluscope.inference.encoding import (
    SPECIAL_SEGMENT,
    EncodedExample,
    encode_batch,
    encode_example,
)
from halluscope.inference.runtime import (
    clamp_max_length,
    eval_mode,
    label_names_of,
    model_device,
)

__all__ = [
    "SPECIAL_SEGMENT",
    "ClassificationPredictions",
    "EncodedExample",
    "InferenceCancelledError",
    "clamp_max_length",
    "encode_batch",
    "encode_example",
    "eval_mode",
    "gold_to_ids",
    "label_names_of",
    "model_device",
    "predict_classifier",
]
