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
from dashboard.components import ensure_value, model_choice, option_labels
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
    defaults = {
        state.TRAIN_GENERATION_LEARNING_RATE: float(DEFAULT_LEARNING_RATES["lora"]),
        state.TRAIN_GENERATION_EPOCHS: float(_DEFAULTS["epochs"]),
        state.TRAIN_GENERATION_BATCH_SIZE: int(_DEFAULTS["batch_size"]),
        state.TRAIN_GENERATION_MAX_LENGTH: int(_DEFAULTS["max_length"]),
        state.TRAIN_LORA_RANK: int(_DEFAULTS["lora_rank"]),
        state.TRAIN_LORA_ALPHA: float(_DEFAULTS["lora_alpha"]),
        state.TRAIN_VALIDATION_FRACTION: float(_DEFAULTS["validation_fraction"]),
        state.TRAIN_SEED: int(_DEFAULTS["seed"]),
        state.TRAIN_PROBE_KNOWLEDGE: bool(_DEFAULTS["probe_knowledge"]),
        state.TRAIN_PROBE_SAMPLES: int(_DEFAULTS["probe_samples"]),
        state.TRAIN_ANSWER_DYNAMICS: bool(_DEFAULTS["answer_dynamics"]),
    }
    for key, value in defaults.items():
        ensure_value(key, value)

    left, middle, right = st.columns(3)
    learning_rate = left.number_input(
        t("train.learning_rate"),
        min_value=1e-7,
        max_value=1e-2,
        step=1e-5,
        format="%.1e",
        key=state.TRAIN_GENERATION_LEARNING_RATE,
        help=t(
            "generation_train.learning_rate_help",
            lora=DEFAULT_LEARNING_RATES["lora"],
            full=DEFAULT_LEARNING_RATES["full"],
        ),
    )
    epochs = middle.number_input(
        t("train.epochs"),
        min_value=0.05,
        max_value=50.0,
        step=0.5,
        key=state.TRAIN_GENERATION_EPOCHS,
        help=t("train.epochs_help"),
    )
    batch_size = right.number_input(
        t("train.batch_size"),
        min_value=1,
        max_value=256,
        step=1,
        key=state.TRAIN_GENERATION_BATCH_SIZE,
        help=t("train.batch_size_help"),
    )
    max_length = left.number_input(
        t("train.max_length"),
        min_value=32,
        max_value=8192,
        step=32,
        key=state.TRAIN_GENERATION_MAX_LENGTH,
        help=t("generation_train.max_length_help"),
    )
    lora_rank = middle.number_input(
        t("generation_train.lora_rank"),
        min_value=1,
        max_value=256,
        step=1,
        key=state.TRAIN_LORA_RANK,
        help=t("generation_train.lora_rank_help"),
        disabled=method != "lora",
    )
    lora_alpha = right.number_input(
        t("generation_train.lora_alpha"),
        min_value=1.0,
        max_value=512.0,
        step=1.0,
        key=state.TRAIN_LORA_ALPHA,
        help=t("generation_train.lora_alpha_help"),
        disabled=method != "lora",
    )
    validation_fraction = left.number_input(
        t("train.validation_fraction"),
        min_value=0.05,
        max_value=0.5,
        step=0.05,
        key=state.TRAIN_VALIDATION_FRACTION,
        help=t("train.validation_fraction_help"),
    )
    seed = middle.number_input(
        t("train.seed"), min_value=0, step=1, key=state.TRAIN_SEED, help=t("train.seed_help")
    )

    # Known and unknown facts: a probe of the base model, and per-example answer losses.
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
    )

    return {
        "name": name.strip() or None,
        "model": model,
        "data_path": selection.path,
        "prompt_column": selection.prompt_column,
        "answer_column": selection.answer_column,
        "context_column": selection.context_column,
        "method": method,
        "learning_rate": float(learning_rate),
        "epochs": float(epochs),
        "batch_size": int(batch_size),
        "max_length": int(max_length),
        "lora_rank": int(lora_rank),
        "lora_alpha": float(lora_alpha),
        "validation_fraction": float(validation_fraction),
        "seed": int(seed),
        "probe_knowledge": bool(probe_knowledge),
        "probe_samples": int(probe_samples),
        "answer_dynamics": bool(answer_dynamics),
    }
