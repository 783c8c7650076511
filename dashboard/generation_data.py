"""The Data page's section for the generative path: map question, answer and context columns.

A valid mapping becomes the session's ``GenerationSelection``, which the
Train page fine-tunes a causal LM on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.charts import bar_figure
from dashboard.components import column_label, ensure_choice, escape_markdown, option_labels
from dashboard.i18n import t
from dashboard.services import GenerationSelection, file_identity
from halluscope.data import DataError, GenerationSchema, guess_generation_schema, prepare_generation

# Answers longer than this many words are counted in the last bar of the length chart.
_LENGTH_BINS = (0, 1, 2, 3, 5, 8, 13, 21, 10_000)


def _reset_mapping(frame: pd.DataFrame) -> None:
    """Set the column selectboxes to the guessed schema (first columns if nothing fits)."""
    columns = [str(column) for column in frame.columns]
    try:
        guess = guess_generation_schema(frame)
    except DataError:
        guess = GenerationSchema(prompt=columns[0], answer=columns[-1])
    st.session_state[state.DATA_PROMPT_COLUMN] = guess.prompt
    st.session_state[state.DATA_ANSWER_COLUMN] = guess.answer or columns[-1]
    st.session_state[state.DATA_CONTEXT_COLUMN] = guess.context or state.NO_COLUMN


def _column_mapping(table: Any, file_key: str) -> GenerationSchema | None:
    columns = [str(column) for column in table.frame.columns]
    if len(columns) < 2:
        st.error(t("data.too_few_columns", columns=escape_markdown(", ".join(columns))))
        return None
    if st.session_state.get(state.DATA_GENERATION_LOADED_FILE) != file_key:
        _reset_mapping(table.frame)
        st.session_state[state.DATA_GENERATION_LOADED_FILE] = file_key

    st.subheader(t("data.mapping"))
    st.caption(t("generation_data.mapping_help"))
    prompt_column, answer_column, context_column = st.columns(3)
    optional = [state.NO_COLUMN, *columns]
    ensure_choice(state.DATA_PROMPT_COLUMN, columns, columns[0])
    ensure_choice(state.DATA_ANSWER_COLUMN, columns, columns[-1])
    ensure_choice(state.DATA_CONTEXT_COLUMN, optional, state.NO_COLUMN)
    prompt = prompt_column.selectbox(
        t("generation_data.prompt_column"),
        columns,
        key=state.DATA_PROMPT_COLUMN,
        help=t("generation_data.prompt_column_help"),
    )
    answer = answer_column.selectbox(
        t("generation_data.answer_column"),
        columns,
        key=state.DATA_ANSWER_COLUMN,
        help=t("generation_data.answer_column_help"),
    )
    context = context_column.selectbox(
        t("generation_data.context_column"),
        optional,
        format_func=option_labels(optional, column_label),
        key=state.DATA_CONTEXT_COLUMN,
        help=t("generation_data.context_column_help"),
    )

    chosen = [prompt, answer] + ([context] if context != state.NO_COLUMN else [])
    if len(set(chosen)) != len(chosen):
        st.error(t("data.same_column"))
        return None
    return GenerationSchema(
        prompt=prompt, answer=answer, context=None if context == state.NO_COLUMN else context
    )


def _show_summary(data: Any) -> None:
    st.subheader(t("data.summary"))
    answers = list(data.answers or ())
    blank = sum(1 for answer in answers if not answer.strip())
    rows_metric, blank_metric, context_metric = st.columns(3)
    rows_metric.metric(t("data.rows_kept"), f"{len(data.prompts):,}")
    blank_metric.metric(t("generation_data.blank_answers"), f"{blank:,}")
    with_context = sum(1 for context in data.contexts or () if context.strip())
    context_metric.metric(t("generation_data.with_context"), f"{with_context:,}")
    for warning in data.warnings:
        st.warning(escape_markdown(warning))

    lengths = pd.cut(
        pd.Series([len(answer.split()) for answer in answers], dtype="int64"),
        bins=_LENGTH_BINS,
        right=False,
    ).value_counts(sort=False)
    labels = [
        f"{int(interval.left)}" if interval.right - interval.left == 1
        else f"{int(interval.left)}–{int(interval.right) - 1}"
        for interval in lengths.index
    ]  # fmt: skip
    labels[-1] = f"{int(lengths.index[-1].left)}+"
    st.plotly_chart(
        bar_figure(
            labels,
            lengths.to_list(),
            x_title=t("generation_data.axis_answer_words"),
            y_title=t("data.axis_rows"),
        ),
        key=state.DATA_ANSWER_LENGTH_CHART,
    )


def show_generation_data(table: Any, path: Path, display_name: str) -> None:
    """Map the columns of a loaded table for the generative path and store the selection."""
    schema = _column_mapping(table, file_identity(path))
    if schema is None:
        st.session_state[state.GENERATION_SELECTION] = None
        return

    try:
        data = prepare_generation(table, schema)
    except DataError as error:
        st.error(escape_markdown(error.message))
        st.session_state[state.GENERATION_SELECTION] = None
        return
    _show_summary(data)

    st.session_state[state.GENERATION_SELECTION] = GenerationSelection(
        path=str(path),
        display_name=display_name,
        prompt_column=schema.prompt,
        answer_column=schema.answer,
        context_column=schema.context,
        rows=len(data.prompts),
    )
    st.success(t("data.ready", name=escape_markdown(display_name), rows=len(data.prompts)))
    st.page_link("views/train.py", label=t("data.go_train"), icon=":material/arrow_forward:")
