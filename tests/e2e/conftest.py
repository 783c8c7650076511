"""Fixtures for the browser test: a live dashboard server and a headless Chromium.

The server is ``halluscope dashboard`` on a free port with a fresh run store. It
runs in its own process group, so that stopping it also stops the Streamlit
process that the CLI starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from halluscope.runs import RunStore, process_is_alive

from .support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    REPOSITORY_ROOT,
    VIEWPORT,
    DashboardServer,
    find_chromium,
)

HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_health(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Poll ``/_stcore/health`` until it returns "ok", and fail if the server exits or times out."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"The dashboard server exited with code {process.returncode} before it was "
                f"healthy. Server log ({log_path}):\n"
                + log_path.read_text(encoding="utf-8", errors="replace")
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(
        f"The dashboard at {url} was not healthy after {HEALTH_TIMEOUT_S:.0f} s. Server log "
        f"({log_path}):\n" + log_path.read_text(encoding="utf-8", errors="replace")
    )


def _stop_training_workers(home: Path) -> None:
    """Send SIGTERM to the worker of every still-active run in the test's run store.

    The dashboard starts workers in their own sessions, so stopping the server
    leaves them running. Without this, a test that fails mid-training leaves one behind.
    """
    if not home.is_dir():
        return
    store = RunStore(home)
    for record in store.list_runs():
        if record.is_active and record.pid and process_is_alive(record.pid):
            try:
                os.kill(record.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _signal_group(group_id: int, signal_number: int) -> bool:
    """Send ``signal_number`` to a process group and return False if the group no longer exists."""
    try:
        os.killpg(group_id, signal_number)
    except ProcessLookupError:
        return False
    return True


def _group_is_alive(group_id: int) -> bool:
    return _signal_group(group_id, 0)


def _wait_for_group_exit(process: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for the server and every process of its group to exit, and return whether they did.

    The CLI exits at once on SIGTERM, while the Streamlit process it started
    takes a few seconds to shut down.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.poll()
        if process.returncode is not None and not _group_is_alive(process.pid):
            return True
        time.sleep(0.2)
    return False


def _stop_process_group(process: subprocess.Popen) -> None:
    """Terminate the server's process group, then kill what is left of it."""
    if _signal_group(process.pid, signal.SIGTERM) and _wait_for_group_exit(process, STOP_TIMEOUT_S):
        return
    _signal_group(process.pid, signal.SIGKILL)
    _wait_for_group_exit(process, STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    """Start ``halluscope dashboard`` with a fresh run store, and stop it and its workers after.

    The server log is written to ``test-artifacts/e2e/server.log``. After the
    server stops, the fixture fails the module if the log contains a traceback.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path_factory.mktemp("e2e") / "halluscope-home"
    log_path = ARTIFACTS / "server.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"

    cli = Path(sys.executable).with_name("halluscope")
    command = [str(cli) if cli.is_file() else "halluscope"]
    command += ["dashboard", "--port", str(port), "--address", "127.0.0.1"]
    environment = {
        **os.environ,
        "HALLUSCOPE_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }

    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DashboardServer(url=url, home=home, log_path=log_path, process=process)
    try:
        _wait_for_health(url, process, log_path)
        yield server
    finally:
        _stop_training_workers(home)
        _stop_process_group(process)

    log_text = server.log_text()
    assert "Traceback" not in log_text, f"The server log {log_path} contains a traceback."


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright, shared by the module's tests."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (install the Debian package `chromium`).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh browser context (so a fresh Streamlit session) in English, 1600×1000 pixels.

    Uncaught JavaScript errors of the page are collected in ``page.js_errors``.
    """
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    new_page = context.new_page()
    new_page.js_errors = []
    new_page.on("pageerror", lambda error: new_page.js_errors.append(str(error)))
    try:
        yield new_page
    finally:
        context.close()
