// Small DOM and formatting helpers. Text from the server is only ever set as text (never parsed as HTML).

/**
 * Create an element: h("button", {class: "x", onclick: f, "aria-label": "..."}, "text", child, ...).
 * Attributes whose value is false, null or undefined are left out; `true` sets an empty attribute.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (key in element && typeof value !== "string") {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? "" : value);
    }
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

/** The element with this id (throws if the page lacks it: a broken page should say so at once). */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

/** Call `fn` once `ms` have passed without another call. */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.flush = (...args) => {
    clearTimeout(timer);
    fn(...args);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

const integer = new Intl.NumberFormat("en-US");

/** 6120 -> "6,120", as Keras prints parameter counts. */
export function formatInt(n) {
  return n === null || n === undefined ? "—" : integer.format(n);
}

/** [null, 10, 30] -> "(None, 10, 30)", as Keras prints shapes. */
export function formatShape(shape) {
  if (!Array.isArray(shape)) return "—";
  const dims = shape.map((d) => (d === null ? "None" : String(d)));
  return `(${dims.join(", ")}${dims.length === 1 ? "," : ""})`;
}

/** Bytes as Keras's summary prints them (readable_memory_size: base 1024, two decimals, B to PB), as the server's
 *  messages do (app/formatting.py): 800 -> "800.00 B", 25684 -> "25.08 KB"; in scientific notation from 1024 PB on
 *  (1.15e+18 B), where a figure in PB would be a long string of digits. */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  if (bytes >= 1024 ** units.length) return `${bytes.toExponential(2)} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(2)} ${units[unit]}`;
}

/** A loss for people: 4 significant digits, or "—" for a missing or non-finite one (the API sends null). */
export function formatLoss(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toPrecision(4);
}

/** Read from localStorage as JSON, or `fallback` when absent, unreadable or storage is off. */
export function loadLocal(key, fallback) {
  try {
    const text = localStorage.getItem(key);
    return text === null ? fallback : JSON.parse(text);
  } catch {
    return fallback;
  }
}

/** Write JSON to localStorage; a full or disabled storage only loses the convenience. */
export function saveLocal(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // private mode or quota: nothing to do
  }
}
