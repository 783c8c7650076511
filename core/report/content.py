"""Collect what a run report shows: run facts, data, curves, detection and examples.

``collect_report`` does every computation of a report and returns a
``RunReport``, which ``halluscope.report.render`` turns into HTML. The costly
steps are bounded: one prediction pass over the validation split, and
attention plus attributions for at most ``ReportOptions.explained_examples``
examples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.metrics import roc_auc_score

from halluscope.answers import read_answers
from halluscope.explain.render import render_token_scores
from halluscope.report.figures import (
    confidence_figure,
    label_counts_figure,
    training_curves_figure,
)
from halluscope.runs import ReviewMark, RunRecord, RunStore, list_marks
from halluscope.runs.provenance import read_provenance
from halluscope.training.history import loss_history

logger = logging.getLogger(__name__)

ReportProgress = Callable[[int, int], None]
"""Called with (steps done, steps in all) while a report is built."""

MAX_CELL_CHARS = 400
"""Texts in the table of suspected hallucinations are cut to this many characters."""


@dataclass(frozen=True)
class ReportOptions:
    """How much a report computes and shows.

    Attributes:
        max_suspects: rows in the table of suspected hallucinations (highest flag score first).
        explained_examples: examples that get an attention map and attributions;
            each costs one forward pass plus the attribution method's passes
            (51 for integrated gradients).
        example_rows: row numbers of the examples to explain; None picks the
            first ``explained_examples`` suspects. Row numbers that are not in
            the validation split are skipped with a warning.
        method: the attribution method (a name from ``available_attribution_methods``).
    """

    max_suspects: int = 10
    explained_examples: int = 3
    example_rows: tuple[int, ...] | None = None
    method: str = "integrated_gradients"

    def __post_init__(self) -> None:
        if self.max_suspects < 0:
            raise ValueError(f"max_suspects must not be negative, got {self.max_suspects}.")
        if self.explained_examples < 0:
            raise ValueError(
                f"explained_examples must not be negative, got {self.explained_examples}."
            )
        from halluscope.explain import available_attribution_methods

        methods = [method.name for method in available_attribution_methods()]
        if self.method not in methods:
            raise ValueError(
                f"Unknown attribution method {self.method!r}; use one of {', '.join(methods)}."
            )


@dataclass(frozen=True)
class ExplainedExample:
    """One validation example with its prediction, attributions and attention map.

    Attributes:
        row: the example's row of the prediction table.
        text_html: the text coloured by word attribution (escaped HTML), or None.
        pair_html: the text pair coloured the same way, or None without a pair.
        attribution_figure: the strongest words as a bar chart.
        attention_figure: the mean attention over the heads of the last layer.
        method: the attribution method used.
        convergence_delta: integrated gradients' completeness gap, or None.
        warnings: messages about truncation or a large convergence delta.
        review: the reviewer's mark of the example, if any.
    """

    row: dict[str, Any]
    text_html: str | None
    pair_html: str | None
    attribution_figure: go.Figure | None
    attention_figure: go.Figure | None
    method: str
    convergence_delta: float | None
    warnings: tuple[str, ...]
    review: ReviewMark | None


@dataclass(frozen=True)
class DetectionSummary:
    """Quality of the confidence detector at separating right from wrong predictions.

    Attributes:
        examples: predicted examples.
        flagged: examples the detector flagged.
        wrong: wrong predictions (None without gold labels).
        model_metrics: accuracy, macro F1 and AUROC of the classifier itself.
        error_auroc: AUROC of the label-free score ``1 - margin`` for telling
            wrong predictions from right ones (None without gold labels or
            when all predictions are right, or all wrong).
        flag_precision: share of flagged examples that are wrong predictions.
        flag_recall: share of wrong predictions that are flagged.
    """

    examples: int
    flagged: int
    wrong: int | None
    model_metrics: dict[str, float]
    error_auroc: float | None
    flag_precision: float | None
    flag_recall: float | None


@dataclass
class RunReport:
    """Everything a report shows, computed; rendered by ``render_report``."""

    record: RunRecord
    config: dict[str, Any]
    provenance: dict[str, Any] | None
    data_event: dict[str, Any] | None
    metrics: dict[str, Any]
    figures: dict[str, go.Figure] = field(default_factory=dict)
    detection: DetectionSummary | None = None
    suspects: list[dict[str, Any]] = field(default_factory=list)
    examples: list[ExplainedExample] = field(default_factory=list)
    reviews: list[ReviewMark] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    label_names: tuple[str, ...] = ()
    has_text_pair: bool = False
    answers: list[dict[str, Any]] = field(default_factory=list)
    answer_summary: dict[str, Any] = field(default_factory=dict)


ANSWER_DETECTOR = "low_logprob"
"""Detector whose scores rank and colour a generation run's answers in the report."""


def _cut(text: Any, limit: int = MAX_CELL_CHARS) -> str:
    text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detection_summary(table: pd.DataFrame, summary: dict[str, Any]) -> DetectionSummary:
    """Summarise the flags of a prediction table from ``predict_run``."""
    flagged = table["flagged"].astype(bool)
    model_metrics = {
        key: float(summary[key]) for key in ("accuracy", "f1_macro", "auroc") if key in summary
    }
    if "correct" not in table.columns:
        return DetectionSummary(
            len(table), int(flagged.sum()), None, model_metrics, None, None, None
        )

    wrong = ~table["correct"].astype(bool)
    error_auroc = None
    if 0 < int(wrong.sum()) < len(table):
        error_auroc = float(roc_auc_score(wrong, 1.0 - table["margin"].astype(float)))
    precision = float((wrong & flagged).sum() / flagged.sum()) if flagged.any() else None
    recall = float((wrong & flagged).sum() / wrong.sum()) if wrong.any() else None
    return DetectionSummary(
        examples=len(table),
        flagged=int(flagged.sum()),
        wrong=int(wrong.sum()),
        model_metrics=model_metrics,
        error_auroc=error_auroc,
        flag_precision=precision,
        flag_recall=recall,
    )


def _row_dict(row: pd.Series, label_names: Sequence[str], review: ReviewMark | None) -> dict:
    return {
        "row_number": int(row["row_number"]),
        "text": str(row["text"]),
        "text_pair": str(row["text_pair"]) if "text_pair" in row.index else None,
        "text_cut": _cut(row["text"]),
        "pair_cut": _cut(row["text_pair"]) if "text_pair" in row.index else None,
        "gold": str(row["gold"]) if "gold" in row.index else None,
        "predicted": str(row["predicted"]),
        "confidence": float(row["confidence"]),
        "margin": float(row["margin"]),
        "probabilities": {name: float(row[f"p({name})"]) for name in label_names},
        "flagged": bool(row["flagged"]),
        "flag_score": float(row["flag_score"]),
        "flag_reason": str(row["flag_reason"]),
        "review": review,
    }


def _chosen_rows(table: pd.DataFrame, suspects: pd.DataFrame, options: ReportOptions) -> list:
    if options.example_rows is None:
        return list(suspects.index[: options.explained_examples])
    by_row = {int(row_number): index for index, row_number in table["row_number"].items()}
    chosen = []
    for row_number in options.example_rows[: options.explained_examples]:
        if row_number in by_row:
            chosen.append(by_row[row_number])
        else:
            logger.warning(
                "Row %d is not in the validation split; it is not explained.", row_number
            )
    return chosen


def explain_example(
    model: Any,
    tokenizer: Any,
    row: dict[str, Any],
    *,
    method: str,
    max_length: int,
) -> ExplainedExample:
    """Compute the attention map and the word attributions of one example.

    ``model`` must be loaded with eager attention (``attention="eager"``).
    """
    from halluscope.explain import (
        aggregate_to_words,
        attention_heatmap,
        attribute,
        extract_attention,
        render_word_colouring,
        word_attribution_bar,
    )

    text, text_pair = row["text"], row["text_pair"]
    maps = extract_attention(model, tokenizer, text, text_pair, max_length=max_length)
    attention = attention_heatmap(maps, maps.num_layers - 1, None)
    attention.update_layout(height=520)

    attributions = attribute(
        model, tokenizer, text, text_pair, method=method, max_length=max_length
    )
    words = aggregate_to_words(attributions, text, text_pair)
    scale = words.max_abs_score()
    warnings = []
    if attributions.delta_warning:
        warnings.append(attributions.delta_warning)
    if attributions.truncated:
        warnings.append(
            f"The input was cut to {max_length} tokens; greyed words were not seen by the model."
        )
    return ExplainedExample(
        row=row,
        text_html=render_word_colouring(words.text_words, text, scale=scale),
        pair_html=(
            render_word_colouring(words.pair_words, text_pair, scale=scale)
            if text_pair is not None
            else None
        ),
        attribution_figure=word_attribution_bar(words, top_k=15),
        attention_figure=attention,
        method=attributions.method,
        convergence_delta=attributions.convergence_delta,
        warnings=tuple(warnings),
        review=row.get("review"),
    )


def _add_classification_sections(
    report: RunReport,
    store: RunStore,
    options: ReportOptions,
    predictions: tuple[pd.DataFrame, dict[str, Any]] | None,
    model: Any,
    tokenizer: Any,
    progress: ReportProgress | None,
) -> None:
    from halluscope.training import MODEL_FOLDER
    from halluscope.workflows import predict_run

    run_id = report.record.run_id
    model_dir = store.run_dir(run_id) / MODEL_FOLDER
    if report.record.status != "completed" or not model_dir.is_dir():
        report.notices.append(
            f"The run is {report.record.status} and has no saved model, so predictions, "
            "suspected hallucinations and explanations are left out."
        )
        return

    chosen_count = options.explained_examples
    total_steps = 1 + chosen_count
    if predictions is None:
        result = predict_run(store, run_id)
        predictions = (result.table, dict(result.summary))
    table, summary = predictions
    if progress:
        progress(1, total_steps)

    label_names = tuple(column[2:-1] for column in table.columns if column.startswith("p("))
    report.label_names = label_names
    report.has_text_pair = "text_pair" in table.columns
    report.detection = detection_summary(table, summary)
    if not table.empty:
        report.figures["label_counts"] = label_counts_figure(table, label_names)
        report.figures["confidence"] = confidence_figure(table)

    marks = {mark.example_id: mark for mark in report.reviews}
    flagged = table[table["flagged"].astype(bool)]
    suspects = flagged.sort_values("flag_score", ascending=False, kind="stable")
    report.suspects = [
        _row_dict(row, label_names, marks.get(str(int(row["row_number"]))))
        for _, row in suspects.head(options.max_suspects).iterrows()
    ]

    chosen = _chosen_rows(table, suspects, options)
    if not chosen:
        if progress:
            progress(total_steps, total_steps)
        return
    if model is None or tokenizer is None:
        from halluscope.models import load_sequence_classifier, load_tokenizer

        model = load_sequence_classifier(str(model_dir), attention="eager")
        tokenizer = load_tokenizer(str(model_dir))
    max_length = int(report.config.get("max_length", 256))
    for done, index in enumerate(chosen, start=2):
        row = _row_dict(
            table.loc[index], label_names, marks.get(str(int(table.loc[index, "row_number"])))
        )
        logger.info("Report of run %s: explaining row %d.", run_id, row["row_number"])
        report.examples.append(
            explain_example(model, tokenizer, row, method=options.method, max_length=max_length)
        )
        if progress:
            progress(done, total_steps)
    if progress:
        progress(total_steps, total_steps)


def collect_report(
    store: RunStore,
    run_id: str,
    *,
    options: ReportOptions | None = None,
    predictions: tuple[pd.DataFrame, dict[str, Any]] | None = None,
    model: Any = None,
    tokenizer: Any = None,
    progress: ReportProgress | None = None,
) -> RunReport:
    """Compute the contents of the report of ``run_id``.

    Args:
        store: the run store.
        run_id: the run to report on.
        options: how much to compute (default ``ReportOptions()``).
        predictions: the (table, summary) of ``predict_run`` on the validation
            split when the caller has them already; computed otherwise.
        model: the run's classifier loaded with eager attention, to reuse a
            loaded one; loaded from the run folder otherwise.
        tokenizer: the run's tokenizer (with ``model``).
        progress: called with (steps done, steps in all) after each costly step.

    Raises:
        RunNotFoundError: no run with this id.
    """
    options = options or ReportOptions()
    record = store.get(run_id)
    events = store.read_events(run_id)
    data_events = [event for event in events if event.get("type") == "data"]
    report = RunReport(
        record=record,
        config=store.config(run_id),
        provenance=read_provenance(store, run_id),
        data_event=data_events[-1] if data_events else None,
        metrics=dict(record.metrics),
        reviews=list_marks(store, run_id),
    )

    history = loss_history(events)
    if not history.is_empty:
        report.figures["training_curves"] = training_curves_figure(history)

    if record.kind == "classification":
        _add_classification_sections(
            report, store, options, predictions, model, tokenizer, progress
        )
    else:
        _add_generation_sections(report, store, options)
        if progress:
            progress(1, 1)
    return report


def _answer_tooltips(record: dict[str, Any], detector: str) -> list[str]:
    return [
        f"{token['token']!r} · p={np.exp(token['logprob']):.3f} · entropy "
        f"{token['entropy']:.2f} nats · {detector} {token['scores'].get(detector, 0.0):.2f}"
        for token in record["tokens"]
    ]


def _add_generation_sections(report: RunReport, store: RunStore, options: ReportOptions) -> None:
    """Add the stored answers of a generation run, the most suspected first, with token colours.

    The answers are those ``halluscope answer`` (or the Answers page) stored in
    the run folder; nothing is generated here.
    """
    records = read_answers(store, report.record.run_id)
    if not records:
        report.notices.append(
            "This generation run has no stored answers yet. Answer its held-out questions on "
            f"the Answers page or with `halluscope answer {report.record.run_id}` first."
        )
        return

    detectors = list(records[0]["detectors"])
    detector = ANSWER_DETECTOR if ANSWER_DETECTOR in detectors else detectors[0]
    with_reference = [record for record in records if record.get("reference")]
    report.answer_summary = {
        "answers": len(records),
        "detector": detector,
        "flagged": {
            name: sum(bool(record["detectors"][name]["flagged"]) for record in records)
            for name in detectors
        },
        "with_reference": len(with_reference),
        "exact_matches": sum(
            _normalized(record["answer"]) == _normalized(record["reference"])
            for record in with_reference
        ),
    }

    marks = {mark.example_id: mark for mark in report.reviews}
    ranked = sorted(records, key=lambda record: -record["detectors"][detector]["score"])
    for record in ranked[: options.max_suspects]:
        tokens = record["tokens"]
        report.answers.append(
            {
                "index": record["index"],
                "question": _cut(record["question"]),
                "reference": _cut(record.get("reference")),
                "answer_html": render_token_scores(
                    record["answer"],
                    [(token["start"], token["end"]) for token in tokens],
                    [token["scores"].get(detector, 0.0) for token in tokens],
                    _answer_tooltips(record, detector),
                ),
                "scores": {name: record["detectors"][name]["score"] for name in detectors},
                "flagged": [name for name in detectors if record["detectors"][name]["flagged"]],
                "review": marks.get(str(record["index"])),
            }
        )


def _normalized(text: str | None) -> str:
    return " ".join((text or "").lower().replace(".", " ").split())
