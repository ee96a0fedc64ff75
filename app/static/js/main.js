// The playground: wires the model editor, the live summary and the training panel to the API.
//
// Flow: the editor changes the spec -> (debounced) POST /v1/models/summary -> the table, or the 422's items next
// to the layers they name. Train -> POST /v1/trainings -> follow /events -> the chart. Nothing here is private
// to the page: every call is in api.js and is the documented API.

import {
  ApiError,
  curlCommand,
  exportModel,
  apiUrl,
  setApiKey,
  drawModel,
  summarize,
  summaryRequest,
  trainingRequest,
} from "./api.js";
import { byId, debounce, h, loadLocal, saveLocal } from "./dom.js";
import { ModelEditor } from "./editor.js";
import { isDefault, loadSchema } from "./schema.js";
import { SummaryView } from "./summary.js";
import { TrainingPanel } from "./training.js";

const SPEC_KEY = "layerwise.spec";
const SETTINGS_KEY = "layerwise.training";
const DEBOUNCE_MS = 300;

/** A 401 anywhere shows the key form; a key entered there is used from then on (the page reloads with it). */
function askForKeyOn401() {
  const form = byId("api-key-form");
  window.addEventListener("layerwise:unauthorized", () => {
    if (!form.hidden) return;
    form.hidden = false;
    byId("api-key").focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(byId("api-key").value.trim());
    window.location.reload();
  });
}

async function main() {
  askForKeyOn401();
  let schema;
  try {
    schema = await loadSchema();
  } catch (error) {
    pageProblem(`The page could not read the service's OpenAPI document (${error.message}); reload to try again.`);
    return;
  }

  const summaryView = new SummaryView();
  let inflight = null;
  let sequence = 0;

  // The diagram of the summarized model, drawn by the service as SVG and shown as an image (a data: URL, which the
  // page's img-src allows; in an <img> no script of it runs).
  async function showDiagram(spec, signal, current) {
    const status = byId("diagram-status");
    status.textContent = "Drawing…";
    try {
      const svg = await drawModel(spec, { signal });
      if (!current()) return;
      const diagramUrl = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
      const names = (spec.layers ?? []).map((layer) => layer.name ?? layer.type).join(", ");
      byId("diagram").replaceChildren(h("img", { id: "diagram-image", src: diagramUrl, alt: `Diagram of the model: ${names}` }));
      status.textContent = "";
    } catch (error) {
      if (error.name === "AbortError" || !current()) return;
      byId("diagram").replaceChildren();
      status.textContent = error instanceof ApiError ? `No diagram: ${headline(error)}` : "No diagram.";
    }
  }

  function clearDiagram() {
    byId("diagram").replaceChildren();
    byId("diagram-status").textContent = "";
  }

  const refresh = debounce(async () => {
    inflight?.abort();
    if (editor.invalid) return; // the spec is the last valid one, not what the form shows
    const controller = new AbortController();
    inflight = controller;
    const mine = ++sequence;
    const spec = editor.spec;
    summaryView.pending();
    try {
      const summary = await summarize(spec, { batchSize: training.settings().batch_size, signal: controller.signal });
      if (mine !== sequence) return;
      summaryView.show({ ...summary, warnings: summary.warnings.map(relative) });
      editor.showResults(summary);
      editor.showProblems(summary.warnings.map((w) => ({ ...relative(w), severity: "warning" })));
      showDiagram(spec, controller.signal, () => mine === sequence);
    } catch (error) {
      if (error.name === "AbortError" || mine !== sequence) return;
      if (!(error instanceof ApiError)) throw error;
      const items = error.detail.map((item) => ({ ...relative(item), severity: "error" }));
      editor.showResults(null);
      editor.showProblems(items);
      summaryView.fail(spec, items, headline(error));
      clearDiagram();
    }
  }, DEBOUNCE_MS);

  const editor = new ModelEditor(
    schema,
    (spec, from) => {
      saveLocal(SPEC_KEY, spec);
      training.modelChanged();
      if (from === "load" || from === "import") refresh.flush();
      else refresh();
    },
    async (config) => JSON.parse(await exportModel(config, "spec")),
    (message) => {
      // Not a spec yet: no answer for the last valid one may land, and nothing of it stays as if current.
      refresh.cancel();
      inflight?.abort();
      sequence += 1;
      editor.showResults(null);
      editor.showProblems([]);
      summaryView.invalid(`No summary: ${message}`);
      clearDiagram();
      training.modelChanged();
    },
  );

  const training = new TrainingPanel(schema, {
    spec: () => editor.spec,
    invalid: () => editor.invalid,
    problems: (items) => editor.showProblems(items),
    showCode: (options) => openCode(options),
    loadRun: (run) => {
      editor.load(compactSpec(run.request.model, schema));
      training.setSettings(run.request);
      training.show(run);
    },
    settingsChanged: () => {
      saveLocal(SETTINGS_KEY, training.settings());
      refresh(); // the batch size is the summary's ?batch_size= (memory and Mult-Adds per batch)
    },
  });
  training.restore(loadLocal(SETTINGS_KEY, null));

  // The seed's examples: the summary body's OpenAPI examples.
  byId("examples").replaceChildren(
    ...schema.examples.map((example) =>
      h(
        "button",
        { type: "button", class: "example", dataset: { example: example.key }, onclick: () => editor.load(example.value) },
        h("span", { class: "example-key" }, example.key),
        h("span", { class: "example-summary" }, example.summary),
      ),
    ),
  );

  setupCodeDialog();
  // While the form holds what is not a spec, what is exported or copied is the last valid model: say so.
  const codeOf = (options) => openCode({ ...options, stale: editor.invalid });
  const specName = () => (typeof editor.spec.name === "string" && editor.spec.name) || "model";
  byId("export-python").addEventListener("click", () =>
    exportTo("python", `Keras 3 Python: ${specName()}.py`, `${specName()}.py`, "text/x-python"),
  );
  byId("export-json").addEventListener("click", () =>
    exportTo("keras_json", `Keras JSON: ${specName()}.json`, `${specName()}.json`, "application/json"),
  );
  const exportTo = async (format, title, filename, type) => {
    try {
      const text = await exportModel(editor.spec, format);
      codeOf({
        title,
        note:
          format === "python"
            ? "A Keras 3 script that builds this model and prints its summary (POST /v1/models/export?format=python)."
            : "Keras's own model.to_json(): keras.models.model_from_json() loads it (POST /v1/models/export?format=keras_json).",
        text: format === "keras_json" ? JSON.stringify(JSON.parse(text), null, 2) : text,
        filename,
        type,
      });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      codeOf({ title, note: "The service could not export this model:", text: error.message, filename: null });
    }
  };
  byId("curl-summary").addEventListener("click", () => {
    const request = summaryRequest(editor.spec, training.settings().batch_size);
    codeOf({
      title: "curl: this summary",
      note: "The request the page sends for the summary. Add -H 'Accept: text/plain' for Keras's table alone.",
      text: curlCommand(request),
      wrap: true,
      filename: "summary.sh",
      type: "text/x-shellscript",
    });
  });
  byId("curl-training").addEventListener("click", () => {
    const request = trainingRequest(training.request());
    codeOf({
      title: "curl: this training",
      note:
        "The request Train sends. It answers 202 with the run; follow it with " +
        `curl -N ${apiUrl("v1/trainings/")}RUN_ID/events, or add ?wait=60 to the URL to wait for the end.`,
      text: curlCommand(request),
      wrap: true,
      filename: "training.sh",
      type: "text/x-shellscript",
    });
  });

  const saved = loadLocal(SPEC_KEY, null);
  editor.load(saved && typeof saved === "object" ? saved : schema.examples[0]?.value ?? { layers: [] });
}

/** An item whose loc starts at the request body: the same loc relative to the model. */
function relative(item) {
  return { ...item, loc: item.loc[0] === "body" ? item.loc.slice(1) : item.loc };
}

function headline(error) {
  const n = error.detail.length;
  const problems = `${n} problem${n === 1 ? "" : "s"}`;
  if (error.status === 0) return "The server did not answer.";
  if (error.status >= 500) return `The service could not build the model (${error.status}): ${error.message}`;
  if (error.detail.some((item) => item.type === "limit_exceeded")) return `Over a size limit: ${problems}.`;
  if (error.detail.some((item) => item.type === "keras_build_error")) return `Keras cannot build this model: ${problems}.`;
  return `Not a valid model yet: ${problems}.`;
}

/** A run's normalized model, written as a person would: defaults left out, an open batch as input_shape. */
function compactSpec(model, schema) {
  const compactLayer = (layer) => {
    const type = schema.layerTypes.get(layer.type);
    if (!type) return layer;
    const out = { type: layer.type };
    if (layer.name) out.name = layer.name;
    for (const field of type.fields) {
      const value = layer[field.name];
      if (value === undefined || isDefault(field, value)) continue;
      out[field.name] = field.kind === "layer" && value ? compactLayer(value) : value;
    }
    return out;
  };
  const spec = {};
  if (model.name) spec.name = model.name;
  const shape = model.batch_input_shape;
  if (Array.isArray(shape) && shape[0] === null) spec.input_shape = shape.slice(1);
  else if (shape) spec.batch_input_shape = shape;
  else if (model.input_shape) spec.input_shape = model.input_shape;
  spec.layers = model.layers.map(compactLayer);
  return spec;
}

// -- the code dialog: exports and curl commands -----------------------------------------------------------------

let current = null;

function setupCodeDialog() {
  const dialog = byId("code-dialog");
  const text = byId("code-text");
  const feedback = byId("code-feedback");
  byId("code-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text.value);
      feedback.textContent = "Copied to the clipboard.";
    } catch {
      // No clipboard (a page served over plain HTTP to another host, or permission refused): select it instead.
      text.focus();
      text.select();
      feedback.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
  byId("code-download").addEventListener("click", () => {
    if (!current?.filename) return;
    const url = URL.createObjectURL(new Blob([text.value], { type: current.type }));
    const link = h("a", { href: url, download: current.filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  dialog.addEventListener("close", () => {
    current = null;
  });
}

/** Show a text in the code dialog. `wrap`: one long line (a curl command) wrapped anywhere, so all of it is in view;
 *  code keeps its lines. `stale`: why the form is not the spec the text is of (ModelEditor.invalid). Either way it opens at its start, not where setting the value left the caret (its end). */
function openCode({ title, note, text, filename, type, wrap = false, stale = null }) {
  current = { filename, type };
  const area = byId("code-text");
  byId("code-title").textContent = title;
  byId("code-note").textContent = stale ? `Of the last valid model, not of the form: ${stale} ${note}` : note;
  area.value = text;
  area.classList.toggle("wrap", wrap);
  byId("code-feedback").textContent = "";
  byId("code-download").hidden = !filename;
  byId("code-dialog").showModal();
  area.setSelectionRange(0, 0);
  area.scrollTop = 0;
  area.scrollLeft = 0;
  byId("code-copy").focus();
}

function pageProblem(message) {
  const node = byId("page-problem");
  node.textContent = message;
  node.hidden = false;
}

window.addEventListener("unhandledrejection", (event) => {
  pageProblem(`Something went wrong in the page: ${event.reason?.message ?? event.reason}`);
});

main();
