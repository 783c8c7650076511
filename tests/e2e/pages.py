"""Helpers that drive the dashboard in the browser tests: widgets, pages, waits, screenshots.

Widgets are found by the ``st-key-<key>`` class that Streamlit gives the
container of every widget created with ``key=``. Expected texts come from the
dashboard's translation catalogues, so a changed wording does not break a test.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from .support import ARTIFACTS, REPOSITORY_ROOT, VIEWPORT

CATALOGUES = REPOSITORY_ROOT / "dashboard" / "i18n"
EN = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))
ZH = json.loads((CATALOGUES / "zh_CN.json").read_text(encoding="utf-8"))

PAGE_TIMEOUT_S = 60.0
IDLE_S = 1.0
"""Seconds without a running script after which the app counts as idle."""


def ms(seconds: float) -> float:
    return seconds * 1000.0


def widget(page: Page, key: str) -> Locator:
    """Return the container of the widget created with ``key=``."""
    return page.locator(f".st-key-{key}")


def template_pattern(template: str, **captures: str) -> re.Pattern[str]:
    """Turn a catalogue template into a regex: ``captures`` fields as groups, others as ``.*?``.

    The groups are unnamed (numbered in template order), because Playwright
    runs a text regex in JavaScript, which has no ``(?P<name>...)`` syntax.
    """
    parts = re.split(r"(\{[^{}]*\})", template)
    pattern = ""
    for part in parts:
        field = re.fullmatch(r"\{(\w+)(?::[^{}]*)?\}", part)
        if field is None:
            pattern += re.escape(part)
        elif field.group(1) in captures:
            pattern += f"({captures[field.group(1)]})"
        else:
            pattern += ".*?"
    return re.compile(pattern)


def wait_until_idle(page: Page, timeout_s: float) -> None:
    """Wait until no script run has been in progress (status widget hidden) for ``IDLE_S``."""
    deadline = time.monotonic() + timeout_s
    idle_since: float | None = None
    while time.monotonic() < deadline:
        if page.get_by_test_id("stStatusWidget").count() == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= IDLE_S:
                return
        else:
            idle_since = None
        time.sleep(0.2)
    pytest.fail(f"The app was still running a script after {timeout_s:.0f} s.")


def open_page(page: Page, nav_label: str, title: str) -> None:
    """Click the sidebar link ``nav_label`` and wait for the page title ``title``."""
    link = page.get_by_test_id("stSidebarNavLink").filter(
        has=page.get_by_text(nav_label, exact=True)
    )
    link.click()
    expect(page.locator("h1")).to_have_text(title, timeout=ms(PAGE_TIMEOUT_S))


def choose_option(page: Page, key: str, option_text: str) -> None:
    """Pick the option whose label contains ``option_text`` in the selectbox ``key``."""
    box = widget(page, key).locator("input")
    if option_text in box.input_value():
        return
    box.click()
    page.get_by_role("option").filter(has_text=option_text).first.click()
    expect(box).to_have_value(re.compile(re.escape(option_text)))


def assert_no_app_errors(page: Page) -> None:
    """Assert that the page shows no Python exception and had no JavaScript error."""
    exceptions = page.get_by_test_id("stException")
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert page.js_errors == [], page.js_errors


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot of the app to ``test-artifacts/e2e/<name>.png``.

    Streamlit scrolls inside its main element, not the document, so the viewport
    is made as tall as the main element's content for the shot and restored after.
    The focused widget is blurred first, so no focus ring shows in the picture.
    """
    path = ARTIFACTS / f"{name}.png"
    page.evaluate("() => document.activeElement?.blur()")
    main = page.get_by_test_id("stMain")
    for _ in range(3):
        height = main.evaluate("element => element.scrollHeight")
        page.set_viewport_size({"width": VIEWPORT["width"], "height": max(height, 600)})
        page.wait_for_timeout(300)
        if main.evaluate("element => element.scrollHeight <= element.clientHeight"):
            break
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    return path
