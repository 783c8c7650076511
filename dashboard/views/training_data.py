"""Training data page: the data map of a run and its suspected label errors.

The data map reads the run's ``dynamics.json``; clicking or box-selecting
points lists those training rows. The label-error ranking is computed on
request (it embeds every training row with the frozen base encoder) and stored
in the run folder. For a generation run the page shows which facts the base
model knew before fine-tuning, their loss curves and hallucination rates
(``dashboard.knowledge_charts``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import (
    choose_completed_run,
    csv_download,
    ensure_choice,
    escape_markdown,
    option_labels,
)
from dashboard.data_map import data_map_figure, epoch_probability_figure
from dashboard.i18n import t
from dashboard.knowledge_charts import show_knowledge
from dashboard.services import get_store
from halluscope.runs import RunStore
from halluscope.training.dynamics import REGIONS, TrainingDynamics, load_dynamics
from halluscope.training.label_errors import load_run_label_issues, rank_run_label_issues
from halluscope.training.splits import SplitExamples
from halluscope.training.train_examples import TrainExamplesError, load_train_examples


def _train_examples(store: RunStore, run_id: str) -> SplitExamples | None:
    try:
        return load_train_examples(store, run_id)
    except (TrainExamplesError, OSError) as error:
        st.warning(t("training_data.rows_missing", error=escape_markdown(error)))
        return None


def _with_texts(frame: pd.DataFrame, examples: SplitExamples | None) -> pd.DataFrame:
    """Add the ``text`` and ``text_pair`` of each row (matched by row number) when known."""
    if examples is None:
        return frame
    texts = dict(zip(examples.row_numbers, examples.texts, strict=True))
    frame = frame.copy()
    frame["text"] = frame["row_number"].map(texts)
    if examples.text_pairs is not None:
        pairs = dict(zip(examples.row_numbers, examples.text_pairs, strict=True))
        frame["text_pair"] = frame["row_number"].map(pairs)
    return frame


def _selected_rows(event: object) -> list[int]:
    """Return the data row numbers of the points selected in the data map."""
    selection = getattr(event, "selection", None) or {}
    points = selection.get("points", []) if isinstance(selection, dict) else []
    rows = []
    for point in points:
        custom = point.get("customdata")
        if custom:
            rows.append(int(custom[0]))
    return rows


def _show_selected(dynamics: TrainingDynamics, frame: pd.DataFrame, rows: list[int]) -> None:
    """Show the selected training rows; with one row, also its probability per epoch."""
    chosen = frame[frame["row_number"].isin(rows)]
    st.markdown(f"**{t('training_data.selected', count=len(chosen))}**")
    st.dataframe(chosen, hide_index=True, width="stretch")
    if len(chosen) != 1:
        return
    position = dynamics.row_numbers.index(int(chosen["row_number"].iloc[0]))
    st.plotly_chart(
        epoch_probability_figure(
            dynamics.epochs,
            dynamics.gold_probability[:, position],
            x_title=t("training_data.epoch"),
            y_title=t("training_data.gold_probability"),
        ),
        width="stretch",
    )


def _data_map(store: RunStore, run_id: str, examples: SplitExamples | None) -> None:
    st.subheader(t("training_data.map_title"))
    dynamics = load_dynamics(store.run_dir(run_id))
    if dynamics is None or not dynamics.epochs:
        st.info(t("training_data.no_dynamics"))
        return
    st.caption(t("training_data.map_caption", epochs=len(dynamics.epochs)))

    frame = _with_texts(dynamics.to_frame(), examples)
    region_names = {region: t(f"training_data.region_{region}") for region in REGIONS}
    counts = frame["region"].value_counts()
    columns = st.columns(len(REGIONS))
    for column, region in zip(columns, REGIONS, strict=True):
        column.metric(region_names[region], int(counts.get(region, 0)))

    figure = data_map_figure(
        frame,
        x_title=t("training_data.variability"),
        y_title=t("training_data.confidence"),
        colour_title=t("training_data.correctness"),
        region_names=region_names,
        hover_label=t("training_data.label"),
    )
    event = st.plotly_chart(
        figure,
        key=state.TRAINING_DATA_MAP_CHART,
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
        width="stretch",
    )
    selected = _selected_rows(event)
    if selected:
        _show_selected(dynamics, frame, selected)
    else:
        st.caption(t("training_data.select_hint"))

    chosen_regions = st.multiselect(
        t("training_data.regions"),
        list(REGIONS),
        format_func=region_names.__getitem__,
        key=state.TRAINING_DATA_REGION,
    )
    shown = frame[frame["region"].isin(chosen_regions)] if chosen_regions else frame
    shown = shown.sort_values(["confidence", "variability"])
    st.dataframe(shown, hide_index=True, width="stretch")
    csv_download(shown, file_name=f"{run_id}-data-map.csv", key=state.TRAINING_DATA_MAP_DOWNLOAD)


def _label_errors(store: RunStore, run_id: str, examples: SplitExamples | None) -> None:
    st.subheader(t("training_data.issues_title"))
    st.caption(t("training_data.issues_caption"))
    if st.button(t("training_data.find_issues"), key=state.TRAINING_DATA_FIND_ISSUES):
        with st.spinner(t("training_data.finding_issues")):
            try:
                rank_run_label_issues(store, run_id)
            except (TrainExamplesError, ValueError, OSError) as error:
                st.error(t("training_data.issues_failed", error=escape_markdown(error)))
                return

    issues = load_run_label_issues(store, run_id)
    if issues is None:
        st.info(t("training_data.no_issues_yet"))
        return

    left, middle, right = st.columns(3)
    left.metric(t("training_data.rows_ranked"), len(issues))
    middle.metric(t("training_data.likely_errors"), int(issues.is_issue.sum()))
    measured = issues.precision_recall_at_k()
    if measured is not None:
        right.metric(
            t("training_data.precision_at_k", k=int(issues.flipped.sum())), f"{measured[0]:.3f}"
        )
        st.caption(
            t(
                "training_data.noise_found",
                flipped=int(issues.flipped.sum()),
                found=int((issues.is_issue & issues.flipped).sum()),
                recall=measured[1],
            )
        )

    frame = issues.to_frame()
    frame = _with_texts(frame, examples)
    only_issues = st.checkbox(
        t("training_data.only_issues"), value=True, key=state.TRAINING_DATA_ONLY_ISSUES
    )
    shown = frame[frame["likely_error"]] if only_issues else frame
    st.dataframe(shown, hide_index=True, width="stretch", key=state.TRAINING_DATA_ISSUES_TABLE)
    csv_download(
        shown, file_name=f"{run_id}-label-errors.csv", key=state.TRAINING_DATA_ISSUES_DOWNLOAD
    )


def main() -> None:
    st.title(t("training_data.title"))
    store = get_store()
    kinds = ("classification", "generation")
    ensure_choice(state.TRAINING_DATA_KIND, kinds, "classification")
    kind = st.radio(
        t("data.task"),
        kinds,
        format_func=option_labels(kinds, lambda value: t(f"data.task_{value}")),
        key=state.TRAINING_DATA_KIND,
        horizontal=True,
    )
    intro = "training_data.intro_generation" if kind == "generation" else "training_data.intro"
    st.caption(t(intro))
    if kind == "generation":
        generation_run = choose_completed_run(
            store, key=state.TRAINING_DATA_GENERATION_RUN, kind="generation"
        )
        if generation_run is not None:
            show_knowledge(store, generation_run.run_id)
        return

    record = choose_completed_run(store, key=state.TRAINING_DATA_RUN)
    if record is None:
        return
    examples = _train_examples(store, record.run_id)
    _data_map(store, record.run_id, examples)
    _label_errors(store, record.run_id, examples)


main()
