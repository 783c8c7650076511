"""Tests of the knowledge probe and the per-group results built on it."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from halluscope.answers import read_answers
from halluscope.cli import main
from halluscope.inference import InferenceCancelledError
from halluscope.models import load_causal_lm, load_tokenizer
from halluscope.runs import RunStore
from halluscope.training import CausalLMTrainConfig, run_causal_lm_training
from halluscope.training.answer_dynamics import AnswerDynamics, load_answer_dynamics
from halluscope.training.knowledge import (
    KNOWLEDGE_FILE,
    KnowledgeProbe,
    KnowledgeRecord,
    ProbeSettings,
    categorize,
    group_loss_curves,
    hallucination_by_group,
    load_knowledge,
    probe_knowledge,
)

PLAIN_TOKENIZER = SimpleNamespace(chat_template=None)
"""A stand-in tokenizer without a chat template, so prompts end "Question: ...\\nAnswer:"."""


def stub_generate(answers_by_question: dict[str, list[str]]):
    """Return a ``generate_answers`` stand-in that replays fixed answers.

    ``answers_by_question[question]`` lists the greedy answer, then one answer
    per sample. In a sampling call, the k-th copy of a prompt gets sample k.
    """
    calls = []

    def generate(model, tokenizer, prompts, *, do_sample=False, seed=None, progress=None, **_):
        calls.append({"do_sample": do_sample, "seed": seed, "prompts": len(prompts)})
        copies_seen: dict[str, int] = {}
        outputs = []
        for prompt in prompts:
            question = re.search(r"Question: (.*)\nAnswer:", prompt).group(1)
            position = 0
            if do_sample:
                copies_seen[question] = copies_seen.get(question, 0) + 1
                position = copies_seen[question]
            outputs.append(SimpleNamespace(text=answers_by_question[question][position]))
        if progress is not None:
            progress(len(prompts), len(prompts))
        return outputs

    generate.calls = calls
    return generate


def make_record(row_number: int, split: str, category: str) -> KnowledgeRecord:
    return KnowledgeRecord(
        row_number=row_number,
        split=split,
        greedy_answer="",
        greedy_right=category == "known",
        samples_right=1 if category == "maybe_known" else 0,
        sample_count=2,
        category=category,
    )


# Categories


@pytest.mark.parametrize(
    ("greedy_right", "samples_right", "expected"),
    [(True, 0, "known"), (True, 3, "known"), (False, 1, "maybe_known"), (False, 0, "unknown")],
)
def test_categorize_rules(greedy_right, samples_right, expected):
    assert categorize(greedy_right, samples_right) == expected


def test_probe_sorts_stubbed_answers():
    answers = {
        "Who owned the Skeitrath?": ["It was owned by Weirvaen Looms.", "Quoumoor", "no idea"],
        "Where was it built?": ["In Trilby.", "Quoumoor.", "Trilby"],
        "How long is the fair?": ["3 days", "5 days", "ten days"],
        "Which river?": ["The Thuru", "Mingron", "Mingron"],
    }
    references = ["Weirvaen Looms", "Quoumoor", "12 days", "Thuru"]
    generate = stub_generate(answers)
    reported = []

    records = probe_knowledge(
        model=None,
        tokenizer=PLAIN_TOKENIZER,
        questions=list(answers),
        contexts=["c1", "c2", None, "c4"],
        references=references,
        row_numbers=[3, 8, 9, 20],
        splits=["train", "train", "validation", "validation"],
        settings=ProbeSettings(samples=2, seed=7),
        progress=lambda done, total: reported.append((done, total)),
        generate=generate,
    )

    assert [record.category for record in records] == [
        "known",
        "maybe_known",
        "unknown",
        "known",
    ]
    assert [record.row_number for record in records] == [3, 8, 9, 20]
    assert [record.split for record in records] == ["train", "train", "validation", "validation"]
    assert [record.greedy_right for record in records] == [True, False, False, True]
    assert [record.samples_right for record in records] == [0, 1, 0, 0]
    assert all(record.sample_count == 2 for record in records)
    assert records[0].greedy_answer == "It was owned by Weirvaen Looms."
    assert generate.calls == [
        {"do_sample": False, "seed": None, "prompts": 4},
        {"do_sample": True, "seed": 7, "prompts": 8},
    ]
    assert reported == [(4, 12), (12, 12)]


def test_probe_skips_reference_without_words():
    generate = stub_generate({"Q1?": ["yes"], "Q2?": ["Ann"]})

    records = probe_knowledge(
        None,
        PLAIN_TOKENIZER,
        ["Q1?", "Q2?"],
        [None, None],
        ["...", "Ann"],
        [1, 2],
        ["train", "train"],
        settings=ProbeSettings(samples=0),
        generate=generate,
    )

    assert [record.row_number for record in records] == [2]
    assert records[0].category == "known"


def test_probe_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="must have as many"):
        probe_knowledge(
            None, PLAIN_TOKENIZER, ["Q?"], [None, None], ["A"], [1], ["train"], generate=None
        )


def test_probe_file_round_trip(tmp_path):
    records = (
        make_record(1, "train", "known"),
        make_record(2, "train", "unknown"),
        make_record(3, "validation", "maybe_known"),
    )
    probe = KnowledgeProbe(records, ProbeSettings(samples=2, temperature=0.7), seconds=1.5)
    (tmp_path / KNOWLEDGE_FILE).write_text(json.dumps(probe.to_dict()))

    loaded = load_knowledge(tmp_path)

    assert loaded == probe
    counts = loaded.counts()
    assert counts.loc["train"].tolist() == [1, 0, 1]
    assert counts.loc["validation"].tolist() == [0, 1, 0]
    assert load_knowledge(tmp_path / "missing") is None


# The probe with a real (tiny) model


@pytest.fixture(scope="module")
def tiny_llama(tiny_llama_dir):
    return load_causal_lm(str(tiny_llama_dir), attention="sdpa"), load_tokenizer(
        str(tiny_llama_dir)
    )


QUESTIONS = ["Which river does the Mingron join?", "Where was the Skeitrath built?", "Who?"]
CONTEXTS = ["The Mingron joins the Thuru.", "The Skeitrath was built in Quoumoor.", None]


def test_probe_tiny_llama_repeats(tiny_llama):
    model, tokenizer = tiny_llama
    settings = ProbeSettings(samples=2, max_new_tokens=4, seed=3)

    def run():
        return probe_knowledge(
            model,
            tokenizer,
            QUESTIONS,
            CONTEXTS,
            ["Thuru", "Quoumoor", "Ann Berg"],
            [4, 5, 6],
            ["train", "validation", "train"],
            settings=settings,
        )

    first, second = run(), run()

    assert [record.row_number for record in first] == [4, 5, 6]
    assert [record.split for record in first] == ["train", "validation", "train"]
    assert all(record.sample_count == 2 for record in first)
    assert all(record.greedy_answer for record in first)
    assert first == second


def test_probe_tiny_llama_cancels(tiny_llama):
    model, tokenizer = tiny_llama

    with pytest.raises(InferenceCancelledError):
        probe_knowledge(
            model,
            tokenizer,
            QUESTIONS,
            CONTEXTS,
            ["Thuru", "Quoumoor", "Ann Berg"],
            [4, 5, 6],
            ["train"] * 3,
            settings=ProbeSettings(samples=1, max_new_tokens=2),
            should_stop=lambda: True,
        )


# Per-group results


def test_group_loss_curves_known_values():
    dynamics = AnswerDynamics(
        row_numbers=(1, 2, 3, 4),
        epochs=(0.0, 1.0),
        mean_nll=np.array([[2.0, 4.0, 6.0, 8.0], [1.0, 1.0, 3.0, 5.0]]),
        exact_match=np.array([[False] * 4, [True, False, False, False]]),
        answer_tokens=np.array([3, 4, 5, 6]),
    )
    probe = KnowledgeProbe(
        (
            make_record(1, "train", "known"),
            make_record(2, "train", "known"),
            make_record(3, "train", "unknown"),
            make_record(5, "validation", "maybe_known"),
        )
    )

    curves = group_loss_curves(dynamics, probe)

    assert curves["epoch"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert curves["category"].tolist() == ["known", "unknown", "known", "unknown"]
    assert curves["rows"].tolist() == [2, 1, 2, 1]
    assert curves["mean_nll"].tolist() == pytest.approx([3.0, 6.0, 1.0, 3.0])
    assert curves["exact_match_rate"].tolist() == pytest.approx([0.0, 0.0, 0.5, 0.0])


def test_hallucination_by_group_known_values():
    probe = KnowledgeProbe(
        (
            make_record(10, "validation", "known"),
            make_record(11, "validation", "known"),
            make_record(12, "validation", "unknown"),
            make_record(13, "validation", "maybe_known"),
            make_record(1, "train", "unknown"),
        )
    )
    answers = [
        {"source": "validation", "row_number": 10, "answer": "The Thuru.", "reference": "Thuru"},
        {"source": "validation", "row_number": 11, "answer": "Trilby", "reference": "Thuru"},
        {"source": "validation", "row_number": 12, "answer": "12 days", "reference": "5 days"},
        {"source": "question", "row_number": None, "answer": "x", "reference": None},
        {"source": "validation", "row_number": 1, "answer": "x", "reference": "y"},
    ]

    rates = hallucination_by_group(probe, answers).set_index("category")

    assert rates.loc["known", "validation_rows"] == 2
    assert rates.loc["known", "answered"] == 2
    assert rates.loc["known", "hallucinated"] == 1
    assert rates.loc["known", "hallucination_rate"] == pytest.approx(0.5)
    assert rates.loc["unknown", "hallucination_rate"] == pytest.approx(1.0)
    assert rates.loc["maybe_known", "validation_rows"] == 1
    assert rates.loc["maybe_known", "answered"] == 0
    assert math.isnan(rates.loc["maybe_known", "hallucination_rate"])


# Wired into a training run


@pytest.fixture
def qa_file(tmp_path):
    rows = [
        {
            "context": f"Tower {i} stands in town {i % 3}.",
            "question": f"Where does tower {i} stand?",
            "answer": f"town {i % 3}",
        }
        for i in range(10)
    ]
    path = tmp_path / "towers.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def make_run(home, model_dir, data_path, **overrides):
    config = CausalLMTrainConfig(
        model=str(model_dir),
        data_path=str(data_path),
        prompt_column="question",
        answer_column="answer",
        context_column="context",
        epochs=2.0,
        batch_size=4,
        max_length=96,
        probe_knowledge=True,
        probe_samples=1,
        answer_dynamics=True,
        **overrides,
    )
    store = RunStore(home)
    record = store.create_run(
        kind=config.kind, model=config.model, data=config.data_path, config=config.to_dict()
    )
    return store, record.run_id, config


def test_run_with_probe_stores_groups(tiny_llama_dir, qa_file, tmp_path):
    store, run_id, config = make_run(tmp_path / "home", tiny_llama_dir, qa_file)

    run_causal_lm_training(store, run_id, config)

    run_dir = store.run_dir(run_id)
    probe = load_knowledge(run_dir)
    dynamics = load_answer_dynamics(run_dir)
    split = json.loads((run_dir / "generation_split.json").read_text())
    assert store.get(run_id).status == "completed"
    assert len(probe.records) == 10
    assert sorted(r.row_number for r in probe.records if r.split == "train") == sorted(
        split["train_row_numbers"]
    )
    assert sorted(r.row_number for r in probe.records if r.split == "validation") == sorted(
        split["validation"]["row_numbers"]
    )
    assert probe.settings.samples == 1
    assert dynamics.epochs == (0.0, 1.0, 2.0)
    curves = group_loss_curves(dynamics, probe)
    assert set(curves["epoch"]) == {0.0, 1.0, 2.0}
    assert curves.groupby("epoch")["rows"].sum().tolist() == [8, 8, 8]
    event_types = {event["type"] for event in store.read_events(run_id)}
    assert {"probe", "knowledge"} <= event_types


def test_run_cancelled_during_probe(tiny_llama_dir, qa_file, tmp_path, monkeypatch):
    store, run_id, config = make_run(tmp_path / "home", tiny_llama_dir, qa_file)
    monkeypatch.setattr(RunStore, "cancel_requested", lambda self, run_id: True)

    metrics = run_causal_lm_training(store, run_id, config)

    run_dir = store.run_dir(run_id)
    assert metrics == {}
    assert store.get(run_id).status == "cancelled"
    assert not (run_dir / KNOWLEDGE_FILE).exists()
    assert not (run_dir / "model").exists()


def test_cli_probe_and_group_rates(tiny_llama_dir, qa_file, tmp_path, capsys):
    home = tmp_path / "home"
    train_arguments = [
        "train",
        "--task",
        "generation",
        "--model",
        str(tiny_llama_dir),
        "--data",
        str(qa_file),
        "--max-steps",
        "1",
        "--max-length",
        "96",
        "--probe-knowledge",
        "--probe-samples",
        "1",
        "--answer-dynamics",
        "--home",
        str(home),
        "--json",
    ]

    assert main(train_arguments) == 0
    run_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    config = RunStore(home).config(run_id)
    assert config["probe_knowledge"] is True
    assert config["probe_samples"] == 1
    assert config["answer_dynamics"] is True

    answer_arguments = ["answer", run_id, "--max-new-tokens", "3", "--home", str(home)]
    assert main(answer_arguments) == 0
    printed = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    probe = load_knowledge(RunStore(home).run_dir(run_id))
    rates = hallucination_by_group(probe, read_answers(RunStore(home), run_id))
    for row in rates.itertuples():
        assert printed[f"hallucinated_{row.category}"] == f"{row.hallucinated}/{row.answered}"
    assert rates["answered"].sum() == 2
