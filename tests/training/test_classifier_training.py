"""Tests of classifier fine-tuning through the CLI, on a tiny random BERT."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from transformers import BertConfig, BertForSequenceClassification

from halluscope.cli import main
from halluscope.models import load_tokenizer
from halluscope.runs import RunStore
from halluscope.training import load_validation_split


@pytest.fixture
def tiny_model_folder(tmp_path):
    """A 2-layer random BERT with the MiniLM vocabulary, saved as safetensors."""
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
def keyword_csv(tmp_path):
    """A separable task: the label is whether the claim contains 'red' or 'blue'."""
    rows = []
    for i in range(60):
        colour = "red" if i % 2 == 0 else "blue"
        rows.append(
            {
                "context": f"The object number {i} was seen in the market.",
                "claim": f"it is {colour} today",
                "label": "hallucinated" if colour == "red" else "supported",
            }
        )
    path = tmp_path / "keywords.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def train_args(model_folder, data_path, home, *extra):
    return [
        "train",
        "--model",
        str(model_folder),
        "--data",
        str(data_path),
        "--text-column",
        "context",
        "--text-pair-column",
        "claim",
        "--label-column",
        "label",
        "--max-length",
        "48",
        "--home",
        str(home),
        *extra,
    ]


def test_train_cli_completes_and_prints_json(tiny_model_folder, keyword_csv, tmp_path, capsys):
    home = tmp_path / "home"
    args = train_args(
        tiny_model_folder,
        keyword_csv,
        home,
        "--epochs",
        "15",
        "--learning-rate",
        "3e-3",
        "--batch-size",
        "8",
        "--early-stopping-patience",
        "0",
        "--json",
    )

    status = main(args)

    assert status == 0
    stdout_lines = capsys.readouterr().out.strip().splitlines()
    assert len(stdout_lines) == 1
    result = json.loads(stdout_lines[0])
    assert result["status"] == "completed"
    assert result["accuracy"] >= 0.9
    assert result["validation_rows"] == 12

    store = RunStore(home)
    record = store.get(result["run_id"])
    assert record.status == "completed"
    assert record.metrics["accuracy"] == result["accuracy"]
    assert (store.run_dir(record.run_id) / "model" / "model.safetensors").is_file()

    event_types = {event["type"] for event in store.read_events(record.run_id)}
    assert {"data", "train_begin", "train_step", "eval", "metrics"} <= event_types

    validation = load_validation_split(store.run_dir(record.run_id))
    assert validation.label_names == ("hallucinated", "supported")
    assert len(validation) == 12
    assert all(1 <= row <= 60 for row in validation.row_numbers)


def test_cancel_requested_stops_run(tiny_model_folder, keyword_csv, tmp_path, monkeypatch):
    home = tmp_path / "home"
    store = RunStore(home)
    original = RunStore.cancel_requested

    def cancel_after_first_step(self, run_id):
        return any(e["type"] == "train_begin" for e in self.read_events(run_id)) or original(
            self, run_id
        )

    monkeypatch.setattr(RunStore, "cancel_requested", cancel_after_first_step)

    status = main(train_args(tiny_model_folder, keyword_csv, home, "--epochs", "3"))

    record = store.list_runs()[0]
    assert status != 0
    assert record.status == "cancelled"
    assert not (store.run_dir(record.run_id) / "model").exists()


def test_bad_label_column_fails_with_message(tiny_model_folder, keyword_csv, tmp_path, capsys):
    home = tmp_path / "home"
    args = train_args(tiny_model_folder, keyword_csv, home)
    args[args.index("label")] = "verdict"

    status = main(args)

    assert status != 0
    error = capsys.readouterr().err
    assert "verdict" in error
    assert "keywords.csv" in error
    record = RunStore(home).list_runs()[0]
    assert record.status == "failed"
    assert "verdict" in record.message
