"""Inspect answer page: one generated answer side by side with its context and reference.

Three columns show the context coloured by the selected answer token's
attribution, the answer coloured by a detector's token scores, and the
reference answer. Picking an answer token updates its attribution and the
attention row of the query that produced it. Below are the attention
heatmap of a chosen layer and head, the grid of all heads, and the lookback
ratio of every answer token.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.answer_rendering import apply_quality_rule, coloured_answer, default_detector
from dashboard.charts import relabel
from dashboard.components import (
    choose_completed_run,
    csv_download,
    ensure_choice,
    ensure_value,
    escape_markdown,
    option_labels,
)
from dashboard.i18n import t
from dashboard.review import review_panel
from dashboard.services import (
    answer_attention_cached,
    answer_attributions_cached,
    answer_sequence_cached,
    answers_of,
    get_store,
    load_generation_model,
)
from halluscope.explain import (
    ANSWER_ATTRIBUTION_METHODS,
    SEGMENT_NAMES,
    AttentionUnavailableError,
    attention_head_grid,
    attention_heatmap,
    attention_row_bar,
    lookback_heatmap,
    lookback_ratios,
    render_word_colouring,
    rollout_heatmap,
    token_score_bar,
    word_attribution_bar,
)
from halluscope.explain.figures import KEY_AXIS_TITLE, QUERY_AXIS_TITLE
from halluscope.models import ModelError

# Attributions with at most this many (answer tokens x sequence tokens) run at
# once with input x gradient; longer ones wait for the Compute button.
AUTO_ATTRIBUTION_CELLS = 6_000
MEAN_OVER_HEADS = -1


def _choose_answer(records: list[dict[str, Any]], detector: str) -> dict[str, Any] | None:
    ensure_value(state.ANSWER_ONLY_FLAGGED, False)
    only_flagged = st.checkbox(t("inspect_answer.only_flagged"), key=state.ANSWER_ONLY_FLAGGED)
    shown = [
        record
        for record in records
        if not only_flagged or record["detectors"].get(detector, {}).get("flagged")
    ]
    if not shown:
        st.info(t("inspect_answer.none_flagged"))
        return None
    by_index = {record["index"]: record for record in shown}
    options = list(by_index)
    ensure_choice(state.ANSWER_EXAMPLE, options, options[0])

    def label(index: int) -> str:
        record = by_index[index]
        mark = "⚑ " if record["detectors"].get(detector, {}).get("flagged") else ""
        return f"{mark}#{index} · {record['question'][:80]}"

    index = st.selectbox(
        t("inspect_answer.example"),
        options,
        format_func=option_labels(options, label),
        key=state.ANSWER_EXAMPLE,
    )
    return by_index[index]


def _choose_token(record: dict[str, Any], detector: str) -> int:
    """Show the answer tokens as pills and return the index of the picked one."""
    tokens = record["tokens"]
    scores = [token["scores"].get(detector, 0.0) for token in tokens]
    options = list(range(len(tokens)))
    picked = st.pills(
        t("inspect_answer.token"),
        options,
        format_func=lambda index: f"{index}: {tokens[index]['token']!r}",
        key=f"{state.ANSWER_TOKEN}_{record['index']}",
        help=t("inspect_answer.token_help"),
    )
    if picked is None:
        picked = int(np.argmax(scores))
    return int(picked)


def _attributions(
    record: dict[str, Any], selected: int, sequence: Any, model: Any, tokenizer: Any, home: str
) -> Any:
    """Return the answer's attributions for the chosen method (or None while waiting)."""
    ensure_choice(state.ANSWER_METHOD, list(ANSWER_ATTRIBUTION_METHODS), "input_x_gradient")
    method = st.selectbox(
        t("inspect_answer.method"),
        ANSWER_ATTRIBUTION_METHODS,
        format_func=option_labels(
            ANSWER_ATTRIBUTION_METHODS, lambda value: t(f"inspect_answer.method_{value}")
        ),
        key=state.ANSWER_METHOD,
    )

    # Input x gradient covers every answer token in a few passes; integrated
    # gradients costs n_steps passes per token, so it explains the picked one.
    targets = None if method == "input_x_gradient" else (selected,)
    key = (record["run_id"], record["index"], method, targets)
    computed = st.session_state.setdefault(state.ANSWER_COMPUTED, set())
    cells = sequence.response_length * sequence.seq_len
    quick = method == "input_x_gradient" and cells <= AUTO_ATTRIBUTION_CELLS
    if key not in computed and not quick:
        st.caption(t(f"inspect_answer.compute_hint_{method}", tokens=sequence.response_length))
        if not st.button(t("inspect_answer.compute"), key=state.ANSWER_COMPUTE):
            return None

    with st.spinner(t("inspect_answer.computing")):
        result = answer_attributions_cached(
            home,
            record["run_id"],
            record["prompt"],
            tuple(token["token_id"] for token in record["tokens"]),
            method,
            targets,
            sequence,
            model,
            tokenizer,
        )
    computed.add(key)
    return result


def _three_columns(record: dict[str, Any], detector: str, selected: int, attributions: Any) -> None:
    context_column, answer_column, reference_column = st.columns(3)

    with context_column:
        st.markdown(f"**{t('inspect_answer.context')}**")
        context = record.get("context")
        if not context:
            st.caption(t("inspect_answer.no_context"))
        elif attributions is None:
            st.text(context)
        else:
            words = attributions.words(selected)
            scale = words.max_abs_score()
            st.html(render_word_colouring(words.text_words, context, scale=scale))
            st.caption(t("inspect_answer.question_words"))
            st.html(render_word_colouring(words.pair_words, record["question"], scale=scale))

    with answer_column:
        st.markdown(f"**{t('inspect_answer.answer')}**")
        st.html(coloured_answer(record, detector, selected=selected))
        verdict = record["detectors"].get(detector, {})
        flag = t("inspect_answer.flagged") if verdict.get("flagged") else t("inspect_answer.clear")
        st.caption(
            t(
                "inspect_answer.verdict",
                flag=flag,
                score=float(verdict.get("score", 0.0)),
                reason=escape_markdown(verdict.get("reason", "")),
            )
        )

    with reference_column:
        st.markdown(f"**{t('inspect_answer.reference')}**")
        if record.get("reference"):
            st.text(record["reference"])
        else:
            st.caption(t("inspect_answer.no_reference"))
        # Marks of a generation run are keyed by the answer's index.
        review_panel(
            get_store(), record["run_id"], str(record["index"]), excerpt=record["answer"][:200]
        )


def _attribution_details(record: dict[str, Any], selected: int, attributions: Any) -> None:
    shares = attributions.segment_shares()
    table = pd.DataFrame(
        {
            "token": [record["tokens"][int(target)]["token"] for target in attributions.targets],
            "context": shares[:, 0],
            "question": shares[:, 1],
            "answer": shares[:, 2],
        }
    )
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{t('inspect_answer.shares')}**")
        st.dataframe(
            table,
            column_config={
                "token": st.column_config.TextColumn(t("inspect_answer.col_token")),
                "context": st.column_config.ProgressColumn(
                    t("inspect_answer.col_context"), min_value=0.0, max_value=1.0, format="%.2f"
                ),
                "question": st.column_config.ProgressColumn(
                    t("inspect_answer.col_question"), min_value=0.0, max_value=1.0, format="%.2f"
                ),
                "answer": st.column_config.ProgressColumn(
                    t("inspect_answer.col_answer"), min_value=0.0, max_value=1.0, format="%.2f"
                ),
            },
        )
        csv_download(
            table,
            file_name=f"answer-{record['index']}-shares.csv",
            key=state.ANSWER_TOKEN_DOWNLOAD,
        )
    with right:
        words = attributions.words(selected)
        segment_names = (t("inspect_answer.col_context"), t("inspect_answer.col_question"))
        st.plotly_chart(
            relabel(
                word_attribution_bar(words, segment_names=segment_names),
                title=t("inspect_answer.fig_words", token=record["tokens"][selected]["token"]),
                x_title=t("inspect_answer.axis_attribution"),
                y_title=t("inspect_answer.axis_word"),
            ),
            key=state.ANSWER_WORD_CHART,
        )
    if attributions.convergence_deltas is not None:
        st.caption(
            t(
                "inspect_answer.delta",
                delta=float(np.abs(attributions.convergence_deltas).max()),
            )
        )


def _head_label(head: int) -> str:
    return t("inspect_answer.head_mean") if head == MEAN_OVER_HEADS else str(head)


def _attention(maps: Any, sequence: Any, selected: int, tokens: list[str]) -> None:
    st.subheader(t("inspect_answer.attention"))
    layers = list(range(maps.num_layers))
    heads = [MEAN_OVER_HEADS, *range(maps.num_heads)]
    ensure_choice(state.ANSWER_LAYER, layers, maps.num_layers - 1)
    ensure_choice(state.ANSWER_HEAD, heads, MEAN_OVER_HEADS)
    left, right = st.columns(2)
    layer = left.selectbox(t("inspect.layer"), layers, key=state.ANSWER_LAYER)
    head = right.selectbox(
        t("inspect.head"),
        heads,
        format_func=option_labels(heads, _head_label),
        key=state.ANSWER_HEAD,
    )
    chosen_head = None if head == MEAN_OVER_HEADS else head

    query = sequence.prompt_length + selected - 1
    head_text = (
        t("inspect_answer.head_mean")
        if head == MEAN_OVER_HEADS
        else t("inspect_answer.head", head=head)
    )
    key_title, query_title = t("inspect_answer.axis_key"), t("inspect_answer.axis_query")
    segment_names = {
        segment: t(f"inspect_answer.segment_{name}") for segment, name in SEGMENT_NAMES.items()
    }
    st.plotly_chart(
        relabel(
            attention_row_bar(maps, query, layer, chosen_head, segment_names=segment_names),
            title=t(
                "inspect_answer.fig_row", token=maps.tokens[query], layer=layer, head=head_text
            ),
            x_title=key_title,
            y_title=t("inspect_answer.axis_weight"),
        ),
        key=state.ANSWER_ATTENTION_ROW,
    )
    st.plotly_chart(
        relabel(
            attention_heatmap(maps, layer, chosen_head),
            title=t("inspect_answer.fig_heatmap", layer=layer, head=head_text),
            x_title=key_title,
            y_title=query_title,
        ),
        key=state.ANSWER_ATTENTION_HEATMAP,
    )
    grid_names = {
        f"Head {index}": t("inspect_answer.head", head=index) for index in range(maps.num_heads)
    }
    st.plotly_chart(
        relabel(
            attention_head_grid(maps, layer),
            title=t("inspect_answer.fig_grid", layer=layer),
            annotations={KEY_AXIS_TITLE: key_title, QUERY_AXIS_TITLE: query_title, **grid_names},
        ),
        key=state.ANSWER_ATTENTION_GRID,
    )
    st.plotly_chart(
        relabel(
            rollout_heatmap(maps),
            title=t("inspect_answer.fig_rollout", layers=maps.num_layers),
            x_title=key_title,
            y_title=query_title,
        ),
        key=state.ANSWER_ROLLOUT_HEATMAP,
    )

    st.subheader(t("inspect_answer.lookback"))
    st.caption(t("inspect_answer.lookback_help"))
    ratios = lookback_ratios(maps)
    token_title = t("inspect_answer.axis_answer_token")
    st.plotly_chart(
        relabel(
            lookback_heatmap(tokens, ratios),
            title=t("inspect_answer.fig_lookback_layers"),
            x_title=token_title,
            y_title=t("inspect.layer"),
        ),
        key=state.ANSWER_LOOKBACK_CHART,
    )
    st.plotly_chart(
        relabel(
            lookback_heatmap(tokens, ratios, layer=layer),
            title=t("inspect_answer.fig_lookback_heads", layer=layer),
            x_title=token_title,
            y_title=t("inspect.head"),
        ),
        key=state.ANSWER_LOOKBACK_HEADS_CHART,
    )


def main() -> None:
    st.title(t("inspect_answer.title"))
    st.caption(t("inspect_answer.intro"))
    store = get_store()
    run = choose_completed_run(store, key=state.ANSWER_RUN, kind="generation")
    if run is None:
        return
    records = answers_of(store, run.run_id)
    if not records:
        st.info(t("answers.none_yet"))
        st.page_link(
            "views/answers.py", label=t("inspect_answer.go_answers"), icon=":material/arrow_back:"
        )
        return

    detectors = list(records[0]["detectors"])
    ensure_choice(state.ANSWER_DETECTOR, detectors, default_detector(detectors))
    detector = st.selectbox(t("answers.detector"), detectors, key=state.ANSWER_DETECTOR)
    records = apply_quality_rule(records, run.run_id, detector)
    record = _choose_answer(records, detector)
    if record is None:
        return
    record = {**record, "run_id": run.run_id}
    if not record["tokens"]:
        st.warning(t("inspect_answer.empty_answer"))
        return

    home = str(store.home)
    try:
        with st.spinner(t("answers.loading_model")):
            model, tokenizer = load_generation_model(home, run.run_id)
        token_ids = tuple(token["token_id"] for token in record["tokens"])
        sequence = answer_sequence_cached(
            home,
            run.run_id,
            record["prompt"],
            token_ids,
            record.get("context"),
            record["question"],
            tokenizer,
        )
        maps = answer_attention_cached(
            home, run.run_id, record["prompt"], token_ids, sequence, model
        )
    except (ModelError, ValueError, FileNotFoundError, AttentionUnavailableError) as error:
        st.error(t("answers.failed", error=escape_markdown(error)))
        return

    selected = _choose_token(record, detector)
    attributions = _attributions(record, selected, sequence, model, tokenizer, home)
    _three_columns(record, detector, selected, attributions)

    tokens = [token["token"] for token in record["tokens"]]
    st.plotly_chart(
        relabel(
            token_score_bar(
                tokens, [token["scores"].get(detector, 0.0) for token in record["tokens"]], detector
            ),
            title=t("inspect_answer.fig_scores", detector=detector),
            x_title=t("inspect_answer.axis_answer_token"),
            y_title=t("inspect_answer.axis_score"),
        ),
        key=state.ANSWER_SCORE_CHART,
    )
    if attributions is not None:
        _attribution_details(record, selected, attributions)
    _attention(maps, sequence, selected, tokens)


main()
