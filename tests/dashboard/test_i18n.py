"""Translation catalogues: same keys, same placeholders, every used key present."""

from __future__ import annotations

import ast
import json
import string
from pathlib import Path

import pytest
from conftest import REPOSITORY_ROOT

from dashboard.i18n import LANGUAGES, language_from_locale

CATALOGUE_DIR = REPOSITORY_ROOT / "dashboard" / "i18n"
DYNAMIC_KEY_FAMILIES = {
    "status.": ("queued", "running", "completed", "failed", "cancelled"),
    "data.source_": ("demo", "upload"),
    "data.label_map_": ("none", "faithdial", "custom"),
    "predict.source_": ("validation", "upload"),
    "review.verdict_": ("confirmed", "false_alarm"),
    "data.task_": ("classification", "generation"),
    "quality.score_": ("low_margin", "low_confidence"),
    "data.demo_caption_": ("classification", "generation"),
    "generation_train.method_": ("lora", "full"),
    "answers.source_": ("validation", "question"),
    "inspect_answer.method_": ("input_x_gradient", "integrated_gradients"),
    "inspect_answer.compute_hint_": ("input_x_gradient", "integrated_gradients"),
    "runs_page.col_": (
        "name",
        "run_id",
        "status",
        "kind",
        "model",
        "data",
        "settings",
        "accuracy",
        "f1_macro",
        "auroc",
        "created",
    ),
}
"""Keys built with f-strings in the pages: prefix and the values filled in."""


def _catalogue(language: str) -> dict[str, str]:
    return json.loads((CATALOGUE_DIR / f"{language}.json").read_text(encoding="utf-8"))


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def _literal_keys() -> set[str]:
    keys = set()
    for path in (REPOSITORY_ROOT / "dashboard").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                keys.add(node.args[0].value)
    return keys


def test_catalogues_have_same_keys():
    english, chinese = _catalogue("en"), _catalogue("zh_CN")

    assert sorted(set(english) - set(chinese)) == []
    assert sorted(set(chinese) - set(english)) == []


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_catalogue_texts_not_empty(language):
    empty = [key for key, text in _catalogue(language).items() if not text.strip()]

    assert empty == []


def test_catalogue_placeholders_match():
    english, chinese = _catalogue("en"), _catalogue("zh_CN")

    mismatched = [
        key for key in english if _placeholders(english[key]) != _placeholders(chinese[key])
    ]

    assert mismatched == []


def test_chinese_catalogue_is_translated():
    english, chinese = _catalogue("en"), _catalogue("zh_CN")
    same = [
        key
        for key in english
        if english[key] == chinese[key] and any(c.isalpha() for c in english[key])
    ]

    assert same == []


def test_used_keys_exist():
    english = _catalogue("en")
    used = _literal_keys()

    assert len(used) > 100
    assert sorted(used - set(english)) == []


def test_dynamic_keys_exist():
    english = _catalogue("en")
    expected = {
        prefix + value for prefix, values in DYNAMIC_KEY_FAMILIES.items() for value in values
    }

    assert sorted(expected - set(english)) == []


@pytest.mark.parametrize(
    ("locale", "language"),
    [("zh-CN", "zh_CN"), ("zh_TW", "zh_CN"), ("en-US", "en"), ("de", "en"), (None, "en")],
)
def test_language_from_locale(locale, language):
    assert language_from_locale(locale) == language


def test_catalogue_files_match_languages():
    files = sorted(path.stem for path in Path(CATALOGUE_DIR).glob("*.json"))

    assert files == sorted(LANGUAGES)
