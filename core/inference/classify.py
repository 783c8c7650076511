"""Batched sequence classification over texts or (context, claim) pairs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.inference.encoding import encode_batch, validate_texts
from halluscope.inference.runtime import (
    clamp_max_length,
    eval_mode,
    label_names_of,
    model_device,
)

logger = logging.getLogger(__name__)

# Rows of ``probabilities`` must sum to 1 within this tolerance (float32 softmax).
_PROBABILITY_SUM_TOLERANCE = 1e-3


class InferenceCancelledError(RuntimeError):
    """Raised when ``should_stop`` returned True before all batches were done."""

    def __init__(self, completed: int, total: int) -> None:
        super().__init__(f"Inference was cancelled after {completed} of {total} rows.")
        self.completed = completed
        self.total = total


@dataclass(frozen=True)
class ClassificationPredictions:
    """Class probabilities and logits of a classifier for n inputs.

    Attributes:
        probabilities: float array [n, num_labels], softmax of ``logits``; rows sum to 1.
        logits: float array [n, num_labels], the raw classifier outputs.
        label_names: the class names in label-id order (from ``config.id2label``).
        truncated: bool array [n], True for rows whose input was longer than
            ``max_length`` tokens and was cut.
    """

    probabilities: np.ndarray
    logits: np.ndarray
    label_names: tuple[str, ...]
    truncated: np.ndarray

    def __post_init__(self) -> None:
        num_labels = len(self.label_names)
        if num_labels < 2:
            raise ValueError(f"label_names must name at least 2 classes, got {self.label_names}.")
        if self.probabilities.ndim != 2 or self.probabilities.shape[1] != num_labels:
            raise ValueError(
                f"probabilities must have shape [n, {num_labels}] for labels "
                f"{self.label_names}, got {self.probabilities.shape}."
            )
        if self.logits.shape != self.probabilities.shape:
            raise ValueError(
                f"logits shape {self.logits.shape} differs from probabilities shape "
                f"{self.probabilities.shape}."
            )
        n = self.probabilities.shape[0]
        if self.truncated.shape != (n,) or self.truncated.dtype != np.bool_:
            raise ValueError(
                f"truncated must be a bool array of shape ({n},), got dtype "
                f"{self.truncated.dtype} and shape {self.truncated.shape}."
            )
        if n == 0:
            return

        if not np.all(np.isfinite(self.probabilities)):
            rows = np.flatnonzero(~np.all(np.isfinite(self.probabilities), axis=1))
            raise ValueError(f"probabilities contain NaN or inf in rows {rows[:5].tolist()}.")
        if np.any(self.probabilities < 0) or np.any(self.probabilities > 1):
            raise ValueError("probabilities must lie in [0, 1].")
        sums = self.probabilities.sum(axis=1)
        bad_rows = np.flatnonzero(np.abs(sums - 1.0) > _PROBABILITY_SUM_TOLERANCE)
        if bad_rows.size:
            raise ValueError(
                f"probabilities of rows {bad_rows[:5].tolist()} sum to "
                f"{sums[bad_rows[:5]].round(4).tolist()}, not 1."
            )

    def __len__(self) -> int:
        return int(self.probabilities.shape[0])

    @property
    def num_labels(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    @property
    def predicted(self) -> np.ndarray:
        """Predicted label ids (argmax of the probabilities), int array [n]."""
        return np.argmax(self.probabilities, axis=1)

    @property
    def predicted_labels(self) -> tuple[str, ...]:
        """Predicted label names, length n."""
        return tuple(self.label_names[index] for index in self.predicted)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted label, float array [n]."""
        return np.max(self.probabilities, axis=1)

    @property
    def margin(self) -> np.ndarray:
        """Top-1 minus top-2 probability, float array [n] in [0, 1]."""
        ordered = np.sort(self.probabilities, axis=1)
        return ordered[:, -1] - ordered[:, -2]

    def select(self, indices: Sequence[int] | np.ndarray) -> ClassificationPredictions:
        """Return the predictions of the given rows, in the given order."""
        rows = np.asarray(indices, dtype=np.int64)
        return ClassificationPredictions(
            probabilities=self.probabilities[rows],
            logits=self.logits[rows],
            label_names=self.label_names,
            truncated=self.truncated[rows],
        )

    def gold_ids(self, gold: Sequence[int | str]) -> np.ndarray:
        """Convert gold labels (label ids or label names) to an int array [n] of label ids.

        Raises:
            ValueError: the length differs from the number of predictions, or a
                label is neither a valid id nor one of ``label_names`` (the
                message names the row).
        """
        return gold_to_ids(gold, self.label_names, expected_rows=len(self))

    def to_frame(
        self,
        texts: Sequence[str] | None = None,
        text_pairs: Sequence[str] | None = None,
        gold: Sequence[int | str] | None = None,
    ) -> pd.DataFrame:
        """Build a table with one row per prediction.

        Columns, in order: ``text`` and ``text_pair`` (when given), ``predicted``
        (label name), ``confidence``, ``margin``, ``p(<label>)`` for every class,
        ``truncated``, and ``gold`` (label name) with ``correct`` (bool) when
        ``gold`` is given.
        """
        n = len(self)
        columns: dict[str, object] = {}
        if texts is not None:
            text_list, pair_list = validate_texts(texts, text_pairs)
            if len(text_list) != n:
                raise ValueError(f"texts has {len(text_list)} rows but there are {n} predictions.")
            columns["text"] = text_list
            if pair_list is not None:
                columns["text_pair"] = pair_list
        elif text_pairs is not None:
            raise ValueError("text_pairs was given without texts; pass both.")

        columns["predicted"] = list(self.predicted_labels)
        columns["confidence"] = self.confidence
        columns["margin"] = self.margin
        for index, name in enumerate(self.label_names):
            columns[f"p({name})"] = self.probabilities[:, index]
        columns["truncated"] = self.truncated

        if gold is not None:
            gold_ids = self.gold_ids(gold)
            columns["gold"] = [self.label_names[index] for index in gold_ids]
            columns["correct"] = gold_ids == self.predicted
        return pd.DataFrame(columns)


def gold_to_ids(
    gold: Sequence[int | str],
    label_names: Sequence[str],
    *,
    expected_rows: int | None = None,
) -> np.ndarray:
    """Convert gold labels given as ids or names to an int array of label ids.

    Raises:
        ValueError: the length differs from ``expected_rows``, or a label is
            neither an id in ``range(len(label_names))`` nor a name in
            ``label_names`` (the message names the row and the value).
    """
    if isinstance(gold, str):
        raise TypeError("gold must be a sequence of labels, not one string; wrap it in a list.")
    values = list(gold)
    if expected_rows is not None and len(values) != expected_rows:
        raise ValueError(
            f"gold has {len(values)} labels but there are {expected_rows} predictions; "
            "pass one gold label per prediction."
        )

    name_to_id = {name: index for index, name in enumerate(label_names)}
    ids = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        if isinstance(value, str):
            if value not in name_to_id:
                raise ValueError(
                    f"gold row {row}: label {value!r} is not one of the model's labels "
                    f"{tuple(label_names)}."
                )
            ids[row] = name_to_id[value]
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= int(value) < len(label_names):
                raise ValueError(
                    f"gold row {row}: label id {value} is out of range for "
                    f"{len(label_names)} labels {tuple(label_names)}."
                )
            ids[row] = int(value)
        else:
            raise ValueError(
                f"gold row {row}: expected a label id or name, got {value!r} "
                f"({type(value).__name__})."
            )
    return ids


def predict_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    batch_size: int = 32,
    max_length: int = 256,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ClassificationPredictions:
    """Classify texts, or (text, text_pair) pairs, in batches.

    Rows are sorted by token length and padded per batch, so a batch of short
    rows costs little. For pairs, the text (context) is truncated and the
    text_pair (claim) is kept whole, unless the claim alone exceeds
    ``max_length``. The model runs on its own device under
    ``torch.inference_mode()`` and in eval mode.

    Args:
        model: a sequence classifier with ``config.id2label``.
        tokenizer: the model's tokenizer, with a pad token.
        texts: the inputs, or the contexts of pairs.
        text_pairs: the claims of pairs, one per text, or None.
        batch_size: rows per forward pass (default 32).
        max_length: the maximum tokens per row, special tokens included (default 256).
        progress: called as ``progress(rows_done, rows_total)`` after each batch.
        should_stop: polled before each batch; returning True cancels the run.

    Returns:
        Probabilities and logits in the order of ``texts``.

    Raises:
        InferenceCancelledError: ``should_stop`` returned True.
        ValueError: bad arguments, or a model with fewer than two labels.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "The tokenizer has no pad token, which batching needs. Set tokenizer.pad_token "
            "(for example to tokenizer.eos_token) before calling predict_classifier."
        )
    label_names = label_names_of(model)
    max_length = clamp_max_length(model, tokenizer, max_length)
    features, lengths, truncated = encode_batch(tokenizer, texts, text_pairs, max_length=max_length)
    total = len(features)
    if truncated.any():
        logger.info(
            "%d of %d rows are longer than max_length=%d tokens and were truncated",
            int(truncated.sum()),
            total,
            max_length,
        )

    logits = np.zeros((total, len(label_names)), dtype=np.float32)
    # Longest rows first, so the first batch shows early whether memory suffices.
    order = np.argsort(-lengths, kind="stable")
    device = model_device(model)
    done = 0

    with eval_mode(model), torch.inference_mode():
        for start in range(0, total, batch_size):
            if should_stop is not None and should_stop():
                logger.info("Classification cancelled after %d of %d rows", done, total)
                raise InferenceCancelledError(done, total)

            rows = order[start : start + batch_size]
            batch = tokenizer.pad(
                [features[row] for row in rows], padding=True, return_tensors="pt"
            )
            batch = {name: tensor.to(device) for name, tensor in batch.items()}
            output = model(**batch)
            logits[rows] = output.logits.float().cpu().numpy()

            done += len(rows)
            if progress is not None:
                progress(done, total)

    probabilities = torch.softmax(torch.from_numpy(logits).double(), dim=-1).numpy()
    return ClassificationPredictions(
        probabilities=probabilities.astype(np.float32),
        logits=logits,
        label_names=label_names,
        truncated=truncated,
    )
