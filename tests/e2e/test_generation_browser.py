"""End-to-end test of the generative path in a real headless Chromium.

The test runs on the bundled demo QA set. It chooses the Generation task,
fine-tunes SmolLM2-135M with LoRA for a few steps while the loss curve updates,
and cancels a second run. It then answers two held-out questions with token
colouring and inspects one answer in the three-column view, picking a token.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from dashboard import state
from halluscope.runs import RunStore

from .pages import (
    EN,
    PAGE_TIMEOUT_S,
    assert_no_app_errors,
    choose_option,
    ms,
    open_page,
    screenshot,
    template_pattern,
    wait_until_idle,
    widget,
)
from .support import E2E_MARKS, DashboardServer

pytestmark = E2E_MARKS

MODEL = "smollm2-135m"
EPOCHS = "0.05"
"""Two optimisation steps of 8 examples on the 380 training rows of the demo."""
VALIDATION_FRACTION = "0.05"
"""20 held-out questions, so the evaluation after the two steps stays short."""
TRAIN_TIMEOUT_S = 600.0
# NOTE: the whole test took about 6 minutes on 2 CPU cores shared with other
# jobs; the timeouts leave room for a slower machine.
ANSWER_TIMEOUT_S = 300.0
ANSWERED = 2


def _choose_generation_task(page: Page) -> None:
    expect(page.locator("h1")).to_have_text(EN["data.title"], timeout=ms(PAGE_TIMEOUT_S))
    wait_until_idle(page, PAGE_TIMEOUT_S)
    widget(page, state.DATA_TASK).get_by_text(EN["data.task_generation"], exact=True).click()
    wait_until_idle(page, PAGE_TIMEOUT_S)

    expect(widget(page, state.DATA_PROMPT_COLUMN).locator("input")).to_have_value("question")
    expect(widget(page, state.DATA_ANSWER_COLUMN).locator("input")).to_have_value("answer")
    expect(widget(page, state.DATA_CONTEXT_COLUMN).locator("input")).to_have_value("context")
    expect(page.get_by_text(EN["data.ready"].format(name="qa.jsonl", rows=400))).to_be_visible()
    assert_no_app_errors(page)
    screenshot(page, "generation_data")


def _fill_number(page: Page, key: str, value: str) -> None:
    box = widget(page, key).locator("input")
    box.fill(value)
    box.press("Enter")
    expect(box).to_have_value(value)
    wait_until_idle(page, PAGE_TIMEOUT_S)


def _start_run(page: Page, store: RunStore) -> str:
    _fill_number(page, state.TRAIN_GENERATION_EPOCHS, EPOCHS)
    _fill_number(page, state.TRAIN_VALIDATION_FRACTION, VALIDATION_FRACTION)

    known = {record.run_id for record in store.list_runs()}
    widget(page, state.TRAIN_START).locator("button").click()
    started = template_pattern(EN["train.started"], run_id=r"[\w-]+")
    message = page.get_by_text(started)
    expect(message).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))
    run_id = started.search(message.inner_text()).group(1)
    assert {record.run_id for record in store.list_runs()} - known == {run_id}
    return run_id


def _train(page: Page, store: RunStore) -> str:
    open_page(page, EN["nav.train"], EN["train.title"])
    wait_until_idle(page, PAGE_TIMEOUT_S)
    expect(widget(page, state.TRAIN_GENERATION_MODEL).locator("input")).to_have_value(MODEL)
    chosen_method = widget(page, state.TRAIN_METHOD).locator("label:has(input:checked)")
    expect(chosen_method).to_have_text(EN["generation_train.method_lora"])

    run_id = _start_run(page, store)
    config = store.config(run_id)
    assert store.get(run_id).kind == "generation"
    assert config["method"] == "lora"
    assert config["epochs"] == float(EPOCHS)
    assert config["validation_fraction"] == float(VALIDATION_FRACTION)

    completed = EN["train.status_line"].format(status=EN["status.completed"], model=MODEL)
    loss_plot = widget(page, state.TRAIN_LOSS_CHART).locator(".js-plotly-plot")
    saw_loss_plot = False
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while not page.get_by_text(completed, exact=True).count():
        record = store.get(run_id)
        if record.is_active and loss_plot.count():
            saw_loss_plot = True
        if record.status in ("failed", "cancelled"):
            log = (store.run_dir(run_id) / "worker.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"Run {run_id} ended {record.status}: {record.message}\n{log}")
        if time.monotonic() > deadline:
            pytest.fail(f"Run {run_id} did not complete in {TRAIN_TIMEOUT_S:.0f} s.")
        time.sleep(0.5)
    assert saw_loss_plot, "no loss curve was shown while the run was running"
    # The page reruns when the run ends; the old chart stays until that rerun is done.
    wait_until_idle(page, PAGE_TIMEOUT_S)
    expect(loss_plot).to_have_count(1)
    expect(loss_plot).to_be_visible()
    perplexity = page.get_by_test_id("stMetric").filter(has_text=EN["generation_train.perplexity"])
    expect(perplexity).to_have_count(1)
    assert_no_app_errors(page)
    screenshot(page, "generation_train")
    return run_id


def _cancel_second_run(page: Page, store: RunStore) -> None:
    run_id = _start_run(page, store)
    cancel = widget(page, state.TRAIN_CANCEL).locator("button")
    expect(cancel).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))
    cancel.click()

    deadline = time.monotonic() + PAGE_TIMEOUT_S * 2
    while store.get(run_id).status != "cancelled":
        if time.monotonic() > deadline:
            pytest.fail(f"Run {run_id} is {store.get(run_id).status}, not cancelled.")
        time.sleep(0.5)
    cancelled = template_pattern(EN["train.cancelled"])
    expect(page.get_by_text(cancelled).first).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))


def _answer(page: Page, run_id: str) -> None:
    open_page(page, EN["nav.answers"], EN["answers.title"])
    choose_option(page, state.ANSWERS_RUN, run_id)
    wait_until_idle(page, PAGE_TIMEOUT_S)
    _fill_number(page, state.ANSWERS_LIMIT, str(ANSWERED))
    _fill_number(page, state.ANSWERS_MAX_NEW_TOKENS, "16")

    widget(page, state.ANSWERS_GENERATE).locator("button").click()
    done = EN["answers.done"].format(count=ANSWERED)
    expect(page.get_by_text(done)).to_be_visible(timeout=ms(ANSWER_TIMEOUT_S))
    wait_until_idle(page, ANSWER_TIMEOUT_S)

    coloured = page.get_by_test_id("stHtml").filter(has=page.locator(".halluscope-tokens"))
    expect(coloured).to_have_count(ANSWERED)
    for block in coloured.all():
        assert block.locator("span[title]").count() > 0, block.inner_html()[:500]
    assert_no_app_errors(page)
    screenshot(page, "answers")


def _inspect(page: Page, run_id: str) -> None:
    open_page(page, EN["nav.inspect_answer"], EN["inspect_answer.title"])
    choose_option(page, state.ANSWER_RUN, run_id)
    heatmap = widget(page, state.ANSWER_ATTENTION_HEATMAP).locator(".js-plotly-plot")
    expect(heatmap).to_be_visible(timeout=ms(ANSWER_TIMEOUT_S))
    wait_until_idle(page, ANSWER_TIMEOUT_S)

    columns = page.get_by_test_id("stColumn")
    for heading in ("inspect_answer.context", "inspect_answer.answer", "inspect_answer.reference"):
        expect(columns.filter(has_text=EN[heading]).first).to_be_visible()
    context = columns.filter(has_text=EN["inspect_answer.context"]).first
    expect(context.locator(".halluscope-attribution").first).to_be_visible()

    pills = widget(page, f"{state.ANSWER_TOKEN}_0").get_by_role("radio")
    assert pills.count() >= 2
    pills.nth(1).click()
    wait_until_idle(page, ANSWER_TIMEOUT_S)
    outlined = page.locator(".halluscope-tokens span[style*='outline']")
    expect(outlined).to_have_count(1)
    token_label = pills.nth(1).inner_text()
    token_text = re.sub(r"^\d+: '?|'?$", "", token_label).strip()
    assert token_text in outlined.inner_text() or not token_text, (
        token_label,
        outlined.inner_text(),
    )

    for key in (
        state.ANSWER_ATTENTION_ROW,
        state.ANSWER_LOOKBACK_CHART,
        state.ANSWER_ATTENTION_GRID,
    ):
        expect(widget(page, key).locator(".js-plotly-plot")).to_be_visible()
    assert_no_app_errors(page)
    screenshot(page, "inspect_answer")


def test_generation_train_answer_inspect(page: Page, dashboard_server: DashboardServer) -> None:
    """Fine-tune SmolLM2 with LoRA from the dashboard, answer, and inspect an answer."""
    store = RunStore(dashboard_server.home)
    page.goto(dashboard_server.url)

    _choose_generation_task(page)
    run_id = _train(page, store)
    _cancel_second_run(page, store)
    _answer(page, run_id)
    _inspect(page, run_id)

    assert "Traceback" not in dashboard_server.log_text()
