// The dashboard's only door to the gateway: the REST API and the live (SSE) stream.
//
// The bearer token (when the API asks for one) lives in sessionStorage only: it is gone
// when the tab closes, never written to localStorage, a cookie, the URL or the console.
// The live stream is read with fetch() rather than EventSource, because EventSource
// cannot send an Authorization header.

const TOKEN_KEY = "ivy-gateway.token";
const authListeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** ``listener(reason)`` runs when the API answers 401: the page asks for a token. */
export function onAuthRequired(listener) {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

function authRequired(reason) {
  for (const listener of authListeners) listener(reason);
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const token = getToken();
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

async function parseBody(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("application/json")) return response.json();
  return response.text();
}

/**
 * ``request("/api/v1/meters")`` → parsed JSON. Throws ApiError for an HTTP error, except
 * for the statuses in ``accept`` (a command's failure outcome is a normal answer).
 */
export async function request(path, { method = "GET", body, accept = [] } = {}) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const data = await parseBody(response);
  if (response.ok || accept.includes(response.status)) return { status: response.status, data };
  const error = (data && data.error) || {};
  if (response.status === 401) authRequired(error.message || "a bearer token is required");
  throw new ApiError(
    response.status,
    error.code || (data && data.errorCode) || "http_error",
    error.message || (data && data.error) || `HTTP ${response.status}`,
    data,
  );
}

export async function getJson(path) {
  return (await request(path)).data;
}

/** A text resource (``/metrics``); throws ApiError for an HTTP error. */
export async function getText(path) {
  const response = await fetch(path, { headers: headers({ Accept: "text/plain" }), cache: "no-store" });
  if (response.status === 401) authRequired("this page needs a bearer token");
  if (!response.ok) throw new ApiError(response.status, "http_error", `HTTP ${response.status}`, null);
  return response.text();
}

export function meterPath(meterId, rest = "") {
  return `/api/v1/meters/${encodeURIComponent(meterId)}${rest}`;
}

// -- live stream -----------------------------------------------------------------------

function parseEventBlock(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return null;
  try {
    return { kind, data: JSON.parse(data.join("\n")) };
  } catch {
    return null;
  }
}

/**
 * Keeps one live stream open and reconnects with backoff. ``onMessage({kind, data})`` for
 * every event; ``onState("live" | "connecting" | "offline" | "unauthorized")``.
 * Returns a function that stops it.
 */
export function openLiveStream(onMessage, onState, params = "types=telemetry,status,event") {
  let stopped = false;
  let controller = null;
  let delayMs = 1000;

  async function once() {
    controller = new AbortController();
    onState("connecting");
    const response = await fetch(`/api/v1/live?${params}`, {
      headers: headers({ Accept: "text/event-stream" }),
      cache: "no-store",
      signal: controller.signal,
    });
    if (response.status === 401) {
      onState("unauthorized");
      authRequired("the live feed needs a bearer token");
      return;
    }
    if (!response.ok || !response.body) throw new Error(`live feed: HTTP ${response.status}`);
    onState("live");
    delayMs = 1000;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const message = parseEventBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (message) onMessage(message);
      }
    }
  }

  async function loop() {
    while (!stopped) {
      try {
        await once();
      } catch {
        // A network error or an aborted stream: reconnect below unless stopped.
      }
      if (stopped) return;
      onState("offline");
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, 15000);
    }
  }

  loop();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

// -- Prometheus text format (for the gateway view) --------------------------------------

/** "name{a=\"x\"} 1.5" lines → [{name, labels: {a: "x"}, value: 1.5}]. */
export function parseMetrics(text) {
  const samples = [];
  const pattern = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/;
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = pattern.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

/** Sum of a metric's samples whose labels include ``where``. */
export function metricSum(samples, name, where = {}) {
  let total = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => sample.labels[k] === v)) total += sample.value;
  }
  return total;
}
