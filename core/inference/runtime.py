"""Small helpers shared by everything that runs a model: device, eval mode, labels."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import PreTrainedModel

logger = logging.getLogger(__name__)


def model_device(model: torch.nn.Module) -> torch.device:
    """Return the device of the model's first parameter (the CPU for a model without any)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode for the block and restore its training flag afterwards.

    Dropout in training mode would make predictions, attention maps and
    attributions random, so every inference entry point runs inside this block.
    """
    was_training = model.training
    if was_training:
        logger.debug("Switching %s to eval mode for inference", type(model).__name__)
        model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()


def label_names_of(model: PreTrainedModel) -> tuple[str, ...]:
    """Return the class names of a classifier in label-id order, from ``config.id2label``.

    Raises:
        ValueError: the config has fewer than two labels (a regression head), or
            its ``id2label`` does not cover every id from 0 to ``num_labels - 1``.
    """
    config = model.config
    num_labels = int(getattr(config, "num_labels", 0) or 0)
    if num_labels < 2:
        raise ValueError(
            f"The model has num_labels={num_labels}, but classification needs at least 2 "
            "labels. Load it with num_labels >= 2 (a single output is a regression head)."
        )

    id2label = {int(key): str(value) for key, value in (config.id2label or {}).items()}
    missing = [index for index in range(num_labels) if index not in id2label]
    if missing:
        raise ValueError(
            f"The model config's id2label {id2label} has no name for label ids {missing}. "
            "Set config.id2label to map every id from 0 to num_labels - 1 to a name."
        )
    return tuple(id2label[index] for index in range(num_labels))


def clamp_max_length(model: PreTrainedModel, tokenizer: Any, max_length: int) -> int:
    """Return ``max_length`` capped at the longest input the model and tokenizer accept.

    The cap is the smaller of ``config.max_position_embeddings`` and
    ``tokenizer.model_max_length``, where set; longer inputs would index past
    the position embeddings. A lowered value is logged.
    """
    limits = []
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a known limit report a huge sentinel (int(1e30)).
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)

    if limits and max_length > min(limits):
        logger.info(
            "max_length=%d exceeds the model's limit of %d tokens; using %d",
            max_length,
            min(limits),
            min(limits),
        )
        return min(limits)
    return max_length
