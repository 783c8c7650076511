"""Tests of the token-classifier detector: windowing, training on a known rule, storage."""

from __future__ import annotations

import random

import numpy as np
import pytest

from halluscope.detect import create_generation_detectors, get_detector
from halluscope.detect.token_classifier import (
    TokenClassifierDetector,
    WordLabelledResponse,
    encode_windows,
    train_token_classifier,
)
from halluscope.models import load_tokenizer
from tests.detect.responses import scored_response

CITIES = ["Lyon", "Paris", "Berlin", "Madrid", "Vienna", "Oslo", "Prague", "Dublin", "Lisbon"]


@pytest.fixture(scope="module")
def encoder_tokenizer():
    return load_tokenizer("minilm")


@pytest.fixture(scope="module")
def lm_tokenizer():
    return load_tokenizer("smollm2-135m")


def _city_example(rng: random.Random) -> WordLabelledResponse:
    """A summary that names the context's city (faithful) or another one (hallucinated)."""
    true_city, other_city = rng.sample(CITIES, 2)
    year = rng.randint(1900, 2000)
    context = f"The bridge opened in {true_city} in {year} and has {rng.randint(2, 20)} arches."
    named = rng.choice([true_city, other_city])
    response = f"The bridge opened in {named} in {year} ."
    labels = (0, 0, 0, 0, int(named != true_city), 0, 0, 0)
    return WordLabelledResponse(response=response, context=context, word_labels=labels)


@pytest.fixture(scope="module")
def city_detector():
    rng = random.Random(0)
    examples = [_city_example(rng) for _ in range(96)]
    return train_token_classifier(examples, epochs=6, learning_rate=1e-4, batch_size=16, seed=0)


def test_short_input_is_one_window(encoder_tokenizer):
    words = "The bridge opened in Paris .".split()

    windows = encode_windows(encoder_tokenizer, words, "The bridge opened in Lyon.")

    assert len(windows) == 1
    window = windows[0]
    assert window.input_ids[0] == encoder_tokenizer.cls_token_id
    assert window.input_ids.count(encoder_tokenizer.sep_token_id) == 2
    assert len(window.first_token) == len(words)
    assert (
        encoder_tokenizer.convert_ids_to_tokens(window.input_ids[window.first_token[4]]) == "paris"
    )


def test_long_context_is_windowed_not_cut(encoder_tokenizer):
    words = "Paris has twelve bridges .".split()
    context = " ".join(f"word{index}" for index in range(300))
    context_ids = encoder_tokenizer(context, add_special_tokens=False)["input_ids"]

    windows = encode_windows(encoder_tokenizer, words, context, max_length=128, stride=32)

    assert len(windows) > 1
    covered = []
    for window in windows:
        assert len(window.input_ids) <= 128
        assert window.first_word == 0
        assert len(window.first_token) == len(words)
        separator = window.input_ids.index(encoder_tokenizer.sep_token_id)
        covered.append(window.input_ids[separator + 1 : -1])
    # Consecutive windows overlap by the stride, and together they hold the whole context.
    assert covered[0][-32:] == covered[1][:32]
    rebuilt = list(covered[0])
    for piece in covered[1:]:
        rebuilt += piece[32:]
    assert rebuilt == context_ids


def test_long_response_is_chunked_by_words(encoder_tokenizer):
    words = [f"w{index}" for index in range(200)]

    windows = encode_windows(encoder_tokenizer, words, "short context", max_length=64, stride=8)

    firsts = sorted({window.first_word for window in windows})
    assert len(firsts) > 1
    seen = set()
    for window in windows:
        assert len(window.input_ids) <= 64
        seen.update(range(window.first_word, window.first_word + len(window.first_token)))
    assert seen == set(range(len(words)))


def test_word_labels_must_match_words():
    with pytest.raises(ValueError, match="2 word labels for 3 words"):
        WordLabelledResponse(response="a b c", context="", word_labels=(0, 1))


def test_training_needs_both_classes():
    example = WordLabelledResponse(response="a b", context="a b", word_labels=(0, 0))

    with pytest.raises(ValueError, match="both faithful"):
        train_token_classifier([example], epochs=1)


def test_classifier_flags_city_missing_from_context(city_detector):
    rng = random.Random(1)
    held_out = [_city_example(rng) for _ in range(40)]

    city_scores = {0: [], 1: []}
    for example in held_out:
        probabilities = city_detector.word_probabilities(example.response.split(), example.context)
        city_scores[example.word_labels[4]].append(float(probabilities[4]))

    assert np.mean(city_scores[1]) > 0.5
    assert np.mean(city_scores[0]) < 0.5
    assert min(city_scores[1]) > max(city_scores[0])


def test_detect_maps_words_to_lm_tokens(city_detector, lm_tokenizer):
    response = scored_response(lm_tokenizer, "The bridge opened in Berlin in 1950 .")

    result = city_detector.detect(response, context="The bridge opened in Lyon in 1950.")

    assert result.token_scores.shape == (len(response),)
    berlin = [i for i, token in enumerate(response.tokens) if "Berlin" in token]
    others = [i for i, token in enumerate(response.tokens) if "bridge" in token]
    assert result.token_scores[berlin].min() > 0.5
    assert result.token_scores[others].max() < 0.5
    assert result.flagged
    assert "'Berlin'" in result.reason


def test_save_and_load_give_same_scores(city_detector, tmp_path):
    words = "The bridge opened in Oslo in 1901 .".split()
    context = "The bridge opened in Oslo in 1901 and has 3 arches."

    folder = city_detector.save(tmp_path / "token_classifier")
    loaded = TokenClassifierDetector.load(folder, threshold=0.3)

    assert (folder / "model.safetensors").is_file()
    assert loaded.threshold == 0.3
    assert loaded.training["responses"] == 96
    np.testing.assert_allclose(
        loaded.word_probabilities(words, context),
        city_detector.word_probabilities(words, context),
        atol=1e-5,
    )


def test_load_rejects_other_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="detector.json is missing"):
        TokenClassifierDetector.load(tmp_path)


def test_registry_needs_trained_folder(lm_tokenizer):
    assert "token_classifier" not in [
        detector.name for detector in create_generation_detectors(None, model=None, tokenizer=None)
    ]
    with pytest.raises(ValueError, match="must be trained first"):
        create_generation_detectors(["token_classifier"], model=None, tokenizer=lm_tokenizer)
    assert isinstance(get_detector("token_classifier"), TokenClassifierDetector)
