// What the page knows about layers, training and examples, read from the service's own OpenAPI document, so a
// layer type or argument added to the service shows up here without a change to the page.
//
// Layer types: the members of ModelSpec.layers' discriminated union (discriminator "type"). A layer's arguments:
// its schema's properties, less the discriminator, its name (edited in the card's header) and the properties the
// model itself also has (input_shape, batch_input_shape: Keras 2 lets the first layer carry the model's input,
// which the page edits with the model's). Each argument's kind, default, bounds and choices come from its schema.

import { apiUrl } from "./api.js";

/**
 * @typedef {object} Field
 * @property {string} name Keras's argument name
 * @property {"integer"|"number"|"boolean"|"enum"|"enum-list"|"layer"|"name-or-json"|"json"} kind how it is edited (an
 *   enum-list is a list of choices, such as compile's metrics)
 * @property {boolean} required
 * @property {boolean} nullable null is allowed (e.g. activation=None)
 * @property {*} default Keras 3's default, as the schema gives it (undefined for a required field)
 * @property {*} example a value to start a required field with
 * @property {string[]} [options] an enum's values (an enum-list's: those of its items)
 * @property {number} [maxItems] an enum-list's longest length
 * @property {string[]} [layerTypes] the layer types a wrapper field accepts
 * @property {number} [minimum] @property {number} [maximum]
 * @property {number} [exclusiveMinimum] @property {number} [exclusiveMaximum]
 * @property {string} description
 */

/**
 * @typedef {object} LayerType
 * @property {string} type the Keras class name
 * @property {string} description
 * @property {Field[]} fields
 */

/** Fetch /openapi.json and read what the page needs from it. */
export async function loadSchema() {
  const response = await fetch(apiUrl("openapi.json"));
  if (!response.ok) throw new Error(`GET openapi.json answered ${response.status}`);
  return readSchema(await response.json());
}

/** Read the layer types, the training fields and the examples out of an OpenAPI document. */
export function readSchema(openapi) {
  const components = openapi.components.schemas;
  const deref = (schema) => {
    while (schema?.$ref) schema = components[schema.$ref.split("/").pop()];
    return schema;
  };
  const modelSpec = components.ModelSpec;
  const union = modelSpec.properties.layers.items;
  const discriminator = union.discriminator?.propertyName ?? "type";
  const modelKeys = new Set(Object.keys(modelSpec.properties));
  const layerTypes = new Map();

  const typeOf = (schema) => deref(schema).properties[discriminator].const;

  const readField = (name, raw, required) => {
    let schema = raw;
    let nullable = false;
    if (schema.anyOf) {
      const others = schema.anyOf.filter((s) => s.type !== "null");
      nullable = others.length < schema.anyOf.length;
      schema = others.length === 1 ? { ...others[0], ...withoutKeys(schema, ["anyOf"]) } : schema;
    }
    const field = {
      name,
      required,
      nullable,
      // pydantic leaves a default of None out of the schema: an optional nullable field defaults to null.
      default: "default" in raw ? raw.default : !required && nullable ? null : undefined,
      example: schema.examples?.[0] ?? raw.examples?.[0],
      description: raw.description ?? schema.description ?? "",
      minimum: schema.minimum,
      maximum: schema.maximum,
      exclusiveMinimum: schema.exclusiveMinimum,
      exclusiveMaximum: schema.exclusiveMaximum,
    };
    const members = schema.oneOf ?? (schema.$ref ? [schema] : null);
    if (members && members.every((m) => deref(m)?.properties?.[discriminator]?.const)) {
      return { ...field, kind: "layer", layerTypes: members.map(typeOf) };
    }
    // A named vocabulary (ActivationName) is a $ref to its component.
    const choices = deref(schema)?.enum;
    if (choices) return { ...field, kind: "enum", options: choices };
    if (schema.type === "array" && deref(schema.items)?.enum) {
      return { ...field, kind: "enum-list", options: deref(schema.items).enum, maxItems: schema.maxItems };
    }
    if (schema.type === "boolean") return { ...field, kind: "boolean" };
    if (schema.type === "integer") return { ...field, kind: "integer" };
    if (schema.type === "number") return { ...field, kind: "number" };
    // A built-in's name or an object of its class (an initializer, a regularizer, a constraint): the names are
    // offered and written bare; anything else is JSON.
    // compile's loss too: a name, or one per output as a list or an object (a oneOf).
    const names = (schema.anyOf ?? schema.oneOf ?? []).map(deref).find((s) => s?.type === "string" && s.enum)?.enum;
    if (names) return { ...field, kind: "name-or-json", options: names };
    // object: an object of settings of its own (fit's early_stopping), not a free JSON value (compile's loss_weights).
    return { ...field, kind: "json", object: Boolean(deref(schema)?.properties) };
  };

  const readLayer = (schema) => {
    const type = schema.properties[discriminator].const;
    if (layerTypes.has(type)) return;
    const required = new Set(schema.required ?? []);
    const fields = [];
    for (const [name, raw] of Object.entries(schema.properties)) {
      if (name === discriminator || name === "name" || modelKeys.has(name)) continue;
      const field = readField(name, raw, required.has(name));
      fields.push(field);
    }
    layerTypes.set(type, { type, description: firstParagraph(schema.description ?? ""), fields });
    // Wrapped layer types (e.g. Bidirectional's LSTM) are read too, even if not top-level members.
    for (const field of fields) {
      if (field.kind === "layer") {
        for (const t of field.layerTypes) readLayer(deref({ $ref: `#/components/schemas/${t}` }));
      }
    }
  };
  const topLevel = union.oneOf.map((member) => deref(member));
  topLevel.forEach(readLayer);

  const fieldsOf = (name) => {
    const schema = components[name];
    const required = new Set(schema.required ?? []);
    return Object.fromEntries(
      Object.entries(schema.properties).map(([key, raw]) => [key, readField(key, raw, required.has(key))]),
    );
  };
  const training = {
    compile: fieldsOf("CompileSpec"),
    data: fieldsOf("DataSpec"),
    fit: fieldsOf("FitSpec"),
    top: fieldsOf("TrainingSpec"),
  };

  const body = openapi.paths["/v1/models/summary"].post.requestBody.content["application/json"];
  const examples = Object.entries(body.examples ?? {}).map(([key, example]) => ({
    key,
    summary: example.summary ?? key,
    value: example.value,
  }));

  return {
    discriminator,
    // The statuses a run ends in (app/runs/status.py's FINAL_STATUSES, published as a component).
    finalStatuses: new Set(components.FinalRunStatus.enum),
    layerTypes,
    topLevelTypes: topLevel.map((schema) => schema.properties[discriminator].const),
    training,
    examples,
  };
}

function withoutKeys(object, keys) {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

function firstParagraph(text) {
  return text.split("\n\n")[0].replaceAll("``", "").replaceAll("\n", " ");
}

/** A value to start a field with: its example, else its default, else the least value its bounds allow. */
export function starterValue(field, schema) {
  if (field.example !== undefined) return structuredClone(field.example);
  if (field.default !== undefined) return structuredClone(field.default);
  switch (field.kind) {
    case "layer":
      return newLayer(field.layerTypes[0], schema);
    case "enum":
      return field.options[0];
    case "boolean":
      return false;
    case "integer":
      return Math.max(1, field.minimum ?? 1);
    case "number":
      return field.minimum ?? 0;
    default:
      return null;
  }
}

/** A new layer of a type: its required arguments started, the rest left to Keras's defaults. */
export function newLayer(type, schema) {
  const layer = { [schema.discriminator]: type };
  for (const field of schema.layerTypes.get(type).fields) {
    if (field.required) layer[field.name] = starterValue(field, schema);
  }
  return layer;
}

/** Whether a value is what Keras would use anyway (so the spec can leave it out). */
export function isDefault(field, value) {
  return !field.required && field.default !== undefined && JSON.stringify(field.default) === JSON.stringify(value);
}
