"""A MiniLM classifier fine-tuned once on the demo claims, shared by the integration tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from halluscope.cli import main
from halluscope.demo import demo_path
from halluscope.runs import RunStore


@dataclass(frozen=True)
class TrainedRun:
    store: RunStore
    run_id: str
    metrics: dict
    claims: pd.DataFrame  # the demo claims file, indexed by 1-based data row


@pytest.fixture(scope="session")
def demo_claims_run(tmp_path_factory) -> TrainedRun:
    """Fine-tune MiniLM on the clean demo claims with the CLI's default settings."""
    home = tmp_path_factory.mktemp("integration-home")
    claims_path = demo_path("claims.csv")
    args = [
        "train",
        "--model",
        "minilm",
        "--data",
        str(claims_path),
        "--text-column",
        "context",
        "--text-pair-column",
        "claim",
        "--label-column",
        "label",
        "--home",
        str(home),
        "--json",
    ]

    capture = _CaptureStdout()
    with capture:
        status = main(args)
    assert status == 0, "training the demo claims run failed"
    metrics = json.loads(capture.lines[-1])

    claims = pd.read_csv(claims_path, keep_default_na=False)
    claims.index = pd.RangeIndex(1, len(claims) + 1)
    return TrainedRun(RunStore(home), metrics["run_id"], metrics, claims)


class _CaptureStdout:
    """Collects what ``main`` prints, without pytest's per-test capsys."""

    def __enter__(self):
        import contextlib
        import io

        self._buffer = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self._buffer)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc_info):
        self._redirect.__exit__(*exc_info)
        self.lines = self._buffer.getvalue().strip().splitlines()
        return False


def repo_file(*parts: str) -> Path:
    return Path(__file__).resolve().parents[2].joinpath(*parts)
