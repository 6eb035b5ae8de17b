// A small SVG line chart for one history series: no library, no canvas, scales with CSS.

import { formatClock, formatTime, s } from "./dom.js";

const DAY_MS = 86400000;

const WIDTH = 800;
const HEIGHT = 260;
const PAD = { left: 64, right: 16, top: 16, bottom: 32 };

/** About ``count`` round tick values covering [lo, hi]. */
function niceTicks(lo, hi, count) {
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.05 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((m) => m >= raw) || raw;
  const first = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = first; v <= hi + step * 0.5; v += step) ticks.push(Number(v.toPrecision(12)));
  return { ticks, lo: ticks[0], hi: ticks[ticks.length - 1], step };
}

function tickLabel(value, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  return value.toFixed(Math.min(decimals, 6));
}

/**
 * Draw ``points`` ([[ts, value], ...], oldest first) for ``[fromMs, toMs]`` into a new
 * <svg>. An empty series gives a chart with a "no data" note.
 */
export function lineChart(points, { fromMs, toMs, unit = "", label = "" } = {}) {
  const data = points
    .map(([ts, value]) => [Number(ts), Number(value)])
    .filter(([ts, value]) => Number.isFinite(ts) && Number.isFinite(value));
  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: "chart",
    role: "img",
    "aria-label": `${label} history`,
    "data-testid": "history-chart",
    "data-points": data.length,
  });
  const x0 = PAD.left;
  const x1 = WIDTH - PAD.right;
  const y0 = HEIGHT - PAD.bottom;
  const y1 = PAD.top;
  svg.append(s("rect", { class: "chart-bg", x: x0, y: y1, width: x1 - x0, height: y0 - y1 }));
  if (data.length === 0) {
    svg.append(s("text", { class: "chart-empty", x: (x0 + x1) / 2, y: (y0 + y1) / 2 }, "no data in this range"));
    return svg;
  }
  const tsLo = fromMs ?? data[0][0];
  const tsHi = Math.max(toMs ?? data[data.length - 1][0], tsLo + 1);
  const values = data.map(([, v]) => v);
  const y = niceTicks(Math.min(...values), Math.max(...values), 5);
  const px = (ts) => x0 + ((ts - tsLo) / (tsHi - tsLo)) * (x1 - x0);
  const py = (v) => y0 - ((v - y.lo) / (y.hi - y.lo)) * (y0 - y1);

  for (const tick of y.ticks) {
    svg.append(s("line", { class: "grid", x1: x0, x2: x1, y1: py(tick), y2: py(tick) }));
    svg.append(s("text", { class: "axis y", x: x0 - 6, y: py(tick) + 4 }, tickLabel(tick, y.step)));
  }
  const timeTicks = 6;
  for (let i = 0; i <= timeTicks; i += 1) {
    const ts = tsLo + ((tsHi - tsLo) * i) / timeTicks;
    const spanMs = tsHi - tsLo;
    const text = spanMs > 2 * DAY_MS ? formatTime(ts).slice(5, 10)
      : spanMs < 600000 ? formatTime(ts).slice(11) : formatClock(ts);
    svg.append(s("text", { class: "axis x", x: px(ts), y: y0 + 20 }, text));
  }
  if (unit) svg.append(s("text", { class: "axis unit", x: 8, y: y1 + 4 }, unit));

  const path = data.map(([ts, v], i) => `${i ? "L" : "M"}${px(ts).toFixed(1)},${py(v).toFixed(1)}`);
  svg.append(s("path", { class: "series", d: path.join(" ") }));
  if (data.length <= 200) {
    for (const [ts, v] of data) {
      svg.append(
        s("circle", { class: "point", cx: px(ts), cy: py(v), r: 2.5 },
          s("title", {}, `${formatTime(ts)}: ${v} ${unit}`)),
      );
    }
  }
  return svg;
}
