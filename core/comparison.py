"""Compare classification runs on the same validation rows.

For each run the comparison reads the prediction table of
``halluscope.workflows.predict_run`` (one row per validation example) and
reports accuracy, the share of rows each registered classification detector
flags, and the expected calibration error. Rows are matched across runs by
their 1-based data row number, so runs compare example by example only when
they share validation rows (same data file, split seed and validation share).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from halluscope.detect import available_detectors
from halluscope.inference import ClassificationPredictions

logger = logging.getLogger(__name__)

CALIBRATION_BINS = 10

CHANGE_BECAME_WRONG = "became_wrong"
CHANGE_BECAME_RIGHT = "became_right"
CHANGE_BECAME_FLAGGED = "became_flagged"
CHANGE_STOPPED_FLAGGED = "stopped_flagged"
CHANGES = (CHANGE_BECAME_WRONG, CHANGE_BECAME_RIGHT, CHANGE_BECAME_FLAGGED, CHANGE_STOPPED_FLAGGED)


def expected_calibration_error(
    probabilities: np.ndarray, gold: Sequence[int] | np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Return the expected calibration error of the top-label confidence.

    This is the multi-class (top-label) form: it compares the confidence of the
    predicted label with how often that label is right.
    ``halluscope.evaluate.expected_calibration_error`` is the binary form over
    the probability of the positive class.

    Predictions are grouped into ``bins`` equal-width confidence bins over
    [0, 1]; the error is the row-weighted mean of |accuracy - mean confidence|
    over the bins.

    Args:
        probabilities: class probabilities, float array [n, classes].
        gold: gold label ids, length n.
        bins: number of bins.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    if len(gold) == 0:
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == gold
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A confidence of exactly 1 falls in the last bin.
    bin_of = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = bin_of == index
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            error += members.mean() * gap
    return float(error)


def predictions_from_table(table: pd.DataFrame) -> ClassificationPredictions:
    """Rebuild the class probabilities of a prediction table from its ``p(<label>)`` columns."""
    label_names = tuple(column[2:-1] for column in table.columns if column.startswith("p("))
    probabilities = table[[f"p({name})" for name in label_names]].to_numpy(dtype=np.float64)
    return ClassificationPredictions(
        probabilities=probabilities,
        logits=np.log(np.clip(probabilities, 1e-12, 1.0)),
        label_names=label_names,
        truncated=table["truncated"].to_numpy(dtype=bool),
    )


def flag_rates(table: pd.DataFrame) -> dict[str, float]:
    """Return the share of rows that each registered classification detector flags."""
    predictions = predictions_from_table(table)
    gold = list(table["gold"]) if "gold" in table.columns else None
    rates = {}
    for detector_class in available_detectors("classification"):
        results = detector_class().detect_batch(predictions, gold)
        rates[detector_class.name] = float(np.mean([result.flagged for result in results]))
    return rates


@dataclass(frozen=True)
class RunComparison:
    """Side-by-side results of several runs.

    Attributes:
        summary: one row per run: ``run_id``, ``name``, ``examples``,
            ``accuracy``, ``calibration_error`` and ``flagged_rate(<detector>)``
            per classification detector.
        examples: one row per validation row shared by all runs: ``row_number``,
            ``gold``, then per run ``predicted[<run>]``, ``correct[<run>]`` and
            ``flagged[<run>]``, then ``change`` of the last run against the
            first (one of ``CHANGES`` or empty).
        shared_rows: number of validation rows that every run has.
    """

    summary: pd.DataFrame
    examples: pd.DataFrame
    shared_rows: int

    def change_counts(self) -> dict[str, int]:
        """Return how many shared rows show each kind of change (last run against first)."""
        counts = self.examples["change"].value_counts() if len(self.examples) else pd.Series()
        return {change: int(counts.get(change, 0)) for change in CHANGES}


def compare_runs(tables: Mapping[str, pd.DataFrame], names: Mapping[str, str]) -> RunComparison:
    """Compare the validation predictions of two or more runs.

    Args:
        tables: run id to its prediction table (with gold labels), in display order.
            The first run is the reference that ``change`` compares the last run to.
        names: run id to display name.

    Raises:
        ValueError: fewer than two runs, or a table without gold labels.
    """
    if len(tables) < 2:
        raise ValueError(f"Comparing needs at least two runs, got {len(tables)}.")
    for run_id, table in tables.items():
        if "gold" not in table.columns:
            raise ValueError(f"The predictions of run '{run_id}' have no gold labels to compare.")

    summary_rows = []
    for run_id, table in tables.items():
        predictions = predictions_from_table(table)
        gold_ids = predictions.gold_ids(list(table["gold"]))
        row = {
            "run_id": run_id,
            "name": names.get(run_id, run_id),
            "examples": len(table),
            "accuracy": float(table["correct"].mean()),
            "calibration_error": expected_calibration_error(predictions.probabilities, gold_ids),
        }
        for detector, rate in flag_rates(table).items():
            row[f"flagged_rate({detector})"] = rate
        summary_rows.append(row)
    summary = pd.DataFrame(summary_rows)

    examples = _per_example(tables)
    return RunComparison(summary=summary, examples=examples, shared_rows=len(examples))


def _per_example(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    run_ids = list(tables)
    shared = set(tables[run_ids[0]]["row_number"])
    for run_id in run_ids[1:]:
        shared &= set(tables[run_id]["row_number"])
    rows = sorted(shared)

    first = tables[run_ids[0]].drop_duplicates("row_number").set_index("row_number")
    frame = pd.DataFrame({"row_number": rows})
    for column in ("text", "text_pair"):
        if column in first.columns:
            frame[column] = first.loc[rows, column].to_numpy()
    frame["gold"] = first.loc[rows, "gold"].to_numpy()
    for run_id in run_ids:
        table = tables[run_id].drop_duplicates("row_number").set_index("row_number")
        frame[f"predicted[{run_id}]"] = table.loc[rows, "predicted"].to_numpy()
        frame[f"correct[{run_id}]"] = table.loc[rows, "correct"].to_numpy(dtype=bool)
        frame[f"flagged[{run_id}]"] = table.loc[rows, "flagged"].to_numpy(dtype=bool)

    reference, last = run_ids[0], run_ids[-1]
    frame["change"] = [
        _change(
            frame[f"correct[{reference}]"].iloc[i],
            frame[f"correct[{last}]"].iloc[i],
            frame[f"flagged[{reference}]"].iloc[i],
            frame[f"flagged[{last}]"].iloc[i],
        )
        for i in range(len(frame))
    ]
    return frame


def _change(
    correct_before: bool, correct_after: bool, flagged_before: bool, flagged_after: bool
) -> str:
    """Name the change of one row; a flag change wins over a correctness change."""
    if flagged_after and not flagged_before:
        return CHANGE_BECAME_FLAGGED
    if flagged_before and not flagged_after:
        return CHANGE_STOPPED_FLAGGED
    if correct_before and not correct_after:
        return CHANGE_BECAME_WRONG
    if correct_after and not correct_before:
        return CHANGE_BECAME_RIGHT
    return ""
