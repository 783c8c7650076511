"""Tests of feature extraction, detector runs and quality rows on a tiny random Llama."""

from __future__ import annotations

import numpy as np
import pytest

from halluscope.detect import (
    LookbackLensDetector,
    LowLogprobDetector,
    LowLookbackDetector,
    StackedEnsembleDetector,
    UnsupportedWordDetector,
)
from halluscope.evaluate.datasets import LabelledResponse
from halluscope.evaluate.features import extract_features
from halluscope.evaluate.runner import (
    format_table,
    measure_detectors,
    out_of_fold_results,
    run_detectors,
    train_detector,
)
from halluscope.explain.lookback import compute_lookback_ratios
from halluscope.explain.sequence import encode_prompt_response
from halluscope.inference import score_responses
from halluscope.models import load_causal_lm, load_tokenizer

CONTEXT = "The bridge opened in Lyon in 1998 and has 12 arches."


@pytest.fixture(scope="module")
def tiny_model(tiny_llama_dir):
    return load_causal_lm(str(tiny_llama_dir)), load_tokenizer(str(tiny_llama_dir))


def _summary(index: int, response: str, labels: tuple[int, ...]) -> LabelledResponse:
    return LabelledResponse(
        example_id=f"x:{index}",
        source_file="a.jsonl" if index % 2 else "b.jsonl",
        row=index,
        context=CONTEXT,
        question=None,
        response=response,
        label=int(any(labels)),
        word_labels=labels,
    )


# "Paris" and "1999" are not in the context; the other words are.
RECORDS = [
    _summary(1, "The bridge opened in Paris in 1999 .", (0, 0, 0, 0, 1, 0, 1, 0)),
    _summary(2, "The bridge has 12 arches .", (0, 0, 0, 0, 0, 0)),
    _summary(3, "It opened in Lyon in 1998 .", (0, 0, 0, 0, 0, 0, 0)),
    _summary(4, "It has 40 arches in Paris .", (0, 0, 1, 0, 0, 1, 0)),
]


@pytest.fixture(scope="module")
def examples(tiny_model):
    model, tokenizer = tiny_model
    return extract_features(model, tokenizer, RECORDS, max_context_tokens=64)


def test_features_match_teacher_forced_scores(tiny_model, examples):
    model, tokenizer = tiny_model
    first = examples[0].features

    [expected] = score_responses(model, tokenizer, [first.response.prompt], [RECORDS[0].response])

    assert first.response.tokens == expected.tokens
    np.testing.assert_allclose(first.response.logprobs, expected.logprobs, atol=1e-4)
    np.testing.assert_allclose(first.response.entropies, expected.entropies, atol=1e-4)


def test_features_match_lookback_ratios(tiny_model, examples):
    model, tokenizer = tiny_model
    first = examples[0].features
    sequence = encode_prompt_response(
        tokenizer, first.response.prompt, first.response.token_ids.tolist(), context=first.context
    )

    expected = compute_lookback_ratios(model, sequence)

    assert first.lookback_ratios.shape == (len(first.response), 2, 4)
    np.testing.assert_allclose(first.lookback_ratios, expected, atol=1e-5)


def test_cached_low_lookback_equals_detector(tiny_model, examples):
    model, tokenizer = tiny_model
    detector = LowLookbackDetector.for_model(model, tokenizer)

    [cached] = run_detectors(examples[:1], [detector])["low_lookback"]
    direct = detector.detect(examples[0].features.response, context=examples[0].features.context)

    np.testing.assert_allclose(cached.token_scores, direct.token_scores, atol=1e-5)
    assert cached.score == pytest.approx(direct.score, abs=1e-5)


def test_token_labels_follow_words(examples):
    labels = examples[0].token_labels()
    response = examples[0].features.response
    labelled = {response.tokens[i].strip() for i in np.flatnonzero(labels == 1)}

    assert labelled <= {"Paris", "1", "9", "1999"}
    assert "Paris" in labelled
    assert labels.min() >= -1


def test_unsupported_word_is_perfect_at_word_level(examples):
    detectors = [UnsupportedWordDetector(), LowLogprobDetector()]

    results = run_detectors(examples, detectors)
    rows = measure_detectors(examples, detectors, results)

    unsupported = rows[0]
    assert unsupported.detector == "unsupported_word"
    assert unsupported.metrics["word_auroc"] == 1.0
    assert unsupported.metrics["word_best_f1"] == 1.0
    assert unsupported.metrics["response_auroc"] == 1.0
    assert unsupported.counts["words"] == sum(len(record.word_labels) for record in RECORDS)
    assert unsupported.metrics["pairwise_accuracy"] is None
    assert rows[1].metrics["word_auroc"] is not None


def test_table_lists_detectors(examples):
    detectors = [UnsupportedWordDetector()]
    rows = measure_detectors(examples, detectors, run_detectors(examples, detectors))

    table = format_table(rows)

    assert table.splitlines()[0].startswith("| detector | word AUROC |")
    assert "| unsupported_word | 1.000 |" in table


def test_trained_detectors_run_on_examples(tiny_model, examples):
    model, tokenizer = tiny_model

    lens = train_detector(
        LookbackLensDetector, examples, model=model, tokenizer=tokenizer, window=2
    )
    ensemble = train_detector(
        StackedEnsembleDetector, examples, model=model, tokenizer=tokenizer, window=2
    )
    results = run_detectors(examples, [lens, ensemble], model=model, tokenizer=tokenizer)

    assert lens.training["files"] == ["a.jsonl", "b.jsonl"]
    assert set(results) == {"lookback_lens", "stacked_ensemble"}
    for verdicts in results.values():
        assert len(verdicts) == len(examples)
        assert all(0.0 <= verdict.score <= 1.0 for verdict in verdicts)
    direct = lens.detect(examples[0].features.response, context=examples[0].features.context)
    np.testing.assert_allclose(
        direct.token_scores, results["lookback_lens"][0].token_scores, atol=1e-4
    )


def test_out_of_fold_scores_every_example(tiny_model, examples):
    model, tokenizer = tiny_model
    groups = [record.source_file for record in RECORDS]

    results, seconds = out_of_fold_results(
        StackedEnsembleDetector, examples, groups, model=model, tokenizer=tokenizer
    )

    assert len(results) == len(examples)
    assert len(seconds) == 2


def test_measure_pairs(examples):
    paired = []
    for index, example in enumerate(examples[:4]):
        record = LabelledResponse(
            example_id=f"p{index}",
            source_file="qa.jsonl",
            row=index // 2,
            context=CONTEXT,
            question="When?",
            response=example.record.response,
            label=index % 2,
            pair_id=f"q{index // 2}",
        )
        paired.append(type(example)(record, example.features, False))
    detectors = [UnsupportedWordDetector()]

    [row] = measure_detectors(paired, detectors, run_detectors(paired, detectors))

    # Pair q0: faithful "...Paris in 1999" (1) vs "...12 arches" (0); pair q1: 0 vs 1.
    assert row.counts["pairs"] == 2
    assert row.metrics["pairwise_accuracy"] == 0.5
