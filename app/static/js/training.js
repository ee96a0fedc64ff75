// The training panel: settings, Train and Stop, the live loss chart, and this browser's past runs.
//
// A run is started with POST /v1/trainings (202 and the queued run), followed with its event stream (one `epoch`
// event per epoch: a point on the chart), stopped with DELETE, and read back with GET. The ids of the runs this
// browser started are kept in localStorage; the runs themselves are always read from the service.

import { ApiError, cancelRun, followRun, getRun, getRunModel, getRunScript, startTraining } from "./api.js";
import { byId, formatInt, formatLoss, h, loadLocal, saveLocal } from "./dom.js";
import { problemNode } from "./editor.js";

const RUNS_KEY = "layerwise.runs";
const MAX_RUNS = 20;
// The page starts with more than the API's defaults (1 epoch, no validation): a chart needs a few points and
// val_loss needs a validation split.
const PAGE_DEFAULTS = { epochs: 10, validation_split: 0.2 };
// The groups of a training request's settings; then the body's own fields (seed).
const GROUPS = ["data", "fit", "compile"];
// The order of the form: boxes and choices two by two, then the check boxes; a field not named here comes last.
const ORDER = ["task", "samples", "epochs", "batch_size", "validation_split", "loss", "loss_weights", "optimizer",
  "learning_rate", "seed", "steps_per_execution", "shuffle", "run_eagerly", "early_stopping", "metrics"];
const NULL_OPTION = "__null__";
const PLACEHOLDERS = {
  batch_size: "auto", learning_rate: "Keras default", steps_per_execution: "auto", loss_weights: "1 for every output",
};
const STEPS = { validation_split: "0.05" };
// Runs drawn beside the shown one, each in its own colour (--compare-1 ... in app.css).
const MAX_COMPARED = 4;
// The chart's own series: loss, val_loss and the baseline; compared runs come after them.
const OWN_SERIES = 3;

export class TrainingPanel {
  /**
   * @param {ReturnType<import("./schema.js").readSchema>} schema
   * @param {{spec: () => object, problems: (items: object[]) => void, loadRun: (run: object) => void,
   *          settingsChanged: () => void, showCode: (options: object) => void}} page
   */
  constructor(schema, page) {
    this.schema = schema;
    this.page = page;
    this.current = null; // {id, stream}
    this.shown = null; // the id of the run on the chart
    this.idle = true; // the status says only what there is to do (no run shown, no refusal)
    this.refusal = false; // the status is the service's refusal of the last Train
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
    this.downloadButton = byId("download-model");
    this.downloadButton.addEventListener("click", () => this.downloadModel());
    this.scriptButton = byId("show-script");
    this.scriptButton.addEventListener("click", () => this.showScript());
    this.compared = new Map(); // run id -> the run, drawn beside the shown one, in the order ticked
    this.showIdle();
    this.renderRuns();
  }

  // -- settings ------------------------------------------------------------------------------------------------

  /** One control per field of the training request, in the request's own words, with the bounds, defaults and
   *  choices of its schema (DataSpec, FitSpec, CompileSpec, TrainingSpec's seed): every field the service can name
   *  in an error or a warning can be set here, and a field added to the schema shows up with no change here. */
  setupFields() {
    const { top } = this.schema.training;
    /** name -> {group, field}; group is "data", "fit", "compile", or null for a field of the body itself. */
    this.fields = new Map();
    for (const group of GROUPS) {
      for (const [name, field] of Object.entries(this.schema.training[group])) this.fields.set(name, { group, field });
    }
    for (const [name, field] of Object.entries(top)) {
      if (!["model", ...GROUPS].includes(name)) this.fields.set(name, { group: null, field });
    }
    const rank = (name) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);
    this.fields = new Map([...this.fields].sort(([a], [b]) => rank(a) - rank(b))); // a stable sort
    this.form.replaceChildren(...[...this.fields].map(([name, { field }]) => this.settingControl(name, field)));
  }

  /** The control of one setting, labelled with its field name, and the slot for what the service says of it. */
  settingControl(name, field) {
    const id = `t-${name}`;
    const problem = h("div", { class: "field-problem", id: `${id}-problem` });
    const changed = () => {
      // What the service said of this setting was about the value just changed; a refusal with nothing left to
      // say is over.
      this.clearSettingProblem(name);
      if (this.refusal && !this.problems.children.length && !this.form.querySelector(".field-problem:not(:empty)")) {
        this.showIdle();
      }
      this.page.settingsChanged();
    };
    const title = field.description || null;
    if (field.kind === "enum-list") {
      // A list of choices (compile's metrics): one check box each, in a group named by the field.
      const boxes = field.options.map((option) =>
        h("label", { class: "check" },
          h("input", { type: "checkbox", value: option, onchange: changed }), h("code", {}, option)));
      return h("fieldset", { class: "setting setting-list", id, title, "aria-describedby": problem.id },
        h("legend", {}, name), h("div", { class: "choices" }, boxes), problem);
    }
    let control;
    if (field.kind === "name-or-json" || (field.kind === "json" && !field.object)) {
      // A value Keras takes in several forms (compile's loss: one name, or one per output as a list or an object
      // keyed by output name; loss_weights): a name is written bare, anything else as JSON.
      const named = field.kind === "name-or-json";
      control = h("input", {
        type: "text", id, spellcheck: "false", list: named ? `${id}-names` : null, "aria-describedby": problem.id,
        title, placeholder: PLACEHOLDERS[name] ?? null,
      });
      control.addEventListener("input", () => {
        changed();
        if (this.readText(field, control.value) === undefined) {
          problem.textContent = named
            ? `Write a name (${field.options.slice(0, 3).join(", ")}...) or JSON: a list, or an object keyed by output.`
            : "Write JSON: a list, or an object keyed by output.";
        }
      });
      this.setValue(name, field, control, field.default);
      const names = named ? h("datalist", { id: `${id}-names` }, field.options.map((n) => h("option", { value: n }))) : null;
      return h("div", { class: "setting" }, h("label", { for: id }, name), control, names, problem);
    }
    if (field.kind === "json") {
      // An optional object of settings (fit's early_stopping): ticked sends {} (Keras's defaults), else nothing.
      control = h("input", { type: "checkbox", id, "aria-describedby": problem.id, title });
      control.addEventListener("change", changed);
      return h("div", { class: "setting setting-check" }, h("label", { class: "check", for: id }, control, name), problem);
    }
    if (field.kind === "boolean" && !field.nullable) {
      control = h("input", { type: "checkbox", id, checked: Boolean(field.default), "aria-describedby": problem.id, title });
      control.addEventListener("change", changed);
      return h("div", { class: "setting setting-check" }, h("label", { class: "check", for: id }, control, name), problem);
    }
    if (field.kind === "enum" || field.kind === "boolean") {
      // A nullable boolean (compile's run_eagerly) is a choice of three: null lets the service choose.
      const options = field.kind === "boolean" ? [true, false] : field.options;
      control = h(
        "select",
        { id, "aria-describedby": problem.id, title },
        field.nullable ? h("option", { value: NULL_OPTION }, "auto (None)") : null,
        options.map((option) => h("option", { value: String(option) }, String(option))),
      );
    } else {
      const integer = field.kind === "integer";
      control = h("input", {
        type: "number", id, step: integer ? "1" : (STEPS[name] ?? "any"), inputmode: integer ? "numeric" : "decimal",
        min: field.minimum ?? field.exclusiveMinimum, max: field.maximum, placeholder: PLACEHOLDERS[name] ?? null,
        "aria-describedby": problem.id, title,
      });
    }
    control.addEventListener(control.tagName === "SELECT" ? "change" : "input", changed);
    const start = PAGE_DEFAULTS[name] ?? field.default;
    this.setValue(name, field, control, start);
    let hint = null;
    if (name === "task") {
      // One line on the chosen task: the first sentence of its paragraph in the field's description
      // ("adding: The adding problem: ... ."), so the picker says what each task is.
      hint = h("p", { class: "hint", id: `${id}-hint` });
      const say = () => {
        const paragraph = (field.description ?? "").split("\n\n").find((p) => p.startsWith(`${control.value}: `));
        hint.textContent = paragraph ? paragraph.slice(control.value.length + 2).split(". ")[0] + "." : "";
      };
      control.addEventListener("change", say);
      control.sayHint = say; // setValue() changes the value without a change event
      control.setAttribute("aria-describedby", `${problem.id} ${hint.id}`);
      say();
    }
    return h("div", { class: "setting" }, h("label", { for: id }, name), control, hint, problem);
  }

  /** Show a value in a setting's control (null or undefined: the field's own default). */
  setValue(name, field, control = byId(`t-${name}`), value = undefined) {
    const v = value === undefined || value === null ? (field.nullable ? null : field.default) : value;
    if (field.kind === "name-or-json" || (field.kind === "json" && !field.object)) {
      const bare = field.kind === "name-or-json" && typeof v === "string";
      control.value = v === null || v === undefined ? "" : bare ? v : JSON.stringify(v);
    } else if (field.kind === "enum-list") {
      const chosen = new Set(Array.isArray(v) ? v : []);
      for (const box of control.querySelectorAll("input[type=checkbox]")) box.checked = chosen.has(box.value);
    } else if (field.kind === "json") {
      control.checked = v !== null && v !== undefined && v !== false;
      control.dataset.value = JSON.stringify(control.checked ? (typeof v === "object" ? v : {}) : null);
    } else if (field.kind === "boolean" && !field.nullable) {
      control.checked = Boolean(v);
    } else if (field.kind === "enum" || field.kind === "boolean") {
      control.value = v === null || v === undefined ? (field.nullable ? NULL_OPTION : String(field.options[0])) : String(v);
      control.sayHint?.();
    } else {
      control.value = v === null || v === undefined ? "" : String(v);
    }
  }

  /** The value a setting's control holds: null for an empty optional box or "auto". */
  getValue(name, field) {
    const control = byId(`t-${name}`);
    if (field.kind === "name-or-json" || (field.kind === "json" && !field.object)) {
      // What cannot be read is sent as written: the service's 422 then names the field.
      const value = this.readText(field, control.value);
      return value === undefined ? control.value.trim() : value;
    }
    if (field.kind === "enum-list") {
      return [...control.querySelectorAll("input[type=checkbox]")].filter((box) => box.checked).map((box) => box.value);
    }
    if (field.kind === "json") {
      const kept = JSON.parse(control.dataset.value ?? "null");
      return control.checked ? (kept ?? {}) : null;
    }
    if (field.kind === "boolean" && !field.nullable) return control.checked;
    if (field.kind === "boolean") return control.value === NULL_OPTION ? null : control.value === "true";
    if (field.kind === "enum") return control.value === NULL_OPTION ? null : control.value;
    return control.value === "" ? null : Number(control.value);
  }

  /** A text setting's value: null when empty, a bare name, or parsed JSON; undefined when it is none of these. */
  readText(field, text) {
    const value = text.trim();
    if (value === "") return null;
    if (field.kind === "name-or-json" && !/^[[{"]/.test(value)) return value;
    try {
      return JSON.parse(value);
    } catch {
      return undefined;
    }
  }

  /** The settings as they are now: {name: value} (null for an optional field left empty). */
  settings() {
    const out = {};
    for (const [name, { field }] of this.fields) out[name] = this.getValue(name, field);
    return out;
  }

  /** Fill the settings from {name: value} (settings saved in this browser); names the form lacks are ignored. */
  restore(values) {
    for (const [name, value] of Object.entries(values ?? {})) {
      const known = this.fields.get(name);
      if (known) this.setValue(name, known.field, undefined, value);
    }
  }

  /** Fill the settings from a run's request (a past run loaded again); a field it leaves out is at its default. */
  setSettings(request) {
    for (const [name, { group, field }] of this.fields) {
      this.setValue(name, field, undefined, group ? request[group]?.[name] : request[name]);
    }
    this.page.settingsChanged();
  }

  /** The body of POST /v1/trainings for the current model and settings. A null (an empty optional box, "auto")
   *  or an empty list is left out, so the service applies its default. */
  request() {
    const body = { model: this.page.spec(), data: {}, fit: {}, compile: {} };
    for (const [name, value] of Object.entries(this.settings())) {
      const { group } = this.fields.get(name);
      if (value === null || (Array.isArray(value) && value.length === 0)) continue;
      (group ? body[group] : body)[name] = value;
    }
    return body;
  }

  // -- a run ---------------------------------------------------------------------------------------------------

  async train() {
    if (this.current) return;
    this.showProblems([]);
    this.clearSettingProblems();
    const invalid = this.page.invalid();
    if (invalid) {
      // The spec still holds the last valid model: training it would train something the form does not show.
      this.setStatus(`Not started: ${invalid}`, "error");
      return;
    }
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
    this.refusal = true;
    const unplaced = other.filter((item) => !this.placeSettingProblem(item));
    this.showProblems([...unplaced, ...model.map((m) => ({ ...m, msg: `model: ${m.msg}` }))]);
  }

  /** A problem that names a setting (["body", "fit", "batch_size"], ["body", "compile", "metrics", 0],
   *  ["body", "seed"]) goes under that setting's control; returns whether it named one. */
  placeSettingProblem(item) {
    const loc = item.loc ?? [];
    if (loc[0] !== "body") return false;
    const [name, rest] = GROUPS.includes(loc[1]) ? [loc[2], loc.slice(3)] : [loc[1], loc.slice(2)];
    const known = this.fields.get(name);
    if (!known || known.group !== (GROUPS.includes(loc[1]) ? loc[1] : null)) return false;
    const severity = item.severity ?? "error";
    if (severity === "error" && known.field.kind !== "enum-list") byId(`t-${name}`).setAttribute("aria-invalid", "true");
    byId(`t-${name}-problem`).append(problemNode({ ...item, severity }, rest.length ? rest.join(".") : null));
    return true;
  }

  clearSettingProblem(name) {
    byId(`t-${name}`).removeAttribute("aria-invalid");
    byId(`t-${name}-problem`).replaceChildren();
  }

  clearSettingProblems() {
    for (const name of this.fields.keys()) this.clearSettingProblem(name);
  }

  /** Show a run that is queued or running on the chart, and follow it to its end. */
  begin(run) {
    this.current?.stream.close();
    this.shown = run.id;
    this.downloadButton.hidden = true; // until it has succeeded with a model kept
    this.baselineAsked = false;
    this.resetChart(run.epochs);
    this.drawHistory(run.history);
    this.trainButton.disabled = true;
    this.stopButton.disabled = false;
    this.describe(run);
    this.showRunProblems(run);
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
        if (this.shown !== id) return;
        this.addPoint(data.epoch, data.logs);
        // The run has its baseline from before its first epoch (the worker sends it before fitting): read it
        // once, so the line is there while the curve falls towards (or stays at) it.
        if (!this.chart.data.datasets[2].data.length && !this.baselineAsked) {
          this.baselineAsked = true;
          getRun(id).then((now) => { if (this.shown === id && now.baseline) this.drawBaseline(now); }, () => {});
        }
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
    if (!this.schema.finalStatuses.has(run.status)) {
      this.begin(run);
      return;
    }
    // The run that just ended is on the chart already; redraw only if its history says more (a stop mid-epoch
    // records that epoch too) or another run is shown.
    if (!onChart || this.chart.data.datasets[0].data.length !== (run.history?.loss ?? []).length) {
      this.resetChart(run.epochs);
      this.drawHistory(run.history);
    }
    this.drawBaseline(run);
    this.downloadButton.hidden = !run.model_bytes;
    this.downloadButton.dataset.run = run.id;
    this.scriptButton.hidden = false;
    this.scriptButton.dataset.run = run.id;
    this.describe(run);
    this.progress.max = 1;
    this.progress.value = run.status === "succeeded" ? 1 : 0;
    this.showRunProblems(run);
    this.setStatus(statusText(run), run.status === "succeeded" ? "ok" : run.status === "cancelled" ? "warning" : "error");
    byId("runs").querySelectorAll("[aria-current]").forEach((node) => node.removeAttribute("aria-current"));
    document.getElementById(`run-${run.id}`)?.setAttribute("aria-current", "true");
  }

  /** Save the shown run's trained model (GET /v1/trainings/{id}/model) as a file. */
  async downloadModel() {
    const id = this.downloadButton.dataset.run;
    try {
      const blob = await getRunModel(id);
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: `layerwise-${id}.keras` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      this.setStatus(`Could not download the model: ${error.message}`, "error");
    }
  }

  /** The shown run as a runnable Keras 3 script (GET /v1/trainings/{id}/script), in the code dialog. */
  async showScript() {
    const id = this.scriptButton.dataset.run;
    try {
      const text = await getRunScript(id);
      this.page.showCode({
        title: `Keras 3 script: run ${id}`,
        note:
          "Makes this run's data, builds, compiles and fits its model with its seed and prints the history: " +
          "run with the Keras and TensorFlow it names, this run's own (GET /v1/trainings/{id}/script).",
        text,
        filename: `layerwise-${id}.py`,
        type: "text/x-python",
      });
    } catch (error) {
      this.setStatus(`Could not get the script: ${error.message}`, "error");
    }
  }

  /** A run's error and warnings: each that names a setting under it (stateful_shuffle at fit.shuffle), the rest in
   *  the panel's list. */
  showRunProblems(run) {
    this.clearSettingProblems();
    const warnings = (run.summary?.warnings ?? []).map((w) => ({ ...w, severity: "warning" }));
    const items = run.error ? [{ loc: [], msg: run.error.msg, type: run.error.kind }, ...warnings] : warnings;
    this.showProblems(items.filter((item) => !this.placeSettingProblem(item)));
  }

  /** The model on screen is another one now: what the panel shows of a run or a refusal is about the model before,
   *  so it goes (the runs stay listed, one click away). A run still going on stays: it is followed to its end. */
  modelChanged() {
    if (this.current) return;
    this.shown = null;
    this.downloadButton.hidden = true;
    this.scriptButton.hidden = true;
    this.clearSettingProblems();
    this.showProblems([]);
    this.resetChart(this.getValue("epochs", this.fields.get("epochs").field) ?? 1);
    this.progress.max = 1;
    this.progress.value = 0;
    byId("run-id").hidden = true;
    delete this.status.dataset.status;
    byId("runs").querySelectorAll("[aria-current]").forEach((node) => node.removeAttribute("aria-current"));
    this.showIdle();
  }

  /** No run shown: say what there is to do, true of the runs listed below. */
  showIdle() {
    const n = byId("runs").children.length;
    this.setStatus(
      n ? `${n} past run${n === 1 ? "" : "s"} below: pick one to show it, or press Train.` : "No run yet: press Train.",
      "idle",
    );
    this.idle = true;
  }

  describe(run) {
    byId("run-id").textContent = `Run ${run.id}`;
    byId("run-id").hidden = false;
    this.status.dataset.status = run.status;
    this.setStatus(statusText(run), this.schema.finalStatuses.has(run.status) ? "ok" : "busy");
  }

  setStatus(text, tone) {
    this.status.textContent = text;
    this.status.className = `status ${tone}`;
    this.idle = false;
    this.refusal = false;
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
      data: {
        datasets: [
          line("loss", color("--series-1"), []),
          line("val_loss", color("--series-2"), [6, 4]),
          // The task's baseline: the best constant answer's loss (val_loss's if validating), a flat line.
          { ...line("baseline", color("--muted"), [2, 3]), pointRadius: 0, borderWidth: 1.5 },
        ],
      },
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
    for (const dataset of this.chart.data.datasets.slice(0, OWN_SERIES)) dataset.data = [];
    this.epochs = epochs;
    this.fitAxis();
    this.chart.update("none");
    byId("history-rows").replaceChildren();
    this.updateChartLabel();
  }

  /** The x axis over the shown run's epochs and every compared run's. */
  fitAxis() {
    const longest = Math.max(this.epochs ?? 1, ...[...this.compared.values()].map((run) => run.epochs_completed ?? 0));
    const x = this.chart.options.scales.x;
    x.max = Math.max(2, longest);
    x.ticks.stepSize = longest <= 20 ? 1 : undefined; // every epoch labelled while they fit
  }

  /** Draw a past run beside the shown one (its val_loss if it validated, else its loss), or take it off. */
  compare(run, on) {
    if (on) this.compared.set(run.id, run);
    else this.compared.delete(run.id);
    this.drawCompared();
    this.renderCompareState();
  }

  /** The compared runs' lines after the chart's own series, one colour each, labelled with the run. */
  drawCompared() {
    const style = getComputedStyle(document.documentElement);
    const own = this.chart.data.datasets.slice(0, OWN_SERIES);
    const lines = [...this.compared.values()].map((run, i) => {
      const key = run.history?.val_loss ? "val_loss" : "loss";
      const stroke = style.getPropertyValue(`--compare-${i + 1}`).trim();
      return {
        label: `${runLabel(run)}: ${key}`,
        data: (run.history?.[key] ?? []).map((y, epoch) => ({ x: epoch + 1, y })),
        borderColor: stroke, backgroundColor: stroke, borderDash: key === "val_loss" ? [6, 4] : [], pointRadius: 2,
        borderWidth: 1.5, tension: 0, spanGaps: false, clip: false,
      };
    });
    this.chart.data.datasets = [...own, ...lines];
    this.fitAxis();
    this.chart.update();
    this.updateChartLabel();
  }

  /** Each listed run's compare box: ticked when drawn, its colour beside it; none can be ticked past the most. */
  renderCompareState() {
    const order = [...this.compared.keys()];
    for (const box of byId("runs").querySelectorAll("input.run-compare-box")) {
      const at = order.indexOf(box.value);
      box.checked = at >= 0;
      box.disabled = at < 0 && order.length >= MAX_COMPARED;
      const swatch = box.parentElement.querySelector(".swatch");
      swatch.style.background = at >= 0 ? `var(--compare-${at + 1})` : "transparent";
    }
  }

  /** The run's baseline (the loss of the best constant answer on its data) as a flat line over the epochs. */
  drawBaseline(run) {
    const baseline = this.chart.data.datasets[2];
    const value = run.baseline?.val_loss ?? run.baseline?.loss;
    baseline.data = value === undefined || value === null ? [] : [{ x: 1, y: value }, { x: Math.max(2, run.epochs), y: value }];
    this.chart.update();
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
    const [loss, valLoss, baseline, ...compared] = this.chart.data.datasets;
    const points = loss.data.length;
    const base = baseline.data[0]?.y;
    const figure = byId("chart-figure");
    figure.dataset.points = String(points);
    const last = loss.data.at(-1)?.y;
    const lastVal = valLoss.data.at(-1)?.y;
    byId("loss-chart").setAttribute(
      "aria-label",
      points
        ? `Loss per epoch, ${points} epoch${points === 1 ? "" : "s"}: last loss ${formatLoss(last)}` +
            (lastVal !== undefined ? `, last val_loss ${formatLoss(lastVal)}` : "") +
            (base !== undefined ? `, baseline ${formatLoss(base)}` : "") +
            comparedText(compared)
        : "Loss per epoch: no run yet" + comparedText(compared),
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
    byId("runs-compare-hint").hidden = items.length < 2;
    // A compared run is redrawn from what the service says of it now; one it no longer has goes.
    const listed = new Map(runs.filter((run) => run && !run.unreadable).map((run) => [run.id, run]));
    for (const id of [...this.compared.keys()]) {
      if (listed.has(id)) this.compared.set(id, listed.get(id));
      else this.compared.delete(id);
    }
    this.renderCompareState();
    if (this.compared.size) this.drawCompared();
    if (this.idle) this.showIdle();
  }

  runItem(run) {
    if (run.unreadable) return h("li", {}, h("span", { class: "muted" }, `${run.id}: could not be read just now`));
    const loss = run.history?.loss?.at(-1);
    const when = runTime(run);
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
      h("label", { class: "run-compare" },
        h("input", {
          type: "checkbox", class: "run-compare-box", value: run.id,
          onchange: (event) => this.compare(run, event.target.checked),
          "aria-label": `Compare the run of ${name} at ${when} on the chart`,
        }),
        h("span", { class: "swatch", "aria-hidden": "true" }),
        "compare"),
    );
    return item;
  }
}

/** Remember a run this browser started (newest first, at most MAX_RUNS). */
function rememberRun(id) {
  const ids = loadLocal(RUNS_KEY, []).filter((x) => x !== id);
  saveLocal(RUNS_KEY, [id, ...ids].slice(0, MAX_RUNS));
}

/** A run as the chart's legend names it: the model's name and the time it was started. */
function runLabel(run) {
  return `${run.request?.model?.name ?? "model"} ${runTime(run)}`;
}

/** When the run was started, as the clock of this browser says it. */
function runTime(run) {
  return new Date(run.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** The compared runs, for the chart's text alternative: each one's last value. */
function comparedText(compared) {
  if (!compared.length) return "";
  const each = compared.map((line) => `${line.label} last ${formatLoss(line.data.at(-1)?.y)}`);
  return `; compared: ${each.join("; ")}`;
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
