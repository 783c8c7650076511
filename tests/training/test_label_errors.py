"""Tests of the label-error ranking, noise measurement and nearest training rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from halluscope.demo import inject_label_noise
from halluscope.models import load_tokenizer
from halluscope.runs import RunStore
from halluscope.training import ClassifierTrainConfig, run_classifier_training
from halluscope.training.embeddings import ALIGNMENT_FEATURES, load_encoder, pair_features
from halluscope.training.label_errors import (
    LABEL_ISSUES_FILE,
    LabelIssues,
    load_run_label_issues,
    out_of_sample_probabilities,
    precision_recall_at_k,
    rank_run_label_issues,
)
from halluscope.training.neighbours import (
    TRAIN_EMBEDDINGS_FILE,
    build_training_index,
    nearest_rows,
    nearest_training_rows,
)


def test_precision_recall_at_k_counts_hits():
    ranking = [4, 2, 0, 1, 3]

    assert precision_recall_at_k(ranking, [2, 3]) == (0.5, 0.5)
    assert precision_recall_at_k(ranking, [2, 3], k=5) == (0.4, 1.0)
    assert precision_recall_at_k(ranking, [4], k=1) == (1.0, 1.0)


def test_precision_recall_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        precision_recall_at_k([0, 1, 2], [1], k=4)
    with pytest.raises(ValueError, match="noisy_positions is empty"):
        precision_recall_at_k([0, 1, 2], [])


def test_out_of_sample_probabilities_expose_flips():
    rng = np.random.default_rng(0)
    clean = np.repeat([0, 1], 100)
    features = rng.normal(size=(200, 4)) + 3.0 * clean[:, None]
    noisy = clean.copy()
    flipped = rng.choice(200, size=20, replace=False)
    noisy[flipped] = 1 - noisy[flipped]

    probabilities = out_of_sample_probabilities(features, noisy, folds=5)
    quality = probabilities[np.arange(200), noisy]
    precision, _ = precision_recall_at_k(np.argsort(quality), flipped)

    assert probabilities.shape == (200, 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert precision >= 0.9


def test_folds_need_two_rows_per_class():
    with pytest.raises(ValueError, match="smallest class has 1 row"):
        out_of_sample_probabilities(np.zeros((4, 2)), [0, 0, 0, 1])


def test_label_issues_frame_and_json_round_trip():
    issues = LabelIssues(
        row_numbers=(5, 6, 7),
        labels=np.asarray([0, 1, 1]),
        label_names=("no", "yes"),
        pred_probs=np.asarray([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]),
        label_quality=np.asarray([0.9, 0.2, 0.7]),
        is_issue=np.asarray([False, True, False]),
        flipped=np.asarray([False, True, False]),
    )

    frame = issues.to_frame(texts=["a", "b", "c"])
    restored = LabelIssues.from_dict(json.loads(json.dumps(issues.to_dict())))

    assert frame["row_number"].tolist() == [6, 7, 5]
    assert frame["given_label"].tolist() == ["yes", "yes", "no"]
    assert frame["suggested_label"].tolist() == ["no", "yes", "no"]
    assert frame["text"].tolist() == ["b", "c", "a"]
    assert issues.precision_recall_at_k() == (1.0, 1.0)
    assert restored.row_numbers == issues.row_numbers
    assert (restored.is_issue == issues.is_issue).all()
    assert np.allclose(restored.pred_probs, issues.pred_probs)


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory):
    tokenizer = load_tokenizer("minilm")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    folder = tmp_path_factory.mktemp("tiny") / "tiny-bert"
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_pair_features_see_unseen_claim_words(tiny_model_folder):
    encoder = load_encoder(str(tiny_model_folder), max_length=32)
    context = "The bridge was built in 1874 by Mara Velt."

    features = pair_features(
        encoder,
        [context, context],
        ["The bridge was built in 1874.", "The bridge was built in 1912."],
    )

    unseen = ALIGNMENT_FEATURES.index("unseen_tokens")
    assert features.shape == (2, len(ALIGNMENT_FEATURES))
    assert features[0, unseen] == 0
    assert features[1, unseen] >= 1
    best = ALIGNMENT_FEATURES.index("min_best_similarity")
    assert -1.0 <= features[1, best] <= 1.0


@pytest.fixture
def noisy_csv(tmp_path):
    """40 rows labelled by whether the claim's year is in the context, 20% of labels flipped."""
    rows = []
    for i in range(40):
        year = 1800 + i
        supported = i % 2 == 0
        rows.append(
            {
                "context": f"Town {i} opened its school in {year}.",
                "claim": f"Town {i} opened its school in {year if supported else year + 57}.",
                "label": "supported" if supported else "hallucinated",
            }
        )
    noisy, _ = inject_label_noise(pd.DataFrame(rows), 0.2, seed=3)
    path = tmp_path / "noisy.csv"
    noisy.to_csv(path, index=False)
    return path


def create_trained_run(home, model_folder, data_path, **settings):
    store = RunStore(home)
    config = ClassifierTrainConfig(
        model=str(model_folder),
        data_path=str(data_path),
        text_column="context",
        text_pair_column="claim",
        label_column="label",
        max_length=32,
        epochs=1,
        batch_size=8,
        record_dynamics=False,
        **settings,
    )
    record = store.create_run(
        kind="classification", model=config.model, data=config.data_path, config=config.to_dict()
    )
    run_classifier_training(store, record.run_id, config)
    return store, record.run_id


def test_run_ranking_reads_flipped_column(tiny_model_folder, noisy_csv, tmp_path):
    store, run_id = create_trained_run(tmp_path / "home", tiny_model_folder, noisy_csv)

    issues, examples = rank_run_label_issues(store, run_id, folds=3)
    stored = load_run_label_issues(store, run_id)
    frame = pd.read_csv(noisy_csv)
    expected_flips = [bool(frame["label_flipped"].iloc[row - 1]) for row in examples.row_numbers]

    assert (store.run_dir(run_id) / LABEL_ISSUES_FILE).is_file()
    assert len(issues) == 32
    assert issues.flipped.tolist() == expected_flips
    assert stored.row_numbers == issues.row_numbers
    assert issues.precision_recall_at_k() is not None
    given = [frame["label"].iloc[row - 1] for row in examples.row_numbers]
    assert [issues.label_names[label] for label in issues.labels] == given


def test_drop_label_issues_leaves_rows_out(tiny_model_folder, noisy_csv, tmp_path):
    store, run_id = create_trained_run(
        tmp_path / "home", tiny_model_folder, noisy_csv, drop_label_issues=True
    )

    events = store.read_events(run_id)
    dropped = [event for event in events if event["type"] == "label_issues_dropped"]
    split = json.loads((store.run_dir(run_id) / "split.json").read_text())

    assert len(dropped) == 1
    assert not set(dropped[0]["rows"]) & set(split["train_row_numbers"])
    assert len(split["train_row_numbers"]) + len(dropped[0]["rows"]) == 32
    assert store.get(run_id).status == "completed"


def test_nearest_rows_orders_by_cosine():
    embeddings = np.asarray([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])

    positions, similarity = nearest_rows(np.asarray([0.0, 1.0]), embeddings, k=2)

    assert positions.tolist() == [1, 2]
    assert similarity == pytest.approx([1.0, 0.8])


def test_nearest_training_rows_of_run(tiny_model_folder, noisy_csv, tmp_path):
    store, run_id = create_trained_run(tmp_path / "home", tiny_model_folder, noisy_csv)
    encoder = load_encoder(str(tiny_model_folder), max_length=32)
    index = build_training_index(store, run_id, encoder)
    first = index.examples

    neighbours = nearest_training_rows(
        index, encoder, first.texts[0], first.text_pairs[0], k=3,
        flagged_label_rows=[first.row_numbers[0]],
    )  # fmt: skip

    assert (store.run_dir(run_id) / TRAIN_EMBEDDINGS_FILE).is_file()
    assert len(neighbours) == 3
    assert neighbours["row_number"].iloc[0] == first.row_numbers[0]
    assert neighbours["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert neighbours["likely_label_error"].iloc[0]
    assert neighbours["similarity"].is_monotonic_decreasing


def test_inject_noise_cli_writes_flips(tmp_path, capsys):
    from halluscope.cli import main

    source = tmp_path / "clean.csv"
    pd.DataFrame({"text": [f"row {i}" for i in range(10)], "label": ["a", "b"] * 5}).to_csv(
        source, index=False
    )
    output = tmp_path / "noisy.csv"

    status = main(["inject-noise", str(source), "-o", str(output), "--fraction", "0.3"])

    noisy = pd.read_csv(output)
    clean = pd.read_csv(source)
    assert status == 0
    assert "Flipped 3 of 10 labels" in capsys.readouterr().out
    assert noisy["label_flipped"].sum() == 3
    changed = noisy["label"] != clean["label"]
    assert (changed == noisy["label_flipped"]).all()
