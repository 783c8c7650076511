"""Resolve model references offline and load models safely."""

from halluscope.models.errors import ModelError, ModelNotFoundError, UnsafeModelError
from halluscope.models.loading import (
    load_causal_lm,
    load_sequence_classifier,
    load_tokenizer,
    pick_device,
    pick_dtype,
)
from halluscope.models.registry import (
    BUNDLED_MODELS,
    ResolvedModel,
    available_models,
    resolve_model,
)

__all__ = [
    "BUNDLED_MODELS",
    "ModelError",
    "ModelNotFoundError",
    "ResolvedModel",
    "UnsafeModelError",
    "available_models",
    "load_causal_lm",
    "load_sequence_classifier",
    "load_tokenizer",
    "pick_device",
    "pick_dtype",
    "resolve_model",
]
