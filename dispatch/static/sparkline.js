// Small time-series drawing shared by the sensor page (telemetry/static/sensor.js) and the map's
// sensor popups (maps/static/map.js): SVG elements, the QC flag colours, and where a series has
// gaps. No chart library: the office may be offline and the plots are simple.
//
// Gaps follow the hub's rule for reports (telemetry/sums.py): a report at t whose predecessor came
// at p stands for the time (max(p, t − interval), t]. Time that no report stands for is missing
// time and is drawn as a gap, never as zero; lines are broken across it.

import { svg } from "./dom.js";

// QC flags: the same colours everywhere, always shown together with the flag's word.
export const FLAG_COLOURS = {
  good: "#1a7f37",
  suspect: "#b26a00",
  fail: "#c62828",
  missing: "#6b7785",
};

/** Readings from the API ({ts, value, flag}) with `t` in milliseconds and `from`, the start of
 * the time each stands for; sorted by time, one per timestamp. */
export function withCoverage(items, intervalS) {
  const interval = intervalS * 1000;
  const byTime = new Map();
  for (const item of items) {
    const t = typeof item.t === "number" ? item.t : Date.parse(item.ts);
    if (Number.isFinite(t)) byTime.set(t, { ...item, t });
  }
  const sorted = [...byTime.values()].sort((a, b) => a.t - b.t);
  let previous = null;
  for (const item of sorted) {
    item.from = previous === null ? item.t - interval : Math.max(previous, item.t - interval);
    previous = item.t;
  }
  return sorted;
}

/** The usual time between reports (s): the median step of a series; `fallback` with fewer than
 * two reports. For callers that do not know the sensor's registered interval. */
export function typicalInterval(items, fallback = 300) {
  const times = items.map((p) => (typeof p.t === "number" ? p.t : Date.parse(p.ts)))
    .filter(Number.isFinite).sort((a, b) => a - b);
  const steps = [];
  for (let i = 1; i < times.length; i += 1) if (times[i] > times[i - 1]) steps.push(times[i] - times[i - 1]);
  if (!steps.length) return fallback;
  steps.sort((a, b) => a - b);
  return steps[Math.floor(steps.length / 2)] / 1000;
}

/** Stretches of [since, until] (ms) that no report stands for: [{from, to, edge}] where edge is
 * "start", "inner" or "end". Short slack (under half an interval) is jitter, not a gap; the time
 * after the last report becomes a gap once a report is half an interval overdue. With `instant`
 * (a level, not an amount since the last report) a gap runs from one report to the next. */
export function gaps(items, since, until, intervalS, { instant = false } = {}) {
  const interval = intervalS * 1000;
  const out = [];
  if (!items.length) return [{ from: since, to: until, edge: "all" }];
  const first = items[0];
  if (first.from - since > interval / 2) {
    out.push({ from: since, to: instant ? first.t : first.from, edge: "start" });
  }
  for (let i = 1; i < items.length; i += 1) {
    const hole = items[i].from - items[i - 1].t;
    if (hole > interval / 2) {
      out.push({ from: items[i - 1].t, to: instant ? items[i].t : items[i].from, edge: "inner" });
    }
  }
  const last = items[items.length - 1];
  if (until - last.t > interval * 1.5) out.push({ from: last.t, to: until, edge: "end" });
  return out;
}

/** The runs of consecutive items that no gap separates (for broken lines). */
export function runs(items, gapList) {
  const out = [];
  let current = [];
  for (const item of items) {
    const previous = current[current.length - 1];
    if (previous && gapList.some((g) => g.edge === "inner" && g.from >= previous.t
        && g.to <= item.t)) {
      out.push(current);
      current = [];
    }
    current.push(item);
  }
  if (current.length) out.push(current);
  return out;
}

/** A polyline path ("M x y L x y …") for each run. */
export function linePath(runList, x, y) {
  return runList.map((run) => run.map((p, i) =>
    `${i ? "L" : "M"}${x(p.t).toFixed(1)} ${y(p.value).toFixed(1)}`).join(" ")).join(" ");
}

/** A small plot of a series over [since, until] (ms): bars for rain, a broken line otherwise;
 * gaps hatched grey, suspect and failed readings marked. Returns an <svg>. */
export function sparkline(rawItems, { since, until, intervalS = typicalInterval(rawItems), kind, width = 220, height = 48,
  title = "" }) {
  const items = withCoverage(rawItems, intervalS).filter((p) => p.t > since && p.t <= until);
  const holes = gaps(items, since, until, intervalS, { instant: kind !== "rain_gauge" });
  const pad = 2;
  const x = (t) => pad + ((t - since) / (until - since)) * (width - 2 * pad);
  const usable = items.filter((p) => p.flag !== "fail");
  const values = usable.map((p) => p.value);
  const rain = kind === "rain_gauge";
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (rain) lo = 0;
  if (hi - lo < 1e-9) {
    hi += rain ? 1 : 0.5;
    lo -= rain ? 0 : 0.5;
  }
  const y = (v) => height - pad - ((v - lo) / (hi - lo)) * (height - 2 * pad);
  const root = svg("svg", { class: "sparkline", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "img", "aria-label": title, "data-points": items.length });
  if (title) root.append(svg("title", null, title));
  root.append(svg("rect", { class: "spark-frame", x: 0, y: 0, width, height, fill: "#f6f8fb" }));
  for (const g of holes) {
    root.append(svg("rect", { class: "spark-gap", x: x(g.from), y: 0,
      width: Math.max(1, x(g.to) - x(g.from)), height, fill: "#dfe3e8",
      "data-edge": g.edge }));
  }
  if (rain) {
    for (const p of items) {
      const top = p.flag === "fail" ? pad : y(p.value);
      root.append(svg("rect", { class: "spark-bar", x: x(p.from), y: top,
        width: Math.max(1, x(p.t) - x(p.from) - 0.5), height: Math.max(0.5, height - pad - top),
        fill: p.flag === "good" ? "#1f78d1" : FLAG_COLOURS[p.flag] || "#1f78d1",
        "fill-opacity": p.flag === "fail" ? 0.35 : 1, "data-flag": p.flag }));
    }
  } else {
    root.append(svg("path", { class: "spark-line", d: linePath(runs(usable, holes), x, y),
      fill: "none", stroke: "#283593", "stroke-width": 1.5, "stroke-linejoin": "round" }));
  }
  for (const p of items) {
    if (p.flag !== "suspect" && p.flag !== "fail") continue;
    const cy = rain ? pad + 2 : Math.min(height - pad, Math.max(pad, y(p.value)));
    root.append(svg("circle", { class: "spark-flag", cx: x(p.t), cy,
      r: 2.5, fill: FLAG_COLOURS[p.flag], "data-flag": p.flag }));
  }
  return root;
}
