"""Training rows most similar to an output, to see what in the data may have taught an error.

Examples are embedded with the run's frozen base encoder (mean-pooled last hidden
states, ``halluscope.training.embeddings``) and compared by cosine similarity.
The training embeddings of a run are computed once and stored in its folder as
``train_embeddings.npy`` (loaded without pickle).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from halluscope.runs import RunStore
from halluscope.training.config import ClassifierTrainConfig
from halluscope.training.embeddings import Encoder, embed_examples, load_encoder
from halluscope.training.splits import SplitExamples
from halluscope.training.train_examples import load_train_examples

logger = logging.getLogger(__name__)

TRAIN_EMBEDDINGS_FILE = "train_embeddings.npy"
DEFAULT_NEIGHBOURS = 5


@dataclass(frozen=True)
class TrainingIndex:
    """The training examples of a run with their normalised embeddings, float32 [n, hidden]."""

    examples: SplitExamples
    embeddings: np.ndarray

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != len(self.examples):
            raise ValueError(
                f"embeddings has shape {self.embeddings.shape}, expected "
                f"({len(self.examples)}, hidden)."
            )


def nearest_rows(
    query: np.ndarray, embeddings: np.ndarray, k: int = DEFAULT_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """Return the positions of the ``k`` rows nearest to ``query`` and their cosine similarities.

    Both inputs must be L2-normalised: ``query`` float [hidden], ``embeddings`` float [n, hidden].
    Ties keep the lower position first.
    """
    if len(embeddings) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    similarity = embeddings @ query
    order = np.argsort(-similarity, kind="stable")[: max(0, int(k))]
    return order, similarity[order]


def build_training_index(store: RunStore, run_id: str, encoder: Encoder) -> TrainingIndex:
    """Return the training rows of a run with their embeddings, computing them once.

    The embeddings are reused from ``train_embeddings.npy`` when its row count
    matches the training split.
    """
    examples = load_train_examples(store, run_id)
    path = store.run_dir(run_id) / TRAIN_EMBEDDINGS_FILE
    if path.is_file():
        stored = np.load(path, allow_pickle=False)
        if stored.shape[0] == len(examples):
            return TrainingIndex(examples, stored)
        logger.warning("Run %s: %s has %d rows, expected %d; recomputing.", run_id, path,
                       stored.shape[0], len(examples))  # fmt: skip

    embeddings = embed_examples(encoder, examples.texts, examples.text_pairs)
    np.save(path, embeddings, allow_pickle=False)
    logger.info("Run %s: embedded %d training rows.", run_id, len(examples))
    return TrainingIndex(examples, embeddings)


def run_encoder(store: RunStore, run_id: str) -> Encoder:
    """Load the frozen base encoder of a classification run (its ``config.model``)."""
    config = ClassifierTrainConfig.from_dict(store.config(run_id))
    return load_encoder(config.model, max_length=config.max_length, allow_hub=config.allow_hub)


def nearest_training_rows(
    index: TrainingIndex,
    encoder: Encoder,
    text: str,
    text_pair: str | None = None,
    *,
    k: int = DEFAULT_NEIGHBOURS,
    flagged_label_rows: Sequence[int] = (),
) -> pd.DataFrame:
    """Return the ``k`` training rows most similar to one example, most similar first.

    Args:
        index: the run's training rows and embeddings.
        encoder: the same frozen encoder that built ``index``.
        text: the example's text (for pairs: the context).
        text_pair: the example's second segment, if any.
        k: how many rows to return.
        flagged_label_rows: data rows marked as likely label errors, to show beside each row.

    Returns:
        Columns ``rank``, ``row_number``, ``similarity``, ``label``,
        ``likely_label_error``, ``text`` and (for pairs) ``text_pair``.
    """
    pairs = [text_pair] if index.examples.text_pairs is not None else None
    if pairs is not None and text_pair is None:
        raise ValueError("The run trained on text pairs, so the example needs a text_pair.")
    query = embed_examples(encoder, [text], pairs)[0]
    positions, similarity = nearest_rows(query, index.embeddings, k)

    examples = index.examples
    flagged = {int(row) for row in flagged_label_rows}
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, len(positions) + 1),
            "row_number": [examples.row_numbers[i] for i in positions],
            "similarity": np.round(similarity, 4),
            "label": [examples.label_names[examples.labels[i]] for i in positions],
            "likely_label_error": [examples.row_numbers[i] in flagged for i in positions],
            "text": [examples.texts[i] for i in positions],
        }
    )
    if examples.text_pairs is not None:
        frame["text_pair"] = [examples.text_pairs[i] for i in positions]
    return frame
