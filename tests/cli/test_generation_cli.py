"""``halluscope train --task generation`` and ``halluscope answer`` on a tiny random Llama."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from halluscope.answers import read_answers
from halluscope.cli import main
from halluscope.runs import RunStore
from halluscope.training import CausalLMTrainConfig


@pytest.fixture
def qa_file(tmp_path):
    rows = [
        {
            "context": f"Object {index} sits on shelf {index % 5}.",
            "question": f"Which shelf holds object {index}?",
            "answer": f"Shelf {index % 5}",
        }
        for index in range(20)
    ]
    path = tmp_path / "shelves.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def _train(home, model_dir, data, capsys, *extra) -> dict:
    status = main(
        [
            "train",
            "--task",
            "generation",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--max-steps",
            "1",
            "--max-length",
            "96",
            "--home",
            str(home),
            "--json",
            *extra,
        ]
    )
    assert status == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_generation_guesses_columns(tiny_llama_dir, qa_file, tmp_path, capsys):
    home = tmp_path / "home"

    result = _train(home, tiny_llama_dir, qa_file, capsys, "--lora-rank", "4")

    assert result["status"] == "completed"
    assert result["method"] == "lora"
    assert result["steps"] == 1
    assert result["validation_rows"] == 4
    config = RunStore(home).config(result["run_id"])
    assert config["prompt_column"] == "question"
    assert config["answer_column"] == "answer"
    assert config["context_column"] == "context"
    assert config["lora_rank"] == 4
    # The generation defaults apply where the shared options are not given.
    assert config["epochs"] == CausalLMTrainConfig.__dataclass_fields__["epochs"].default
    assert config["learning_rate"] == 5e-4


def test_train_generation_full_learning_rate(tiny_llama_dir, qa_file, tmp_path, capsys):
    result = _train(
        tmp_path / "home", tiny_llama_dir, qa_file, capsys, "--method", "full", "--epochs", "1"
    )

    config = RunStore(tmp_path / "home").config(result["run_id"])
    assert config["method"] == "full"
    assert config["epochs"] == 1.0
    assert config["learning_rate"] == 3e-5


def test_train_queued_generation_run(tiny_llama_dir, qa_file, tmp_path, capsys):
    store = RunStore(tmp_path / "home")
    config = CausalLMTrainConfig(
        model=str(tiny_llama_dir),
        data_path=str(qa_file),
        prompt_column="question",
        answer_column="answer",
        context_column="context",
        max_steps=1,
        max_length=96,
    )
    record = store.create_run(
        kind=config.kind, model=config.model, data=config.data_path, config=config.to_dict()
    )

    status = main(["train", "--run-id", record.run_id, "--home", str(store.home), "--json"])

    assert status == 0
    assert store.get(record.run_id).status == "completed"
    assert (store.run_dir(record.run_id) / "model" / "adapter_config.json").is_file()


def test_answer_writes_token_scores(tiny_llama_dir, qa_file, tmp_path, capsys):
    home = tmp_path / "home"
    run_id = _train(home, tiny_llama_dir, qa_file, capsys)["run_id"]
    output = tmp_path / "answers.jsonl"

    status = main(
        [
            "answer",
            run_id,
            "--limit",
            "2",
            "--max-new-tokens",
            "5",
            "--detectors",
            "low_logprob,unsupported_word",
            "-o",
            str(output),
            "--home",
            str(home),
        ]
    )

    assert status == 0
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert 1 <= len(line["tokens"]) <= 5
        assert set(line["detectors"]) == {"low_logprob", "unsupported_word"}
        assert set(line["tokens"][0]["scores"]) == {"low_logprob", "unsupported_word"}
        assert line["question"] in line["prompt"]
        assert line["reference"].startswith("Shelf")
    assert read_answers(RunStore(home), run_id) == lines
    assert "answers" in capsys.readouterr().out


def test_answer_rejects_classification_run(tmp_path, capsys):
    store = RunStore(tmp_path / "home")
    record = store.create_run(kind="classification", model="minilm", data="x.csv", config={})
    store.set_status(record.run_id, "completed")

    status = main(["answer", record.run_id, "--home", str(store.home)])

    assert status != 0
    assert "pick a completed generation run" in capsys.readouterr().err


def test_train_generation_needs_data(tmp_path, capsys):
    status = main(["train", "--task", "generation", "--home", str(tmp_path / "home")])

    assert status != 0
    assert "--data" in capsys.readouterr().err
