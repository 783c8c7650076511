"""Detector quality page: ROC and PR curves of a classification run's flags, and a threshold.

A classifier's wrong validation predictions are its hallucinations. The page
shows how well the label-free scores (``low_margin``, ``low_confidence``)
separate them from right ones, and a threshold slider whose rule the Predict
page then uses for its flags.

TODO: generation runs (answers scored against references) are not shown yet,
and the Inspect page still shows the detector's default flags.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import (
    choose_completed_run,
    csv_download,
    ensure_choice,
    ensure_value,
    escape_markdown,
    option_labels,
)
from dashboard.i18n import t
from dashboard.services import get_store, predictions_cached
from halluscope.data import DataError
from halluscope.evaluate.curves import (
    CLASSIFICATION_SCORES,
    classification_scores,
    pr_figure,
    pr_points,
    roc_figure,
    roc_points,
)
from halluscope.evaluate.metrics import auprc, auroc, best_f1, metrics_at_threshold
from halluscope.models import ModelError


def _summary_table(labels, scores) -> pd.DataFrame:
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


def _curves(labels, scores) -> None:
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


def _threshold(run_id: str, labels, scores) -> None:
    """Show the detector and threshold widgets, the confusion counts, and store the flag rule."""
    st.subheader(t("quality.threshold_header"))
    names = list(CLASSIFICATION_SCORES)
    ensure_choice(state.QUALITY_DETECTOR, names, names[0])
    ensure_value(state.QUALITY_THRESHOLD, 0.5)
    detector_box, slider_box = st.columns([1, 2])
    detector = detector_box.selectbox(
        t("quality.detector"),
        names,
        format_func=option_labels(names, lambda name: t(f"quality.score_{name}")),
        key=state.QUALITY_DETECTOR,
    )
    threshold = slider_box.slider(
        t("quality.threshold"),
        min_value=0.0,
        max_value=1.0,
        step=0.01,
        key=state.QUALITY_THRESHOLD,
        help=t("quality.threshold_help"),
    )
    st.session_state[state.QUALITY_FLAG_RULE] = (run_id, detector, float(threshold))

    counts = metrics_at_threshold(labels, scores[detector], threshold)
    columns = st.columns(7)
    values = [
        ("quality.true_positives", f"{counts.true_positives:,}"),
        ("quality.false_positives", f"{counts.false_positives:,}"),
        ("quality.false_negatives", f"{counts.false_negatives:,}"),
        ("quality.true_negatives", f"{counts.true_negatives:,}"),
        ("quality.precision", f"{counts.precision:.3f}"),
        ("quality.recall", f"{counts.recall:.3f}"),
        ("quality.f1", f"{counts.f1:.3f}"),
    ]
    for column, (key, value) in zip(columns, values, strict=True):
        column.metric(t(key), value)
    st.caption(t("quality.applies_to_predict"))
    st.page_link("views/predict.py", label=t("quality.go_predict"), icon=":material/arrow_forward:")


def main() -> None:
    st.title(t("quality.title"))
    st.caption(t("quality.intro"))
    store = get_store()

    record = choose_completed_run(store, key=state.QUALITY_RUN)
    if record is None:
        return
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
    _threshold(record.run_id, labels, scores)


main()
