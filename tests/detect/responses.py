"""Scored responses with real SmolLM2 tokens and chosen numbers, for detector tests."""

from __future__ import annotations

import numpy as np

from halluscope.inference import decode_token_pieces
from halluscope.inference.scoring import ScoredResponse


def scored_response(
    tokenizer,
    text: str,
    *,
    prompt: str = "Q",
    logprobs: np.ndarray | None = None,
    entropies: np.ndarray | None = None,
) -> ScoredResponse:
    """Build a scored response with the real tokens of ``text``.

    Log-probs default to -0.1 and entropies to 1.0 per token, and ranks are 0.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces, offsets = decode_token_pieces(tokenizer, ids)
    count = len(ids)
    return ScoredResponse(
        prompt=prompt,
        text="".join(pieces),
        token_ids=ids,
        tokens=pieces,
        offsets=offsets,
        logprobs=np.full(count, -0.1) if logprobs is None else logprobs,
        entropies=np.full(count, 1.0) if entropies is None else entropies,
        ranks=np.zeros(count, dtype=np.int64),
        vocab_size=len(tokenizer),
        prompt_length=1,
    )
