"""Detector quality page on classification and generation runs, and its effect on other pages."""

from __future__ import annotations

import pytest
from conftest import VALIDATION_EXAMPLES, open_page, shown_texts

from dashboard import state
from halluscope.detect import get_detector


def test_quality_page_shows_curves_and_counts(make_app, tiny_run):
    app = open_page(make_app(), "quality")

    assert not app.exception
    assert [error.value for error in app.error] == []
    summary = app.dataframe[0].value
    assert summary["Score"].tolist() == ["low_margin", "low_confidence"]
    assert summary["AUROC"].between(0.0, 1.0).all()
    charts = app.get("plotly_chart")
    assert len(charts) == 2
    assert "4 validation predictions, 2 of them wrong." in shown_texts(app)
    counts = {metric.label: metric.value for metric in app.metric}
    flagged = int(counts["Flagged, wrong"]) + int(counts["Flagged, right"])
    missed = int(counts["Missed, wrong"]) + int(counts["Not flagged, right"])
    assert flagged + missed == len(VALIDATION_EXAMPLES)
    assert int(counts["Flagged, wrong"]) + int(counts["Missed, wrong"]) == 2


def test_threshold_zero_flags_everything_on_predict(make_app, tiny_run):
    app = open_page(make_app(), "quality")

    app.slider(key="quality_threshold").set_value(0.0).run()
    counts = {metric.label: metric.value for metric in app.metric}
    app.switch_page("views/predict.py").run()

    assert counts["Flagged, wrong"] == "2"
    assert counts["Flagged, right"] == "2"
    table = app.dataframe[0].value
    assert table["flagged"].all()
    assert "Flags use low_margin >= 0.00, set on the Detector quality page." in shown_texts(app)


def test_threshold_one_flags_nothing_on_predict(make_app, tiny_run):
    app = open_page(make_app(), "quality")

    app.slider(key="quality_threshold").set_value(1.0).run()
    app.switch_page("views/predict.py").run()

    table = app.dataframe[0].value
    assert not table["flagged"].any()
    assert app.metric[1].value == "0 (0.0%)"


def test_quality_page_in_chinese(make_app, tiny_run):
    app = open_page(make_app("zh_CN"), "quality")

    assert not app.exception
    assert "检测器质量" in [title.value for title in app.title]
    assert "最佳 F1" in app.dataframe[0].value.columns


def test_quality_without_runs_points_to_train(make_app):
    app = open_page(make_app(), "quality")

    assert not app.exception
    assert "No completed runs yet. Train a model first." in [info.value for info in app.info]


def test_threshold_applies_on_inspect(make_app, tiny_run):
    app = open_page(make_app(), "quality")

    app.slider(key="quality_threshold").set_value(0.0).run()
    app.switch_page("views/inspect.py").run()

    assert not app.exception
    assert "Flags use low_margin >= 0.00, set on the Detector quality page." in shown_texts(app)
    assert app.checkbox(key="inspect_only_flagged").label == (
        f"Only flagged examples ({len(VALIDATION_EXAMPLES)})"
    )


# Generation runs: stored answers labelled against their references


def _answer(index, question, answer, reference, low_logprob, unsupported_word):
    """Return a stored answer record with two detectors' verdicts at their default thresholds."""
    return {
        "index": index,
        "source": "validation" if reference is not None else "question",
        "row_number": index + 1 if reference is not None else None,
        "question": question,
        "context": "The Mingron joins the Thuru at Trilby. Weirvaen Looms owns the mill.",
        "reference": reference,
        "prompt": question,
        "answer": answer,
        "finish_reason": "eos",
        "tokens": [
            {
                "token": answer,
                "token_id": 1,
                "start": 0,
                "end": len(answer),
                "logprob": -1.0,
                "entropy": 1.0,
                "rank": 1,
                "scores": {"low_logprob": low_logprob, "unsupported_word": unsupported_word},
            }
        ],
        "detectors": {
            "low_logprob": {
                "score": low_logprob,
                "flagged": low_logprob >= 0.4,
                "reason": "stored verdict",
            },
            "unsupported_word": {
                "score": unsupported_word,
                "flagged": unsupported_word >= 1.0,
                "reason": "stored verdict",
            },
        },
    }


ANSWERS = [
    _answer(0, "Which river does the Mingron join?", "Thuru", "Thuru", 0.10, 0.0),
    _answer(1, "Where was it built?", "It was built in Quoumoor.", "Quoumoor", 0.35, 0.0),
    _answer(2, "How long does the fair last?", "9 days", "12 days", 0.30, 1.0),
    _answer(3, "Which river does it join?", "Trilby", "Thuru", 0.80, 0.0),
    _answer(4, "Who owns the mill?", "The Kelvale Looms", "Weirvaen Looms", 0.60, 1.0),
    _answer(5, "Who owns the mill now?", "weirvaen looms", "Weirvaen Looms", 0.70, 0.0),
    _answer(6, "A typed question", "Velmar", None, 0.95, 0.0),
]
"""Hand-written answers: 2, 3 and 4 do not give their reference, and 6 has no reference."""
HALLUCINATED = [False, False, True, True, True, False]
# AUROC by counting (hallucinated, right) pairs ranked correctly, ties as half.
# low_logprob: hallucinated 0.30, 0.80, 0.60 against right 0.10, 0.35, 0.70
# gives 1 + 3 + 2 = 6 of 9 pairs. unsupported_word: hallucinated 1, 0, 1
# against right 0, 0, 0 gives 3 + 1.5 + 3 = 7.5 of 9 pairs.
LOW_LOGPROB_AUROC = 6 / 9
UNSUPPORTED_WORD_AUROC = 7.5 / 9


def _write_generation_run(store, answers):
    """Create a completed generation run whose folder contains ``answers`` and no real model."""
    record = store.create_run(
        kind="generation",
        model="smollm2-135m",
        data="qa.jsonl",
        config={"method": "lora"},
        name="hand-written answers",
    )
    run_dir = store.run_dir(record.run_id)
    # The pages list only runs with a model folder; none of the pages tested here loads it.
    (run_dir / "model").mkdir()
    store.write_json(
        record.run_id,
        "generation_split.json",
        {
            "train_row_numbers": [],
            "dropped_row_numbers": [],
            "truncated_row_numbers": [],
            "validation": {
                "contexts": [answer["context"] for answer in answers],
                "prompts": [answer["question"] for answer in answers],
                "answers": [answer["reference"] or "" for answer in answers],
                "row_numbers": [answer["row_number"] or 0 for answer in answers],
            },
        },
    )
    store.write_json(record.run_id, "answers.json", {"settings": {}, "records": answers})
    store.set_metrics(record.run_id, {"method": "lora"})
    store.set_status(record.run_id, "completed")
    return record.run_id


@pytest.fixture
def answered_run(store):
    return _write_generation_run(store, ANSWERS)


def _metric_values(app):
    return {metric.label: metric.value for metric in app.metric}


def _answers_page_flags(app):
    """Return the answer index -> flagged of the Answers page's table."""
    table = next(frame.value for frame in app.dataframe if "reason" in frame.value.columns)
    return dict(zip(table["index"], table["flagged"], strict=True))


def test_generation_quality_shows_auroc(make_app, answered_run):
    app = open_page(make_app(), "quality")

    assert not app.exception
    assert [error.value for error in app.error] == []
    summary = app.dataframe[0].value.set_index("Score")
    assert summary.loc["low_logprob", "AUROC"] == pytest.approx(LOW_LOGPROB_AUROC)
    assert summary.loc["unsupported_word", "AUROC"] == pytest.approx(UNSUPPORTED_WORD_AUROC)
    # Flagging at 0.30 catches all 3 hallucinated answers and 2 right ones:
    # precision 0.6, recall 1, the best F1 of the six thresholds.
    assert summary.loc["low_logprob", "Best F1"] == pytest.approx(2 * 0.6 * 1.0 / 1.6)
    assert summary.loc["low_logprob", "Best-F1 threshold"] == pytest.approx(0.30)
    assert len(app.get("plotly_chart")) == 2


def test_generation_quality_counts_left_out(make_app, answered_run):
    app = open_page(make_app(), "quality")

    assert (
        "6 answers with a reference, 3 of them hallucinated (they do not give the reference). "
        "Answers without a reference (typed questions) are left out: 1."
    ) in shown_texts(app)
    labelled = next(frame.value for frame in app.dataframe if "hallucinated" in frame.value)
    assert labelled["index"].tolist() == [0, 1, 2, 3, 4, 5]
    assert labelled["hallucinated"].tolist() == HALLUCINATED
    assert labelled["low_logprob"].tolist() == pytest.approx([0.10, 0.35, 0.30, 0.80, 0.60, 0.70])


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.5, {"Flagged, wrong": "2", "Flagged, right": "1", "Missed, wrong": "1",
               "Not flagged, right": "2"}),
        (0.25, {"Flagged, wrong": "3", "Flagged, right": "2", "Missed, wrong": "0",
                "Not flagged, right": "1"}),
        # Nothing is flagged, so precision is undefined.
        (0.9, {"Flagged, wrong": "0", "Flagged, right": "0", "Missed, wrong": "3",
               "Not flagged, right": "3", "Precision": "–"}),
    ],
)  # fmt: skip
def test_generation_confusion_counts(make_app, answered_run, threshold, expected):
    app = open_page(make_app(), "quality")
    assert app.selectbox(key=state.QUALITY_DETECTOR).value == "low_logprob"

    app.slider(key=state.QUALITY_THRESHOLD).set_value(threshold).run()

    counts = _metric_values(app)
    for label, value in expected.items():
        assert counts[label] == value, label
    labelled = next(frame.value for frame in app.dataframe if "flagged" in frame.value)
    scores = labelled["low_logprob"].to_numpy()
    assert labelled["flagged"].tolist() == (scores >= threshold).tolist()


def test_threshold_changes_answers_page_flags(make_app, answered_run):
    app = open_page(make_app(), "answers")
    stored = _answers_page_flags(app)
    assert stored == {0: False, 1: False, 2: False, 3: True, 4: True, 5: True, 6: True}

    app.switch_page("views/quality.py").run()
    app.slider(key=state.QUALITY_THRESHOLD).set_value(0.25).run()
    app.switch_page("views/answers.py").run()

    assert not app.exception
    assert _answers_page_flags(app) == {0: False, 1: True, 2: True, 3: True, 4: True, 5: True,
                                        6: True}  # fmt: skip
    assert (
        "Flags of low_logprob use score >= 0.25, set on the Detector quality page."
        in shown_texts(app)
    )

    app.switch_page("views/quality.py").run()
    app.slider(key=state.QUALITY_THRESHOLD).set_value(0.75).run()
    app.switch_page("views/answers.py").run()

    flags = _answers_page_flags(app)
    assert [index for index, flagged in flags.items() if flagged] == [3, 6]


def test_threshold_keeps_other_detector_flags(make_app, answered_run):
    app = open_page(make_app(), "quality")
    app.slider(key=state.QUALITY_THRESHOLD).set_value(0.0).run()
    app.switch_page("views/answers.py").run()

    app.selectbox(key=state.ANSWERS_DETECTOR).set_value("unsupported_word").run()

    flags = _answers_page_flags(app)
    assert [index for index, flagged in flags.items() if flagged] == [2, 4]


def test_threshold_stays_with_its_run(make_app, store, answered_run):
    other_run = _write_generation_run(store, ANSWERS)
    app = open_page(make_app(), "quality")
    first_run = app.selectbox(key=state.QUALITY_RUN).value
    app.slider(key=state.QUALITY_THRESHOLD).set_value(0.75).run()

    app.selectbox(key=state.QUALITY_RUN).set_value(
        answered_run if first_run == other_run else other_run
    ).run()

    # The other run's slider starts at low_logprob's own threshold, not at 0.75.
    own = get_detector("low_logprob").threshold
    assert own != pytest.approx(0.75)
    assert app.slider(key=state.QUALITY_THRESHOLD).value == pytest.approx(own)
    assert app.session_state[state.QUALITY_FLAG_RULE][2] == pytest.approx(own)

    app.selectbox(key=state.QUALITY_RUN).set_value(first_run).run()

    assert app.slider(key=state.QUALITY_THRESHOLD).value == pytest.approx(own)


def test_threshold_changes_inspect_answer_flags(make_app, answered_run):
    app = open_page(make_app(), "quality")
    app.slider(key=state.QUALITY_THRESHOLD).set_value(0.75).run()
    app.switch_page("views/inspect_answer.py").run()

    # The checkbox filter runs before the page loads the model, which this run lacks.
    app.checkbox(key=state.ANSWER_ONLY_FLAGGED).check().run()

    assert not app.exception
    options = app.selectbox(key=state.ANSWER_EXAMPLE).options
    assert [option.split(" · ")[0] for option in options] == ["⚑ #3", "⚑ #6"]
    assert (
        "Flags of low_logprob use score >= 0.75, set on the Detector quality page."
        in shown_texts(app)
    )


def test_generation_without_answers_points_to_answers(make_app, store):
    _write_generation_run(store, [])

    app = open_page(make_app(), "quality")

    assert not app.exception
    assert [info.value for info in app.info] == [
        "This generation run has no stored answers yet. Generate them on the Answers page, "
        "then come back."
    ]
    assert [link.proto.page for link in app.get("page_link")] == ["answers"]


def test_generation_all_right_shows_metric_message(make_app, store):
    right = [answer for answer in ANSWERS if answer["index"] in (0, 1, 5)]
    _write_generation_run(store, right)

    app = open_page(make_app(), "quality")

    assert not app.exception
    (info,) = [info.value for info in app.info]
    assert "needs both faithful (0) and hallucinated (1) items" in info
    assert "all 3 labels are faithful (0)" in info
    assert "nan" not in info.lower()
    assert app.get("plotly_chart") == []


def test_generation_quality_in_chinese(make_app, answered_run):
    from test_i18n_pages import _english_strings

    app = open_page(make_app("zh_CN"), "quality")

    assert not app.exception
    assert "检测器质量" in [title.value for title in app.title]
    assert _english_strings(app) == []
