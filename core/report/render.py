"""Render a ``RunReport`` as one self-contained HTML file.

The file opens offline in any browser: the plotly.js bundle is inlined once,
each figure is embedded as JSON, and a Content-Security-Policy forbids every
network request. Text from data, from the model and from the user (run names,
notes) is escaped by Jinja2's autoescaping. The only HTML passed through
unescaped is the word colouring of ``halluscope.explain.render_word_colouring``,
which escapes its text itself, and the figure embeds built here.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.offline
from markupsafe import Markup

from halluscope import __version__
from halluscope.report.content import RunReport

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "report.html.j2"

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False}
"""plotly.js settings of every figure: no plotly logo, no link to an online editor."""

# Characters that could end a <script> element or start an HTML comment inside
# the figure JSON, replaced by their JSON escapes (the parsed value is the same).
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def figure_json(figure: go.Figure) -> str:
    """Return the figure as JSON that is safe inside a ``<script>`` element."""
    text = figure.to_json()
    for character, escape in _JSON_ESCAPES.items():
        text = text.replace(character, escape)
    return text


class _FigureEmbedder:
    """Turns figures into ``<div>`` plus JSON ``<script>`` pairs with unique element ids."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, figure: go.Figure | None, name: str) -> Markup:
        if figure is None:
            return Markup("")
        self.count += 1
        element_id = f"figure-{self.count}-{name}"
        return Markup(
            f'<div class="figure" id="{element_id}" data-figure="{element_id}-data"></div>'
            f'<script type="application/json" id="{element_id}-data">{figure_json(figure)}'
            "</script>"
        )


def _format_value(value: Any, digits: int = 4) -> str:
    """Format a setting or metric for a table cell: floats rounded, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    if isinstance(value, list | tuple):
        return ", ".join(_format_value(item, digits) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _provenance_rows(provenance: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Flatten ``provenance.json`` into (field, value) rows."""
    if not provenance:
        return []
    rows = [("Recorded at", _format_value(provenance.get("recorded_at")))]
    data = provenance.get("data") or {}
    rows.append(("Data file", _format_value(data.get("path"))))
    rows.append(("Data SHA-256", _format_value(data.get("sha256"))))
    if data.get("error"):
        rows.append(("Data error", str(data["error"])))
    model = provenance.get("base_model") or {}
    rows.append(("Base model", _format_value(model.get("reference"))))
    for name, digest in (model.get("weights_sha256") or {}).items():
        rows.append((f"Weights SHA-256: {name}", digest))
    if model.get("error"):
        rows.append(("Base model note", str(model["error"])))
    for package, version in (provenance.get("versions") or {}).items():
        rows.append((f"Version of {package}", _format_value(version)))
    return rows


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["value"] = _format_value
    return environment


def render_report(report: RunReport, *, generated_at: datetime | None = None) -> str:
    """Return the report as a complete HTML document (a str of several MB: plotly.js is inlined)."""
    embed = _FigureEmbedder()
    figures = {name: embed(figure, name) for name, figure in report.figures.items()}
    examples = [
        {
            "example": example,
            "text_html": Markup(example.text_html) if example.text_html else None,
            "pair_html": Markup(example.pair_html) if example.pair_html else None,
            "attribution": embed(example.attribution_figure, f"words-{index}"),
            "attention": embed(example.attention_figure, f"attention-{index}"),
        }
        for index, example in enumerate(report.examples, start=1)
    ]
    answers = [
        {**answer, "answer_html": Markup(answer["answer_html"])} for answer in report.answers
    ]
    verdict_counts = {"confirmed": 0, "false_alarm": 0}
    for mark in report.reviews:
        verdict_counts[mark.verdict] = verdict_counts.get(mark.verdict, 0) + 1

    template = _environment().get_template(TEMPLATE_NAME)
    html_text = template.render(
        report=report,
        record=report.record,
        settings=sorted(report.config.items()),
        provenance_rows=_provenance_rows(report.provenance),
        figures=figures,
        examples=examples,
        answers=answers,
        verdict_counts=verdict_counts,
        plotly_js=Markup(plotly.offline.get_plotlyjs()),
        plotly_config=Markup(json.dumps(PLOTLY_CONFIG)),
        version=__version__,
        generated_at=(generated_at or datetime.now(UTC)).isoformat(timespec="seconds"),
    )
    logger.info(
        "Rendered the report of run %s: %d figures, %d characters.",
        report.record.run_id,
        embed.count,
        len(html_text),
    )
    return html_text
