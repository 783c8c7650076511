"""The app shell: loads in both languages, switches language, never shows a raw key."""

from __future__ import annotations

import ast

import pytest
from conftest import KEY_PATTERN, REPOSITORY_ROOT, open_page, shown_texts

from dashboard.i18n import catalogue

PAGES = ("data", "train", "predict", "inspect")


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_app_loads(make_app, language):
    app = make_app(language).run()

    assert not app.exception
    assert app.title[0].value == catalogue(language)["data.title"]
    assert app.sidebar.selectbox(key="language").value == language


@pytest.mark.parametrize("language", ["en", "zh_CN"])
@pytest.mark.parametrize("page", PAGES)
def test_page_shows_no_raw_key(make_app, tiny_run, language, page):
    app = open_page(make_app(language), page)
    keys = set(catalogue("en"))

    texts = shown_texts(app)

    assert not app.exception
    assert texts
    assert [text for text in texts if text in keys or KEY_PATTERN.match(text)] == []


def test_language_switch_translates_page(make_app):
    app = make_app().run()
    assert app.title[0].value == "Data"

    app.sidebar.selectbox(key="language").set_value("zh_CN").run()

    assert app.title[0].value == "数据"
    assert app.radio(key="data_source").options == ["内置示例", "上传文件"]


def test_widget_values_survive_page_switch(make_app):
    app = open_page(make_app(), "train")
    app.number_input(key="train_epochs").set_value(2.5).run()

    app.switch_page("views/data.py").run()
    app.switch_page("views/train.py").run()

    assert app.number_input(key="train_epochs").value == 2.5


@pytest.mark.parametrize("page", PAGES)
def test_page_script_has_no_bare_strings(page):
    # Streamlit "magic" renders a bare string statement of a page script as
    # markdown, so only the module docstring may be one.
    path = REPOSITORY_ROOT / "dashboard" / "views" / f"{page}.py"
    body = ast.parse(path.read_text(encoding="utf-8")).body

    bare = [
        node.lineno
        for node in body[1:]
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    ]

    assert bare == []
