"""End-to-end test: the real dashboard in a real headless Chromium.

One test walks the whole workflow on the bundled demo: check the data, train
MiniLM for one epoch, predict on the validation split and inspect one example.
A second test switches the interface to Simplified Chinese.

Widgets are found by the ``st-key-<key>`` class that Streamlit gives the
container of every widget created with ``key=``. Expected texts come from the
dashboard's translation catalogues, so a changed wording does not break the test.
Full-page screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest
from playwright.sync_api import Locator, Page, expect

from dashboard import state
from dashboard.i18n import LANGUAGES
from halluscope.runs import RunStore

from .pages import (
    EN,
    PAGE_TIMEOUT_S,
    ZH,
    assert_no_app_errors,
    choose_option,
    ms,
    open_page,
    screenshot,
    template_pattern,
    wait_until_idle,
    widget,
)
from .support import E2E_MARKS, REPOSITORY_ROOT, DashboardServer

pytestmark = E2E_MARKS

DEMO_PATH = REPOSITORY_ROOT / "assets" / "demo" / "claims.csv"
VALIDATION_FRACTION = 0.2
"""Default validation fraction of the Train page, which the test keeps."""
MODEL = "minilm"

TRAIN_TIMEOUT_S = 360.0
# NOTE: one epoch (30 steps) took about 30 s on 2 idle CPU cores and about 250 s
# when other jobs kept the load at 7; the module then runs for about 6 minutes.
PREDICT_TIMEOUT_S = 120.0
INSPECT_TIMEOUT_S = 180.0


# Helpers


def _grid_text(grid: Locator) -> str:
    """Return the text of a dataframe's accessible table (the cells drawn at the moment)."""
    return grid.evaluate("element => element.querySelector('table').textContent")


def _grid_row_count(grid: Locator) -> int:
    """Return the number of data rows of a dataframe (its ARIA row count minus the header)."""
    return int(grid.locator("[aria-rowcount]").first.get_attribute("aria-rowcount")) - 1


def _scroll_grid_to_end(grid: Locator) -> None:
    """Scroll a dataframe fully to the right, so that its last columns are drawn."""
    grid.locator(".dvn-scroller").first.evaluate(
        "element => { element.scrollLeft = element.scrollWidth; }"
    )


def _scroll_grid_to_start(grid: Locator) -> None:
    grid.locator(".dvn-scroller").first.evaluate("element => { element.scrollLeft = 0; }")


# Workflow steps


def _check_data_page(page: Page, demo: pd.DataFrame) -> None:
    expect(page.locator("h1")).to_have_text(EN["data.title"], timeout=ms(PAGE_TIMEOUT_S))
    wait_until_idle(page, PAGE_TIMEOUT_S)

    chosen_source = widget(page, state.DATA_SOURCE).locator("label:has(input:checked)")
    expect(chosen_source).to_have_text(EN["data.source_demo"])

    caption = EN["data.table_caption"].format(
        name=DEMO_PATH.name, rows=len(demo), columns=len(demo.columns)
    )
    expect(page.get_by_text(caption, exact=False)).to_be_visible()
    preview = page.get_by_test_id("stDataFrame").first
    expect(preview).to_be_visible()
    assert _grid_row_count(preview) == len(demo)
    preview_headers = preview.locator("th").all_inner_texts()
    for column in ("context", "claim", "label"):
        assert column in preview_headers, preview_headers

    expect(widget(page, state.DATA_TEXT_COLUMN).locator("input")).to_have_value("context")
    expect(widget(page, state.DATA_PAIR_COLUMN).locator("input")).to_have_value("claim")
    expect(widget(page, state.DATA_LABEL_COLUMN).locator("input")).to_have_value("label")
    ready = EN["data.ready"].format(name=DEMO_PATH.name, rows=len(demo))
    expect(page.get_by_text(ready)).to_be_visible()
    expect(widget(page, state.DATA_CLASS_CHART).locator(".js-plotly-plot")).to_be_visible()

    assert_no_app_errors(page)
    screenshot(page, "data")


def _start_training(page: Page, server: DashboardServer) -> str:
    """Set one epoch, click Start and return the id of the created run."""
    open_page(page, EN["nav.train"], EN["train.title"])
    wait_until_idle(page, PAGE_TIMEOUT_S)
    expect(widget(page, state.TRAIN_MODEL).locator("input")).to_have_value(MODEL)

    epochs = widget(page, state.TRAIN_EPOCHS).locator("input")
    epochs.fill("1")
    epochs.press("Enter")
    expect(epochs).to_have_value("1.00")
    wait_until_idle(page, PAGE_TIMEOUT_S)

    widget(page, state.TRAIN_START).locator("button").click()
    started = template_pattern(EN["train.started"], run_id=r"[\w-]+")
    started_message = page.get_by_text(started)
    expect(started_message).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))
    run_id = started.search(started_message.inner_text()).group(1)

    store = RunStore(server.home)
    assert [record.run_id for record in store.list_runs()] == [run_id]
    config = store.config(run_id)
    assert config["epochs"] == 1.0
    assert config["model"] == MODEL
    return run_id


def _wait_for_training(page: Page, server: DashboardServer, run_id: str) -> None:
    """Poll the Train page until the run completes, checking what it shows on the way."""
    running = EN["train.status_line"].format(status=EN["status.running"], model=MODEL)
    completed = EN["train.status_line"].format(status=EN["status.completed"], model=MODEL)
    failed = template_pattern(EN["train.failed"])
    loss_plot = widget(page, state.TRAIN_LOSS_CHART).locator(".js-plotly-plot")
    progress_bar = page.get_by_test_id("stProgress")
    store = RunStore(server.home)

    saw_progress_while_running = False
    saw_loss_plot_while_running = False
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while True:
        if page.get_by_text(completed, exact=True).count():
            break
        status_running = page.get_by_text(running, exact=True).count() > 0
        if status_running and progress_bar.count():
            saw_progress_while_running = True
        if status_running and loss_plot.count():
            saw_loss_plot_while_running = True
        if page.get_by_text(failed).count() or store.get(run_id).status in ("failed", "cancelled"):
            record = store.get(run_id)
            log = store.run_dir(run_id) / "worker.log"
            log_text = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            pytest.fail(f"Run {run_id} ended {record.status}: {record.message}\n{log_text}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"Run {run_id} did not complete in {TRAIN_TIMEOUT_S:.0f} s "
                f"(store status: {store.get(run_id).status})."
            )
        time.sleep(0.5)

    assert saw_progress_while_running, "no progress bar was shown while the run was running"
    assert saw_loss_plot_while_running, "no loss curve was shown while the run was running"
    assert store.get(run_id).status == "completed"


def _check_finished_run(page: Page, run_id: str) -> None:
    wait_until_idle(page, PAGE_TIMEOUT_S)
    progress_bar = page.get_by_test_id("stProgress")
    expect(progress_bar).to_be_visible()
    done = template_pattern(EN["train.progress_done"], step=r"\d+", max_steps=r"\d+")
    steps = done.search(progress_bar.inner_text())
    assert steps is not None, progress_bar.inner_text()
    assert int(steps.group(1)) > 0
    assert steps.group(1) == steps.group(2)
    expect(widget(page, state.TRAIN_LOSS_CHART).locator(".js-plotly-plot")).to_be_visible()
    expect(widget(page, state.TRAIN_RUN).locator("input")).to_have_value(
        re.compile(re.escape(run_id))
    )

    # The run list is the only table on the Train page.
    run_list = page.get_by_test_id("stDataFrame")
    expect(run_list).to_have_count(1)
    assert _grid_row_count(run_list) == 1
    run_list_text = _grid_text(run_list)
    assert run_id in run_list_text
    assert EN["status.completed"] in run_list_text

    assert_no_app_errors(page)
    screenshot(page, "train")


def _check_predict_page(page: Page, run_id: str, validation_rows: int) -> None:
    open_page(page, EN["nav.predict"], EN["predict.title"])
    choose_option(page, state.PREDICT_RUN, run_id)
    chosen_source = widget(page, state.PREDICT_SOURCE).locator("label:has(input:checked)")
    expect(chosen_source).to_have_text(EN["predict.source_validation"])

    shown = EN["predict.shown"].format(shown=validation_rows, total=validation_rows)
    expect(page.get_by_text(shown)).to_be_visible(timeout=ms(PREDICT_TIMEOUT_S))
    wait_until_idle(page, PREDICT_TIMEOUT_S)
    examples = page.get_by_test_id("stMetric").filter(has_text=EN["predict.examples"])
    expect(examples.get_by_test_id("stMetricValue")).to_have_text(f"{validation_rows:,}")
    flagged = page.get_by_test_id("stMetric").filter(has_text=EN["predict.flagged"])
    expect(flagged.get_by_test_id("stMetricValue")).to_be_visible()

    table = page.get_by_test_id("stDataFrame")
    expect(table).to_have_count(1)
    assert _grid_row_count(table) == validation_rows
    # The gold label and the flag columns come last, and the grid draws only the
    # columns in view, so scroll to them.
    _scroll_grid_to_end(table)
    flag_columns = ("col_gold", "col_flagged", "col_flag_score", "col_flag_reason")
    for key in flag_columns:
        expect(table.locator("th").filter(has_text=EN[f"predict.{key}"])).to_have_count(1)
    _scroll_grid_to_start(table)

    assert_no_app_errors(page)
    screenshot(page, "predict")


def _column_of(page: Page, heading: str) -> Locator:
    """Return the layout column that contains the subheading ``heading``."""
    return page.get_by_test_id("stColumn").filter(
        has=page.get_by_role("heading", name=heading, exact=True)
    )


def _check_inspect_page(page: Page, run_id: str, label_names: set[str]) -> None:
    open_page(page, EN["nav.inspect"], EN["inspect.title"])
    choose_option(page, state.INSPECT_RUN, run_id)
    heatmap = widget(page, state.INSPECT_ATTENTION_HEATMAP).locator(".js-plotly-plot")
    expect(heatmap).to_be_visible(timeout=ms(INSPECT_TIMEOUT_S))
    wait_until_idle(page, INSPECT_TIMEOUT_S)

    # Pick the second example of the list, so the choice differs from the default.
    example_box = widget(page, state.INSPECT_EXAMPLE).locator("input")
    example_box.click()
    option = page.get_by_role("option").nth(1)
    option_text = option.inner_text().strip()
    option.click()
    expect(example_box).to_have_value(option_text)
    row_match = template_pattern(EN["inspect.example_label"], row=r"\d+").search(option_text)
    assert row_match is not None, option_text
    row_number = int(row_match.group(1))

    prediction = _column_of(page, EN["inspect.panel_prediction"])
    row_caption = EN["inspect.row_number"].format(row=row_number)
    expect(prediction.get_by_text(row_caption)).to_be_visible(timeout=ms(INSPECT_TIMEOUT_S))
    wait_until_idle(page, INSPECT_TIMEOUT_S)

    # Text panel: every word of the context and the claim is a coloured span.
    text_panel = _column_of(page, EN["inspect.panel_text"])
    expect(text_panel).to_have_count(1)
    target = template_pattern(EN["inspect.target"])
    expect(text_panel.get_by_text(target)).to_be_visible()
    coloured_blocks = text_panel.get_by_test_id("stHtml")
    expect(coloured_blocks).to_have_count(2)
    for block in coloured_blocks.all():
        spans = block.locator("span[style*='background-color']")
        assert spans.count() > 0, block.inner_html()[:500]
        words = block.inner_text().split()
        assert spans.count() >= len(words), (spans.count(), words)

    # Prediction panel: the predicted label, the probability chart and the flag verdict.
    expect(prediction).to_have_count(1)
    predicted = prediction.get_by_test_id("stMetric").get_by_test_id("stMetricValue")
    assert predicted.inner_text().strip() in label_names
    probability_chart = widget(page, state.INSPECT_PROBABILITY_CHART).locator(".js-plotly-plot")
    expect(probability_chart).to_be_visible()
    verdicts = (
        template_pattern(EN["inspect.flagged"]),
        template_pattern(EN["inspect.not_flagged"]),
    )
    alerts = prediction.get_by_role("alert").all_inner_texts()
    alerts += prediction.locator("[role='status']").all_inner_texts()
    assert any(pattern.search(text) for text in alerts for pattern in verdicts), alerts
    reason = prediction.get_by_test_id("stText").last.inner_text().strip()
    assert reason, "the flag reason is empty"

    # Attention panel: a heatmap with one row and one column per token.
    attention = _column_of(page, EN["inspect.panel_attention"])
    expect(attention).to_have_count(1)
    expect(heatmap).to_be_visible()
    trace_types = heatmap.evaluate("element => element.data.map(trace => trace.type)")
    assert trace_types == ["heatmap"]
    sequence = template_pattern(EN["inspect.sequence"], tokens=r"\d+")
    sequence_text = page.get_by_text(sequence).inner_text()
    tokens = int(sequence.search(sequence_text).group(1))
    key_labels = heatmap.evaluate("element => element.data[0].x.length")
    query_labels = heatmap.evaluate("element => element.data[0].y.length")
    assert key_labels == tokens
    assert query_labels == tokens

    assert_no_app_errors(page)
    screenshot(page, "inspect")


# Tests


def test_demo_train_predict_inspect(page: Page, dashboard_server: DashboardServer) -> None:
    """Walk the bundled demo through Data, Train (one epoch), Predict and Inspect."""
    demo = pd.read_csv(DEMO_PATH)
    validation_rows = round(len(demo) * VALIDATION_FRACTION)
    label_names = set(demo["label"].astype(str))

    page.goto(dashboard_server.url)
    _check_data_page(page, demo)

    run_id = _start_training(page, dashboard_server)
    _wait_for_training(page, dashboard_server, run_id)
    _check_finished_run(page, run_id)

    _check_predict_page(page, run_id, validation_rows)
    _check_inspect_page(page, run_id, label_names)

    assert "Traceback" not in dashboard_server.log_text()


def test_language_switch_chinese(page: Page, dashboard_server: DashboardServer) -> None:
    """Switch the sidebar language to Simplified Chinese and check the Data page."""
    page.goto(dashboard_server.url)
    expect(page.locator("h1")).to_have_text(EN["data.title"], timeout=ms(PAGE_TIMEOUT_S))
    wait_until_idle(page, PAGE_TIMEOUT_S)

    choose_option(page, state.LANGUAGE, LANGUAGES["zh_CN"])
    expect(page.locator("h1")).to_have_text(ZH["data.title"], timeout=ms(PAGE_TIMEOUT_S))
    wait_until_idle(page, PAGE_TIMEOUT_S)

    nav_labels = page.get_by_test_id("stSidebarNavLink").get_by_test_id("stMarkdownContainer")
    pages = (
        "data",
        "train",
        "predict",
        "inspect",
        "quality",
        "answers",
        "inspect_answer",
        "training_data",
        "compare",
        "runs",
    )
    expected_nav = [ZH[f"nav.{name}"] for name in pages]
    english_nav = [EN[f"nav.{name}"] for name in pages]
    assert expected_nav != english_nav
    expect(nav_labels).to_have_text(expected_nav)

    headings = page.locator("h2, h3").all_inner_texts()
    assert ZH["data.mapping"] in headings, headings
    assert ZH["data.summary"] in headings, headings
    assert EN["data.mapping"] not in headings, headings
    chosen_source = widget(page, state.DATA_SOURCE).locator("label:has(input:checked)")
    expect(chosen_source).to_have_text(ZH["data.source_demo"])
    language_label = widget(page, state.LANGUAGE).get_by_test_id("stWidgetLabel")
    expect(language_label).to_have_text(ZH["app.language"])

    assert_no_app_errors(page)
    screenshot(page, "data_zh_CN")
    assert "Traceback" not in dashboard_server.log_text()
