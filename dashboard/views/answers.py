"""Answers page: a generation run answers its held-out questions, or a typed one, token by token.

Answers come from ``halluscope.answers`` and are stored in the run folder,
so they outlive the session. Each answer token is coloured by the chosen
detector's score; the Inspect answer page explains one answer in depth.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import state
from dashboard.answer_rendering import (
    answers_table,
    apply_quality_rule,
    coloured_answer,
    default_detector,
)
from dashboard.components import (
    choose_completed_run,
    csv_download,
    ensure_choice,
    ensure_value,
    escape_markdown,
)
from dashboard.i18n import t
from dashboard.services import answers_of, get_store, load_generation_model
from halluscope.answers import GenerationSettings, answer_question, answer_run
from halluscope.models import ModelError
from halluscope.runs import RunRecord, RunStore
from halluscope.training import load_generation_split

# Answers drawn with token colouring below the table; the table holds them all.
COLOURED_ANSWERS = 20
DEFAULT_LIMIT = 24


def _show_run(record: RunRecord) -> None:
    metrics = record.metrics
    columns = st.columns(3)
    if isinstance(metrics.get("eval_loss"), int | float):
        columns[0].metric(t("train.eval_loss"), f"{metrics['eval_loss']:.4f}")
    if isinstance(metrics.get("eval_perplexity"), int | float):
        columns[1].metric(t("generation_train.perplexity"), f"{metrics['eval_perplexity']:.2f}")
    if metrics.get("method") in ("lora", "full"):
        method = t(f"generation_train.method_{metrics['method']}")
        columns[2].metric(t("generation_train.method"), method)


def _sampling_settings() -> dict[str, Any]:
    """Show the decoding settings and return them as ``GenerationSettings`` keyword arguments."""
    defaults = GenerationSettings()
    ensure_value(state.ANSWERS_SAMPLE, defaults.do_sample)
    ensure_value(state.ANSWERS_TEMPERATURE, defaults.temperature)
    ensure_value(state.ANSWERS_TOP_P, defaults.top_p)
    ensure_value(state.ANSWERS_TOP_K, defaults.top_k)
    ensure_value(state.ANSWERS_SEED, defaults.seed)
    with st.expander(t("answers.sampling")):
        do_sample = st.checkbox(
            t("answers.sample"), key=state.ANSWERS_SAMPLE, help=t("answers.sample_help")
        )
        left, middle, right, seed_column = st.columns(4)
        temperature = left.number_input(
            t("answers.temperature"),
            min_value=0.05,
            max_value=5.0,
            step=0.1,
            key=state.ANSWERS_TEMPERATURE,
            disabled=not do_sample,
        )
        top_p = middle.number_input(
            t("answers.top_p"),
            min_value=0.01,
            max_value=1.0,
            step=0.05,
            key=state.ANSWERS_TOP_P,
            disabled=not do_sample,
            help=t("answers.top_p_help"),
        )
        top_k = right.number_input(
            t("answers.top_k"),
            min_value=0,
            max_value=100_000,
            step=1,
            key=state.ANSWERS_TOP_K,
            disabled=not do_sample,
            help=t("answers.top_k_help"),
        )
        seed = seed_column.number_input(
            t("answers.seed"), min_value=0, step=1, key=state.ANSWERS_SEED, disabled=not do_sample
        )
    return {
        "do_sample": bool(do_sample),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "top_k": int(top_k),
        "seed": int(seed),
    }


def _generate(store: RunStore, record: RunRecord) -> None:
    """Show the settings and the button that answers the held-out questions."""
    try:
        held_out = len(load_generation_split(store.run_dir(record.run_id)))
    except FileNotFoundError as error:
        st.error(escape_markdown(error))
        return

    ensure_value(state.ANSWERS_LIMIT, min(DEFAULT_LIMIT, held_out))
    ensure_value(state.ANSWERS_MAX_NEW_TOKENS, GenerationSettings().max_new_tokens)
    if st.session_state[state.ANSWERS_LIMIT] > held_out:
        st.session_state[state.ANSWERS_LIMIT] = held_out
    left, right = st.columns(2)
    limit = left.number_input(
        t("answers.limit", total=held_out),
        min_value=1,
        max_value=held_out,
        step=1,
        key=state.ANSWERS_LIMIT,
        help=t("answers.limit_help"),
    )
    max_new_tokens = right.number_input(
        t("answers.max_new_tokens"),
        min_value=1,
        max_value=512,
        step=8,
        key=state.ANSWERS_MAX_NEW_TOKENS,
        help=t("answers.max_new_tokens_help"),
    )
    sampling = _sampling_settings()
    if not st.button(
        t("answers.generate"), key=state.ANSWERS_GENERATE, type="primary", icon=":material/bolt:"
    ):
        return

    # Clicking any widget while this runs starts a new page run, which stops
    # this one between two batches; answers are stored only at the end.
    st.caption(t("answers.stop_hint"))
    try:
        with st.spinner(t("answers.loading_model")):
            model, tokenizer = load_generation_model(str(store.home), record.run_id)
        bar = st.progress(0.0, text=t("answers.progress", done=0, total=2 * int(limit)))

        def report(done: int, total: int) -> None:
            bar.progress(done / total, text=t("answers.progress", done=done, total=total))

        answers = answer_run(
            store,
            record.run_id,
            limit=int(limit),
            model=model,
            tokenizer=tokenizer,
            settings=GenerationSettings(max_new_tokens=int(max_new_tokens), **sampling),
            progress=report,
        )
    except (ModelError, ValueError, FileNotFoundError, OSError) as error:
        st.error(t("answers.failed", error=escape_markdown(error)))
        return
    st.success(t("answers.done", count=len(answers)))


def _ask(store: RunStore, record: RunRecord) -> None:
    """Show the box that asks the model a typed question about a pasted context."""
    with st.expander(t("answers.ask_title"), expanded=False):
        ensure_value(state.ANSWERS_CONTEXT, "")
        ensure_value(state.ANSWERS_QUESTION, "")
        context = st.text_area(
            t("answers.context"), key=state.ANSWERS_CONTEXT, help=t("answers.context_help")
        )
        question = st.text_input(t("answers.question"), key=state.ANSWERS_QUESTION)
        if not st.button(t("answers.ask"), key=state.ANSWERS_ASK, icon=":material/send:"):
            return
        if not question.strip():
            st.error(t("answers.question_missing"))
            return
        try:
            with st.spinner(t("answers.answering")):
                model, tokenizer = load_generation_model(str(store.home), record.run_id)
                answer = answer_question(
                    store, record.run_id, question, context, model=model, tokenizer=tokenizer
                )
        except (ModelError, ValueError, OSError) as error:
            st.error(t("answers.failed", error=escape_markdown(error)))
            return
        detector = next(iter(answer["detectors"]), "")
        st.html(coloured_answer(answer, detector))
        st.caption(t("answers.asked", index=answer["index"]))


def _show_answers(store: RunStore, record: RunRecord) -> None:
    records = answers_of(store, record.run_id)
    st.subheader(t("answers.stored"))
    if not records:
        st.info(t("answers.none_yet"))
        return

    detectors = list(records[0]["detectors"])
    left, right = st.columns([2, 1])
    ensure_choice(state.ANSWERS_DETECTOR, detectors, default_detector(detectors))
    detector = left.selectbox(
        t("answers.detector"),
        detectors,
        key=state.ANSWERS_DETECTOR,
        help=t("answers.detector_help"),
    )
    ensure_value(state.ANSWERS_ONLY_FLAGGED, False)
    only_flagged = right.checkbox(t("answers.only_flagged"), key=state.ANSWERS_ONLY_FLAGGED)
    records = apply_quality_rule(records, record.run_id, detector)

    table = answers_table(records, detector)
    flagged = int(table["flagged"].fillna(False).astype(bool).sum())
    st.caption(t("answers.summary", total=len(table), flagged=flagged, detector=detector))
    shown = [
        answer
        for answer in records
        if not only_flagged or answer["detectors"].get(detector, {}).get("flagged")
    ]
    table = answers_table(shown, detector)
    displayed = table.assign(source=[t(f"answers.source_{source}") for source in table["source"]])
    st.dataframe(
        displayed,
        hide_index=True,
        column_config={
            "index": st.column_config.NumberColumn(t("answers.col_index")),
            "source": st.column_config.TextColumn(t("answers.col_source")),
            "row_number": st.column_config.NumberColumn(t("answers.col_row")),
            "question": st.column_config.TextColumn(t("answers.col_question")),
            "answer": st.column_config.TextColumn(t("answers.col_answer")),
            "reference": st.column_config.TextColumn(t("answers.col_reference")),
            "score": st.column_config.NumberColumn(t("answers.col_score"), format="%.3f"),
            "flagged": st.column_config.CheckboxColumn(t("answers.col_flagged")),
            "reason": st.column_config.TextColumn(t("answers.col_reason")),
        },
        key=state.ANSWERS_TABLE,
    )
    csv_download(table, file_name=f"answers-{record.run_id}.csv", key=state.ANSWERS_DOWNLOAD)

    st.markdown(f"**{t('answers.coloured', count=min(len(shown), COLOURED_ANSWERS))}**")
    st.caption(t("answers.legend"))
    for answer in shown[:COLOURED_ANSWERS]:
        with st.container(border=True):
            st.markdown(
                t(
                    "answers.item",
                    index=answer["index"],
                    question=escape_markdown(answer["question"]),
                )
            )
            st.html(coloured_answer(answer, detector))
            if answer.get("reference"):
                st.caption(t("answers.reference", reference=escape_markdown(answer["reference"])))
    st.page_link(
        "views/inspect_answer.py", label=t("answers.go_inspect"), icon=":material/arrow_forward:"
    )


def main() -> None:
    st.title(t("answers.title"))
    st.caption(t("answers.intro"))
    store = get_store()
    record = choose_completed_run(store, key=state.ANSWERS_RUN, kind="generation")
    if record is None:
        return
    _show_run(record)
    with st.container(border=True):
        _generate(store, record)
    _ask(store, record)
    _show_answers(store, record)


main()
