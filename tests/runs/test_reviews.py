"""Tests of review marks: store, replace, clear, list, CSV table and concurrent writers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from halluscope.runs import (
    RunNotFoundError,
    RunStore,
    clear_mark,
    get_mark,
    list_marks,
    marks_frame,
    set_mark,
)
from halluscope.runs.reviews import MARK_COLUMNS, MAX_NOTE_CHARS, REVIEWS_FILE


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home")


@pytest.fixture
def run_id(store):
    return store.create_run(kind="classification", model="minilm", data="d.csv", config={}).run_id


def test_set_and_get_mark(store, run_id):
    mark = set_mark(store, run_id, "17", "confirmed", "  wrong year  ", reviewer="ana", excerpt="x")

    assert mark.verdict == "confirmed"
    assert mark.note == "wrong year"
    assert mark.reviewer == "ana"
    assert get_mark(store, run_id, "17") == mark
    assert (store.run_dir(run_id) / REVIEWS_FILE).is_file()


def test_mark_survives_new_store_object(store, run_id):
    set_mark(store, run_id, "3", "false_alarm", "paraphrase")

    reopened = RunStore(store.home)

    assert get_mark(reopened, run_id, "3").verdict == "false_alarm"
    assert get_mark(reopened, run_id, "3").note == "paraphrase"


def test_set_mark_replaces_and_keeps_excerpt(store, run_id):
    set_mark(store, run_id, "3", "confirmed", "first", excerpt="The claim")
    set_mark(store, run_id, "3", "false_alarm", "second")

    marks = list_marks(store, run_id)
    assert len(marks) == 1
    assert marks[0].verdict == "false_alarm"
    assert marks[0].note == "second"
    assert marks[0].excerpt == "The claim"


def test_list_marks_sorted_by_row(store, run_id):
    for example_id in ("100", "9", "12"):
        set_mark(store, run_id, example_id, "confirmed")

    assert [mark.example_id for mark in list_marks(store, run_id)] == ["9", "12", "100"]


def test_clear_mark(store, run_id):
    set_mark(store, run_id, "5", "confirmed")

    assert clear_mark(store, run_id, "5") is True
    assert clear_mark(store, run_id, "5") is False
    assert get_mark(store, run_id, "5") is None


def test_run_without_marks_has_no_file(store, run_id):
    assert list_marks(store, run_id) == []
    assert get_mark(store, run_id, "1") is None
    assert not (store.run_dir(run_id) / REVIEWS_FILE).exists()


@pytest.mark.parametrize(
    ("example_id", "verdict", "note", "message"),
    [
        ("", "confirmed", "", "Invalid example id"),
        ("3", "maybe", "", "Invalid verdict 'maybe'"),
        ("3", "confirmed", "x" * (MAX_NOTE_CHARS + 1), "shorten it"),
    ],
)
def test_set_mark_rejects_invalid_input(store, run_id, example_id, verdict, note, message):
    with pytest.raises(ValueError, match=message):
        set_mark(store, run_id, example_id, verdict, note)

    assert list_marks(store, run_id) == []


def test_mark_of_unknown_run_raises(store):
    with pytest.raises(RunNotFoundError):
        set_mark(store, "20240101-000000-abcdef", "1", "confirmed")

    assert list(store.runs_dir.iterdir()) == []


def test_marks_deleted_with_run(store, run_id):
    set_mark(store, run_id, "1", "confirmed")

    store.delete(run_id)

    assert not store.run_dir(run_id).exists()


def test_marks_frame_columns_and_csv(store, run_id):
    set_mark(store, run_id, "2", "confirmed", '年份错误, "quoted"', excerpt="夸斯克尔")

    frame = marks_frame(list_marks(store, run_id))
    csv_text = frame.to_csv(index=False)

    assert list(frame.columns) == list(MARK_COLUMNS)
    assert frame.loc[0, "note"] == '年份错误, "quoted"'
    assert csv_text.splitlines()[0] == ",".join(MARK_COLUMNS)
    assert "夸斯克尔" in csv_text


def test_marks_frame_empty():
    assert list(marks_frame([]).columns) == list(MARK_COLUMNS)


WRITER = """
import sys
from halluscope.runs import RunStore, set_mark
store = RunStore(sys.argv[1])
for index in range(40):
    set_mark(store, sys.argv[2], f"{sys.argv[3]}{index}", "confirmed", f"note {index}")
"""


def test_two_processes_write_marks(store, run_id):
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(store.home), run_id, prefix])
        for prefix in ("1", "2")
    ]
    codes = [writer.wait(timeout=120) for writer in writers]

    assert codes == [0, 0]
    assert len(list_marks(store, run_id)) == 80
