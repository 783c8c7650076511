"""Load tokenizers and models from a resolved reference, safely.

Every load passes ``trust_remote_code=False``, and ``use_safetensors=True``
unless the caller allowed a folder with pickle weights only (``allow_pickle``).
Models that feed attention maps use ``attn_implementation="eager"``, because
the fused SDPA and flash kernels return no attention weights.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from halluscope.models.registry import resolve_model

logger = logging.getLogger(__name__)

AttentionKind = Literal["eager", "sdpa"]


def pick_device(preferred: str | None = None) -> torch.device:
    """Return ``preferred`` if given, else CUDA when available, else the CPU."""
    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """Return bfloat16 on a CUDA device that supports it, else float32."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(
    reference: str, *, allow_hub: bool = False, allow_pickle: bool = False
) -> PreTrainedTokenizerBase:
    """Load the tokenizer of ``reference``, with a pad token set.

    ``allow_pickle`` only lets the reference resolve; tokenizers have no weights.
    """
    resolved = resolve_model(reference, allow_hub=allow_hub, allow_pickle=allow_pickle)
    tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=False)
    if tokenizer.pad_token is None:
        # Decoder-only models often ship without a pad token; the EOS token is
        # the usual stand-in, and attention masks keep it out of the loss.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_sequence_classifier(
    reference: str,
    *,
    num_labels: int | None = None,
    id2label: dict[int, str] | None = None,
    attention: AttentionKind = "eager",
    allow_hub: bool = False,
    allow_pickle: bool = False,
    device: torch.device | None = None,
) -> PreTrainedModel:
    """Load an encoder with a sequence-classification head.

    ``num_labels`` and ``id2label`` are needed when the head is new (a base
    encoder); a fine-tuned run folder already stores them in its config.
    ``allow_pickle`` accepts a local folder with pickle weights only.
    """
    resolved = resolve_model(reference, allow_hub=allow_hub, allow_pickle=allow_pickle)
    kwargs: dict = {}
    if id2label is not None:
        kwargs["id2label"] = {int(k): v for k, v in id2label.items()}
        kwargs["label2id"] = {v: int(k) for k, v in id2label.items()}
        kwargs["num_labels"] = len(id2label)
    elif num_labels is not None:
        kwargs["num_labels"] = num_labels

    model = AutoModelForSequenceClassification.from_pretrained(
        resolved.path,
        trust_remote_code=False,
        use_safetensors=not resolved.pickle_only,
        attn_implementation=attention,
        **kwargs,
    )
    model.to(device or pick_device())
    model.eval()
    return model


def load_causal_lm(
    reference: str,
    *,
    attention: AttentionKind = "eager",
    allow_hub: bool = False,
    allow_pickle: bool = False,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> PreTrainedModel:
    """Load a causal LM, on ``device`` in ``dtype`` (float32 on the CPU).

    ``allow_pickle`` accepts a local folder with pickle weights only.
    """
    resolved = resolve_model(reference, allow_hub=allow_hub, allow_pickle=allow_pickle)
    device = device or pick_device()
    model = AutoModelForCausalLM.from_pretrained(
        resolved.path,
        trust_remote_code=False,
        use_safetensors=not resolved.pickle_only,
        attn_implementation=attention,
        dtype=dtype or pick_dtype(device),
    )
    model.to(device)
    model.eval()
    return model
