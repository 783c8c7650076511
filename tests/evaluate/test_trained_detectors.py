"""Tests of the trained detectors (lookback lens, stacked ensemble) on synthetic features."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from halluscope.detect import (
    LookbackLensDetector,
    StackedEnsembleDetector,
    TokenFeatures,
    available_detectors,
    create_generation_detectors,
    load_trained_detector,
)
from halluscope.detect.trained import (
    novel_ngram,
    novel_word_share,
    source_pmi,
    window_means,
)
from halluscope.evaluate.metrics import auroc
from halluscope.inference import ScoredResponse

LAYERS, HEADS = 2, 3


def _response(count: int) -> ScoredResponse:
    tokens = tuple(f" w{index}" for index in range(count))
    starts = np.cumsum([0] + [len(token) for token in tokens[:-1]])
    offsets = np.stack([starts, starts + [len(token) for token in tokens]], axis=1)
    return ScoredResponse(
        prompt="Q",
        text="".join(tokens),
        token_ids=np.arange(count),
        tokens=tokens,
        offsets=offsets,
        logprobs=np.full(count, -0.5),
        entropies=np.full(count, 1.0),
        ranks=np.zeros(count, dtype=np.int64),
        vocab_size=100,
        prompt_length=1,
    )


def _lookback_examples(seed: int, count: int = 30):
    """Responses whose hallucinated tokens have a low ratio in head (1, 2) only."""
    rng = np.random.default_rng(seed)
    examples, labels = [], []
    for _ in range(count):
        length = int(rng.integers(6, 12))
        token_labels = np.zeros(length, dtype=np.int64)
        start = int(rng.integers(0, length - 3))
        token_labels[start : start + 3] = 1
        ratios = rng.uniform(0.3, 0.7, size=(length, LAYERS, HEADS))
        ratios[:, 1, 2] = np.where(token_labels == 1, 0.1, 0.9) + rng.normal(0, 0.05, length)
        examples.append(TokenFeatures(_response(length), "ctx", ratios.astype(np.float32)))
        labels.append(token_labels)
    return examples, labels


def test_window_means_centres_window():
    values = np.arange(5, dtype=np.float64)[:, None]

    means = window_means(values, 2)

    # Token t averages tokens t-1 and t; token 0 only itself.
    assert means[:, 0].tolist() == [0.0, 0.5, 1.5, 2.5, 3.5]
    assert window_means(values, 1)[:, 0].tolist() == values[:, 0].tolist()


def test_window_means_rejects_zero_window():
    with pytest.raises(ValueError, match="window must be at least 1"):
        window_means(np.zeros((2, 1)), 0)


def test_lookback_lens_learns_informative_head():
    train, train_labels = _lookback_examples(seed=0)
    test, test_labels = _lookback_examples(seed=1)

    detector = LookbackLensDetector.train(train, train_labels, window=1)

    scores = np.concatenate([detector.token_scores_from(example) for example in test])
    assert auroc(np.concatenate(test_labels), scores) > 0.95
    weights = np.abs(detector.classifier.coefficients)
    assert detector.classifier.feature_names[int(np.argmax(weights))] == "L1H2"
    assert detector.training["tokens"] == sum(len(labels) for labels in train_labels)


def test_lookback_lens_skips_unlabelled_tokens():
    train, train_labels = _lookback_examples(seed=0)
    masked = [np.where(np.arange(len(labels)) == 0, -1, labels) for labels in train_labels]

    detector = LookbackLensDetector.train(train, masked, window=1)

    assert detector.training["tokens"] == sum(len(labels) - 1 for labels in train_labels)


def test_trained_detector_save_load_roundtrip(tmp_path):
    train, train_labels = _lookback_examples(seed=0)
    detector = LookbackLensDetector.train(train, train_labels, window=4, reduce="max")

    path = detector.save(tmp_path / "detectors" / "lookback_lens.json")
    loaded = load_trained_detector(path)

    assert isinstance(loaded, LookbackLensDetector)
    assert loaded.window == 4
    assert loaded.reduce == "max"
    assert loaded.threshold == detector.threshold
    np.testing.assert_allclose(
        loaded.token_scores_from(train[0]), detector.token_scores_from(train[0])
    )
    result = loaded.result_from(train[0])
    assert result.score == pytest.approx(float(result.token_scores.max()))
    assert json.loads(path.read_text())["detector"] == "lookback_lens"


def test_lookback_lens_rejects_other_head_count():
    train, train_labels = _lookback_examples(seed=0)
    detector = LookbackLensDetector.train(train, train_labels)
    other = TokenFeatures(_response(4), "ctx", np.zeros((4, 3, 3), dtype=np.float32))

    with pytest.raises(ValueError, match="trained on 6 heads, but this model has 9"):
        detector.token_scores_from(other)


def test_load_rejects_other_detector_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"detector": "low_logprob"}), encoding="utf-8")

    with pytest.raises(ValueError, match="stores a detector named 'low_logprob'"):
        load_trained_detector(path)
    with pytest.raises(ValueError, match="expected a saved 'stacked_ensemble' detector"):
        StackedEnsembleDetector.load(path)


def test_stacked_ensemble_learns_from_base_scores():
    rng = np.random.default_rng(0)
    examples, labels = [], []
    for _ in range(40):
        length = 8
        token_labels = (rng.uniform(size=length) < 0.4).astype(np.int64)
        scores = {
            "low_logprob": np.where(token_labels == 1, 0.8, 0.3) + rng.normal(0, 0.1, length),
            "high_entropy": rng.uniform(size=length),
        }
        examples.append(TokenFeatures(_response(length), "ctx", detector_scores=scores))
        labels.append(token_labels)

    detector = StackedEnsembleDetector.train(
        examples[:30],
        labels[:30],
        base_detectors=("low_logprob", "high_entropy"),
        token_features=(),
        window=1,
        response_means=False,
    )

    scores = np.concatenate([detector.token_scores_from(example) for example in examples[30:]])
    assert auroc(np.concatenate(labels[30:]), scores) > 0.9
    assert detector.classifier.feature_names == (
        "low_logprob",
        "high_entropy",
        "low_logprob_window_mean",
        "high_entropy_window_mean",
    )


def _words_response(text: str) -> ScoredResponse:
    """A response with one token per whitespace-separated word (spaces in front)."""
    words = text.split(" ")
    tokens = tuple(words[:1]) + tuple(f" {word}" for word in words[1:])
    starts = np.cumsum([0] + [len(token) for token in tokens[:-1]])
    offsets = np.stack([starts, starts + [len(token) for token in tokens]], axis=1)
    # A leading space belongs to no word, so each token's word starts after it.
    offsets[1:, 0] += 1
    response = _response(len(tokens))
    return dataclasses.replace(response, text=text, tokens=tokens, offsets=offsets)


def test_novel_word_share_by_word():
    response = _response(3)  # words "w0", "w1", "w2", one token each

    values = novel_word_share(TokenFeatures(response, "We saw W1 and w2's friend."))

    assert values.tolist() == [1.0, 0.0, 0.0]
    assert novel_word_share(TokenFeatures(response, None)).tolist() == [0.0, 0.0, 0.0]


def test_novel_ngram_new_phrase():
    context = "The prime minister of Germany met the mayor of Paris."  # has "Germany met"
    response = _words_response("the prime minister of France met the mayor")

    bigrams = novel_ngram(TokenFeatures(response, context), 2)

    # "of France" and "France met" are new; "minister of" and "met the" are in the context.
    assert bigrams.tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert novel_ngram(TokenFeatures(response, None), 2).tolist() == [0.0] * 8

    # Every word and bigram of "the mayor of Germany" is in the context; its last trigram is not.
    mixed = TokenFeatures(_words_response("the mayor of Germany"), context)
    assert novel_ngram(mixed, 2).tolist() == [0, 0, 0, 0]
    assert novel_ngram(mixed, 3).tolist() == [0, 0, 0, 1]


def test_source_pmi_sign():
    response = dataclasses.replace(_response(3), logprobs=np.array([-0.5, -4.0, -1.0]))
    features = TokenFeatures(response, "ctx", context_free_logprobs=np.array([-3.0, -1.0, -1.0]))

    pmi = source_pmi(features)

    # The context made w0 likelier, w1 less likely, and left w2 alone.
    assert pmi.tolist() == [2.5, -3.0, 0.0]
    assert source_pmi(TokenFeatures(response, None)).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="context_free_logprobs"):
        source_pmi(TokenFeatures(response, "ctx"))


def test_ensemble_token_features_in_columns():
    detector = StackedEnsembleDetector(base_detectors=("low_logprob",), window=1)
    features = TokenFeatures(
        _response(2),
        "w0",
        detector_scores={"low_logprob": np.array([0.2, 0.9])},
        context_free_logprobs=np.array([-2.0, -0.25]),
    )

    matrix = detector.feature_matrix(features)

    names = detector.feature_names()
    assert names[:6] == (
        "low_logprob",
        "surprisal",
        "log_rank",
        "novel_word_share",
        "source_pmi",
        "context_free_surprisal",
    )
    assert len(names) == matrix.shape[1] == 8 * 3
    assert matrix[:, 1].tolist() == [0.5, 0.5]
    assert matrix[:, 3].tolist() == [0.0, 1.0]
    assert matrix[:, 4].tolist() == [1.5, -0.25]
    # The response means repeat the mean of each column on every token.
    assert names[16] == "low_logprob_response_mean"
    assert matrix[:, 16].tolist() == pytest.approx([0.55, 0.55])


def test_training_needs_both_classes():
    train, train_labels = _lookback_examples(seed=0, count=3)

    with pytest.raises(ValueError, match="both faithful"):
        LookbackLensDetector.train(train, [np.zeros_like(labels) for labels in train_labels])


def test_trained_detectors_registered_but_not_default():
    names = [cls.name for cls in available_detectors("generation")]
    defaults = [
        detector.name for detector in create_generation_detectors(None, model=None, tokenizer=None)
    ]

    assert "lookback_lens" in names
    assert "stacked_ensemble" in names
    assert "lookback_lens" not in defaults


def test_trained_detector_by_name_needs_file():
    with pytest.raises(ValueError, match="must be trained first"):
        create_generation_detectors(["lookback_lens"], model=None, tokenizer=None)
