"""Fixtures of the report tests: a tiny random model and a run store with one run on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.tiny_runs import write_tiny_model


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-model") / "model"
    write_tiny_model(folder)
    return folder
