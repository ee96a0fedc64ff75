// How a front-end talks to layerwise: every function here is one documented endpoint (see /docs), called with
// fetch or EventSource and nothing else, so this file doubles as the worked example of the API.
//
// Every error the service answers has one body shape, {"detail": [{"loc": [...], "msg": "...", "type": "..."}]},
// whatever the status; ApiError carries those items so the page can put each next to what its loc names.

/** The service's root: the page is served at "/", so its API is beside it (also behind a path prefix). */
export const BASE = new URL(".", document.baseURI);

/** An answer other than 2xx, or no answer at all (status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {{loc: (string|number)[], msg: string, type: string}[]} detail the error items
   * @param {number|null} retryAfter seconds, from Retry-After (a 429)
   */
  constructor(status, detail, retryAfter = null) {
    super(detail.map((item) => item.msg).join("; "));
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  /** Read an error response: the shared body shape, or (from a proxy, say) whatever came, as one item. */
  static async from(response) {
    let detail = null;
    try {
      const body = await response.json();
      if (Array.isArray(body?.detail)) detail = body.detail;
    } catch {
      // not JSON: fall through
    }
    detail ??= [{ loc: [], msg: `${response.status} ${response.statusText}`.trim(), type: "http_error" }];
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    return new ApiError(response.status, detail, Number.isFinite(retryAfter) ? retryAfter : null);
  }
}

// An API key, when the service wants one (LAYERWISE_API_KEY): kept for this tab only, sent as X-API-Key.
const KEY_STORE = "layerwise.apiKey";
let apiKey = sessionStorage.getItem(KEY_STORE);

/** Use this API key from now on (null forgets it). */
export function setApiKey(key) {
  apiKey = key || null;
  if (apiKey) sessionStorage.setItem(KEY_STORE, apiKey);
  else sessionStorage.removeItem(KEY_STORE);
}

/** The absolute URL of an API path with its query parameters (undefined and null ones left out). */
export function apiUrl(path, params = {}) {
  const url = new URL(path, BASE);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  return url;
}

/**
 * One request: JSON in, the Response out when 2xx, else an ApiError.
 * @param {string} method
 * @param {URL} url
 * @param {{body?: unknown, accept?: string, signal?: AbortSignal}} options
 */
async function call(method, url, { body, accept = "application/json", signal } = {}) {
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (apiKey) headers["X-API-Key"] = apiKey;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, [
      { loc: [], msg: "the server did not answer: is layerwise still running?", type: "network_error" },
    ]);
  }
  if (!response.ok) {
    const error = await ApiError.from(response);
    // The page asks for a key once, wherever the 401 came from.
    if (error.status === 401) window.dispatchEvent(new CustomEvent("layerwise:unauthorized", { detail: error }));
    throw error;
  }
  return response;
}

/** The request the page sends for a summary, as data: what copy-as-curl prints. */
export function summaryRequest(spec, batchSize) {
  return { method: "POST", url: apiUrl("v1/models/summary", { batch_size: batchSize }), body: spec };
}

/** POST /v1/models/summary: each layer's output_shape and params as Keras computes them, Mult-Adds, memory and
 *  warnings. A model Keras refuses, or one over a size limit, is a 422 whose items name the layer. */
export async function summarize(spec, { batchSize, signal } = {}) {
  const request = summaryRequest(spec, batchSize);
  const response = await call(request.method, request.url, { body: request.body, signal });
  return response.json();
}

/** POST /v1/models/diagram: the model drawn as Keras's plot_model draws it, as SVG text. */
export async function drawModel(spec, { signal } = {}) {
  const response = await call("POST", apiUrl("v1/models/diagram"), { body: spec, accept: "image/svg+xml", signal });
  return response.text();
}

/** POST /v1/models/export?format=python|keras_json|spec: a Keras 3 script, Keras's own model.to_json(), or the spec. */
export async function exportModel(spec, format) {
  const response = await call("POST", apiUrl("v1/models/export", { format }), { body: spec, accept: "*/*" });
  return response.text();
}

/** The request the page sends to start a training, as data. */
export function trainingRequest(body) {
  return { method: "POST", url: apiUrl("v1/trainings"), body };
}

/** POST /v1/trainings: queue a run. Answers 202 at once with the queued run and its Location. */
export async function startTraining(body) {
  const request = trainingRequest(body);
  const response = await call(request.method, request.url, { body: request.body });
  const run = await response.json();
  const location = response.headers.get("Location");
  return { run, url: location ? new URL(location, response.url) : apiUrl(`v1/trainings/${run.id}`) };
}

/** GET /v1/trainings/{id}: the run as it is now (status, progress, history so far, summary, request). */
export async function getRun(id) {
  const response = await call("GET", apiUrl(`v1/trainings/${encodeURIComponent(id)}`));
  return response.json();
}

/** GET /v1/trainings/{id}/model: the trained model of a succeeded run, a `.keras` file, as a Blob. */
export async function getRunModel(id) {
  const response = await call("GET", apiUrl(`v1/trainings/${encodeURIComponent(id)}/model`), {
    accept: "application/octet-stream",
  });
  return response.blob();
}

/** GET /v1/trainings/{id}/script: the run as a runnable Keras 3 script (text), for any run. */
export async function getRunScript(id) {
  const response = await call("GET", apiUrl(`v1/trainings/${encodeURIComponent(id)}/script`), { accept: "text/x-python" });
  return response.text();
}

/** DELETE /v1/trainings/{id}: cancel. A running run stops at its next batch; answers the ended run. A run that
 *  has already finished is a 409, which the caller can take as "too late, it ended on its own". */
export async function cancelRun(id) {
  const response = await call("DELETE", apiUrl(`v1/trainings/${encodeURIComponent(id)}`));
  return response.json();
}

/**
 * GET /v1/trainings/{id}/events with the browser's EventSource: `status` (queued, running), one `epoch` per epoch
 * with its logs, throttled `batch` progress, then `end` with the whole run. A late follower first gets the stored
 * events it missed; after a dropped connection EventSource resumes by itself with Last-Event-ID.
 *
 * @param {string} id
 * @param {{status?: Function, batch?: Function, epoch?: Function, end: Function, lost?: Function}} on handlers,
 *   each called with the event's parsed data
 * @returns {{close: () => void}}
 */
export function followRun(id, on) {
  const url = apiUrl(`v1/trainings/${encodeURIComponent(id)}/events`);
  // EventSource cannot send headers: with an API key the same stream is read with fetch.
  if (apiKey) return streamEvents(url, on);
  const source = new EventSource(url);
  let ended = false;
  for (const kind of ["status", "batch", "epoch"]) {
    source.addEventListener(kind, (event) => on[kind]?.(JSON.parse(event.data)));
  }
  source.addEventListener("end", (event) => {
    // The stream is over: close it, or EventSource would reconnect and follow a finished run again.
    ended = true;
    source.close();
    on.end(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    // CONNECTING: EventSource is retrying on its own. CLOSED: it gave up (the run is gone, or the answer was not
    // an event stream); the caller reads the run instead.
    if (!ended && source.readyState === EventSource.CLOSED) on.lost?.();
  });
  return { close: () => source.close() };
}

/** A run's event stream read with fetch (which can send the API key), parsed as text/event-stream. */
function streamEvents(url, on) {
  const controller = new AbortController();
  let ended = false;
  const dispatch = (block) => {
    let kind = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) continue; // a comment: the server's keep-alive ping
      const [field, ...rest] = line.split(":");
      const value = rest.join(":").replace(/^ /, "");
      if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (kind === "end") {
      ended = true;
      controller.abort();
      on.end(payload);
    } else {
      on[kind]?.(payload);
    }
  };
  (async () => {
    try {
      const response = await fetch(url, {
        headers: { Accept: "text/event-stream", "X-API-Key": apiKey },
        signal: controller.signal,
      });
      if (!response.ok || !response.body) throw new Error(`status ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
          dispatch(block);
          if (ended) return;
        }
      }
    } catch (error) {
      if (ended || error.name === "AbortError") return;
    }
    if (!ended) on.lost?.();
  })();
  return { close: () => controller.abort() };
}

/** The exact curl command for a request: single-quoted, so the JSON needs only its single quotes escaped. With an
 * API key in use, the key is left to the shell ($LAYERWISE_API_KEY), not written into the command. */
export function curlCommand({ method, url, body }) {
  const quote = (text) => `'${String(text).replaceAll("'", `'\\''`)}'`;
  const parts = ["curl", "-s"];
  if (method !== "GET" && !(method === "POST" && body !== undefined)) parts.push("-X", method);
  parts.push(quote(url.href));
  if (apiKey) parts.push("-H", '"X-API-Key: $LAYERWISE_API_KEY"');
  if (body !== undefined) {
    parts.push("-H", quote("Content-Type: application/json"), "-d", quote(JSON.stringify(body)));
  }
  return parts.join(" ");
}
