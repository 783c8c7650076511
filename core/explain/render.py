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


#: Background colour (RGB) of answer tokens with a high suspicion score.
SUSPICION_RGB = (234, 88, 12)

_SELECTED_STYLE = "outline: 2px solid #111827; outline-offset: 1px;"


def render_token_scores(
    text: str,
    offsets: Sequence[tuple[int, int]],
    scores: Sequence[float],
    tooltips: Sequence[str],
    *,
    selected: int | None = None,
) -> str:
    """Render ``text`` as HTML with each token's background coloured by a score in [0, 1].

    Tokens that share a character span (the byte tokens of one emoji) are
    drawn once, with the largest of their scores and the tooltip of the last.
    Text between tokens is kept, escaped.

    Args:
        text: the generated answer.
        offsets: the ``[start, end)`` character span of each token in ``text``.
        scores: one suspicion score per token; 1 is full colour.
        tooltips: one hover text per token (shown as the ``title``).
        selected: index of a token to outline, or None.

    Returns:
        A ``<div>`` element as a string, safe to embed: all text is escaped.

    Raises:
        ValueError: the lengths differ, or a span lies outside the text.
    """
    if not len(offsets) == len(scores) == len(tooltips):
        raise ValueError(
            f"offsets, scores and tooltips must have one entry per token, got {len(offsets)}, "
            f"{len(scores)} and {len(tooltips)}."
        )

    spans: dict[tuple[int, int], tuple[float, str, bool]] = {}
    for index, ((start, end), score, tooltip) in enumerate(
        zip(offsets, scores, tooltips, strict=True)
    ):
        start, end = int(start), int(end)
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"Token {index} spans [{start}, {end}), outside the text.")
        if end == start:
            continue
        previous = spans.get((start, end))
        best = max(float(score), previous[0]) if previous else float(score)
        spans[(start, end)] = (best, tooltip, index == selected or bool(previous and previous[2]))

    red, green, blue = SUSPICION_RGB
    parts = [f'<div class="halluscope-tokens" style="{_CONTAINER_STYLE}">']
    position = 0
    for (start, end), (score, tooltip, is_selected) in sorted(spans.items()):
        if start < position:
            continue  # NOTE: overlapping spans of one rewritten decode are drawn once.
        parts.append(html.escape(text[position:start], quote=True))
        alpha = min(max(score, 0.0), 1.0) * _MAX_ALPHA
        style = f"background-color: rgba({red}, {green}, {blue}, {alpha:.3f}); {_WORD_STYLE}"
        if is_selected:
            style += f" {_SELECTED_STYLE}"
        parts.append(
            f'<span style="{style}" title="{html.escape(tooltip, quote=True)}">'
            f"{html.escape(text[start:end], quote=True)}</span>"
        )
        position = end
    parts.append(html.escape(text[position:], quote=True))
    parts.append("</div>")
    return "".join(parts)
