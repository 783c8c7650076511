"""Detector quality page: ROC and PR curves of a run's hallucination scores, and a threshold.

For a classification run, the wrong validation predictions are its
hallucinations. The page shows how well the label-free scores
(``low_margin``, ``low_confidence``) separate them from right ones.

For a generation run, a stored answer is hallucinated when it does not give
its reference answer (``halluscope.inference.matching.answer_matches``). The
page shows how well each generation detector's response score separates
those answers from right ones. Typed questions have no reference and are
left out.

The threshold slider sets the flag rule of one score or detector for the
chosen run. The Predict and Inspect pages (classification) and the Answers
and Inspect answer pages (generation) then flag by it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.answer_rendering import default_detector
from dashboard.components import (
    csv_download,
    ensure_choice,
    escape_markdown,
    option_labels,
    run_label,
)
from dashboard.i18n import t
from dashboard.services import answers_of, completed_runs, get_store, predictions_cached
from halluscope.data import DataError
from halluscope.detect import get_detector
from halluscope.evaluate.curves import (
    CLASSIFICATION_SCORES,
    classification_scores,
    pr_figure,
    pr_points,
    roc_figure,
    roc_points,
)
from halluscope.evaluate.metrics import auprc, auroc, best_f1, metrics_at_threshold
from halluscope.inference.matching import answer_matches, normalize_answer
from halluscope.models import ModelError
from halluscope.runs import RunRecord, RunStore

RUN_KINDS = ("classification", "generation")
DEFAULT_THRESHOLD = 0.5


# Shared by both kinds of run


def _choose_run(store: RunStore) -> RunRecord | None:
    """Show a selectbox of the completed classification and generation runs, newest first."""
    records = [record for kind in RUN_KINDS for record in completed_runs(store, kind)]
    if not records:
        st.info(t("predict.no_runs"))
        st.page_link("views/train.py", label=t("predict.go_train"), icon=":material/arrow_back:")
        return None

    records.sort(key=lambda record: record.created_at, reverse=True)
    by_id = {record.run_id: record for record in records}
    kind_names = {kind: t(f"data.task_{kind}") for kind in RUN_KINDS}

    def label(run_id: str) -> str:
        record = by_id[run_id]
        return f"{run_label(record)} · {kind_names[record.kind]} · {run_id}"

    ensure_choice(state.QUALITY_RUN, list(by_id), records[0].run_id)
    run_id = st.selectbox(
        t("predict.run"),
        list(by_id),
        format_func=option_labels(list(by_id), label),
        key=state.QUALITY_RUN,
    )
    return by_id[run_id]


def _summary_table(labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Return AUROC, AUPRC and best F1 per score (raises ``ValueError`` for a single class)."""
    rows = []
    for name, values in scores.items():
        best = best_f1(labels, values)
        rows.append(
            {
                t("quality.col_detector"): name,
                "AUROC": auroc(labels, values),
                "AUPRC": auprc(labels, values),
                t("quality.col_best_f1"): best.f1,
                t("quality.col_best_threshold"): best.threshold,
            }
        )
    return pd.DataFrame(rows)


def _curves(labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> None:
    roc_box, pr_box = st.columns(2)
    roc = roc_figure(
        {name: roc_points(labels, values) for name, values in scores.items()},
        title=t("quality.roc_title"),
        x_title=t("quality.false_positive_rate"),
        y_title=t("quality.true_positive_rate"),
    )
    roc_box.plotly_chart(roc, key=state.QUALITY_ROC_CHART)
    pr = pr_figure(
        {name: pr_points(labels, values) for name, values in scores.items()},
        title=t("quality.pr_title"),
        x_title=t("quality.recall"),
        y_title=t("quality.precision"),
    )
    pr_box.plotly_chart(pr, key=state.QUALITY_PR_CHART)


def _registered_threshold(name: str) -> float:
    """Return the default threshold of a registered detector, or ``DEFAULT_THRESHOLD``."""
    try:
        detector = get_detector(name)
    except (KeyError, TypeError, ValueError):
        return DEFAULT_THRESHOLD
    return float(getattr(detector, "threshold", DEFAULT_THRESHOLD))


def _threshold(
    run_id: str,
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    default: str,
    label: Callable[[Any], str],
    default_threshold: Callable[[str], float] = lambda name: DEFAULT_THRESHOLD,
    help_text: str | None = None,
) -> tuple[str, float]:
    """Show the detector and threshold widgets and the confusion counts, and store the flag rule.

    The slider belongs to one run and one score or detector: choosing
    another starts it at ``default_threshold`` of the new choice, so the
    flags of a run change only when its own slider moves.

    Returns:
        The chosen score or detector name and the threshold.
    """
    st.subheader(t("quality.threshold_header"))
    names = list(scores)
    ensure_choice(state.QUALITY_DETECTOR, names, default)
    detector_box, slider_box = st.columns([1, 2])
    detector = detector_box.selectbox(
        t("quality.detector"),
        names,
        format_func=option_labels(names, label),
        key=state.QUALITY_DETECTOR,
    )
    owner = (run_id, detector)
    if (
        st.session_state.get(state.QUALITY_THRESHOLD_OWNER) != owner
        or state.QUALITY_THRESHOLD not in st.session_state
    ):
        st.session_state[state.QUALITY_THRESHOLD_OWNER] = owner
        st.session_state[state.QUALITY_THRESHOLD] = default_threshold(detector)
    threshold = float(
        slider_box.slider(
            t("quality.threshold"),
            min_value=0.0,
            max_value=1.0,
            step=0.01,
            key=state.QUALITY_THRESHOLD,
            help=help_text or t("quality.threshold_help"),
        )
    )
    st.session_state[state.QUALITY_FLAG_RULE] = (run_id, detector, threshold)

    counts = metrics_at_threshold(labels, scores[detector], threshold)
    flagged_count = counts.true_positives + counts.false_positives
    columns = st.columns(7)
    values = [
        ("quality.true_positives", f"{counts.true_positives:,}"),
        ("quality.false_positives", f"{counts.false_positives:,}"),
        ("quality.false_negatives", f"{counts.false_negatives:,}"),
        ("quality.true_negatives", f"{counts.true_negatives:,}"),
        # Precision is undefined when nothing is flagged.
        ("quality.precision", f"{counts.precision:.3f}" if flagged_count else "–"),
        ("quality.recall", f"{counts.recall:.3f}"),
        ("quality.f1", f"{counts.f1:.3f}"),
    ]
    for column, (key, value) in zip(columns, values, strict=True):
        column.metric(t(key), value)
    return detector, threshold


# Classification runs


def _classification_quality(store: RunStore, record: RunRecord) -> None:
    try:
        with st.spinner(t("predict.running")):
            table, _ = predictions_cached(str(store.home), record.run_id)
    except (DataError, ModelError, ValueError, FileNotFoundError) as error:
        st.error(escape_markdown(getattr(error, "message", None) or error))
        return

    try:
        labels, scores = classification_scores(table)
    except ValueError:
        st.info(t("quality.no_gold"))
        return
    wrong = int(labels.sum())
    st.caption(t("quality.counts", total=len(labels), wrong=wrong))
    if wrong == 0 or wrong == len(labels):
        st.info(t("quality.single_class"))
        return

    summary = _summary_table(labels, scores)
    st.dataframe(summary, hide_index=True)
    csv_download(
        summary, file_name=f"detector-quality-{record.run_id}.csv", key=state.QUALITY_DOWNLOAD
    )
    _curves(labels, scores)
    names = list(CLASSIFICATION_SCORES)
    _threshold(
        record.run_id,
        labels,
        {name: scores[name] for name in names},
        default=names[0],
        label=lambda name: t(f"quality.score_{name}"),
    )
    st.caption(t("quality.applies_to_predict"))
    st.page_link("views/predict.py", label=t("quality.go_predict"), icon=":material/arrow_forward:")


# Generation runs


def _has_reference(answer: dict[str, Any]) -> bool:
    """Return whether the answer has a reference with at least one word to match against."""
    reference = answer.get("reference")
    return bool(reference) and bool(normalize_answer(reference))


def _shared_detectors(answers: Sequence[dict[str, Any]]) -> list[str]:
    """Return the detectors with a finite response score on every answer, in stored order."""
    names = list(answers[0]["detectors"])
    return [
        name
        for name in names
        if all(
            isinstance(score := answer["detectors"].get(name, {}).get("score"), int | float)
            and math.isfinite(score)
            for answer in answers
        )
    ]


def _answers_frame(
    answers: Sequence[dict[str, Any]],
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    flagged: np.ndarray | None,
) -> pd.DataFrame:
    """Return one row per labelled answer: its text, label, each detector's score and its flag."""
    frame = pd.DataFrame(
        {
            "index": [answer["index"] for answer in answers],
            "question": [answer["question"] for answer in answers],
            "answer": [answer["answer"] for answer in answers],
            "reference": [answer["reference"] for answer in answers],
            "hallucinated": labels.astype(bool),
        }
    )
    for name, values in scores.items():
        frame[name] = values
    if flagged is not None:
        frame["flagged"] = flagged
    return frame


def _show_answers_frame(frame: pd.DataFrame, run_id: str) -> None:
    st.subheader(t("quality.answers_header"))
    score_columns = [
        column
        for column in frame.columns
        if column not in ("index", "question", "answer", "reference", "hallucinated", "flagged")
    ]
    column_config: dict[str, Any] = {
        "index": st.column_config.NumberColumn(t("answers.col_index")),
        "question": st.column_config.TextColumn(t("answers.col_question")),
        "answer": st.column_config.TextColumn(t("answers.col_answer")),
        "reference": st.column_config.TextColumn(t("answers.col_reference")),
        "hallucinated": st.column_config.CheckboxColumn(
            t("quality.col_hallucinated"), help=t("quality.col_hallucinated_help")
        ),
    }
    if "flagged" in frame.columns:
        column_config["flagged"] = st.column_config.CheckboxColumn(t("answers.col_flagged"))
    for column in score_columns:
        column_config[column] = st.column_config.NumberColumn(column, format="%.3f")
    st.dataframe(
        frame, hide_index=True, column_config=column_config, key=state.QUALITY_ANSWERS_TABLE
    )
    csv_download(
        frame,
        file_name=f"answer-quality-{run_id}.csv",
        key=state.QUALITY_ANSWERS_DOWNLOAD,
    )


def _generation_quality(store: RunStore, record: RunRecord) -> None:
    records = answers_of(store, record.run_id)
    if not records:
        st.info(t("quality.no_answers"))
        st.page_link(
            "views/answers.py", label=t("quality.go_answers"), icon=":material/arrow_back:"
        )
        return

    answers = [answer for answer in records if _has_reference(answer)]
    left_out = len(records) - len(answers)
    if not answers:
        st.info(t("quality.no_references", total=len(records)))
        return
    labels = np.array(
        [not answer_matches(answer["answer"], answer["reference"]) for answer in answers],
        dtype=np.int64,
    )
    st.caption(
        t(
            "quality.answer_counts",
            total=len(answers),
            wrong=int(labels.sum()),
            left_out=left_out,
        )
    )

    detectors = _shared_detectors(answers)
    if not detectors:
        st.info(t("quality.no_scores"))
        return
    scores = {
        name: np.array([answer["detectors"][name]["score"] for answer in answers], dtype=float)
        for name in detectors
    }

    # With a single class, AUROC, the curves and recall are undefined, so the
    # metrics raise a ValueError that names the class. The page shows its message.
    try:
        summary = _summary_table(labels, scores)
    except ValueError as error:
        st.info(t("quality.undefined", error=escape_markdown(error)))
        _show_answers_frame(_answers_frame(answers, labels, scores, None), record.run_id)
        return

    st.dataframe(summary, hide_index=True)
    csv_download(
        summary, file_name=f"detector-quality-{record.run_id}.csv", key=state.QUALITY_DOWNLOAD
    )
    _curves(labels, scores)
    first = default_detector(detectors)
    detector, threshold = _threshold(
        record.run_id,
        labels,
        scores,
        default=first,
        label=str,
        # The slider opens on the detector's own threshold, so that a visit to
        # this page leaves the flags of the Answers pages as they were.
        default_threshold=_registered_threshold,
        help_text=t("quality.threshold_help_answers"),
    )
    st.caption(t("quality.applies_to_answers"))
    st.page_link("views/answers.py", label=t("quality.go_answers"), icon=":material/arrow_forward:")
    flagged = scores[detector] >= threshold
    _show_answers_frame(_answers_frame(answers, labels, scores, flagged), record.run_id)


def main() -> None:
    st.title(t("quality.title"))
    st.caption(t("quality.intro"))
    store = get_store()

    record = _choose_run(store)
    if record is None:
        return
    if record.kind == "generation":
        _generation_quality(store, record)
    else:
        _classification_quality(store, record)


main()
