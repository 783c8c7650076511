"""Runs page: every run of the store, with filters, details, provenance and actions.

Actions on the selected run: rename, delete (after a confirmation), reproduce
(start a new run with the same settings), download its HTML report and its
review marks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import (
    csv_download,
    ensure_choice,
    ensure_value,
    escape_markdown,
    option_labels,
    run_label,
)
from dashboard.i18n import t
from dashboard.services import (
    get_store,
    list_runs,
    load_run_model,
    predictions_cached,
    reproduce_run,
)
from halluscope.data import DataError
from halluscope.models import ModelError
from halluscope.report import ReportOptions, build_report
from halluscope.runs import STATUSES, RunNotFoundError, RunRecord, RunStore, list_marks, marks_frame
from halluscope.runs.provenance import data_changed, read_provenance

SORT_COLUMNS = ["created", "name", "status", "kind", "model", "accuracy", "f1_macro", "auroc"]
# Settings shown in the run table's settings column, in this order. (A bare
# string here would be drawn on the page by Streamlit's "magic".)
SETTING_KEYS = ("learning_rate", "epochs", "batch_size", "max_length", "seed")


def _settings_summary(config: dict[str, Any]) -> str:
    parts = [f"{key}={config[key]}" for key in SETTING_KEYS if config.get(key) is not None]
    return ", ".join(parts)


def _metric(record: RunRecord, key: str) -> float | None:
    value = record.metrics.get(key)
    return float(value) if isinstance(value, int | float) else None


def runs_frame(store: RunStore, records: list[RunRecord]) -> pd.DataFrame:
    """Return one row per run with status, kind, model, data, settings, key metrics and time."""
    rows = []
    for record in records:
        rows.append(
            {
                "name": record.name,
                "run_id": record.run_id,
                "status": record.status,
                "kind": record.kind,
                "model": record.model,
                "data": Path(record.data).name,
                "settings": _settings_summary(store.config(record.run_id)),
                "accuracy": _metric(record, "accuracy"),
                "f1_macro": _metric(record, "f1_macro"),
                "auroc": _metric(record, "auroc"),
                "created": record.created_at,
            }
        )
    columns = ["name", "run_id", "status", "kind", "model", "data", "settings", "accuracy",
               "f1_macro", "auroc", "created"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def filter_runs(
    frame: pd.DataFrame, statuses: list[str], kinds: list[str], text: str
) -> pd.DataFrame:
    """Keep the rows with one of ``statuses`` and ``kinds`` (empty keeps all) that contain ``text``.

    The text is matched case-insensitively against name, run id, model and data.
    """
    keep = pd.Series(True, index=frame.index)
    if statuses:
        keep &= frame["status"].isin(statuses)
    if kinds:
        keep &= frame["kind"].isin(kinds)
    needle = text.strip().lower()
    if needle:
        haystack = frame[["name", "run_id", "model", "data"]].astype(str).agg(" ".join, axis=1)
        keep &= haystack.str.lower().str.contains(needle, regex=False)
    return frame[keep]


def _filters(frame: pd.DataFrame) -> pd.DataFrame:
    """Show the filter and sort widgets and return the filtered, sorted table."""
    status_box, kind_box, text_box = st.columns([1.2, 1.0, 1.4])
    statuses = status_box.multiselect(
        t("runs_page.filter_status"),
        list(STATUSES),
        format_func=option_labels(list(STATUSES), lambda status: t(f"status.{status}")),
        placeholder=t("runs_page.filter_all"),
        key=state.RUNS_FILTER_STATUS,
    )
    kinds_present = sorted(set(frame["kind"]))
    ensure_value(state.RUNS_FILTER_KIND, [])
    st.session_state[state.RUNS_FILTER_KIND] = [
        kind for kind in st.session_state[state.RUNS_FILTER_KIND] if kind in kinds_present
    ]
    kinds = kind_box.multiselect(
        t("runs_page.filter_kind"),
        kinds_present,
        placeholder=t("runs_page.filter_all"),
        key=state.RUNS_FILTER_KIND,
    )
    text = text_box.text_input(t("runs_page.filter_text"), key=state.RUNS_FILTER_TEXT)

    sort_box, order_box = st.columns([1.0, 1.0])
    ensure_choice(state.RUNS_SORT, SORT_COLUMNS, "created")
    sort_column = sort_box.selectbox(
        t("runs_page.sort"),
        SORT_COLUMNS,
        format_func=option_labels(SORT_COLUMNS, lambda column: t(f"runs_page.col_{column}")),
        key=state.RUNS_SORT,
    )
    ensure_value(state.RUNS_SORT_DESCENDING, True)
    descending = order_box.checkbox(t("runs_page.descending"), key=state.RUNS_SORT_DESCENDING)

    filtered = filter_runs(frame, statuses, kinds, text)
    return filtered.sort_values(
        sort_column, ascending=not descending, na_position="last", kind="stable"
    )


def _run_table(table: pd.DataFrame, total: int) -> None:
    st.caption(t("runs_page.shown", shown=len(table), total=total))
    shown = table.copy()
    shown["status"] = [t(f"status.{status}") for status in shown["status"]]
    text_columns = ("name", "run_id", "status", "kind", "model", "data", "settings", "created")
    column_config = {
        column: st.column_config.TextColumn(t(f"runs_page.col_{column}")) for column in text_columns
    }
    for column in ("accuracy", "f1_macro", "auroc"):
        column_config[column] = st.column_config.NumberColumn(
            t(f"runs_page.col_{column}"), format="%.3f"
        )
    st.dataframe(shown, hide_index=True, column_config=column_config, key=state.RUNS_TABLE)
    csv_download(table, file_name="halluscope-runs.csv", key=state.RUNS_DOWNLOAD)


def _flash_message() -> None:
    message = st.session_state.pop(state.RUNS_MESSAGE, None)
    if message:
        st.success(message[1])


def _choose_run(records: list[RunRecord], visible_ids: list[str]) -> RunRecord | None:
    ids = visible_ids or [record.run_id for record in records]
    by_id = {record.run_id: record for record in records}
    ensure_choice(state.RUNS_SELECTED, ids, ids[0])
    run_id = st.selectbox(
        t("runs_page.selected"),
        ids,
        format_func=option_labels(ids, lambda value: f"{run_label(by_id[value])} · {value}"),
        key=state.RUNS_SELECTED,
    )
    return by_id[run_id]


def _rename(store: RunStore, record: RunRecord) -> None:
    if st.session_state.get(state.RUNS_NAME_FOR) != record.run_id:
        st.session_state[state.RUNS_NEW_NAME] = record.name
        st.session_state[state.RUNS_NAME_FOR] = record.run_id
    name_box, button_box = st.columns([3.0, 1.0], vertical_alignment="bottom")
    new_name = name_box.text_input(t("runs_page.new_name"), key=state.RUNS_NEW_NAME)
    if button_box.button(t("runs_page.rename"), key=state.RUNS_RENAME, icon=":material/edit:"):
        try:
            store.rename(record.run_id, new_name)
        except ValueError as error:
            st.error(escape_markdown(error))
            return
        st.session_state[state.RUNS_MESSAGE] = (
            "success",
            t("runs_page.renamed", name=escape_markdown(new_name.strip())),
        )
        st.session_state.pop(state.RUNS_NAME_FOR, None)
        st.rerun()


def _delete(store: RunStore, record: RunRecord) -> None:
    if st.session_state.get(state.RUNS_PENDING_DELETE) != record.run_id:
        if st.button(t("runs_page.delete"), key=state.RUNS_DELETE, icon=":material/delete:"):
            st.session_state[state.RUNS_PENDING_DELETE] = record.run_id
            st.rerun()
        return

    st.warning(t("runs_page.delete_question", name=escape_markdown(record.name)))
    confirm_box, cancel_box = st.columns(2)
    if confirm_box.button(
        t("runs_page.delete_confirm"), key=state.RUNS_DELETE_CONFIRM, type="primary"
    ):
        st.session_state.pop(state.RUNS_PENDING_DELETE, None)
        try:
            store.delete(record.run_id)
        except (ValueError, RunNotFoundError) as error:
            st.error(escape_markdown(error))
            return
        st.session_state[state.RUNS_MESSAGE] = (
            "success",
            t("runs_page.deleted", name=escape_markdown(record.name)),
        )
        st.rerun()
    if cancel_box.button(t("runs_page.delete_cancel"), key=state.RUNS_DELETE_CANCEL):
        st.session_state.pop(state.RUNS_PENDING_DELETE, None)
        st.rerun()


def _reproduce(store: RunStore, record: RunRecord) -> None:
    if data_changed(store, record.run_id):
        st.warning(t("runs_page.data_changed"))
    if st.button(t("runs_page.reproduce"), key=state.RUNS_REPRODUCE, icon=":material/replay:"):
        try:
            new_record = reproduce_run(store, record.run_id)
        except (ValueError, OSError) as error:
            st.error(t("runs_page.reproduce_failed", error=escape_markdown(error)))
            return
        st.session_state[state.TRAIN_WATCHED_RUN] = new_record.run_id
        st.session_state[state.TRAIN_RUN] = new_record.run_id
        st.success(t("runs_page.reproduced", run_id=new_record.run_id))
        st.page_link(
            "views/train.py", label=t("runs_page.go_train"), icon=":material/arrow_forward:"
        )


def _report(store: RunStore, record: RunRecord) -> None:
    st.caption(t("runs_page.report_help"))
    if st.button(
        t("runs_page.report_build"), key=state.RUNS_REPORT_BUILD, icon=":material/description:"
    ):
        progress_bar = st.progress(0.0, text=t("runs_page.report_progress", done=0, total=1))

        def show_progress(done: int, total: int) -> None:
            fraction = min(done / total, 1.0) if total else 1.0
            progress_bar.progress(
                fraction, text=t("runs_page.report_progress", done=done, total=total)
            )

        arguments: dict[str, Any] = {"options": ReportOptions(), "progress": show_progress}
        try:
            model_dir = store.run_dir(record.run_id) / "model"
            if (
                record.kind == "classification"
                and record.status == "completed"
                and model_dir.is_dir()
            ):
                arguments["predictions"] = predictions_cached(str(store.home), record.run_id)
                arguments["model"], arguments["tokenizer"] = load_run_model(str(model_dir))
            html_text = build_report(store, record.run_id, **arguments)
        except (DataError, ModelError, ValueError, OSError) as error:
            progress_bar.empty()
            st.error(t("runs_page.report_failed", error=escape_markdown(error)))
            return
        progress_bar.empty()
        st.session_state[state.RUNS_REPORT] = (record.run_id, html_text)

    built = st.session_state.get(state.RUNS_REPORT)
    if built and built[0] == record.run_id:
        st.download_button(
            t("runs_page.report_download"),
            data=built[1].encode("utf-8"),
            file_name=f"halluscope-report-{record.run_id}.html",
            mime="text/html",
            key=state.RUNS_REPORT_DOWNLOAD,
            icon=":material/download:",
            on_click="ignore",
        )


def _provenance(store: RunStore, record: RunRecord) -> None:
    provenance = read_provenance(store, record.run_id)
    if not provenance:
        st.caption(t("runs_page.no_provenance"))
        return
    data = provenance.get("data") or {}
    model = provenance.get("base_model") or {}
    rows = [
        (t("runs_page.prov_recorded"), provenance.get("recorded_at")),
        (t("runs_page.prov_data_path"), data.get("path")),
        (t("runs_page.prov_data_sha256"), data.get("sha256") or data.get("error")),
        (t("runs_page.prov_model"), model.get("reference")),
    ]
    for name, digest in (model.get("weights_sha256") or {}).items():
        rows.append((t("runs_page.prov_weights", file=name), digest))
    if model.get("error"):
        rows.append((t("runs_page.prov_model_note"), model["error"]))
    for package, version in (provenance.get("versions") or {}).items():
        rows.append((t("runs_page.prov_version", package=package), version or "–"))
    frame = pd.DataFrame(
        [(field, "" if value is None else str(value)) for field, value in rows],
        columns=[t("runs_page.prov_field"), t("runs_page.prov_value")],
    )
    st.dataframe(frame, hide_index=True)
    if data_changed(store, record.run_id):
        st.warning(t("runs_page.data_changed"))


def _details(store: RunStore, record: RunRecord) -> None:
    st.subheader(t("runs_page.details"))
    st.caption(
        t(
            "runs_page.summary",
            kind=record.kind,
            status=t(f"status.{record.status}"),
            model=record.model,
            created=record.created_at,
        )
    )
    if record.message:
        st.caption(escape_markdown(record.message))

    settings_tab, provenance_tab, metrics_tab, reviews_tab = st.tabs(
        [t("runs_page.tab_settings"), t("runs_page.tab_provenance"),
         t("runs_page.tab_metrics"), t("runs_page.tab_reviews")]
    )  # fmt: skip
    with settings_tab:
        st.json(store.config(record.run_id), expanded=True)
    with provenance_tab:
        _provenance(store, record)
    with metrics_tab:
        if record.metrics:
            st.json(record.metrics, expanded=True)
        else:
            st.caption(t("runs_page.no_metrics"))
    with reviews_tab:
        marks = list_marks(store, record.run_id)
        if marks:
            frame = marks_frame(marks)
            st.dataframe(frame, hide_index=True)
            csv_download(
                frame,
                file_name=f"reviews-{record.run_id}.csv",
                key=state.RUNS_REVIEWS_DOWNLOAD,
                label=t("review.download", count=len(marks)),
            )
        else:
            st.caption(t("runs_page.no_reviews"))

    st.subheader(t("runs_page.actions"))
    _rename(store, record)
    _reproduce(store, record)
    _report(store, record)
    _delete(store, record)


def main() -> None:
    st.title(t("runs_page.title"))
    st.caption(t("runs_page.intro"))
    _flash_message()
    store = get_store()

    records = list_runs(store)
    if not records:
        st.info(t("runs_page.no_runs"))
        st.page_link(
            "views/train.py", label=t("runs_page.go_train"), icon=":material/arrow_forward:"
        )
        return

    frame = runs_frame(store, records)
    table = _filters(frame)
    _run_table(table, len(frame))
    record = _choose_run(records, list(table["run_id"]))
    if record is not None:
        _details(store, record)


main()
