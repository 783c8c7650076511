"""Tests of batched classification and the prediction result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halluscope.inference import (
    ClassificationPredictions,
    InferenceCancelledError,
    encode_batch,
    encode_example,
    predict_classifier,
)

CONTEXTS = [
    "Paris is the capital of France.",
    "The Nile flows north through Egypt and Sudan into the Mediterranean Sea, "
    "passing Cairo on its way.",
    "Water boils at 100 degrees.",
    "A short one.",
    "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
]
CLAIMS = [
    "France's capital is Paris.",
    "The Nile flows south.",
    "Water boils at 50 degrees.",
    "Short.",
    "Everest is in Peru.",
]


def test_predict_shapes_and_labels(tiny_classifier, tokenizer):
    predictions = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS)

    assert predictions.probabilities.shape == (5, 2)
    assert predictions.logits.shape == (5, 2)
    assert predictions.label_names == ("supported", "hallucinated")
    assert predictions.truncated.shape == (5,)
    assert predictions.predicted.shape == (5,)


def test_predict_probabilities_sum_to_one(tiny_classifier, tokenizer):
    predictions = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS)

    np.testing.assert_allclose(predictions.probabilities.sum(axis=1), 1.0, atol=1e-6)
    expected = torch.softmax(torch.from_numpy(predictions.logits), dim=-1).numpy()
    np.testing.assert_allclose(predictions.probabilities, expected, atol=1e-6)


def test_predict_batched_equals_unbatched(tiny_classifier, tokenizer):
    batched = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS, batch_size=32)
    unbatched = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS, batch_size=1)
    pairs_of_two = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS, batch_size=2)

    np.testing.assert_allclose(batched.logits, unbatched.logits, atol=1e-5)
    np.testing.assert_allclose(pairs_of_two.logits, unbatched.logits, atol=1e-5)


def test_predict_keeps_input_order(tiny_classifier, tokenizer):
    predictions = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS, batch_size=2)

    for row in (0, 1, 4):
        single = predict_classifier(tiny_classifier, tokenizer, [CONTEXTS[row]], [CLAIMS[row]])
        np.testing.assert_allclose(predictions.logits[row], single.logits[0], atol=1e-5)


def test_predict_truncation_flag(tiny_classifier, tokenizer):
    long_context = " ".join(["word"] * 60)
    predictions = predict_classifier(
        tiny_classifier, tokenizer, [long_context, "short"], ["a claim", "a claim"], max_length=32
    )

    assert predictions.truncated[0]
    assert not predictions.truncated[1]


def test_predict_single_texts_without_pairs(tiny_classifier, tokenizer):
    predictions = predict_classifier(tiny_classifier, tokenizer, CONTEXTS)

    assert predictions.probabilities.shape == (5, 2)
    assert not predictions.truncated.any()


def test_predict_restores_training_mode(tiny_classifier, tokenizer):
    expected = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS)
    tiny_classifier.train()

    predictions = predict_classifier(tiny_classifier, tokenizer, CONTEXTS, CLAIMS)

    assert tiny_classifier.training
    np.testing.assert_allclose(predictions.logits, expected.logits, atol=1e-6)


def test_predict_reports_progress(tiny_classifier, tokenizer):
    calls = []

    predict_classifier(
        tiny_classifier,
        tokenizer,
        CONTEXTS,
        CLAIMS,
        batch_size=2,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_predict_cancel_raises(tiny_classifier, tokenizer):
    polls = []

    def stop_after_first_batch() -> bool:
        polls.append(1)
        return len(polls) > 1

    with pytest.raises(InferenceCancelledError) as error:
        predict_classifier(
            tiny_classifier,
            tokenizer,
            CONTEXTS,
            CLAIMS,
            batch_size=2,
            should_stop=stop_after_first_batch,
        )
    assert error.value.completed == 2
    assert error.value.total == 5


def test_predict_empty_input(tiny_classifier, tokenizer):
    predictions = predict_classifier(tiny_classifier, tokenizer, [], [])

    assert predictions.probabilities.shape == (0, 2)
    assert len(predictions.to_frame([], [])) == 0


def test_predict_rejects_bare_string(tiny_classifier, tokenizer):
    with pytest.raises(TypeError, match="not one string"):
        predict_classifier(tiny_classifier, tokenizer, "a single text")


def test_predict_rejects_length_mismatch(tiny_classifier, tokenizer):
    with pytest.raises(ValueError, match="3 rows but text_pairs has 2"):
        predict_classifier(tiny_classifier, tokenizer, ["a", "b", "c"], ["x", "y"])


def test_pair_truncation_keeps_claim(tokenizer):
    context = " ".join(["filler"] * 50)
    claim = "the moon is made of cheese"

    example = encode_example(tokenizer, context, claim, max_length=20)

    claim_tokens = [
        token
        for token, segment in zip(example.tokens, example.segment_ids, strict=True)
        if segment == 1
    ]
    assert claim_tokens == tokenizer.tokenize(claim)
    assert len(example.tokens) == 20
    assert example.truncated


def test_pair_longer_than_max_length_falls_back(tokenizer):
    features, lengths, truncated = encode_batch(
        tokenizer, ["short context"], [" ".join(["claim"] * 30)], max_length=16
    )

    assert lengths.tolist() == [16]
    assert truncated.tolist() == [True]
    assert len(features[0]["input_ids"]) == 16


def _predictions(probabilities) -> ClassificationPredictions:
    probabilities = np.asarray(probabilities, dtype=np.float32)
    return ClassificationPredictions(
        probabilities=probabilities,
        logits=np.log(probabilities),
        label_names=("supported", "hallucinated"),
        truncated=np.zeros(len(probabilities), dtype=bool),
    )


def test_predictions_confidence_and_margin():
    predictions = _predictions([[0.9, 0.1], [0.3, 0.7]])

    assert predictions.predicted.tolist() == [0, 1]
    np.testing.assert_allclose(predictions.confidence, [0.9, 0.7], atol=1e-6)
    np.testing.assert_allclose(predictions.margin, [0.8, 0.4], atol=1e-6)
    assert predictions.predicted_labels == ("supported", "hallucinated")


def test_predictions_reject_wrong_shape():
    with pytest.raises(ValueError, match="probabilities must have shape"):
        ClassificationPredictions(
            probabilities=np.full((2, 3), 1 / 3),
            logits=np.zeros((2, 3)),
            label_names=("supported", "hallucinated"),
            truncated=np.zeros(2, dtype=bool),
        )


def test_predictions_reject_rows_not_summing_to_one():
    with pytest.raises(ValueError, match="rows \\[1\\] sum to"):
        _predictions([[0.5, 0.5], [0.5, 0.2]])


def test_to_frame_columns_and_gold():
    predictions = _predictions([[0.9, 0.1], [0.3, 0.7]])

    frame = predictions.to_frame(["c1", "c2"], ["k1", "k2"], gold=["supported", 0])

    assert list(frame.columns) == [
        "text",
        "text_pair",
        "predicted",
        "confidence",
        "margin",
        "p(supported)",
        "p(hallucinated)",
        "truncated",
        "gold",
        "correct",
    ]
    assert frame["predicted"].tolist() == ["supported", "hallucinated"]
    assert frame["gold"].tolist() == ["supported", "supported"]
    assert frame["correct"].tolist() == [True, False]


def test_to_frame_rejects_unknown_gold_name():
    predictions = _predictions([[0.9, 0.1], [0.3, 0.7]])

    with pytest.raises(ValueError, match="gold row 1: label 'maybe'"):
        predictions.to_frame(gold=["supported", "maybe"])


def test_predict_clamps_to_position_limit(tiny_classifier, tokenizer):
    long_context = " ".join(["word"] * 300)

    predictions = predict_classifier(
        tiny_classifier, tokenizer, [long_context], ["claim"], max_length=1000
    )

    assert predictions.truncated.tolist() == [True]
    assert np.all(np.isfinite(predictions.logits))
