"""Translated interface strings: one JSON catalogue per language, looked up with ``t``.

Every user-facing string of the dashboard goes through ``t("key", **fmt)``. The
catalogues ``en.json`` and ``zh_CN.json`` hold the same keys. Error messages
raised by ``halluscope`` itself are shown as they come (in English).
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

import streamlit as st

from dashboard import state

logger = logging.getLogger(__name__)

CATALOGUE_DIR = Path(__file__).resolve().parent
LANGUAGES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}
"""Supported language codes and their names, as shown in the language switch."""
DEFAULT_LANGUAGE = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    """Return the catalogue of ``language`` (a code from ``LANGUAGES``), read once."""
    if language not in LANGUAGES:
        raise ValueError(f"Unknown language {language!r}; expected one of {', '.join(LANGUAGES)}.")
    path = CATALOGUE_DIR / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def language_from_locale(locale: str | None) -> str:
    """Return the supported language for a browser locale such as ``"zh-CN"`` (default English)."""
    if locale and locale.lower().replace("_", "-").startswith("zh"):
        return "zh_CN"
    return DEFAULT_LANGUAGE


def current_language() -> str:
    """Return the language chosen in the sidebar, or English before the switch exists."""
    language = st.session_state.get(state.LANGUAGE, DEFAULT_LANGUAGE)
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, **fmt: object) -> str:
    """Return the text of ``key`` in the current language, formatted with ``fmt``.

    A key missing from the current catalogue falls back to English. A key missing
    from both is logged and returned as it is, so a page still renders.
    """
    text = catalogue(current_language()).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANGUAGE).get(key)
    if text is None:
        logger.warning("Missing translation key %r.", key)
        return key
    return text.format(**fmt) if fmt else text
