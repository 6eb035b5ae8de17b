// Gateway view: connections, readings/s, publish and store backlogs, errors, cluster.
// Counters come from /api/v1/gateway; the finer figures from /metrics (Prometheus text).

import { getJson, getText, metricSum, parseMetrics } from "./api.js";
import { lineChart } from "./chart.js";
import { formatDuration, h, replace } from "./dom.js";

const REFRESH_MS = 2000;
const HISTORY = 150; // samples of readings/s kept for the sparkline (5 min at 2 s)

function tile(label, testid) {
  const value = h("div", { class: "tile-value", "data-testid": testid }, "—");
  const detail = h("div", { class: "tile-detail muted" });
  return { element: h("div", { class: "tile" }, h("div", { class: "tile-label" }, label), value, detail), value, detail };
}

/** The q-quantile of a Prometheus histogram from its cumulative buckets (upper bound). */
function quantile(samples, name, q) {
  const buckets = new Map();
  for (const sample of samples) {
    if (sample.name !== `${name}_bucket`) continue;
    const le = sample.labels.le === "+Inf" ? Infinity : Number(sample.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + sample.value);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (total === 0) return null;
  const found = sorted.find(([, count]) => count >= q * total);
  return found ? found[0] : null;
}

const has = (samples, name) => samples.some((x) => x.name === name);

export function mountGateway(root) {
  const tiles = {
    connections: tile("Connections open", "gw-connections"),
    meters: tile("Meters online", "gw-meters-online"),
    rate: tile("Readings / s", "gw-readings-rate"),
    mqtt: tile("MQTT publish queue", "gw-mqtt-queue"),
    store: tile("Store backlog", "gw-store-backlog"),
    errors: tile("Errors", "gw-errors"),
    polls: tile("Poll latency p50 / p95", "gw-poll-latency"),
    commands: tile("Commands", "gw-commands"),
  };
  const about = h("dl", { class: "facts" });
  const members = h("ul", { class: "members", "data-testid": "gw-members" });
  const spark = h("div", { class: "chart-box" });
  const note = h("p", { class: "muted" });
  const rates = [];
  let timer = null;
  let stopped = false;

  replace(root,
    h("h1", {}, "Gateway"),
    h("section", { class: "card" }, about),
    h("div", { class: "tiles" }, ...Object.values(tiles).map((t) => t.element)),
    h("section", { class: "card" }, h("h2", {}, "Readings per second (this page's last 5 minutes)"), spark),
    h("section", { class: "card" }, h("h2", {}, "Cluster members"), members),
    note);

  async function refresh() {
    let info;
    try {
      info = await getJson("/api/v1/gateway");
    } catch (error) {
      note.textContent = `Could not load the gateway: ${error.message}`;
      return;
    }
    let samples = [];
    try {
      samples = parseMetrics(await getText("/metrics"));
    } catch {
      // /metrics is optional for this view; the counters still show.
    }
    if (stopped) return;
    note.textContent = "";
    const c = info.counters || {};
    replace(about,
      h("dt", {}, "Gateway id"), h("dd", { class: "mono" }, info.gatewayId),
      h("dt", {}, "Version"), h("dd", {}, info.version),
      h("dt", {}, "Uptime"), h("dd", {}, formatDuration(info.uptimeS || 0)),
      h("dt", {}, "Store"), h("dd", {}, info.storeMode));
    tiles.connections.value.textContent = String(c.connections ?? 0);
    tiles.connections.detail.textContent = `${c.connectionsAccepted ?? 0} accepted, ${c.connectionsRefused ?? 0} refused`;
    tiles.meters.value.textContent = String(c.metersOnline ?? 0);
    tiles.meters.detail.textContent = has(samples, "ivy_meters_known") ? `${metricSum(samples, "ivy_meters_known")} known` : "";
    const rate = c.readingsPerS ?? 0;
    tiles.rate.value.textContent = String(rate);
    const byProtocol = samples.filter((x) => x.name === "ivy_readings_per_second");
    tiles.rate.detail.textContent = byProtocol.map((x) => `${x.labels.protocol} ${x.value.toFixed(1)}`).join(", ");
    const mqttQueue = has(samples, "ivy_mqtt_queue") ? metricSum(samples, "ivy_mqtt_queue") : c.publishQueue;
    tiles.mqtt.value.textContent = mqttQueue === undefined ? "—" : String(mqttQueue);
    tiles.mqtt.detail.textContent = has(samples, "ivy_mqtt_connected")
      ? `${metricSum(samples, "ivy_mqtt_connected") ? "broker connected" : "broker NOT connected"}, ${metricSum(samples, "ivy_mqtt_not_published_total")} dropped`
      : "";
    tiles.store.value.textContent = String(c.storeBacklog ?? 0);
    tiles.store.detail.textContent = `${c.storeFailing ? "database FAILING, " : ""}${c.storeDropped ?? 0} dropped`;
    const decode = metricSum(samples, "ivy_decode_errors_total");
    tiles.errors.value.textContent = String((c.errors ?? 0) + decode);
    tiles.errors.detail.textContent = `sink ${c.errors ?? 0}, decode ${decode}, telemetry dropped ${c.telemetryDropped ?? 0}`;
    const p50 = quantile(samples, "ivy_poll_latency_seconds", 0.5);
    const p95 = quantile(samples, "ivy_poll_latency_seconds", 0.95);
    const ms = (v) => (v === null ? "—" : v === Infinity ? "> 60 s" : `≤ ${Math.round(v * 1000)} ms`);
    tiles.polls.value.textContent = `${ms(p50)} / ${ms(p95)}`;
    tiles.polls.detail.textContent = `${metricSum(samples, "ivy_polls_total", { outcome: "ok" })} ok, ` +
      `${metricSum(samples, "ivy_polls_total", { outcome: "failed" }) + metricSum(samples, "ivy_polls_total", { outcome: "timeout" })} failed`;
    const ok = metricSum(samples, "ivy_commands_total", { outcome: "success" });
    tiles.commands.value.textContent = String(metricSum(samples, "ivy_commands_total"));
    tiles.commands.detail.textContent = `${ok} succeeded`;

    const redis = samples.find((x) => x.name === "ivy_redis_state" && x.value === 1);
    const state = redis ? redis.labels.state : info.clusterMembers.length > 1 ? "connected" : "disabled";
    replace(members, ...(info.clusterMembers || []).map((m) =>
      h("li", { class: m === info.gatewayId ? "self" : "" }, m, m === info.gatewayId ? " (this instance)" : "")),
    h("li", { class: "muted" }, `Redis: ${state}`));

    rates.push([Date.now(), Number(rate)]);
    if (rates.length > HISTORY) rates.shift();
    replace(spark, lineChart(rates, { unit: "/s", label: "readings per second" }));
  }

  async function loop() {
    await refresh();
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  }
  loop();
  return { onLive: () => {}, unmount: () => { stopped = true; clearTimeout(timer); } };
}
