"""Predict and Inspect pages on a tiny randomly initialised run."""

from __future__ import annotations

from conftest import FLAGGED_ROWS, VALIDATION_EXAMPLES, open_page, shown_texts


def test_predict_page_shows_validation_predictions(make_app, tiny_run):
    app = open_page(make_app(), "predict")

    assert not app.exception
    assert [error.value for error in app.error] == []
    assert app.selectbox(key="predict_run").value == tiny_run
    table = app.dataframe[0].value
    assert len(table) == len(VALIDATION_EXAMPLES)
    assert sorted(table["row_number"]) == sorted(example[3] for example in VALIDATION_EXAMPLES)
    assert set(table["gold"]) == {"hallucinated", "supported"}
    assert set(table["predicted"]) == {"hallucinated"}
    assert set(table.loc[table["flagged"], "row_number"]) == FLAGGED_ROWS
    assert app.metric[0].value == str(len(VALIDATION_EXAMPLES))
    assert app.metric[1].value == f"{len(FLAGGED_ROWS)} (50.0%)"
    assert app.metric[2].value == "0.500"


def test_predict_filter_only_flagged(make_app, tiny_run):
    app = open_page(make_app(), "predict")
    full = app.dataframe[0].value

    app.checkbox(key="predict_only_flagged").check().run()

    filtered = app.dataframe[0].value
    assert not app.exception
    assert len(full) == len(VALIDATION_EXAMPLES)
    assert set(filtered["row_number"]) == FLAGGED_ROWS
    assert filtered["flagged"].all()


def test_predict_filter_only_wrong(make_app, tiny_run):
    app = open_page(make_app(), "predict")

    app.checkbox(key="predict_only_wrong").check().run()

    filtered = app.dataframe[0].value
    assert set(filtered["gold"]) == {"supported"}
    assert not filtered["correct"].any()


def test_predict_csv_download(make_app, tiny_run):
    app = open_page(make_app(), "predict")

    button = app.get("download_button")
    assert len(button) == 1
    assert button[0].proto.label == "Download CSV"


def test_predict_without_runs_points_to_train(make_app):
    app = open_page(make_app(), "predict")

    assert not app.exception
    assert "No completed runs yet. Train a model first." in [info.value for info in app.info]


def test_inspect_page_three_panels(make_app, tiny_run):
    app = open_page(make_app(), "inspect")

    assert not app.exception
    expected_alerts = ("Wrong: the gold label is", "Flagged as a suspected hallucination")
    assert [error.value for error in app.error if not error.value.startswith(expected_alerts)] == []
    subheaders = [subheader.value for subheader in app.subheader]
    assert subheaders == ["Text and attributions", "Prediction", "Attention"]
    assert app.selectbox(key="inspect_method").value == "integrated_gradients"
    assert app.selectbox(key="inspect_layer").value == 1
    assert any(caption.value.startswith("Sequence length:") for caption in app.caption)


def test_inspect_colours_context_and_claim(make_app, tiny_run):
    app = open_page(make_app(), "inspect")

    position = app.selectbox(key="inspect_example").value
    context, claim = VALIDATION_EXAMPLES[position][0], VALIDATION_EXAMPLES[position][1]
    rendered = [element.proto.body for element in app.get("html")]
    assert len(rendered) == 2
    assert "<span" in rendered[0]
    assert context.split()[0] in rendered[0]
    assert claim.split()[-1].rstrip(".") in rendered[1]
    assert any(metric.label == "Convergence delta (logits)" for metric in app.metric)


def test_inspect_default_example_is_flagged(make_app, tiny_run):
    app = open_page(make_app(), "inspect")

    position = app.selectbox(key="inspect_example").value
    assert VALIDATION_EXAMPLES[position][3] in FLAGGED_ROWS
    assert app.checkbox(key="inspect_only_flagged").value is True
    assert len(app.selectbox(key="inspect_example").options) == len(FLAGGED_ROWS)
    assert "Flagged as a suspected hallucination" in " ".join(e.value for e in app.error)


def test_inspect_saliency_has_no_delta(make_app, tiny_run):
    app = open_page(make_app(), "inspect")

    app.selectbox(key="inspect_method").set_value("saliency").run()

    assert not app.exception
    assert not any(metric.label == "Convergence delta (logits)" for metric in app.metric)
    assert len(app.get("html")) == 2


def test_inspect_page_in_chinese(make_app, tiny_run):
    app = open_page(make_app("zh_CN"), "inspect")

    assert not app.exception
    assert [subheader.value for subheader in app.subheader] == ["文本与归因", "预测", "注意力"]
    assert all(text for text in shown_texts(app))


UPLOAD_CSV = (
    "context,claim,label\n"
    + "".join(
        f'"{context}","{claim}",{("hallucinated", "supported")[label]}\n'
        for context, claim, label, _row in VALIDATION_EXAMPLES
    )  # fmt: skip
).encode()


def test_predict_on_uploaded_file(make_app, tiny_run, home):
    app = open_page(make_app(), "predict")
    app.radio(key="predict_source").set_value("upload").run()

    app.file_uploader(key="predict_upload").upload("new.csv", UPLOAD_CSV, "text/csv")
    app.run()

    assert not app.exception
    assert [error.value for error in app.error] == []
    assert app.selectbox(key="predict_text_column").value == "context"
    assert app.selectbox(key="predict_pair_column").value == "claim"
    assert app.selectbox(key="predict_label_column").value == "label"
    table = app.dataframe[0].value
    assert list(table["row_number"]) == [1, 2, 3, 4]
    assert set(table.loc[table["flagged"], "row_number"]) == {1, 3}
    assert len(list((home / "uploads").iterdir())) == 1


def test_predict_on_bad_upload_shows_error(make_app, tiny_run):
    app = open_page(make_app(), "predict")
    app.radio(key="predict_source").set_value("upload").run()

    app.file_uploader(key="predict_upload").upload(
        "broken.jsonl", b'{"context": "a"\n', "text/plain"
    )
    app.run()

    assert not app.exception
    assert len(app.error) == 1
    assert "broken.jsonl" in app.error[0].value
    assert len(app.dataframe) == 0


def test_inspect_long_sequence_waits_for_button(make_app, tiny_run, monkeypatch):
    import dashboard.services as services

    monkeypatch.setattr(services, "AUTO_ATTRIBUTION_TOKEN_PASSES", 10)
    app = open_page(make_app(), "inspect")

    assert not app.exception
    assert len(app.get("html")) == 0
    assert app.info[0].value == "This attribution is long-running. Start it with the button."
    assert any(caption.value.startswith("Cost:") for caption in app.caption)

    app.button(key="inspect_compute").click().run()

    assert len(app.get("html")) == 2
    app.selectbox(key="inspect_head").set_value(1).run()
    assert len(app.get("html")) == 2
