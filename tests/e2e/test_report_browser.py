"""End-to-end tests in headless Chromium: the HTML report offline, and every page in Chinese.

The first test exports the report of a small run on the demo claims (a tiny
random BERT, so it takes seconds), opens it from a file:// URL with every
http(s) request aborted, and checks that the plotly figures are drawn and that
a ``<script>`` in the data shows as text. The second test opens the real
dashboard in a Chinese browser and visits every page, checking that no string
of the English catalogue is visible. Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from halluscope.report import write_report
from halluscope.runs import RunStore, set_mark
from tests.report.tiny_runs import (
    CHINESE_CLAIM,
    FLAGGED_ROWS,
    SCRIPT_CLAIM,
    create_tiny_run,
    write_tiny_model,
)

from .support import ARTIFACTS, E2E_MARKS, REPOSITORY_ROOT, VIEWPORT, DashboardServer

pytestmark = E2E_MARKS

CATALOGUES = REPOSITORY_ROOT / "dashboard" / "i18n"
EN = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))
ZH = json.loads((CATALOGUES / "zh_CN.json").read_text(encoding="utf-8"))
FIGURES = 3 + 2 * len(FLAGGED_ROWS)
"""Training curves, label counts, confidence, and words plus attention per explained example."""
RENDER_TIMEOUT_MS = 30_000
PAGE_TIMEOUT_MS = 90_000
IDLE_S = 1.0
STREAMLIT_PLACEHOLDERS = ("Choose options", "Choose an option")
"""Streamlit's own English placeholders, shown unless a page passes a translated one."""


def _full_page_screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_report_offline_in_chromium(browser, tmp_path) -> None:
    """Open an exported report from file:// with the network blocked; figures must render."""
    write_tiny_model(tmp_path / "model")
    store = RunStore(tmp_path / "home")
    run_id = create_tiny_run(store, tmp_path / "model", name="demo <b>report</b> run")
    set_mark(store, run_id, "11", "confirmed", "The year is wrong.")
    report_path = write_report(store, run_id, tmp_path / "report.html")

    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    network_requests: list[str] = []

    def abort(route) -> None:
        network_requests.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(https?|wss?)://"), abort)
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(report_path.as_uri())

        plots = page.locator(".js-plotly-plot")
        expect(plots).to_have_count(FIGURES, timeout=RENDER_TIMEOUT_MS)
        for index in range(FIGURES):
            expect(plots.nth(index).locator("svg.main-svg").first).to_be_attached()
        heatmaps = page.locator(".js-plotly-plot .heatmaplayer image, .js-plotly-plot .hm")
        assert heatmaps.count() >= len(FLAGGED_ROWS)
        axis_titles = page.locator(".js-plotly-plot .g-xtitle").all_text_contents()
        assert "Optimisation step" in axis_titles

        expect(page.locator("#run-name")).to_have_text("demo <b>report</b> run")
        expect(page.locator("#suspects-table").get_by_text(SCRIPT_CLAIM)).to_be_visible()
        expect(page.locator("#example-row-11").get_by_text("The year is wrong.")).to_be_visible()
        chinese_claim = page.locator("#example-row-11 .halluscope-attribution").nth(1)
        expect(chinese_claim).to_have_text(CHINESE_CLAIM)

        assert dialogs == []
        assert errors == []
        assert network_requests == []
        _full_page_screenshot(page, "report")
    finally:
        context.close()


# Every page of the dashboard in Chinese.

TITLE_KEYS = {
    "data": "data.title",
    "train": "train.title",
    "predict": "predict.title",
    "quality": "quality.title",
    "inspect": "inspect.title",
    "answers": "answers.title",
    "inspect_answer": "inspect_answer.title",
    "runs": "runs_page.title",
    "training_data": "training_data.title",
    "compare": "compare.title",
}
NAV_PAGES = tuple(TITLE_KEYS)


def _english_patterns() -> dict[str, re.Pattern[str]]:
    """Return a full-match pattern for each English text whose Chinese text differs."""
    patterns = {}
    for key, english in EN.items():
        if english == ZH.get(key):
            continue
        parts = re.split(r"\{[^{}]*\}", english)
        if sum(character.isascii() and character.isalpha() for character in "".join(parts)) < 3:
            continue
        patterns[key] = re.compile(".+?".join(re.escape(part) for part in parts))
    return patterns


def _wait_until_idle(page: Page, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while time.monotonic() < deadline:
        if page.get_by_test_id("stStatusWidget").count() == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= IDLE_S:
                return
        else:
            idle_since = None
        time.sleep(0.2)
    pytest.fail(f"The app was still running a script after {timeout_s:.0f} s.")


def _visible_lines(page: Page) -> list[str]:
    """Return the visible lines of the main area and the sidebar, and their " · " pieces."""
    text = page.get_by_test_id("stMain").inner_text()
    text += "\n" + page.get_by_test_id("stSidebar").inner_text()
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            lines.append(line)
            lines.extend(piece.strip() for piece in line.split(" · ") if piece.strip())
    return lines


def test_every_page_in_chinese(browser, dashboard_server: DashboardServer) -> None:
    """Visit every page with a Chinese browser locale: no English catalogue string is shown."""
    model_dir = dashboard_server.home.parent / "tiny-model"
    write_tiny_model(model_dir)
    store = RunStore(dashboard_server.home)
    run_id = create_tiny_run(store, model_dir, name="tiny demo run")
    set_mark(store, run_id, "3", "false_alarm", "措辞不同，但事实正确")
    patterns = _english_patterns()

    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(dashboard_server.url)
        expect(page.locator("h1")).to_have_text(ZH["data.title"], timeout=PAGE_TIMEOUT_MS)
        english_found = {}
        for name in NAV_PAGES:
            link = page.get_by_test_id("stSidebarNavLink").filter(
                has=page.get_by_text(ZH[f"nav.{name}"], exact=True)
            )
            link.click()
            expect(page.locator("h1")).to_have_text(ZH[TITLE_KEYS[name]], timeout=PAGE_TIMEOUT_MS)
            _wait_until_idle(page)
            assert page.get_by_test_id("stException").count() == 0, name
            lines = _visible_lines(page)
            found = [
                (key, line)
                for line in lines
                for key, pattern in patterns.items()
                if pattern.fullmatch(line)
            ]
            found += [("streamlit", line) for line in lines if line in STREAMLIT_PLACEHOLDERS]
            if found:
                english_found[name] = found
            _full_page_screenshot(page, f"{name}_zh_CN")

        assert english_found == {}
        assert errors == []
    finally:
        context.close()
    assert "Traceback" not in dashboard_server.log_text()
