"""Tokenize texts and (context, claim) pairs with one truncation policy.

Every path that feeds an encoder (batched prediction, attention maps,
attributions) tokenizes through this module, so an example is explained on
exactly the tokens it was predicted from.

Truncation policy: a single text is cut at the end. For a pair, the first
text (the context) is cut and the second (the claim) is kept whole, which is
the ``"only_first"`` strategy. When the claim alone does not fit, the
strategy falls back to ``"longest_first"`` for that row and logs a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

#: The token segment id of special tokens such as [CLS] and [SEP].
SPECIAL_SEGMENT = -1

#: The token segment id of the response tokens of a causal LM's prompt-response
#: sequence, whose context and question tokens have segment ids 0 and 1.
ANSWER_SEGMENT = 2

# Truncation strategies of ``PreTrainedTokenizerBase.__call__``.
_NO_TRUNCATION = "do_not_truncate"
_ONLY_FIRST = "only_first"
_LONGEST_FIRST = "longest_first"


def validate_texts(
    texts: Sequence[str], text_pairs: Sequence[str] | None = None
) -> tuple[list[str], list[str] | None]:
    """Check that ``texts`` and ``text_pairs`` are equally long sequences of strings.

    Returns:
        Both sequences as lists.

    Raises:
        TypeError: a bare string was passed where a sequence of strings is
            expected, or an item is not a string (the message names the row).
        ValueError: the two sequences differ in length.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string; wrap it in a list.")
    text_list = list(texts)
    for row, text in enumerate(text_list):
        if not isinstance(text, str):
            raise TypeError(f"texts row {row}: expected a string, got {type(text).__name__}.")

    if text_pairs is None:
        return text_list, None

    if isinstance(text_pairs, str):
        raise TypeError(
            "text_pairs must be a sequence of strings, not one string; wrap it in a list."
        )
    pair_list = list(text_pairs)
    if len(pair_list) != len(text_list):
        raise ValueError(
            f"texts has {len(text_list)} rows but text_pairs has {len(pair_list)}; "
            "pass one text_pair per text."
        )
    for row, pair in enumerate(pair_list):
        if not isinstance(pair, str):
            raise TypeError(f"text_pairs row {row}: expected a string, got {type(pair).__name__}.")
    return text_list, pair_list


def _count_tokens(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> np.ndarray:
    """Count the tokens of each text without special tokens and without truncation."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)


def plan_truncation(
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    text_pairs: list[str] | None,
    max_length: int,
) -> tuple[np.ndarray, list[str]]:
    """Choose the truncation strategy of each row.

    Args:
        tokenizer: the model's tokenizer.
        texts: the first texts (the contexts for pairs).
        text_pairs: the second texts (the claims), or None.
        max_length: the maximum number of tokens per row, special tokens included.

    Returns:
        The untruncated length of each row in tokens (special tokens included),
        shape [n], and one truncation strategy name per row.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be a positive number of tokens, got {max_length}.")

    text_lengths = _count_tokens(tokenizer, texts)
    if text_pairs is None:
        lengths = text_lengths + tokenizer.num_special_tokens_to_add(pair=False)
        strategies = [_LONGEST_FIRST if n > max_length else _NO_TRUNCATION for n in lengths]
        return lengths, strategies

    pair_lengths = _count_tokens(tokenizer, text_pairs)
    lengths = text_lengths + pair_lengths + tokenizer.num_special_tokens_to_add(pair=True)
    strategies = []
    fallback_rows = []
    for row, (length, text_length) in enumerate(zip(lengths, text_lengths, strict=True)):
        excess = int(length) - max_length
        if excess <= 0:
            strategies.append(_NO_TRUNCATION)
        elif text_length > excess:
            # The tokenizers library keeps at least one token of the first text
            # under "only_first" and raises otherwise.
            strategies.append(_ONLY_FIRST)
        else:
            strategies.append(_LONGEST_FIRST)
            fallback_rows.append(row)

    if fallback_rows:
        logger.warning(
            "%d row(s) have a text_pair longer than max_length=%d allows, so their "
            "text_pair is truncated too (first rows: %s). Raise max_length to keep it whole.",
            len(fallback_rows),
            max_length,
            fallback_rows[:5],
        )
    return lengths, strategies


def encode_batch(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    max_length: int = 256,
) -> tuple[list[dict[str, list[int]]], np.ndarray, np.ndarray]:
    """Tokenize rows without padding, truncating each row by the module's policy.

    Returns:
        A tuple of three items. First, one feature dict per row with the keys of
        ``tokenizer.model_input_names`` as lists of ints, ready for
        ``tokenizer.pad``. Second, the number of tokens of each row after
        truncation, shape [n]. Third, a bool array [n] that is True for rows
        whose input was longer than ``max_length``.
    """
    text_list, pair_list = validate_texts(texts, text_pairs)
    full_lengths, strategies = plan_truncation(tokenizer, text_list, pair_list, max_length)
    input_names = [name for name in tokenizer.model_input_names if name != "special_tokens_mask"]

    features: list[dict[str, list[int]] | None] = [None] * len(text_list)
    for strategy in sorted(set(strategies)):
        rows = [row for row, chosen in enumerate(strategies) if chosen == strategy]
        group_texts = [text_list[row] for row in rows]
        group_pairs = [pair_list[row] for row in rows] if pair_list is not None else None
        encoded = tokenizer(
            group_texts,
            group_pairs,
            truncation=strategy,
            max_length=max_length if strategy != _NO_TRUNCATION else None,
            padding=False,
            verbose=False,
        )
        for position, row in enumerate(rows):
            features[row] = {
                name: list(encoded[name][position]) for name in input_names if name in encoded
            }

    encoded_lengths = np.array([len(feature["input_ids"]) for feature in features], dtype=np.int64)
    truncated = full_lengths > max_length
    return features, encoded_lengths, truncated  # type: ignore[return-value]


@dataclass(frozen=True)
class EncodedExample:
    """One tokenized example, unpadded, with the token-to-text alignment.

    Attributes:
        model_inputs: ``input_ids``, ``attention_mask`` and (if the tokenizer
            uses them) ``token_type_ids``, each a long tensor of shape [1, seq].
        tokens: the token strings, length seq.
        segment_ids: int8 array [seq]: 0 for tokens of ``text``, 1 for tokens of
            ``text_pair`` and -1 (``SPECIAL_SEGMENT``) for special tokens.
        offsets: int64 array [seq, 2] of (start, end) character offsets into the
            text of the token's segment; (0, 0) for special tokens.
        special_tokens_mask: bool array [seq], True for tokens the tokenizer
            added ([CLS], [SEP], BOS, EOS).
        truncated: whether the untruncated input was longer than ``max_length``.
    """

    model_inputs: dict[str, torch.Tensor]
    tokens: tuple[str, ...]
    segment_ids: np.ndarray
    offsets: np.ndarray
    special_tokens_mask: np.ndarray
    truncated: bool

    def __post_init__(self) -> None:
        seq = len(self.tokens)
        input_ids = self.model_inputs.get("input_ids")
        if input_ids is None or tuple(input_ids.shape) != (1, seq):
            shape = None if input_ids is None else tuple(input_ids.shape)
            raise ValueError(f"input_ids must have shape (1, {seq}), got {shape}.")
        validate_alignment(self.tokens, self.segment_ids, self.offsets)
        if self.special_tokens_mask.shape != (seq,):
            raise ValueError(
                f"special_tokens_mask must have shape ({seq},), "
                f"got {self.special_tokens_mask.shape}."
            )

    @property
    def input_ids(self) -> torch.Tensor:
        """Token ids, a long tensor of shape [1, seq]."""
        return self.model_inputs["input_ids"]


def validate_alignment(tokens: Sequence[str], segment_ids: np.ndarray, offsets: np.ndarray) -> None:
    """Raise ValueError unless ``segment_ids`` is [seq] and ``offsets`` is [seq, 2] for ``tokens``.

    Segment ids must be -1, 0, 1 or 2 (``ANSWER_SEGMENT``), and each offset
    pair must satisfy 0 <= start <= end.
    """
    seq = len(tokens)
    if segment_ids.shape != (seq,):
        raise ValueError(
            f"segment_ids must have shape ({seq},) for {seq} tokens, got {segment_ids.shape}."
        )
    if offsets.shape != (seq, 2):
        raise ValueError(
            f"offsets must have shape ({seq}, 2) for {seq} tokens, got {offsets.shape}."
        )
    allowed = {SPECIAL_SEGMENT, 0, 1, ANSWER_SEGMENT}
    bad_segments = sorted(set(np.unique(segment_ids).tolist()) - allowed)
    if bad_segments:
        raise ValueError(f"segment_ids may only contain -1, 0, 1 and 2, found {bad_segments}.")
    if seq and (np.any(offsets[:, 0] < 0) or np.any(offsets[:, 1] < offsets[:, 0])):
        raise ValueError("offsets must satisfy 0 <= start <= end for every token.")


def encode_example(
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    text_pair: str | None = None,
    *,
    max_length: int = 256,
    device: torch.device | str | None = None,
) -> EncodedExample:
    """Tokenize one example, unpadded, with offsets and segment ids.

    Args:
        tokenizer: a fast tokenizer (offsets need one).
        text: the first text (the context for a pair).
        text_pair: the second text (the claim), or None.
        max_length: the maximum number of tokens, special tokens included (default 256).
        device: where to put the tensors (default: the CPU).

    Raises:
        ValueError: the tokenizer is not a fast tokenizer.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer, so it returns no character "
            "offsets. Load the tokenizer with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )
    pairs = None if text_pair is None else [text_pair]
    text_list, pair_list = validate_texts([text], pairs)
    full_lengths, strategies = plan_truncation(tokenizer, text_list, pair_list, max_length)
    strategy = strategies[0]

    encoded: BatchEncoding = tokenizer(
        text,
        text_pair,
        truncation=strategy,
        max_length=max_length if strategy != _NO_TRUNCATION else None,
        padding=False,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        verbose=False,
    )

    input_ids = encoded["input_ids"]
    tokens = tuple(tokenizer.convert_ids_to_tokens(input_ids[0].tolist()))
    sequence_ids = encoded.sequence_ids(0)
    segment_ids = np.array(
        [SPECIAL_SEGMENT if sid is None else sid for sid in sequence_ids], dtype=np.int8
    )
    offsets = encoded["offset_mapping"][0].numpy().astype(np.int64)
    special = encoded["special_tokens_mask"][0].numpy().astype(bool)

    input_names = [name for name in tokenizer.model_input_names if name != "special_tokens_mask"]
    target = torch.device(device) if device is not None else torch.device("cpu")
    model_inputs = {name: encoded[name].to(target) for name in input_names if name in encoded}
    if "attention_mask" not in model_inputs:
        model_inputs["attention_mask"] = torch.ones_like(input_ids, device=target)

    return EncodedExample(
        model_inputs=model_inputs,
        tokens=tokens,
        segment_ids=segment_ids,
        offsets=offsets,
        special_tokens_mask=special,
        truncated=bool(full_lengths[0] > max_length),
    )
