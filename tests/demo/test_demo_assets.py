"""Tests of the committed demo files and the writer that makes them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from halluscope.demo import DEMO_DIR, demo_path, write_demo_assets
from halluscope.demo.__main__ import main


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_demo_assets(tmp_path_factory.mktemp("demo"))


def test_assets_written_keys(written: dict[str, Path]) -> None:
    assert sorted(written) == ["claims", "qa", "readme"]
    assert written["claims"].name == "claims.csv"
    assert written["qa"].name == "qa.jsonl"
    assert written["readme"].name == "README.md"


@pytest.mark.parametrize("name", ["claims.csv", "qa.jsonl", "README.md"])
def test_assets_match_committed_bytes(written: dict[str, Path], name: str) -> None:
    fresh = next(path for path in written.values() if path.name == name)
    assert fresh.read_bytes() == demo_path(name).read_bytes(), (
        f"assets/demo/{name} is stale; regenerate it with `python -m halluscope.demo assets/demo`."
    )


def test_assets_claims_csv_rows() -> None:
    frame = pd.read_csv(demo_path("claims.csv"))
    assert len(frame) == 600
    assert frame["id"].iloc[0] == "c0001"
    assert json.loads(frame["altered_spans"].iloc[0]) is not None


def test_assets_qa_jsonl_rows() -> None:
    lines = demo_path("qa.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 400
    assert records[0]["id"] == "q0001"
    assert all(isinstance(record["answerable"], bool) for record in records)


def test_assets_readme_regenerate_command() -> None:
    text = demo_path("README.md").read_text(encoding="utf-8")
    assert "python -m halluscope.demo assets/demo" in text
    assert "claims.csv" in text
    assert "qa.jsonl" in text


def test_assets_other_seed_differs(tmp_path: Path, written: dict[str, Path]) -> None:
    other = write_demo_assets(tmp_path, seed=1)
    assert other["claims"].read_bytes() != written["claims"].read_bytes()


def test_demo_path_locates_folder() -> None:
    assert DEMO_DIR.parts[-2:] == ("assets", "demo")
    assert demo_path("claims.csv") == DEMO_DIR / "claims.csv"


def test_demo_path_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="python -m halluscope.demo"):
        demo_path("no-such-file.csv")


def test_main_writes_folder(tmp_path: Path) -> None:
    out_dir = tmp_path / "nested" / "demo"
    assert main([str(out_dir), "--seed", "2"]) == 0
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "README.md",
        "claims.csv",
        "qa.jsonl",
    ]
