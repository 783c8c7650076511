"""Data page: demo preview and summary, uploads, column mapping, label maps, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.components import escape_markdown
from dashboard.services import DataSelection, safe_file_name, save_upload

GOOD_CSV = (
    b"context,claim,label\n"
    b"Brena Tholk founded the Quaskel Works in 1874.,The works opened in 1874.,supported\n"
    b"Brena Tholk founded the Quaskel Works in 1874.,The works opened in 1912.,hallucinated\n"
    b"The Velmar runs 212 kilometres to the sea.,The Velmar runs 212 kilometres.,supported\n"
    b"The Velmar runs 212 kilometres to the sea.,The Velmar runs 90 kilometres.,hallucinated\n"
)
EMPTY_LABEL_CSV = (
    b"context,claim,label\n"
    b"The sky is blue today in town.,The sky is blue.,supported\n"
    b"The grass is green in summer.,The grass is red.,\n"
    b"The sea is deep and wide.,The sea is deep.,hallucinated\n"
)
FAITHDIAL_CSV = (
    b"knowledge,response,BEGIN\n"
    b"Brena Tholk founded the Quaskel Works in 1874.,It opened in 1874.,Entailment\n"
    b"Brena Tholk founded the Quaskel Works in 1874.,It opened in 1912.,Hallucination\n"
    b"The Velmar runs 212 kilometres to the sea.,I love rivers so much!,Generic\n"
    b"The Velmar runs 212 kilometres to the sea.,It runs 90 kilometres.,Partial Hallucination\n"
)


def _upload(app, name: str, content: bytes):
    app.run()
    app.radio(key="data_source").set_value("upload").run()
    app.file_uploader(key="data_upload").upload(name, content, "text/csv")
    return app.run()


def test_demo_shows_preview_and_summary(make_app):
    app = make_app().run()

    assert not app.exception
    assert app.radio(key="data_source").value == "demo"
    preview = app.dataframe[0].value
    assert list(preview.columns[:4]) == ["id", "context", "claim", "label"]
    assert len(preview) == 600
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Rows kept"] == "600"
    assert metrics["Classes"] == "2"
    assert metrics["Rows dropped by the label map"] == "0"


def test_demo_guesses_columns(make_app):
    app = make_app().run()

    assert app.selectbox(key="data_text_column").value == "context"
    assert app.selectbox(key="data_pair_column").value == "claim"
    assert app.selectbox(key="data_label_column").value == "label"


def test_demo_becomes_selection(make_app):
    app = make_app().run()

    selection = app.session_state["data_selection"]
    assert isinstance(selection, DataSelection)
    assert selection.rows == 600
    assert selection.label_names == ("hallucinated", "supported")
    assert Path(selection.path).name == "claims.csv"


def test_upload_valid_file(make_app, home):
    app = _upload(make_app(), "my claims.csv", GOOD_CSV)

    assert not app.exception
    assert [error.value for error in app.error] == []
    selection = app.session_state["data_selection"]
    assert selection.rows == 4
    assert selection.display_name == "my claims.csv"
    assert Path(selection.path).parent == home / "uploads"
    assert Path(selection.path).read_bytes() == GOOD_CSV


def test_upload_bad_file_shows_specific_error(make_app):
    app = _upload(make_app(), "bad.csv", EMPTY_LABEL_CSV)

    assert not app.exception
    errors = [error.value for error in app.error]
    assert len(errors) == 1
    assert "bad.csv" in errors[0]
    assert "'label'" in errors[0]
    assert "row 2" in errors[0]
    assert app.session_state["data_selection"] is None


def test_upload_unparseable_file_shows_error(make_app):
    app = _upload(make_app(), "table.parquet", b"not a parquet file at all")

    assert not app.exception
    assert len(app.error) == 1
    assert "table.parquet" in app.error[0].value
    assert "Parquet" in app.error[0].value
    assert len(app.dataframe) == 0


def test_same_column_twice_rejected(make_app):
    app = make_app().run()

    app.selectbox(key="data_label_column").set_value("context").run()

    assert not app.exception
    assert app.error[0].value.startswith("Choose a different column for each role")
    assert app.session_state["data_selection"] is None


def test_faithdial_label_map(make_app):
    app = _upload(make_app(), "faithdial.csv", FAITHDIAL_CSV)
    assert app.selectbox(key="data_label_column").value == "BEGIN"

    app.selectbox(key="data_label_map").set_value("faithdial").run()

    assert not app.exception
    selection = app.session_state["data_selection"]
    assert selection.rows == 3
    assert selection.label_names == ("supported", "hallucinated")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Rows dropped by the label map"] == "1"


def test_custom_label_map_invalid_json(make_app):
    app = make_app().run()
    app.selectbox(key="data_label_map").set_value("custom").run()

    app.text_area(key="data_label_map_json").input('{"supported": "yes",').run()

    assert not app.exception
    assert app.error[0].value.startswith("The label map is not valid JSON")
    assert app.session_state["data_selection"] is None


def test_custom_label_map_renames(make_app):
    app = make_app().run()
    app.selectbox(key="data_label_map").set_value("custom").run()

    app.text_area(key="data_label_map_json").input(
        '{"supported": "faithful", "hallucinated": "unfaithful"}'
    ).run()

    assert [error.value for error in app.error] == []
    assert app.session_state["data_selection"].label_names == ("faithful", "unfaithful")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("claims.csv", "claims.csv"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\secret.csv", "secret.csv"),
        ("..", "upload"),
        (".hidden.csv", "hidden.csv"),
        ("my data (v2).csv", "my_data_v2_.csv"),
        ("a..b.csv", "a.b.csv"),
        ("数据.csv", "_.csv"),
        ("", "upload"),
    ],
)
def test_safe_file_name(name, safe):
    assert safe_file_name(name) == safe


def test_safe_file_name_keeps_extension_when_cut():
    name = safe_file_name("x" * 300 + ".jsonl")

    assert len(name) == 80
    assert name.endswith(".jsonl")


def test_save_upload_path_and_reuse(tmp_path):
    first = save_upload(tmp_path, "../claims.csv", GOOD_CSV)
    second = save_upload(tmp_path, "../claims.csv", GOOD_CSV)

    assert first == second
    assert first.parent == tmp_path / "uploads"
    assert first.name.endswith("-claims.csv")
    assert len(first.name.split("-")[0]) == 16
    assert first.read_bytes() == GOOD_CSV
    assert sorted(path.name for path in (tmp_path / "uploads").iterdir()) == [first.name]


def test_markdown_in_file_name_escaped(make_app):
    app = _upload(make_app(), "![x](http://localhost:1) *bold*.csv", GOOD_CSV)

    success = app.success[0].value

    assert "\\!\\[x\\](http://localhost:1) \\*bold\\*.csv is valid" in success


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain text, 0.5 (row 3)", "plain text, 0.5 (row 3)"),
        ("![img](http://x/y.png)", "\\!\\[img\\](http://x/y.png)"),
        ("*a* _b_ `c` $d$ <b>", "\\*a\\* \\_b\\_ \\`c\\` \\$d\\$ \\<b\\>"),
        ("- item\n1. first\n# title", "\\- item\n1\\. first\n\\# title"),
    ],
)
def test_escape_markdown(text, escaped):
    assert escape_markdown(text) == escaped


BAD_UPLOADS = [
    pytest.param(
        "mixed.jsonl",
        b'{"context": "The sky is blue.", "claim": "Blue sky.", "label": 1}\n'
        b'{"context": "The sea is deep.", "claim": "Deep sea.", "label": "1"}\n'
        b'{"context": "The hill is low.", "claim": "Low hill.", "label": 0.5}\n',
        ["mixed.jsonl", "'label'", "mixes label types", "row 2"],
        id="mixed-label-types",
    ),
    pytest.param(
        "blank-text.csv",
        b"context,claim,label\n"
        b"The sky is blue.,Blue sky.,supported\n"
        b"The sea is deep.,   ,hallucinated\n",
        ["blank-text.csv", "'claim'", "row 2", "empty"],
        id="blank-text-cell",
    ),
    pytest.param(
        "one-class.csv",
        b"context,claim,label\n"
        b"The sky is blue.,Blue sky.,supported\n"
        b"The sea is deep.,Deep sea.,supported\n",
        ["one-class.csv", "'label'", "supported", "two"],
        id="single-class",
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_UPLOADS)
def test_bad_upload_message_names_the_problem(make_app, name, content, expected):
    app = _upload(make_app(), name, content)

    assert not app.exception
    errors = [error.value for error in app.error]
    assert len(errors) == 1
    for piece in expected:
        assert piece in errors[0]
    assert app.session_state["data_selection"] is None
