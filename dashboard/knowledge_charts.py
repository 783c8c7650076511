"""Known and unknown facts of a generation run on the Training data page: figures and section.

The section reads what training stored in the run folder (``knowledge.json``
from the base-model probe, ``answer_dynamics.json`` from the answer-loss
records) and the run's stored answers. Every number comes from
``halluscope.training.knowledge``; this module only lays it out.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.charts import FIGURE_MARGIN
from dashboard.components import csv_download
from dashboard.i18n import t
from halluscope.answers import SOURCE_VALIDATION, read_answers
from halluscope.runs import RunStore
from halluscope.training.answer_dynamics import load_answer_dynamics
from halluscope.training.knowledge import (
    CATEGORIES,
    KnowledgeProbe,
    group_loss_curves,
    hallucination_by_group,
    load_knowledge,
)

CATEGORY_COLOURS = {"known": "#2e7d32", "maybe_known": "#f9a825", "unknown": "#c62828"}


def group_loss_figure(
    curves: pd.DataFrame, *, x_title: str, y_title: str, group_names: Mapping[str, str]
) -> go.Figure:
    """Plot one line per knowledge category: its mean answer loss over the recorded epochs.

    Args:
        curves: ``group_loss_curves`` output (``epoch``, ``category``, ``rows``, ``mean_nll``).
        x_title, y_title: axis titles.
        group_names: display name of each category, used in the legend.
    """
    figure = go.Figure()
    for category in CATEGORIES:
        group = curves[curves["category"] == category]
        if group.empty:
            continue
        figure.add_scatter(
            x=group["epoch"].tolist(),
            y=group["mean_nll"].tolist(),
            mode="lines+markers",
            name=f"{group_names[category]} ({int(group['rows'].iloc[0])})",
            line={"color": CATEGORY_COLOURS[category]},
            hovertemplate=f"{x_title}: %{{x:.2f}}<br>{y_title}: %{{y:.3f}}<extra></extra>",
        )
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis={"rangemode": "tozero"},
        margin=FIGURE_MARGIN,
        height=380,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def hallucination_rate_figure(
    rates: pd.DataFrame, *, x_title: str, y_title: str, group_names: Mapping[str, str]
) -> go.Figure:
    """Plot one bar per knowledge category: the share of its validation answers that are wrong.

    Args:
        rates: ``hallucination_by_group`` output. Categories without answers get no bar.
        x_title, y_title: axis titles.
        group_names: display name of each category.
    """
    answered = rates[rates["answered"] > 0]
    figure = go.Figure(
        go.Bar(
            x=[group_names[category] for category in answered["category"]],
            y=answered["hallucination_rate"].tolist(),
            marker={"color": [CATEGORY_COLOURS[category] for category in answered["category"]]},
            text=[f"{row.hallucinated}/{row.answered}" for row in answered.itertuples(index=False)],
            textposition="outside",
        )
    )
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis={"range": [0, 1.1]},
        margin=FIGURE_MARGIN,
        height=340,
    )
    return figure


def _group_names() -> dict[str, str]:
    return {category: t(f"knowledge.category_{category}") for category in CATEGORIES}


def _show_counts(probe: KnowledgeProbe, run_id: str, group_names: Mapping[str, str]) -> None:
    counts = probe.counts()
    train, validation = counts.loc["train"], counts.loc["validation"]
    columns = st.columns(len(CATEGORIES))
    for column, category in zip(columns, CATEGORIES, strict=True):
        column.metric(
            group_names[category],
            int(train[category] + validation[category]),
            help=t(
                "knowledge.count_help",
                train=int(train[category]),
                validation=int(validation[category]),
            ),
        )
    table = counts.rename(
        index={"train": t("knowledge.split_train"), "validation": t("knowledge.split_validation")},
        columns=group_names,
    ).reset_index(names=t("knowledge.split"))
    st.dataframe(table, hide_index=True)
    csv_download(
        table, file_name=f"{run_id}-knowledge-counts.csv", key=state.KNOWLEDGE_COUNTS_DOWNLOAD
    )


def _show_loss_curves(
    store: RunStore, run_id: str, probe: KnowledgeProbe, group_names: Mapping[str, str]
) -> None:
    st.markdown(f"**{t('knowledge.loss_title')}**")
    dynamics = load_answer_dynamics(store.run_dir(run_id))
    if dynamics is None or not dynamics.epochs:
        st.info(t("knowledge.no_dynamics"))
        return
    curves = group_loss_curves(dynamics, probe)
    st.caption(t("knowledge.loss_caption"))
    st.plotly_chart(
        group_loss_figure(
            curves,
            x_title=t("knowledge.axis_epoch"),
            y_title=t("knowledge.axis_loss"),
            group_names=group_names,
        ),
        key=state.KNOWLEDGE_LOSS_CHART,
        width="stretch",
    )
    table = curves.assign(category=curves["category"].map(group_names))
    csv_download(
        table, file_name=f"{run_id}-knowledge-loss.csv", key=state.KNOWLEDGE_CURVES_DOWNLOAD
    )


def _show_rates(
    store: RunStore, run_id: str, probe: KnowledgeProbe, group_names: Mapping[str, str]
) -> None:
    st.markdown(f"**{t('knowledge.rates_title')}**")
    answers = [
        record for record in read_answers(store, run_id) if record["source"] == SOURCE_VALIDATION
    ]
    if not answers:
        st.info(t("knowledge.no_answers"))
        st.page_link(
            "views/answers.py", label=t("knowledge.go_answers"), icon=":material/arrow_forward:"
        )
        return

    rates = hallucination_by_group(probe, answers)
    st.caption(t("knowledge.rates_caption", answers=len(answers)))
    # A group without answers has no rate: NaN shows as an empty cell, where None would show "None".
    table = rates.assign(
        category=rates["category"].map(group_names),
        hallucination_rate=pd.to_numeric(rates["hallucination_rate"], errors="coerce"),
    ).rename(
        columns={
            "category": t("knowledge.group"),
            "validation_rows": t("knowledge.validation_rows"),
            "answered": t("knowledge.answered"),
            "hallucinated": t("knowledge.hallucinated"),
            "hallucination_rate": t("knowledge.hallucination_rate"),
        }
    )
    rate_column = t("knowledge.hallucination_rate")
    st.dataframe(
        table,
        hide_index=True,
        key=state.KNOWLEDGE_RATES_TABLE,
        column_config={rate_column: st.column_config.NumberColumn(format="percent")},
    )
    csv_download(
        table, file_name=f"{run_id}-hallucination-by-group.csv", key=state.KNOWLEDGE_RATES_DOWNLOAD
    )
    st.plotly_chart(
        hallucination_rate_figure(
            rates,
            x_title=t("knowledge.group"),
            y_title=t("knowledge.hallucination_rate"),
            group_names=group_names,
        ),
        key=state.KNOWLEDGE_RATES_CHART,
        width="stretch",
    )


def show_knowledge(store: RunStore, run_id: str) -> None:
    """Show which facts a generation run's base model knew, with loss curves and rates by group."""
    st.subheader(t("knowledge.title"))
    st.caption(t("knowledge.caption"))
    probe = load_knowledge(store.run_dir(run_id))
    if probe is None:
        st.info(t("knowledge.no_probe"))
        return

    group_names = _group_names()
    st.caption(
        t(
            "knowledge.probe_line",
            rows=len(probe.records),
            samples=probe.settings.samples,
            temperature=probe.settings.temperature,
        )
    )
    _show_counts(probe, run_id, group_names)
    _show_loss_curves(store, run_id, probe, group_names)
    _show_rates(store, run_id, probe, group_names)
