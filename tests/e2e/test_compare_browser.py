"""End-to-end test in headless Chromium: the data map of the Training data page, and Compare.

Two completed classification runs are written with the store API before the
browser opens a page: tiny random BERT classifiers whose heads lean towards
opposite labels, on four validation rows of the demo claims. One of them gets
training dynamics for twelve training rows. The test opens the Training data
page and checks that the data map draws those twelve points. It box-selects
one point, then switches the map to pan mode and clicks another, and checks
each time that the chosen row opens. Then it opens Compare, picks the two runs
and checks the metrics figure and the table of per-row changes. Full-page
screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect

from dashboard import state
from halluscope.runs import RunStore
from halluscope.training.dynamics import DYNAMICS_FILE, TrainingDynamics
from halluscope.training.train_examples import load_train_examples
from tests.report.tiny_runs import HEAD_BIAS, LABEL_NAMES, create_tiny_run, write_tiny_model

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

REFERENCE_RUN = "leans hallucinated"
LAST_RUN = "leans supported"
TRAIN_ROWS = tuple(range(1, 13))
"""Training rows of both runs: the first twelve rows of the demo claims."""
GOLD_PROBABILITY = np.asarray(
    [
        [0.95, 0.90, 0.85, 0.92, 0.10, 0.15, 0.10, 0.55, 0.80, 0.20, 0.97, 0.30],
        [0.97, 0.93, 0.90, 0.95, 0.12, 0.10, 0.90, 0.25, 0.85, 0.25, 0.98, 0.35],
        [0.99, 0.96, 0.94, 0.97, 0.08, 0.05, 0.50, 0.40, 0.90, 0.15, 0.99, 0.40],
    ]
)
"""Probability of the given label per epoch (rows) and training row (columns).

Rows 1-4, 9 and 11 are easy to learn and rows 5, 6, 8, 10 and 12 hard. Row 7
(0.10, 0.90, 0.50) is the one ambiguous row, alone on the right of the map,
and row 8 (0.55, 0.25, 0.40) the hard row with the largest variability.
"""
BOXED_ROW = 7
CLICKED_ROW = 8
BOX_HALF_WIDTH_PX = 15
"""Half the side of the selection box, small enough that no neighbour of ``BOXED_ROW`` is in it."""
EXPECTED_CHANGES = {
    3: "stopped_flagged",
    8: "became_flagged",
    11: "stopped_flagged",
    17: "became_flagged",
}
"""Change of each validation row from the reference run to the last run.

The run that leans towards "hallucinated" is confidently wrong on the
supported rows 3 and 11, the other run on the hallucinated rows 8 and 17.
"""


# Runs


def _write_opposite_model(folder: Path) -> None:
    """Save the tiny model with its head bias reversed, so it predicts "supported"."""
    import torch
    from transformers import BertForSequenceClassification

    write_tiny_model(folder)
    model = BertForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([-HEAD_BIAS, HEAD_BIAS]))
    model.save_pretrained(folder)


def _add_run(store: RunStore, model_dir: Path, name: str) -> str:
    """Create a completed run whose split lists ``TRAIN_ROWS`` as its training rows."""
    run_id = create_tiny_run(store, model_dir, name=name)
    split = store.read_json(run_id, "split.json")
    split["train_row_numbers"] = list(TRAIN_ROWS)
    store.write_json(run_id, "split.json", split)
    return run_id


def _write_dynamics(store: RunStore, run_id: str) -> None:
    """Write ``GOLD_PROBABILITY`` as the run's training dynamics, with the rows' real labels."""
    labels = np.asarray(load_train_examples(store, run_id).labels, dtype=np.int64)
    # With two labels, a row is predicted right while p(given label) >= 0.5.
    predicted = np.where(GOLD_PROBABILITY >= 0.5, labels, 1 - labels)
    dynamics = TrainingDynamics(
        row_numbers=TRAIN_ROWS,
        labels=labels,
        label_names=LABEL_NAMES,
        epochs=(1.0, 2.0, 3.0),
        gold_probability=GOLD_PROBABILITY,
        predicted=predicted,
    )
    store.write_json(run_id, DYNAMICS_FILE, dynamics.to_dict())


@pytest.fixture(scope="module")
def two_runs(dashboard_server: DashboardServer) -> tuple[str, str]:
    """The reference run (with training dynamics) and the last run, in the server's store."""
    models = dashboard_server.home.parent / "models"
    write_tiny_model(models / "hallucinated")
    _write_opposite_model(models / "supported")
    store = RunStore(dashboard_server.home)
    reference = _add_run(store, models / "hallucinated", REFERENCE_RUN)
    last = _add_run(store, models / "supported", LAST_RUN)
    _write_dynamics(store, reference)
    return reference, last


# Helpers


def _plotly(container: Locator) -> Locator:
    return container.locator(".js-plotly-plot")


def _point_position(plot: Locator, row_number: int) -> dict[str, float]:
    """Return the page coordinates of the data-map point whose ``customdata`` row is given.

    Plotly keeps the decoded trace (``_fullData``) and each axis's offset and
    scale (``_fullLayout``) on the figure element, which turn data coordinates
    into pixels.
    """
    position = plot.evaluate(
        """(element, row) => {
            const trace = element._fullData[0];
            const index = trace.customdata.findIndex((item) => item[0] === row);
            const layout = element._fullLayout;
            const box = element.getBoundingClientRect();
            return {
                index: index,
                x: box.left + layout.xaxis._offset + layout.xaxis.l2p(trace.x[index]),
                y: box.top + layout.yaxis._offset + layout.yaxis.l2p(trace.y[index]),
            };
        }""",
        row_number,
    )
    assert position["index"] >= 0, f"Row {row_number} is not a point of the data map."
    return position


def _grid_row_count(grid: Locator) -> int:
    """Return the number of data rows of a dataframe (its ARIA row count minus the header)."""
    return int(grid.locator("[aria-rowcount]").first.get_attribute("aria-rowcount")) - 1


def _scroll_grid_to_end(grid: Locator) -> None:
    """Scroll a dataframe fully to the right, so that its last columns are drawn."""
    grid.locator(".dvn-scroller").first.evaluate(
        "element => { element.scrollLeft = element.scrollWidth; }"
    )


# Steps


def _check_data_map(page: Page) -> Locator:
    """Open the Training data page on the reference run and return the drawn data map."""
    open_page(page, EN["nav.training_data"], EN["training_data.title"])
    wait_until_idle(page, PAGE_TIMEOUT_S)
    choose_option(page, state.TRAINING_DATA_RUN, REFERENCE_RUN)
    wait_until_idle(page, PAGE_TIMEOUT_S)

    plot = _plotly(widget(page, state.TRAINING_DATA_MAP_CHART))
    expect(plot).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))
    expect(plot.locator("canvas").first).to_be_attached()
    drawn = plot.evaluate(
        """element => ({
            type: element._fullData[0].type,
            points: element._fullData[0].x.length,
            webgl: element._fullLayout._glcanvas !== undefined,
        })"""
    )
    assert drawn == {"type": "scattergl", "points": len(TRAIN_ROWS), "webgl": True}
    titles = plot.locator(".g-xtitle, .g-ytitle").all_text_contents()
    assert titles == [EN["training_data.variability"], EN["training_data.confidence"]]
    expect(page.get_by_text(EN["training_data.select_hint"])).to_be_visible()
    assert_no_app_errors(page)
    screenshot(page, "training_data_map")
    return plot


def _check_selected_row(page: Page, row_number: int, region: str) -> None:
    """Check that the page lists exactly the training row ``row_number`` as selected."""
    selected = EN["training_data.selected"].format(count=1)
    expect(page.get_by_text(selected)).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))
    wait_until_idle(page, PAGE_TIMEOUT_S)
    table = page.get_by_test_id("stDataFrame").first
    expect(table.locator("table td").first).to_have_text(str(row_number))
    assert _grid_row_count(table) == 1
    cells = table.locator("table td").all_text_contents()
    assert region in cells, cells

    # One selected row also gets its probability per epoch, the page's second figure.
    epochs = _plotly(page.get_by_test_id("stPlotlyChart").nth(1))
    expect(epochs).to_be_visible()
    drawn = epochs.evaluate("element => Array.from(element._fullData[0].y)")
    assert drawn == pytest.approx(GOLD_PROBABILITY[:, row_number - 1].tolist())
    assert_no_app_errors(page)


def _box_select_point(page: Page, plot: Locator, row_number: int) -> None:
    """Pick Box Select in the data map's mode bar and drag a small box around one point."""
    plot.hover()
    plot.locator(".modebar-btn[data-attr='dragmode'][data-val='select']").click()
    page.wait_for_function(
        "element => element._fullLayout.dragmode === 'select'",
        arg=plot.element_handle(),
        timeout=ms(PAGE_TIMEOUT_S),
    )
    centre = _point_position(plot, row_number)
    page.mouse.move(centre["x"] - BOX_HALF_WIDTH_PX, centre["y"] - BOX_HALF_WIDTH_PX)
    page.mouse.down()
    page.mouse.move(centre["x"], centre["y"], steps=5)
    page.mouse.move(centre["x"] + BOX_HALF_WIDTH_PX, centre["y"] + BOX_HALF_WIDTH_PX, steps=5)
    page.mouse.up()


def _click_point(page: Page, plot: Locator, row_number: int) -> None:
    """Click one data-map point in the map's default zoom mode, where a click selects it."""
    assert plot.evaluate("element => element._fullLayout.dragmode") == "zoom"
    page.wait_for_function(
        "element => element._fullLayout.clickmode === 'event+select'",
        arg=plot.element_handle(),
        timeout=ms(PAGE_TIMEOUT_S),
    )
    centre = _point_position(plot, row_number)
    page.mouse.move(centre["x"], centre["y"])
    page.mouse.click(centre["x"], centre["y"])


def _chosen_run_names(picker: Locator) -> list[str]:
    labels = picker.locator("[data-tag]").evaluate_all(
        "elements => elements.map((element) => element.getAttribute('aria-label'))"
    )
    return [label.split(" (")[0] for label in labels]


def _pick_runs(page: Page) -> None:
    """Remove the last run from the Compare page's run picker, then pick it again.

    The page fills an empty picker with the two newest runs, so one run stays.
    """
    picker = widget(page, state.COMPARE_RUNS)
    expect(picker.locator("[data-tag]")).to_have_count(2)
    picker.get_by_role("button", name=re.compile(f"^Remove {re.escape(LAST_RUN)}")).click()
    expect(page.get_by_text(EN["compare.pick_two"])).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))
    wait_until_idle(page, PAGE_TIMEOUT_S)
    assert _chosen_run_names(picker) == [REFERENCE_RUN]

    picker.get_by_role("combobox").click()
    page.get_by_role("option").filter(has_text=LAST_RUN).first.click()
    page.keyboard.press("Escape")
    wait_until_idle(page, PAGE_TIMEOUT_S)
    assert _chosen_run_names(picker) == [REFERENCE_RUN, LAST_RUN]


def _check_compare(page: Page) -> None:
    open_page(page, EN["nav.compare"], EN["compare.title"])
    wait_until_idle(page, PAGE_TIMEOUT_S)
    _pick_runs(page)

    plot = _plotly(widget(page, state.COMPARE_METRICS_CHART))
    expect(plot).to_be_visible(timeout=ms(PAGE_TIMEOUT_S))
    traces = plot.evaluate("element => element.data.map((trace) => trace.name)")
    assert traces == [REFERENCE_RUN, LAST_RUN]
    bars = plot.evaluate("element => element.data.reduce((sum, trace) => sum + trace.x.length, 0)")
    assert bars >= 2 * 2, "Expected accuracy and calibration error bars for both runs."
    expect(plot.locator(".bars .point")).to_have_count(bars)
    titles = plot.locator(".g-xtitle, .g-ytitle").all_text_contents()
    assert titles == [EN["compare.metric"], EN["compare.value"]]

    caption = template_pattern(EN["compare.examples_caption"], rows=r"\d+")
    expect(page.get_by_text(caption)).to_be_visible()
    assert caption.search(page.get_by_text(caption).inner_text()).group(1) == "4"
    # Streamlit gives a dataframe no ``st-key-`` class. The page shows the run
    # summary, the per-row table and the nearest training rows, in this order.
    tables = page.get_by_test_id("stDataFrame")
    expect(tables).to_have_count(3)
    examples = tables.nth(1)
    expect(examples.locator("th", has_text=re.compile(r"^gold$"))).to_be_attached()
    assert _grid_row_count(examples) == len(EXPECTED_CHANGES)
    _scroll_grid_to_end(examples)
    expect(examples.locator("th", has_text=re.compile(r"^change$"))).to_be_attached()
    # Rows are sorted by row number, and "change" is the last column.
    changes = examples.locator("table tbody tr").evaluate_all(
        "rows => rows.map((row) => row.lastElementChild.textContent)"
    )
    assert changes == [EXPECTED_CHANGES[row] for row in sorted(EXPECTED_CHANGES)]
    counts = {"compare.change_became_flagged": "2", "compare.change_stopped_flagged": "2"}
    for label_key, count in counts.items():
        metric = page.get_by_test_id("stMetric").filter(has_text=EN[label_key])
        expect(metric.get_by_test_id("stMetricValue")).to_have_text(count)
    assert_no_app_errors(page)
    screenshot(page, "compare")


def test_data_map_and_compare(page: Page, dashboard_server: DashboardServer, two_runs) -> None:
    page.goto(dashboard_server.url)
    expect(page.locator("h1")).to_have_text(EN["data.title"], timeout=ms(PAGE_TIMEOUT_S))
    wait_until_idle(page, PAGE_TIMEOUT_S)

    plot = _check_data_map(page)
    _click_point(page, plot, CLICKED_ROW)
    _check_selected_row(page, CLICKED_ROW, "hard")
    screenshot(page, "training_data_clicked")

    plot = _plotly(widget(page, state.TRAINING_DATA_MAP_CHART))
    _box_select_point(page, plot, BOXED_ROW)
    _check_selected_row(page, BOXED_ROW, "ambiguous")
    screenshot(page, "training_data_box_selected")

    _check_compare(page)
