"""Run models on inputs: batched classification, with one tokenization policy.

The generation entry points (batched generation with log-probs, teacher-forced
scoring of given responses) belong here too.
"""

from halluscope.inference.classify import (
    ClassificationPredictions,
    InferenceCancelledError,
    gold_to_ids,
    predict_classifier,
)
from halluscope.inference.encoding import (
    SPECIAL_SEGMENT,
    EncodedExample,
    encode_batch,
    encode_example,
)
from halluscope.inference.generate import (
    FINISH_REASONS,
    FinishReason,
    GeneratedAnswer,
    TokenScores,
    decode_token_pieces,
    generate_answers,
    token_statistics,
)
from halluscope.inference.prompting import (
    GROUNDED_SYSTEM_PROMPT,
    build_messages,
    encode_prompt,
    has_chat_template,
    render_plain_prompt,
    render_prompt,
)
from halluscope.inference.runtime import (
    clamp_max_length,
    eval_mode,
    label_names_of,
    model_device,
)
from halluscope.inference.scoring import (
    SUMMARY_INSTRUCTION,
    ScoredResponse,
    WordScore,
    analyze_records,
    score_response,
    score_responses,
    whitespace_words,
    word_scores,
)

__all__ = [
    "FINISH_REASONS",
    "GROUNDED_SYSTEM_PROMPT",
    "SPECIAL_SEGMENT",
    "SUMMARY_INSTRUCTION",
    "ClassificationPredictions",
    "EncodedExample",
    "FinishReason",
    "GeneratedAnswer",
    "InferenceCancelledError",
    "ScoredResponse",
    "TokenScores",
    "WordScore",
    "analyze_records",
    "build_messages",
    "clamp_max_length",
    "decode_token_pieces",
    "encode_batch",
    "encode_example",
    "encode_prompt",
    "eval_mode",
    "generate_answers",
    "gold_to_ids",
    "has_chat_template",
    "label_names_of",
    "model_device",
    "predict_classifier",
    "render_plain_prompt",
    "render_prompt",
    "score_response",
    "score_responses",
    "token_statistics",
    "whitespace_words",
    "word_scores",
]
