"""Render word attributions as HTML: the original text coloured word by word.

Model inputs and outputs are untrusted text (a row can contain ``<script>``),
so every piece of text, gap and tooltip goes through ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from halluscope.explain.words import Word

#: Background colour (RGB) of words that push the explained logit up.
POSITIVE_RGB = (220, 38, 38)
#: Background colour (RGB) of words that push the explained logit down.
NEGATIVE_RGB = (37, 99, 235)

# The strongest word gets this opacity, so its text stays readable.
_MAX_ALPHA = 0.75

_CONTAINER_STYLE = "white-space: pre-wrap; line-height: 1.9; font-size: 1rem;"
_WORD_STYLE = "border-radius: 3px; padding: 0 1px;"
_UNSEEN_STYLE = "color: #9ca3af; text-decoration: underline dotted;"


def _word_span(word: Word, scale: float) -> str:
    """Return the escaped, coloured span of one word."""
    text = html.escape(word.text, quote=True)
    if word.num_tokens == 0:
        title = html.escape("not in the model input (truncated)", quote=True)
        return f'<span style="{_UNSEEN_STYLE}" title="{title}">{text}</span>'

    intensity = min(abs(word.score) / scale, 1.0) if scale > 0 else 0.0
    red, green, blue = POSITIVE_RGB if word.score >= 0 else NEGATIVE_RGB
    colour = f"rgba({red}, {green}, {blue}, {intensity * _MAX_ALPHA:.3f})"
    title = html.escape(f"{word.text}: {word.score:+.4f}", quote=True)
    return f'<span style="background-color: {colour}; {_WORD_STYLE}" title="{title}">{text}</span>'


def render_word_colouring(words: Sequence[Word], text: str, *, scale: float | None = None) -> str:
    """Render ``text`` as HTML with each word's background coloured by its score.

    Positive scores are red and negative ones blue; the opacity grows with
    ``|score| / scale``. Each word has a tooltip (``title``) with its score.
    Whitespace and line breaks of the text are kept.

    Args:
        words: the words of ``text`` (one segment of a ``WordAttributions``).
        text: the original text the words refer to.
        scale: the absolute score of full colour (default: the largest
            ``|score|`` among ``words``). Pass ``WordAttributions.max_abs_score()``
            to colour context and claim on one scale.

    Returns:
        A ``<div>`` element as a string, safe to embed: all text is escaped.

    Raises:
        ValueError: a word does not match ``text`` at its offsets, or words overlap.
    """
    ordered = sorted(words, key=lambda word: word.start)
    for word in ordered:
        if word.end > len(text) or text[word.start : word.end] != word.text:
            raise ValueError(
                f"Word {word.text!r} at [{word.start}, {word.end}) does not match the text "
                f"there ({text[word.start : word.end]!r}); pass the text the words came from."
            )
    if scale is None:
        scale = max((abs(word.score) for word in ordered), default=0.0)
    if scale < 0:
        raise ValueError(f"scale must not be negative, got {scale}.")

    parts = [f'<div class="halluscope-attribution" style="{_CONTAINER_STYLE}">']
    position = 0
    for word in ordered:
        if word.start < position:
            raise ValueError(
                f"Word {word.text!r} at [{word.start}, {word.end}) overlaps the previous word."
            )
        parts.append(html.escape(text[position : word.start], quote=True))
        parts.append(_word_span(word, scale))
        position = word.end
    parts.append(html.escape(text[position:], quote=True))
    parts.append("</div>")
    return "".join(parts)
