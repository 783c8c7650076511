"""The Train page's panel for the generative path: LoRA or full fine-tuning of a causal LM.

The run is started like a classification run (``halluscope train --run-id``
in its own process), so the Train page's progress panel, live loss curve
and Cancel button serve both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from dashboard import state
from dashboard.components import (
    NumberSetting,
    ensure_value,
    model_choice,
    number_settings,
    option_labels,
)
from dashboard.i18n import t
from dashboard.services import GenerationSelection
from halluscope.training import CausalLMTrainConfig
from halluscope.training.causal_config import DEFAULT_LEARNING_RATES, METHODS

_DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(CausalLMTrainConfig)
    if field.default is not dataclasses.MISSING
}


def show_generation_data(selection: GenerationSelection) -> None:
    """Describe the data a generation run will train on."""
    st.markdown(f"**{t('train.data')}**")
    st.text(
        t(
            "generation_train.data_line",
            name=selection.display_name,
            rows=selection.rows,
            prompt=selection.prompt_column,
            answer=selection.answer_column,
            context=selection.context_column or t("common.no_column"),
        )
    )


def generation_settings(selection: GenerationSelection) -> dict[str, Any]:
    """Show the fine-tuning settings and return ``CausalLMTrainConfig`` keyword arguments."""
    st.markdown(f"**{t('train.settings')}**")
    model = model_choice(
        "causal-lm",
        key=state.TRAIN_GENERATION_MODEL,
        path_key=state.TRAIN_GENERATION_MODEL_PATH,
        path_help=t("generation_train.model_path_help"),
    )
    ensure_value(state.TRAIN_NAME, "")
    name = st.text_input(t("train.name"), key=state.TRAIN_NAME, help=t("train.name_help"))

    ensure_value(state.TRAIN_METHOD, _DEFAULTS["method"])
    method = st.radio(
        t("generation_train.method"),
        METHODS,
        format_func=option_labels(METHODS, lambda value: t(f"generation_train.method_{value}")),
        key=state.TRAIN_METHOD,
        horizontal=True,
        help=t("generation_train.method_help"),
    )
    ensure_value(state.TRAIN_PROBE_KNOWLEDGE, bool(_DEFAULTS["probe_knowledge"]))
    ensure_value(state.TRAIN_PROBE_SAMPLES, int(_DEFAULTS["probe_samples"]))
    ensure_value(state.TRAIN_ANSWER_DYNAMICS, bool(_DEFAULTS["answer_dynamics"]))

    learning_rate_help = t(
        "generation_train.learning_rate_help",
        lora=DEFAULT_LEARNING_RATES["lora"],
        full=DEFAULT_LEARNING_RATES["full"],
    )
    numbers = [
        NumberSetting(
            state.TRAIN_GENERATION_LEARNING_RATE,
            t("train.learning_rate"),
            learning_rate_help,
            float(DEFAULT_LEARNING_RATES["lora"]),
            1e-7,
            1e-2,
            1e-5,
            format="%.1e",
        ),
        NumberSetting(
            state.TRAIN_GENERATION_EPOCHS,
            t("train.epochs"),
            t("train.epochs_help"),
            float(_DEFAULTS["epochs"]),
            0.05,
            50.0,
            0.5,
        ),
        NumberSetting(
            state.TRAIN_GENERATION_BATCH_SIZE,
            t("train.batch_size"),
            t("train.batch_size_help"),
            int(_DEFAULTS["batch_size"]),
            1,
            256,
        ),
        NumberSetting(
            state.TRAIN_GENERATION_MAX_LENGTH,
            t("train.max_length"),
            t("generation_train.max_length_help"),
            int(_DEFAULTS["max_length"]),
            32,
            8192,
            32,
        ),
        NumberSetting(
            state.TRAIN_LORA_RANK,
            t("generation_train.lora_rank"),
            t("generation_train.lora_rank_help"),
            int(_DEFAULTS["lora_rank"]),
            1,
            256,
            disabled=method != "lora",
        ),
        NumberSetting(
            state.TRAIN_LORA_ALPHA,
            t("generation_train.lora_alpha"),
            t("generation_train.lora_alpha_help"),
            float(_DEFAULTS["lora_alpha"]),
            1.0,
            512.0,
            1.0,
            disabled=method != "lora",
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

    # Known and unknown facts: a probe of the base model, and per-example answer losses.
    # The losses are drawn per probe group, so they are recorded only with the probe.
    left, middle, right = st.columns(3)
    probe_knowledge = left.checkbox(
        t("knowledge.probe"), key=state.TRAIN_PROBE_KNOWLEDGE, help=t("knowledge.probe_help")
    )
    probe_samples = middle.number_input(
        t("knowledge.probe_samples"),
        min_value=0,
        max_value=64,
        step=1,
        key=state.TRAIN_PROBE_SAMPLES,
        help=t("knowledge.probe_samples_help"),
        disabled=not probe_knowledge,
    )
    answer_dynamics = right.checkbox(
        t("knowledge.answer_dynamics"),
        key=state.TRAIN_ANSWER_DYNAMICS,
        help=t("knowledge.answer_dynamics_help"),
        disabled=not probe_knowledge,
    )

    return {
        "name": name.strip() or None,
        "model": model,
        "data_path": selection.path,
        "prompt_column": selection.prompt_column,
        "answer_column": selection.answer_column,
        "context_column": selection.context_column,
        "method": method,
        "learning_rate": float(values[state.TRAIN_GENERATION_LEARNING_RATE]),
        "epochs": float(values[state.TRAIN_GENERATION_EPOCHS]),
        "batch_size": int(values[state.TRAIN_GENERATION_BATCH_SIZE]),
        "max_length": int(values[state.TRAIN_GENERATION_MAX_LENGTH]),
        "lora_rank": int(values[state.TRAIN_LORA_RANK]),
        "lora_alpha": float(values[state.TRAIN_LORA_ALPHA]),
        "validation_fraction": float(values[state.TRAIN_VALIDATION_FRACTION]),
        "seed": int(values[state.TRAIN_SEED]),
        "probe_knowledge": bool(probe_knowledge),
        "probe_samples": int(probe_samples),
        "answer_dynamics": bool(answer_dynamics and probe_knowledge),
    }
