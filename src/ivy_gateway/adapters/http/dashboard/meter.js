// Meter view: live values, history chart, events, command console and relay control.

import { ApiError, getJson, meterPath, request } from "./api.js";
import { lineChart } from "./chart.js";
import { formatAgo, formatTime, formatValue, h, replace } from "./dom.js";

const RANGES = [
  ["15m", 15 * 60], ["1h", 3600], ["6h", 6 * 3600], ["24h", 86400],
  ["7d", 7 * 86400], ["30d", 30 * 86400], ["365d", 365 * 86400],
];
const BUCKETS_S = [10, 30, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400];
const AGGREGATES = ["auto", "raw", "avg", "min", "max", "first", "last"];
const TARGET_POINTS = 150;
const COMMAND_TIMEOUT_MS = 20000;

function bucketFor(rangeS) {
  return BUCKETS_S.find((b) => b >= rangeS / TARGET_POINTS) || BUCKETS_S[BUCKETS_S.length - 1];
}

function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function mountMeter(root, meterId, { navigate }) {
  let meter = { meterId, values: {} };
  let chartState = null; // {quantity, unit, fromMs, toMs, raw, points}
  let redrawTimer = null;
  let stopped = false;

  // -- skeleton --------------------------------------------------------------------------
  const title = h("h1", { class: "mono" }, meterId);
  const facts = h("dl", { class: "facts" });
  const valuesBody = h("tbody", {});
  const quantitySelect = h("select", { "aria-label": "quantity", "data-testid": "history-quantity" });
  const rangeSelect = h("select", { "aria-label": "range", "data-testid": "history-range" },
    ...RANGES.map(([label, s]) => h("option", { value: s, selected: label === "1h" }, label)));
  const aggSelect = h("select", { "aria-label": "aggregate", "data-testid": "history-agg" },
    ...AGGREGATES.map((a) => h("option", { value: a }, a === "auto" ? "auto (raw ≤ 1 h, else avg)" : a)));
  const chartBox = h("div", { class: "chart-box", "data-testid": "history" });
  const chartNote = h("p", { class: "muted" });
  const eventsBody = h("tbody", {});
  const relayState = h("strong", { "data-testid": "relay-state" }, "unknown");
  const log = h("ol", { class: "command-log", "data-testid": "command-log" });
  const dialog = buildDialog();

  for (const select of [quantitySelect, rangeSelect, aggSelect]) select.addEventListener("change", loadHistory);

  replace(
    root,
    h("p", {}, h("a", { href: "#/" }, "← Fleet")),
    h("header", { class: "meter-head" }, title, facts),
    h("div", { class: "grid two" },
      section("Live values", h("table", { class: "values", "data-testid": "live-values" },
        h("thead", {}, h("tr", {}, h("th", {}, "Quantity"), h("th", { class: "num" }, "Value"), h("th", {}, "Time"))),
        valuesBody)),
      section("Commands", buildConsole(), h("h3", {}, "Relay"), buildRelay(), h("h3", {}, "Results"), log)),
    section("History",
      h("div", { class: "filters" }, quantitySelect, rangeSelect, aggSelect,
        h("button", { type: "button", onclick: loadHistory }, "Refresh")),
      chartBox, chartNote),
    section("Events", h("table", { class: "events", "data-testid": "events" },
      h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Event"), h("th", {}, "Severity"), h("th", {}, "Data"))),
      eventsBody)),
    dialog.element,
  );

  // -- facts and live values -------------------------------------------------------------
  function renderFacts() {
    const badge = h("span", { class: `badge ${meter.online ? "online" : "offline"}`, "data-testid": "meter-state" },
      meter.online ? "online" : "offline");
    const rows = [
      ["State", badge], ["Protocol", meter.protocol || "—"], ["Model", meter.model || "—"],
      ["IP", meter.ip || "—"], ["First seen", formatTime(meter.firstSeen)],
      ["Last seen", `${formatTime(meter.lastSeen)} (${formatAgo(meter.lastSeen)})`],
    ];
    replace(facts, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function renderValues(changed = new Set()) {
    const names = Object.keys(meter.values).sort();
    replace(valuesBody, ...names.map((q) => {
      const entry = meter.values[q];
      const cell = h("td", { class: `num${changed.has(q) ? " flash" : ""}`, "data-quantity": q }, formatValue(entry));
      return h("tr", {}, h("td", { class: "mono" }, q), cell, h("td", { class: "muted" }, formatTime(entry.ts)));
    }));
    if (names.length === 0) valuesBody.append(h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No values yet.")));
    const current = quantitySelect.value;
    const options = names.length ? names : ["voltage_l1"];
    if (quantitySelect.options.length !== options.length) {
      replace(quantitySelect, ...options.map((q) => h("option", { value: q }, q)));
      const preferred = ["voltage_l1", "voltage", "power_active_total"].find((q) => options.includes(q));
      quantitySelect.value = options.includes(current) ? current : preferred || options[0];
    }
  }

  async function loadMeter() {
    try {
      meter = await getJson(meterPath(meterId));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        replace(facts, h("p", { class: "error" }, "This meter is not known to the gateway."));
        return false;
      }
      replace(facts, h("p", { class: "error" }, `Could not load the meter: ${error.message}`));
      return false;
    }
    renderFacts();
    renderValues();
    return true;
  }

  // -- history -----------------------------------------------------------------------------
  async function loadHistory() {
    const quantity = quantitySelect.value;
    if (!quantity) return;
    const rangeS = Number(rangeSelect.value);
    const toMs = Date.now();
    const fromMs = toMs - rangeS * 1000;
    let agg = aggSelect.value;
    if (agg === "auto") agg = rangeS <= 3600 ? "raw" : "avg";
    const params = new URLSearchParams({ quantity, from: String(fromMs), to: String(toMs + 1000) });
    if (agg !== "raw") {
      params.set("bucket", String(bucketFor(rangeS)));
      params.set("agg", agg);
    }
    chartNote.textContent = "Loading…";
    try {
      const data = await getJson(`${meterPath(meterId, "/readings")}?${params}`);
      if (stopped) return;
      const series = (data.series || {})[quantity] || { unit: "", points: [] };
      chartState = { quantity, unit: series.unit, fromMs, toMs, raw: agg === "raw", points: series.points };
      drawChart();
      const bucket = agg === "raw" ? "raw readings" : `${agg} per ${bucketFor(rangeS)} s`;
      chartNote.textContent = `${series.points.length} points, ${bucket}.`;
    } catch (error) {
      chartNote.textContent = `Could not load the history: ${error.message}`;
    }
  }

  function drawChart() {
    if (!chartState) return;
    const { points, unit, fromMs, quantity } = chartState;
    replace(chartBox, lineChart(points, { fromMs, toMs: Math.max(chartState.toMs, Date.now()), unit, label: quantity }));
  }

  function appendLivePoint(quantity, value, ts) {
    if (!chartState || !chartState.raw || chartState.quantity !== quantity) return;
    chartState.points.push([ts, value]);
    if (redrawTimer === null) redrawTimer = setTimeout(() => { redrawTimer = null; drawChart(); }, 1000);
  }

  // -- events ------------------------------------------------------------------------------
  function eventRow(ev) {
    return h("tr", { class: `sev-${ev.severity}` }, h("td", { class: "muted" }, formatTime(ev.ts)),
      h("td", {}, ev.event), h("td", {}, ev.severity), h("td", { class: "mono small" }, JSON.stringify(ev.data || {})));
  }

  async function loadEvents() {
    try {
      const data = await getJson(`${meterPath(meterId, "/events")}?limit=100`);
      replace(eventsBody, ...data.events.map(eventRow));
      if (data.events.length === 0) eventsBody.append(h("tr", { class: "empty" }, h("td", { colspan: 4, class: "muted" }, "No events in the last 7 days.")));
    } catch (error) {
      replace(eventsBody, h("tr", {}, h("td", { colspan: 4, class: "error" }, error.message)));
    }
  }

  // -- commands ----------------------------------------------------------------------------
  function buildConsole() {
    const method = h("select", { "aria-label": "command", "data-testid": "command-method" },
      h("option", { value: "read_register" }, "Read register"),
      h("option", { value: "read_all" }, "Read all"),
      h("option", { value: "sync_time" }, "Sync time"),
      h("option", { value: "read_relay_state" }, "Read relay state"),
      h("option", { value: "read_address" }, "Read address"));
    const register = h("input", { type: "text", placeholder: "register, e.g. voltage_l1", list: "quantity-names",
      "aria-label": "register", "data-testid": "command-register", value: "voltage_l1" });
    const names = h("datalist", { id: "quantity-names" });
    const group = h("select", { "aria-label": "group", "data-testid": "command-group" },
      ...["instantaneous", "energy", "all"].map((g) => h("option", { value: g }, g)));
    const syncNote = h("span", { class: "muted" }, "sets the meter to the gateway's clock");
    function showParams() {
      register.hidden = method.value !== "read_register";
      group.hidden = method.value !== "read_all";
      syncNote.hidden = method.value !== "sync_time";
      replace(names, ...Object.keys(meter.values).sort().map((q) => h("option", { value: q })));
    }
    method.addEventListener("change", showParams);
    showParams();
    function send(event) {
      event.preventDefault();
      const params = {};
      if (method.value === "read_register") params.register = register.value.trim();
      if (method.value === "read_all") params.group = group.value;
      runCommand(method.value, params);
    }
    return h("form", { class: "console", onsubmit: send }, method, register, names, group, syncNote,
      h("button", { type: "submit", "data-testid": "command-send" }, "Send"));
  }

  function buildRelay() {
    const ask = (state) => () => dialog.open(state);
    return h("div", { class: "relay" }, h("span", {}, "Relay: "), relayState, " ",
      h("button", { type: "button", class: "danger", "data-testid": "relay-open", onclick: ask("open") }, "Open (disconnect)"),
      h("button", { type: "button", "data-testid": "relay-close", onclick: ask("close") }, "Close (reconnect)"),
      h("button", { type: "button", class: "quiet", onclick: () => runCommand("read_relay_state", {}) }, "Read state"));
  }

  function buildDialog() {
    const text = h("p", {});
    const confirm = h("button", { type: "button", class: "danger", "data-testid": "relay-confirm" }, "Confirm");
    const cancel = h("button", { type: "button", "data-testid": "relay-cancel" }, "Cancel");
    const element = h("dialog", { class: "confirm", "data-testid": "relay-dialog" },
      h("h2", {}, "Confirm relay command"), text, h("div", { class: "actions" }, cancel, confirm));
    let pending = null;
    cancel.addEventListener("click", () => element.close());
    confirm.addEventListener("click", () => {
      element.close();
      if (pending) runCommand("relay_control", { state: pending });
    });
    return {
      element,
      open(state) {
        pending = state;
        text.textContent = state === "open"
          ? `Open the relay of meter ${meterId}? This disconnects the customer's supply.`
          : `Close the relay of meter ${meterId}? This reconnects the customer's supply.`;
        confirm.textContent = state === "open" ? "Open relay" : "Close relay";
        element.showModal();
      },
    };
  }

  async function runCommand(method, params) {
    const status = h("span", { class: "badge pending" }, "sending");
    const output = h("pre", { class: "result" });
    const entry = h("li", { "data-method": method, "data-state": "pending" },
      h("div", {}, h("span", { class: "muted" }, formatTime(Date.now())), " ", h("strong", {}, method), " ",
        h("span", { class: "mono small" }, JSON.stringify(params)), " ", status),
      output);
    log.prepend(entry);
    const finish = (state, response) => {
      entry.dataset.state = state;
      status.className = `badge ${state === "succeeded" ? "online" : "offline"}`;
      status.textContent = state;
      output.textContent = JSON.stringify(response, null, 2);
      if (state === "succeeded" && response.result && typeof response.result.state === "string") {
        relayState.textContent = response.result.state === "close" ? "closed" : response.result.state;
      }
    };
    try {
      const body = { method, params, timeoutMs: COMMAND_TIMEOUT_MS };
      const accepted = await request(`${meterPath(meterId, "/commands")}?wait=false`, { method: "POST", body });
      status.textContent = "pending";
      entry.dataset.commandId = accepted.data.id;
      const deadline = Date.now() + COMMAND_TIMEOUT_MS + 10000;
      while (!stopped && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        const record = await getJson(`/api/v1/commands/${encodeURIComponent(accepted.data.id)}`);
        if (record.state !== "pending") { finish(record.state, record.response); return; }
      }
      if (!stopped) finish("failed", { error: "no result within the timeout; see the audit log" });
    } catch (error) {
      const response = error instanceof ApiError ? error.body : { error: error.message };
      finish("failed", error.status === 401 ? { error: "a bearer token is required: enter one above" } : response);
    }
  }

  // -- live --------------------------------------------------------------------------------
  function onLive({ kind, data }) {
    if (!data || data.meterId !== meterId) return;
    if (kind === "telemetry") {
      const changed = new Set();
      meter.online = true;
      meter.lastSeen = Math.max(meter.lastSeen || 0, data.ts);
      for (const [q, v] of Object.entries(data.values || {})) {
        meter.values[q] = { value: v.value, unit: v.unit, ts: data.ts };
        changed.add(q);
        appendLivePoint(q, v.value, data.ts);
      }
      renderFacts();
      renderValues(changed);
    } else if (kind === "status") {
      Object.assign(meter, { online: data.online, protocol: data.protocol, model: data.model, ip: data.ip });
      renderFacts();
    } else if (kind === "event") {
      const empty = eventsBody.querySelector("tr.empty");
      if (empty) empty.remove();
      eventsBody.prepend(eventRow(data));
      if (data.event === "relay_opened") relayState.textContent = "open";
      if (data.event === "relay_closed") relayState.textContent = "closed";
    }
  }

  loadMeter().then((found) => {
    if (found && !stopped) { loadHistory(); loadEvents(); }
  });
  const ticker = setInterval(renderFacts, 5000);
  return {
    onLive,
    unmount: () => { stopped = true; clearInterval(ticker); if (redrawTimer) clearTimeout(redrawTimer); },
    navigate,
  };
}
