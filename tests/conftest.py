"""Shared test settings: offline, a temporary run store, and paths to shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The converted SmolLM2 weights are cached in the (git-ignored) checkout, so the
# GGUF conversion runs once per checkout rather than once per test.
os.environ.setdefault("HALLUSCOPE_CACHE", str(REPO_ROOT / "test-artifacts" / "cache"))


@pytest.fixture
def store_home(tmp_path, monkeypatch) -> Path:
    """A fresh run store folder, also set as HALLUSCOPE_HOME."""
    home = tmp_path / "halluscope-home"
    monkeypatch.setenv("HALLUSCOPE_HOME", str(home))
    return home


@pytest.fixture
def shared_data():
    """Return a function mapping path parts to a path under the shared labelled data.

    The test is skipped when that data is absent (a checkout without ../shared).
    """

    def locate(*parts: str) -> Path:
        path = SHARED_DATA.joinpath(*parts)
        if not path.exists():
            pytest.skip(f"shared labelled data not found at {path}")
        return path

    return locate
