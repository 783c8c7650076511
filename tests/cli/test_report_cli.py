"""Tests of ``halluscope report`` on a tiny randomly initialised run."""

from __future__ import annotations

import pytest

from halluscope.cli import main
from halluscope.runs import RunStore, set_mark
from tests.report.tiny_runs import SCRIPT_CLAIM, create_tiny_run, write_tiny_model


@pytest.fixture
def tiny_store(tmp_path):
    write_tiny_model(tmp_path / "model")
    store = RunStore(tmp_path / "home")
    run_id = create_tiny_run(store, tmp_path / "model", name="cli <report> run")
    return store, run_id


def test_report_command_writes_html(tiny_store, tmp_path, capsys):
    store, run_id = tiny_store
    set_mark(store, run_id, "11", "confirmed", "wrong year")
    output = tmp_path / "report.html"

    status = main(["report", run_id, "-o", str(output), "--home", str(store.home)])

    assert status == 0
    assert capsys.readouterr().out.strip() == str(output)
    html_text = output.read_text(encoding="utf-8")
    assert "cli &lt;report&gt; run" in html_text
    assert "cli <report> run" not in html_text
    assert SCRIPT_CLAIM not in html_text
    assert html_text.count('class="example"') == 2
    assert "wrong year" in html_text


def test_report_command_explains_chosen_row(tiny_store, tmp_path):
    store, run_id = tiny_store
    output = tmp_path / "report.html"

    status = main(
        ["report", run_id, "-o", str(output), "--home", str(store.home), "--example-row", "8",
         "--method", "saliency"]
    )  # fmt: skip

    assert status == 0
    html_text = output.read_text(encoding="utf-8")
    assert html_text.count('class="example"') == 1
    assert 'id="example-row-8"' in html_text
    assert "Attribution method: saliency" in html_text


def test_report_command_unknown_run(tmp_path, capsys):
    status = main(
        ["report", "20240101-000000-abcdef", "-o", str(tmp_path / "r.html"),
         "--home", str(tmp_path / "home")]
    )  # fmt: skip

    assert status == 1
    assert "No run with id '20240101-000000-abcdef'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_report_command_missing_folder(tiny_store, tmp_path, capsys):
    store, run_id = tiny_store
    output = tmp_path / "missing" / "report.html"

    status = main(["report", run_id, "-o", str(output), "--home", str(store.home)])

    assert status == 1
    assert "does not exist" in capsys.readouterr().err


def test_report_command_unknown_method(tiny_store, tmp_path, capsys):
    store, run_id = tiny_store

    status = main(
        ["report", run_id, "-o", str(tmp_path / "r.html"), "--home", str(store.home),
         "--method", "guesswork"]
    )  # fmt: skip

    assert status == 2
    assert "Unknown attribution method 'guesswork'" in capsys.readouterr().err
