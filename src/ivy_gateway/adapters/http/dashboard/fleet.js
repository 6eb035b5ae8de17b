// Fleet view: every meter, searchable and filterable, updated live from the SSE stream.

import { getJson } from "./api.js";
import { formatAgo, formatValue, h, replace } from "./dom.js";

/** Columns of live values: the first quantity a meter has of each list is shown. */
export const KEY_VALUES = [
  { title: "Voltage", quantities: ["voltage_l1", "voltage"] },
  { title: "Current", quantities: ["current_l1", "current"] },
  { title: "Power", quantities: ["power_active_total"] },
  { title: "Energy import", quantities: ["energy_active_import_total", "energy_active_combined_total"] },
];

function keyValue(meter, column) {
  for (const q of column.quantities) {
    if (meter.values && meter.values[q]) return { quantity: q, entry: meter.values[q] };
  }
  return { quantity: column.quantities[0], entry: null };
}

export function mountFleet(root, { navigate }) {
  const meters = new Map(); // meterId → meter JSON (as /api/v1/meters, kept current)
  const rows = new Map(); // meterId → {row, cells}
  const filters = { text: "", state: "all", protocol: "all" };

  const counts = {
    total: h("span", { class: "count", "data-testid": "count-total" }, "0"),
    online: h("span", { class: "count online", "data-testid": "count-online" }, "0"),
    offline: h("span", { class: "count offline", "data-testid": "count-offline" }, "0"),
    shown: h("span", { class: "muted" }, ""),
  };
  const search = h("input", {
    type: "search",
    placeholder: "Search meter id, model, IP…",
    "aria-label": "search meters",
    "data-testid": "fleet-search",
    oninput: (e) => { filters.text = e.target.value.trim().toLowerCase(); applyFilters(); },
  });
  const stateSelect = h(
    "select",
    { "aria-label": "online state", "data-testid": "fleet-state",
      onchange: (e) => { filters.state = e.target.value; applyFilters(); } },
    h("option", { value: "all" }, "All states"),
    h("option", { value: "online" }, "Online"),
    h("option", { value: "offline" }, "Offline"),
  );
  const protocolSelect = h(
    "select",
    { "aria-label": "protocol", "data-testid": "fleet-protocol",
      onchange: (e) => { filters.protocol = e.target.value; applyFilters(); } },
    h("option", { value: "all" }, "All protocols"),
    h("option", { value: "dlt645" }, "DL/T 645"),
    h("option", { value: "dlms" }, "DLMS"),
  );
  const body = h("tbody", {});
  const note = h("p", { class: "muted" }, "Loading meters…");
  const table = h(
    "table",
    { class: "fleet", "data-testid": "fleet-table" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Meter"), h("th", {}, "Protocol"), h("th", {}, "Model"), h("th", {}, "State"),
      h("th", {}, "Last seen"), ...KEY_VALUES.map((c) => h("th", { class: "num" }, c.title)))),
    body,
  );
  replace(
    root,
    h("section", { class: "toolbar" },
      h("div", { class: "counts" },
        h("span", {}, "Meters ", counts.total), h("span", {}, "online ", counts.online),
        h("span", {}, "offline ", counts.offline), counts.shown),
      h("div", { class: "filters" }, search, stateSelect, protocolSelect)),
    note,
    table,
  );

  function matches(meter) {
    if (filters.state === "online" && !meter.online) return false;
    if (filters.state === "offline" && meter.online) return false;
    if (filters.protocol !== "all" && meter.protocol !== filters.protocol) return false;
    if (!filters.text) return true;
    const haystack = [meter.meterId, meter.model, meter.ip, meter.protocol].join(" ").toLowerCase();
    return haystack.includes(filters.text);
  }

  function updateCounts() {
    let online = 0;
    for (const m of meters.values()) if (m.online) online += 1;
    counts.total.textContent = String(meters.size);
    counts.online.textContent = String(online);
    counts.offline.textContent = String(meters.size - online);
  }

  function applyFilters() {
    let shown = 0;
    for (const [id, { row }] of rows) {
      const visible = matches(meters.get(id));
      row.hidden = !visible;
      if (visible) shown += 1;
    }
    counts.shown.textContent = shown === meters.size ? "" : `(${shown} shown)`;
    note.textContent = meters.size === 0 ? "No meter has connected yet." : "";
    note.hidden = meters.size > 0;
  }

  function renderRow(meter, changed = new Set()) {
    let entry = rows.get(meter.meterId);
    if (!entry) {
      const link = h("a", { href: `#/meter/${meter.meterId}`, class: "mono" }, meter.meterId);
      const cells = {
        protocol: h("td", {}), model: h("td", {}), state: h("td", {}), seen: h("td", { class: "muted" }),
        values: KEY_VALUES.map(() => h("td", { class: "num" })),
      };
      const row = h("tr", {
        "data-meter-id": meter.meterId,
        onclick: (e) => { if (e.target.tagName !== "A") navigate(`#/meter/${meter.meterId}`); },
      }, h("td", {}, link), cells.protocol, cells.model, cells.state, cells.seen, ...cells.values);
      entry = { row, cells };
      rows.set(meter.meterId, entry);
      insertSorted(row, meter.meterId);
    }
    const { cells } = entry;
    cells.protocol.textContent = meter.protocol || "—";
    cells.model.textContent = meter.model || "—";
    replace(cells.state, h("span", { class: `badge ${meter.online ? "online" : "offline"}` },
      meter.online ? "online" : "offline"));
    cells.seen.textContent = formatAgo(meter.lastSeen);
    cells.seen.title = meter.lastSeen ? new Date(meter.lastSeen).toISOString() : "";
    KEY_VALUES.forEach((column, i) => {
      const { quantity, entry: value } = keyValue(meter, column);
      const cell = cells.values[i];
      cell.dataset.quantity = quantity;
      cell.textContent = formatValue(value);
      if (changed.has(quantity)) flash(cell);
    });
  }

  function insertSorted(row, meterId) {
    for (const other of body.children) {
      if (other.dataset.meterId > meterId) { body.insertBefore(row, other); return; }
    }
    body.append(row);
  }

  function flash(cell) {
    cell.classList.remove("flash");
    void cell.offsetWidth; // restart the CSS animation
    cell.classList.add("flash");
  }

  async function load() {
    try {
      const data = await getJson("/api/v1/meters");
      for (const meter of data.meters) {
        const known = meters.get(meter.meterId);
        // Keep values that arrived live after the list was built.
        if (known) meter.values = { ...meter.values, ...newer(known.values, meter.values) };
        meters.set(meter.meterId, meter);
        renderRow(meter);
      }
      updateCounts();
      applyFilters();
    } catch (error) {
      note.hidden = false;
      note.textContent = `Could not load the meters: ${error.message}`;
    }
  }

  function newer(mine, theirs) {
    const out = {};
    for (const [q, v] of Object.entries(mine || {})) {
      if (!theirs[q] || (theirs[q].ts || 0) < (v.ts || 0)) out[q] = v;
    }
    return out;
  }

  function onLive({ kind, data }) {
    if (!data || !data.meterId) return;
    let meter = meters.get(data.meterId);
    const isNew = !meter;
    if (isNew) meter = { meterId: data.meterId, online: false, values: {}, lastSeen: null };
    const changed = new Set();
    if (kind === "telemetry") {
      meter.online = true;
      meter.protocol = data.protocol || meter.protocol;
      meter.lastSeen = Math.max(meter.lastSeen || 0, data.ts);
      for (const [q, v] of Object.entries(data.values || {})) {
        meter.values[q] = { value: v.value, unit: v.unit, ts: data.ts };
        changed.add(q);
      }
    } else if (kind === "status") {
      meter.online = data.online;
      meter.protocol = data.protocol || meter.protocol;
      meter.model = data.model || meter.model;
      meter.ip = data.ip || meter.ip;
    } else {
      return;
    }
    meters.set(meter.meterId, meter);
    renderRow(meter, changed);
    updateCounts();
    if (isNew || kind === "status") applyFilters();
    else rows.get(meter.meterId).row.hidden = !matches(meter);
  }

  const ticker = setInterval(() => {
    for (const [id, { cells }] of rows) cells.seen.textContent = formatAgo(meters.get(id).lastSeen);
  }, 5000);
  const resync = setInterval(load, 60000);
  load();
  return { onLive, unmount: () => { clearInterval(ticker); clearInterval(resync); } };
}
