// The model editor: the spec (the request body of POST /v1/models/summary) as an editable list of layers, its
// input shape, and a JSON view of the same object, kept in sync both ways. The spec object is the one source of
// truth: the form writes into it, the JSON view replaces it, and both are drawn from it.
//
// Arguments left at Keras's default are left out of the spec, as in the service's Python export, so the JSON
// view shows what differs from Keras's defaults; the form shows every argument with its effective value.

import { byId, formatInt, formatShape, h } from "./dom.js";
import { isDefault, newLayer } from "./schema.js";

// What starts a JSON value other than a bare name: an object, a list, a string, a number, true, false or null.
const JSON_START = /^([[{"\-\d]|(true|false|null)$)/;

const INPUT_KEYS = ["input_shape", "batch_input_shape"];
const NULL_OPTION = "__null__";

/** JSON with arrays of plain values on one line: [10, 20] rather than one number a line. */
export function prettyJson(value, indent = "") {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return JSON.stringify(value).replaceAll(",", ", ");
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + prettyJson(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${prettyJson(v, inner)}`).join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** "10, 20", "(10, 20)", "[10,20]", "10 20" or "10x20" -> [10, 20]; "(20,)" -> [20]; "" -> []. null when it is not
 *  a list of positive integers: "None, 20" (the batch is not part of the sample), ", 20" or "10,, 20" (an empty
 *  entry, which must not be read as a shorter shape). */
export function parseDims(text) {
  const inner = text.trim().replace(/^[[(]/, "").replace(/[\])]$/, "").trim();
  if (inner === "") return [];
  const parts = inner.split(/\s*[,x×]\s*|\s+/);
  if (parts.length > 1 && parts.at(-1) === "" && /,\s*$/.test(inner)) parts.pop(); // Python's 1-tuple: (20,)
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) return null;
  return parts.map(Number);
}

/** Why a sample shape parseDims refused is not one, for the field's message. */
function dimsProblem(text) {
  if (/\b(none|null)\b/i.test(text)) {
    return "The sample shape is its sizes after the batch, each a positive whole number, e.g. 10, 20: None is not " +
      "a size here (the batch is given apart, and axes of variable length are not supported).";
  }
  return "Write the sample's shape as positive whole numbers, e.g. 10, 20 (timesteps, features); no entry may be empty.";
}

/** Where the spec gives its input shape: on the model, or on layer 0 as Keras 2 writes it. */
function inputOf(spec) {
  for (const key of INPUT_KEYS) if (spec[key] !== undefined && spec[key] !== null) return { on: spec, key };
  const first = Array.isArray(spec.layers) ? spec.layers[0] : null;
  if (first && typeof first === "object") {
    for (const key of INPUT_KEYS) if (first[key] !== undefined && first[key] !== null) return { on: first, key, layer0: true };
  }
  return { on: spec, key: null };
}

export class ModelEditor {
  /**
   * @param schema the layer types and arguments read from /openapi.json
   * @param onChange called with (spec, from) after every change
   * @param importKeras turns a Keras model config (model.to_json()) into a spec: (config) => Promise<spec>
   * @param onInvalid called with a message when the form or the JSON view holds what is not a spec, which the spec
   *   (still the last valid one) does not take in: the page must not show the last summary as if it were current
   */
  constructor(schema, onChange, importKeras = null, onInvalid = () => {}) {
    this.schema = schema;
    this.onChange = onChange;
    this.importKeras = importKeras;
    this.onInvalid = onInvalid;
    // What the shape box, or the JSON view, holds that the spec could not take (a message), or null.
    this.inputInvalid = null;
    this.jsonInvalid = null;
    this.spec = { layers: [] };
    this.list = byId("layer-list");
    this.json = byId("spec-json");
    this.jsonProblem = byId("json-problem");
    this.nameInput = byId("model-name");
    this.inputKind = byId("input-kind");
    this.inputBatch = byId("input-batch");
    this.inputDims = byId("input-dims");
    this.addType = byId("add-type");

    for (const type of schema.topLevelTypes) {
      this.addType.append(h("option", { value: type }, type));
    }
    byId("add-layer").addEventListener("click", () => this.addLayer(this.addType.value));
    this.nameInput.addEventListener("input", () => {
      this.setKey(this.spec, "name", this.nameInput.value.trim() || undefined);
      this.changed("form");
    });
    this.inputKind.addEventListener("change", () => this.writeInput());
    this.inputBatch.addEventListener("input", () => this.writeInput());
    this.inputDims.addEventListener("input", () => this.writeInput());
    byId("input-hoist").addEventListener("click", () => {
      this.hoistInput();
      this.render();
      this.changed("form");
      this.inputDims.focus();
    });
    this.json.addEventListener("input", () => this.readJson());
    this.setupTabs();
  }

  // -- the spec ------------------------------------------------------------------------------------------------

  /** Replace the spec (an example, a past run, the saved one) and redraw everything. */
  load(spec) {
    this.spec = structuredClone(spec);
    this.render();
    this.writeJson();
    this.changed("load");
  }

  changed(from) {
    if (from !== "json") this.writeJson();
    this.onChange(this.spec, from);
  }

  /** Why the spec is not what the form or the JSON view shows (the spec is then the last valid one), or null. An
   *  invalid shape stays so while other fields are edited: the spec lacks what its box shows. */
  get invalid() {
    return this.inputInvalid ?? this.jsonInvalid;
  }

  setKey(object, key, value) {
    if (value === undefined) delete object[key];
    else object[key] = value;
  }

  writeJson() {
    this.jsonInvalid = null;
    this.json.value = prettyJson(this.spec);
    this.jsonProblem.textContent = "";
    this.json.removeAttribute("aria-invalid");
  }

  readJson() {
    let spec;
    try {
      spec = JSON.parse(this.json.value);
    } catch (error) {
      this.jsonProblem.textContent = `Not JSON yet: ${error.message}. The form and the summary wait for valid JSON.`;
      this.json.setAttribute("aria-invalid", "true");
      this.jsonInvalid = "the JSON view does not hold valid JSON.";
      this.onInvalid(this.jsonInvalid);
      return;
    }
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) {
      this.jsonProblem.textContent = "The body is a JSON object: {\"input_shape\": [...], \"layers\": [...]}.";
      this.json.setAttribute("aria-invalid", "true");
      this.jsonInvalid = "the JSON view does not hold a JSON object.";
      this.onInvalid(this.jsonInvalid);
      return;
    }
    if (typeof spec.class_name === "string" && this.importKeras) {
      this.importFromKeras(spec);
      return;
    }
    this.jsonProblem.textContent = "";
    this.json.removeAttribute("aria-invalid");
    this.jsonInvalid = null;
    this.spec = spec;
    this.render();
    this.changed("json");
  }

  /** A Keras config pasted into the JSON view becomes the spec that describes it (the service translates it). */
  async importFromKeras(config) {
    this.jsonProblem.textContent = `A Keras ${config.class_name} config: turning it into layers…`;
    try {
      const spec = await this.importKeras(config);
      this.jsonProblem.textContent = "";
      this.json.removeAttribute("aria-invalid");
      this.spec = spec;
      this.render();
      this.changed("import");
    } catch (error) {
      this.jsonProblem.textContent = `This Keras config cannot be imported: ${error.message}`;
      this.json.setAttribute("aria-invalid", "true");
      this.jsonInvalid = "the Keras config in the JSON view could not be imported.";
      this.onInvalid(this.jsonInvalid);
    }
  }

  // -- input shape ---------------------------------------------------------------------------------------------

  renderInput() {
    // A graph model (a top-level inputs list) names its inputs, each with its shape: the JSON view edits them.
    const graph = Array.isArray(this.spec.inputs);
    byId("input-section").hidden = graph;
    byId("graph-note").hidden = !graph;
    const where = inputOf(this.spec);
    const value = where.key ? where.on[where.key] : null;
    const fixed = where.key === "batch_input_shape";
    this.inputKind.value = fixed ? "batch_input_shape" : "input_shape";
    this.inputBatch.disabled = !fixed;
    this.inputBatch.value = fixed && value?.[0] !== null && value?.[0] !== undefined ? value[0] : "";
    this.inputDims.value = Array.isArray(value) ? (fixed ? value.slice(1) : value).join(", ") : "";
    byId("input-on-layer0").hidden = !where.layer0;
    byId("input-dims-problem").textContent = "";
    this.inputDims.removeAttribute("aria-invalid");
    this.inputInvalid = null; // the box shows the spec's shape again
  }

  writeInput() {
    const fixed = this.inputKind.value === "batch_input_shape";
    this.inputBatch.disabled = !fixed;
    const dims = parseDims(this.inputDims.value);
    const problem = byId("input-dims-problem");
    if (dims === null) {
      problem.textContent = dimsProblem(this.inputDims.value);
      this.inputDims.setAttribute("aria-invalid", "true");
      this.inputInvalid = `the sample shape "${this.inputDims.value.trim()}" is not a shape.`;
      this.onInvalid(this.inputInvalid);
      return;
    }
    this.inputInvalid = null;
    problem.textContent = "";
    this.inputDims.removeAttribute("aria-invalid");
    const where = inputOf(this.spec);
    const target = where.layer0 ? where.on : this.spec;
    for (const key of INPUT_KEYS) delete target[key];
    if (dims.length > 0) {
      const batch = this.inputBatch.value === "" ? null : Number(this.inputBatch.value);
      target[fixed ? "batch_input_shape" : "input_shape"] = fixed ? [batch, ...dims] : dims;
    }
    this.changed("form");
  }

  /** Move an input shape carried by layer 0 (Keras 2 style) to the model, before layers move about. */
  hoistInput() {
    const where = inputOf(this.spec);
    if (!where.layer0) return;
    const value = where.on[where.key];
    for (const key of INPUT_KEYS) delete where.on[key];
    // Keep the model's keys in the order people write them: name, input, layers.
    const { name, layers, ...rest } = this.spec;
    this.spec = { ...(name !== undefined ? { name } : {}), [where.key]: value, ...rest, layers };
  }

  // -- layers --------------------------------------------------------------------------------------------------

  addLayer(type) {
    if (!Array.isArray(this.spec.layers)) this.spec.layers = [];
    this.spec.layers.push(newLayer(type, this.schema));
    this.render();
    this.changed("form");
    const index = this.spec.layers.length - 1;
    document.getElementById(`l${index}-type`)?.focus();
  }

  moveLayer(index, delta) {
    const layers = this.spec.layers;
    const to = index + delta;
    if (to < 0 || to >= layers.length) return;
    this.hoistInput();
    const moved = this.spec.layers;
    [moved[index], moved[to]] = [moved[to], moved[index]];
    this.render();
    this.changed("form");
    const button = document.getElementById(`l${to}-${delta < 0 ? "up" : "down"}`);
    (button && !button.disabled ? button : document.getElementById(`l${to}-type`))?.focus();
  }

  removeLayer(index) {
    this.hoistInput();
    this.spec.layers.splice(index, 1);
    this.render();
    this.changed("form");
    const next = Math.min(index, this.spec.layers.length - 1);
    (next >= 0 ? document.getElementById(`l${next}-remove`) : byId("add-layer")).focus();
  }

  /** Draw the input section and the layer cards from the spec; keep the focused control focused. */
  render() {
    const focused = document.activeElement?.id;
    this.nameInput.value = typeof this.spec.name === "string" ? this.spec.name : "";
    this.renderInput();
    const layers = Array.isArray(this.spec.layers) ? this.spec.layers : [];
    const count = h("p", { class: "muted", id: "layer-count" }, `${layers.length} layer${layers.length === 1 ? "" : "s"}`);
    this.list.replaceChildren(...layers.map((layer, i) => this.card(layer, i, layers.length)));
    byId("layer-count").replaceWith(count);
    byId("layers-note").textContent = Array.isArray(this.spec.layers)
      ? ""
      : "This body has no layers list the form can show (a Keras to_json() config, say): edit it in the JSON view.";
    if (focused && focused !== this.json.id) document.getElementById(focused)?.focus();
  }

  card(layer, index, count) {
    const id = `l${index}`;
    const known = layer && typeof layer === "object" && this.schema.layerTypes.has(layer.type);
    const tools = h(
      "div",
      { class: "card-tools", role: "group", "aria-label": `Layer ${index}` },
      h("button", {
        type: "button", id: `${id}-up`, class: "icon", "aria-label": `Move layer ${index} up`, title: "Move up",
        disabled: index === 0, onclick: () => this.moveLayer(index, -1),
      }, "↑"),
      h("button", {
        type: "button", id: `${id}-down`, class: "icon", "aria-label": `Move layer ${index} down`, title: "Move down",
        disabled: index === count - 1, onclick: () => this.moveLayer(index, 1),
      }, "↓"),
      h("button", {
        type: "button", id: `${id}-remove`, class: "icon danger", "aria-label": `Remove layer ${index}`,
        title: "Remove", onclick: () => this.removeLayer(index),
      }, "✕"),
    );
    const body = known
      ? this.layerBody(layer, id, `Layer ${index} name`)
      : [h("p", { class: "muted" }, "Not a layer type this service knows: pick one above, or fix it in the JSON view.")];
    const typeSelect = this.typeSelect(layer?.type, this.schema.topLevelTypes, `${id}-type`, `Layer ${index} type`,
      (type) => {
        this.spec.layers[index] = this.retype(layer, type);
        this.render();
        this.changed("form");
      });
    return h(
      "li",
      { class: "layer-card", id: `${id}-card`, dataset: { path: String(index) } },
      h(
        "div",
        { class: "card-head" },
        h("span", { class: "layer-index", "aria-hidden": "true" }, String(index)),
        typeSelect,
        h("span", { class: "spacer" }),
        tools,
      ),
      h("p", { class: "card-result", id: `${id}-result`, "aria-hidden": "true" }),
      ...body,
      h("div", { class: "problems", id: `${id}-problems` }),
    );
  }

  typeSelect(current, types, id, label, onchange) {
    const select = h(
      "select",
      { id, "aria-label": label, class: "type-select", onchange: () => onchange(select.value) },
      types.map((type) => h("option", { value: type }, type)),
    );
    if (current !== undefined && !types.includes(current)) {
      select.prepend(h("option", { value: String(current) }, `${current} (unknown)`));
    }
    select.value = String(current ?? types[0]);
    return select;
  }

  /** The layer's name, first among its fields: Keras names a layer left unnamed (lstm, lstm_1, ...). */
  nameField(layer, id, label) {
    const input = h("input", {
      type: "text", id: `${id}-name`, class: "name-input", "aria-label": label, placeholder: "auto",
      autocomplete: "off", spellcheck: "false", value: typeof layer?.name === "string" ? layer.name : "",
      "aria-describedby": `${id}-name-problem`,
    });
    const wrapper = h("div", { class: `field field-name${layer?.name ? " is-set" : ""}`, dataset: { field: "name" } },
      h("label", { for: input.id, "aria-hidden": "true" }, h("code", {}, "name")), input,
      h("p", { class: "field-problem", id: `${id}-name-problem` }));
    input.addEventListener("input", () => {
      this.setKey(layer, "name", input.value.trim() || undefined);
      wrapper.classList.toggle("is-set", Object.hasOwn(layer, "name"));
      this.changed("form");
    });
    return wrapper;
  }

  /** A layer of another type, keeping its name and the arguments the new type also has. */
  retype(layer, type) {
    const fresh = newLayer(type, this.schema);
    const fields = new Set(this.schema.layerTypes.get(type).fields.map((f) => f.name));
    for (const [key, value] of Object.entries(layer ?? {})) {
      if (key === "name" || INPUT_KEYS.includes(key) || (fields.has(key) && typeof value !== "object")) {
        fresh[key] = value;
      }
    }
    return fresh;
  }

  /** The argument fields of a layer; a wrapper's inner layer is drawn as a nested card. */
  layerBody(layer, id, nameLabel) {
    const fields = this.schema.layerTypes.get(layer.type).fields;
    const values = fields.filter((f) => f.kind !== "layer" && f.kind !== "boolean");
    const flags = fields.filter((f) => f.kind === "boolean");
    const nested = fields.filter((f) => f.kind === "layer");
    const out = [
      h("div", { class: "fields" }, this.nameField(layer, id, nameLabel), values.map((f) => this.field(layer, f, id))),
    ];
    if (flags.length) out.push(h("div", { class: "flags" }, flags.map((f) => this.field(layer, f, id))));
    for (const field of nested) out.push(this.innerLayer(layer, field, `${id}-${field.name}`));
    return out;
  }

  innerLayer(parent, field, id) {
    const inner = parent[field.name] && typeof parent[field.name] === "object" ? parent[field.name] : null;
    const known = inner && this.schema.layerTypes.has(inner.type);
    const head = h(
      "div",
      { class: "card-head" },
      field.layerTypes.length > 1 || !known
        ? this.typeSelect(inner?.type, field.layerTypes, `${id}-type`, `${field.name} type`, (type) => {
            parent[field.name] = this.retype(inner, type);
            this.render();
            this.changed("form");
          })
        : h("span", { class: "type-fixed" }, inner.type),
    );
    return h(
      "fieldset",
      { class: "inner-layer", id: `${id}-card`, dataset: { field: field.name } },
      h("legend", {}, h("code", {}, field.name), " ", h("span", { class: "muted" }, field.description)),
      head,
      ...(known ? this.layerBody(inner, id, `${field.name} name`) : []),
      h("div", { class: "problems", id: `${id}-problems` }),
    );
  }

  /** One argument: a number box, a check box or a choice, labelled with Keras's own argument name. */
  field(layer, field, cardId) {
    const id = `${cardId}-${field.name}`;
    const has = Object.hasOwn(layer, field.name);
    const value = has ? layer[field.name] : field.default;
    const problem = h("p", { class: "field-problem", id: `${id}-problem` });
    const wrapper = h("div", {
      class: `field field-${field.kind}${has ? " is-set" : ""}`,
      dataset: { field: field.name },
      title: field.description || null,
    });
    const commit = (next) => {
      this.setKey(layer, field.name, next === undefined || isDefault(field, next) ? undefined : next);
      wrapper.classList.toggle("is-set", Object.hasOwn(layer, field.name));
      this.changed("form");
    };
    let control;
    if (field.kind === "boolean") {
      control = h("input", { type: "checkbox", id, checked: Boolean(value), "aria-describedby": problem.id });
      control.addEventListener("change", () => commit(control.checked));
      wrapper.append(h("label", { class: "check", for: id }, control, h("code", {}, field.name)), problem);
      return wrapper;
    }
    if (field.kind === "enum") {
      control = h(
        "select",
        { id, "aria-describedby": problem.id },
        field.nullable ? h("option", { value: NULL_OPTION }, "None") : null,
        field.options.map((option) => h("option", { value: option }, option)),
      );
      control.value = value === null ? NULL_OPTION : String(value ?? field.options[0]);
      control.addEventListener("change", () => commit(control.value === NULL_OPTION ? null : control.value));
    } else if (field.kind === "integer" || field.kind === "number") {
      const bounds = {
        min: field.minimum ?? field.exclusiveMinimum,
        max: field.maximum ?? (field.exclusiveMaximum !== undefined ? null : undefined),
      };
      control = h("input", {
        type: "number", id, inputmode: field.kind === "integer" ? "numeric" : "decimal",
        step: field.kind === "integer" ? "1" : "any", min: bounds.min, max: bounds.max ?? null,
        value: value === null || value === undefined ? "" : String(value), "aria-describedby": problem.id,
        required: field.required,
      });
      control.addEventListener("input", () => commit(control.value === "" ? undefined : Number(control.value)));
    } else {
      const named = field.kind === "name-or-json";
      control = h("input", {
        type: "text", id, spellcheck: "false", "aria-describedby": problem.id,
        value: value === undefined ? "" : named && typeof value === "string" ? value : JSON.stringify(value),
        list: named ? `${id}-names` : null,
      });
      control.addEventListener("input", () => {
        const text = control.value.trim();
        try {
          // A built-in's name is written bare (glorot_uniform); an object, a number or null is JSON.
          commit(text === "" ? undefined : named && !JSON_START.test(text) ? text : JSON.parse(text));
          problem.textContent = "";
        } catch {
          problem.textContent = named
            ? `Write a name (${field.options.slice(0, 3).join(", ")}...) or a JSON object.`
            : "Write a JSON value.";
        }
      });
      if (named) {
        wrapper.append(h("datalist", { id: `${id}-names` }, field.options.map((name) => h("option", { value: name }))));
      }
    }
    wrapper.append(h("label", { for: id }, h("code", {}, field.name)), control, problem);
    return wrapper;
  }

  // -- results and problems ------------------------------------------------------------------------------------

  /** Put each layer's output shape and parameter count on its card (or clear them: summary null). */
  showResults(summary) {
    const rows = summary?.layers ?? [];
    // A graph's rows start with its inputs and follow Keras's order: a card finds its row by the layer's name.
    const graph = Array.isArray(this.spec.inputs);
    const byName = new Map(rows.map((row) => [row.name, row]));
    for (const card of this.list.querySelectorAll(":scope > .layer-card")) {
      const index = Number(card.dataset.path);
      const row = graph ? byName.get(this.spec.layers?.[index]?.name) : rows[index];
      const slot = card.querySelector(":scope > .card-result");
      slot.textContent = row ? `→ ${formatShape(row.output_shape)} · ${formatInt(row.params)} params` : "";
    }
  }

  /**
   * Show problems next to what they name and return those that named nothing on the form.
   * @param {{loc: (string|number)[], msg: string, fix?: string, severity: "error"|"warning"}[]} items locs relative
   *   to the model ("body" and, for a training, "model" taken off)
   */
  showProblems(items) {
    for (const node of document.querySelectorAll("#model-panel .problems, #model-panel .field-problem")) {
      node.replaceChildren();
    }
    // Only what the server marked: the JSON view and the shape box mark their own parse errors.
    for (const node of document.querySelectorAll("#model-panel [data-server-invalid]")) {
      node.removeAttribute("aria-invalid");
      delete node.dataset.serverInvalid;
    }
    for (const card of document.querySelectorAll("#model-panel .has-error, #model-panel .has-warning")) {
      card.classList.remove("has-error", "has-warning");
    }
    const unplaced = [];
    for (const item of items) {
      const place = this.place(item.loc);
      if (!place) {
        unplaced.push(item);
        continue;
      }
      place.card?.classList.add(item.severity === "error" ? "has-error" : "has-warning");
      if (item.severity === "error" && place.control) {
        place.control.setAttribute("aria-invalid", "true");
        place.control.dataset.serverInvalid = "";
      }
      place.slot.append(problemNode(item, place.prefix));
    }
    return unplaced;
  }

  /** The form element a loc names: {slot, card?, control?, prefix?}, or null. */
  place(loc) {
    if (loc[0] !== "layers" || typeof loc[1] !== "number") {
      if (INPUT_KEYS.includes(loc[0])) return { slot: byId("input-problems"), control: this.inputDims };
      if (loc[0] === "name") return { slot: byId("model-problems"), control: this.nameInput, prefix: "name" };
      if (loc[0] === "layers") return { slot: byId("layers-problems") };
      return null;
    }
    let layer = this.spec.layers?.[loc[1]];
    let id = `l${loc[1]}`;
    let i = 2;
    const card = document.getElementById(`${id}-card`);
    if (!card) return { slot: byId("layers-problems"), prefix: `layer ${loc[1]}` };
    for (;;) {
      const segment = loc[i];
      if (segment === undefined) {
        return { slot: byId(`${id}-problems`), card: document.getElementById(`${id}-card`) };
      }
      if (INPUT_KEYS.includes(segment) && id === `l${loc[1]}` && loc[1] === 0) {
        return { slot: byId("input-problems"), card, control: this.inputDims };
      }
      const inner = layer?.[segment];
      if (inner && typeof inner === "object" && !Array.isArray(inner) && document.getElementById(`${id}-${segment}-card`)) {
        id = `${id}-${segment}`;
        layer = inner;
        i += 1;
        continue;
      }
      const control = document.getElementById(`${id}-${segment}`);
      const problem = document.getElementById(`${id}-${segment}-problem`);
      const rest = loc.slice(i + 1).join(".");
      if (control && problem) return { slot: problem, card, control, prefix: rest || null };
      return { slot: byId(`${id}-problems`), card, prefix: loc.slice(i).join(".") };
    }
  }

  // -- tabs ----------------------------------------------------------------------------------------------------

  /** Layers | JSON: the ARIA tabs pattern (arrow keys move between tabs, Tab moves into the panel). */
  setupTabs() {
    const tabs = [byId("tab-layers"), byId("tab-json")];
    const select = (tab) => {
      for (const t of tabs) {
        const selected = t === tab;
        t.setAttribute("aria-selected", String(selected));
        t.tabIndex = selected ? 0 : -1;
        byId(t.getAttribute("aria-controls")).hidden = !selected;
      }
    };
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", () => select(tab));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(i + step + tabs.length) % tabs.length];
        select(next);
        next.focus();
        event.preventDefault();
      });
    });
  }
}

/** A problem as a paragraph: what happened, and for a warning how to fix it. */
export function problemNode(item, prefix) {
  const label = item.severity === "error" ? "Error" : "Warning";
  return h(
    "p",
    { class: `problem ${item.severity}` },
    h("strong", {}, `${label}${prefix ? ` (${prefix})` : ""}: `),
    item.msg,
    item.fix ? h("span", { class: "fix" }, ` Fix: ${item.fix}`) : null,
  );
}
