"""Small UI pieces that several pages share: widget defaults, run labels, downloads."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.i18n import t
from dashboard.services import completed_runs, frame_to_csv, get_store, save_upload
from halluscope.runs import RunRecord, RunStore

_INLINE_MARKDOWN = re.compile(r"([\\`*_\[\]<>~$|!{}#])")
_LINE_START_BULLET = re.compile(r"(?m)^(\s*)([-+=])")
_LINE_START_NUMBER = re.compile(r"(?m)^(\s*\d+)([.)])")


def escape_markdown(text: object) -> str:
    """Return ``str(text)`` with Markdown syntax escaped, to show it literally.

    ``st.error``, ``st.warning``, ``st.caption`` and similar render Markdown, so
    file names, labels and messages that contain user data pass through here
    first. A link, image, emphasis, LaTeX (``$``) or HTML tag in them stays text.
    """
    escaped = _INLINE_MARKDOWN.sub(r"\\\1", str(text))
    escaped = _LINE_START_BULLET.sub(r"\1\\\2", escaped)
    return _LINE_START_NUMBER.sub(r"\1\\\2", escaped)


def ensure_choice(key: str, options: Sequence[Any], default: Any) -> None:
    """Set widget ``key`` to ``default`` unless its value is already one of ``options``.

    Call it before creating a selectbox or radio with ``key`` and no ``index``:
    the widget then starts at ``default`` and keeps the user's choice while that
    choice is still an option (the options change when a file or run changes).
    """
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def ensure_value(key: str, default: Any) -> None:
    """Set widget ``key`` to ``default`` if it has no value yet (call before the widget)."""
    if key not in st.session_state:
        st.session_state[key] = default


def option_labels(
    options: Sequence[Hashable], label: Callable[[Hashable], str]
) -> Callable[[Hashable], str]:
    """Return a ``format_func`` that looks up option labels computed now.

    The labels are computed during the script run, in the current language.
    Streamlit (and ``AppTest``) may call ``format_func`` outside the run, where a
    label that reads the session state would fall back to English.
    """
    labels = {option: label(option) for option in options}
    return lambda option: labels.get(option, str(option))


def run_label(record: RunRecord) -> str:
    """Return a one-line label for a run: name, status and accuracy when known."""
    accuracy = record.metrics.get("accuracy")
    status = t(f"status.{record.status}")
    if isinstance(accuracy, int | float):
        return t("run.label_with_accuracy", name=record.name, status=status, accuracy=accuracy)
    return t("run.label", name=record.name, status=status)


def csv_download(
    frame: pd.DataFrame, *, file_name: str, key: str, label: str | None = None
) -> None:
    """Show a button that downloads ``frame`` as a UTF-8 CSV file named ``file_name``."""
    st.download_button(
        label or t("common.download_csv"),
        data=frame_to_csv(frame),
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def column_label(column: str) -> str:
    """Return the label of a column option, with ``NO_COLUMN`` shown as "(none)"."""
    from dashboard import state

    return t("common.no_column") if column == state.NO_COLUMN else column


def choose_completed_run(store: RunStore, *, key: str) -> RunRecord | None:
    """Show a selectbox of the completed runs (newest first) and return the chosen one.

    Without completed runs, show a hint with a link to the Train page and return None.
    """
    records = completed_runs(store)
    if not records:
        st.info(t("predict.no_runs"))
        st.page_link("views/train.py", label=t("predict.go_train"), icon=":material/arrow_back:")
        return None
    by_id = {record.run_id: record for record in records}
    ensure_choice(key, list(by_id), records[0].run_id)
    run_id = st.selectbox(
        t("predict.run"),
        list(by_id),
        format_func=option_labels(
            list(by_id), lambda value: f"{run_label(by_id[value])} · {value}"
        ),
        key=key,
    )
    return by_id[run_id]


UPLOAD_TYPES = ["csv", "tsv", "jsonl", "json", "parquet"]


def uploaded_file(
    *, label: str, hint: str, uploader_key: str, remembered_key: str
) -> tuple[Path, str] | None:
    """Show a file uploader and return ``(saved path, display name)`` of the file.

    The upload is saved in the run store's ``uploads`` folder, and the last one is
    remembered under ``remembered_key``, so it outlives the uploader widget when
    the user switches pages.
    """
    upload = st.file_uploader(label, type=UPLOAD_TYPES, key=uploader_key)
    if upload is not None:
        path = save_upload(get_store().home, upload.name, upload.getvalue())
        st.session_state[remembered_key] = (str(path), upload.name)
        return path, upload.name

    previous = st.session_state.get(remembered_key)
    if previous and Path(previous[0]).is_file():
        st.caption(t("data.previous_upload", name=escape_markdown(previous[1])))
        return Path(previous[0]), previous[1]
    st.info(hint)
    return None
