"""Tests of the sampling-consistency detector: overlap and embedding scores, sampling, registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from halluscope.cli import main
from halluscope.detect import (
    SamplingConsistencyDetector,
    available_detectors,
    consistency,
    create_generation_detectors,
    get_detector,
)
from halluscope.detect.consistency import (
    letter_digit_runs,
    sentence_similarity_scores,
    sentence_spans,
    word_overlap_scores,
)
from halluscope.inference import render_prompt
from halluscope.inference.scoring import tokens_in_span, whitespace_words
from halluscope.models import load_causal_lm, load_tokenizer
from tests.detect.responses import scored_response

# "Rome" and "hosts" occur in all 4 samples, "the" and "festival" in 2, "Zorblax" in none.
RESPONSE = "Rome hosts the Zorblax festival."
SAMPLES = (
    "Rome hosts a festival in spring.",
    "rome hosts the festival",
    "ROME, hosts music.",
    "Rome hosts the games.",
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def encoder():
    from halluscope.training.embeddings import load_encoder

    return load_encoder("minilm")


@pytest.fixture(scope="module")
def tiny_llama(tiny_llama_dir):
    return load_causal_lm(str(tiny_llama_dir)), load_tokenizer(str(tiny_llama_dir))


class FixedSampler:
    """A sampler that returns fixed texts and records the prompts it was called with."""

    def __init__(self, texts):
        self.texts = list(texts)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, prompt: str, count: int) -> list[str]:
        self.calls.append((prompt, count))
        return self.texts


def _word_token_scores(response, result) -> dict[str, list[float]]:
    """Map each whitespace word of the response to the scores of its tokens."""
    scores = {}
    for word, start, end in whitespace_words(response.text):
        indices = tokens_in_span(response.offsets, start, end)
        scores[word] = [float(score) for score in result.token_scores[indices]]
    return scores


# --- token overlap ---------------------------------------------------------------


def test_overlap_scores_count_supporting_samples():
    overlaps = {overlap.word: overlap for overlap in word_overlap_scores(RESPONSE, SAMPLES)}

    assert overlaps["Rome"].supporting == 4
    assert overlaps["Rome"].score == 0.0
    assert overlaps["the"].supporting == 2
    assert overlaps["the"].score == 0.5
    assert overlaps["Zorblax"].supporting == 0
    assert overlaps["Zorblax"].score == 1.0
    assert overlaps["festival."].supporting == 2
    assert overlaps["festival."].score == 0.5
    assert all(overlap.samples == 4 for overlap in overlaps.values())


def test_overlap_matches_whole_runs_only():
    [supported, inside, dash, hyphenated] = word_overlap_scores(
        "Delhi. Delhi — wgc-hsbc", ["They met in delhi", "Delhite wgc"]
    )

    assert supported.supporting == 1
    assert supported.score == 0.5
    # "Delhite" contains "delhi" but as a longer run, so it does not support it.
    assert inside.supporting == 1
    assert dash.word == "—"
    assert dash.score == 0.0
    # "hsbc" occurs in no sample, so neither supports "wgc-hsbc".
    assert hyphenated.supporting == 0
    assert hyphenated.score == 1.0


def test_overlap_empty_sample_supports_nothing():
    [word] = word_overlap_scores("Paris", ["", "Paris"])

    assert word.supporting == 1
    assert word.score == 0.5


def test_overlap_needs_samples():
    with pytest.raises(ValueError, match="at least one sample"):
        word_overlap_scores("Paris", [])


def test_letter_digit_runs_casefold():
    runs = letter_digit_runs("U.S.-based 1,200 Straße")

    assert runs == ["u", "s", "based", "1", "200", "strasse"]


def test_detector_overlap_token_scores(tokenizer):
    response = scored_response(tokenizer, RESPONSE)
    sampler = FixedSampler(SAMPLES)
    detector = SamplingConsistencyDetector(sampler=sampler, use_embeddings=False)

    result = detector.detect(response)

    by_word = _word_token_scores(response, result)
    assert by_word["Rome"] == [0.0]
    assert by_word["hosts"] == [0.0]
    assert by_word["the"] == [0.5]
    assert len(by_word["Zorblax"]) >= 1
    assert all(score == 1.0 for score in by_word["Zorblax"])
    assert all(score == 0.5 for score in by_word["festival."])
    # The default response score is the max of the token scores.
    assert result.score == 1.0
    assert result.flagged
    assert result.reason.startswith("least repeated word 'Zorblax' occurs in 0 of 4 samples")
    assert "3 of 5 words are missing from at least one sample" in result.reason
    assert sampler.calls == [("Q", 5)]


# --- sentences and embeddings ----------------------------------------------------


def test_sentence_spans_split_at_end_marks():
    text = "  It rose 3.5 percent. Then it fell!\nDone  "

    spans = sentence_spans(text)

    assert [text[start:end] for start, end in spans] == [
        "It rose 3.5 percent.",
        "Then it fell!",
        "Done",
    ]


def test_sentence_spans_blank_text():
    assert sentence_spans(" \n ") == []


def test_embedding_scores_identical_and_unrelated(encoder):
    response = "The cat sat on the mat. Quantum chromodynamics describes how quarks bind."
    samples = ["The cat sat on the mat."] * 3

    [same, unrelated] = sentence_similarity_scores(encoder, response, samples)

    assert (same.start, same.end) == (0, 23)
    assert same.similarity == pytest.approx(1.0, abs=1e-4)
    assert same.score == pytest.approx(0.0, abs=1e-4)
    assert unrelated.similarity < 0.3
    assert unrelated.score > 0.7


def test_embedding_uses_best_sample_sentence(encoder):
    response = "The cat sat on the mat."
    samples = ["Stocks fell sharply today. The cat sat on the mat."]

    [sentence] = sentence_similarity_scores(encoder, response, samples)

    assert sentence.similarity == pytest.approx(1.0, abs=1e-4)


def test_embedding_empty_sample_has_zero_similarity(encoder):
    [sentence] = sentence_similarity_scores(encoder, "The cat sat on the mat.", ["", ""])

    assert sentence.similarity == 0.0
    assert sentence.score == 1.0


def test_detector_combines_overlap_and_embedding(tokenizer, encoder):
    response = scored_response(tokenizer, RESPONSE)
    detector = SamplingConsistencyDetector(sampler=FixedSampler(SAMPLES), encoder=encoder)

    result = detector.detect(response)

    [sentence] = sentence_similarity_scores(encoder, response.text, SAMPLES)
    assert 0.0 < sentence.score < 1.0
    by_word = _word_token_scores(response, result)
    assert by_word["Rome"] == [pytest.approx(sentence.score / 2, abs=1e-6)]
    assert by_word["the"] == [pytest.approx((0.5 + sentence.score) / 2, abs=1e-6)]
    assert all(score == pytest.approx((1.0 + sentence.score) / 2) for score in by_word["Zorblax"])
    assert f"lowest sentence similarity to the samples {sentence.similarity:.2f}" in result.reason


def test_encoder_loads_once(tokenizer, encoder, monkeypatch):
    from halluscope.training import embeddings

    loads = []

    def counting_load(name, **options):
        loads.append(name)
        return encoder

    monkeypatch.setattr(embeddings, "load_encoder", counting_load)
    detector = SamplingConsistencyDetector(sampler=FixedSampler(SAMPLES))
    response = scored_response(tokenizer, RESPONSE)

    first = detector.detect(response)
    second = detector.detect(response)

    assert loads == ["minilm"]
    np.testing.assert_array_equal(first.token_scores, second.token_scores)


# --- shapes and settings ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["Rome hosts the Zorblax festival. It ends in May!", "   ", "— …", "東京は日本の首都です。"],
)
def test_token_scores_one_per_token(tokenizer, encoder, text):
    response = scored_response(tokenizer, text)
    detector = SamplingConsistencyDetector(sampler=FixedSampler(SAMPLES), encoder=encoder)

    result = detector.detect(response)

    assert result.token_scores.shape == (len(response),)
    assert np.all(result.token_scores >= 0.0)
    assert np.all(result.token_scores <= 1.0)
    assert 0.0 <= result.score <= 1.0


def test_empty_response_skips_sampling(tokenizer):
    sampler = FixedSampler(SAMPLES)
    response = scored_response(tokenizer, "")

    result = SamplingConsistencyDetector(sampler=sampler).detect(response)

    assert result.token_scores.shape == (0,)
    assert result.score == 0.0
    assert not result.flagged
    assert result.reason == "empty response"
    assert sampler.calls == []


def test_punctuation_response_reason(tokenizer):
    response = scored_response(tokenizer, "— …")
    detector = SamplingConsistencyDetector(sampler=FixedSampler(SAMPLES), use_embeddings=False)

    result = detector.detect(response)

    assert result.reason == "no word with letters or digits to compare with 4 samples"
    assert result.score == 0.0


def test_mean_reduce_averages_tokens(tokenizer):
    response = scored_response(tokenizer, RESPONSE)
    detector = SamplingConsistencyDetector(
        sampler=FixedSampler(SAMPLES), use_embeddings=False, reduce="mean", threshold=0.9
    )

    result = detector.detect(response)

    assert result.score == pytest.approx(float(result.token_scores.mean()))
    assert 0.0 < result.score < 0.9
    assert not result.flagged


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"samples": 0}, "samples must be"),
        ({"samples": 2.5}, "samples must be"),
        ({"temperature": 0.0}, "temperature must be"),
        ({"max_new_tokens": 0}, "max_new_tokens must be"),
        ({"seed": -1}, "seed must be"),
        ({"threshold": 1.5}, "threshold must lie"),
        ({"reduce": "median"}, "reduce must be one of"),
    ],
)
def test_invalid_settings_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        SamplingConsistencyDetector(**options)


def test_without_model_or_sampler_raises(tokenizer):
    response = scored_response(tokenizer, RESPONSE)

    with pytest.raises(ValueError, match=r"for_model\(model, tokenizer\), or pass a sampler"):
        SamplingConsistencyDetector().detect(response)


def test_sampler_without_samples_raises(tokenizer):
    response = scored_response(tokenizer, RESPONSE)

    with pytest.raises(ValueError, match="returned no samples"):
        SamplingConsistencyDetector(sampler=FixedSampler([])).detect(response)


# --- sampling with a tiny random Llama -------------------------------------------


def test_model_samples_in_one_seeded_batch(tiny_llama, monkeypatch):
    model, tokenizer = tiny_llama
    calls = []
    real_generate = consistency.generate_answers

    def recording_generate(model, tokenizer, prompts, **options):
        calls.append((list(prompts), options))
        return real_generate(model, tokenizer, prompts, **options)

    monkeypatch.setattr(consistency, "generate_answers", recording_generate)
    prompt = render_prompt(tokenizer, "Where is Rome?", "Rome is in Italy.")
    detector = SamplingConsistencyDetector.for_model(
        model, tokenizer, samples=4, max_new_tokens=6, temperature=0.8, seed=7
    )

    first = detector.sample_answers(prompt)
    fresh = SamplingConsistencyDetector.for_model(
        model, tokenizer, samples=4, max_new_tokens=6, temperature=0.8, seed=7
    )
    again = fresh.sample_answers(prompt)

    assert len(first) == 4
    assert first == again
    assert len(set(first)) > 1
    assert len(calls) == 2
    prompts, options = calls[0]
    assert prompts == [prompt] * 4
    assert options["do_sample"] is True
    assert options["temperature"] == 0.8
    assert options["seed"] == 7
    assert options["batch_size"] == 4
    assert options["max_new_tokens"] == 6


def test_seeded_samples_reused_per_prompt(tiny_llama, monkeypatch):
    model, tokenizer = tiny_llama
    calls = []
    real_generate = consistency.generate_answers

    def recording_generate(model, tokenizer, prompts, **options):
        calls.append(prompts[0])
        return real_generate(model, tokenizer, prompts, **options)

    monkeypatch.setattr(consistency, "generate_answers", recording_generate)
    rome = render_prompt(tokenizer, "Where is Rome?", "Rome is in Italy.")
    oslo = render_prompt(tokenizer, "Where is Oslo?", "Oslo is in Norway.")
    seeded = SamplingConsistencyDetector.for_model(model, tokenizer, samples=2, max_new_tokens=4)
    unseeded = SamplingConsistencyDetector.for_model(
        model, tokenizer, samples=2, max_new_tokens=4, seed=None
    )

    first = seeded.sample_answers(rome)
    first.append("changed by the caller")
    seeded.sample_answers(oslo)
    again = seeded.sample_answers(rome)
    unseeded.sample_answers(rome)
    unseeded.sample_answers(rome)

    assert calls == [rome, oslo, rome, rome]
    assert len(again) == 2
    assert again == first[:2]


def test_model_sampling_seed_changes_samples(tiny_llama):
    model, tokenizer = tiny_llama
    prompt = render_prompt(tokenizer, "Where is Rome?", "Rome is in Italy.")

    seven = SamplingConsistencyDetector.for_model(model, tokenizer, max_new_tokens=6, seed=7)
    eight = SamplingConsistencyDetector.for_model(model, tokenizer, max_new_tokens=6, seed=8)

    assert seven.sample_answers(prompt) != eight.sample_answers(prompt)


def test_model_detect_end_to_end(tiny_llama, encoder):
    model, tokenizer = tiny_llama
    prompt = render_prompt(tokenizer, "Where is Rome?", "Rome is in Italy.")
    response = scored_response(tokenizer, "Rome is in Italy.", prompt=prompt)
    detector = SamplingConsistencyDetector.for_model(
        model, tokenizer, samples=3, max_new_tokens=8, encoder=encoder
    )

    first = detector.detect(response)
    second = detector.detect(response)

    assert first.token_scores.shape == (len(response),)
    assert np.all((first.token_scores >= 0.0) & (first.token_scores <= 1.0))
    assert "of 3 samples" in first.reason
    np.testing.assert_array_equal(first.token_scores, second.token_scores)


# --- registry, evaluation and stored answers -------------------------------------


def test_registry_creates_detector(tiny_llama):
    model, tokenizer = tiny_llama

    named = get_detector("sampling_consistency", samples=3)
    [created] = create_generation_detectors(
        ["sampling_consistency"], model=model, tokenizer=tokenizer
    )
    defaults = create_generation_detectors(None, model=model, tokenizer=tokenizer)

    assert isinstance(named, SamplingConsistencyDetector)
    assert named.samples == 3
    assert isinstance(created, SamplingConsistencyDetector)
    assert created.model is model
    assert created.tokenizer is tokenizer
    assert SamplingConsistencyDetector in available_detectors("generation")
    assert SamplingConsistencyDetector.expensive
    assert "sampling_consistency" not in [detector.name for detector in defaults]


def test_evaluate_cli_accepts_detector(tiny_llama_dir, tmp_path, capsys):
    context = "The bridge opened in Lyon in 1998 and has 12 arches."
    summaries = [
        ("The bridge opened in Paris in 1999 .", [0, 0, 0, 0, 1, 0, 1, 0]),
        ("The bridge has 12 arches .", [0, 0, 0, 0, 0, 0]),
    ]
    data = tmp_path / "summaries.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"source": context, "summary": text, "words": text.split(), "word_labels": labels}
            )
            + "\n"
            for text, labels in summaries
        ),
        encoding="utf-8",
    )
    output = tmp_path / "results.json"

    status = main(
        [
            "evaluate",
            str(data),
            "--dataset",
            "xsum",
            "--model",
            str(tiny_llama_dir),
            "--detectors",
            "sampling_consistency",
            "-o",
            str(output),
        ]
    )

    assert status == 0
    assert "| sampling_consistency |" in capsys.readouterr().out
    document = json.loads(output.read_text())
    [row] = document["detectors"]
    assert row["detector"] == "sampling_consistency"
    assert row["counts"]["words"] == 14


def test_stored_answers_table_lists_detector(tiny_llama, encoder):
    from dashboard.answer_rendering import answers_table
    from halluscope.answers import GenerationSettings, answer_examples

    model, tokenizer = tiny_llama
    detector = SamplingConsistencyDetector.for_model(
        model, tokenizer, samples=2, max_new_tokens=6, encoder=encoder
    )

    [record] = answer_examples(
        model,
        tokenizer,
        ["Where is Rome?"],
        ["Rome is in Italy."],
        detectors=[detector],
        settings=GenerationSettings(max_new_tokens=6),
    )
    table = answers_table([record], "sampling_consistency")

    assert list(record["detectors"]) == ["sampling_consistency"]
    assert table.loc[0, "score"] == record["detectors"]["sampling_consistency"]["score"]
    assert table.loc[0, "reason"].startswith(("least repeated word", "no word"))
