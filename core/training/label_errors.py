"""Rank training rows by how likely their label is wrong (confident learning with cleanlab).

Confident learning needs out-of-sample predicted probabilities: for each row, the
class probabilities of a model that did not train on it. Fine-tuning one model
per cross-validation fold is the most faithful way to get them, but it costs
several fine-tunes. Here each example is described once by a frozen encoder
(``halluscope.training.embeddings``) and a logistic regression is fitted per
fold on those features, which takes seconds on a CPU.

``cleanlab.filter.find_label_issues`` then marks the likely label errors and
``cleanlab.rank.get_label_quality_scores`` (self-confidence: the out-of-sample
probability of the given label) orders the rows, lowest quality first.

For (context, claim) pairs the features are claim-to-context token alignment
statistics (``pair_features``); for single texts, the sentence embedding.
On the demo claims with 20% of the labels flipped (seeds 0, 1, 2), precision at
k (k = the number of flipped rows) was 0.85 to 0.89, measured with
``tests/integration/test_label_noise.py``.

NOTE: the ranking is only as good as these features. Alignment suits claims
that alter names, numbers or dates. For single texts, or pairs whose label
depends on more than word overlap, a frozen encoder may separate the classes
poorly, and then the ranking is weak too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from halluscope.runs import RunStore
from halluscope.training.config import ClassifierTrainConfig
from halluscope.training.embeddings import Encoder, embed_examples, load_encoder, pair_features
from halluscope.training.splits import SplitExamples
from halluscope.training.train_examples import flipped_rows, load_train_examples

logger = logging.getLogger(__name__)

LABEL_ISSUES_FILE = "label_issues.json"
DEFAULT_FOLDS = 5
DEFAULT_REGULARIZATION = 1.0
"""Inverse L2 strength ``C`` of the per-fold logistic regression on standardised features."""
METHOD = "frozen-encoder features, logistic regression, stratified k-fold"


@dataclass(frozen=True)
class LabelIssues:
    """The label-error ranking of n training rows.

    Attributes:
        row_numbers: 1-based data rows of the source file, length n.
        labels: given label ids, int array [n].
        label_names: class names in label-id order.
        pred_probs: out-of-sample class probabilities, float array [n, classes].
        label_quality: self-confidence score in [0, 1] per row, float array [n];
            low means the given label is likely wrong.
        is_issue: rows that ``cleanlab.filter.find_label_issues`` marks, bool array [n].
        flipped: rows whose label was flipped on purpose (from a ``label_flipped``
            column), bool array [n], or None when unknown.
        method: how ``pred_probs`` were obtained.
    """

    row_numbers: tuple[int, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    pred_probs: np.ndarray
    label_quality: np.ndarray
    is_issue: np.ndarray
    flipped: np.ndarray | None = None
    method: str = METHOD

    def __post_init__(self) -> None:
        n = len(self.row_numbers)
        shapes = {
            "labels": (self.labels.shape, (n,)),
            "pred_probs": (self.pred_probs.shape, (n, len(self.label_names))),
            "label_quality": (self.label_quality.shape, (n,)),
            "is_issue": (self.is_issue.shape, (n,)),
        }
        if self.flipped is not None:
            shapes["flipped"] = (self.flipped.shape, (n,))
        for name, (actual, expected) in shapes.items():
            if actual != expected:
                raise ValueError(f"{name} has shape {actual}, expected {expected}.")

    def __len__(self) -> int:
        return len(self.row_numbers)

    @property
    def ranking(self) -> np.ndarray:
        """Positions of the rows, most likely mislabelled first (stable on ties), int array [n]."""
        return np.argsort(self.label_quality, kind="stable")

    @property
    def suggested(self) -> np.ndarray:
        """Label id with the highest out-of-sample probability per row, int array [n]."""
        return self.pred_probs.argmax(axis=1)

    def precision_recall_at_k(self, k: int | None = None) -> tuple[float, float] | None:
        """Precision and recall of the top ``k`` rows against the flipped rows.

        ``k`` defaults to the number of flipped rows, where precision equals recall.
        Returns None when the flipped rows are unknown or there are none.
        """
        if self.flipped is None or not self.flipped.any():
            return None
        return precision_recall_at_k(self.ranking, np.flatnonzero(self.flipped), k)

    def to_frame(
        self, texts: Sequence[str] | None = None, text_pairs: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Return one row per example in ranking order, with given and suggested labels."""
        order = self.ranking
        names = np.asarray(self.label_names, dtype=object)
        frame = pd.DataFrame(
            {
                "rank": np.arange(1, len(order) + 1),
                "row_number": np.asarray(self.row_numbers)[order],
                "given_label": names[self.labels[order]],
                "suggested_label": names[self.suggested[order]],
                "label_quality": self.label_quality[order].round(4),
                "suggested_probability": self.pred_probs[order, self.suggested[order]].round(4),
                "likely_error": self.is_issue[order],
            }
        )
        if self.flipped is not None:
            frame["flipped"] = self.flipped[order]
        if texts is not None:
            frame["text"] = [texts[i] for i in order]
        if text_pairs is not None:
            frame["text_pair"] = [text_pairs[i] for i in order]
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``from_dict`` reads it back)."""
        return {
            "row_numbers": list(self.row_numbers),
            "labels": self.labels.tolist(),
            "label_names": list(self.label_names),
            "pred_probs": self.pred_probs.tolist(),
            "label_quality": self.label_quality.tolist(),
            "is_issue": self.is_issue.tolist(),
            "flipped": None if self.flipped is None else self.flipped.tolist(),
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LabelIssues:
        """Rebuild a ranking from ``to_dict`` output."""
        flipped = values.get("flipped")
        return cls(
            row_numbers=tuple(int(row) for row in values["row_numbers"]),
            labels=np.asarray(values["labels"], dtype=np.int64),
            label_names=tuple(values["label_names"]),
            pred_probs=np.asarray(values["pred_probs"], dtype=np.float64),
            label_quality=np.asarray(values["label_quality"], dtype=np.float64),
            is_issue=np.asarray(values["is_issue"], dtype=bool),
            flipped=None if flipped is None else np.asarray(flipped, dtype=bool),
            method=values.get("method", METHOD),
        )


def precision_recall_at_k(
    ranking: Sequence[int] | np.ndarray,
    noisy_positions: Sequence[int] | np.ndarray,
    k: int | None = None,
) -> tuple[float, float]:
    """Return (precision, recall) of the first ``k`` positions of ``ranking``.

    Args:
        ranking: positions ordered from most to least likely mislabelled.
        noisy_positions: the positions whose labels are known to be wrong.
        k: how many top positions count as found (default: ``len(noisy_positions)``).
    """
    noisy = {int(position) for position in noisy_positions}
    if not noisy:
        raise ValueError("noisy_positions is empty, so precision and recall are undefined.")
    k = len(noisy) if k is None else int(k)
    if not 1 <= k <= len(ranking):
        raise ValueError(f"k must be between 1 and {len(ranking)}, got {k}.")
    hits = sum(1 for position in list(ranking)[:k] if int(position) in noisy)
    return hits / k, hits / len(noisy)


def example_features(
    encoder: Encoder, texts: Sequence[str], text_pairs: Sequence[str] | None
) -> np.ndarray:
    """Return the frozen-encoder features of each example, float32 [n, d]."""
    if text_pairs is not None:
        return pair_features(encoder, texts, text_pairs)
    return embed_examples(encoder, texts)


def out_of_sample_probabilities(
    features: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    regularization: float = DEFAULT_REGULARIZATION,
) -> np.ndarray:
    """Return class probabilities of each row from a model fitted on the other folds.

    Args:
        features: float array [n, d].
        labels: label ids, length n, each in ``0 .. classes - 1``.
        folds: number of stratified folds; capped at the size of the smallest class.
        seed: shuffles the rows before they are split into folds.
        regularization: inverse L2 strength ``C`` of the logistic regression.

    Returns:
        float array [n, classes] whose rows sum to 1.
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels)
    present = counts[counts > 0]
    if len(present) < 2:
        raise ValueError("Finding label errors needs at least two classes among the rows.")
    folds = int(min(folds, present.min()))
    if folds < 2:
        raise ValueError(
            f"The smallest class has {present.min()} row(s); cross-validation needs at least 2 "
            "rows of every class."
        )

    classifier = make_pipeline(
        StandardScaler(), LogisticRegression(C=regularization, max_iter=2000)
    )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(
        classifier, features, labels, cv=splitter, method="predict_proba"
    )
    # cross_val_predict orders columns by the classes seen; map them to label ids.
    full = np.zeros((len(labels), len(counts)), dtype=np.float64)
    full[:, np.flatnonzero(counts > 0)] = probabilities
    return full


def rank_label_issues(
    examples: SplitExamples,
    encoder: Encoder,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    flipped: np.ndarray | None = None,
) -> LabelIssues:
    """Rank ``examples`` by how likely their label is wrong.

    Args:
        examples: the labelled rows (for a run: its training split).
        encoder: the frozen encoder that describes each example.
        folds: cross-validation folds for the out-of-sample probabilities.
        seed: seed of the fold split.
        flipped: rows whose labels were flipped on purpose, bool array [n], to
            measure the ranking (optional).
    """
    labels = np.asarray(examples.labels, dtype=np.int64)
    features = example_features(encoder, examples.texts, examples.text_pairs)
    probabilities = out_of_sample_probabilities(features, labels, folds=folds, seed=seed)
    classes = len(examples.label_names)
    if probabilities.shape[1] < classes:
        padding = np.zeros((len(labels), classes - probabilities.shape[1]))
        probabilities = np.hstack([probabilities, padding])

    # One process: cleanlab's default worker pool forks, which deadlocks when
    # the caller is a thread of a multi-threaded server such as Streamlit.
    is_issue = cleanlab_find_label_issues(labels, probabilities, n_jobs=1)
    quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    issues = LabelIssues(
        row_numbers=tuple(examples.row_numbers),
        labels=labels,
        label_names=tuple(examples.label_names),
        pred_probs=probabilities,
        label_quality=np.asarray(quality, dtype=np.float64),
        is_issue=np.asarray(is_issue, dtype=bool),
        flipped=flipped,
    )
    logger.info(
        "Label-error ranking of %d rows: %d likely errors.", len(issues), int(issues.is_issue.sum())
    )
    return issues


def rank_run_label_issues(
    store: RunStore, run_id: str, *, folds: int = DEFAULT_FOLDS, seed: int = 0
) -> tuple[LabelIssues, SplitExamples]:
    """Rank the training rows of a classification run and store the result in its folder.

    The frozen encoder is the run's base model (``config.model``), not the
    fine-tuned one, because the fine-tuned model has seen every training row.

    Returns:
        The ranking and the training examples it ranks (same order).
    """
    config = ClassifierTrainConfig.from_dict(store.config(run_id))
    examples = load_train_examples(store, run_id)
    encoder = load_encoder(config.model, max_length=config.max_length, allow_hub=config.allow_hub)
    flipped = flipped_rows(config.data_path, examples.row_numbers)
    issues = rank_label_issues(examples, encoder, folds=folds, seed=seed, flipped=flipped)
    store.write_json(run_id, LABEL_ISSUES_FILE, issues.to_dict())
    measured = issues.precision_recall_at_k()
    if measured is not None:
        logger.info(
            "Run %s: label-error precision@k %.3f, recall@k %.3f (k = %d flipped rows).",
            run_id,
            measured[0],
            measured[1],
            int(issues.flipped.sum()),
        )
    return issues, examples


def load_run_label_issues(store: RunStore, run_id: str) -> LabelIssues | None:
    """Return the stored label-error ranking of a run, or None when none was computed."""
    path = store.run_dir(run_id) / LABEL_ISSUES_FILE
    if not path.is_file():
        return None
    return LabelIssues.from_dict(json.loads(path.read_text(encoding="utf-8")))
