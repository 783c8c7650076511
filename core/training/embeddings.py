"""Sentence embeddings and pair features from a frozen encoder.

The nearest-neighbour search and the label-error ranking both describe an
example with a frozen (not fine-tuned) encoder. An embedding is the mean of the
last hidden states over the real tokens, L2-normalised, so that a dot product
is the cosine similarity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from halluscope.inference.runtime import eval_mode, model_device
from halluscope.models import load_tokenizer, pick_device, resolve_model

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class Encoder:
    """A frozen encoder and its tokenizer, with the token limit used for every input."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    max_length: int = 256


def load_encoder(
    reference: str, *, max_length: int = 256, allow_hub: bool = False, allow_pickle: bool = False
) -> Encoder:
    """Load the encoder body of ``reference`` (a bundled name, local folder or run model).

    A folder saved from a sequence classifier loads without its head, because
    ``AutoModel`` keeps only the weights of the base model.
    """
    resolved = resolve_model(reference, allow_hub=allow_hub, allow_pickle=allow_pickle)
    model = AutoModel.from_pretrained(
        resolved.path,
        trust_remote_code=False,
        use_safetensors=not resolved.pickle_only,
        attn_implementation="sdpa",
    )
    model.to(pick_device())
    model.eval()
    tokenizer = load_tokenizer(reference, allow_hub=allow_hub, allow_pickle=allow_pickle)
    return Encoder(model=model, tokenizer=tokenizer, max_length=max_length)


def _batches(count: int, batch_size: int) -> list[range]:
    return [range(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


@torch.no_grad()
def _hidden_states(
    encoder: Encoder, texts: Sequence[str], rows: range
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return last hidden states [b, t, d], the real-token mask [b, t] and the input ids [b, t].

    The mask is 0 for padding and for the special tokens ([CLS], [SEP]).
    """
    batch = encoder.tokenizer(
        [texts[i] for i in rows],
        padding=True,
        truncation=True,
        max_length=encoder.max_length,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )
    special = batch.pop("special_tokens_mask")
    device = model_device(encoder.model)
    inputs = {key: value.to(device) for key, value in batch.items()}
    with eval_mode(encoder.model):
        hidden = encoder.model(**inputs).last_hidden_state.float().cpu()
    mask = batch["attention_mask"] * (1 - special)
    return hidden, mask, batch["input_ids"]


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1.0)
    return torch.nn.functional.normalize(summed / counts, dim=-1)


def embed_texts(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Return the L2-normalised mean-pooled embeddings of ``texts``, float32 [n, hidden]."""
    chunks = []
    for rows in _batches(len(texts), batch_size):
        hidden, mask, _ = _hidden_states(encoder, texts, rows)
        chunks.append(_mean_pool(hidden, mask).numpy())
        if progress is not None:
            progress(rows.stop, len(texts))
    if not chunks:
        return np.zeros((0, encoder.model.config.hidden_size), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def embed_examples(
    encoder: Encoder,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Return one normalised embedding per example, float32 [n, hidden].

    A pair is encoded as the tokenizer joins it (``[CLS] text [SEP] pair [SEP]``),
    so two examples with the same context and different claims differ.
    """
    if text_pairs is None:
        return embed_texts(encoder, texts, batch_size=batch_size)
    joined = [
        f"{text} {encoder.tokenizer.sep_token or ''} {pair}"
        for text, pair in zip(texts, text_pairs, strict=True)
    ]
    return embed_texts(encoder, joined, batch_size=batch_size)


ALIGNMENT_FEATURES = (
    "min_best_similarity",
    "second_min_best_similarity",
    "mean_best_similarity",
    "p10_best_similarity",
    "tokens_below_0.8",
    "tokens_below_0.9",
    "share_unseen_tokens",
    "unseen_tokens",
    "claim_tokens",
)
"""Names of the columns of ``pair_features``."""


@torch.no_grad()
def pair_features(
    encoder: Encoder,
    texts: Sequence[str],
    text_pairs: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Describe how well each second segment (a claim) is covered by its first (a context).

    Each segment is encoded on its own. For every claim token the best cosine
    similarity to any context token is taken, as in BERTScore precision. The
    features (``ALIGNMENT_FEATURES``) summarise these per example: the lowest,
    second lowest, mean and 10th percentile, and how many fall below 0.8 and
    0.9. They also count the claim token ids that never occur in the context
    (share and number) and the claim length in tokens.

    Sentence embeddings are left out on purpose. With a few hundred rows, a
    classifier fitted on them learns the entities of the training rows rather
    than the relation, and on the demo claims it ranked label errors worse
    than chance.

    Returns:
        float32 array [n, len(ALIGNMENT_FEATURES)].
    """
    if len(texts) != len(text_pairs):
        raise ValueError(f"Got {len(texts)} texts but {len(text_pairs)} text pairs.")
    rows_out = []
    for rows in _batches(len(texts), batch_size):
        context_hidden, context_mask, context_ids = _hidden_states(encoder, texts, rows)
        claim_hidden, claim_mask, claim_ids = _hidden_states(encoder, text_pairs, rows)
        context_tokens = torch.nn.functional.normalize(context_hidden, dim=-1)
        claim_tokens = torch.nn.functional.normalize(claim_hidden, dim=-1)
        for position in range(len(rows)):
            context_real = context_mask[position].bool()
            claim_real = claim_mask[position].bool()
            rows_out.append(
                _alignment_statistics(
                    context_tokens[position][context_real],
                    claim_tokens[position][claim_real],
                    context_ids[position][context_real],
                    claim_ids[position][claim_real],
                )
            )
    if not rows_out:
        return np.zeros((0, len(ALIGNMENT_FEATURES)), dtype=np.float32)
    return np.stack(rows_out).astype(np.float32)


def _alignment_statistics(
    context_tokens: torch.Tensor,
    claim_tokens: torch.Tensor,
    context_ids: torch.Tensor,
    claim_ids: torch.Tensor,
) -> np.ndarray:
    """Return the ``ALIGNMENT_FEATURES`` of one example."""
    count = len(claim_tokens)
    if count == 0 or len(context_tokens) == 0:
        return np.asarray([0.0, 0.0, 0.0, 0.0, count, count, 1.0, count, count])
    best = (claim_tokens @ context_tokens.T).max(dim=1).values.numpy()
    ordered = np.sort(best)
    unseen = ~torch.isin(claim_ids, context_ids).numpy()
    return np.asarray(
        [
            ordered[0],
            ordered[1] if count > 1 else ordered[0],
            best.mean(),
            np.quantile(best, 0.1),
            (best < 0.8).sum(),
            (best < 0.9).sum(),
            unseen.mean(),
            unseen.sum(),
            count,
        ]
    )
