"""Text with HTML, scripts, Markdown links and control characters is shown as text."""

from __future__ import annotations

import html
import re

import pytest
from conftest import make_completed_run, open_page

HOSTILE_TEXTS = (
    "<script>alert('x')</script> The works opened in 1912.",
    "[click me](https://evil.example/steal) **bold** and <img src=x onerror=alert(1)>",
    "Bell\x07 and escape \x1b[31mred\x1b[0m with a right-to-left \u202e override.",
    "<b>Bold</b> & <a href='javascript:alert(1)'>link</a> $x^2$ # heading",
)
RAW_MARKERS = ("<script>", "<img", "<a href", "[click me](https://")
_OWN_TAGS = re.compile(
    r'<div class="halluscope-attribution" style="[^"<>]*">|</div>'
    r'|<span style="[^"<>]*" title="[^"<>]*">|</span>'
)


@pytest.fixture
def hostile_run(store, tiny_model_dir) -> str:
    return make_completed_run(store, tiny_model_dir, name="<b>run</b> [x](http://e)",
                              texts=HOSTILE_TEXTS)  # fmt: skip


def _rendered_markdown(app) -> list[str]:
    """Return the values of elements that Streamlit renders as Markdown."""
    values = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success",
                 "warning", "error"):  # fmt: skip
        values.extend(str(element.value) for element in getattr(app, kind))
    return values


def test_predict_table_shows_raw_text(make_app, hostile_run):
    app = open_page(make_app(), "predict")

    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["text"]) == list(HOSTILE_TEXTS)
    for value in _rendered_markdown(app):
        for marker in RAW_MARKERS:
            assert marker not in value


def _strip_own_markup(body: str) -> str:
    """Remove the container and word spans that ``render_word_colouring`` adds."""
    return _OWN_TAGS.sub("", body)


def test_inspect_escapes_every_example(make_app, hostile_run):
    app = open_page(make_app(), "inspect")
    positions = app.selectbox(key="inspect_example").options

    assert len(positions) == len(HOSTILE_TEXTS)
    recovered = set()
    for index in range(len(HOSTILE_TEXTS)):
        app.selectbox(key="inspect_example").select_index(index).run()

        assert not app.exception
        [body] = [str(element.proto.body) for element in app.get("html")]
        text_only = _strip_own_markup(body)
        # Every "<" and ">" left after removing our own tags came from the data
        # and must be escaped, so the browser shows it as text.
        assert "<" not in text_only
        assert ">" not in text_only
        recovered.add(html.unescape(text_only))
        for value in _rendered_markdown(app):
            for marker in RAW_MARKERS:
                assert marker not in value

    # Unescaped, the page shows each text exactly, control characters included.
    assert recovered == set(HOSTILE_TEXTS)
