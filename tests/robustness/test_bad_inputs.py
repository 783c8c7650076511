"""Bad input files through the loader, the CLI and the Data page: a clear message, no crash."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPOSITORY_ROOT, make_completed_run, shown_texts, upload, write_tiny_classifier
from robustness_corpus import CORPUS, CORPUS_IDS, BadInput

import dashboard.services as services
from halluscope.cli import main
from halluscope.data import (
    DEFAULT_MAX_BYTES,
    ClassificationSchema,
    DataError,
    DataTooLargeError,
    prepare_classification,
    read_table,
)

SCHEMA = ClassificationSchema(text="text", label="label")
_MARKDOWN_ESCAPE = re.compile(r"\\(.)")


def _load(case: BadInput):
    table = read_table(case.content, file_name=case.file_name)
    return table, prepare_classification(table, SCHEMA)


def _unescape(text: str) -> str:
    """Undo ``escape_markdown``, so a message can be compared with the plain text."""
    return _MARKDOWN_ESCAPE.sub(r"\1", text)


def _write(case: BadInput, folder: Path) -> Path:
    path = folder / case.file_name
    path.write_bytes(case.content)
    return path


@pytest.fixture
def completed_run(store, tiny_model_dir) -> str:
    return make_completed_run(store, tiny_model_dir)


# The loader


@pytest.mark.parametrize("case", CORPUS, ids=CORPUS_IDS)
def test_loader_bad_input(case: BadInput):
    if not case.loads:
        with pytest.raises(DataError) as raised:
            _load(case)
        for fragment in case.fragments:
            assert fragment in raised.value.message
        assert raised.value.file_name == case.file_name
        return

    table, data = _load(case)
    assert table.columns == ("text", "label")
    assert data.label_names == ("no", "yes")
    assert len(data.texts) == case.rows
    for position, text in enumerate(case.texts):
        assert data.texts[position] == text
    warnings = " ".join(data.warnings)
    for fragment in case.fragments:
        assert fragment in warnings


def test_loader_bom_not_in_header():
    case = next(case for case in CORPUS if case.name == "utf8_bom")

    table, _ = _load(case)

    assert table.columns[0] == "text"
    assert "\ufeff" not in "".join(table.columns)
    assert table.encoding == "utf-8-sig"


def test_loader_cp1252_warns_and_keeps_accents():
    case = next(case for case in CORPUS if case.name == "cp1252")

    table, data = _load(case)

    assert table.encoding == "cp1252"
    assert any("cp1252" in warning for warning in table.warnings)
    assert data.texts[0] == "Café crème à Zürich"


def test_loader_semicolon_detected():
    case = next(case for case in CORPUS if case.name == "semicolon")

    table, _ = _load(case)

    assert table.delimiter == ";"


def test_loader_long_cell_cut_to_limit():
    case = next(case for case in CORPUS if case.name == "long_cell")

    _, data = _load(case)

    assert len(data.texts[0]) == 20_000
    assert len(data.texts) == 5


# The upload size limit


def test_loader_accepts_150_mb(tmp_path: Path):
    path = tmp_path / "big.csv"
    cell = "word " * 200_000
    with path.open("w", encoding="utf-8") as stream:
        stream.write("text,label\n")
        for index in range(150):
            stream.write(f"{cell}{index},{'yes' if index % 2 else 'no'}\n")
    assert path.stat().st_size > 150_000_000

    table = read_table(path)
    data = prepare_classification(table, SCHEMA)

    assert len(data.texts) == 150
    assert data.label_names == ("no", "yes")
    assert "150 cells longer than 20000 characters" in data.warnings[-1]
    path.unlink()


def test_loader_rejects_file_over_limit(tmp_path: Path):
    path = tmp_path / "huge.csv"
    size = 250_000_000
    with path.open("wb") as stream:
        stream.truncate(size)  # sparse: no disk space used, and never read

    with pytest.raises(DataTooLargeError) as raised:
        read_table(path)

    message = raised.value.message
    assert "huge.csv" in message
    assert "250.0 MB (250,000,000 bytes)" in message
    assert f"{DEFAULT_MAX_BYTES / 1e6:.1f} MB ({DEFAULT_MAX_BYTES:,} bytes) limit" in message


def test_loader_rejects_one_byte_over_limit():
    content = b"text,label\n" + b"a,b\n" * 30

    with pytest.raises(DataTooLargeError) as raised:
        read_table(content, file_name="edge.csv", max_bytes=len(content) - 1)

    assert f"{len(content)} bytes, over the {len(content) - 1} bytes limit" in raised.value.message


def test_upload_saved_in_blocks(tmp_path: Path):
    content = os.urandom(3 * services.UPLOAD_BLOCK_BYTES + 17)

    class CountingStream:
        """A binary file object that records the size of each read."""

        def __init__(self, data: bytes):
            self._data, self._position, self.reads = data, 0, []

        def seek(self, position: int) -> None:
            self._position = position

        def read(self, size: int = -1) -> bytes:
            end = len(self._data) if size < 0 else self._position + size
            block = self._data[self._position : end]
            self._position += len(block)
            self.reads.append(size)
            return block

    stream = CountingStream(content)
    path = services.save_upload(tmp_path, "big.csv", stream)

    assert path.read_bytes() == content
    assert -1 not in stream.reads
    assert max(stream.reads) == services.UPLOAD_BLOCK_BYTES


# The command line, in process (``main``) and in one real subprocess


@pytest.mark.parametrize("case", CORPUS, ids=CORPUS_IDS)
def test_cli_predict_bad_input(case, completed_run, home, tmp_path, capsys, caplog):
    path = _write(case, tmp_path)
    argv = ["predict", completed_run, "--data", str(path), "--text-column", "text",
            "--label-column", "label", "--home", str(home), "--json"]  # fmt: skip

    status = main(argv)

    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert not [record for record in caplog.records if record.exc_info]
    if case.loads:
        assert status == 0, captured.err
        assert json.loads(captured.out)["examples"] == case.rows
        return
    assert status == 1
    assert captured.err.startswith("halluscope predict: error: ")
    for fragment in case.fragments:
        assert fragment in captured.err


@pytest.mark.parametrize("name", ["header_only", "one_class", "blank_text", "binary"])
def test_cli_train_bad_input_fails_run(
    name, tiny_model_dir, home, tmp_path, capsys, caplog, keep_signal_handlers
):
    case = next(case for case in CORPUS if case.name == name)
    path = _write(case, tmp_path)
    argv = ["train", "--model", str(tiny_model_dir), "--data", str(path), "--text-column", "text",
            "--label-column", "label", "--home", str(home), "--json"]  # fmt: skip

    status = main(argv)

    captured = capsys.readouterr()
    assert status == 1
    assert "Traceback" not in captured.err
    assert not [record for record in caplog.records if record.exc_info]
    for fragment in case.fragments:
        assert fragment in captured.err
    from halluscope.runs import RunStore

    [record] = RunStore(home).list_runs()
    assert record.status == "failed"
    assert case.fragments[0] in record.message


def test_cli_subprocess_bad_input(completed_run, home, tmp_path):
    path = _write(next(case for case in CORPUS if case.name == "json_object"), tmp_path)
    command = [sys.executable, "-m", "halluscope.cli", "predict", completed_run,
               "--data", str(path), "--text-column", "text", "--label-column", "label",
               "--home", str(home)]  # fmt: skip

    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=REPOSITORY_ROOT, check=False
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "halluscope predict: error: object.json: the top-level JSON value is an object" in (
        result.stderr
    )


def test_cli_predict_long_input_small_position_table(store, home, tmp_path, capsys):
    model_dir = write_tiny_classifier(tmp_path / "short-model", max_positions=32)
    run_id = make_completed_run(store, model_dir)
    case = next(case for case in CORPUS if case.name == "long_cell")
    path = _write(case, tmp_path)

    status = main(["predict", run_id, "--data", str(path), "--text-column", "text",
                   "--label-column", "label", "--home", str(home), "--json"])  # fmt: skip

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert json.loads(captured.out)["examples"] == 5


# The Data page


@pytest.mark.parametrize("case", CORPUS, ids=CORPUS_IDS)
def test_data_page_bad_input(case, make_app):
    app = upload(make_app(), case.file_name, case.content)

    assert not app.exception
    assert not any("Traceback" in text for text in shown_texts(app))
    errors = [_unescape(error.value) for error in app.error]
    if not case.loads:
        assert len(errors) == 1, errors
        for fragment in case.fragments:
            assert fragment in errors[0]
        assert app.session_state["data_selection"] is None
        return

    assert errors == []
    selection = app.session_state["data_selection"]
    assert selection.display_name == case.file_name
    assert selection.text_column == "text"
    assert selection.label_names == ("no", "yes")
    assert selection.rows == case.rows
    preview = app.dataframe[0].value
    assert list(preview.columns) == ["text", "label"]
    for position, text in enumerate(case.texts):
        assert preview["text"].iloc[position] == text
    warnings = " ".join(_unescape(warning.value) for warning in app.warning)
    for fragment in case.fragments:
        assert fragment in warnings


def test_data_page_file_over_limit(make_app, monkeypatch):
    content = b"text,label\n" + b"Some text here,yes\nOther text,no\n" * 100
    monkeypatch.setattr(services, "MAX_DATA_FILE_BYTES", 1_000)

    app = upload(make_app(), "too_big.csv", content)

    assert not app.exception
    [error] = [_unescape(error.value) for error in app.error]
    assert f"too_big.csv: the file is {len(content):,} bytes, over the 1,000 bytes limit" in error
    assert app.session_state["data_selection"] is None
