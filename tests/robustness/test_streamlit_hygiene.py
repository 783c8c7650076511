"""Streamlit hygiene: a clean start-up log, and models loaded once per process."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPOSITORY_ROOT, make_completed_run, open_page

import halluscope.models
import halluscope.workflows

logger = logging.getLogger(__name__)

PORT = 8657
HEALTH_TIMEOUT_S = 90
LOG_PROBLEMS = ("Traceback", "Error", "inotify", "watchdog", "torch.classes", "__path__._path")


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode("utf-8", errors="replace")


def _open_in_browser(url: str) -> None:
    """Load the Data page in headless Chromium, so the app script runs and imports torch.

    Without a browser session the server never runs the script, so the log
    would only cover the server itself. Skipped without Chromium or Playwright.
    """
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        logger.warning("Chromium not found; the start-up log covers the server only.")
        return
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.goto(url)
            page.get_by_text("Rows kept").wait_for(timeout=HEALTH_TIMEOUT_S * 1000)
        finally:
            browser.close()


@pytest.mark.integration
def test_server_log_clean(tmp_path: Path):
    log_path = tmp_path / "server.log"
    environment = {**os.environ, "HALLUSCOPE_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "halluscope.cli", "dashboard", "--port", str(PORT)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPOSITORY_ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        healthy = False
        while time.monotonic() < deadline and not healthy:
            assert process.poll() is None, log_path.read_text()
            try:
                healthy = _get(f"http://localhost:{PORT}/_stcore/health") == (200, "ok")
            except OSError:
                time.sleep(0.5)
        assert healthy, log_path.read_text()
        status, page = _get(f"http://localhost:{PORT}/")
        assert status == 200
        assert "<title>" in page
        _open_in_browser(f"http://localhost:{PORT}/")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert f"localhost:{PORT}" in log
    for problem in LOG_PROBLEMS:
        assert problem not in log, log


def test_model_loaded_once_across_reruns(make_app, store, tiny_model_dir, monkeypatch):
    make_completed_run(store, tiny_model_dir)
    calls: list[str] = []
    real_loader = halluscope.models.load_sequence_classifier

    def counting_loader(reference, **kwargs):
        calls.append(reference)
        return real_loader(reference, **kwargs)

    # The page's cached loader imports the function from halluscope.models at
    # call time; predictions use the name bound in halluscope.workflows.
    monkeypatch.setattr(halluscope.models, "load_sequence_classifier", counting_loader)
    monkeypatch.setattr(halluscope.workflows, "load_sequence_classifier", counting_loader)

    app = open_page(make_app(), "inspect")
    for index in (1, 2, 0):
        app.selectbox(key="inspect_example").select_index(index).run()
    app.run()
    open_page(app, "predict")
    open_page(app, "inspect")

    assert not app.exception
    assert len(calls) == 2, calls  # one eager model for the page, one for the predictions
    assert len(set(calls)) == 1
    assert calls[0].endswith("/model")


def test_second_session_reuses_model(make_app, store, tiny_model_dir, monkeypatch):
    make_completed_run(store, tiny_model_dir)
    calls: list[str] = []
    real_loader = halluscope.models.load_sequence_classifier

    def counting_loader(reference, **kwargs):
        calls.append(reference)
        return real_loader(reference, **kwargs)

    monkeypatch.setattr(halluscope.models, "load_sequence_classifier", counting_loader)
    monkeypatch.setattr(halluscope.workflows, "load_sequence_classifier", counting_loader)

    first = open_page(make_app(), "inspect")
    loaded_by_first = len(calls)
    second = make_app()
    open_page(second, "inspect")

    assert not first.exception
    assert not second.exception
    assert loaded_by_first == 2
    assert len(calls) == loaded_by_first
