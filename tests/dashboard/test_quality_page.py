"""Detector quality page on a tiny randomly initialised run, and its effect on Predict."""

from __future__ import annotations

from conftest import VALIDATION_EXAMPLES, open_page, shown_texts


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
