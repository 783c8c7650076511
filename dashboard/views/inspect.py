"""Inspect page: one example of a run, in three panels side by side.

1. The context and the claim, each word coloured by its attribution to the
   predicted class, with the attribution method and its convergence delta.
2. The prediction: label, class probabilities, gold label and the flag with
   its reason.
3. The attention map of one layer and head, with all heads of the layer in an
   expander.

Models are cached per model folder; attention maps and attributions are cached
per (run, example, method).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import services, state
from dashboard.charts import bar_figure, relabel
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
    attention_cached,
    attributions_cached,
    get_store,
    load_run_model,
    predictions_cached,
)
from halluscope.data import DataError
from halluscope.evaluate.curves import flag_by_threshold
from halluscope.explain import (
    WordAttributions,
    attention_head_grid,
    attention_heatmap,
    available_attribution_methods,
    get_attribution_method,
    render_word_colouring,
    word_attribution_bar,
)
from halluscope.explain.figures import KEY_AXIS_TITLE, QUERY_AXIS_TITLE
from halluscope.models import ModelError

DEFAULT_METHOD = "integrated_gradients"
# The example selectbox lists at most this many rows (flagged ones first).
MAX_EXAMPLE_OPTIONS = 2_000


def _choose_example(table: pd.DataFrame) -> int:
    """Show the example selectbox (highest flag score first) and return the table position."""
    flagged_count = int(table["flagged"].sum())
    ensure_value(state.INSPECT_ONLY_FLAGGED, flagged_count > 0)
    only_flagged = st.checkbox(
        t("inspect.only_flagged", count=flagged_count), key=state.INSPECT_ONLY_FLAGGED
    )
    order = table.sort_values(["flagged", "flag_score"], ascending=False, kind="stable")
    if only_flagged and flagged_count:
        order = order[order["flagged"].astype(bool)]
    positions = [int(table.index.get_loc(index)) for index in order.index[:MAX_EXAMPLE_OPTIONS]]

    def describe(position: int) -> str:
        row = table.iloc[position]
        flag = "⚑ " if bool(row["flagged"]) else ""
        return t(
            "inspect.example_label",
            flag=flag,
            row=int(row["row_number"]),
            predicted=row["predicted"],
            confidence=float(row["confidence"]),
        )

    ensure_choice(state.INSPECT_EXAMPLE, positions, positions[0])
    return st.selectbox(
        t("inspect.example"),
        positions,
        format_func=option_labels(positions, describe),
        key=state.INSPECT_EXAMPLE,
    )


def _text_panel(context: dict[str, Any], method_names: list[str], seq_len: int) -> None:
    st.subheader(t("inspect.panel_text"))
    ensure_choice(state.INSPECT_METHOD, method_names, DEFAULT_METHOD)
    method_name = st.selectbox(
        t("inspect.method"),
        method_names,
        format_func=option_labels(method_names, _method_label),
        key=state.INSPECT_METHOD,
        help=_method_help(method_name=st.session_state[state.INSPECT_METHOD]),
    )
    passes = get_attribution_method(method_name).num_passes()
    st.caption(t("inspect.cost", tokens=seq_len, passes=passes))

    computed: set = st.session_state.setdefault(state.INSPECT_COMPUTED, set())
    cache_key = (context["run_id"], context["row_number"], method_name)
    if seq_len * passes > services.AUTO_ATTRIBUTION_TOKEN_PASSES and cache_key not in computed:
        st.info(t("inspect.long_sequence"))
        if not st.button(t("inspect.compute"), key=state.INSPECT_COMPUTE):
            _plain_texts(context)
            return

    with st.spinner(t("inspect.computing", method=_method_label(method_name))):
        attributions, words = attributions_cached(
            context["home"],
            context["run_id"],
            context["row_number"],
            method_name,
            context["text"],
            context["text_pair"],
            context["max_length"],
            context["model"],
            context["tokenizer"],
        )
    computed.add(cache_key)

    st.caption(t("inspect.target", label=escape_markdown(attributions.target_label)))
    scale = words.max_abs_score()
    st.markdown(f"**{t('inspect.context')}**")
    st.html(render_word_colouring(words.text_words, context["text"], scale=scale))
    if context["text_pair"] is not None:
        st.markdown(f"**{t('inspect.claim')}**")
        st.html(render_word_colouring(words.pair_words, context["text_pair"], scale=scale))

    if attributions.convergence_delta is not None:
        st.metric(t("inspect.delta"), f"{attributions.convergence_delta:+.2e}")
    if attributions.delta_warning:
        st.warning(escape_markdown(attributions.delta_warning))
    if attributions.truncated:
        st.warning(t("inspect.truncated"))

    with st.expander(t("inspect.word_scores")):
        segment_names = (t("inspect.context"), t("inspect.claim"))
        figure = word_attribution_bar(words, top_k=15, segment_names=segment_names)
        figure.update_layout(
            title={"text": t("inspect.top_words", label=words.target_label)},
            xaxis_title=t("inspect.axis_score"),
            yaxis_title=t("inspect.axis_word"),
        )
        st.plotly_chart(figure, key=state.INSPECT_WORD_CHART)
        word_table = _word_table(words, segment_names)
        st.dataframe(word_table, hide_index=True)
        csv_download(
            word_table,
            file_name=f"attributions-{context['run_id']}-row{context['row_number']}.csv",
            key=state.INSPECT_WORD_DOWNLOAD,
        )


def _plain_texts(context: dict[str, Any]) -> None:
    st.markdown(f"**{t('inspect.context')}**")
    st.text(context["text"])
    if context["text_pair"] is not None:
        st.markdown(f"**{t('inspect.claim')}**")
        st.text(context["text_pair"])


def _word_table(words: WordAttributions, segment_names: tuple[str, str]) -> pd.DataFrame:
    rows = [*words.text_words, *words.pair_words]
    return pd.DataFrame(
        {
            "segment": [segment_names[word.segment] for word in rows],
            "start": [word.start for word in rows],
            "word": [word.text for word in rows],
            "score": [float(word.score) for word in rows],
            "tokens": [word.num_tokens for word in rows],
        }
    )


def _prediction_panel(row: pd.Series, label_names: list[str]) -> None:
    st.subheader(t("inspect.panel_prediction"))
    st.metric(t("inspect.predicted"), str(row["predicted"]))
    st.caption(
        t("inspect.confidence", confidence=float(row["confidence"]), margin=float(row["margin"]))
    )
    if "gold" in row.index:
        if bool(row.get("correct", False)):
            st.success(t("inspect.gold_correct", gold=escape_markdown(row["gold"])))
        else:
            st.error(t("inspect.gold_wrong", gold=escape_markdown(row["gold"])))
    st.caption(t("inspect.row_number", row=int(row["row_number"])))

    probabilities = [float(row[f"p({name})"]) for name in label_names]
    st.plotly_chart(
        bar_figure(
            label_names,
            probabilities,
            x_title=t("inspect.axis_label"),
            y_title=t("inspect.axis_probability"),
            value_format="{:.3f}",
            highlight=str(row["predicted"]),
            y_range=(0.0, 1.0),
        ),
        key=state.INSPECT_PROBABILITY_CHART,
    )

    score = float(row["flag_score"])
    if bool(row["flagged"]):
        st.error(t("inspect.flagged", score=score))
    else:
        st.success(t("inspect.not_flagged", score=score))
    st.text(str(row["flag_reason"]))


def _attention_panel(maps: Any) -> None:
    st.subheader(t("inspect.panel_attention"))
    layers = list(range(maps.num_layers))
    heads = list(range(maps.num_heads))
    ensure_choice(state.INSPECT_LAYER, layers, layers[-1])
    ensure_choice(state.INSPECT_HEAD, heads, 0)
    layer_box, head_box = st.columns(2)
    layer = layer_box.selectbox(t("inspect.layer"), layers, key=state.INSPECT_LAYER)
    head = head_box.selectbox(t("inspect.head"), heads, key=state.INSPECT_HEAD)
    st.caption(t("inspect.attention_help"))
    heatmap = attention_heatmap(maps, layer, head)
    heatmap.update_layout(
        title={"text": t("inspect.heatmap_title", layer=layer, head=head)},
        xaxis_title=t("inspect.axis_key"),
        yaxis_title=t("inspect.axis_query"),
        height=560,
    )
    st.plotly_chart(heatmap, key=state.INSPECT_ATTENTION_HEATMAP)
    with st.expander(t("inspect.all_heads", layer=layer)):
        head_titles = {f"Head {index}": t("inspect_answer.head", head=index) for index in heads}
        grid = relabel(
            attention_head_grid(maps, layer),
            title=t("inspect.all_heads", layer=layer),
            annotations={
                KEY_AXIS_TITLE: t("inspect.axis_key"),
                QUERY_AXIS_TITLE: t("inspect.axis_query"),
                **head_titles,
            },
        )
        st.plotly_chart(grid, key=state.INSPECT_ATTENTION_GRID)


def _method_label(name: str) -> str:
    key = f"inspect.method_{name}"
    text = t(key)
    return name.replace("_", " ") if text == key else text


def _method_help(method_name: str) -> str | None:
    for method in available_attribution_methods():
        if method.name == method_name:
            return method.description
    return None


def main() -> None:
    st.title(t("inspect.title"))
    st.caption(t("inspect.intro"))
    store = get_store()

    record = choose_completed_run(store, key=state.INSPECT_RUN)
    if record is None:
        return
    config = store.config(record.run_id)
    max_length = int(config.get("max_length", 256))

    try:
        with st.spinner(t("predict.running")):
            table, _summary = predictions_cached(str(store.home), record.run_id)
        model, tokenizer = load_run_model(str(store.run_dir(record.run_id) / "model"))
    except (DataError, ModelError, ValueError, FileNotFoundError) as error:
        st.error(escape_markdown(getattr(error, "message", None) or error))
        return
    if table.empty:
        st.info(t("inspect.no_examples"))
        return
    rule = st.session_state.get(state.QUALITY_FLAG_RULE)
    if rule is not None and rule[0] == record.run_id:
        _, score, threshold = rule
        table = flag_by_threshold(table, score, threshold)
        st.caption(t("predict.threshold_rule", score=score, threshold=threshold))

    position = _choose_example(table)
    row = table.iloc[position]
    text = str(row["text"])
    text_pair = str(row["text_pair"]) if "text_pair" in row.index else None
    row_number = int(row["row_number"])
    label_names = [column[2:-1] for column in table.columns if column.startswith("p(")]

    with st.spinner(t("inspect.attention_running")):
        maps = attention_cached(
            str(store.home),
            record.run_id,
            row_number,
            text,
            text_pair,
            max_length,
            model,
            tokenizer,
        )
    st.caption(t("inspect.sequence", tokens=maps.seq_len, max_length=max_length))

    context = {
        "home": str(store.home),
        "run_id": record.run_id,
        "row_number": row_number,
        "text": text,
        "text_pair": text_pair,
        "max_length": max_length,
        "model": model,
        "tokenizer": tokenizer,
    }
    method_names = [method.name for method in available_attribution_methods()]
    text_column, prediction_column, attention_column = st.columns([1.0, 0.8, 1.2], gap="medium")
    with text_column:
        _text_panel(context, method_names, maps.seq_len)
    with prediction_column:
        _prediction_panel(row, label_names)
        excerpt = text_pair if text_pair is not None else text
        review_panel(store, record.run_id, str(row_number), excerpt=excerpt)
    with attention_column:
        _attention_panel(maps)


main()
