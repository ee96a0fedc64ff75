// The training panel: settings, Train and Stop, the live loss chart, and this browser's past runs.
//
// A run is started with POST /v1/trainings (202 and the queued run), followed with its event stream (one `epoch`
// event per epoch: a point on the chart), stopped with DELETE, and read back with GET. The ids of the runs this
// browser started are kept in localStorage; the runs themselves are always read from the service.

import { ApiError, cancelRun, followRun, getRun, startTraining } from "./api.js";
import { byId, formatInt, formatLoss, h, loadLocal, saveLocal } from "./dom.js";

const RUNS_KEY = "layerwise.runs";
const MAX_RUNS = 20;
const FINAL = new Set(["succeeded", "failed", "cancelled", "timed_out", "interrupted"]);
// The page starts with more than the API's defaults (1 epoch, no validation): a chart needs a few points and
// val_loss needs a validation split.
const PAGE_DEFAULTS = { epochs: 10, validation_split: 0.2 };

export class TrainingPanel {
  /**
   * @param {ReturnType<import("./schema.js").readSchema>} schema
   * @param {{spec: () => object, problems: (items: object[]) => void, loadRun: (run: object) => void,
   *          settingsChanged: () => void}} page
   */
  constructor(schema, page) {
    this.schema = schema;
    this.page = page;
    this.current = null; // {id, stream}
    this.shown = null; // the id of the run on the chart
    this.form = byId("training-form");
    this.trainButton = byId("train");
    this.stopButton = byId("stop");
    this.status = byId("run-status");
    this.progress = byId("run-progress");
    this.problems = byId("training-problems");
    this.chart = this.makeChart();
    this.setupFields();
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.train();
    });
    this.stopButton.addEventListener("click", () => this.stop());
    this.renderRuns();
  }

  // -- settings ------------------------------------------------------------------------------------------------

  /** Bounds, defaults and choices of the settings come from the schema (CompileSpec, DataSpec, FitSpec). */
  setupFields() {
    const { compile, data, fit, top } = this.schema.training;
    const fields = {
      samples: data.samples,
      epochs: fit.epochs,
      batch_size: fit.batch_size,
      loss: compile.loss,
      optimizer: compile.optimizer,
      learning_rate: compile.learning_rate,
      validation_split: fit.validation_split,
      seed: top.seed,
    };
    this.fields = fields;
    for (const [name, field] of Object.entries(fields)) {
      const input = byId(`t-${name}`);
      if (field.kind === "enum") {
        input.replaceChildren(...field.options.map((o) => h("option", { value: o }, o)));
        input.value = field.default;
      } else {
        if (field.minimum !== undefined) input.min = String(field.minimum);
        if (field.exclusiveMinimum !== undefined) input.min = String(field.exclusiveMinimum);
        if (field.maximum !== undefined) input.max = String(field.maximum);
        const start = PAGE_DEFAULTS[name] ?? field.default;
        input.value = start === null || start === undefined ? "" : String(start);
      }
      if (field.description) input.title = field.description;
      input.addEventListener("input", () => this.page.settingsChanged());
    }
  }

  /** The settings as they are now: {name: value} (undefined for an empty optional box). */
  settings() {
    const out = {};
    for (const [name, field] of Object.entries(this.fields)) {
      const raw = byId(`t-${name}`).value;
      out[name] = field.kind === "enum" ? raw : raw === "" ? undefined : Number(raw);
    }
    return out;
  }

  /** Fill the settings from a run's request (a past run loaded again). */
  setSettings(request) {
    const values = {
      samples: request.data?.samples,
      epochs: request.fit?.epochs,
      batch_size: request.fit?.batch_size,
      loss: request.compile?.loss,
      optimizer: request.compile?.optimizer,
      learning_rate: request.compile?.learning_rate,
      validation_split: request.fit?.validation_split,
      seed: request.seed,
    };
    for (const [name, value] of Object.entries(values)) {
      byId(`t-${name}`).value = value === null || value === undefined ? "" : String(value);
    }
    this.page.settingsChanged();
  }

  /** The body of POST /v1/trainings for the current model and settings. */
  request() {
    const s = this.settings();
    const compile = { loss: s.loss, optimizer: s.optimizer };
    if (s.learning_rate !== undefined) compile.learning_rate = s.learning_rate;
    const fit = { epochs: s.epochs, validation_split: s.validation_split ?? 0 };
    if (s.batch_size !== undefined) fit.batch_size = s.batch_size;
    return { model: this.page.spec(), compile, data: { samples: s.samples }, fit, seed: s.seed ?? 0 };
  }

  // -- a run ---------------------------------------------------------------------------------------------------

  async train() {
    if (this.current) return;
    this.showProblems([]);
    this.clearSettingProblems();
    this.trainButton.disabled = true;
    let started;
    try {
      started = await startTraining(this.request());
    } catch (error) {
      this.trainButton.disabled = false;
      if (!(error instanceof ApiError)) throw error;
      this.refused(error);
      return;
    }
    const { run } = started;
    rememberRun(run.id);
    this.begin(run);
    this.renderRuns();
  }

  /** The service refused the run: model errors go next to the layers, settings errors next to the settings. */
  refused(error) {
    const model = [];
    const other = [];
    for (const item of error.detail) {
      if (item.loc[0] === "body" && item.loc[1] === "model") model.push({ ...item, loc: item.loc.slice(2) });
      else other.push(item);
    }
    if (model.length) this.page.problems(model.map((item) => ({ ...item, severity: "error" })));
    const headline =
      error.status === 429
        ? `Too many runs are waiting; try again in ${error.retryAfter ?? "a few"} seconds.`
        : error.status === 0
          ? "The server did not answer."
          : `The service refused this training (${error.status}).`;
    this.setStatus(headline, "error");
    const unplaced = other.filter((item) => !this.placeSettingProblem(item));
    this.showProblems([...unplaced, ...model.map((m) => ({ ...m, msg: `model: ${m.msg}` }))]);
  }

  /** A refusal that names a setting (["body", "fit", "batch_size"]) goes under that setting's box. */
  placeSettingProblem(item) {
    const name = item.loc.at(-1);
    const group = item.loc.length === 2 ? "top" : item.loc[1];
    const known = { top: ["seed"], data: ["samples"], compile: ["loss", "optimizer", "learning_rate"],
      fit: ["epochs", "batch_size", "validation_split"] };
    if (item.loc[0] !== "body" || !known[group]?.includes(name)) return false;
    const input = byId(`t-${name}`);
    input.setAttribute("aria-invalid", "true");
    byId(`t-${name}-problem`).textContent = item.msg;
    return true;
  }

  clearSettingProblems() {
    for (const name of Object.keys(this.fields)) {
      byId(`t-${name}`).removeAttribute("aria-invalid");
      byId(`t-${name}-problem`).textContent = "";
    }
  }

  /** Show a run that is queued or running on the chart, and follow it to its end. */
  begin(run) {
    this.current?.stream.close();
    this.shown = run.id;
    this.resetChart(run.epochs);
    this.drawHistory(run.history);
    this.trainButton.disabled = true;
    this.stopButton.disabled = false;
    this.describe(run);
    const id = run.id;
    const stream = followRun(id, {
      status: (data) => {
        if (this.shown === id) this.setStatus(statusText({ ...run, status: data.status }), "busy");
      },
      batch: (data) => {
        if (this.shown !== id) return;
        this.progress.max = data.batches * data.epochs;
        this.progress.value = (data.epoch - 1) * data.batches + data.batch;
        this.setStatus(
          `Running: epoch ${data.epoch} of ${data.epochs}, batch ${data.batch} of ${data.batches}, loss ${formatLoss(data.loss)}`,
          "busy",
        );
      },
      epoch: (data) => {
        if (this.shown === id) this.addPoint(data.epoch, data.logs);
      },
      end: ({ run: ended }) => this.finish(ended),
      lost: async () => {
        // The stream could not be (re)opened: read the run once and show what it says.
        try {
          this.finish(await getRun(id));
        } catch (error) {
          this.finish({ ...run, status: "interrupted", error: { kind: "lost", msg: error.message } });
        }
      },
    });
    this.current = { id, stream };
  }

  finish(run) {
    if (this.current?.id === run.id) {
      this.current.stream.close();
      this.current = null;
      this.trainButton.disabled = false;
      this.stopButton.disabled = true;
    }
    if (this.shown === run.id) this.show(run);
    this.renderRuns();
  }

  async stop() {
    if (!this.current) return;
    const { id } = this.current;
    this.stopButton.disabled = true;
    this.setStatus("Stopping at the next batch…", "busy");
    try {
      this.finish(await cancelRun(id));
    } catch (error) {
      // 409: it ended on its own meanwhile; its `end` event says how.
      if (!(error instanceof ApiError) || error.status !== 409) {
        this.stopButton.disabled = false;
        this.setStatus(`Could not stop the run: ${error.message}`, "error");
      }
    }
  }

  /** Show a finished (or still running) run: its history on the chart and what it ended as. */
  show(run) {
    const onChart = this.shown === run.id;
    this.shown = run.id;
    if (!FINAL.has(run.status)) {
      this.begin(run);
      return;
    }
    // The run that just ended is on the chart already; redraw only if its history says more (a stop mid-epoch
    // records that epoch too) or another run is shown.
    if (!onChart || this.chart.data.datasets[0].data.length !== (run.history?.loss ?? []).length) {
      this.resetChart(run.epochs);
      this.drawHistory(run.history);
    }
    this.describe(run);
    this.progress.max = 1;
    this.progress.value = run.status === "succeeded" ? 1 : 0;
    const warnings = (run.summary?.warnings ?? []).map((w) => ({ ...w, severity: "warning" }));
    this.showProblems(run.error ? [{ loc: [], msg: run.error.msg, type: run.error.kind }, ...warnings] : warnings);
    this.setStatus(statusText(run), run.status === "succeeded" ? "ok" : run.status === "cancelled" ? "warning" : "error");
    byId("runs").querySelectorAll("[aria-current]").forEach((node) => node.removeAttribute("aria-current"));
    document.getElementById(`run-${run.id}`)?.setAttribute("aria-current", "true");
  }

  describe(run) {
    byId("run-id").textContent = `Run ${run.id}`;
    byId("run-id").hidden = false;
    this.status.dataset.status = run.status;
    this.setStatus(statusText(run), FINAL.has(run.status) ? "ok" : "busy");
  }

  setStatus(text, tone) {
    this.status.textContent = text;
    this.status.className = `status ${tone}`;
  }

  showProblems(items) {
    this.problems.replaceChildren(
      ...items.map((item) =>
        h("p", { class: `problem ${item.severity ?? "error"}` },
          h("strong", {}, `${item.severity === "warning" ? "Warning" : "Error"}${locLabel(item.loc)}: `), item.msg,
          item.fix ? h("span", { class: "fix" }, ` Fix: ${item.fix}`) : null),
      ),
    );
  }

  // -- the chart -----------------------------------------------------------------------------------------------

  makeChart() {
    const Chart = window.Chart; // vendor/chart.umd.min.js (Chart.js 4), loaded before this module
    const style = getComputedStyle(document.documentElement);
    const color = (name) => style.getPropertyValue(name).trim();
    Chart.defaults.color = color("--muted");
    Chart.defaults.borderColor = color("--grid");
    Chart.defaults.font.family = style.fontFamily;
    const reduceMotion = matchMedia("(prefers-reduced-motion: reduce)").matches;
    const line = (label, stroke, dash) => ({
      label, data: [], borderColor: stroke, backgroundColor: stroke, borderDash: dash, pointRadius: 3,
      borderWidth: 2, tension: 0, spanGaps: false, clip: false, // the first and last points whole, not halved
    });
    return new Chart(byId("loss-chart"), {
      type: "line",
      data: { datasets: [line("loss", color("--series-1"), []), line("val_loss", color("--series-2"), [6, 4])] },
      options: {
        animation: reduceMotion ? false : { duration: 200 },
        maintainAspectRatio: false,
        parsing: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { type: "linear", min: 1, max: 10, title: { display: true, text: "epoch" }, ticks: { precision: 0, stepSize: 1 } },
          y: { title: { display: true, text: "loss" }, beginAtZero: false },
        },
        plugins: { legend: { position: "top", align: "end", labels: { boxHeight: 2 } } },
      },
    });
  }

  resetChart(epochs) {
    for (const dataset of this.chart.data.datasets) dataset.data = [];
    const x = this.chart.options.scales.x;
    x.max = Math.max(2, epochs);
    x.ticks.stepSize = epochs <= 20 ? 1 : undefined; // every epoch labelled while they fit
    this.chart.update("none");
    byId("history-rows").replaceChildren();
    this.updateChartLabel();
  }

  drawHistory(history) {
    const epochs = (history?.loss ?? []).length;
    for (let i = 0; i < epochs; i += 1) {
      this.addPoint(i + 1, { loss: history.loss[i], val_loss: history.val_loss?.[i] }, false);
    }
    this.chart.update();
  }

  /** One epoch's logs: a point per series on the chart, a row in the table under it. */
  addPoint(epoch, logs, update = true) {
    const [loss, valLoss] = this.chart.data.datasets;
    // A follower first gets the stored events it missed: an epoch drawn already from the run's history.
    if (loss.data.some((point) => point.x === epoch)) return;
    loss.data.push({ x: epoch, y: logs.loss ?? null });
    if (logs.val_loss !== undefined) valLoss.data.push({ x: epoch, y: logs.val_loss ?? null });
    byId("history-rows").append(
      h("tr", {}, h("th", { scope: "row" }, String(epoch)), h("td", { class: "num" }, formatLoss(logs.loss)),
        h("td", { class: "num" }, formatLoss(logs.val_loss))),
    );
    if (update) this.chart.update();
    this.updateChartLabel();
  }

  updateChartLabel() {
    const [loss, valLoss] = this.chart.data.datasets;
    const points = loss.data.length;
    const figure = byId("chart-figure");
    figure.dataset.points = String(points);
    const last = loss.data.at(-1)?.y;
    const lastVal = valLoss.data.at(-1)?.y;
    byId("loss-chart").setAttribute(
      "aria-label",
      points
        ? `Loss per epoch, ${points} epoch${points === 1 ? "" : "s"}: last loss ${formatLoss(last)}` +
            (lastVal !== undefined ? `, last val_loss ${formatLoss(lastVal)}` : "")
        : "Loss per epoch: no run yet",
    );
  }

  // -- past runs -----------------------------------------------------------------------------------------------

  /** This browser's runs, newest first, each read from the service; runs the service no longer has are dropped. */
  async renderRuns() {
    const ids = loadLocal(RUNS_KEY, []);
    const list = byId("runs");
    const runs = await Promise.all(
      ids.map((id) =>
        getRun(id).catch((error) => (error instanceof ApiError && error.status === 404 ? null : { id, unreadable: true })),
      ),
    );
    saveLocal(RUNS_KEY, ids.filter((_, i) => runs[i] !== null));
    const items = runs.filter(Boolean).map((run) => this.runItem(run));
    list.replaceChildren(...items);
    byId("runs-empty").hidden = items.length > 0;
  }

  runItem(run) {
    if (run.unreadable) return h("li", {}, h("span", { class: "muted" }, `${run.id}: could not be read just now`));
    const loss = run.history?.loss?.at(-1);
    const when = new Date(run.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const name = run.request?.model?.name ?? "model";
    const item = h(
      "li",
      { id: `run-${run.id}`, class: `run run-${run.status}`, "aria-current": run.id === this.shown ? "true" : null },
      h("button", {
        type: "button", class: "run-show", onclick: () => this.show(run),
        "aria-label": `Show run of ${name} at ${when}: ${run.status}`,
      },
      h("span", { class: "run-name" }, name),
      h("span", { class: `badge ${run.status}` }, run.status.replace("_", " ")),
      h("span", { class: "run-meta" }, `${when} · ${run.epochs_completed}/${run.epochs} epochs · loss ${formatLoss(loss)}`)),
      h("button", {
        type: "button", class: "link", onclick: () => this.page.loadRun(run),
        "aria-label": `Load the model and settings of the run of ${name} at ${when}`,
      }, "Load"),
    );
    return item;
  }
}

/** Remember a run this browser started (newest first, at most MAX_RUNS). */
function rememberRun(id) {
  const ids = loadLocal(RUNS_KEY, []).filter((x) => x !== id);
  saveLocal(RUNS_KEY, [id, ...ids].slice(0, MAX_RUNS));
}

function statusText(run) {
  const done = `${run.epochs_completed ?? 0} of ${run.epochs} epochs`;
  const loss = run.history?.loss?.at(-1);
  const val = run.history?.val_loss?.at(-1);
  const losses = loss === undefined ? "" : `, loss ${formatLoss(loss)}` + (val === undefined ? "" : `, val_loss ${formatLoss(val)}`);
  switch (run.status) {
    case "queued":
      return "Queued: waiting for a training worker…";
    case "running":
      return `Running: ${done}${losses}`;
    case "succeeded":
      return `Succeeded: ${done} in ${run.duration_s?.toFixed(1)} s${losses} (${formatInt(run.samples)} samples, batch ${run.batch_size}${run.execution ? `, ${run.execution}` : ""})`;
    case "cancelled":
      return `Cancelled after ${done}${losses}`;
    case "timed_out":
      return `Timed out after ${done}${losses}`;
    case "interrupted":
      return `Interrupted (the server stopped) after ${done}`;
    default:
      return `Failed after ${done}${run.diverged ? ": the loss diverged" : ""}`;
  }
}

function locLabel(loc) {
  const parts = (loc ?? []).filter((p) => p !== "body");
  return parts.length ? ` (${parts.join(".")})` : "";
}
