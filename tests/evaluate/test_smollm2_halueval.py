"""The real SmolLM2-135M on the first HaluEval QA pairs: features, detectors and metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from halluscope.detect import create_generation_detectors
from halluscope.evaluate.datasets import load_halueval
from halluscope.evaluate.features import extract_features
from halluscope.evaluate.runner import measure_detectors, run_detectors
from halluscope.inference import score_responses
from halluscope.models import load_causal_lm, load_tokenizer

pytestmark = pytest.mark.integration

QUESTIONS = 3


QA_FILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "halueval-qa" / "qa.jsonl"


@pytest.fixture(scope="module")
def evaluated():
    if not QA_FILE.is_file():
        pytest.skip(f"shared labelled data not found at {QA_FILE}")
    dataset = load_halueval(QA_FILE, limit=QUESTIONS)
    model = load_causal_lm("smollm2-135m")
    tokenizer = load_tokenizer("smollm2-135m")
    examples = extract_features(model, tokenizer, dataset.records)
    detectors = create_generation_detectors(None, model=model, tokenizer=tokenizer)
    results = run_detectors(examples, detectors)
    return model, tokenizer, examples, detectors, results


def test_features_match_scoring(evaluated):
    model, tokenizer, examples, _, _ = evaluated
    first = examples[1].features

    [expected] = score_responses(model, tokenizer, [first.response.prompt], [first.response.text])

    np.testing.assert_allclose(first.response.logprobs, expected.logprobs, atol=1e-3)
    assert first.lookback_ratios.shape == (len(first.response), 30, 9)


def test_unsupported_word_flags_invented_city(evaluated):
    _, _, examples, _, results = evaluated
    # Line 2: the knowledge names Delhi; the hallucinated answer says Mumbai.
    right, invented = results["unsupported_word"][2], results["unsupported_word"][3]

    assert examples[2].record.response == "Delhi"
    assert not right.flagged
    assert invented.flagged
    assert "'Mumbai'" in invented.reason


def test_metrics_cover_every_detector(evaluated):
    _, _, examples, detectors, results = evaluated

    rows = measure_detectors(examples, detectors, results)

    assert [row.detector for row in rows] == [detector.name for detector in detectors]
    for row in rows:
        assert row.counts["pairs"] == QUESTIONS
        assert 0.0 <= row.metrics["pairwise_accuracy"] <= 1.0
        assert 0.0 <= row.metrics["response_auroc"] <= 1.0
