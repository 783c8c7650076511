"""Review panel: mark a flagged example as a confirmed hallucination or a false alarm.

The marks are stored in the run store (``halluscope.runs.reviews``), so they
survive a restart of the dashboard and are shared by every session that opens
the same run.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import csv_download, escape_markdown, option_labels
from dashboard.i18n import t
from halluscope.runs import (
    VERDICTS,
    RunStore,
    clear_mark,
    get_mark,
    list_marks,
    marks_frame,
    set_mark,
)
from halluscope.runs.reviews import MAX_NOTE_CHARS

VERDICT_OPTIONS = [state.NO_VERDICT, *VERDICTS]


def verdict_label(verdict: str) -> str:
    """Return the translated label of a verdict option."""
    if verdict == state.NO_VERDICT:
        return t("review.verdict_none")
    return t(f"review.verdict_{verdict}")


def _load_widgets(store: RunStore, run_id: str, example_id: str) -> None:
    """Fill the widgets from the stored mark when the example or the stored mark changed.

    A note being typed is kept until the user saves it or opens another example.
    """
    mark = get_mark(store, run_id, example_id)
    loaded = (run_id, example_id, mark.updated_at if mark else None)
    if st.session_state.get(state.REVIEW_LOADED) == loaded:
        return
    st.session_state[state.REVIEW_VERDICT] = mark.verdict if mark else state.NO_VERDICT
    st.session_state[state.REVIEW_NOTE] = mark.note if mark else ""
    st.session_state[state.REVIEW_LOADED] = loaded


def review_panel(
    store: RunStore, run_id: str, example_id: str, *, excerpt: str | None = None
) -> None:
    """Show the review mark of one example with widgets to change it, and the marks' CSV.

    Args:
        store: the run store.
        run_id: the run whose prediction is reviewed.
        example_id: the example's row number in the run's data, as a string.
        excerpt: the start of the reviewed text, stored with the mark.
    """
    st.markdown(f"**{t('review.title')}**")
    _load_widgets(store, run_id, example_id)
    verdict = st.radio(
        t("review.verdict"),
        VERDICT_OPTIONS,
        format_func=option_labels(VERDICT_OPTIONS, verdict_label),
        key=state.REVIEW_VERDICT,
        horizontal=True,
    )
    note = st.text_area(
        t("review.note"), key=state.REVIEW_NOTE, max_chars=MAX_NOTE_CHARS, height=80
    )
    if st.button(t("review.save"), key=state.REVIEW_SAVE, icon=":material/rate_review:"):
        if verdict == state.NO_VERDICT:
            clear_mark(store, run_id, example_id)
            st.success(t("review.cleared", row=example_id))
        else:
            set_mark(store, run_id, example_id, verdict, note, excerpt=excerpt)
            st.success(t("review.saved", row=example_id, verdict=verdict_label(verdict)))

    mark = get_mark(store, run_id, example_id)
    if mark is not None:
        st.caption(t("review.current", verdict=verdict_label(mark.verdict), time=mark.updated_at))
        if mark.note:
            st.caption(escape_markdown(mark.note))

    marks = list_marks(store, run_id)
    if marks:
        csv_download(
            marks_frame(marks),
            file_name=f"reviews-{run_id}.csv",
            key=state.REVIEW_DOWNLOAD,
            label=t("review.download", count=len(marks)),
        )
