"""Runs page and review panel on a tiny randomly initialised run."""

from __future__ import annotations

import json

from conftest import FLAGGED_ROWS, VALIDATION_EXAMPLES, open_page

from halluscope.runs import get_mark, list_marks, set_mark
from halluscope.runs.provenance import PROVENANCE_FILE, record_provenance


def _add_failed_run(store, name="broken generation run"):
    record = store.create_run(
        kind="generation", model="smollm2-135m", data="/tmp/qa.jsonl", config={}, name=name
    )
    store.set_status(record.run_id, "failed", message="Out of memory.")
    return record.run_id


def _table_ids(app):
    return list(app.dataframe[0].value["run_id"])


def test_runs_page_lists_runs(make_app, store, tiny_run):
    failed = _add_failed_run(store)

    app = open_page(make_app(), "runs")

    assert not app.exception
    assert app.title[0].value == "Runs"
    assert sorted(_table_ids(app)) == sorted([tiny_run, failed])
    table = app.dataframe[0].value
    row = table[table["run_id"] == tiny_run].iloc[0]
    assert row["kind"] == "classification"
    assert row["model"] == "minilm"
    assert row["data"] == "claims.csv"
    assert "max_length=64" in row["settings"]
    assert row["accuracy"] == 0.5
    assert "Showing 2 of 2 runs." in [caption.value for caption in app.caption]


def test_runs_page_filters_status_kind_text(make_app, store, tiny_run):
    failed = _add_failed_run(store)
    app = open_page(make_app(), "runs")

    app.multiselect(key="runs_filter_status").set_value(["completed"]).run()
    assert _table_ids(app) == [tiny_run]

    app.multiselect(key="runs_filter_status").set_value([]).run()
    app.multiselect(key="runs_filter_kind").set_value(["generation"]).run()
    assert _table_ids(app) == [failed]

    app.multiselect(key="runs_filter_kind").set_value([]).run()
    app.text_input(key="runs_filter_text").input("TINY").run()
    assert _table_ids(app) == [tiny_run]

    app.text_input(key="runs_filter_text").input("no such run").run()
    assert _table_ids(app) == []
    assert not app.exception


def test_runs_page_sorts_by_name(make_app, store, tiny_run):
    failed = _add_failed_run(store, name="a first run")
    app = open_page(make_app(), "runs")

    app.selectbox(key="runs_sort").set_value("name").run()
    app.checkbox(key="runs_sort_descending").uncheck().run()

    assert _table_ids(app) == [failed, tiny_run]


def test_runs_page_renames_run(make_app, store, tiny_run):
    app = open_page(make_app(), "runs")
    assert app.text_input(key="runs_new_name").value == "tiny test run"

    app.text_input(key="runs_new_name").input("renamed <b>run</b>").run()
    app.button(key="runs_rename").click().run()

    assert not app.exception
    assert store.get(tiny_run).name == "renamed <b>run</b>"
    assert any("renamed" in success.value for success in app.success)
    assert app.text_input(key="runs_new_name").value == "renamed <b>run</b>"


def test_runs_page_delete_needs_confirmation(make_app, store, tiny_run):
    app = open_page(make_app(), "runs")

    app.button(key="runs_delete").click().run()
    assert [record.run_id for record in store.list_runs()] == [tiny_run]
    assert any("cannot be undone" in warning.value for warning in app.warning)

    app.button(key="runs_delete_cancel").click().run()
    assert [record.run_id for record in store.list_runs()] == [tiny_run]
    assert not any("cannot be undone" in warning.value for warning in app.warning)

    app.button(key="runs_delete").click().run()
    app.button(key="runs_delete_confirm").click().run()

    assert not app.exception
    assert store.list_runs() == []
    assert not store.run_dir(tiny_run).exists()
    assert any("was deleted" in success.value for success in app.success)


def test_runs_page_shows_provenance(make_app, store, tiny_run):
    record_provenance(store, tiny_run)
    provenance = json.loads((store.run_dir(tiny_run) / PROVENANCE_FILE).read_text())

    app = open_page(make_app(), "runs")

    assert not app.exception
    frames = [frame.value for frame in app.dataframe]
    shown = [frame for frame in frames if "Field" in frame.columns]
    assert len(shown) == 1
    values = dict(zip(shown[0]["Field"], shown[0]["Value"], strict=True))
    assert values["Data file SHA-256"] == provenance["data"]["sha256"]
    assert len(values["Data file SHA-256"]) == 64
    assert values["torch version"] == provenance["versions"]["torch"]


def test_runs_page_builds_report_download(make_app, store, tiny_run):
    set_mark(store, tiny_run, "3", "false_alarm", "paraphrase, not an error")
    app = open_page(make_app(), "runs")
    assert len(app.get("download_button")) == 2  # run table, review marks

    app.button(key="runs_report_build").click().run()

    assert not app.exception
    labels = [button.proto.label for button in app.get("download_button")]
    assert "Download HTML report" in labels
    assert [error.value for error in app.error] == []


def test_review_marks_persist_across_sessions(make_app, store, tiny_run):
    app = open_page(make_app(), "inspect")
    position = app.selectbox(key="inspect_example").value
    row_number = VALIDATION_EXAMPLES[position][3]
    assert row_number in FLAGGED_ROWS
    assert app.radio(key="review_verdict").value == "__none__"

    app.radio(key="review_verdict").set_value("confirmed").run()
    app.text_area(key="review_note").input("The year is wrong.").run()
    app.button(key="review_save").click().run()

    assert not app.exception
    mark = get_mark(store, tiny_run, str(row_number))
    assert mark.verdict == "confirmed"
    assert mark.note == "The year is wrong."
    assert mark.excerpt == VALIDATION_EXAMPLES[position][1]

    # A new session, as after a restart of the dashboard, reads the mark back.
    fresh = open_page(make_app(), "inspect")
    assert fresh.selectbox(key="inspect_example").value == position
    assert fresh.radio(key="review_verdict").value == "confirmed"
    assert fresh.text_area(key="review_note").value == "The year is wrong."
    assert any("Confirmed hallucination" in caption.value for caption in fresh.caption)

    runs = open_page(make_app(), "runs")
    marks_tables = [frame.value for frame in runs.dataframe if "verdict" in frame.value.columns]
    assert len(marks_tables) == 1
    assert list(marks_tables[0]["example_id"]) == [str(row_number)]
    assert list(marks_tables[0]["verdict"]) == ["confirmed"]


def test_review_clear_removes_mark(make_app, store, tiny_run):
    app = open_page(make_app(), "inspect")
    row_number = VALIDATION_EXAMPLES[app.selectbox(key="inspect_example").value][3]
    set_mark(store, tiny_run, str(row_number), "false_alarm", "fine")
    app.run()
    assert app.radio(key="review_verdict").value == "false_alarm"

    app.radio(key="review_verdict").set_value("__none__").run()
    app.button(key="review_save").click().run()

    assert not app.exception
    assert list_marks(store, tiny_run) == []


def test_runs_page_without_runs(make_app):
    app = open_page(make_app(), "runs")

    assert not app.exception
    assert app.info[0].value == "No runs yet. Start one on the Train page."
