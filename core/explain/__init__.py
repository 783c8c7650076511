"""Explain single predictions: attention maps, captum attributions, word-level views."""

from halluscope.explain.answer_attribution import (
    ANSWER_ATTRIBUTION_METHODS,
    AnswerAttributions,
    attribute_answer,
)
from halluscope.explain.attention import (
    AttentionMaps,
    AttentionUnavailableError,
    HeadStatistic,
    extract_attention,
    extract_sequence_attention,
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
    attention_row_bar,
    lookback_heatmap,
    rollout_heatmap,
    token_score_bar,
    word_attribution_bar,
)
from halluscope.explain.lookback import compute_lookback_ratios, lookback_ratios
from halluscope.explain.render import render_token_scores, render_word_colouring
from halluscope.explain.sequence import (
    CONTEXT_SEGMENT,
    QUESTION_SEGMENT,
    SEGMENT_NAMES,
    PromptResponseSequence,
    encode_prompt_response,
)
from halluscope.explain.words import Word, WordAttributions, aggregate_to_words, split_words

__all__ = [
    "ANSWER_ATTRIBUTION_METHODS",
    "CONTEXT_SEGMENT",
    "QUESTION_SEGMENT",
    "SEGMENT_NAMES",
    "AnswerAttributions",
    "AttentionMaps",
    "AttentionUnavailableError",
    "AttributionMethod",
    "HeadStatistic",
    "InputXGradientMethod",
    "IntegratedGradientsMethod",
    "MethodOutput",
    "PromptResponseSequence",
    "SaliencyMethod",
    "ScoreFunction",
    "TokenAttributions",
    "Word",
    "WordAttributions",
    "aggregate_to_words",
    "attention_head_grid",
    "attention_heatmap",
    "attention_row_bar",
    "attribute",
    "attribute_answer",
    "attribute_score",
    "available_attribution_methods",
    "compute_lookback_ratios",
    "convergence_warning",
    "encode_prompt_response",
    "extract_attention",
    "extract_sequence_attention",
    "get_attribution_method",
    "lookback_heatmap",
    "lookback_ratios",
    "register_attribution_method",
    "render_token_scores",
    "render_word_colouring",
    "rollout_heatmap",
    "split_words",
    "token_score_bar",
    "word_attribution_bar",
]
