"""Compare page: two or more classification runs side by side on their validation rows.

Shows per run the accuracy, the share of rows each detector flags and the
expected calibration error, then every shared validation row with what changed
between the first run picked (the reference) and the last. For a flagged row,
the training rows most similar to it are listed, so a reviewer can see which
training data may have taught the error.

NOTE: a "base model, no fine-tuning" entry is not offered. An encoder without
fine-tuning has a randomly initialised classification head, so its accuracy
and flags would describe that random head, not the pretrained model.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import (
    csv_download,
    ensure_choice,
    escape_markdown,
    option_labels,
    run_label,
)
from dashboard.data_map import run_metrics_figure
from dashboard.i18n import t
from dashboard.services import (
    completed_runs,
    get_store,
    load_frozen_encoder,
    predictions_cached,
    training_index_cached,
)
from halluscope.comparison import CHANGES, RunComparison, compare_runs
from halluscope.runs import RunRecord, RunStore
from halluscope.training import ClassifierTrainConfig
from halluscope.training.label_errors import load_run_label_issues
from halluscope.training.neighbours import nearest_training_rows
from halluscope.training.train_examples import TrainExamplesError


def _choose_runs(store: RunStore) -> list[RunRecord] | None:
    records = completed_runs(store, "classification")
    if len(records) < 2:
        st.info(t("compare.need_two_runs", count=len(records)))
        st.page_link("views/train.py", label=t("predict.go_train"), icon=":material/arrow_back:")
        return None
    by_id = {record.run_id: record for record in records}
    chosen = st.session_state.get(state.COMPARE_RUNS)
    if not chosen or any(run_id not in by_id for run_id in chosen):
        # The two newest runs, older first, so the newer one is compared to it.
        st.session_state[state.COMPARE_RUNS] = [records[1].run_id, records[0].run_id]
    run_ids = st.multiselect(
        t("compare.runs"),
        list(by_id),
        format_func=option_labels(
            list(by_id), lambda value: f"{run_label(by_id[value])} · {value}"
        ),
        key=state.COMPARE_RUNS,
        help=t("compare.runs_help"),
    )
    if len(run_ids) < 2:
        st.info(t("compare.pick_two"))
        return None
    return [by_id[run_id] for run_id in run_ids]


def _comparison(store: RunStore, records: list[RunRecord]) -> RunComparison | None:
    tables = {}
    with st.spinner(t("compare.predicting")):
        for record in records:
            try:
                table, _ = predictions_cached(str(store.home), record.run_id)
            except (ValueError, OSError) as error:
                st.error(t("compare.predict_failed", run=record.name, error=escape_markdown(error)))
                return None
            tables[record.run_id] = table
    return compare_runs(tables, {record.run_id: record.name for record in records})


def _summary(comparison: RunComparison) -> None:
    st.subheader(t("compare.summary_title"))
    summary = comparison.summary
    metric_names = {"accuracy": t("compare.accuracy")}
    for column in summary.columns:
        if column.startswith("flagged_rate("):
            detector = column[len("flagged_rate(") : -1]
            metric_names[column] = t("compare.flagged_rate", detector=detector)
    metric_names["calibration_error"] = t("compare.calibration_error")
    st.plotly_chart(
        run_metrics_figure(
            summary,
            metric_names,
            x_title=t("compare.metric"),
            y_title=t("compare.value"),
        ),
        key=state.COMPARE_METRICS_CHART,
        width="stretch",
    )
    st.dataframe(summary, hide_index=True, width="stretch", key=state.COMPARE_SUMMARY_TABLE)
    csv_download(summary, file_name="run-comparison.csv", key=state.COMPARE_SUMMARY_DOWNLOAD)


def _examples(comparison: RunComparison, records: list[RunRecord]) -> None:
    st.subheader(t("compare.examples_title"))
    if comparison.shared_rows == 0:
        st.warning(t("compare.no_shared_rows"))
        return
    st.caption(
        t(
            "compare.examples_caption",
            rows=comparison.shared_rows,
            reference=records[0].name,
            last=records[-1].name,
        )
    )
    counts = comparison.change_counts()
    columns = st.columns(len(CHANGES))
    for column, change in zip(columns, CHANGES, strict=True):
        column.metric(t(f"compare.change_{change}"), counts[change])

    chosen = st.multiselect(
        t("compare.change_filter"),
        list(CHANGES),
        format_func=option_labels(list(CHANGES), lambda change: t(f"compare.change_{change}")),
        key=state.COMPARE_CHANGE,
    )
    frame = comparison.examples
    shown = frame[frame["change"].isin(chosen)] if chosen else frame
    st.dataframe(shown, hide_index=True, width="stretch", key=state.COMPARE_EXAMPLES_TABLE)
    csv_download(
        shown, file_name="run-comparison-examples.csv", key=state.COMPARE_EXAMPLES_DOWNLOAD
    )


def _neighbours(store: RunStore, comparison: RunComparison, record: RunRecord) -> None:
    """List the training rows of ``record`` nearest to one of its flagged validation rows."""
    st.subheader(t("compare.neighbours_title", run=record.name))
    frame = comparison.examples
    flagged = frame[frame[f"flagged[{record.run_id}]"]]
    if flagged.empty:
        st.info(t("compare.no_flagged"))
        return
    rows = [int(row) for row in flagged["row_number"]]
    ensure_choice(state.COMPARE_NEIGHBOUR_ROW, rows, rows[0])
    row = st.selectbox(
        t("compare.neighbour_row"),
        rows,
        key=state.COMPARE_NEIGHBOUR_ROW,
        help=t("compare.neighbour_row_help"),
    )
    example = flagged[flagged["row_number"] == row].iloc[0]
    st.text(f"{example.get('text', '')}\n{example.get('text_pair', '') or ''}")

    config = ClassifierTrainConfig.from_dict(store.config(record.run_id))
    try:
        with st.spinner(t("compare.embedding")):
            index = training_index_cached(
                str(store.home), record.run_id, config.model, config.max_length
            )
            encoder = load_frozen_encoder(config.model, config.max_length)
            issues = load_run_label_issues(store, record.run_id)
            flagged_rows = (
                [issues.row_numbers[i] for i in range(len(issues)) if issues.is_issue[i]]
                if issues is not None
                else []
            )
            neighbours = nearest_training_rows(
                index,
                encoder,
                str(example["text"]),
                example.get("text_pair") if "text_pair" in example else None,
                flagged_label_rows=flagged_rows,
            )
    except (TrainExamplesError, ValueError, OSError) as error:
        st.warning(t("compare.neighbours_failed", error=escape_markdown(error)))
        return
    if issues is None:
        st.caption(t("compare.no_issue_marks"))
    st.dataframe(neighbours, hide_index=True, width="stretch")
    csv_download(
        neighbours,
        file_name=f"{record.run_id}-row-{row}-neighbours.csv",
        key=state.COMPARE_NEIGHBOURS_DOWNLOAD,
    )


def main() -> None:
    st.title(t("compare.title"))
    st.caption(t("compare.intro"))
    store = get_store()
    records = _choose_runs(store)
    if records is None:
        return
    comparison = _comparison(store, records)
    if comparison is None:
        return
    _summary(comparison)
    _examples(comparison, records)
    _neighbours(store, comparison, records[-1])


main()
