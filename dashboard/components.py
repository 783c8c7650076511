"""Small UI pieces that several pages share: widget defaults, run labels, downloads."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class NumberSetting:
    """A number input of a settings form: its state key, texts, default and bounds.

    ``default``, ``min_value``, ``max_value`` and ``step`` must all be ints
    or all be floats, as ``st.number_input`` requires.
    """

    key: str
    label: str
    help: str
    default: float | int
    min_value: float | int
    max_value: float | int | None = None
    step: float | int = 1
    format: str | None = None
    disabled: bool = False


def number_settings(settings: Sequence[NumberSetting], columns: Sequence[Any]) -> dict[str, Any]:
    """Show ``settings`` as number inputs, filling ``columns`` in turn, and return values by key."""
    values = {}
    for index, setting in enumerate(settings):
        ensure_value(setting.key, setting.default)
        values[setting.key] = columns[index % len(columns)].number_input(
            setting.label,
            min_value=setting.min_value,
            max_value=setting.max_value,
            step=setting.step,
            format=setting.format,
            key=setting.key,
            help=setting.help,
            disabled=setting.disabled,
        )
    return values


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


def choose_completed_run(
    store: RunStore, *, key: str, kind: str = "classification"
) -> RunRecord | None:
    """Show a selectbox of the completed runs of ``kind`` (newest first) and return the chosen one.

    Without completed runs, show a hint with a link to the Train page and return None.
    """
    records = completed_runs(store, kind)
    if not records:
        st.info(t("predict.no_runs" if kind == "classification" else "answers.no_runs"))
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
        path = save_upload(get_store().home, upload.name, upload)
        st.session_state[remembered_key] = (str(path), upload.name)
        return path, upload.name

    previous = st.session_state.get(remembered_key)
    if previous and Path(previous[0]).is_file():
        st.caption(t("data.previous_upload", name=escape_markdown(previous[1])))
        return Path(previous[0]), previous[1]
    st.info(hint)
    return None


def selection_or_demo(key: str, demo: Callable[[], Any]) -> Any:
    """Return the data chosen on the Data page under ``key``, or ``demo()`` if none was chosen.

    Returns None, with an error and a link to the Data page, when the chosen
    data is invalid or the demo file is missing.
    """
    from halluscope.data import DataError

    if key in st.session_state:
        selection = st.session_state[key]
        if selection is None:
            st.error(t("train.data_invalid"))
            st.page_link("views/data.py", label=t("train.go_data"), icon=":material/arrow_back:")
        return selection
    try:
        return demo()
    except (DataError, FileNotFoundError) as error:
        st.error(t("data.demo_missing", error=escape_markdown(error)))
        return None


def model_choice(family: str, *, key: str, path_key: str, path_help: str) -> str:
    """Show a selectbox of the bundled models of ``family`` or a local folder; return the reference.

    Args:
        family: ``"encoder"`` or ``"causal-lm"``.
        key: the selectbox's widget key.
        path_key: the key of the text input for a local folder.
        path_help: the help text of that input.
    """
    from dashboard import state
    from halluscope.models import BUNDLED_MODELS, available_models

    bundled = [name for name in available_models() if BUNDLED_MODELS[name].family == family]
    options = [*bundled, state.LOCAL_MODEL]
    ensure_choice(key, options, options[0])
    choice = st.selectbox(
        t("train.model"),
        options,
        format_func=option_labels(
            options, lambda name: t("train.model_local") if name == state.LOCAL_MODEL else name
        ),
        key=key,
    )
    if choice != state.LOCAL_MODEL:
        st.caption(BUNDLED_MODELS[choice].description)
        return choice
    ensure_value(path_key, "")
    path = st.text_input(t("train.model_path"), key=path_key, help=path_help)
    return path.strip()


def start_run(store: RunStore, settings: dict[str, Any], config_class: type) -> None:
    """Validate the Train page's settings, then create the run and start its worker.

    ``settings`` are the keyword arguments of ``config_class``
    (``ClassifierTrainConfig`` or ``CausalLMTrainConfig``) plus the run's ``name``.
    """
    from dashboard import state
    from dashboard.services import start_training
    from halluscope.models import ModelError, resolve_model

    settings = dict(settings)
    name = settings.pop("name")
    if not settings["model"]:
        st.error(t("train.model_path_missing"))
        return
    try:
        resolve_model(settings["model"])
        config = config_class(**settings)
        record = start_training(store, config, name=name)
    except (ModelError, ValueError, OSError) as error:
        st.error(t("train.start_failed", error=escape_markdown(error)))
        return
    st.session_state[state.TRAIN_WATCHED_RUN] = record.run_id
    st.session_state[state.TRAIN_RUN] = record.run_id
    st.success(t("train.started", run_id=record.run_id))
