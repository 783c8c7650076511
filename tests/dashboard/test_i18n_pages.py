"""With the language set to Chinese, no page shows a string of the English catalogue.

A page that calls ``t`` with a key missing from ``zh_CN.json`` falls back to
English. This test renders every page and compares what it shows with the
English catalogue. Data, run names and model names are not catalogue strings,
so they do not count.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPOSITORY_ROOT, open_page, shown_texts

from halluscope.runs import set_mark

CATALOGUES = REPOSITORY_ROOT / "dashboard" / "i18n"
EN = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))
ZH = json.loads((CATALOGUES / "zh_CN.json").read_text(encoding="utf-8"))
PAGES = ("data", "train", "predict", "inspect", "runs")
MIN_LETTERS = 3
"""A template needs this many ASCII letters outside its placeholders to be checked."""


def _english_patterns() -> dict[str, re.Pattern[str]]:
    """Return a full-match pattern for each English text whose Chinese text differs."""
    patterns = {}
    for key, english in EN.items():
        if english == ZH.get(key):
            continue
        parts = re.split(r"\{[^{}]*\}", english)
        if sum(character.isascii() and character.isalpha() for character in "".join(parts)) < (
            MIN_LETTERS
        ):
            continue
        patterns[key] = re.compile(".+?".join(re.escape(part) for part in parts), re.DOTALL)
    return patterns


PATTERNS = _english_patterns()


def _candidate_texts(app) -> list[str]:
    """Return every shown text and its pieces: whole lines, Markdown stripped, split at " · "."""
    texts = shown_texts(app)
    texts += [str(tab.label) for tab in app.tabs]
    texts += [str(expander.label) for expander in app.expander]
    texts += [button.proto.label for button in app.get("download_button")]
    for kind in ("selectbox", "radio", "multiselect"):
        for widget in getattr(app, kind):
            texts.extend(str(option) for option in widget.options)
    pieces = []
    for text in texts:
        for line in str(text).splitlines():
            line = line.replace("**", "").replace("\\", "").strip()
            pieces.append(line)
            pieces.extend(piece.strip() for piece in line.split(" · "))
    return [piece for piece in pieces if piece]


def _english_strings(app) -> list[tuple[str, str]]:
    found = []
    for text in _candidate_texts(app):
        for key, pattern in PATTERNS.items():
            if pattern.fullmatch(text):
                found.append((key, text))
    return found


def test_patterns_catch_english_fallback():
    assert PATTERNS["runs_page.title"].fullmatch("Runs")
    assert PATTERNS["runs_page.shown"].fullmatch("Showing 1 of 3 runs.")
    assert not PATTERNS["runs_page.shown"].fullmatch(ZH["runs_page.shown"])


@pytest.mark.parametrize("page", PAGES)
def test_page_in_chinese_has_no_english_strings(make_app, store, tiny_run, page):
    set_mark(store, tiny_run, "3", "confirmed", "年份错误")

    app = open_page(make_app("zh_CN"), page)

    assert not app.exception
    assert len(_candidate_texts(app)) > 5
    assert _english_strings(app) == []


def test_page_in_english_is_detected(make_app, tiny_run):
    app = open_page(make_app("en"), "runs")

    keys = {key for key, _text in _english_strings(app)}

    assert "runs_page.title" in keys
    assert "runs_page.rename" in keys
