"""Train page: fine-tuning settings, Start and Cancel, live progress and the run list.

The settings follow the task chosen on the Data page: a sequence classifier,
or a causal LM (``dashboard.generation_train``). Training runs in a separate
``halluscope train --run-id`` process; this page only writes the run's
settings, starts the process and reads the run store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from dashboard import state
from dashboard.charts import loss_curve_figure, loss_history
from dashboard.components import (
    NumberSetting,
    csv_download,
    ensure_choice,
    ensure_value,
    escape_markdown,
    model_choice,
    number_settings,
    option_labels,
    run_label,
    selection_or_demo,
    start_run,
)
from dashboard.generation_train import (
    generation_settings,
    show_generation_data,
)
from dashboard.i18n import t
from dashboard.services import (
    DataSelection,
    cancel_training,
    demo_selection,
    generation_demo_selection,
    get_store,
    list_runs,
    runs_table,
    worker_log_tail,
)
from halluscope.runs import RunRecord, RunStore
from halluscope.training import CausalLMTrainConfig, ClassifierTrainConfig

# Seconds between two refreshes of the progress panel while a run is active.
POLL_INTERVAL_S = 2.0

_DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(ClassifierTrainConfig)
    if field.default is not dataclasses.MISSING
}


def _show_data(selection: DataSelection) -> None:
    pair = selection.text_pair_column or t("common.no_column")
    st.markdown(f"**{t('train.data')}**")
    st.text(
        t(
            "train.data_line",
            name=selection.display_name,
            rows=selection.rows,
            text=selection.text_column,
            pair=pair,
            label=selection.label_column,
            labels=", ".join(selection.label_names),
        )
    )


def _settings(selection: DataSelection) -> dict[str, Any]:
    """Show the training settings and return them as ``ClassifierTrainConfig`` keyword arguments."""
    st.markdown(f"**{t('train.settings')}**")
    model = model_choice(
        "encoder",
        key=state.TRAIN_MODEL,
        path_key=state.TRAIN_MODEL_PATH,
        path_help=t("train.model_path_help"),
    )
    ensure_value(state.TRAIN_NAME, "")
    name = st.text_input(t("train.name"), key=state.TRAIN_NAME, help=t("train.name_help"))

    numbers = [
        NumberSetting(
            state.TRAIN_LEARNING_RATE,
            t("train.learning_rate"),
            t("train.learning_rate_help"),
            float(_DEFAULTS["learning_rate"]),
            1e-7,
            1e-2,
            1e-5,
            format="%.1e",
        ),
        NumberSetting(
            state.TRAIN_EPOCHS,
            t("train.epochs"),
            t("train.epochs_help"),
            float(_DEFAULTS["epochs"]),
            0.1,
            100.0,
            1.0,
        ),
        NumberSetting(
            state.TRAIN_BATCH_SIZE,
            t("train.batch_size"),
            t("train.batch_size_help"),
            int(_DEFAULTS["batch_size"]),
            1,
            1024,
        ),
        NumberSetting(
            state.TRAIN_WEIGHT_DECAY,
            t("train.weight_decay"),
            t("train.weight_decay_help"),
            float(_DEFAULTS["weight_decay"]),
            0.0,
            1.0,
            0.01,
        ),
        NumberSetting(
            state.TRAIN_MAX_LENGTH,
            t("train.max_length"),
            t("train.max_length_help"),
            int(_DEFAULTS["max_length"]),
            16,
            8192,
            16,
        ),
        NumberSetting(
            state.TRAIN_PATIENCE,
            t("train.patience"),
            t("train.patience_help"),
            int(_DEFAULTS["early_stopping_patience"] or 0),
            0,
            100,
        ),
        NumberSetting(
            state.TRAIN_VALIDATION_FRACTION,
            t("train.validation_fraction"),
            t("train.validation_fraction_help"),
            float(_DEFAULTS["validation_fraction"]),
            0.05,
            0.5,
            0.05,
        ),
        NumberSetting(
            state.TRAIN_SEED, t("train.seed"), t("train.seed_help"), int(_DEFAULTS["seed"]), 0
        ),
    ]
    values = number_settings(numbers, st.columns(3))
    mitigations = _mitigation_settings()

    return {
        "name": name.strip() or None,
        "model": model,
        "data_path": selection.path,
        "text_column": selection.text_column,
        "text_pair_column": selection.text_pair_column,
        "label_column": selection.label_column,
        "label_map": selection.label_map,
        "learning_rate": float(values[state.TRAIN_LEARNING_RATE]),
        "epochs": float(values[state.TRAIN_EPOCHS]),
        "batch_size": int(values[state.TRAIN_BATCH_SIZE]),
        "weight_decay": float(values[state.TRAIN_WEIGHT_DECAY]),
        "max_length": int(values[state.TRAIN_MAX_LENGTH]),
        "early_stopping_patience": int(values[state.TRAIN_PATIENCE]) or None,
        "validation_fraction": float(values[state.TRAIN_VALIDATION_FRACTION]),
        "seed": int(values[state.TRAIN_SEED]),
        **mitigations,
    }


def _mitigation_settings() -> dict[str, Any]:
    """Show the settings that counter label noise and return them as config keyword arguments."""
    st.markdown(f"**{t('train.mitigations')}**")
    ensure_value(state.TRAIN_LABEL_SMOOTHING, float(_DEFAULTS["label_smoothing"]))
    ensure_value(state.TRAIN_SET_DROPOUT, False)
    ensure_value(state.TRAIN_DROPOUT, 0.1)
    ensure_value(state.TRAIN_DROP_LABEL_ISSUES, bool(_DEFAULTS["drop_label_issues"]))
    ensure_value(state.TRAIN_KEEP_BEST_EPOCH, bool(_DEFAULTS["keep_best_epoch"]))

    left, middle, right = st.columns(3)
    label_smoothing = left.number_input(
        t("train.label_smoothing"),
        min_value=0.0,
        max_value=0.5,
        step=0.05,
        key=state.TRAIN_LABEL_SMOOTHING,
        help=t("train.label_smoothing_help"),
    )
    set_dropout = middle.checkbox(
        t("train.set_dropout"), key=state.TRAIN_SET_DROPOUT, help=t("train.set_dropout_help")
    )
    dropout = middle.number_input(
        t("train.dropout"),
        min_value=0.0,
        max_value=0.9,
        step=0.05,
        key=state.TRAIN_DROPOUT,
        disabled=not set_dropout,
    )
    drop_label_issues = right.checkbox(
        t("train.drop_label_issues"),
        key=state.TRAIN_DROP_LABEL_ISSUES,
        help=t("train.drop_label_issues_help"),
    )
    keep_best_epoch = right.checkbox(
        t("train.keep_best_epoch"),
        key=state.TRAIN_KEEP_BEST_EPOCH,
        help=t("train.keep_best_epoch_help"),
    )
    return {
        "label_smoothing": float(label_smoothing),
        "dropout": float(dropout) if set_dropout else None,
        "drop_label_issues": bool(drop_label_issues),
        "keep_best_epoch": bool(keep_best_epoch),
    }


def _format_eta(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "–"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


def _show_progress(store: RunStore, run_id: str, was_active: bool) -> None:
    """Draw status, progress bar, loss curve and metrics of one run (polled while active)."""
    record = store.get(run_id)
    if was_active and not record.is_active:
        # The run just ended: redraw the whole page, so that polling stops and
        # the run list shows the final status.
        st.rerun(scope="app")

    events = store.read_events(run_id)
    status_line = t("train.status_line", status=t(f"status.{record.status}"), model=record.model)
    if record.status == "failed":
        message = escape_markdown(record.message) if record.message else t("train.no_message")
        st.error(t("train.failed", message=message))
    elif record.status == "cancelled":
        st.warning(t("train.cancelled", message=escape_markdown(record.message or "")))
    elif record.status == "completed":
        st.success(status_line)
    else:
        st.info(status_line)

    for event in events:
        if event.get("type") == "warning":
            st.warning(escape_markdown(event.get("message", "")))
    data_events = [event for event in events if event.get("type") == "data"]
    if data_events:
        data = data_events[-1]
        st.caption(
            t(
                "train.data_event",
                train=data.get("train_rows", "?"),
                validation=data.get("validation_rows", "?"),
                dropped=data.get("dropped_rows", 0),
            )
        )

    steps = [event for event in events if event.get("type") in ("train_step", "eval", "train_end")]
    probes = [event for event in events if event.get("type") == "probe"]
    if steps:
        last = steps[-1]
        step, max_steps = int(last.get("step") or 0), int(last.get("max_steps") or 0)
        fraction = min(step / max_steps, 1.0) if max_steps else 0.0
        if record.is_active:
            text = t(
                "train.progress", step=step, max_steps=max_steps, eta=_format_eta(last.get("eta_s"))
            )
        else:
            text = t("train.progress_done", step=step, max_steps=max_steps)
        st.progress(fraction, text=text)
    elif record.is_active and probes:
        # The knowledge probe runs before the first training step.
        done, total = int(probes[-1].get("done") or 0), int(probes[-1].get("total") or 0)
        fraction = min(done / total, 1.0) if total else 0.0
        st.progress(fraction, text=t("train.probe_progress", done=done, total=total))
    elif record.is_active:
        st.progress(0.0, text=t("train.waiting"))

    history = loss_history(events)
    if not history.is_empty:
        st.plotly_chart(
            loss_curve_figure(
                history,
                x_title=t("train.axis_step"),
                y_title=t("train.axis_loss"),
                train_name=t("train.train_loss"),
                eval_name=t("train.eval_loss"),
            ),
            key=state.TRAIN_LOSS_CHART,
        )
    _show_metrics(record, history)

    if record.is_active and st.button(
        t("train.cancel"), key=state.TRAIN_CANCEL, icon=":material/cancel:"
    ):
        cancel_training(store, run_id)
        st.info(t("train.cancel_requested"))

    log_tail = worker_log_tail(store, run_id)
    if log_tail:
        with st.expander(t("train.worker_log"), expanded=record.status == "failed"):
            st.code(log_tail, language=None)


def _show_metrics(record: RunRecord, history: Any) -> None:
    accuracies = [value for value in history.eval_accuracy if value is not None]
    metric_columns = st.columns(4)
    if record.kind == "generation":
        if history.eval_loss:
            metric_columns[0].metric(t("train.eval_loss"), f"{history.eval_loss[-1]:.4f}")
        final = record.metrics
        if isinstance(final.get("eval_perplexity"), int | float):
            metric_columns[1].metric(
                t("generation_train.perplexity"), f"{final['eval_perplexity']:.2f}"
            )
        if record.status == "completed":
            st.page_link(
                "views/answers.py",
                label=t("generation_train.go_answers"),
                icon=":material/arrow_forward:",
            )
        return
    if accuracies:
        metric_columns[0].metric(t("train.eval_accuracy"), f"{accuracies[-1]:.3f}")
    if history.eval_loss:
        metric_columns[1].metric(t("train.eval_loss"), f"{history.eval_loss[-1]:.4f}")
    final = record.metrics
    if isinstance(final.get("accuracy"), int | float):
        metric_columns[2].metric(t("train.final_accuracy"), f"{final['accuracy']:.3f}")
    if isinstance(final.get("f1_macro"), int | float):
        metric_columns[3].metric(t("train.final_f1"), f"{final['f1_macro']:.3f}")


def _run_details(store: RunStore, records: list[RunRecord]) -> None:
    st.subheader(t("train.progress_title"))
    if not records:
        st.info(t("train.no_runs"))
        return
    ids = [record.run_id for record in records]
    by_id = {record.run_id: record for record in records}
    watched = st.session_state.get(state.TRAIN_WATCHED_RUN)
    active = [record.run_id for record in records if record.is_active]
    if watched in by_id:
        default = watched
    elif active:
        default = active[0]
    else:
        default = ids[0]
    ensure_choice(state.TRAIN_RUN, ids, default)
    run_id = st.selectbox(
        t("train.run_select"),
        ids,
        format_func=option_labels(ids, lambda value: f"{run_label(by_id[value])} · {value}"),
        key=state.TRAIN_RUN,
    )
    was_active = by_id[run_id].is_active
    progress = st.fragment(run_every=POLL_INTERVAL_S if was_active else None)(_show_progress)
    progress(store, run_id, was_active)


def _run_list(records: list[RunRecord]) -> None:
    st.subheader(t("train.runs"))
    if not records:
        st.caption(t("train.no_runs"))
        return
    table = runs_table(records)
    table["status"] = [t(f"status.{status}") for status in table["status"]]
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "name": st.column_config.TextColumn(t("runs.name")),
            "run_id": st.column_config.TextColumn(t("runs.run_id")),
            "status": st.column_config.TextColumn(t("runs.status")),
            "model": st.column_config.TextColumn(t("runs.model")),
            "accuracy": st.column_config.NumberColumn(t("runs.accuracy"), format="%.3f"),
            "f1_macro": st.column_config.NumberColumn(t("runs.f1_macro"), format="%.3f"),
            "created": st.column_config.TextColumn(t("runs.created")),
        },
        key=state.TRAIN_RUNS_TABLE,
    )
    csv_download(
        runs_table(records), file_name="halluscope-runs.csv", key=state.TRAIN_RUNS_DOWNLOAD
    )


def main() -> None:
    st.title(t("train.title"))
    store = get_store()
    task = st.session_state.get(state.DATA_TASK, "classification")
    st.caption(t("train.task", task=t(f"data.task_{task}")))

    if task == "generation":
        st.caption(t("generation_train.intro"))
        selection = selection_or_demo(state.GENERATION_SELECTION, generation_demo_selection)
        panel = (show_generation_data, generation_settings, CausalLMTrainConfig)
    else:
        st.caption(t("train.intro"))
        selection = selection_or_demo(state.DATA_SELECTION, demo_selection)
        panel = (_show_data, _settings, ClassifierTrainConfig)
    if selection is not None:
        show, settings_of, config_class = panel
        with st.container(border=True):
            show(selection)
            settings = settings_of(selection)
            if st.button(
                t("train.start"),
                key=state.TRAIN_START,
                type="primary",
                icon=":material/play_arrow:",
            ):
                start_run(store, settings, config_class)

    records = list_runs(store)
    _run_details(store, records)
    _run_list(records)


main()
