"""Pages of the generative path: Data (generation task), Train (LoRA settings), Answers and
Inspect answer, with a tiny random Llama that uses the SmolLM2 tokenizer."""

from __future__ import annotations

import re

import pytest
from conftest import REPOSITORY_ROOT, open_page, shown_texts

import dashboard.services as services
from dashboard import state
from halluscope.answers import ANSWERS_FILE, read_answers
from halluscope.runs import RunStore
from halluscope.training import CausalLMTrainConfig

QA_PATH = REPOSITORY_ROOT / "assets" / "demo" / "qa.jsonl"
HELD_OUT = (
    (
        "The Mingron is 56 kilometres long. It joins the Thuru at Trilby.",
        "Which river does the Mingron join?",
        "Thuru",
        7,
    ),
    (
        "The Skeitrath was 160 metres long. It was built in Quoumoor in 1904.",
        "Where was the Skeitrath built?",
        "Quoumoor",
        12,
    ),
    (
        "The Kiltraem Salt Fair lasts 12 days. About 21,000 people visit it.",
        "How long does the Kiltraem Salt Fair last?",
        "12 days",
        19,
    ),
)
"""(context, question, reference answer, source row) of the tiny run's validation split."""


@pytest.fixture
def generation_run(store: RunStore, tiny_llama_dir) -> str:
    """A completed full fine-tuning run of the tiny Llama with a 3-question validation split."""
    import shutil

    config = CausalLMTrainConfig(
        model=str(tiny_llama_dir),
        data_path=str(QA_PATH),
        prompt_column="question",
        answer_column="answer",
        context_column="context",
        method="full",
    )
    record = store.create_run(
        kind="generation",
        model=config.model,
        data=config.data_path,
        config=config.to_dict(),
        name="tiny generation run",
    )
    shutil.copytree(tiny_llama_dir, store.run_dir(record.run_id) / "model")
    store.write_json(
        record.run_id,
        "generation_split.json",
        {
            "train_row_numbers": [1, 2],
            "dropped_row_numbers": [],
            "truncated_row_numbers": [],
            "validation": {
                "contexts": [example[0] for example in HELD_OUT],
                "prompts": [example[1] for example in HELD_OUT],
                "answers": [example[2] for example in HELD_OUT],
                "row_numbers": [example[3] for example in HELD_OUT],
            },
        },
    )
    store.set_metrics(
        record.run_id, {"eval_loss": 10.5, "eval_perplexity": 36315.5, "method": "full"}
    )
    store.set_status(record.run_id, "completed")
    return record.run_id


def _answers_table(app):
    """Return the answers table, the one dataframe with a "question" column."""
    return next(frame.value for frame in app.dataframe if "question" in frame.value.columns)


def _answer_held_out(app, limit: int = 2):
    app.number_input(key=state.ANSWERS_LIMIT).set_value(limit)
    app.number_input(key=state.ANSWERS_MAX_NEW_TOKENS).set_value(4)
    return app.button(key=state.ANSWERS_GENERATE).click().run()


# Data and Train pages


def test_data_page_generation_task_maps_demo(make_app):
    app = open_page(make_app(), "data")

    app.radio(key=state.DATA_TASK).set_value("generation").run()

    assert not app.exception
    assert app.selectbox(key=state.DATA_PROMPT_COLUMN).value == "question"
    assert app.selectbox(key=state.DATA_ANSWER_COLUMN).value == "answer"
    assert app.selectbox(key=state.DATA_CONTEXT_COLUMN).value == "context"
    selection = app.session_state[state.GENERATION_SELECTION]
    assert selection.rows == 400
    assert selection.path.endswith("qa.jsonl")
    assert any("400" in text for text in shown_texts(app))


def test_data_page_generation_same_column_rejected(make_app):
    app = open_page(make_app(), "data")
    app.radio(key=state.DATA_TASK).set_value("generation").run()

    app.selectbox(key=state.DATA_ANSWER_COLUMN).set_value("question").run()

    assert [error.value for error in app.error]
    assert app.session_state[state.GENERATION_SELECTION] is None


def test_train_page_starts_lora_run(make_app, store, home, monkeypatch):
    calls = []

    class FakePopen:
        def __init__(self, command, **options):
            calls.append(list(command))
            self.pid = 999_999
            self.returncode = 0

        def poll(self):
            return 0

    monkeypatch.setattr(services.subprocess, "Popen", FakePopen)
    app = make_app()
    app.session_state[state.DATA_TASK] = "generation"
    open_page(app, "train")
    assert app.radio(key=state.TRAIN_METHOD).value == "lora"
    app.number_input(key=state.TRAIN_LORA_RANK).set_value(4)
    app.number_input(key=state.TRAIN_GENERATION_EPOCHS).set_value(0.5)

    app.button(key=state.TRAIN_START).click().run()

    assert not app.exception
    (run,) = store.list_runs()
    assert run.kind == "generation"
    assert run.model == "smollm2-135m"
    config = store.config(run.run_id)
    assert config["method"] == "lora"
    assert config["lora_rank"] == 4
    assert config["epochs"] == 0.5
    assert config["prompt_column"] == "question"
    assert config["context_column"] == "context"
    assert calls[0][-4:] == ["--run-id", run.run_id, "--home", str(home)]


def test_train_page_shows_generation_metrics(make_app, generation_run):
    app = make_app()
    app.session_state[state.DATA_TASK] = "generation"
    open_page(app, "train")

    labels = [metric.label for metric in app.metric]
    assert "Validation perplexity" in labels
    assert not app.exception


# Answers page


def test_answers_page_answers_held_out(make_app, store, generation_run):
    app = open_page(make_app(), "answers")
    assert any("no answers yet" in text for text in shown_texts(app))

    _answer_held_out(app, limit=2)

    assert not app.exception
    assert app.selectbox(key=state.ANSWERS_DETECTOR).value == "low_logprob"
    records = read_answers(store, generation_run)
    assert [record["question"] for record in records] == [HELD_OUT[0][1], HELD_OUT[1][1]]
    assert [record["reference"] for record in records] == [HELD_OUT[0][2], HELD_OUT[1][2]]
    assert all(1 <= len(record["tokens"]) <= 4 for record in records)
    assert (store.run_dir(generation_run) / ANSWERS_FILE).is_file()
    table = _answers_table(app)
    assert list(table["question"]) == [HELD_OUT[0][1], HELD_OUT[1][1]]
    coloured = [block.proto.body for block in app.get("html")]
    assert len(coloured) == 2
    assert all('class="halluscope-tokens"' in body for body in coloured)


def test_answers_page_detector_choice(make_app, store, generation_run):
    app = open_page(make_app(), "answers")
    _answer_held_out(app, limit=3)
    records = read_answers(store, generation_run)

    app.selectbox(key=state.ANSWERS_DETECTOR).set_value("low_logprob").run()

    table = _answers_table(app)
    expected = [record["detectors"]["low_logprob"]["score"] for record in records]
    assert list(table["score"]) == pytest.approx(expected)


def test_answers_page_typed_question(make_app, store, generation_run):
    app = open_page(make_app(), "answers")
    app.text_area(key=state.ANSWERS_CONTEXT).input("Velmar Bridge has 9 arches.")
    app.text_input(key=state.ANSWERS_QUESTION).input("How many arches does it have?")

    app.button(key=state.ANSWERS_ASK).click().run()

    assert not app.exception
    (record,) = read_answers(store, generation_run)
    assert record["source"] == "question"
    assert record["context"] == "Velmar Bridge has 9 arches."
    assert "Velmar Bridge has 9 arches." in record["prompt"]


def test_answers_page_empty_question_rejected(make_app, store, generation_run):
    app = open_page(make_app(), "answers")

    app.button(key=state.ANSWERS_ASK).click().run()

    assert [error.value for error in app.error] == ["Type a question first."]
    assert read_answers(store, generation_run) == []


def test_answers_page_without_generation_runs(make_app):
    app = open_page(make_app(), "answers")

    assert any("No completed generation run" in text for text in shown_texts(app))


# Inspect answer page


def test_inspect_answer_three_columns(make_app, store, generation_run):
    app = open_page(make_app(), "answers")
    _answer_held_out(app, limit=1)
    (record,) = read_answers(store, generation_run)

    app.switch_page("views/inspect_answer.py").run()

    assert not app.exception
    markdown = [element.value for element in app.markdown]
    for heading in ("Context", "Generated answer", "Reference answer"):
        assert any(heading in text for text in markdown), heading
    texts = [element.value for element in app.text]
    assert HELD_OUT[0][2] in texts
    bodies = [block.proto.body for block in app.get("html")]
    assert any('class="halluscope-attribution"' in body for body in bodies)
    assert any('class="halluscope-tokens"' in body for body in bodies)
    pills = app.get("button_group")
    assert len(pills) == 1
    assert len(pills[0].options) == len(record["tokens"])


def test_inspect_answer_token_pick_moves_outline(make_app, store, generation_run):
    app = open_page(make_app(), "answers")
    _answer_held_out(app, limit=1)
    app.switch_page("views/inspect_answer.py").run()
    pills = app.get("button_group")[0]

    pills.set_value(0).run()

    answer_html = next(
        block.proto.body for block in app.get("html") if "halluscope-tokens" in block.proto.body
    )
    (record,) = read_answers(store, generation_run)
    first = record["tokens"][0]
    outlined = re.findall(r"outline: 2px[^>]*>([^<]*)<", answer_html)
    assert outlined == [record["answer"][first["start"] : first["end"]]]


def test_inspect_answer_figures_have_axes(make_app, generation_run):
    app = open_page(make_app(), "answers")
    _answer_held_out(app, limit=1)

    app.switch_page("views/inspect_answer.py").run()

    charts = app.get("plotly_chart")
    assert len(charts) >= 5
    import json

    for chart in charts:
        figure = json.loads(chart.proto.spec)
        layout = figure["layout"]
        if "xaxis" in layout and "title" in layout["xaxis"]:
            assert layout["xaxis"]["title"]["text"]


def test_inspect_answer_without_answers(make_app, generation_run):
    app = open_page(make_app(), "inspect_answer")

    assert any("no answers yet" in text for text in shown_texts(app))
    assert not app.exception


# Chinese interface


@pytest.mark.parametrize("page", ["data", "train", "answers", "inspect_answer"])
def test_generation_pages_in_chinese(make_app, store, generation_run, page):
    from test_i18n_pages import _english_strings

    app = open_page(make_app(), "answers")
    _answer_held_out(app, limit=1)
    chinese = make_app("zh_CN")
    chinese.session_state[state.DATA_TASK] = "generation"

    open_page(chinese, page)

    assert not chinese.exception
    assert _english_strings(chinese) == []


def test_inspect_answer_review_mark_saved(make_app, store, generation_run):
    from halluscope.runs import list_marks

    app = open_page(make_app(), "answers")
    _answer_held_out(app, limit=1)
    app.switch_page("views/inspect_answer.py").run()

    app.radio(key=state.REVIEW_VERDICT).set_value("confirmed")
    app.text_area(key=state.REVIEW_NOTE).input("invented river")
    app.button(key=state.REVIEW_SAVE).click().run()

    assert not app.exception
    (mark,) = list_marks(store, generation_run)
    assert (mark.example_id, mark.verdict, mark.note) == ("0", "confirmed", "invented river")
    reopened = open_page(make_app(), "inspect_answer")
    assert reopened.radio(key=state.REVIEW_VERDICT).value == "confirmed"


def test_inspect_answer_figures_in_chinese(make_app, generation_run):
    import json

    app = open_page(make_app(), "answers")
    _answer_held_out(app, limit=1)
    chinese = make_app("zh_CN")

    open_page(chinese, "inspect_answer")

    titles = [
        json.loads(chart.proto.spec)["layout"]["title"]["text"]
        for chart in chinese.get("plotly_chart")
    ]
    assert any(title.startswith("第 1 层每个注意力头") for title in titles), titles
    assert not [title for title in titles if title.startswith(("Attention", "Lookback"))]
