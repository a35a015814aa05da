// One hazard zone's page (alerts/templates/hazard.html): the current rain event on the
// intensity–duration chart with both threshold curves (log–log), each slope sensor's inverse
// velocity with the Fukuzono forecast line and the velocity thresholds as lines of 1/v, and the
// zone's active alerts; kept live.
//
// Data: GET /api/v1/hazards/<code>/charts, computed with the rules' own code (alerts.rules,
// telemetry.rain, telemetry.slope), so the chart and the alert never disagree. Live: `alert`
// events about this zone and `reading` events of its sensors re-fetch it (at most every
// REFRESH_EVERY_MS); the clock re-fetches it every minute too, since D grows with time.
//
// #hazard keeps data-state (loading | ready | error), data-rain-level and data-slope-level for
// people and tests; every curve, point and line carries data-* attributes too.

import { getJson } from "../api.js";
import { el, svg } from "../dom.js";

const root = document.getElementById("hazard");
const config = JSON.parse(document.getElementById("hazard-config").textContent);
const T = config.labels;
const C = config.colours;
const lang = document.documentElement.lang || "zh-CN";
const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
const one = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const significant = new Intl.NumberFormat(lang, { maximumSignificantDigits: 3 });
const stamp = new Intl.DateTimeFormat(lang, { month: "numeric", day: "numeric", hour: "2-digit",
  minute: "2-digit", hourCycle: "h23" });
const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const day = new Intl.DateTimeFormat(lang, { month: "numeric", day: "numeric" });

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const REFRESH_EVERY_MS = 5000;
const CLOCK_MS = 60000;
const RETRY_MS = 10000;
const NAVY = "#13315c";
const LINE = "#283593";
const SLOPE_LEVELS = ["attention", "warning", "alarm"];

const statusLine = root.querySelector(".chart-status");
const state = { data: null, sensors: new Set(), at: 0, timer: null, retry: null };

// --- small helpers ----------------------------------------------------------------------------

const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_m, k) => values[k] ?? "");
const when = (ms) => stamp.format(new Date(ms));
const log10 = Math.log10;

function showStatus(words, kind = "info") {
  statusLine.textContent = words || "";
  statusLine.dataset.kind = kind;
  statusLine.hidden = !words;
}

function levelBadge(node, level, words, colour) {
  node.dataset.level = level || "none";
  node.textContent = words;
  node.style.setProperty("--level", colour);
}

function sensorLink(code, words) {
  return el("a", { href: config.urls.sensorPage.replace(/CODE$/, encodeURIComponent(code)) },
    words);
}

// Whether (D, I) reaches a curve I = α·D^−β (reaching counts, as the rules say).
const reaches = (curve, d, i) => i >= curve.alpha * d ** -curve.beta;

function levelOf(rain, d, i) {
  if (reaches(rain.evacuate, d, i)) return "evacuate";
  return reaches(rain.prepare, d, i) ? "prepare" : "none";
}

// --- the intensity–duration chart (log–log) ---------------------------------------------------

function logScale([lo, hi], from, to) {
  const a = log10(lo);
  const span = log10(hi) - a;
  return (v) => from + ((log10(v) - a) / span) * (to - from);
}

// Decades with their 2–9 multiples inside [lo, hi]; labels at decades and at the axis' ends.
function logTicks([lo, hi]) {
  const out = [];
  for (let p = Math.floor(log10(lo)); p <= Math.ceil(log10(hi)); p += 1) {
    for (let k = 1; k <= 9; k += 1) {
      const v = k * 10 ** p;
      if (v < lo * 0.999 || v > hi * 1.001) continue;
      out.push({ v, major: k === 1 });
    }
  }
  if (!out.some((t) => Math.abs(t.v - hi) < hi * 1e-6)) out.push({ v: hi, major: false, end: true });
  return out;
}

function curvePath(curve, xOf, yOf, [d0, d1]) {
  const steps = 80;
  const out = [];
  for (let k = 0; k <= steps; k += 1) {
    const d = 10 ** (log10(d0) + ((log10(d1) - log10(d0)) * k) / steps);
    out.push(`${k ? "L" : "M"}${xOf(d).toFixed(1)} ${yOf(curve.alpha * d ** -curve.beta).toFixed(1)}`);
  }
  return out.join(" ");
}

function idFrame(width, height) {
  const m = { top: 16, right: 24, bottom: 48, left: 64 };
  const box = { left: m.left, top: m.top, right: width - m.right, bottom: height - m.bottom };
  const x = logScale(config.axes.duration_h, box.left, box.right);
  const y = logScale(config.axes.intensity_mm_h, box.bottom, box.top);
  const node = svg("svg", { class: "chart-svg", "data-chart": "id", viewBox: `0 0 ${width} ${height}`,
    width, height, role: "img", "aria-label": T.chart.title });
  node.append(svg("defs", null, svg("clipPath", { id: "id-clip" }, svg("rect", { x: box.left,
    y: box.top, width: box.right - box.left, height: box.bottom - box.top }))));
  node.append(svg("rect", { class: "plot-area", x: box.left, y: box.top,
    width: box.right - box.left, height: box.bottom - box.top, fill: "#fff", stroke: "#d5dde8" }));
  const grid = svg("g", { class: "grid" });
  for (const t of logTicks(config.axes.duration_h)) {
    grid.append(svg("line", { x1: x(t.v), x2: x(t.v), y1: box.top, y2: box.bottom,
      stroke: t.major ? "#dfe5ee" : "#f1f4f8" }));
    if (t.major || t.end) {
      grid.append(svg("text", { x: x(t.v), y: box.bottom + 16, "text-anchor": "middle",
        class: "tick" }, number.format(t.v)));
    }
  }
  for (const t of logTicks(config.axes.intensity_mm_h)) {
    grid.append(svg("line", { x1: box.left, x2: box.right, y1: y(t.v), y2: y(t.v),
      stroke: t.major ? "#dfe5ee" : "#f1f4f8" }));
    if (t.major || t.end) {
      grid.append(svg("text", { x: box.left - 6, y: y(t.v) + 4, "text-anchor": "end",
        class: "tick" }, number.format(t.v)));
    }
  }
  grid.append(svg("text", { class: "axis-title", x: (box.left + box.right) / 2, y: height - 8,
    "text-anchor": "middle" }, T.chart.duration));
  grid.append(svg("text", { class: "axis-title", x: 0, y: 0, "text-anchor": "middle",
    transform: `translate(16 ${(box.top + box.bottom) / 2}) rotate(-90)` }, T.chart.intensity));
  node.append(grid);
  return { node, x, y, box };
}

// The areas above each curve, tinted (clipped to the plot), then the curves with their names.
function drawCurves(frame, rain) {
  const { node, x, y, box } = frame;
  const axis = config.axes.duration_h;
  const layer = svg("g", { class: "curves", "clip-path": "url(#id-clip)" });
  for (const level of ["prepare", "evacuate"]) {
    const d = curvePath(rain[level], x, y, axis);
    layer.append(svg("path", { class: "curve-area", "data-level": level, fill: C[level],
      "fill-opacity": 0.07, stroke: "none",
      d: `${d} L${box.right} ${box.top - 1} L${box.left} ${box.top - 1} Z` }));
  }
  for (const level of ["prepare", "evacuate"]) {
    const curve = rain[level];
    layer.append(svg("path", { class: "threshold-curve", "data-level": level,
      "data-alpha": curve.alpha, "data-beta": curve.beta, d: curvePath(curve, x, y, axis),
      fill: "none", stroke: C[level], "stroke-width": 2.5 },
    svg("title", null, curveWords(level, curve))));
    // The name at the right end, just above the curve.
    const end = axis[1];
    layer.append(svg("text", { class: "curve-name", "data-level": level, x: box.right - 6,
      y: Math.max(box.top + 12, y(curve.alpha * end ** -curve.beta) - 7), "text-anchor": "end",
      fill: C[level] }, T.chart[level]));
  }
  node.append(layer);
}

function curveWords(level, curve) {
  const equation = fill(T.chart.equation, { alpha: number.format(curve.alpha),
    beta: number.format(curve.beta) });
  return `${T.chart[level]}: ${equation} (${curve.source || T.chart.ownCurve})`;
}

function pointWords(gauge) {
  const e = gauge.event;
  return fill(T.chart.point, { gauge: gauge.name === gauge.code ? gauge.code
    : `${gauge.name} ${gauge.code}`, mm: one.format(e.mm), hours: one.format(e.duration_h),
  intensity: significant.format(e.intensity_mm_h) });
}

// One point per gauge in an event: at (D to now, I); off the axes it sits on the edge, hollow.
function drawEvents(frame, rain) {
  const { node, x, y, box } = frame;
  const [d0, d1] = config.axes.duration_h;
  const [i0, i1] = config.axes.intensity_mm_h;
  const layer = svg("g", { class: "events" });
  for (const gauge of rain.gauges) {
    if (!gauge.event) continue;
    const { duration_h: d, intensity_mm_h: i } = gauge.event;
    const inside = d >= d0 && d <= d1 && i >= i0 && i <= i1;
    const cx = x(Math.min(d1, Math.max(d0, d)));
    const cy = y(Math.min(i1, Math.max(i0, i)));
    const level = levelOf(rain, d, i);
    const colour = level === "none" ? NAVY : C[level];
    const words = pointWords(gauge) + (inside ? "" : ` (${T.chart.offChart})`);
    layer.append(svg("g", { class: "event-point", "data-gauge": gauge.code, "data-duration": d,
      "data-intensity": i, "data-level": level, "data-inside": String(inside) },
    svg("circle", { cx, cy, r: 7, fill: inside ? colour : "#fff", stroke: inside ? "#fff" : colour,
      "stroke-width": inside ? 2 : 3 }),
    svg("text", { class: "point-name", x: Math.min(cx + 10, box.right - 4), y: cy - 9,
      "text-anchor": cx + 10 > box.right - 60 ? "end" : "start" }, gauge.code),
    svg("title", null, words)));
  }
  node.append(layer);
}

function legendItem(kind, words, colour) {
  return el("li", { "data-legend": kind }, el("span", { class: `key key-${kind}`,
    style: { "--key": colour }, "aria-hidden": "true" }), words);
}

function renderIdChart(data) {
  const box = document.getElementById("id-chart");
  const width = Math.max(340, Math.floor(box.clientWidth || 640));
  const height = Math.round(Math.min(480, Math.max(320, width * 0.56)));
  const frame = idFrame(width, height);
  drawCurves(frame, data.rain);
  drawEvents(frame, data.rain);
  box.replaceChildren(frame.node);
  document.getElementById("id-legend").replaceChildren(
    legendItem("curve", curveWords("prepare", data.rain.prepare), C.prepare),
    legendItem("curve", curveWords("evacuate", data.rain.evacuate), C.evacuate),
    legendItem("point", T.chart.eventPoint, NAVY));
}

// --- the rain level, its rule and the gauges -------------------------------------------------

function ruleWords(rain) {
  const r = rain.rule || {};
  if (!rain.gauges.length) return T.rule.noGauges;
  if (!r.gauge) return T.rule.noEvent;
  const values = { gauge: r.gauge, mm: one.format(r.event_mm), hours: one.format(r.duration_h),
    intensity: significant.format(r.intensity_mm_h),
    threshold: significant.format(r.threshold_mm_h) };
  return fill(rain.level ? T.rule.decided : T.rule.below, values);
}

function renderRain(data) {
  const rain = data.rain;
  const level = rain.level || "none";
  // Nothing heard from any gauge is not "below the curves": it is unknown, and grey.
  const known = rain.gauges.some((g) => g.state !== "unknown");
  if (rain.level || known) {
    levelBadge(document.getElementById("rain-level"), level,
      rain.level ? T.level[rain.level] : T.level.none, C[level]);
  } else levelBadge(document.getElementById("rain-level"), "unknown", T.level.unknown, "#7f7f7f");
  const words = [ruleWords(rain)];
  if (rain.unknown && rain.unknown.length) {
    words.push(fill(T.rule.unknown, { gauges: rain.unknown.join(", ") }));
  }
  document.getElementById("rain-rule").textContent = words.join(" ");
  const rows = rain.gauges.map((g) => {
    const name = sensorLink(g.code, g.name === g.code ? g.code : `${g.name} · ${g.code}`);
    if (!g.event) {
      return el("tr", { "data-gauge": g.code, "data-state": g.state }, el("th", { scope: "row" },
        name), el("td", { colspan: 4, class: "muted" }, T.gauges[g.state] || g.state));
    }
    const e = g.event;
    return el("tr", { "data-gauge": g.code, "data-state": "event" },
      el("th", { scope: "row" }, name),
      el("td", null, `${one.format(e.mm)} mm`),
      el("td", null, el("time", { datetime: e.start }, when(Date.parse(e.start)))),
      el("td", null, one.format(e.duration_h)),
      el("td", null, significant.format(e.intensity_mm_h)));
  });
  document.querySelector("#gauges tbody").replaceChildren(...rows);
  document.getElementById("gauges").hidden = !rows.length;
  renderIdChart(data);
}

// --- the inverse-velocity plots ----------------------------------------------------------------

const TIME_STEPS = [HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY];

function timeTicks(since, until, width) {
  const most = Math.max(2, Math.floor(width / 90));
  const step = TIME_STEPS.find((s) => (until - since) / s <= most) || 2 * DAY;
  const start = new Date(since);
  start.setMinutes(0, 0, 0);
  if (step >= DAY) start.setHours(0);
  const out = [];
  for (let t = start.getTime(); t <= until; t += HOUR) {
    const d = new Date(t);
    if (t < since) continue;
    const atHour = step < DAY && d.getHours() % (step / HOUR) === 0;
    const atDay = step >= DAY && d.getHours() === 0 && Math.round((t - start) / DAY) % (step / DAY) === 0;
    if (atHour || atDay) out.push(t);
  }
  return { ticks: out, step };
}

function timeLabel(t, step) {
  const d = new Date(t);
  return step >= DAY || (d.getHours() === 0 && d.getMinutes() === 0) ? day.format(d) : clock.format(d);
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(log10(raw));
  return [1, 2, 2.5, 5, 10].map((k) => k * power).find((s) => s >= raw) || power * 10;
}

function quantile(values, q) {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))];
}

// The time span shown: the readings, now, and the forecast failure time when it is near enough
// to see (else the line runs off the right edge and the text says when).
function slopeSpan(sensor, points, now) {
  const first = points.length ? points[0].t : now - DAY;
  const since = Math.min(first, sensor.first ? Date.parse(sensor.first) : first);
  const ahead = Math.max((now - since) * 0.5, 6 * HOUR);
  const f = sensor.forecast;
  const failure = f ? Date.parse(f.failure_time) : null;
  if (failure !== null && failure > now && failure - now <= ahead) {
    return { since, until: failure + (failure - since) * 0.04, beyond: false };
  }
  return { since, until: now + Math.min(ahead, (now - since) * 0.08 + HOUR),
    beyond: failure !== null && failure > now };
}

function slopeThresholds(slope) {
  return SLOPE_LEVELS.filter((level) => slope.velocity_mm_d[level])
    .map((level) => ({ level, velocity: slope.velocity_mm_d[level],
      inverse: 1 / slope.velocity_mm_d[level] }));
}

function slopeTop(points, lines, sensor) {
  const values = points.map((p) => p.y);
  // A slope hardly moving has huge, noisy 1/v: the top follows the bulk of the points.
  let top = values.length > 8 ? quantile(values, 0.95) * 1.15 : Math.max(0, ...values) * 1.1;
  for (const line of lines) top = Math.max(top, line.inverse * 1.25);
  const f = sensor.forecast;
  if (f) top = Math.max(top, f.slope * ((Date.parse(f.fit_from) - Date.parse(f.failure_time)) / DAY));
  return top > 0 ? top : 1;
}

function slopeFrame(sensor, span, top, width, height) {
  const m = { top: 14, right: 20, bottom: 28, left: 60 };
  const box = { left: m.left, top: m.top, right: width - m.right, bottom: height - m.bottom };
  const x = (t) => box.left + ((t - span.since) / (span.until - span.since)) * (box.right - box.left);
  const step = niceStep(top, 4);
  const yTop = Math.ceil(top / step) * step;
  const y = (v) => box.bottom - (v / yTop) * (box.bottom - box.top);
  const clip = `iv-clip-${sensor.code.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const node = svg("svg", { class: "chart-svg", "data-chart": "inverse-velocity",
    "data-sensor": sensor.code, viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": fill(T.slope.plotTitle, { sensor: sensor.code }) });
  node.append(svg("defs", null, svg("clipPath", { id: clip }, svg("rect", { x: box.left,
    y: box.top, width: box.right - box.left, height: box.bottom - box.top }))));
  node.append(svg("rect", { class: "plot-area", x: box.left, y: box.top,
    width: box.right - box.left, height: box.bottom - box.top, fill: "#fff", stroke: "#d5dde8" }));
  const grid = svg("g", { class: "grid" });
  for (let v = 0; v <= yTop + step * 1e-6; v += step) {
    grid.append(svg("line", { x1: box.left, x2: box.right, y1: y(v), y2: y(v), stroke: "#edf1f6" }));
    grid.append(svg("text", { x: box.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" },
      number.format(v)));
  }
  const { ticks, step: tStep } = timeTicks(span.since, span.until, box.right - box.left);
  for (const t of ticks) {
    grid.append(svg("line", { x1: x(t), x2: x(t), y1: box.top, y2: box.bottom, stroke: "#edf1f6" }));
    grid.append(svg("text", { x: x(t), y: height - 8, "text-anchor": "middle", class: "tick" },
      timeLabel(t, tStep)));
  }
  grid.append(svg("text", { class: "axis-title", x: 0, y: 0, "text-anchor": "middle",
    transform: `translate(14 ${(box.top + box.bottom) / 2}) rotate(-90)` }, T.slope.axis));
  node.append(grid);
  const layer = svg("g", { class: "series", "clip-path": `url(#${clip})` });
  node.append(layer);
  return { node, layer, x, y, box };
}

// Threshold lines close together (warning and alarm near 1/v = 0) take turns at the left and
// right ends for their names, so no name covers another.
const LABEL_ROOM = 14;

function drawThresholdLines(frame, lines) {
  const { node, y, box } = frame;
  const group = svg("g", { class: "velocity-thresholds" });
  const used = { start: [], end: [] };
  for (const line of lines) {
    const level = config.levels[`slope_movement:${line.level}`].label;
    const words = fill(T.slope.threshold, { level, velocity: number.format(line.velocity),
      inverse: significant.format(line.inverse) });
    const at = y(line.inverse);
    if (at < box.top) continue;
    const side = used.start.some((v) => Math.abs(v - at) < LABEL_ROOM) ? "end" : "start";
    used[side].push(at);
    group.append(svg("g", { class: "velocity-threshold", "data-level": line.level,
      "data-inverse": line.inverse },
    svg("line", { x1: box.left, x2: box.right, y1: at, y2: at, stroke: C[line.level],
      "stroke-width": 1.5, "stroke-dasharray": "6 4" }),
    svg("text", { x: side === "start" ? box.left + 6 : box.right - 6, y: at - 4,
      "text-anchor": side, class: "line-name", fill: C[line.level] },
    `${level} ${number.format(line.velocity)} mm/d`),
    svg("title", null, words)));
  }
  node.append(group);
}

function drawMeasured(frame, points) {
  const { layer, x, y } = frame;
  if (!points.length) return;
  const d = points.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)} ${y(p.y).toFixed(1)}`).join(" ");
  layer.append(svg("path", { class: "inverse-line", d, fill: "none", stroke: LINE,
    "stroke-width": 1.8, "stroke-linejoin": "round", "data-points": points.length }));
  if (points.length <= 240) {
    for (const p of points) {
      layer.append(svg("circle", { class: "inverse-point", cx: x(p.t), cy: y(p.y), r: 2.4,
        fill: LINE }));
    }
  }
}

// Fukuzono's line: from the first fitted point down to 1/v = 0 at the forecast failure time.
function drawForecast(frame, f, span) {
  const { node, layer, x, y, box } = frame;
  const failure = Date.parse(f.failure_time);
  const from = Date.parse(f.fit_from);
  const startY = f.slope * ((from - failure) / DAY);
  layer.append(svg("line", { class: "forecast-line", x1: x(from), y1: y(startY), x2: x(failure),
    y2: y(0), stroke: C.alarm, "stroke-width": 2.5, "stroke-dasharray": "8 5",
    "data-failure": f.failure_time, "data-r2": f.r2, "data-points": f.points },
  svg("title", null, T.slope.forecastLine)));
  if (!span.beyond && failure <= span.until) {
    // Outside the clipped layer: the cross sits on the axis and would be cut in half.
    node.append(svg("path", { class: "failure-mark", stroke: C.alarm, "stroke-width": 2.5,
      d: `M${x(failure) - 6} ${y(0) - 6} L${x(failure) + 6} ${y(0) + 6} M${x(failure) + 6} ${y(0) - 6} L${x(failure) - 6} ${y(0) + 6}` }));
  }
  const label = `${T.slope.forecastLabel} · r² = ${f.r2.toFixed(2)} · n = ${f.points}`;
  const lx = Math.min(Math.max(x(from), box.left + 4), box.right - 4);
  node.append(svg("text", { class: "forecast-label", x: lx, y: box.top + 14,
    "text-anchor": lx > (box.left + box.right) / 2 ? "end" : "start", fill: C.alarm,
    "data-r2": f.r2, "data-points": f.points }, label));
}

function drawNow(frame, now) {
  const { node, x, box } = frame;
  if (x(now) > box.right) return;
  node.append(svg("g", { class: "now-line" }, svg("line", { x1: x(now), x2: x(now), y1: box.top,
    y2: box.bottom, stroke: "#5a6a7e", "stroke-dasharray": "2 3" }),
  svg("text", { x: x(now) - 4, y: box.bottom - 6, "text-anchor": "end", class: "tick" },
    T.slope.now)));
}

function duration(ms) {
  const hours = Math.abs(ms) / HOUR;
  const n = hours < 48 ? number.format(Math.round(hours * 10) / 10)
    : number.format(Math.round(hours / 2.4) / 10);
  if (ms >= 0) return fill(hours < 48 ? T.slope.hours : T.slope.days, { n });
  return fill(hours < 48 ? T.slope.hoursAgo : T.slope.daysAgo, { n });
}

function forecastWords(f, now, span) {
  if (!f) return el("p", { class: "note forecast-words", "data-forecast": "no" }, T.slope.noForecast);
  const failure = Date.parse(f.failure_time);
  const template = failure >= now ? T.slope.forecastText : T.slope.forecastPast;
  const words = fill(template, { time: when(failure), duration: duration(failure - now),
    r2: f.r2.toFixed(2), points: f.points });
  return el("p", { class: "forecast-words", "data-forecast": "yes" }, words,
    span.beyond ? ` ${T.slope.beyond}` : null);
}

function slopeFigure(sensor, slope, now, width) {
  const points = sensor.inverse.map(([ts, v]) => ({ t: Date.parse(ts), y: v }));
  const lines = slopeThresholds(slope);
  const span = slopeSpan(sensor, points, now);
  const frame = slopeFrame(sensor, span, slopeTop(points, lines, sensor), width, 280);
  drawThresholdLines(frame, lines);
  drawMeasured(frame, points);
  if (sensor.forecast) drawForecast(frame, sensor.forecast, span);
  drawNow(frame, now);
  const velocity = sensor.velocity_mm_d === null
    ? fill(T.slope.noVelocity, { hours: number.format(slope.window_h) })
    : fill(T.slope.velocity, { hours: number.format(slope.window_h),
      velocity: number.format(sensor.velocity_mm_d) });
  const name = sensor.name === sensor.code ? sensor.code : `${sensor.name} · ${sensor.code}`;
  return el("figure", { class: "slope-figure", "data-sensor": sensor.code,
    "data-forecast": sensor.forecast ? "yes" : "no" },
  el("figcaption", null, sensorLink(sensor.code, name), " ",
    el("span", { class: "muted" }, T.slope.measured)),
  frame.node,
  el("p", { class: "note" }, velocity, points.length ? "" : ` · ${T.slope.noPoints}`),
  forecastWords(sensor.forecast, now, span));
}

function renderSlope(data) {
  const slope = data.slope;
  const lines = slopeThresholds(slope);
  const badge = document.getElementById("slope-level");
  if (!lines.length) levelBadge(badge, "none", T.level.noThresholds, "#7f7f7f");
  else if (slope.level) {
    levelBadge(badge, slope.level, config.levels[`slope_movement:${slope.level}`].label,
      C[slope.level]);
  } else levelBadge(badge, "none", T.level.slopeNone, C.none);
  const note = document.getElementById("slope-note");
  if (!slope.sensors.length) note.textContent = T.slope.noSensors;
  else if (!lines.length) note.textContent = T.slope.noThresholds;
  else note.textContent = fill(T.slope.thresholds, { agree: slope.agree });
  note.dataset.kind = slope.sensors.length && !lines.length ? "warn" : "info";
  const box = document.getElementById("slope-plots");
  const width = Math.max(340, Math.floor(box.clientWidth || 640));
  const now = Date.parse(data.as_of);
  box.replaceChildren(...slope.sensors.map((s) => slopeFigure(s, slope, now, width)));
}

// --- alerts and the zone ----------------------------------------------------------------------

function alertItem(alert) {
  const level = config.levels[`${alert.kind}:${alert.level}`];
  const r = alert.rule || {};
  let numbers = null;
  if (alert.kind === "landslide_rain" && r.intensity_mm_h !== undefined && r.intensity_mm_h !== null) {
    numbers = `I ${significant.format(r.intensity_mm_h)} mm/h · D ${one.format(r.duration_h)} h`;
  } else if (alert.kind === "slope_movement" && r.velocity_mm_d !== undefined && r.velocity_mm_d !== null) {
    numbers = `${number.format(r.velocity_mm_d)} mm/d · ${r.agreeing}/${r.of}`;
  }
  return el("li", { class: "alert-item", "data-alert": alert.id, "data-kind": alert.kind,
    "data-level": alert.level, "data-state": alert.state },
  el("span", { class: "level-badge", "data-level": alert.level,
    style: { "--level": level ? level.colour : NAVY } }, level ? level.label : alert.level),
  el("span", { class: "alert-kind" }, alert.labels.kind),
  el("span", { class: "alert-meta muted" }, [alert.labels.state,
    fill(T.alerts.raised, { time: when(Date.parse(alert.raised_at)) }), numbers]
    .filter(Boolean).join(" · ")));
}

function renderAlerts(data) {
  const list = document.getElementById("alert-list");
  const items = data.alerts.map(alertItem);
  if (!items.length) items.push(el("li", { class: "muted", "data-empty": "true" }, T.alerts.none));
  list.replaceChildren(...items);
  document.getElementById("alerts").dataset.count = String(data.alerts.length);
  const warning = data.zone.warning_level || "none";
  levelBadge(document.getElementById("zone-warning"), warning, T.warning[warning] || warning,
    C[warning] || C.none);
}

function render() {
  const data = state.data;
  if (!data) return;
  document.getElementById("table-note").hidden = data.table !== "none";
  renderRain(data);
  renderSlope(data);
  renderAlerts(data);
  document.getElementById("as-of").textContent = fill(T.asOf, {
    time: when(Date.parse(data.as_of)) });
  state.sensors = new Set([...data.rain.gauges, ...data.slope.sensors].map((s) => s.code));
  root.dataset.rainLevel = data.rain.level || "none";
  root.dataset.slopeLevel = data.slope.level || "none";
  root.dataset.state = "ready";
  showStatus("");
}

// --- loading and live -------------------------------------------------------------------------

async function load() {
  window.clearTimeout(state.retry);
  state.at = Date.now();
  try {
    state.data = await getJson(config.urls.charts);
    render();
  } catch {
    root.dataset.state = state.data ? "ready" : "error";
    showStatus(T.status.failed, "error");
    state.retry = window.setTimeout(load, RETRY_MS);
  }
}

// Re-fetch now, or as soon as REFRESH_EVERY_MS has passed since the last fetch.
function refresh() {
  if (state.timer) return;
  const wait = Math.max(0, state.at + REFRESH_EVERY_MS - Date.now());
  state.timer = window.setTimeout(() => {
    state.timer = null;
    load();
  }, wait);
}

async function connectLive() {
  if (!document.getElementById("live")) return;
  const { socket, onLive } = await import("../live.js");
  socket.on("alert", (message) => {
    const alert = message && message.alert;
    if (alert && alert.subject && alert.subject.code === config.code) refresh();
  });
  socket.on("reading", (message) => {
    if (message && state.sensors.has(message.sensor)) refresh();
  });
  let wasOnline = false;
  onLive((live) => {
    if (live.online && !wasOnline && state.data) refresh(); // back after a drop
    wasOnline = live.online;
  });
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(render, 150);
});
window.setInterval(refresh, CLOCK_MS);

showStatus(T.status.loading, "busy");
connectLive().catch(() => {
  // The page works without the live channel; the indicator in the top bar shows it is down.
});
load();
