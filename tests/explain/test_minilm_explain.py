"""Integration test: prediction, attention and attribution on the bundled MiniLM encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halluscope.detect import ConfidenceDetector
from halluscope.explain import aggregate_to_words, attribute, extract_attention
from halluscope.inference import predict_classifier
from halluscope.models import load_sequence_classifier, load_tokenizer

pytestmark = pytest.mark.integration

CONTEXT = "The Eiffel Tower, completed in 1889, stands in Paris and is about 330 metres tall."
CLAIM = "The Eiffel Tower was completed in 1925."


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    model = load_sequence_classifier(
        "minilm", id2label={0: "supported", 1: "hallucinated"}, device=torch.device("cpu")
    )
    return model, load_tokenizer("minilm")


def test_minilm_predict_and_detect(minilm):
    model, tokenizer = minilm

    predictions = predict_classifier(model, tokenizer, [CONTEXT, CONTEXT], [CLAIM, "It is tall."])
    results = ConfidenceDetector().detect_batch(predictions)

    assert predictions.probabilities.shape == (2, 2)
    assert len(results) == 2
    assert all(0.0 <= result.score <= 1.0 for result in results)


def test_minilm_attention_shape(minilm):
    model, tokenizer = minilm

    maps = extract_attention(model, tokenizer, CONTEXT, CLAIM)

    assert maps.weights.shape[:2] == (6, 12)
    np.testing.assert_allclose(maps.weights.sum(axis=-1), 1.0, atol=1e-4)


def test_minilm_integrated_gradients_converges(minilm):
    model, tokenizer = minilm

    result = attribute(model, tokenizer, CONTEXT, CLAIM, target=1, n_steps=50)
    words = aggregate_to_words(result, CONTEXT, CLAIM)

    assert result.delta_warning is None
    logit_change = result.target_logit - result.baseline_logit
    assert abs(result.scores.sum() - logit_change) <= abs(result.convergence_delta) + 1e-4
    assert [word.text for word in words.pair_words][-2:] == ["1925", "."]
