"""Data page: pick the task, the bundled demo or an uploaded file, map its columns, validate it.

For classification, a valid file and its column mapping become the session's
``DataSelection``; for generation, its ``GenerationSelection`` (see
``dashboard.generation_data``). The Train page trains on the one of the chosen task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.charts import bar_figure
from dashboard.components import (
    column_label,
    csv_download,
    ensure_choice,
    ensure_value,
    escape_markdown,
    option_labels,
    uploaded_file,
)
from dashboard.generation_data import show_generation_data
from dashboard.i18n import t
from dashboard.services import (
    DataSelection,
    demo_data_path,
    file_identity,
    read_table_cached,
)
from halluscope.data import (
    FAITHDIAL_BEGIN_LABEL_MAP,
    ClassificationSchema,
    DataError,
    guess_classification_schema,
    prepare_classification,
)

TASKS = ("classification", "generation")
SOURCES = ("demo", "upload")
LABEL_MAP_PRESETS = ("none", "faithdial", "custom")
PREVIEW_ROWS = 1_000


def _choose_task() -> str:
    """Show the task choice and return ``"classification"`` or ``"generation"``."""
    ensure_value(state.DATA_TASK, "classification")
    return st.radio(
        t("data.task"),
        TASKS,
        format_func=option_labels(TASKS, lambda value: t(f"data.task_{value}")),
        key=state.DATA_TASK,
        horizontal=True,
        help=t("data.task_help"),
    )


def _choose_file(task: str) -> tuple[Path, str] | None:
    """Show the source choice and return ``(path, display name)`` of the file to use, or None."""
    ensure_value(state.DATA_SOURCE, "demo")
    source = st.radio(
        t("data.source"),
        SOURCES,
        format_func=option_labels(SOURCES, lambda value: t(f"data.source_{value}")),
        key=state.DATA_SOURCE,
        horizontal=True,
    )

    if source == "demo":
        try:
            path = demo_data_path(task)
        except (FileNotFoundError, DataError) as error:
            st.error(t("data.demo_missing", error=escape_markdown(error)))
            return None
        st.caption(t(f"data.demo_caption_{task}"))
        return path, path.name

    return uploaded_file(
        label=t("data.upload"),
        hint=t("data.upload_hint"),
        uploader_key=state.DATA_UPLOAD,
        remembered_key=state.UPLOADED_DATA_FILE,
    )


def _show_table(table: Any, display_name: str) -> None:
    frame: pd.DataFrame = table.frame
    details = [t("data.format", format=table.format)]
    if table.encoding:
        details.append(t("data.encoding", encoding=table.encoding))
    if table.delimiter:
        details.append(t("data.delimiter", delimiter=escape_markdown(repr(table.delimiter))))
    st.caption(
        t(
            "data.table_caption",
            name=escape_markdown(display_name),
            rows=len(frame),
            columns=len(frame.columns),
        )
        + " · "
        + " · ".join(details)
    )
    for warning in table.warnings:
        st.warning(escape_markdown(warning))

    if len(frame) > PREVIEW_ROWS:
        st.caption(t("data.preview_cut", shown=PREVIEW_ROWS, rows=len(frame)))
    st.dataframe(frame.head(PREVIEW_ROWS), hide_index=True, height=280)
    csv_download(frame, file_name=f"{Path(display_name).stem}.csv", key=state.DATA_DOWNLOAD)


def _reset_mapping(frame: pd.DataFrame) -> None:
    """Set the column selectboxes to the guessed schema (first columns if nothing fits)."""
    columns = [str(column) for column in frame.columns]
    try:
        guess = guess_classification_schema(frame)
    except DataError:
        guess = ClassificationSchema(
            text=columns[0], label=columns[-1], text_pair=None
        ) if len(columns) >= 2 else None  # fmt: skip
    if guess is None:
        return
    st.session_state[state.DATA_TEXT_COLUMN] = guess.text
    st.session_state[state.DATA_PAIR_COLUMN] = guess.text_pair or state.NO_COLUMN
    st.session_state[state.DATA_LABEL_COLUMN] = guess.label


def _column_mapping(table: Any, file_key: str) -> ClassificationSchema | None:
    """Show the column selectboxes (pre-filled by the guess) and return the schema or None."""
    columns = [str(column) for column in table.frame.columns]
    if len(columns) < 2:
        st.error(t("data.too_few_columns", columns=escape_markdown(", ".join(columns))))
        return None
    if st.session_state.get(state.DATA_LOADED_FILE) != file_key:
        _reset_mapping(table.frame)
        st.session_state[state.DATA_LOADED_FILE] = file_key

    st.subheader(t("data.mapping"))
    st.caption(t("data.mapping_help"))
    text_column, pair_column, label_column = st.columns(3)
    ensure_choice(state.DATA_TEXT_COLUMN, columns, columns[0])
    ensure_choice(state.DATA_PAIR_COLUMN, [state.NO_COLUMN, *columns], state.NO_COLUMN)
    ensure_choice(state.DATA_LABEL_COLUMN, columns, columns[-1])
    text = text_column.selectbox(
        t("data.text_column"), columns, key=state.DATA_TEXT_COLUMN, help=t("data.text_column_help")
    )
    pair = pair_column.selectbox(
        t("data.pair_column"),
        [state.NO_COLUMN, *columns],
        format_func=option_labels([state.NO_COLUMN, *columns], column_label),
        key=state.DATA_PAIR_COLUMN,
        help=t("data.pair_column_help"),
    )
    label = label_column.selectbox(t("data.label_column"), columns, key=state.DATA_LABEL_COLUMN)

    chosen = [text, label] + ([pair] if pair != state.NO_COLUMN else [])
    if len(set(chosen)) != len(chosen):
        st.error(t("data.same_column"))
        return None
    return ClassificationSchema(
        text=text, label=label, text_pair=None if pair == state.NO_COLUMN else pair
    )


def _label_map() -> tuple[bool, dict[str, str | None] | None]:
    """Show the label-map choice and return ``(ok, label map or None)``."""
    ensure_value(state.DATA_LABEL_MAP, "none")
    preset = st.selectbox(
        t("data.label_map"),
        LABEL_MAP_PRESETS,
        format_func=option_labels(LABEL_MAP_PRESETS, lambda value: t(f"data.label_map_{value}")),
        key=state.DATA_LABEL_MAP,
        help=t("data.label_map_help"),
    )
    if preset == "none":
        return True, None
    if preset == "faithdial":
        mapping = dict(FAITHDIAL_BEGIN_LABEL_MAP)
        st.caption(t("data.label_map_shown"))
        st.dataframe(
            pd.DataFrame({"raw": list(mapping), "label": list(mapping.values())}),
            hide_index=True,
            column_config={
                "raw": st.column_config.TextColumn(t("data.column_raw_label")),
                "label": st.column_config.TextColumn(t("data.axis_label")),
            },
        )
        return True, mapping

    ensure_value(state.DATA_LABEL_MAP_JSON, '{"yes": "supported", "no": "hallucinated"}')
    raw = st.text_area(
        t("data.label_map_json"), key=state.DATA_LABEL_MAP_JSON, help=t("data.label_map_json_help")
    )
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as error:
        st.error(
            t("data.label_map_invalid", error=escape_markdown(f"{error.msg} (line {error.lineno})"))
        )
        return False, None
    if not isinstance(mapping, dict) or not mapping:
        st.error(t("data.label_map_not_object"))
        return False, None
    return True, {str(key): None if value is None else str(value) for key, value in mapping.items()}


def _show_summary(data: Any, schema: ClassificationSchema) -> None:
    st.subheader(t("data.summary"))
    counts = pd.Series(data.labels).value_counts().sort_index()
    class_counts = pd.DataFrame(
        {
            "label": [data.label_names[int(label_id)] for label_id in counts.index],
            "rows": counts.to_numpy(),
        }
    )
    dropped = data.dropped if isinstance(data.dropped, int) else len(data.dropped)

    rows_metric, classes_metric, dropped_metric = st.columns(3)
    rows_metric.metric(t("data.rows_kept"), f"{len(data.labels):,}")
    classes_metric.metric(t("data.classes"), len(data.label_names))
    dropped_metric.metric(t("data.rows_dropped"), f"{dropped:,}")
    for warning in data.warnings:
        st.warning(escape_markdown(warning))

    chart, table = st.columns([2, 1])
    chart.plotly_chart(
        bar_figure(
            class_counts["label"].tolist(),
            class_counts["rows"].tolist(),
            x_title=t("data.axis_label"),
            y_title=t("data.axis_rows"),
        ),
        key=state.DATA_CLASS_CHART,
    )
    table.dataframe(
        class_counts,
        hide_index=True,
        column_config={
            "label": st.column_config.TextColumn(t("data.axis_label")),
            "rows": st.column_config.NumberColumn(t("data.axis_rows")),
        },
    )


def main() -> None:
    st.title(t("data.title"))
    st.caption(t("data.intro"))

    task = _choose_task()
    selection_key = state.GENERATION_SELECTION if task == "generation" else state.DATA_SELECTION
    chosen = _choose_file(task)
    if chosen is None:
        st.session_state[selection_key] = None
        return
    path, display_name = chosen

    try:
        table = read_table_cached(str(path), file_identity(path), display_name)
    except DataError as error:
        st.error(escape_markdown(error.message))
        st.session_state[selection_key] = None
        return
    _show_table(table, display_name)
    if task == "generation":
        show_generation_data(table, path, display_name)
        return

    schema = _column_mapping(table, file_identity(path))
    label_map_ok, label_map = _label_map()
    if schema is None or not label_map_ok:
        st.session_state[state.DATA_SELECTION] = None
        return

    try:
        data = prepare_classification(table, schema, label_map=label_map)
    except DataError as error:
        st.error(escape_markdown(error.message))
        st.session_state[state.DATA_SELECTION] = None
        return
    _show_summary(data, schema)

    st.session_state[state.DATA_SELECTION] = DataSelection(
        path=str(path),
        display_name=display_name,
        text_column=schema.text,
        label_column=schema.label,
        text_pair_column=schema.text_pair,
        label_map=label_map,
        rows=len(data.labels),
        label_names=tuple(data.label_names),
    )
    st.success(t("data.ready", name=escape_markdown(display_name), rows=len(data.labels)))
    st.page_link("views/train.py", label=t("data.go_train"), icon=":material/arrow_forward:")


main()
