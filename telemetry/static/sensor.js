// One sensor's page (telemetry/templates/sensor.html): plots of a time range drawn as inline SVG,
// the rolling sums (rain) or the movement and failure forecast (displacement), kept live.
//
// Data: GET …/readings (6 h, 24 h: every report with its QC flag) or GET …/hourly (3 and 7 days:
// hourly roll-ups), and GET …/sums. Gaps (time no report stands for, see ../sparkline.js) are
// hatched and lines are broken across them: missing time is never drawn as zero. Suspect and
// failed readings carry a marker; failed ones are not counted in sums or cumulative lines.
// Live: `reading` events for this sensor append to the plot and refresh the sums (at most every
// SUMS_EVERY_MS); `sensor_status` events update the status and the gateway's state.
//
// #sensor keeps data-state (loading | ready | empty | error), data-range and data-points for
// people and tests; every bar, gap and marker carries data-* attributes too.

import { getJson } from "../api.js";
import { el, svg } from "../dom.js";
import { FLAG_COLOURS, gaps, linePath, runs, withCoverage } from "../sparkline.js";

const root = document.getElementById("sensor");
const config = JSON.parse(document.getElementById("sensor-config").textContent);
const T = config.labels;
const S = config.sensor;
const lang = document.documentElement.lang || "zh-CN";
const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
const one = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 });
const significant = new Intl.NumberFormat(lang, { maximumSignificantDigits: 3 });
const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const day = new Intl.DateTimeFormat(lang, { month: "numeric", day: "numeric" });
const stamp = new Intl.DateTimeFormat(lang, { month: "numeric", day: "numeric", hour: "2-digit",
  minute: "2-digit", hourCycle: "h23" });

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const SUMS_EVERY_MS = 5000; // live refresh of /sums: at most this often
const HOURLY_EVERY_MS = 60000; // live refresh of /hourly (roll-ups run every minute)
const SLIDE_MS = 60000; // the window follows the clock
const RETRY_MS = 10000;
const RAIN = S.kind === "rain_gauge";
const DISPLACEMENT = S.kind === "crack_meter" || S.kind === "gnss";
const BAR = "#1f78d1";
const LINE = "#283593";
const CUMULATIVE = "#0b2545";

const ranges = Object.fromEntries(config.ranges.map(([key, hours, source]) =>
  [key, { key, hours, source }]));
// The current rain event's range: from a margin before its start up to now (set from /sums).
const EVENT_MIN_MS = 3 * HOUR;
const READINGS_UP_TO_MS = 48 * HOUR; // longer ranges read the hourly roll-ups
const RANGE_KEY = "rescuehub.sensor.range"; // the user's last choice, kept across pages
const STILL_MM_D = 0.01; // slower than this (or backwards) the slope is not moving
const state = {
  range: ranges[config.defaultRange],
  chosen: false, // the user picked the range (kept), or the page fitted it to the data
  items: [], // readings ({ts, value, flag, qc}) or hours ({hour, count, usable, total, …})
  since: 0,
  until: 0,
  truncated: false,
  loadedFor: null, // range key of what `items` holds
  sums: null,
};

const statusLine = document.querySelector(".plot-status");
const plotsBox = document.getElementById("plots");
const legendBox = document.getElementById("plot-legend");
const sumsBox = document.getElementById("sums");

// --- small helpers ----------------------------------------------------------------------------

const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_m, k) => values[k] ?? "");
const when = (ms) => stamp.format(new Date(ms));
const flagWord = (flag) => T.flags[flag] || flag;

function showStatus(words, kind = "info") {
  statusLine.textContent = words || "";
  statusLine.dataset.kind = kind;
  statusLine.hidden = !words;
}

// --- loading ---------------------------------------------------------------------------------

let loadToken = 0;
let retryTimer = null;

// With no range chosen, 24 h of which only the last few hours hold data (a sensor that began
// reporting, a slope that began to move) opens on 6 h instead: the data fills the chart.
function fitShortData() {
  if (state.chosen || state.range.key !== "24h" || !ranges["6h"] || !state.items.length) return;
  const first = Date.parse(state.items[0].ts);
  if (!(first > state.until - ranges["6h"].hours * HOUR)) return;
  state.range = ranges["6h"];
  state.loadedFor = "6h";
  state.since = sinceOf(state.range, state.until);
  pressRange("6h");
}

/** Where a range starts when it ends at `until`: a fixed time for the event, else `hours` back. */
function sinceOf(range, until) {
  return range.key === "event" ? Math.min(range.since, until - EVENT_MIN_MS)
    : until - range.hours * HOUR;
}

async function load(range) {
  const token = ++loadToken;
  window.clearTimeout(retryTimer);
  const until = Date.now();
  let since = sinceOf(range, until);
  if (range.source === "hourly") since = Math.floor(since / HOUR) * HOUR;
  root.dataset.state = "loading";
  showStatus(T.status.loading, "busy");
  // RFC 3339 in UTC ("Z"): no "+" that a query string would turn into a space.
  const query = `?since=${encodeURIComponent(new Date(since).toISOString())}`;
  try {
    const data = await getJson(config.urls[range.source] + query);
    if (token !== loadToken) return;
    state.items = data.items || [];
    state.truncated = Boolean(data.truncated);
    state.since = since;
    state.until = Date.now();
    state.loadedFor = range.key;
    fitShortData();
    render();
  } catch (error) {
    if (token !== loadToken) return;
    root.dataset.state = "error";
    showStatus(T.status.failed, "error");
    retryTimer = window.setTimeout(() => load(state.range), RETRY_MS);
  }
}

let sumsAt = 0;
let sumsTimer = null;

// Re-fetch the sums now, or as soon as SUMS_EVERY_MS has passed since the last fetch.
function refreshSums() {
  if (sumsTimer) return;
  const wait = Math.max(0, sumsAt + SUMS_EVERY_MS - Date.now());
  sumsTimer = window.setTimeout(async () => {
    sumsTimer = null;
    sumsAt = Date.now();
    try {
      state.sums = await getJson(config.urls.sums);
      renderSums();
      fitEventRange();
    } catch {
      sumsBox.dataset.state = "error";
    }
  }, wait);
}

let hourlyAt = 0;
let hourlyTimer = null;

function refreshHourly() {
  if (hourlyTimer) return;
  const wait = Math.max(0, hourlyAt + HOURLY_EVERY_MS - Date.now());
  hourlyTimer = window.setTimeout(() => {
    hourlyTimer = null;
    hourlyAt = Date.now();
    if (state.range.source === "hourly") load(state.range);
  }, wait);
}

// --- series ----------------------------------------------------------------------------------

// Reports with coverage, inside the shown window.
function reports() {
  return withCoverage(state.items, S.interval_s).filter((p) => p.t > state.since
    && p.t <= state.until);
}

// Hourly roll-ups as bars (h, h + 1 h]; hours with no usable report are gaps.
function hours() {
  const out = [];
  for (const row of state.items) {
    const start = Date.parse(row.hour);
    if (!Number.isFinite(start) || !row.usable) continue;
    const end = start + HOUR;
    out.push({ t: end, from: start, value: RAIN ? row.total : row.last, min: row.min,
      max: row.max, count: row.count, usable: row.usable, complete: row.complete,
      flag: row.count > row.usable ? "fail" : "good",
      partial: row.complete < 0.999 && end <= state.until });
  }
  return out.sort((a, b) => a.t - b.t);
}

function hourGaps(list) {
  const out = [];
  let cursor = state.since;
  for (const p of list) {
    if (p.from - cursor > 1000) {
      out.push({ from: cursor, to: p.from, edge: cursor === state.since ? "start" : "inner" });
    }
    cursor = p.t;
  }
  // The hour under way has no roll-up until its first report is rolled up: not yet a gap.
  if (state.until - cursor > HOUR * 1.5) {
    out.push({ from: cursor, to: state.until, edge: list.length ? "end" : "all" });
  }
  return out;
}

// Velocity (mm/d) from displacement: the slope over a trailing window inside each run.
function velocities(runList, windowMs) {
  const out = [];
  for (const run of runList) {
    const v = [];
    let j = 0;
    for (let i = 0; i < run.length; i += 1) {
      while (run[i].t - run[j].t > windowMs) j += 1;
      const dt = run[i].t - run[j].t;
      if (dt >= windowMs / 2) v.push({ t: run[i].t, value: ((run[i].value - run[j].value) / dt) * DAY });
    }
    if (v.length) out.push(v);
  }
  return out;
}

// --- axes ------------------------------------------------------------------------------------

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return step || power * 10;
}

function valueTicks(lo, hi, step = niceStep(hi - lo, 4)) {
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-6; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

const TIME_STEPS = [HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY];

function timeTicks(since, until, width) {
  const most = Math.max(2, Math.floor(width / 80));
  const step = TIME_STEPS.find((s) => (until - since) / s <= most) || DAY;
  const start = new Date(since);
  start.setMinutes(0, 0, 0);
  if (step === DAY) start.setHours(0);
  const out = [];
  for (let t = start.getTime(); t <= until; t += HOUR) {
    const d = new Date(t);
    if (t < since) continue;
    if (step === DAY ? d.getHours() === 0 : d.getHours() % (step / HOUR) === 0) out.push(t);
    if (step === DAY) t += DAY - HOUR;
  }
  return { ticks: out, step };
}

function timeLabel(t, step) {
  const d = new Date(t);
  if (step >= DAY || (d.getHours() === 0 && d.getMinutes() === 0)) return day.format(d);
  return clock.format(d);
}

// The value axis of a series: padded, then widened to whole ticks, so the highest value (a
// storm's peak bar) never rises above the top tick.
function range(values, { zero = false } = {}) {
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (zero) lo = Math.min(0, lo);
  if (hi - lo < 1e-9) {
    hi += zero ? 1 : 0.5;
    lo -= zero ? 0 : 0.5;
  } else if (!zero) {
    const padBy = (hi - lo) * 0.08;
    hi += padBy;
    lo -= padBy;
  }
  const step = niceStep(hi - lo, 4);
  return [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step, step];
}

// One plot panel: frame, time axis, left (and optional right) value axis, gap bands. Returns the
// <svg> and the scales; the caller draws its series into `layer`.
function panel({ name, title, height, width, left, right, gapList }) {
  const m = { top: 14, right: right ? 52 : 16, bottom: 26, left: 52 };
  const innerW = width - m.left - m.right;
  const innerH = height - m.top - m.bottom;
  const x = (t) => m.left + ((t - state.since) / (state.until - state.since)) * innerW;
  const yOf = ([lo, hi]) => (v) => m.top + innerH - ((v - lo) / (hi - lo)) * innerH;
  const y = yOf(left);
  const y2 = right ? yOf(right) : null;
  const node = svg("svg", { class: "plot", "data-plot": name, viewBox: `0 0 ${width} ${height}`,
    width, height, role: "img", "aria-label": title });
  node.append(svg("defs", null, svg("pattern", { id: `hatch-${name}`, width: 6, height: 6,
    patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
  svg("rect", { width: 6, height: 6, fill: "#f3f5f8" }),
  svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#c9d0d9", "stroke-width": 1.5 }))));
  node.append(svg("rect", { class: "plot-area", x: m.left, y: m.top, width: innerW,
    height: innerH, fill: "#fff", stroke: "#d5dde8" }));
  const grid = svg("g", { class: "grid" });
  for (const v of valueTicks(...left)) {
    grid.append(svg("line", { x1: m.left, x2: m.left + innerW, y1: y(v), y2: y(v),
      stroke: "#edf1f6" }));
    grid.append(svg("text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end",
      class: "tick" }, number.format(v)));
  }
  if (right) {
    for (const v of valueTicks(...right)) {
      grid.append(svg("text", { x: m.left + innerW + 6, y: y2(v) + 4, class: "tick tick-right" },
        number.format(v)));
    }
  }
  const { ticks, step } = timeTicks(state.since, state.until, innerW);
  for (const t of ticks) {
    grid.append(svg("line", { x1: x(t), x2: x(t), y1: m.top, y2: m.top + innerH,
      stroke: "#edf1f6" }));
    grid.append(svg("text", { x: x(t), y: height - 8, "text-anchor": "middle", class: "tick" },
      timeLabel(t, step)));
  }
  node.append(grid);
  const holes = svg("g", { class: "gaps" });
  for (const g of gapList) {
    const from = Math.max(state.since, g.from);
    const to = Math.min(state.until, g.to);
    if (to <= from) continue;
    holes.append(svg("rect", { class: "gap", x: x(from), y: m.top,
      width: Math.max(1, x(to) - x(from)), height: innerH, fill: `url(#hatch-${name})`,
      "data-edge": g.edge, "data-from": new Date(g.from).toISOString(),
      "data-to": new Date(g.to).toISOString() },
    svg("title", null, `${T.legend.gap}: ${when(g.from)} – ${when(g.to)}`)));
  }
  node.append(holes);
  const layer = svg("g", { class: "series" });
  node.append(layer);
  const box = el("figure", { class: "plot-box", "data-plot": name },
    el("figcaption", null, title), node);
  return { box, plot: node, layer, x, y, y2, m, innerH, innerW };
}

function marker(flag, cx, cy, words) {
  const colour = FLAG_COLOURS[flag];
  const shape = flag === "fail"
    ? svg("path", { d: `M${cx - 4} ${cy - 4} L${cx + 4} ${cy + 4} M${cx + 4} ${cy - 4} L${cx - 4} ${cy + 4}`,
      stroke: colour, "stroke-width": 2.5, fill: "none" })
    : svg("path", { d: `M${cx} ${cy - 5} L${cx + 5} ${cy + 4} L${cx - 5} ${cy + 4} Z`,
      fill: colour, stroke: "#fff", "stroke-width": 1 });
  return svg("g", { class: "flag-marker", "data-flag": flag }, shape, svg("title", null, words));
}

function readingWords(p) {
  const qc = p.qc && p.qc.length ? ` (${p.qc.join(", ")})` : "";
  return `${when(p.t)} · ${number.format(p.value)} ${S.unit} · ${flagWord(p.flag)}${qc}`;
}

// --- the plots -------------------------------------------------------------------------------

function rainPlot(width, hourly) {
  const bars = hourly ? hours() : reports();
  const gapList = hourly ? hourGaps(bars) : gaps(bars, state.since, state.until, S.interval_s);
  const usable = bars.filter((p) => p.flag !== "fail");
  let total = 0;
  const cumulative = usable.map((p) => {
    const before = total;
    total += p.value;
    return { ...p, before, after: total };
  });
  const p = panel({ name: "rain", width, height: 330,
    title: `${hourly ? T.plots.rainHour : T.plots.rainReport} · ${T.plots.cumulative}`,
    left: range(usable.map((b) => b.value), { zero: true }),
    right: range([total], { zero: true }), gapList });
  const { layer, x, y, y2, m, innerH } = p;
  const floor = m.top + innerH;
  for (const b of bars) {
    const fail = b.flag === "fail" && !hourly;
    const top = fail ? m.top + innerH * 0.5 : y(b.value);
    const colour = b.flag === "suspect" ? FLAG_COLOURS.suspect : BAR;
    layer.append(svg("rect", { class: "bar", x: x(b.from) + 0.5, y: top,
      width: Math.max(1.5, x(b.t) - x(b.from) - 1), height: Math.max(1, floor - top),
      fill: fail ? "none" : colour, "fill-opacity": b.partial ? 0.45 : 0.9,
      stroke: fail ? FLAG_COLOURS.fail : "none", "stroke-dasharray": fail ? "3 2" : null,
      "data-ts": new Date(b.t).toISOString(), "data-value": b.value, "data-flag": b.flag,
      "data-partial": b.partial ? "true" : null },
    svg("title", null, hourly
      ? `${when(b.from)} – ${clock.format(new Date(b.t))} · ${one.format(b.value)} mm · ${
        percent.format(Math.floor(b.complete * 100) / 100)}`
      : readingWords(b))));
    if (b.flag !== "good") {
      const words = hourly ? T.legend.fail : readingWords(b);
      layer.append(marker(b.flag, (x(b.from) + x(b.t)) / 2, Math.max(m.top + 6, top - 8), words));
    }
  }
  // Cumulative rain: rises over each report's time, broken where time is missing.
  const segments = runs(cumulative, gapList.filter((g) => g.edge === "inner"));
  const d = segments.map((run) => run.map((c, i) =>
    `${i ? "" : `M${x(c.from).toFixed(1)} ${y2(c.before).toFixed(1)} `}L${x(c.t).toFixed(1)} ${
      y2(c.after).toFixed(1)}`).join(" ")).join(" ");
  layer.append(svg("path", { class: "cumulative", d, fill: "none", stroke: CUMULATIVE,
    "stroke-width": 2, "data-total": total.toFixed(3), "data-runs": segments.length }));
  return { boxes: [p.box], count: bars.length, gapList, flags: flagsOf(bars), partial:
    bars.some((b) => b.partial) };
}

function linePanel({ name, title, series, gapList, width, height, bands }) {
  const usable = series.filter((q) => q.flag !== "fail");
  const values = usable.map((q) => q.value);
  if (bands) for (const q of usable) values.push(q.min, q.max);
  const p = panel({ name, title, width, height, left: range(values), gapList });
  const { layer, x, y, m, innerH } = p;
  if (bands) {
    for (const q of usable) {
      layer.append(svg("rect", { class: "band", x: x(q.from), width: Math.max(1, x(q.t) - x(q.from)),
        y: y(q.max), height: Math.max(1, y(q.min) - y(q.max)), fill: "#c5cae9",
        "fill-opacity": 0.6 }));
    }
  }
  const segments = runs(usable, gapList.filter((g) => g.edge === "inner"));
  layer.append(svg("path", { class: "line", d: linePath(segments, x, y), fill: "none",
    stroke: LINE, "stroke-width": 2, "stroke-linejoin": "round", "data-runs": segments.length }));
  for (const run of segments) {
    if (run.length === 1) {
      layer.append(svg("circle", { class: "point", cx: x(run[0].t), cy: y(run[0].value), r: 2.5,
        fill: LINE }));
    }
  }
  for (const q of series) {
    if (q.flag === "good") continue;
    const cy = Math.min(m.top + innerH - 5, Math.max(m.top + 6, y(q.value)));
    layer.append(marker(q.flag, x(q.t), cy, q.ts ? readingWords(q) : T.legend.fail));
  }
  return p;
}

function valuePlots(width, hourly) {
  const series = hourly ? hours() : reports();
  const gapList = hourly ? hourGaps(series)
    : gaps(series, state.since, state.until, S.interval_s, { instant: true });
  const boxes = [];
  const main = linePanel({ name: DISPLACEMENT ? "displacement" : "value", series, gapList, width,
    title: DISPLACEMENT ? T.plots.displacement : hourly ? T.plots.hourlyValue : T.plots.value,
    height: DISPLACEMENT ? 240 : 300, bands: hourly && !DISPLACEMENT });
  boxes.push(main.box);
  if (DISPLACEMENT) {
    const usable = series.filter((q) => q.flag !== "fail");
    const windowMs = hourly ? 2 * HOUR : Math.max(HOUR, 3 * S.interval_s * 1000);
    const v = velocities(runs(usable, gapList.filter((g) => g.edge === "inner")), windowMs).flat();
    const velocity = linePanel({ name: "velocity", title: T.plots.velocity, series:
      v.map((q) => ({ ...q, flag: "good" })), gapList, width, height: 170 });
    boxes.push(velocity.box);
  }
  return { boxes, count: series.length, gapList, flags: flagsOf(series), partial: false };
}

function flagsOf(list) {
  return new Set(list.map((q) => q.flag).filter((f) => f !== "good"));
}

function legendItem(kind, words) {
  return el("li", { "data-legend": kind }, el("span", { class: `key key-${kind}`,
    "aria-hidden": "true" }), words);
}

function render() {
  const hourly = state.range.source === "hourly";
  const width = Math.max(320, Math.floor(plotsBox.clientWidth || 640));
  const drawn = RAIN ? rainPlot(width, hourly) : valuePlots(width, hourly);
  plotsBox.replaceChildren(...drawn.boxes);
  const legend = [];
  if (drawn.gapList.length) legend.push(legendItem("gap", T.legend.gap));
  if (drawn.flags.has("suspect")) legend.push(legendItem("suspect", T.legend.suspect));
  if (drawn.flags.has("fail")) legend.push(legendItem("fail", T.legend.fail));
  if (drawn.partial) legend.push(legendItem("partial", T.legend.partial));
  legendBox.replaceChildren(...legend);
  root.dataset.range = state.range.key;
  root.dataset.points = String(drawn.count);
  root.dataset.state = drawn.count ? "ready" : "empty";
  if (!drawn.count) showStatus(T.status.empty, "info");
  else if (state.truncated) showStatus(T.status.truncated, "warn");
  else showStatus("");
}

// --- the header and the sums -----------------------------------------------------------------

function showLast(value, ts, flag) {
  const box = document.getElementById("last-value");
  box.dataset.flag = flag;
  box.querySelector(".lv-number").textContent = value === null || value === undefined
    ? "—" : number.format(value);
  const badge = box.querySelector(".flag");
  badge.dataset.flag = flag;
  badge.textContent = flagWord(flag);
  const time = box.querySelector(".lv-time");
  if (ts) {
    time.dateTime = ts;
    time.textContent = when(Date.parse(ts));
  }
}

function showStatusOf(status) {
  const node = document.getElementById("sensor-status");
  node.dataset.status = status;
  node.textContent = T.sensorStatus[status] || status;
}

function row(key, label, value, extra, attrs) {
  return el("div", { "data-field": key, ...attrs }, el("dt", null, label),
    el("dd", null, value, extra || null));
}

// How much of a window was observed, in words (grey: missing data is not a warning colour).
function observed(complete, template) {
  if (complete === null || complete === undefined || complete >= 0.999) return null;
  if (complete <= 0) return el("span", { class: "observed" }, T.sums.noData);
  // Never "0 %" for some data: under one per cent reads "<1 %".
  const shown = complete < 0.01 ? `<${percent.format(0.01)}`
    : percent.format(Math.floor(complete * 100) / 100);
  return el("span", { class: "observed" }, `(${fill(template, { percent: shown })})`);
}

// An amount in mm, or "—" for unknown (null from the API: no data, not 0 mm).
function millimetres(mm) {
  return mm === null || mm === undefined
    ? el("span", { class: "mm unknown", title: T.sums.noDataWindow }, "—")
    : el("span", { class: "mm" }, `${one.format(mm)} mm`);
}

function completeness(complete) {
  if (complete === null || complete === undefined || complete >= 0.999) return null;
  return complete <= 0 ? "unknown" : "incomplete";
}

function rainSums(sums) {
  const out = [];
  for (const key of ["1h", "3h", "6h", "24h"]) {
    const w = (sums.windows || {})[key];
    if (!w) continue;
    out.push(row(`window-${key}`, T.sums.windows[key], millimetres(w.mm),
      observed(w.complete, T.sums.observed), {
        "data-window": key, "data-complete": String(w.complete),
        class: completeness(w.complete) }));
  }
  const event = sums.event;
  if (event) {
    out.push(row("event", T.sums.event, millimetres(event.mm), el("span", { class: "note" },
      fill(T.sums.eventSince, { time: when(Date.parse(event.start)) }))));
  } else if (sums.event_mm === null || sums.event_mm === undefined) {
    out.push(row("event", T.sums.event, millimetres(null),
      el("span", { class: "observed" }, T.sums.eventUnknown), { class: "unknown" }));
  } else {
    out.push(row("event", T.sums.event, el("span", { class: "none" }, T.sums.noEvent)));
  }
  out.push(row("antecedent", T.sums.antecedent, millimetres(sums.antecedent_mm),
    observed(sums.antecedent_complete, T.sums.antecedentObserved), {
      class: completeness(sums.antecedent_complete) }));
  return [el("dl", { class: "rows sums-rows" }, out)];
}

// 1/v in d/mm with three significant digits (0.0026, not "0"); nothing while not moving.
function inverseVelocity(sums) {
  const inverse = sums.inverse_velocity_d_mm;
  const velocity = sums.velocity_mm_d;
  if (inverse === null || inverse === undefined || velocity === null || velocity === undefined) {
    return "—";
  }
  // Still, or moving back (noise, a closing crack): 1/v says nothing about failure then.
  if (velocity < STILL_MM_D || inverse <= 0) {
    return el("span", { class: "muted", "data-still": "true" }, `— (${T.sums.notMoving})`);
  }
  return `${significant.format(inverse)} d/mm`;
}

function duration(ms) {
  const hours = Math.abs(ms) / HOUR;
  return hours < 48 ? fill(T.sums.hours, { n: number.format(Math.round(hours * 10) / 10) })
    : fill(T.sums.days, { n: number.format(Math.round(hours / 2.4) / 10) });
}

// A failure forecast is danger: red, with its time, how far off it is and the trend behind it.
function forecastBox(f) {
  if (!f) {
    return el("div", { class: "forecast forecast-none", "data-forecast": "no" },
      el("h3", null, el("span", { class: "forecast-tag" }, T.legend.forecast), " ",
        T.sums.forecast),
      el("p", { class: "note" }, T.sums.noForecast));
  }
  const at = Date.parse(f.failure_time);
  const left = at - Date.now();
  return el("div", { class: "forecast forecast-danger", "data-forecast": "yes", role: "alert" },
    el("h3", null, el("span", { class: "forecast-tag" }, T.legend.forecast), " ",
      T.sums.forecast),
    el("p", { class: "forecast-time" }, el("span", null, T.sums.failureTime), " ",
      el("time", { datetime: f.failure_time }, when(at)), " ",
      el("strong", { class: "forecast-left" }, fill(left >= 0 ? T.sums.forecastIn
        : T.sums.forecastPast, { duration: duration(left) }))),
    el("p", { class: "forecast-trend" }, fill(T.sums.trend,
      { slope: significant.format(Math.abs(f.slope)) })),
    el("p", { class: "forecast-fit" }, fill(T.sums.fit, { r2: f.r2.toFixed(2),
      points: f.points })),
    el("p", { class: "note" }, T.sums.forecastNote));
}

function displacementSums(sums) {
  const velocity = sums.velocity_mm_d;
  return [el("dl", { class: "rows sums-rows" },
    row("velocity", T.sums.velocity, velocity === null || velocity === undefined ? "—"
      : `${number.format(velocity)} mm/d`),
    row("inverse", T.sums.inverseVelocity, inverseVelocity(sums))), forecastBox(sums.forecast)];
}

function renderSums() {
  const sums = state.sums;
  if (!sums) return;
  const body = sumsBox.querySelector(".sums-body");
  let parts;
  if (RAIN) parts = rainSums(sums);
  else if (DISPLACEMENT) parts = displacementSums(sums);
  else {
    parts = [el("dl", { class: "rows sums-rows" }, row("last", T.sums.lastValue,
      S.last_value === null || S.last_value === undefined ? "—"
        : `${number.format(S.last_value)} ${S.unit}`))];
  }
  parts.push(el("p", { class: "note as-of" }, fill(T.sums.asOf, {
    time: when(Date.parse(sums.as_of)) })));
  body.replaceChildren(...parts);
  sumsBox.dataset.state = "ready";
  // A forecast of failure is never shown beside a green state.
  root.dataset.forecast = DISPLACEMENT && sums.forecast ? "yes" : "no";
}

// --- the range that fits the data ----------------------------------------------------------

function eventRange(event) {
  const start = Date.parse(event.start);
  const span = Date.now() - start;
  const margin = Math.max(config.eventMarginH * HOUR, span * 0.1);
  const since = start - margin;
  return { key: "event", hours: null, since,
    source: Date.now() - since > READINGS_UP_TO_MS ? "hourly" : "readings" };
}

function pressRange(key) {
  for (const button of document.querySelectorAll(".range-buttons .range")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === key));
  }
}

// The rain event's button (shown while an event goes on); with no range chosen by the user,
// the page opens on the event so a 3-hour storm fills the chart instead of an eighth of it.
function fitEventRange() {
  const button = document.querySelector('.range-buttons .range[data-range="event"]');
  if (!button) return;
  const event = RAIN && state.sums && state.sums.event;
  button.hidden = !event;
  if (!event) {
    delete ranges.event;
    return;
  }
  const before = ranges.event;
  ranges.event = eventRange(event);
  const moved = !before || before.since !== ranges.event.since
    || before.source !== ranges.event.source;
  if (state.range.key === "event") {
    state.range = ranges.event;
    if (moved) load(state.range);
  }
}

// --- live ------------------------------------------------------------------------------------

function onReading(message) {
  if (!message || message.sensor !== S.code) return;
  S.last_value = message.value;
  S.last_ts = message.ts;
  S.last_flag = message.flag;
  S.status = "reporting";
  showLast(message.value, message.ts, message.flag || "good");
  showStatusOf("reporting");
  root.dataset.lastReading = message.ts;
  if (state.range.source === "readings" && state.loadedFor === state.range.key) {
    state.items = state.items.filter((p) => p.ts !== message.ts);
    state.items.push({ ts: message.ts, value: message.value, flag: message.flag || "good",
      qc: [] });
    state.until = Math.max(Date.now(), Date.parse(message.ts));
    state.since = sinceOf(state.range, state.until);
    render();
  } else {
    refreshHourly();
  }
  refreshSums();
}

function onStatus(message) {
  if (!message) return;
  if (message.sensor === S.code) {
    if (message.status) {
      S.status = message.status;
      showStatusOf(message.status);
    }
    // A silent sensor is missing whatever its last reading's flag was (as on the map).
    const flag = (message.status || S.status) === "missing" ? "missing" : message.flag;
    if (flag) showLast(S.last_value, S.last_ts, flag);
  } else if (message.gateway && message.gateway === S.gateway
      && typeof message.online === "boolean") {
    showGateway(message.online, message.reason);
  }
}

function showGateway(online, reason) {
  const node = document.getElementById("gateway-state");
  node.hidden = online !== false;
  node.dataset.reason = reason || "";
  node.textContent = T.gatewayOffline[reason] || T.gatewayOffline.reported;
}

async function connectLive() {
  if (!document.getElementById("live")) return;
  const { socket, onLive } = await import("../live.js");
  socket.on("reading", onReading);
  socket.on("sensor_status", onStatus);
  let wasOnline = false;
  let before = false;
  onLive((live) => {
    // Back after a drop: reload what may have been missed.
    if (live.online && !wasOnline && before) {
      load(state.range);
      refreshSums();
    }
    if (live.online) before = true;
    wasOnline = live.online;
  });
}

// --- start -----------------------------------------------------------------------------------

for (const button of document.querySelectorAll(".range-buttons .range")) {
  button.addEventListener("click", () => {
    const chosen = ranges[button.dataset.range];
    if (!chosen) return;
    pressRange(chosen.key);
    state.range = chosen;
    state.chosen = true;
    try {
      window.localStorage.setItem(RANGE_KEY, chosen.key);
    } catch {
      // Private mode: the choice holds for this page only.
    }
    load(chosen);
  });
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    if (state.loadedFor) render();
  }, 150);
});

// The window follows the clock: the tail gap grows while a sensor is silent; sums slide too.
window.setInterval(() => {
  if (state.loadedFor === state.range.key && state.range.source === "readings") {
    state.until = Date.now();
    state.since = sinceOf(state.range, state.until);
    render();
  }
  refreshSums();
}, SLIDE_MS);

function storedRange() {
  try {
    return window.localStorage.getItem(RANGE_KEY);
  } catch {
    return null;
  }
}

// The first range: the user's last choice; else, for a rain gauge in an event, the event.
async function start() {
  const kept = storedRange();
  if (RAIN) {
    try {
      sumsAt = Date.now();
      state.sums = await getJson(config.urls.sums);
      renderSums();
      fitEventRange();
    } catch {
      sumsBox.dataset.state = "error";
    }
  }
  if (kept && (ranges[kept] || kept === "event")) state.chosen = true;
  const first = ranges[kept] || (!state.chosen && ranges.event) || ranges[config.defaultRange];
  state.range = first;
  pressRange(first.key);
  load(first);
  if (!RAIN) refreshSums();
}

showLast(S.last_value, S.last_ts, document.getElementById("last-value").dataset.flag);
if (S.gateway_online === false) showGateway(false, S.gateway_offline_reason);
connectLive().catch(() => {
  // The page works without the live channel; the indicator in the top bar shows it is down.
});
start();
