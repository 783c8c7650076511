"""Paths, browser settings and the server handle shared by the browser test and its fixtures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

ARTIFACTS = REPOSITORY_ROOT / "test-artifacts" / "e2e"
"""Screenshots and the server log of the last run (git-ignored)."""

VIEWPORT = {"width": 1600, "height": 1000}
"""Browser window size in CSS pixels."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """Return the path of Debian's Chromium, or None when it is not installed."""
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


E2E_MARKS = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="Chromium is not installed (install the Debian package `chromium`).",
    ),
]
"""The ``pytestmark`` of every browser test module."""


@dataclass(frozen=True)
class DashboardServer:
    """A running ``halluscope dashboard`` process and where it keeps its state."""

    url: str
    home: Path
    log_path: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        """Return the server's stdout and stderr captured so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")
