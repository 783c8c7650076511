"""Predict page: run a completed run on its validation split or an uploaded file.

Predictions come from ``halluscope.workflows.predict_run`` (cached per run and
source) with the detector's flags. The page filters and downloads the table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import (
    choose_completed_run,
    column_label,
    csv_download,
    ensure_choice,
    ensure_value,
    escape_markdown,
    option_labels,
    uploaded_file,
)
from dashboard.i18n import t
from dashboard.services import (
    file_identity,
    get_store,
    predictions_cached,
    read_table_cached,
)
from halluscope.data import DataError, guess_classification_schema
from halluscope.evaluate.curves import flag_by_threshold
from halluscope.models import ModelError

SOURCES = ("validation", "upload")


def _uploaded_file() -> tuple[Path, str] | None:
    return uploaded_file(
        label=t("predict.upload"),
        hint=t("predict.upload_hint"),
        uploader_key=state.PREDICT_UPLOAD,
        remembered_key=state.UPLOADED_PREDICT_FILE,
    )


def _file_columns(path: Path, display_name: str) -> dict[str, str | None] | None:
    """Show column selectboxes for an uploaded file and return ``predict_run`` column arguments."""
    try:
        table = read_table_cached(str(path), file_identity(path), display_name)
    except DataError as error:
        st.error(escape_markdown(error.message))
        return None
    for warning in table.warnings:
        st.warning(escape_markdown(warning))
    columns = [str(column) for column in table.frame.columns]
    optional = [state.NO_COLUMN, *columns]

    identity = file_identity(path)
    if st.session_state.get(state.PREDICT_LOADED_FILE) != identity:
        try:
            guess = guess_classification_schema(table.frame)
            text, pair, label = guess.text, guess.text_pair, guess.label
        except DataError:
            text, pair, label = columns[0], None, None
        st.session_state[state.PREDICT_TEXT_COLUMN] = text
        st.session_state[state.PREDICT_PAIR_COLUMN] = pair or state.NO_COLUMN
        st.session_state[state.PREDICT_LABEL_COLUMN] = label or state.NO_COLUMN
        st.session_state[state.PREDICT_LOADED_FILE] = identity

    ensure_choice(state.PREDICT_TEXT_COLUMN, columns, columns[0])
    ensure_choice(state.PREDICT_PAIR_COLUMN, optional, state.NO_COLUMN)
    ensure_choice(state.PREDICT_LABEL_COLUMN, optional, state.NO_COLUMN)
    text_box, pair_box, label_box = st.columns(3)
    text = text_box.selectbox(t("data.text_column"), columns, key=state.PREDICT_TEXT_COLUMN)
    pair = pair_box.selectbox(
        t("data.pair_column"),
        optional,
        format_func=option_labels(optional, column_label),
        key=state.PREDICT_PAIR_COLUMN,
    )
    label = label_box.selectbox(
        t("predict.label_column"),
        optional,
        format_func=option_labels(optional, column_label),
        key=state.PREDICT_LABEL_COLUMN,
    )
    return {
        "data_path": str(path),
        "data_identity": identity,
        "text_column": text,
        "text_pair_column": None if pair == state.NO_COLUMN else pair,
        "label_column": None if label == state.NO_COLUMN else label,
    }


def _filters(table: pd.DataFrame) -> pd.DataFrame:
    """Show the filters and return the rows that pass them."""
    has_gold = "correct" in table.columns
    ensure_value(state.PREDICT_ONLY_FLAGGED, False)
    ensure_value(state.PREDICT_ONLY_WRONG, False)
    ensure_value(state.PREDICT_LABELS, [])
    labels = sorted(table["predicted"].unique().tolist())
    st.session_state[state.PREDICT_LABELS] = [
        label for label in st.session_state[state.PREDICT_LABELS] if label in labels
    ]

    flagged_box, wrong_box, labels_box = st.columns([1, 1, 2])
    only_flagged = flagged_box.checkbox(t("predict.only_flagged"), key=state.PREDICT_ONLY_FLAGGED)
    only_wrong = wrong_box.checkbox(
        t("predict.only_wrong"),
        key=state.PREDICT_ONLY_WRONG,
        disabled=not has_gold,
        help=None if has_gold else t("predict.no_gold"),
    )
    chosen = labels_box.multiselect(
        t("predict.predicted_labels"),
        labels,
        key=state.PREDICT_LABELS,
        placeholder=t("predict.all_labels"),
    )

    keep = pd.Series(True, index=table.index)
    if only_flagged:
        keep &= table["flagged"].astype(bool)
    if only_wrong and has_gold:
        keep &= ~table["correct"].astype(bool)
    if chosen:
        keep &= table["predicted"].isin(chosen)
    return table[keep]


def _show_summary(summary: dict, table: pd.DataFrame) -> None:
    examples, flagged, accuracy = st.columns(3)
    examples.metric(t("predict.examples"), f"{len(table):,}")
    flagged_count = int(table["flagged"].sum())
    share = flagged_count / len(table) if len(table) else 0.0
    flagged.metric(t("predict.flagged"), f"{flagged_count:,} ({share:.1%})")
    if isinstance(summary.get("accuracy"), int | float):
        accuracy.metric(t("predict.accuracy"), f"{summary['accuracy']:.3f}")


def _column_config(table: pd.DataFrame) -> dict:
    config = {
        "row_number": st.column_config.NumberColumn(t("predict.col_row"), format="%d"),
        "text": st.column_config.TextColumn(t("predict.col_text"), width="large"),
        "text_pair": st.column_config.TextColumn(t("predict.col_text_pair"), width="medium"),
        "predicted": st.column_config.TextColumn(t("predict.col_predicted")),
        "gold": st.column_config.TextColumn(t("predict.col_gold")),
        "confidence": st.column_config.ProgressColumn(
            t("predict.col_confidence"), min_value=0.0, max_value=1.0, format="%.3f"
        ),
        "flagged": st.column_config.CheckboxColumn(t("predict.col_flagged")),
        "flag_score": st.column_config.NumberColumn(t("predict.col_flag_score"), format="%.3f"),
        "flag_reason": st.column_config.TextColumn(t("predict.col_flag_reason"), width="large"),
        "correct": st.column_config.CheckboxColumn(t("predict.col_correct")),
    }
    for column in table.columns:
        if column.startswith("p("):
            config[column] = st.column_config.NumberColumn(column, format="%.3f")
    config["margin"] = st.column_config.NumberColumn(
        t("predict.col_margin"), format="%.3f", help=t("predict.col_margin_help")
    )
    config["truncated"] = st.column_config.CheckboxColumn(t("predict.col_truncated"))
    return {key: value for key, value in config.items() if key in table.columns}


# The flag and the prediction come first, so a reviewer sees them without
# scrolling past the (long) texts.
LEADING_COLUMNS = (
    "row_number",
    "flagged",
    "flag_score",
    "flag_reason",
    "predicted",
    "gold",
    "correct",
    "confidence",
)


def _column_order(table: pd.DataFrame) -> list[str]:
    leading = [column for column in LEADING_COLUMNS if column in table.columns]
    return leading + [column for column in table.columns if column not in leading]


def main() -> None:
    st.title(t("predict.title"))
    st.caption(t("predict.intro"))
    store = get_store()

    record = choose_completed_run(store, key=state.PREDICT_RUN)
    if record is None:
        return

    ensure_value(state.PREDICT_SOURCE, "validation")
    source = st.radio(
        t("predict.source"),
        SOURCES,
        format_func=option_labels(SOURCES, lambda value: t(f"predict.source_{value}")),
        key=state.PREDICT_SOURCE,
        horizontal=True,
    )
    arguments: dict[str, str | None] = {}
    source_name = "validation"
    if source == "upload":
        chosen = _uploaded_file()
        if chosen is None:
            return
        columns = _file_columns(*chosen)
        if columns is None:
            return
        arguments = columns
        source_name = Path(chosen[1]).stem

    try:
        with st.spinner(t("predict.running")):
            table, summary = predictions_cached(str(store.home), record.run_id, **arguments)
    except (DataError, ModelError, ValueError, FileNotFoundError) as error:
        st.error(escape_markdown(getattr(error, "message", None) or error))
        return

    rule = st.session_state.get(state.QUALITY_FLAG_RULE)
    if rule is not None and rule[0] == record.run_id:
        _, score, threshold = rule
        table = flag_by_threshold(table, score, threshold)
        st.caption(t("predict.threshold_rule", score=score, threshold=threshold))
    _show_summary(summary, table)
    filtered = _filters(table)
    st.caption(t("predict.shown", shown=len(filtered), total=len(table)))
    st.dataframe(
        filtered,
        hide_index=True,
        column_config=_column_config(filtered),
        column_order=_column_order(filtered),
        height=480,
    )
    csv_download(
        filtered,
        file_name=f"predictions-{record.run_id}-{source_name}.csv",
        key=state.PREDICT_DOWNLOAD,
    )
    st.page_link("views/inspect.py", label=t("predict.go_inspect"), icon=":material/arrow_forward:")


main()
