"""Tests of training dynamics (data map) and the mitigation settings, on a tiny random BERT."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from halluscope.models import load_tokenizer
from halluscope.runs import RunStore
from halluscope.training import ClassifierTrainConfig, run_classifier_training
from halluscope.training.classifier import set_dropout
from halluscope.training.dynamics import DYNAMICS_FILE, TrainingDynamics, load_dynamics


def make_dynamics(gold_probability: list[list[float]], labels: list[int]) -> TrainingDynamics:
    probabilities = np.asarray(gold_probability)
    labels_array = np.asarray(labels)
    # The argmax is the given label exactly when its probability is above one half.
    predicted = np.where(probabilities > 0.5, labels_array[None, :], 1 - labels_array[None, :])
    return TrainingDynamics(
        row_numbers=tuple(range(1, len(labels) + 1)),
        labels=labels_array,
        label_names=("no", "yes"),
        epochs=tuple(float(epoch) for epoch in range(1, len(probabilities) + 1)),
        gold_probability=probabilities,
        predicted=predicted,
    )


def test_data_map_coordinates_and_regions():
    dynamics = make_dynamics(
        [[0.9, 0.1, 0.1], [0.95, 0.9, 0.15], [0.97, 0.1, 0.05]],
        [1, 0, 1],
    )

    assert dynamics.confidence == pytest.approx([0.94, 0.3667, 0.1], abs=1e-4)
    assert dynamics.variability[0] == pytest.approx(np.std([0.9, 0.95, 0.97]))
    assert dynamics.correctness == pytest.approx([1.0, 1 / 3, 0.0])
    assert list(dynamics.regions()) == ["easy", "ambiguous", "hard"]


def test_dynamics_round_trip_through_json():
    dynamics = make_dynamics([[0.2, 0.8], [0.4, 0.9]], [0, 1])

    restored = TrainingDynamics.from_dict(json.loads(json.dumps(dynamics.to_dict())))

    assert restored.row_numbers == dynamics.row_numbers
    assert np.allclose(restored.gold_probability, dynamics.gold_probability)
    assert (restored.predicted == dynamics.predicted).all()
    assert restored.to_frame()["region"].tolist() == dynamics.to_frame()["region"].tolist()


def test_dynamics_rejects_wrong_shape():
    with pytest.raises(ValueError, match="gold_probability has shape"):
        TrainingDynamics(
            row_numbers=(1, 2),
            labels=np.asarray([0, 1]),
            label_names=("no", "yes"),
            epochs=(1.0,),
            gold_probability=np.zeros((1, 3)),
            predicted=np.zeros((1, 2), dtype=np.int64),
        )


@pytest.fixture
def tiny_model_folder(tmp_path):
    tokenizer = load_tokenizer("minilm")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    folder = tmp_path / "tiny-bert"
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def colour_csv(tmp_path):
    """40 rows whose label follows the colour word of the claim."""
    rows = []
    for i in range(40):
        colour = "red" if i % 2 == 0 else "blue"
        rows.append(
            {
                "context": f"The object number {i} was seen in the market.",
                "claim": f"it is {colour} today",
                "label": "hallucinated" if colour == "red" else "supported",
            }
        )
    path = tmp_path / "colours.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def train_tiny(home, model_folder, data_path, **settings):
    store = RunStore(home)
    config = ClassifierTrainConfig(
        model=str(model_folder),
        data_path=str(data_path),
        text_column="context",
        text_pair_column="claim",
        label_column="label",
        max_length=32,
        learning_rate=3e-3,
        batch_size=8,
        **settings,
    )
    record = store.create_run(
        kind="classification", model=config.model, data=config.data_path, config=config.to_dict()
    )
    metrics = run_classifier_training(store, record.run_id, config)
    return store, record.run_id, metrics


def test_training_records_dynamics_per_epoch(tiny_model_folder, colour_csv, tmp_path):
    store, run_id, _ = train_tiny(tmp_path / "home", tiny_model_folder, colour_csv, epochs=3)

    run_dir = store.run_dir(run_id)
    dynamics = load_dynamics(run_dir)
    split = json.loads((run_dir / "split.json").read_text())

    assert (run_dir / DYNAMICS_FILE).is_file()
    assert dynamics.epochs == pytest.approx((1.0, 2.0, 3.0))
    assert list(dynamics.row_numbers) == split["train_row_numbers"]
    assert dynamics.gold_probability.shape == (3, 32)
    assert ((dynamics.gold_probability >= 0) & (dynamics.gold_probability <= 1)).all()
    expected = ["hallucinated" if row % 2 == 1 else "supported" for row in dynamics.row_numbers]
    assert [dynamics.label_names[label] for label in dynamics.labels] == expected


def test_regularisation_settings_stored_and_applied(tiny_model_folder, colour_csv, tmp_path):
    store, run_id, _ = train_tiny(
        tmp_path / "home",
        tiny_model_folder,
        colour_csv,
        epochs=1,
        label_smoothing=0.1,
        dropout=0.3,
        record_dynamics=False,
    )

    saved = ClassifierTrainConfig.from_dict(store.config(run_id))
    model_config = json.loads((store.run_dir(run_id) / "model" / "config.json").read_text())

    assert saved.label_smoothing == 0.1
    assert saved.dropout == 0.3
    assert model_config["hidden_dropout_prob"] == 0.3
    assert model_config["attention_probs_dropout_prob"] == 0.3
    assert not (store.run_dir(run_id) / DYNAMICS_FILE).exists()


def test_set_dropout_changes_every_layer():
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )  # fmt: skip
    )

    set_dropout(model, 0.05)

    probabilities = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert probabilities == {0.05}
    assert model.config.classifier_dropout == 0.05


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [("label_smoothing", 1.0, "label_smoothing"), ("dropout", -0.1, "dropout")],
)
def test_invalid_mitigation_setting_rejected(setting, value, message):
    with pytest.raises(ValueError, match=message):
        ClassifierTrainConfig(
            model="minilm", data_path="x.csv", text_column="t", label_column="l", **{setting: value}
        )
