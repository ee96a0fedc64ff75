// The summary panel: Keras's summary as a table (output shape, params), with the service's Mult-Adds and memory,
// the totals, and each error or warning in the row of the layer it names.

import { problemNode } from "./editor.js";
import { byId, formatBytes, formatInt, formatShape, h } from "./dom.js";

const COLUMNS = 5;

export class SummaryView {
  constructor() {
    this.status = byId("summary-status");
    this.body = byId("summary-rows");
    this.foot = byId("summary-totals");
    this.figures = byId("summary-figures");
    this.text = byId("keras-text");
    this.notes = byId("summary-notes");
    this.table = byId("summary-table");
  }

  /** A request is on its way: say so, and dim what is shown until the answer. */
  pending() {
    this.table.setAttribute("aria-busy", "true");
    this.table.classList.add("stale");
    byId("summary-spinner").hidden = false;
  }

  done() {
    this.table.removeAttribute("aria-busy");
    this.table.classList.remove("stale");
    byId("summary-spinner").hidden = true;
  }

  /** Show a summary (ModelSummary of the API) and its warnings, each under its layer's row. */
  show(summary) {
    this.done();
    const warnings = summary.warnings.map((w) => ({ ...w, severity: "warning" }));
    const byLayer = groupByLayer(warnings);
    const rows = [];
    for (const layer of summary.layers) {
      rows.push(
        h(
          "tr",
          { dataset: { index: String(layer.index) } },
          h("th", { scope: "row", class: "c-layer" }, h("span", { class: "lname" }, layer.name), " ",
            h("span", { class: "ltype" }, `(${layer.type})`),
            // A graph's layer: what it was called on (Keras's "Connected to").
            layer.connected_to?.length
              ? h("span", { class: "lfrom" }, ` ← ${layer.connected_to.join(", ")}`)
              : null),
          h("td", { class: "c-shape" }, h("code", {}, formatShape(layer.output_shape))),
          h("td", { class: "c-params num" }, formatInt(layer.params)),
          h("td", {
            class: "c-macs num",
            title: layer.mult_adds_batch === null ? null : `${formatInt(layer.mult_adds_batch)} for a batch of ${summary.batch_size}`,
          }, formatInt(layer.mult_adds)),
          h("td", { class: "c-bytes num" }, formatBytes(layer.activation_bytes)),
        ),
      );
      rows.push(...problemRows(byLayer.get(layer.index)));
    }
    this.body.replaceChildren(...rows);
    this.foot.replaceChildren(
      h(
        "tr",
        {},
        h("th", { scope: "row" }, "Total"),
        h("td", {}),
        h("td", { class: "num", id: "total-params" }, formatInt(summary.total_params)),
        h("td", { class: "num" }, formatInt(summary.mult_adds)),
        h("td", { class: "num" }, formatBytes(summary.activation_bytes)),
      ),
    );
    const memory = summary.training_memory;
    // replaceChildren writes a null as the text "null": the figures a summary does not have are left out.
    const figures = [
      figure("Trainable / non-trainable", `${formatInt(summary.trainable_params)} / ${formatInt(summary.non_trainable_params)}`),
      figure("Weights (float32)", formatBytes(summary.weights_bytes)),
      summary.mult_adds_batch === null
        ? null
        : figure(`Mult-Adds, batch of ${summary.batch_size}`, formatInt(summary.mult_adds_batch)),
      memory
        ? figure(
            `Training memory, batch of ${memory.batch_size} (${memory.optimizer})`,
            formatBytes(memory.total_bytes),
            `weights ${formatBytes(memory.weights_bytes)} + gradients ${formatBytes(memory.gradients_bytes)} + ` +
              `optimizer ${formatBytes(memory.optimizer_bytes)} + activations ${formatBytes(memory.activations_bytes)} + ` +
              `input ${formatBytes(memory.input_bytes)} (activations include what backpropagation through time keeps; ` +
              `TensorFlow adds about 60 MiB of its own)`,
          )
        : null,
    ];
    this.figures.replaceChildren(...figures.filter((node) => node !== null));
    this.text.textContent = summary.text;
    this.notes.replaceChildren(...(byLayer.get(null) ?? []).map((item) => problemNode(item)));
    const count = summary.warnings.length;
    this.status.textContent =
      `${summary.name}: ${summary.layers.length} layers, ${formatInt(summary.total_params)} params` +
      (count ? `, ${count} warning${count === 1 ? "" : "s"}` : "") +
      ` (Keras ${summary.keras_version})`;
    this.status.className = count ? "status warning" : "status ok";
  }

  /** What the editor holds is not a spec yet (an invalid sample shape, JSON that does not parse): no summary is
   *  shown, since the last one is of a model no longer on screen. */
  invalid(headline) {
    this.done();
    this.body.replaceChildren();
    this.foot.replaceChildren();
    this.figures.replaceChildren();
    this.text.textContent = "";
    this.notes.replaceChildren();
    this.status.textContent = headline;
    this.status.className = "status error";
  }

  /**
   * The model did not build: rows from the spec (name or type), each error in its layer's row.
   * @param {object} spec
   * @param {{loc: (string|number)[], msg: string, severity: string}[]} errors locs relative to the model
   * @param {string} headline
   */
  fail(spec, errors, headline) {
    this.done();
    const byLayer = groupByLayer(errors.map((e) => ({ ...e, layer: layerIndexOf(e.loc) })));
    const layers = Array.isArray(spec.layers) ? spec.layers : [];
    const rows = [];
    layers.forEach((layer, index) => {
      rows.push(
        h(
          "tr",
          { dataset: { index: String(index) }, class: byLayer.has(index) ? "row-error" : null },
          h("th", { scope: "row", class: "c-layer" }, h("span", { class: "lname" }, layer?.name ?? `layer ${index}`), " ",
            h("span", { class: "ltype" }, `(${layer?.type ?? "?"})`)),
          h("td", { class: "c-shape" }, "—"),
          h("td", { class: "c-params num" }, "—"),
          h("td", { class: "c-macs num" }, "—"),
          h("td", { class: "c-bytes num" }, "—"),
        ),
      );
      rows.push(...problemRows(byLayer.get(index)));
    });
    this.body.replaceChildren(...rows);
    this.foot.replaceChildren();
    this.figures.replaceChildren();
    this.text.textContent = "";
    const general = [...byLayer.entries()].filter(([index]) => index === null || index >= layers.length);
    this.notes.replaceChildren(...general.flatMap(([, items]) => items.map((item) => problemNode(item, locText(item.loc)))));
    this.status.textContent = headline;
    this.status.className = "status error";
  }
}

function figure(label, value, detail) {
  return h("div", { class: "figure" }, h("dt", {}, label), h("dd", {}, value, detail ? h("span", { class: "muted detail" }, ` (${detail})`) : null));
}

function problemRows(items) {
  return (items ?? []).map((item) =>
    h("tr", { class: `problem-row ${item.severity}` }, h("td", { colspan: String(COLUMNS) }, problemNode(item, locText(item.loc.slice(2))))),
  );
}

function groupByLayer(items) {
  const groups = new Map();
  for (const item of items) {
    const key = item.layer ?? null;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(item);
  }
  return groups;
}

/** ["layers", 2, "units"] -> 2; anything else -> null. */
export function layerIndexOf(loc) {
  return loc[0] === "layers" && typeof loc[1] === "number" ? loc[1] : null;
}

function locText(loc) {
  return loc.length ? loc.join(".") : null;
}
