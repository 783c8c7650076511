"""Tests of the HTML run report: contents, escaping, offline figures and CJK text."""

from __future__ import annotations

import json
import re

import pandas as pd
import plotly.graph_objects as go
import plotly.offline
import pytest

from halluscope.report import (
    ReportOptions,
    build_report,
    collect_report,
    detection_summary,
    render_report,
)
from halluscope.report.render import figure_json
from halluscope.runs import RunStore, set_mark
from halluscope.training.history import loss_history
from tests.report.tiny_runs import (
    CHINESE_CLAIM,
    CHINESE_CONTEXT,
    FLAGGED_ROWS,
    SCRIPT_CLAIM,
    create_tiny_run,
)

URL = re.compile(r"https?://[^\s\"'<>\\)]+")
RUN_NAME = "<img src=x onerror=alert(1)> run"


@pytest.fixture(scope="module")
def report_html(tmp_path_factory, tiny_model_folder):
    store = RunStore(tmp_path_factory.mktemp("report-home"))
    run_id = create_tiny_run(store, tiny_model_folder, name=RUN_NAME)
    set_mark(store, run_id, "3", "false_alarm", "<b>not</b> an error", excerpt=SCRIPT_CLAIM)
    set_mark(store, run_id, "11", "confirmed", "年份错误")
    return build_report(store, run_id)


def _without_plotly_bundle(html_text: str) -> str:
    bundle = plotly.offline.get_plotlyjs()
    assert html_text.count(bundle) == 1
    return html_text.replace(bundle, "")


def test_report_escapes_script_from_data(report_html):
    escaped = "The Quaskel Works &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; was founded"

    assert SCRIPT_CLAIM not in report_html
    assert "<script>alert" not in report_html
    assert escaped in report_html


def test_report_escapes_run_name_and_notes(report_html):
    assert RUN_NAME not in report_html
    assert "&lt;img src=x onerror=alert(1)&gt; run" in report_html
    assert "<b>not</b>" not in report_html
    assert "&lt;b&gt;not&lt;/b&gt; an error" in report_html


def test_report_has_no_url_outside_plotly_bundle(report_html):
    rest = _without_plotly_bundle(report_html)

    assert URL.findall(rest) == []
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest) is None
    assert "default-src 'none'" in rest


def test_inlined_plotly_bundle_contains_urls(report_html):
    # The bundle names tile servers and documentation pages for map traces and
    # error messages; the report draws no map, so none of them is requested.
    bundle_urls = set(URL.findall(plotly.offline.get_plotlyjs()))

    assert bundle_urls
    assert set(URL.findall(report_html)) == bundle_urls


def test_report_embeds_every_figure(report_html):
    divs = re.findall(r'<div class="figure" id="([^"]+)" data-figure="([^"]+)"></div>', report_html)

    # training curves, label counts, confidence, and words + attention per flagged example
    assert len(divs) == 3 + 2 * len(FLAGGED_ROWS)
    for element_id, data_id in divs:
        assert data_id == f"{element_id}-data"
        match = re.search(
            rf'<script type="application/json" id="{data_id}">(.*?)</script>', report_html, re.S
        )
        figure = json.loads(match.group(1))
        assert figure["data"], element_id
        assert figure["layout"]["xaxis"]["title"]["text"], element_id


def test_report_sections(report_html):
    for section in ("overview", "settings", "provenance", "data", "training", "metrics",
                    "detection", "suspects", "examples", "reviews"):  # fmt: skip
        assert f'<section id="{section}">' in report_html
    for row in FLAGGED_ROWS:
        assert f'id="example-row-{row}"' in report_html
    assert report_html.count("halluscope-attribution") == 2 * len(FLAGGED_ROWS)


def test_report_shows_review_marks(report_html):
    reviews = report_html[report_html.index('<table id="reviews-table">') :]
    reviews = reviews[: reviews.index("</table>")]

    assert reviews.count("<tr>") == 3
    assert "false alarm" in reviews
    assert "confirmed" in reviews
    assert "年份错误" in reviews
    assert "1 confirmed hallucination(s), 1 false alarm(s)." in report_html


def test_report_renders_chinese_text(report_html):
    suspects = report_html[report_html.index('<table id="suspects-table">') :]
    suspects = suspects[: suspects.index("</table>")]

    assert CHINESE_CONTEXT in suspects
    assert CHINESE_CLAIM in suspects
    assert '<meta charset="utf-8">' in report_html
    example = report_html[report_html.index('id="example-row-11"') :]
    example = example[: example.index("</article>")]
    # Each CJK character is a word of its own, so the text is split into spans.
    coloured = re.findall(r'<div class="halluscope-attribution".*?</div>', example, re.S)
    shown = [re.sub(r"<[^>]+>", "", block) for block in coloured]
    assert shown == [CHINESE_CONTEXT, CHINESE_CLAIM]
    assert '<span style="background-color' in coloured[1]


def _generation_run(store: RunStore) -> str:
    run_id = store.create_run(
        kind="generation", model="smollm2-135m", data="qa.jsonl", config={"method": "lora"}
    ).run_id
    store.append_event(run_id, {"type": "train_step", "step": 1, "loss": 2.5})
    store.append_event(run_id, {"type": "eval", "step": 1, "eval_loss": 2.7})
    store.set_metrics(run_id, {"eval_loss": 2.7})
    store.set_status(run_id, "completed")
    return run_id


def _answer(index: int, answer: str, reference: str, score: float) -> dict:
    """A stored answer whose tokens are its whitespace-separated words."""
    tokens = []
    for match in re.finditer(r"\S+", answer):
        tokens.append(
            {
                "token": match.group(),
                "token_id": 1,
                "start": match.start(),
                "end": match.end(),
                "logprob": -0.5,
                "entropy": 1.0,
                "rank": 0,
                "scores": {"low_logprob": score, "unsupported_word": 0.0},
            }
        )
    return {
        "index": index,
        "source": "validation",
        "row_number": index + 1,
        "question": f"Question {index}?",
        "context": "The bridge has 12 arches.",
        "reference": reference,
        "prompt": "prompt",
        "answer": answer,
        "finish_reason": "eos",
        "tokens": tokens,
        "detectors": {
            "low_logprob": {"score": score, "flagged": score >= 0.4, "reason": "r"},
            "unsupported_word": {"score": 0.0, "flagged": False, "reason": "r"},
        },
    }


def test_report_of_generation_run_without_answers(tmp_path):
    store = RunStore(tmp_path)
    run_id = _generation_run(store)
    steps = []

    report = collect_report(store, run_id, progress=lambda done, total: steps.append(done))
    html_text = render_report(report)

    assert steps == [1]
    assert report.detection is None
    assert list(report.figures) == ["training_curves"]
    assert "has no stored answers yet" in html_text
    assert '<section id="suspects">' not in html_text
    assert '<section id="answers">' not in html_text
    assert "lora" in html_text


def test_report_of_generation_run_shows_answers(tmp_path):
    store = RunStore(tmp_path)
    run_id = _generation_run(store)
    answers = [
        _answer(0, "It has 12 arches.", "12 arches", 0.1),
        _answer(1, "It has <script>alert(1)</script> arches.", "12 arches", 0.9),
        _answer(2, "12 arches", "12 arches.", 0.5),
    ]
    store.write_json(run_id, "answers.json", {"settings": {}, "records": answers})
    set_mark(store, run_id, "1", "confirmed", "invented markup")

    report = collect_report(store, run_id)
    html_text = render_report(report)

    assert [answer["index"] for answer in report.answers] == [1, 2, 0]
    assert report.answer_summary["flagged"] == {"low_logprob": 2, "unsupported_word": 0}
    assert report.answer_summary["exact_matches"] == 1
    assert "1 of the 3 with a reference answer match it exactly" in html_text
    section = html_text[html_text.index('<section id="answers">') :]
    section = section[: section.index("</section>")]
    assert "<script>alert(1)</script>" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert section.count('class="halluscope-tokens"') == 3
    assert report.answers[0]["review"].note == "invented markup"
    assert "invented markup" in section


def test_report_of_failed_classification_run(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(kind="classification", model="minilm", data="d.csv", config={}).run_id
    store.set_status(run_id, "failed", message="Loss became NaN <at step 3>.")

    html_text = build_report(store, run_id)

    assert "The run is failed and has no saved model" in html_text
    assert "Loss became NaN &lt;at step 3&gt;." in html_text
    assert "No training steps were logged for this run." in html_text


def test_report_progress_and_chosen_rows(tmp_path, tiny_model_folder):
    store = RunStore(tmp_path)
    run_id = create_tiny_run(store, tiny_model_folder)
    steps = []

    report = collect_report(
        store,
        run_id,
        options=ReportOptions(example_rows=(17, 999), method="saliency"),
        progress=lambda done, total: steps.append((done, total)),
    )

    assert [example.row["row_number"] for example in report.examples] == [17]
    assert report.examples[0].method == "saliency"
    assert report.examples[0].convergence_delta is None
    assert steps[0] == (1, 4)
    assert steps[-1] == (4, 4)
    assert [done for done, _total in steps] == sorted(done for done, _total in steps)


def test_report_options_rejects_unknown_method():
    with pytest.raises(ValueError, match="Unknown attribution method 'magic'"):
        ReportOptions(method="magic")
    with pytest.raises(ValueError, match="explained_examples"):
        ReportOptions(explained_examples=-1)


def test_figure_json_cannot_close_script():
    figure = go.Figure(go.Bar(x=["</script><script>alert(1)</script>"], y=[1]))

    text = figure_json(figure)

    assert "</" not in text
    assert "<" not in text
    assert json.loads(text)["data"][0]["x"] == ["</script><script>alert(1)</script>"]


def test_detection_summary_values():
    table = pd.DataFrame(
        {
            "correct": [True, True, False, False],
            "margin": [0.9, 0.2, 0.1, 0.8],
            "flagged": [False, False, True, False],
        }
    )

    summary = detection_summary(table, {"accuracy": 0.5, "f1_macro": 0.4, "examples": 4})

    assert summary.examples == 4
    assert summary.flagged == 1
    assert summary.wrong == 2
    assert summary.model_metrics == {"accuracy": 0.5, "f1_macro": 0.4}
    # 1 - margin ranks the wrong rows 0.9 and 0.2 against the right rows 0.1 and 0.8:
    # 3 of the 4 (wrong, right) pairs are ordered correctly.
    assert summary.error_auroc == pytest.approx(0.75)
    assert summary.flag_precision == 1.0
    assert summary.flag_recall == 0.5


def test_loss_history_from_events():
    history = loss_history(
        [
            {"type": "train_step", "step": 1, "loss": 0.7},
            {"type": "train_step", "step": 2, "loss": float("nan")},
            {"type": "eval", "step": 2, "eval_loss": 0.6, "eval_accuracy": 0.8},
            {"type": "eval", "step": 4, "eval_loss": 0.5},
            {"type": "metrics", "accuracy": 0.9},
        ]
    )

    assert history.train_steps == (1, 2)
    assert history.eval_steps == (2, 4)
    assert history.eval_accuracy == (0.8, None)
