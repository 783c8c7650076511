"""Self-contained HTML reports of runs, for readers without halluscope.

``build_report`` computes a report and returns it as one HTML document that
opens offline in any browser; ``write_report`` also saves it.

    from halluscope.report import write_report
    write_report(store, run_id, "report.html")
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from halluscope.report.content import (
    DetectionSummary,
    ExplainedExample,
    ReportOptions,
    ReportProgress,
    RunReport,
    collect_report,
    detection_summary,
)
from halluscope.report.render import render_report
from halluscope.runs import RunStore

logger = logging.getLogger(__name__)


def build_report(store: RunStore, run_id: str, **options: Any) -> str:
    """Compute the report of ``run_id`` and return it as an HTML document.

    Keyword arguments are those of ``collect_report``: ``options``,
    ``predictions``, ``model``, ``tokenizer`` and ``progress``.
    """
    return render_report(collect_report(store, run_id, **options))


def write_report(store: RunStore, run_id: str, path: str | os.PathLike, **options: Any) -> Path:
    """Build the report of ``run_id`` and write it to ``path`` (UTF-8); return the path.

    The file is written through a temporary file and a rename, so a reader
    never sees half a report.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"The report path {path} is a folder; give a file name such as report.html."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"The folder {path.parent} does not exist; create it or choose another output path."
        )
    html_text = build_report(store, run_id, **options)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_text(html_text, encoding="utf-8")
    os.replace(temporary, path)
    logger.info("Wrote the report of run %s to %s.", run_id, path)
    return path


__all__ = [
    "DetectionSummary",
    "ExplainedExample",
    "ReportOptions",
    "ReportProgress",
    "RunReport",
    "build_report",
    "collect_report",
    "detection_summary",
    "render_report",
    "write_report",
]
