"""The playground in a real browser: Debian's headless Chromium, driven by Playwright, against the real server
started as a user starts it. Every test fails on a console error or an uncaught page error, and leaves
screenshots in artifacts/screenshots/ (CI keeps them).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.serving import running_server

CHROMIUM = os.environ.get("LAYERWISE_CHROMIUM", "/usr/bin/chromium")
# As root on a closed network: no sandbox (root), and no background connections, which the machine refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WIDE: ViewportSize = {"width": 1280, "height": 800}
NARROW: ViewportSize = {"width": 400, "height": 800}
# A status the page provokes on purpose (a 422 for an invalid model) is logged by Chromium itself as
# "Failed to load resource"; that is the network log, not an error of the page. Tests allow it by status.
RESOURCE_ERROR = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")

# make test installs Debian's chromium; run by hand without it, these tests say so and skip (never in CI).
pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"),
    reason=f"no Chromium at {CHROMIUM}: make test installs Debian's chromium",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server on a free loopback port, with its own runs file."""
    with running_server({"LAYERWISE_RUNS_DB": str(tmp_path_factory.mktemp("runs") / "runs.sqlite3")}) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """What the page said on its console, and the HTTP statuses a test expects Chromium to log."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: set[int] = set()

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console.{message.type}: {message.text}")

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"page error: {error}")

    def allow(self, status: int) -> None:
        self.allowed.add(status)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not ((m := RESOURCE_ERROR.search(e)) and int(m.group(1)) in self.allowed)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, server: str, console: Console) -> Iterator[Page]:
    """A fresh browser context (empty localStorage) on the playground; fails the test on any console error."""
    context = browser.new_context(viewport=WIDE, base_url=server)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    page.goto("/")
    expect(page.locator("#summary-status")).to_contain_text("params")
    yield page
    context.close()
    assert console.unexpected() == []


def shot(page: Page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


def assert_accessible(page: Page) -> None:
    """No violation of axe-core's rules (WCAG 2 A and AA, and best practices) on the page as it is now."""
    violations = Axe().run(page).response["violations"]
    assert [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in violations] == []


def pick_example(page: Page, key: str) -> None:
    page.click(f"[data-example='{key}']")
    expect(page.locator("#summary-status")).to_contain_text(f"{key}:")


def table(page: Page) -> list[tuple[str, str, str]]:
    """(name, output shape, params) per layer row of the summary table."""
    rows = page.locator("#summary-rows tr[data-index]")
    return [
        (
            row.locator(".lname").inner_text(),
            row.locator(".c-shape").inner_text(),
            row.locator(".c-params").inner_text(),
        )
        for row in rows.all()
    ]


def spec_json(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(page.input_value("#spec-json"))
    return value


def test_seed_examples_show_keras_shapes(page: Page) -> None:
    pick_example(page, "seed_example_2")
    assert table(page) == [
        ("lstm_layer", "(None, 10, 30)", "6,120"),
        ("flatten_layer", "(None, 300)", "0"),
        ("dense_layer", "(None, 1)", "301"),
    ]
    expect(page.locator("#total-params")).to_have_text("6,421")
    expect(page.locator("#l0-result")).to_have_text("→ (None, 10, 30) · 6,120 params")
    shot(page, "01-seed-example-2")
    assert_accessible(page)

    pick_example(page, "seed_example_1_batch")
    assert table(page) == [("lstm_layer", "(5, 30)", "6,120"), ("dense_layer", "(5, 1)", "31")]
    expect(page.locator("#input-kind")).to_have_value("batch_input_shape")
    expect(page.locator("#input-batch")).to_have_value("5")
    expect(page.locator("#input-dims")).to_have_value("10, 20")


def test_form_and_json_stay_in_sync_and_work_from_the_keyboard(page: Page, console: Console) -> None:
    console.allow(422)  # a Bidirectional added after the Dense is refused, as it should be
    pick_example(page, "seed_example_1")
    # Form -> JSON and summary: LSTM(16) on 20 features has 4*16*(20+16+1) parameters.
    page.fill("#l0-units", "16")
    expect(page.locator("#summary-rows tr[data-index='0'] .c-params")).to_have_text("2,368")
    assert spec_json(page)["layers"][0]["units"] == 16

    # JSON -> form: the tabs follow the ARIA pattern (arrow keys), the textarea drives the form.
    page.focus("#tab-layers")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-json")).to_be_focused()
    expect(page.locator("#json-view")).to_be_visible()
    spec = spec_json(page)
    spec["layers"][0]["units"] = 8
    spec["layers"][1]["activation"] = "sigmoid"
    page.fill("#spec-json", json.dumps(spec))
    expect(page.locator("#summary-rows tr[data-index='0'] .c-params")).to_have_text(f"{4 * 8 * (20 + 8 + 1):,}")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#l0-units")).to_have_value("8")
    expect(page.locator("#l1-activation")).to_have_value("sigmoid")

    # Add, reorder and remove layers with the keyboard alone.
    page.focus("#add-type")
    page.select_option("#add-type", "Dropout")
    page.keyboard.press("Tab")
    expect(page.locator("#add-layer")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#l2-rate")).to_have_value("0.2")
    page.focus("#l2-up")
    page.keyboard.press("Space")
    expect(page.locator("#l1-type")).to_have_value("Dropout")
    expect(page.locator("#l1-up")).to_be_focused()
    expect(page.locator("#summary-rows tr[data-index]")).to_have_count(3)
    assert [layer["type"] for layer in spec_json(page)["layers"]] == ["LSTM", "Dropout", "Dense"]
    # layer 0 carried the input shape (Keras 2 style): moving layers put it on the model, where it stays valid
    assert spec_json(page)["input_shape"] == [10, 20]
    shot(page, "02-editor-after-reorder")
    page.keyboard.press("Tab")  # down
    page.keyboard.press("Tab")  # remove
    expect(page.locator("#l1-remove")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#summary-rows tr[data-index]")).to_have_count(2)

    # A wrapper's inner layer is a nested form, its arguments Keras's.
    page.select_option("#add-type", "Bidirectional")
    page.click("#add-layer")
    expect(page.locator("#l2-layer-type")).to_have_value("LSTM")
    expect(page.locator("#l2-layer-units")).to_have_value("32")

    # The seed examples are buttons: Enter on one loads it.
    page.focus("[data-example='seed_example_2']")
    page.keyboard.press("Enter")
    expect(page.locator("#summary-status")).to_contain_text("seed_example_2:")


def test_a_keras_config_pasted_as_json_becomes_layers(page: Page) -> None:
    pick_example(page, "seed_example_1")
    page.click("#tab-json")
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "pasted",
            "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 7, 3]}},
                {"module": "keras.layers", "class_name": "GRU", "config": {"name": "gru_9", "units": 4}},
            ],
        },
    }
    page.fill("#spec-json", json.dumps(config))
    expect(page.locator("#summary-status")).to_contain_text("pasted:")
    # GRU with reset_after (Keras 3's default): 3 * units * (input + units + 2).
    expect(page.locator("#summary-rows tr[data-index='0'] .c-params")).to_have_text(f"{3 * 4 * (3 + 4 + 2):,}")
    spec = spec_json(page)
    assert spec["layers"] == [{"type": "GRU", "name": "gru_9", "units": 4}]
    assert spec["input_shape"] == [7, 3] and "batch_input_shape" not in spec


def test_an_error_shows_on_the_layer_it_names(page: Page, console: Console) -> None:
    console.allow(422)
    pick_example(page, "seed_example_1")

    # A value pydantic refuses: under the field, on layer 1's card, in layer 1's row.
    page.fill("#l1-units", "0")
    expect(page.locator("#l1-units-problem")).to_contain_text("greater than or equal to 1")
    expect(page.locator("#l1-units")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#l1-card")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator("#l0-card")).not_to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator("#summary-status")).to_contain_text("Not a valid model yet")
    expect(page.locator("#summary-rows tr.problem-row")).to_contain_text("greater than or equal to 1")
    page.fill("#l1-units", "1")
    expect(page.locator("#summary-status")).to_contain_text("seed_example_1:")
    expect(page.locator("#l1-card")).not_to_have_class(re.compile(r"\bhas-error\b"))

    # A stack Keras refuses: an LSTM after an LSTM that returns only its last output.
    page.select_option("#l1-type", "LSTM")
    problem = page.locator("#l1-problems")
    expect(problem).to_contain_text("layer 1 (dense_layer, LSTM) cannot take the output of layer 0 (lstm_layer)")
    expect(problem).to_contain_text("set return_sequences=true on it")
    expect(page.locator("#l0-problems")).to_be_empty()
    expect(page.locator("#summary-status")).to_contain_text("Keras cannot build this model")
    row_after_layer_1 = page.locator("#summary-rows tr[data-index='1'] + tr.problem-row")
    expect(row_after_layer_1).to_contain_text("cannot take the output of layer 0")
    shot(page, "03-error-on-layer-1")
    assert_accessible(page)

    page.check("#l0-return_sequences")
    expect(page.locator("#summary-status")).to_contain_text("seed_example_1:")
    expect(page.locator("#l1-problems")).to_be_empty()
    assert table(page)[1] == ("dense_layer", "(None, 1)", f"{4 * 1 * (30 + 1 + 1):,}")

    # Inside a wrapper, an error is under the wrapped layer's field, whichever side refused it: pydantic (units=0)
    # or the service's limit (units=9000); both say ["layers", 0, "layer", "units"].
    wrapped = {"input_shape": [10, 20], "layers": [{"type": "Bidirectional", "layer": {"type": "GRU", "units": 0}}]}
    for units, said in ((0, "greater than or equal to 1"), (9000, "LAYERWISE_MAX_UNITS")):
        wrapped["layers"][0]["layer"]["units"] = units  # type: ignore[index]
        page.click("#tab-json")
        page.fill("#spec-json", json.dumps(wrapped))
        page.click("#tab-layers")
        expect(page.locator("#l0-layer-units-problem")).to_contain_text(said)
        expect(page.locator("#l0-layer-units")).to_have_attribute("aria-invalid", "true")


def test_training_draws_one_point_per_epoch_and_runs_come_back(page: Page) -> None:
    # Its screenshot 04-after-training is the README's docs/playground.png.
    pick_example(page, "seed_example_2")
    page.fill("#t-epochs", "8")
    page.fill("#t-samples", "200")
    page.fill("#t-validation_split", "0.2")
    # Record every value the chart's point count takes, as the DOM changes.
    page.evaluate(
        """() => {
            window.seenPoints = [];
            const figure = document.getElementById('chart-figure');
            new MutationObserver(() => window.seenPoints.push(Number(figure.dataset.points)))
                .observe(figure, {attributes: true, attributeFilter: ['data-points']});
        }"""
    )
    page.click("#train")
    expect(page.locator("#run-status")).to_contain_text("Succeeded: 8 of 8 epochs", timeout=90_000)
    seen = page.evaluate("window.seenPoints")
    assert [n for i, n in enumerate(seen) if i == 0 or n != seen[i - 1]] == list(range(9))
    counts = page.evaluate("Chart.getChart('loss-chart').data.datasets.map(d => d.data.length)")
    assert counts == [8, 8, 2]  # loss and val_loss, and the baseline's flat line from epoch 1 to 8
    run = page.evaluate("fetch('/v1/trainings?limit=1').then(r => r.json()).then(p => p.items[0])")
    line = page.evaluate("Chart.getChart('loss-chart').data.datasets[2].data")
    assert line == [{"x": 1, "y": run["baseline"]["val_loss"]}, {"x": 8, "y": run["baseline"]["val_loss"]}]
    expect(page.locator("#loss-chart")).to_have_attribute("aria-label", re.compile(r"baseline 0\.2"))
    # The trained model, one click away: the file GET /v1/trainings/{id}/model answers.
    with page.expect_download() as download:
        page.click("#download-model")
    assert download.value.suggested_filename == f"layerwise-{run['id']}.keras"
    assert Path(download.value.path()).stat().st_size == run["model_bytes"]
    expect(page.locator("#history-rows tr")).to_have_count(8)
    expect(page.locator("#runs li")).to_have_count(1)
    expect(page.locator("#runs .badge")).to_have_text("succeeded")
    expect(page.locator("#train")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()
    page.wait_for_timeout(400)  # the chart's last animation
    shot(page, "04-after-training", full_page=False)
    shot(page, "04-after-training-full")
    assert_accessible(page)

    # The run belongs to this browser: after a reload it is listed, and shows its chart again.
    page.reload()
    expect(page.locator("#runs li")).to_have_count(1)
    expect(page.locator("#chart-figure")).to_have_attribute("data-points", "0")
    page.click("#runs .run-show")
    expect(page.locator("#chart-figure")).to_have_attribute("data-points", "8")
    expect(page.locator("#run-status")).to_contain_text("Succeeded")

    # Readable on a narrow screen: one column, nothing wider than the viewport but the table's own scroller.
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    shot(page, "05-narrow")
    assert_accessible(page)


def test_stop_cancels_a_long_run(page: Page) -> None:
    pick_example(page, "seed_example_2")
    page.fill("#t-epochs", "5000")
    page.fill("#t-samples", "2000")
    page.click("#train")
    expect(page.locator("#stop")).to_be_enabled()
    expect(page.locator("#chart-figure")).not_to_have_attribute("data-points", "0", timeout=60_000)
    page.click("#stop")
    expect(page.locator("#run-status")).to_contain_text("Cancelled after")
    expect(page.locator("#train")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#runs li").first.locator(".badge")).to_have_text("cancelled")
    shot(page, "06-cancelled")


def test_exports_and_copy_as_curl(page: Page, server: str) -> None:
    pick_example(page, "seed_example_2")
    page.click("#export-python")
    expect(page.locator("#code-title")).to_have_text("Keras 3 Python: seed_example_2.py")
    code = page.input_value("#code-text")
    assert 'keras.layers.LSTM(units=30, return_sequences=True, name="lstm_layer")' in code
    shot(page, "07-export-python", full_page=False)
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(page.locator("#code-dialog")).to_be_hidden()
    expect(page.locator("#export-python")).to_be_focused()

    page.click("#export-json")
    expect(page.locator("#code-title")).to_have_text("Keras JSON: seed_example_2.json")
    keras_json = json.loads(page.input_value("#code-text"))
    assert keras_json["class_name"] == "Sequential"
    page.click("#code-close")

    # The curl command is exact: run it, and it answers what the table shows.
    page.fill("#t-batch_size", "64")
    expect(page.locator("#summary-figures")).to_contain_text("batch of 64")
    page.click("#curl-summary")
    expect(page.locator("#code-title")).to_have_text("curl: this summary")
    command = page.input_value("#code-text")
    assert command.startswith(f"curl -s '{server}/v1/models/summary?batch_size=64' ")
    answer = json.loads(subprocess.run(["bash", "-c", command], capture_output=True, check=True, text=True).stdout)
    assert [layer["params"] for layer in answer["layers"]] == [6120, 0, 301]
    assert answer["batch_size"] == 64
    page.click("#code-close")

    page.click("#curl-training")
    expect(page.locator("#code-title")).to_have_text("curl: this training")
    command = page.input_value("#code-text")
    assert command.startswith(f"curl -s '{server}/v1/trainings' ")
    body = json.loads(command.split(" -d ", 1)[1].strip("'"))
    assert body["model"]["name"] == "seed_example_2"
    assert body["fit"] == {"epochs": 10, "validation_split": 0.2, "batch_size": 64, "shuffle": True}


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[str]:
    """A server that wants an API key."""
    with running_server({"LAYERWISE_RUNS_DB": ":memory:", "LAYERWISE_API_KEY": "page-key"}) as base:
        yield base


def test_a_service_with_an_api_key_asks_for_it_and_then_works(
    browser: Browser, keyed_server: str, console: Console
) -> None:
    console.allow(401)  # the first calls, before the page has the key
    context = browser.new_context(viewport=WIDE, base_url=keyed_server)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    page.goto("/")
    expect(page.locator("#api-key-form")).to_be_visible()
    expect(page.locator("#api-key")).to_be_focused()
    assert_accessible(page)
    page.fill("#api-key", "page-key")
    page.keyboard.press("Enter")
    expect(page.locator("#summary-status")).to_contain_text("params")
    expect(page.locator("#api-key-form")).to_be_hidden()
    # A training's events come over fetch (EventSource cannot send the key): the chart still grows per epoch.
    pick_example(page, "seed_example_1")
    page.fill("#t-epochs", "3")
    page.click("#train")
    expect(page.locator("#run-status")).to_contain_text("Succeeded: 3 of 3 epochs", timeout=90_000)
    expect(page.locator("#chart-figure")).to_have_attribute("data-points", "3")
    # Copied curl commands leave the key to the shell.
    page.click("#curl-summary")
    assert '-H "X-API-Key: $LAYERWISE_API_KEY"' in page.input_value("#code-text")
    context.close()
    assert console.unexpected() == []


def test_the_api_docs_render_from_this_service_alone(browser: Browser, server: str, console: Console) -> None:
    # Swagger UI's files come from the package: /docs works where no CDN is reachable (as on this machine).
    context = browser.new_context(viewport=WIDE, base_url=server)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(request.url.split("/")[2]))
    page.goto("/docs")
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=30_000)
    paths = {text.strip().replace("\u200b", "") for text in page.locator(".opblock-summary-path").all_inner_texts()}
    assert {"/v1/models/summary", "/v1/trainings", "/v1/trainings/{run_id}/events"} <= paths, paths
    shot(page, "09-api-docs", full_page=False)
    context.close()
    assert origins == {server.split("/")[2]} and console.unexpected() == []


# A stateful LSTM with a fixed batch of 5: trained with shuffle=true, the service warns at fit.shuffle.
STATEFUL = {
    "name": "stateful_model",
    "batch_input_shape": [5, 10, 20],
    "layers": [{"type": "LSTM", "units": 4, "stateful": True}, {"type": "Dense", "units": 1}],
}
# Every field of a training request but the model (TrainingSpec, CompileSpec, DataSpec, FitSpec), as the loc an
# error or a warning would name it by; a list field (metrics) is named down to its item.
GROUPS = {"compile": "CompileSpec", "data": "DataSpec", "fit": "FitSpec"}
TRAINING_LOCS: list[list[str | int]] = [
    ["body", "fit", "epochs"],
    ["body", "fit", "batch_size"],
    ["body", "fit", "validation_split"],
    ["body", "fit", "shuffle"],
    ["body", "fit", "early_stopping"],  # its monitor's refusal is under it too: [..., "early_stopping", "monitor"]
    ["body", "data", "task"],
    ["body", "data", "samples"],
    ["body", "data", "timesteps"],
    ["body", "compile", "loss"],
    ["body", "compile", "loss_weights"],
    ["body", "compile", "optimizer"],
    ["body", "compile", "learning_rate"],
    ["body", "compile", "metrics", 0],
    ["body", "compile", "run_eagerly"],
    ["body", "compile", "steps_per_execution"],
    ["body", "seed"],
]


def load_json(page: Page, spec: dict[str, Any]) -> None:
    page.click("#tab-json")
    page.fill("#spec-json", json.dumps(spec))
    page.click("#tab-layers")
    if spec.get("name"):
        expect(page.locator("#summary-status")).to_contain_text(f"{spec['name']}:")


def field_of(loc: list[str | int]) -> str:
    """The training field a loc names: its last name (["body", "compile", "metrics", 0] -> "metrics")."""
    return next(str(part) for part in reversed(loc) if isinstance(part, str))


def refuse(body: str, route: Route) -> None:
    """Answer a request with a 422 of this body, as the service would for what the body's loc names."""
    route.fulfill(status=422, content_type="application/json", body=body)


def training_body(page: Page) -> dict[str, Any]:
    """The body of the training request, as the curl dialog prints it."""
    page.click("#curl-training")
    command = page.input_value("#code-text")
    page.click("#code-close")
    body: dict[str, Any] = json.loads(command.split(" -d ", 1)[1].strip("'"))
    return body


def test_every_training_field_the_service_can_name_is_on_the_form(page: Page, server: str, console: Console) -> None:
    # The form has a control for every field of the training request the OpenAPI document declares.
    components = httpx.get(f"{server}/openapi.json").json()["components"]["schemas"]
    declared: list[list[str | int]] = [
        ["body", group, name] for group, schema in GROUPS.items() for name in components[schema]["properties"]
    ] + [["body", name] for name in components["TrainingSpec"]["properties"] if name not in ("model", *GROUPS)]
    assert sorted(map(str, (loc[:3] for loc in TRAINING_LOCS))) == sorted(map(str, declared))
    for loc in TRAINING_LOCS:
        expect(page.locator(f"#t-{field_of(loc)}")).to_have_count(1)

    # shuffle: Keras's default, sent as the checkbox says.
    expect(page.locator("#t-shuffle")).to_be_checked()
    assert training_body(page)["fit"]["shuffle"] is True
    # compile.loss: a name, or one per output as JSON; loss_weights JSON; both sent as written, a typo flagged.
    assert training_body(page)["compile"]["loss"] == "mse" and "loss_weights" not in training_body(page)["compile"]
    page.fill("#t-loss", '{"a": "binary_crossentropy", "b": "mse"}')
    page.fill("#t-loss_weights", "[1, 0.5]")
    sent = training_body(page)["compile"]
    assert sent["loss"] == {"a": "binary_crossentropy", "b": "mse"} and sent["loss_weights"] == [1, 0.5]
    page.fill("#t-loss", '{"a": ')
    expect(page.locator("#t-loss-problem")).to_contain_text("Write a name (mse, mae, mape...) or JSON")
    page.fill("#t-loss", "mse")
    page.fill("#t-loss_weights", "")
    expect(page.locator("#t-loss-problem")).to_be_empty()
    assert training_body(page)["compile"]["loss"] == "mse" and "loss_weights" not in training_body(page)["compile"]

    # An error at any of them is placed under its field, not in the panel's list.
    console.allow(422)
    for loc in TRAINING_LOCS:
        name = field_of(loc)
        marker = f"refused at {'.'.join(map(str, loc))}"
        answer = json.dumps({"detail": [{"loc": loc, "msg": marker, "type": "test"}]})
        page.route("**/v1/trainings", functools.partial(refuse, answer))
        page.click("#train")
        expect(page.locator(f"#t-{name}-problem")).to_contain_text(marker)
        expect(page.locator("#training-problems")).not_to_contain_text(marker)
        page.unroute("**/v1/trainings")
    assert_accessible(page)

    # The stateful_shuffle warning names fit.shuffle: it shows at the checkbox, and unchecking it is the fix.
    load_json(page, STATEFUL)
    page.fill("#t-samples", "50")
    page.fill("#t-epochs", "1")
    page.click("#train")
    expect(page.locator("#run-status")).to_contain_text("Succeeded: 1 of 1 epochs", timeout=90_000)
    expect(page.locator("#t-shuffle-problem")).to_contain_text("set fit.shuffle to false")
    expect(page.locator("#training-problems")).not_to_contain_text("shuffle")
    shot(page, "10-shuffle-warning")
    assert_accessible(page)
    page.uncheck("#t-shuffle")
    assert training_body(page)["fit"]["shuffle"] is False
    page.click("#train")
    expect(page.locator("#runs li")).to_have_count(2)
    expect(page.locator("#run-status")).to_contain_text("Succeeded: 1 of 1 epochs", timeout=90_000)
    expect(page.locator("#t-shuffle-problem")).to_be_empty()
    # Loading the first run back sets the checkbox as that run had it.
    page.locator("#runs li").nth(1).get_by_role("button", name=re.compile("^Load")).click()
    expect(page.locator("#t-shuffle")).to_be_checked()


def test_a_training_error_goes_when_the_model_is_another(page: Page, console: Console) -> None:
    console.allow(422)
    # A training refused for this model (a stateful batch of 5 and 52 samples) ...
    load_json(page, STATEFUL)
    page.fill("#t-samples", "52")
    page.fill("#t-validation_split", "0")
    page.click("#train")
    expect(page.locator("#run-status")).to_contain_text("refused")
    expect(page.locator("#t-samples-problem")).to_contain_text("exactly 5 samples")
    # ... is gone once the model is another one: loaded, or edited.
    pick_example(page, "seed_example_2")
    expect(page.locator("#run-status")).not_to_contain_text("refused")
    expect(page.locator("#run-status")).not_to_have_class(re.compile(r"\berror\b"))
    expect(page.locator("#t-samples-problem")).to_be_empty()
    expect(page.locator("#training-problems")).to_be_empty()
    load_json(page, STATEFUL)
    page.click("#train")
    expect(page.locator("#t-samples-problem")).to_contain_text("exactly 5 samples")
    page.fill("#l0-units", "6")
    expect(page.locator("#summary-status")).to_contain_text("stateful_model:")
    expect(page.locator("#run-status")).not_to_contain_text("refused")
    expect(page.locator("#t-samples-problem")).to_be_empty()


def test_an_invalid_sample_shape_says_so_and_shows_no_stale_summary(page: Page) -> None:
    # An invalid sample shape says so at the field, and the summary of the last valid one is not shown as current.
    pick_example(page, "seed_example_2")
    for typed in ("None, 20", ", 20", "10,, 20"):
        page.fill("#input-dims", typed)
        expect(page.locator("#input-dims")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#input-dims-problem")).not_to_be_empty()
        expect(page.locator("#summary-status")).not_to_contain_text("params")
        expect(page.locator("#summary-status")).not_to_have_class(re.compile(r"\bok\b"))
        expect(page.locator("#summary-rows tr[data-index]")).to_have_count(0)
        expect(page.locator("#total-params")).to_have_count(0)
        expect(page.locator("#l0-result")).to_be_empty()
    # Editing another field keeps it so (the spec lacks what the shape box shows), and Train does not send it.
    page.fill("#l0-units", "30")
    page.wait_for_timeout(600)  # past the summary's debounce
    expect(page.locator("#summary-rows tr[data-index]")).to_have_count(0)
    page.click("#train")
    expect(page.locator("#run-status")).to_contain_text("Not started: the sample shape")
    expect(page.locator("#runs li")).to_have_count(0)
    page.click("#curl-summary")  # a copied request is of the last valid model, and says so
    expect(page.locator("#code-note")).to_contain_text("Of the last valid model, not of the form")
    page.click("#code-close")
    shot(page, "11-invalid-shape")
    assert_accessible(page)
    page.fill("#input-dims", "10, 20")
    expect(page.locator("#summary-status")).to_contain_text("seed_example_2:")
    expect(page.locator("#total-params")).to_have_text("6,421")
    expect(page.locator("#input-dims-problem")).to_be_empty()


def test_after_a_reload_the_training_panel_speaks_of_the_past_runs(page: Page, server: str) -> None:
    # After a reload, past runs listed below: the panel says so, not "No run yet".
    pick_example(page, "seed_example_2")
    run = httpx.post(
        f"{server}/v1/trainings?wait=60",
        json={"model": spec_json(page), "fit": {"epochs": 1}, "data": {"samples": 20}},
        timeout=90,
    ).json()
    page.evaluate("(id) => localStorage.setItem('layerwise.runs', JSON.stringify([id]))", run["id"])
    page.reload()
    expect(page.locator("#runs li")).to_have_count(1)
    expect(page.locator("#run-status")).to_contain_text("1 past run below")
    expect(page.locator("#run-status")).not_to_contain_text("No run yet")
    shot(page, "12-after-reload")


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["wide", "narrow"])
def test_the_curl_dialog_shows_the_whole_command_from_its_start(page: Page, viewport: ViewportSize) -> None:
    page.set_viewport_size(viewport)
    pick_example(page, "seed_example_2")
    for button in ("#curl-training", "#curl-summary"):
        page.click(button)
        text = page.locator("#code-text")
        expect(text).to_be_visible()
        assert page.input_value("#code-text").startswith("curl -s ")
        box = text.evaluate(
            "t => ({left: t.scrollLeft, top: t.scrollTop, width: t.scrollWidth, client: t.clientWidth,"
            " right: t.getBoundingClientRect().right, viewport: innerWidth})"
        )
        assert box["left"] == 0 and box["top"] == 0, box  # scrolled to the start
        assert box["width"] <= box["client"], box  # wrapped: no horizontal scrolling
        assert box["right"] <= box["viewport"], box  # inside the screen
        shot(page, f"13-curl-dialog-{'wide' if viewport is WIDE else 'narrow'}", full_page=False)
        assert_accessible(page)
        page.click("#code-close")


def test_a_graph_example_summarizes_draws_and_trains(page: Page) -> None:
    pick_example(page, "seq2seq")
    rows = table(page)
    assert rows[:2] == [("encoder_inputs", "(None, None, 71)", "0"), ("decoder_inputs", "(None, None, 93)", "0")]
    assert ("decoder_lstm", "(None, None, 256)", "358,400") in rows
    expect(page.locator("#total-params")).to_have_text("718,173")
    decoder = page.locator("#summary-rows tr[data-index='3']")
    expect(decoder.locator(".lname")).to_have_text("decoder_lstm")
    expect(decoder.locator(".lfrom")).to_have_text(" ← decoder_inputs, encoder:1, encoder:2")
    # The form has no Sequential input box for a graph; the cards still show their rows, found by name.
    expect(page.locator("#input-section")).to_be_hidden()
    expect(page.locator("#graph-note")).to_be_visible()
    expect(page.locator("#l1-result")).to_have_text("→ (None, None, 256) · 358,400 params")
    assert spec_json(page)["inputs"][0]["name"] == "encoder_inputs"
    # The diagram: Keras's plot_model, as an SVG image that loaded.
    image = page.locator("#diagram-image")
    expect(image).to_have_attribute("alt", re.compile("decoder_lstm"))
    expect(image).to_be_visible()
    page.wait_for_function("document.getElementById('diagram-image').naturalWidth > 100")
    shot(page, "06-graph-model")
    assert_accessible(page)

    # A small graph trains, with one array per input (the playground sends the model as it is).
    small = {
        "inputs": [{"name": "a", "shape": [4, 3]}, {"name": "b", "shape": [4, 3]}],
        "layers": [
            {"type": "Add", "name": "sum", "inputs": ["a", "b"]},
            {"type": "LSTM", "name": "enc", "units": 4},
            {"type": "Dense", "name": "out", "units": 1, "activation": "sigmoid"},
        ],
        "outputs": ["out"],
    }
    load_json(page, small)
    expect(page.locator("#total-params")).to_have_text(f"{4 * 4 * (3 + 4 + 1) + 5:,}")
    page.fill("#t-epochs", "2")
    page.click("#train")
    expect(page.locator("#run-status")).to_contain_text("Succeeded: 2 of 2 epochs", timeout=90_000)


def test_runs_compare_on_one_chart_and_a_run_gives_its_script(page: Page) -> None:
    pick_example(page, "seed_example_1")
    page.fill("#t-samples", "64")
    for epochs, rate in (("3", "0.01"), ("5", "0.001")):
        page.fill("#t-epochs", epochs)
        page.fill("#t-learning_rate", rate)
        page.click("#train")
        expect(page.locator("#run-status")).to_contain_text(f"Succeeded: {epochs} of {epochs} epochs", timeout=90_000)
    expect(page.locator("#runs li")).to_have_count(2)
    expect(page.locator("#runs-compare-hint")).to_be_visible()
    runs = page.evaluate("fetch('/v1/trainings?limit=2').then(r => r.json()).then(p => p.items)")

    # Both past runs beside the shown one (the second): each a line of its own, its val_loss per epoch.
    boxes = page.locator("#runs input.run-compare-box")
    boxes.nth(0).check()
    boxes.nth(1).check()
    lines = page.evaluate(
        "Chart.getChart('loss-chart').data.datasets.slice(3).map(d => [d.label, d.data.map(p => p.y), d.borderColor])"
    )
    by_id = {run["id"]: run for run in runs}
    order = [page.locator("#runs input.run-compare-box").nth(i).get_attribute("value") for i in range(2)]
    assert [values for _, values, _ in lines] == [by_id[i]["history"]["val_loss"] for i in order]
    assert all(label.endswith(": val_loss") for label, _, _ in lines) and lines[0][2] != lines[1][2]
    assert page.evaluate("Chart.getChart('loss-chart').options.scales.x.max") == 5
    expect(page.locator("#loss-chart")).to_have_attribute("aria-label", re.compile("compared: .+; .+ last "))
    assert_accessible(page)
    shot(page, "07-compared-runs")
    boxes.nth(0).uncheck()
    assert page.evaluate("Chart.getChart('loss-chart').data.datasets.length") == 4

    # The shown run as a script, in the code dialog: the run's seed, its data and its fit.
    page.click("#show-script")
    expect(page.locator("#code-dialog")).to_be_visible()
    expect(page.locator("#code-title")).to_contain_text("Keras 3 script: run ")
    text = page.locator("#code-text").input_value()
    assert "keras.utils.set_random_seed(SEED)" in text and "history = model.fit(" in text and "epochs=5," in text
    with page.expect_download() as download:
        page.click("#code-download")
    assert download.value.suggested_filename.endswith(".py")


def test_a_built_in_s_name_is_written_bare_and_an_object_as_json(page: Page, console: Console) -> None:
    """Initializers, regularizers and constraints: a name from the list, or {class_name, config} (issue 14)."""
    pick_example(page, "seed_example_1")
    box = page.locator("#l0-kernel_initializer")
    expect(box).to_have_value("glorot_uniform")  # the default, bare, not "\"glorot_uniform\""
    assert page.locator("#l0-kernel_initializer-names option").count() >= 10
    box.fill("he_normal")
    expect(page.locator("#summary-status")).not_to_contain_text("rror")
    assert spec_json(page)["layers"][0]["kernel_initializer"] == "he_normal"
    box.fill('{"class_name": "RandomNormal", "config": {"stddev": 0.001}}')
    page.wait_for_function(
        "JSON.parse(document.getElementById('spec-json').value).layers[0].kernel_initializer.class_name"
        " === 'RandomNormal'"
    )
    regularizer = page.locator("#l0-kernel_regularizer")
    expect(regularizer).to_have_value("null")
    regularizer.fill("l2")
    page.wait_for_function(
        "JSON.parse(document.getElementById('spec-json').value).layers[0].kernel_regularizer === 'l2'"
    )
    expect(page.locator("#total-params")).to_have_text("6,151")  # the same model: no shape changed
