"""Tests of the HTML word colouring."""

from __future__ import annotations

import html
import re

import pytest

from halluscope.explain import Word, render_word_colouring, split_words


def _words(text: str, scores: list[float] | None = None) -> list[Word]:
    spans = split_words(text)
    if scores is None:
        scores = [1.0] * len(spans)
    return [
        Word(text=text[start:end], start=start, end=end, score=score, segment=0)
        for (start, end), score in zip(spans, scores, strict=True)
    ]


def _visible_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_render_escapes_script():
    text = 'see <script>alert("x")</script> & more'
    words = _words(text)

    markup = render_word_colouring(words, text)

    assert "<script>" not in markup
    assert "&lt;" in markup
    assert "&amp;" in markup
    assert _visible_text(markup) == text


def test_render_keeps_whitespace_and_text():
    text = "first  line\n\tsecond line"
    words = _words(text, [0.1, 0.2, -0.3, 0.4])

    markup = render_word_colouring(words, text)

    assert _visible_text(markup) == text
    assert "pre-wrap" in markup


def test_render_colours_by_sign_and_size():
    text = "good bad meh"
    words = _words(text, [2.0, -1.0, 0.0])

    markup = render_word_colouring(words, text)

    assert "rgba(220, 38, 38, 0.750)" in markup
    assert "rgba(37, 99, 235, 0.375)" in markup
    assert 'title="good: +2.0000"' in markup


def test_render_shared_scale():
    text = "good"
    words = _words(text, [1.0])

    markup = render_word_colouring(words, text, scale=4.0)

    assert "rgba(220, 38, 38, 0.188)" in markup


def test_render_tooltip_escaped():
    text = '"><img src=x>'
    words = _words(text)

    markup = render_word_colouring(words, text)

    assert "<img" not in markup
    assert 'title="&quot;' in markup


def test_render_marks_unseen_words():
    text = "seen unseen"
    words = [
        Word(text="seen", start=0, end=4, score=1.0, segment=0),
        Word(text="unseen", start=5, end=11, score=0.0, segment=0, num_tokens=0),
    ]

    markup = render_word_colouring(words, text)

    assert "not in the model input (truncated)" in markup


def test_render_rejects_mismatched_word():
    words = [Word(text="cat", start=0, end=3, score=1.0, segment=0)]

    with pytest.raises(ValueError, match="does not match the text"):
        render_word_colouring(words, "dog")
