"""The Training data page for a generation run: known and unknown facts, loss curves and rates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import open_page, shown_texts

import dashboard.services as services
from dashboard import state
from halluscope.answers import ANSWERS_FILE
from halluscope.runs import RunStore
from halluscope.training.answer_dynamics import ANSWER_DYNAMICS_FILE, AnswerDynamics
from halluscope.training.knowledge import (
    KNOWLEDGE_FILE,
    KnowledgeProbe,
    KnowledgeRecord,
    ProbeSettings,
)

CATEGORIES_BY_ROW = {
    1: ("train", "known"),
    2: ("train", "known"),
    3: ("train", "unknown"),
    4: ("train", "maybe_known"),
    7: ("validation", "known"),
    8: ("validation", "unknown"),
    9: ("validation", "unknown"),
}


def record(row_number: int) -> KnowledgeRecord:
    split, category = CATEGORIES_BY_ROW[row_number]
    return KnowledgeRecord(
        row_number=row_number,
        split=split,
        greedy_answer="an answer",
        greedy_right=category == "known",
        samples_right=1 if category == "maybe_known" else 0,
        sample_count=4,
        category=category,
    )


@pytest.fixture
def generation_run(store: RunStore) -> str:
    """A completed generation run with a knowledge probe and answer losses (the model is a stub)."""
    run = store.create_run(
        kind="generation", model="tiny", data="qa.jsonl", config={}, name="probed run"
    )
    # The run lists need a model folder; this page never loads the model.
    (store.run_dir(run.run_id) / "model").mkdir()
    probe = KnowledgeProbe(tuple(record(row) for row in CATEGORIES_BY_ROW), ProbeSettings())
    store.write_json(run.run_id, KNOWLEDGE_FILE, probe.to_dict())
    dynamics = AnswerDynamics(
        row_numbers=(1, 2, 3, 4),
        epochs=(0.0, 1.0, 2.0),
        mean_nll=np.array([[2.0, 4.0, 6.0, 5.0], [1.0, 2.0, 5.0, 3.0], [0.5, 0.5, 2.0, 1.0]]),
        exact_match=np.zeros((3, 4), dtype=bool),
        answer_tokens=np.array([3, 3, 4, 2]),
    )
    store.write_json(run.run_id, ANSWER_DYNAMICS_FILE, dynamics.to_dict())
    store.set_status(run.run_id, "completed")
    return run.run_id


def write_answers(store: RunStore, run_id: str) -> None:
    answers = [
        (7, "The Thuru.", "Thuru"),
        (8, "Trilby", "Quoumoor"),
        (9, "12 days", "12 days"),
    ]
    records = [
        {"source": "validation", "row_number": row, "answer": answer, "reference": reference}
        for row, answer, reference in answers
    ]
    records.append({"source": "question", "row_number": None, "answer": "x", "reference": None})
    store.write_json(run_id, ANSWERS_FILE, {"settings": {}, "records": records})


def open_knowledge(make_app, run_id: str, language: str = "en"):
    app = make_app(language)
    app.session_state[state.TRAINING_DATA_KIND] = "generation"
    app.session_state[state.TRAINING_DATA_GENERATION_RUN] = run_id
    return open_page(app, "training_data")


def chart_specs(app) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def test_knowledge_page_shows_loss_and_rates(make_app, store, generation_run):
    write_answers(store, generation_run)

    app = open_knowledge(make_app, generation_run)

    assert not app.exception
    loss_chart, rate_chart = chart_specs(app)
    lines = {trace["name"]: trace for trace in loss_chart["data"]}
    assert set(lines) == {"Known (2)", "Maybe known (1)", "Unknown (1)"}
    assert lines["Known (2)"]["x"] == [0.0, 1.0, 2.0]
    assert lines["Known (2)"]["y"] == pytest.approx([3.0, 1.5, 0.5])
    assert lines["Unknown (1)"]["y"] == pytest.approx([6.0, 5.0, 2.0])
    assert loss_chart["layout"]["xaxis"]["title"]["text"] == "Epoch"
    assert loss_chart["layout"]["yaxis"]["title"]["text"].startswith("Mean answer loss")

    rates = next(
        frame.value for frame in app.dataframe if "Hallucination rate" in frame.value.columns
    ).set_index("Group")
    assert rates.loc["Known", "Answered"] == 1
    assert rates.loc["Known", "Hallucination rate"] == pytest.approx(0.0)
    assert rates.loc["Unknown", "Answered"] == 2
    assert rates.loc["Unknown", "Wrong answers"] == 1
    assert rates.loc["Unknown", "Hallucination rate"] == pytest.approx(0.5)
    assert rates.loc["Maybe known", "Answered"] == 0
    assert np.isnan(rates.loc["Maybe known", "Hallucination rate"])

    assert rate_chart["data"][0]["x"] == ["Known", "Unknown"]
    assert rate_chart["data"][0]["y"] == pytest.approx([0.0, 0.5])
    assert rate_chart["layout"]["yaxis"]["title"]["text"] == "Hallucination rate"

    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics == {"Known": "3", "Maybe known": "1", "Unknown": "3"}
    intro = next(text for text in shown_texts(app) if text.startswith("Which training facts"))
    assert "mislabelled" not in intro
    assert len(app.get("download_button")) == 3


def test_knowledge_page_asks_for_answers(make_app, generation_run):
    app = open_knowledge(make_app, generation_run)

    assert not app.exception
    assert len(chart_specs(app)) == 1
    assert any("Answers page" in message.value for message in app.info)


def test_knowledge_page_without_probe(make_app, store):
    run = store.create_run(kind="generation", model="tiny", data="qa.jsonl", config={})
    (store.run_dir(run.run_id) / "model").mkdir()
    store.set_status(run.run_id, "completed")

    app = open_knowledge(make_app, run.run_id)

    assert not app.exception
    assert chart_specs(app) == []
    assert any("--probe-knowledge" in message.value for message in app.info)


def test_knowledge_page_in_chinese(make_app, store, generation_run):
    write_answers(store, generation_run)

    app = open_knowledge(make_app, generation_run, language="zh_CN")

    texts = shown_texts(app)
    loss_chart, _ = chart_specs(app)
    assert not app.exception
    assert "已知与未知事实" in texts
    assert "各组的幻觉率" in " ".join(texts)
    assert {trace["name"] for trace in loss_chart["data"]} == {
        "已知 (2)",
        "可能已知 (1)",
        "未知 (1)",
    }


def test_train_page_stores_probe_settings(make_app, store, monkeypatch):
    class FakePopen:
        def __init__(self, command, **options):
            self.pid = 999_999
            self.returncode = 0

        def poll(self):
            return 0

    monkeypatch.setattr(services.subprocess, "Popen", FakePopen)
    app = make_app()
    app.session_state[state.DATA_TASK] = "generation"
    open_page(app, "train")
    assert app.number_input(key=state.TRAIN_PROBE_SAMPLES).disabled

    app.checkbox(key=state.TRAIN_PROBE_KNOWLEDGE).check().run()
    app.number_input(key=state.TRAIN_PROBE_SAMPLES).set_value(2)
    app.checkbox(key=state.TRAIN_ANSWER_DYNAMICS).check()
    app.button(key=state.TRAIN_START).click().run()

    assert not app.exception
    (run,) = store.list_runs()
    config = store.config(run.run_id)
    assert config["probe_knowledge"] is True
    assert config["probe_samples"] == 2
    assert config["answer_dynamics"] is True
