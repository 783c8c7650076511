"""Explain single predictions: attention maps, captum attributions, word-level views."""

from halluscope.explain.attention import (
    AttentionMaps,
    AttentionUnavailableError,
    HeadStatistic,
    extract_attention,
)
from halluscope.explain.attribution import (
    AttributionMethod,
    InputXGradientMethod,
    IntegratedGradientsMethod,
    MethodOutput,
    SaliencyMethod,
    ScoreFunction,
    TokenAttributions,
    attribute,
    attribute_score,
    available_attribution_methods,
    convergence_warning,
    get_attribution_method,
    register_attribution_method,
)
from halluscope.explain.figures import (
    attention_head_grid,
    attention_heatmap,
    rollout_heatmap,
    word_attribution_bar,
)
from halluscope.explain.render import render_word_colouring
from halluscope.explain.words import Word, WordAttributions, aggregate_to_words, split_words

__all__ = [
    "AttentionMaps",
    "AttentionUnavailableError",
    "AttributionMethod",
    "HeadStatistic",
    "InputXGradientMethod",
    "IntegratedGradientsMethod",
    "MethodOutput",
    "SaliencyMethod",
    "ScoreFunction",
    "TokenAttributions",
    "Word",
    "WordAttributions",
    "aggregate_to_words",
    "attention_head_grid",
    "attention_heatmap",
    "attribute",
    "attribute_score",
    "available_attribution_methods",
    "convergence_warning",
    "extract_attention",
    "get_attribution_method",
    "register_attribution_method",
    "render_word_colouring",
    "rollout_heatmap",
    "split_words",
    "word_attribution_bar",
]
