// The live map of the township (maps/templates/map.html).
//
// Layers come from GET /api/v1/layers/<name>?bbox=… for the current view (padded), reloaded on
// `moveend` (debounced) only when the view leaves what was loaded; roads only from ROAD_MIN_ZOOM
// on. Polygons and lines share one canvas (preferCanvas); shelters and monitoring stations are SVG
// circles in a pane above it, so each one is a DOM element carrying data-code and data-status.
// Colours and labels of kinds and states come from GET /api/v1/map/legend (the same table the
// legend shows); the page's own words come from the JSON block #map-config.
// Live: `layer` events on the shared /live socket (dispatch/static/live.js) update, add or remove
// the one feature, including an open popup, without reloading; `reading` and `sensor_status`
// events update a monitoring station's last value, QC flag and status (and its open popup, whose
// 6-hour sparkline comes from the sensor's readings when it opens; ../sparkline.js draws it).
//
// Warnings: villages and hazard zones are coloured by their warning level (the layer's
// `warning_level`, written by alerts and sent live as `layer` updates); rain gauges by their
// active rainstorm signal, from the alert panel's list (./alert_panel.js, GET /api/v1/alerts and
// `alert` events), with their 1 h and 3 h sums in the popup (GET /api/v1/sensors/<code>/sums).
// Selecting an alert in the panel highlights its villages, zone or gauge.
//
// The evacuation plan is ./plan_layer.js: its layer in the switcher, its panel (lower right) and
// the `plan` events.
//
// Layers of packages downstream of maps (DESIGN §2: maps never imports them) join through
// config.extensions, which maps.views.register_map_extension fills: each is an ES module of its
// own package, imported here, whose `attach(api)` adds its layer to the switcher with its legend
// and listens to its live events (the `api` below: "layers of other packages").
//
// #map keeps data-state (loading | ready | empty), data-features-loaded (total), data-count-<layer>,
// data-view (west,south,east,north), data-last-change (layer:code:action), data-warned (loaded
// villages under a warning, code:level) and data-highlight (the selected alert's village codes)
// for people and tests.

import { getJson } from "../api.js";
import { el } from "../dom.js";
import { FLAG_COLOURS, sparkline } from "../sparkline.js";
import { colourOf, levelLabel, vocabulary } from "../warnings.js";
import { AlertPanel } from "./alert_panel.js";
import { PlanLayer } from "./plan_layer.js";

const L = window.L;
const mapEl = document.getElementById("map");
const config = JSON.parse(document.getElementById("map-config").textContent);
const T = config.labels;
const lang = document.documentElement.lang || "zh-CN";
const number = new Intl.NumberFormat(lang);
const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 });

// --- cartography ---------------------------------------------------------------------------

// Bottom to top. The first four share the canvas; the last two are SVG circles above it.
const ORDER = ["villages", "hazards", "rivers", "roads", "shelters", "sensors"];
const CANVAS = ["villages", "hazards", "rivers", "roads"];
const ROAD_MIN_ZOOM = 12; // ~1,700 road segments per township: not at prefecture scale
const LABEL_MIN_ZOOM = 12.5; // village names drawn on the map from here on
const RELOAD_DELAY_MS = 250; // moveend debounce
const RETRY_MS = 10000;

// Village population: five fixed classes, so colours mean the same in every township and view.
const POPULATION_BREAKS = [500, 800, 1200, 2000];
const POPULATION_FILLS = ["#f1f4f7", "#d5dde6", "#b1bfcd", "#8798ac", "#5e718a"];
const VILLAGE_LINE = "#52606f";
const RIVERSIDE_LINE = "#00897b"; // riverside villages: a teal outline (and a wavy name)
// Warning levels: fills are alerts.choices COLOURS (the alert vocabulary); outlines darker.
const WARNING_LINES = { prepare: "#9c4a00", evacuate: "#7a0000" };
const HIGHLIGHT = "#0b2545";
const RAINSTORM_LEVELS = ["blue", "yellow", "orange", "red"];
// Used only when the legend has no colour for a key.
const FALLBACK = {
  open: "#2e7d32", full: "#f9a825", closed: "#c62828",
  county: "#e65100", township: "#f57c00", village: "#8d6e63", track: "#a1887f",
  landslide: "#8e24aa", debris_flow: "#6d4c41", flood_plain: "#1e88e5",
};
const RIVER = "#1f78d1";
const SENSOR = "#283593";
const ROAD_WEIGHT = { county: 4.5, township: 3.5, village: 2.4, track: 1.5 };
const ROAD_CLASSES = ["county", "township", "village", "track"];
const HAZARD_KINDS = ["landslide", "debris_flow", "flood_plain"];
const SHELTER_STATES = ["open", "full", "closed"];
// Hatching per hazard kind: the angle of its lines (degrees), matched by the legend swatches.
const HATCH_ANGLE = { landslide: 45, debris_flow: -45, flood_plain: 0 };

let legend = {};
// Symbols shrink when zoomed out to a whole county or prefecture (1 from zoom 12 on).
let symbolScale = 1;
const scaleFor = (zoom) => (zoom >= 12 ? 1 : zoom >= 10.5 ? 0.7 : 0.45);
const colour = (key) => (legend[key] && legend[key].colour) || FALLBACK[key] || "#607d8b";
const label = (key) => (legend[key] && legend[key].label) || key;

function warningStyle(level) {
  const line = WARNING_LINES[level];
  return line && { fill: colourOf(level), line };
}

// What the alert panel's selection highlights, by layer: sets of codes.
const highlight = { villages: new Set(), hazards: new Set(), sensors: new Set() };
// Rain gauges' active rainstorm signals: gauge code -> its alert.
let signals = new Map();

function populationClass(population) {
  const p = Number(population) || 0;
  let i = 0;
  while (i < POPULATION_BREAKS.length && p >= POPULATION_BREAKS[i]) i += 1;
  return i;
}

const patterns = new Map();

// A canvas pattern of thin lines in the kind's colour over a light tint of it (hatching).
function hatch(kind) {
  if (patterns.has(kind)) return patterns.get(kind);
  const size = 10;
  const tile = document.createElement("canvas");
  tile.width = size;
  tile.height = size;
  const ctx = tile.getContext("2d");
  const c = colour(kind);
  ctx.fillStyle = c;
  ctx.globalAlpha = 0.12;
  ctx.fillRect(0, 0, size, size);
  ctx.globalAlpha = 0.75;
  ctx.strokeStyle = c;
  ctx.lineWidth = 1.4;
  ctx.beginPath();
  const angle = HATCH_ANGLE[kind] ?? 45;
  if (angle === 0) {
    ctx.moveTo(0, size / 2);
    ctx.lineTo(size, size / 2);
  } else {
    // Diagonals that join up across tiles.
    const flip = angle < 0;
    for (const o of [-size, 0, size]) {
      ctx.moveTo(o, flip ? 0 : size);
      ctx.lineTo(o + size, flip ? size : 0);
    }
  }
  ctx.stroke();
  const pattern = ctx.createPattern(tile, "repeat");
  patterns.set(kind, pattern);
  return pattern;
}

const STYLES = {
  villages(p) {
    const warning = warningStyle(p.warning_level);
    if (highlight.villages.has(p.code)) {
      return { fill: true, fillColor: warning ? warning.fill : POPULATION_FILLS[
        populationClass(p.population)], fillOpacity: warning ? 0.75 : 0.85, color: HIGHLIGHT,
      weight: 5, opacity: 1, dashArray: null };
    }
    if (warning) {
      return { fill: true, fillColor: warning.fill, fillOpacity: 0.62, color: warning.line,
        weight: 3, opacity: 1, dashArray: null };
    }
    return {
      fill: true,
      fillColor: POPULATION_FILLS[populationClass(p.population)],
      fillOpacity: 0.78,
      color: p.riverside ? RIVERSIDE_LINE : VILLAGE_LINE,
      weight: (p.riverside ? 1.6 : 0.9) * symbolScale,
      opacity: p.riverside ? 0.85 : 0.7,
      dashArray: null,
    };
  },
  hazards(p) {
    const warning = warningStyle(p.warning_level);
    const lit = highlight.hazards.has(p.code);
    return { fill: true, fillColor: hatch(p.kind), fillOpacity: 1,
      color: lit ? HIGHLIGHT : warning ? warning.fill : colour(p.kind),
      weight: lit ? 5 : warning ? 3.5 : 1.6, opacity: 0.95 };
  },
  rivers() {
    return { color: RIVER, weight: Math.max(1.2, 3 * symbolScale), opacity: 0.9, lineCap: "round",
      lineJoin: "round" };
  },
  roads(p) {
    const weight = ROAD_WEIGHT[p.road_class] || 2;
    if (p.open === false) {
      return { color: colour("closed"), weight: Math.max(weight + 1, 4.5), opacity: 1,
        dashArray: "8 5", lineCap: "butt" };
    }
    return { color: colour(p.road_class), weight, opacity: p.road_class === "track" ? 0.8 : 0.95,
      dashArray: null, lineCap: "round", lineJoin: "round" };
  },
  shelters(p) {
    return { radius: shelterRadius(p) * symbolScale, fill: true, fillColor: colour(p.status),
      fillOpacity: 0.95, color: "#ffffff", weight: symbolScale < 1 ? 1.5 : 2.5, opacity: 1 };
  },
  sensors(p) {
    // A rain gauge under a rainstorm signal shows the signal's colour, larger; otherwise a
    // station whose last reading is not good shows its flag's colour (and says it in words).
    const signal = signals.get(p.code);
    const lit = highlight.sensors.has(p.code);
    if (signal) {
      return { radius: 9 * Math.max(symbolScale, 0.7), fill: true,
        fillColor: colourOf(signal.level), fillOpacity: 1, color: lit ? HIGHLIGHT : "#1b1b1b",
        weight: lit ? 4 : 2, opacity: 1 };
    }
    const flag = sensorFlag(p);
    return { radius: 6 * Math.max(symbolScale, 0.7), fill: true,
      fillColor: flag === "good" ? SENSOR : FLAG_COLOURS[flag] || SENSOR,
      fillOpacity: 0.95, color: lit ? HIGHLIGHT : "#ffffff",
      weight: lit ? 4 : symbolScale < 1 ? 1.5 : 2, opacity: 1 };
  },
};

// Circle area grows with the number of people a shelter takes (its larger capacity).
function shelterRadius(p) {
  const capacity = Math.max(Number(p.capacity_day) || 0, Number(p.capacity_night) || 0);
  return Math.min(20, Math.max(6, 4 + Math.sqrt(capacity) * 0.22));
}

// --- small helpers (names come from the database: DOM text only, through ../dom.js) ----------

function camel(name) {
  return name.replace(/-([a-z])/g, (_m, c) => c.toUpperCase());
}

const dash = "—";

// English pages name villages, shelters and townships by the pinyin the data carries (name_pinyin)
// and keep the Chinese name beside it; Chinese pages the other way round. Features without a
// pinyin name (hazard zones, rivers, stations) keep the one name they have.
const english = !lang.toLowerCase().startsWith("zh");
const shownName = (p) => (english && p.name_pinyin) || p.name;
const otherName = (p) => (english ? (p.name_pinyin && p.name) : p.name_pinyin) || null;
const count = (v) => (v === null || v === undefined || v === "" ? dash : number.format(v));
const text = (v) => (v === null || v === undefined || v === "" ? dash : String(v));

// --- popups --------------------------------------------------------------------------------

const F = T.fields;

function rows(pairs) {
  return el("dl", { class: "fp-rows" },
    pairs.filter(Boolean).map(([dt, dd, attrs]) => el("div", attrs || null, el("dt", null, dt),
      el("dd", null, dd))));
}

function title(name, code, fallback) {
  return el("h3", { class: "fp-title" }, el("span", { class: "fp-name" }, name || fallback),
    el("span", { class: "fp-code" }, code));
}

function badge(textValue, colourValue, attrs) {
  return el("span", { class: "fp-badge", style: { "--badge": colourValue }, ...attrs }, textValue);
}

function contact(name, phone) {
  if (!name && !phone) return dash;
  return el("span", null, name || "",
    phone ? el("a", { href: `tel:${phone}`, class: "fp-phone" }, phone) : null);
}

const POPUPS = {
  villages(p) {
    const warning = warningStyle(p.warning_level);
    return [
      title(shownName(p), p.code, T.layers.villages),
      otherName(p) || p.community
        ? el("p", { class: "fp-sub" }, [otherName(p), p.community].filter(Boolean).join(" · "))
        : null,
      warning ? badge(T.legend[p.warning_level], warning.fill,
        { "data-level": p.warning_level }) : null,
      rows([
        [F.population, count(p.population), { "data-field": "population" }],
        [F.households, count(p.households)],
        [F.vulnerable, count(p.vulnerable)],
        [F.contact, contact(p.contact_name, p.contact_phone)],
        [F.riverside, p.riverside ? T.values.yes : T.values.no],
        p.elevation_m !== null && p.elevation_m !== undefined
          ? [F.elevation, number.format(Math.round(p.elevation_m))] : null,
        [F.warning, warning ? T.legend[p.warning_level] : T.values.none],
      ]),
      el("a", { class: "fp-details", href: config.urls.villageThresholds.replace(/CODE$/,
        encodeURIComponent(p.code)) }, F.thresholds),
    ];
  },
  shelters(p) {
    const fill = typeof p.fill === "number" ? ` (${percent.format(p.fill)})` : "";
    return [
      title(shownName(p), p.code, T.layers.shelters),
      el("p", { class: "fp-sub" }, [otherName(p), label(p.kind)].filter(Boolean).join(" · ")),
      rows([
        [F.status, badge(label(p.status), colour(p.status), { "data-status": p.status }),
          { "data-field": "status" }],
        [F.capacity, `${count(p.capacity_day)} / ${count(p.capacity_night)}`],
        [F.occupancy, count(p.occupancy) + fill, { "data-field": "occupancy" }],
        [F.contact, contact(p.contact_name, p.contact_phone)],
      ]),
    ];
  },
  hazards(p) {
    const warning = warningStyle(p.warning_level);
    return [
      title(p.name, p.code, label(p.kind)),
      el("p", { class: "fp-sub" }, badge(label(p.kind), colour(p.kind))),
      warning ? badge(T.legend[p.warning_level], warning.fill,
        { "data-level": p.warning_level }) : null,
      rows([
        [F.householdsAtRisk, count(p.households)],
        [F.peopleAtRisk, count(p.people)],
      ]),
      el("a", { class: "fp-details", href: config.urls.hazardPage.replace(/CODE$/,
        encodeURIComponent(p.code)) }, F.hazardCharts),
    ];
  },
  roads(p) {
    const blocked = p.open === false;
    return [
      title(label(p.road_class), p.code, T.layers.roads),
      rows([
        [F.traffic, badge(blocked ? T.values.blocked : T.values.passable,
          blocked ? colour("closed") : colour("open"), { "data-open": String(!blocked) })],
        blocked && p.closed_reason ? [F.reason, p.closed_reason] : null,
        p.structure && p.structure !== "none" ? [F.structure, label(p.structure)] : null,
        [F.length, count(p.length_m)],
        [F.speed, count(p.speed_kmh)],
      ]),
    ];
  },
  rivers(p) {
    return [title(p.name, p.code, T.layers.rivers)];
  },
  sensors(p) {
    const flag = sensorFlag(p);
    const value = p.last_value === null || p.last_value === undefined ? dash
      : `${number.format(p.last_value)} ${p.unit || ""}`;
    return [
      title(p.name, p.code, T.layers.sensors),
      el("p", { class: "fp-sub" }, TS.kinds[p.kind] || text(p.kind)),
      rows([
        [TS.lastValue, el("span", null, value, " ", badge(TS.flags[flag] || flag,
          FLAG_COLOURS[flag], { "data-flag": flag })), { "data-field": "value" }],
        [TS.lastReading, p.last_ts ? when.format(new Date(p.last_ts)) : dash,
          { "data-field": "time" }],
        ...(p.kind === "rain_gauge" ? gaugeRows(p) : []),
      ]),
      el("figure", { class: "fp-spark", "data-state": "loading" },
        el("figcaption", null, TS.last6h), el("div", { class: "fp-spark-plot" })),
      el("a", { class: "fp-details", href: config.urls.sensorPage.replace(/CODE$/,
        encodeURIComponent(p.code)) }, TS.details),
    ];
  },
};

// --- rain gauges: rainstorm signal and the rolling sums --------------------------------------

function gaugeRows(p) {
  const signal = signals.get(p.code);
  return [
    [TS.signal, signal ? badge(levelLabel(signal), colourOf(signal.level),
      { "data-level": signal.level }) : TS.noSignal, { "data-field": "signal" }],
    [TS.sum1h, "…", { "data-field": "sum-1h" }],
    [TS.sum3h, "…", { "data-field": "sum-3h" }],
  ];
}

// A window's rain, or "no data": a silent gauge is unknown, never 0 mm (DESIGN §5).
function sumText(window) {
  if (!window || window.mm === null || window.mm === undefined) return TS.noData;
  const mm = `${number.format(window.mm)} mm`;
  if (typeof window.complete !== "number" || window.complete >= 0.995) return mm;
  return `${mm} (${TS.complete.replace("P", percent.format(window.complete))})`;
}

async function fillSums(code) {
  const url = config.urls.sensorSums.replace(/CODE(?=\/sums$)/, encodeURIComponent(code));
  let data = null;
  try {
    data = await getJson(url, { timeout: 10000 });
  } catch {
    data = null;
  }
  const box = document.querySelector(`.fp-sensors[data-code="${CSS.escape(code)}"]`);
  if (!box) return;
  const windows = (data && data.windows) || {};
  for (const name of ["1h", "3h"]) {
    const cell = box.querySelector(`[data-field="sum-${name}"] dd`);
    if (cell) cell.textContent = data ? sumText(windows[name]) : dash;
  }
}

function setSignals(alerts) {
  const next = new Map(alerts.filter((a) => a.kind === "rainstorm")
    .map((a) => [a.subject.code, a]));
  const touched = new Set([...signals.keys(), ...next.keys()]);
  const before = signals;
  signals = next;
  for (const code of touched) {
    const was = before.get(code);
    const now = next.get(code);
    if ((was && was.level) === (now && now.level)) continue;
    const layer = overlays.sensors.byCode.get(code);
    if (!layer) continue;
    restyle("sensors", layer);
    if (popupFor && popupFor.name === "sensors" && popupFor.code === code) {
      popup.setContent(popupContent("sensors", layer.feature));
      popupFilled("sensors", layer.feature);
    }
  }
}

// --- monitoring stations: flag, sparkline, live readings ------------------------------------

const TS = T.sensors;
const when = new Intl.DateTimeFormat(lang, { month: "numeric", day: "numeric", hour: "2-digit",
  minute: "2-digit", hourCycle: "h23" });
const SPARK_HOURS = 6;
const SPARK_FRESH_MS = 60000;
// The last sparkline fetched: {code, items, at}; live readings are appended to it.
let spark = null;

// The flag a station shows: a silent station is missing whatever its last reading said.
function sensorFlag(p) {
  if (p.status === "missing" || !p.last_flag) return "missing";
  return p.last_flag;
}

function drawSpark(code, p) {
  const box = document.querySelector(`.fp-sensors[data-code="${CSS.escape(code)}"] .fp-spark`);
  if (!box || !spark || spark.code !== code) return;
  // A gateway's clock may run a little ahead of this one: never cut its newest report off.
  const until = Math.max(Date.now(), ...spark.items.map((r) => Date.parse(r.ts) || 0));
  const plot = sparkline(spark.items, { since: until - SPARK_HOURS * 3600 * 1000, until,
    kind: p.kind, width: 260, height: 54, title: `${TS.last6h} · ${shownName(p) || code}` });
  box.querySelector(".fp-spark-plot").replaceChildren(plot);
  box.dataset.state = spark.items.length ? "ready" : "empty";
  if (!spark.items.length) box.querySelector(".fp-spark-plot").append(
    el("p", { class: "fp-spark-empty" }, TS.noReadings));
}

async function fillSpark(code, p) {
  if (spark && spark.code === code && Date.now() - spark.at < SPARK_FRESH_MS) {
    drawSpark(code, p);
    return;
  }
  const since = new Date(Date.now() - SPARK_HOURS * 3600 * 1000).toISOString();
  const url = `${config.urls.sensorReadings.replace(/CODE(?=\/readings$)/,
    encodeURIComponent(code))}?since=${encodeURIComponent(since)}`;
  try {
    const data = await getJson(url);
    spark = { code, items: data.items || [], at: Date.now() };
    drawSpark(code, p);
  } catch {
    const box = document.querySelector(`.fp-sensors[data-code="${CSS.escape(code)}"] .fp-spark`);
    if (box) box.dataset.state = "error";
  }
}

// After a popup's content was (re)built: a station's sparkline goes into it.
function popupFilled(name, feature) {
  if (name !== "sensors") return;
  const p = feature.properties || {};
  fillSpark(codeOf(feature), p);
  if (p.kind === "rain_gauge") fillSums(codeOf(feature));
}

function refreshSensor(code, change) {
  const layer = overlays.sensors.byCode.get(code);
  if (!layer) return;
  Object.assign(layer.feature.properties, change);
  restyle("sensors", layer);
  if (popupFor && popupFor.name === "sensors" && popupFor.code === code) {
    popup.setContent(popupContent("sensors", layer.feature));
    popupFilled("sensors", layer.feature);
  }
}

// `reading`: {sensor, ts, value, flag}, throttled per sensor by the hub.
function onReading(message) {
  if (!message || typeof message.sensor !== "string") return;
  const code = message.sensor;
  if (spark && spark.code === code && !spark.items.some((r) => r.ts === message.ts)) {
    spark.items.push({ ts: message.ts, value: message.value, flag: message.flag, qc: [] });
  }
  const layer = overlays.sensors.byCode.get(code);
  if (layer && (layer.feature.properties.last_ts || "") > message.ts) return; // an older one
  refreshSensor(code, { last_value: message.value, last_ts: message.ts,
    last_flag: message.flag || "good", status: "reporting" });
  mapEl.dataset.lastReading = `${code}:${message.ts}`;
}

// `sensor_status`: {sensor, status, flag} (reporting / missing) or {sensor, retired, flag}.
function onSensorStatus(message) {
  if (!message || typeof message.sensor !== "string") return;
  if (message.retired) {
    remove(overlays.sensors, message.sensor);
    showCounts();
    return;
  }
  const change = {};
  if (message.status) change.status = message.status;
  if (message.flag && message.flag !== "missing") change.last_flag = message.flag;
  refreshSensor(message.sensor, change);
}

function popupContent(name, feature) {
  return el("div", { class: `fp fp-${name}`, "data-layer": name,
    "data-code": codeOf(feature) }, POPUPS[name](feature.properties || {}));
}

// --- the map -------------------------------------------------------------------------------

const touch = Boolean(L.Browser.touch || L.Browser.mobile);
const canvas = L.canvas({ padding: 0.4, tolerance: touch ? 7 : 2 });
const map = L.map(mapEl, {
  preferCanvas: true,
  renderer: canvas,
  zoomControl: false,
  attributionControl: Boolean(config.tileUrl),
  zoomSnap: 0.25,
  zoomDelta: 0.5,
  wheelPxPerZoomLevel: 100,
  minZoom: 4,
  maxZoom: 18,
});
map.createPane("points").style.zIndex = 660; // above the canvas (400) and names (650)
const svg = L.svg({ pane: "points", padding: 0.4 });
// Invisible touch targets under the shelters and stations: a 12 px station dot is too small for
// a finger on a tablet, so each point gets a circle of at least HIT_RADIUS px (40 px across, as
// WCAG 2.5.5 and the platform guidelines ask) that opens the same popup. It lies below the
// visible circles, so a tap on a circle itself still lands on that circle.
const HIT_RADIUS = 20;
map.createPane("hits").style.zIndex = 655;
const hitRenderer = L.svg({ pane: "hits", padding: 0.4 });

L.control.zoom({ position: "topleft", zoomInTitle: T.controls.zoomIn,
  zoomOutTitle: T.controls.zoomOut }).addTo(map);
L.control.scale({ position: "bottomright", imperial: false, maxWidth: 140 }).addTo(map);
if (config.tileUrl) {
  map.attributionControl.setPrefix(false);
}

const popup = L.popup({ maxWidth: 340, minWidth: 230, autoPanPaddingTopLeft: [60, 70],
  autoPanPaddingBottomRight: [60, 40], className: "feature-popup" });
let popupFor = null; // { name, code } of the feature whose popup is open

map.on("popupclose", (e) => {
  if (e.popup === popup) popupFor = null;
});

// --- overlays: loading by view, keyed by feature code -------------------------------------

const overlays = {};
for (const name of ORDER) {
  overlays[name] = {
    name,
    group: L.featureGroup(),
    byCode: new Map(), // code -> Leaflet layer (layer.feature is the GeoJSON Feature)
    minZoom: name === "roads" ? ROAD_MIN_ZOOM : 0,
    loaded: null, // LatLngBounds that the current contents cover completely
    request: null, // AbortController of the fetch in flight
    requested: null, // the bounds it asks for
    running: null, // its promise
    pending: null, // live events received while a fetch was in flight, replayed after it
    failed: false,
    retry: null,
  };
}

const codeOf = (feature) => String(feature.id ?? (feature.properties || {}).code);

function makeLayer(name, feature) {
  const props = feature.properties || {};
  let layer;
  if (feature.geometry.type === "Point") {
    const [lon, lat] = feature.geometry.coordinates;
    layer = L.circleMarker([lat, lon], { ...STYLES[name](props), renderer: svg, pane: "points",
      bubblingMouseEvents: false });
    const hit = hitArea(name, layer, [lat, lon]);
    layer.on("add", () => {
      tagElement(name, layer);
      hit.addTo(map);
    });
    layer.on("remove", () => hit.remove());
  } else {
    layer = L.GeoJSON.geometryToLayer(feature, { ...STYLES[name](props) });
  }
  layer.feature = feature;
  return layer;
}

// The larger invisible circle that takes taps around a point (see HIT_RADIUS); its clicks are
// the point's own, so the overlay's click handler opens the point's popup.
function hitArea(name, layer, latlng) {
  const hit = L.circleMarker(latlng, { radius: HIT_RADIUS, renderer: hitRenderer, pane: "hits",
    stroke: false, fill: true, fillColor: "#000", fillOpacity: 0, bubblingMouseEvents: false });
  hit.on("click", (e) => {
    L.DomEvent.stop(e);
    layer.fire("click", { latlng: layer.getLatLng(), originalEvent: e.originalEvent }, true);
  });
  hit.on("add", () => {
    const node = hit.getElement();
    // Not data-code: that names the visible circle alone (people and tests look it up by it).
    node.dataset.hitFor = name;
    node.dataset.hitCode = codeOf(layer.feature);
    node.setAttribute("aria-hidden", "true");
  });
  return hit;
}

// SVG circles carry their code and state, so people (and tests) can find them in the page.
function tagElement(name, layer) {
  const node = layer.getElement && layer.getElement();
  if (!node) return;
  const p = layer.feature.properties || {};
  node.dataset.layer = name;
  node.dataset.code = codeOf(layer.feature);
  if (p.status) node.dataset.status = p.status;
  let state = p.status ? label(p.status) : null;
  if (name === "sensors") {
    node.dataset.flag = sensorFlag(p);
    state = TS.flags[sensorFlag(p)];
    const signal = signals.get(p.code);
    if (signal) {
      node.dataset.signal = signal.level;
      state = `${levelLabel(signal)} · ${state}`;
    } else {
      delete node.dataset.signal;
    }
  }
  const accessible = [shownName(p), state].filter(Boolean).join(" · ");
  if (accessible) node.setAttribute("aria-label", accessible);
}

function restyle(name, layer) {
  const props = layer.feature.properties || {};
  layer.setStyle(STYLES[name](props));
  if (layer.setRadius) layer.setRadius(STYLES[name](props).radius);
  tagElement(name, layer);
  if (name === "villages") labelVillage(layer);
}

function sameGeometry(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Add or replace one feature; returns its layer.
function upsert(overlay, feature) {
  const code = codeOf(feature);
  const old = overlay.byCode.get(code);
  if (old && sameGeometry(old.feature.geometry, feature.geometry)) {
    old.feature = feature;
    restyle(overlay.name, old);
    return old;
  }
  const layer = makeLayer(overlay.name, feature);
  if (old) overlay.group.removeLayer(old);
  overlay.group.addLayer(layer);
  overlay.byCode.set(code, layer);
  if (overlay.name === "villages" && map.hasLayer(overlay.group)) labelVillage(layer);
  return layer;
}

function remove(overlay, code) {
  const layer = overlay.byCode.get(code);
  if (!layer) return;
  overlay.group.removeLayer(layer);
  overlay.byCode.delete(code);
  if (popupFor && popupFor.name === overlay.name && popupFor.code === code) map.closePopup(popup);
}

function clear(overlay) {
  overlay.group.clearLayers();
  overlay.byCode.clear();
  if (popupFor && popupFor.name === overlay.name) map.closePopup(popup);
}

// Keep the canvas layers in their order (a later load or live insert draws on top otherwise).
function restack() {
  for (const name of [...CANVAS].reverse()) {
    if (map.hasLayer(overlays[name].group)) overlays[name].group.bringToBack();
  }
}

function showCounts() {
  let total = 0;
  for (const name of ORDER) {
    const n = overlays[name].byCode.size;
    mapEl.dataset[camel(`count-${name}`)] = String(n);
    total += n;
  }
  mapEl.dataset.featuresLoaded = String(total);
  // The loaded villages under a warning ("code:level", sorted): what the canvas shows in colour.
  mapEl.dataset.warned = [...overlays.villages.byCode.values()]
    .map((layer) => layer.feature.properties || {})
    .filter((p) => p.warning_level && p.warning_level !== "none")
    .map((p) => `${p.code}:${p.warning_level}`).sort().join(",");
}

function bboxParam(bounds) {
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const west = clamp(bounds.getWest(), -180, 180);
  const east = clamp(bounds.getEast(), -180, 180);
  const south = clamp(bounds.getSouth(), -90, 90);
  const north = clamp(bounds.getNorth(), -90, 90);
  return [west, south, east, north].map((v) => v.toFixed(5)).join(",");
}

function layerUrl(name) {
  return config.urls.layers.replace(/LAYER$/, name);
}

let busy = 0;

// Load an overlay for the current view unless what is loaded covers it already.
async function load(overlay, force = false) {
  if (!map.hasLayer(overlay.group)) return;
  window.clearTimeout(overlay.retry);
  if (map.getZoom() < overlay.minZoom) {
    if (overlay.request) overlay.request.abort();
    clear(overlay);
    overlay.loaded = null;
    overlay.failed = false;
    showCounts();
    showStatus();
    return;
  }
  const view = map.getBounds();
  if (!force && overlay.loaded && overlay.loaded.contains(view)) return;
  // A load under way for an area that covers the view will do.
  if (!force && overlay.request && overlay.requested.contains(view)) return overlay.running;
  const wanted = view.pad(0.5);
  if (overlay.request) overlay.request.abort();
  const request = new AbortController();
  overlay.request = request;
  overlay.requested = wanted;
  overlay.pending = [];
  busy += 1;
  showStatus();
  const running = fetchInto(overlay, request, wanted);
  overlay.running = running;
  return running;
}

async function fetchInto(overlay, request, wanted) {
  try {
    const url = `${layerUrl(overlay.name)}?bbox=${bboxParam(wanted)}`;
    const data = await getJson(url, { signal: request.signal });
    if (request.signal.aborted) return replacement(overlay, request);
    const seen = new Set();
    for (const feature of data.features || []) {
      seen.add(codeOf(feature));
      upsert(overlay, feature);
    }
    for (const code of [...overlay.byCode.keys()]) {
      if (!seen.has(code)) remove(overlay, code);
    }
    for (const message of overlay.pending) apply(overlay, message);
    overlay.loaded = data.truncated ? null : wanted;
    overlay.failed = false;
    if (CANVAS.includes(overlay.name)) restack();
    showCounts();
  } catch (error) {
    if (request.signal.aborted) return replacement(overlay, request);
    overlay.failed = true;
    overlay.retry = window.setTimeout(() => load(overlay, true), RETRY_MS);
  } finally {
    if (overlay.request === request) {
      overlay.request = null;
      overlay.requested = null;
      overlay.running = null;
      overlay.pending = null;
    }
    busy -= 1;
    showStatus();
  }
}

// A load cut short by a newer one: whoever waited for it waits for the newer one.
function replacement(overlay, request) {
  return overlay.request && overlay.request !== request ? overlay.running : undefined;
}

function loadAll(force = false) {
  return Promise.all(ORDER.map((name) => load(overlays[name], force)));
}

let moveTimer = null;
map.on("moveend", () => {
  showView();
  window.clearTimeout(moveTimer);
  moveTimer = window.setTimeout(() => loadAll(), RELOAD_DELAY_MS);
});
map.on("zoomend", () => {
  labelVillages();
  const scale = scaleFor(map.getZoom());
  if (scale === symbolScale) return;
  symbolScale = scale;
  for (const name of ["villages", "rivers", "shelters", "sensors"]) {
    for (const layer of overlays[name].byCode.values()) restyle(name, layer);
  }
});

function showView() {
  const b = map.getBounds();
  mapEl.dataset.view = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
    .map((v) => v.toFixed(6)).join(",");
  mapEl.dataset.zoom = String(map.getZoom());
}

// --- village names -------------------------------------------------------------------------

let labelsShown = false;

function labelVillage(layer) {
  const name = shownName(layer.feature.properties || {});
  if (!name || !map.hasLayer(layer)) return;
  const permanent = labelsShown;
  const bound = layer.getTooltip();
  // Leaflet puts a string tooltip in with innerHTML: the name goes in as a text node instead.
  if (bound && bound.options.permanent === permanent
      && (!permanent || bound.options.className.includes("riverside") === Boolean(
        (layer.feature.properties || {}).riverside))) {
    if (bound.getContent().textContent !== name) {
      layer.setTooltipContent(el("span", { class: "village-name" }, name));
    }
    return;
  }
  layer.unbindTooltip();
  const riverside = (layer.feature.properties || {}).riverside ? " riverside-name" : "";
  layer.bindTooltip(el("span", { class: "village-name" }, name), permanent
    ? { permanent: true, direction: "center", className: `village-label${riverside}`,
      interactive: false }
    : { sticky: true, direction: "top", offset: [0, -8], className: "village-hover" });
}

function labelVillages(force = false) {
  const shown = map.getZoom() >= LABEL_MIN_ZOOM;
  if (shown === labelsShown && !force) return;
  labelsShown = shown;
  if (!map.hasLayer(overlays.villages.group)) return;
  for (const layer of overlays.villages.byCode.values()) labelVillage(layer);
}

// --- clicks and popups ---------------------------------------------------------------------

function openPopup(name, layer, latlng) {
  popupFor = { name, code: codeOf(layer.feature) };
  const at = layer.getLatLng ? layer.getLatLng() : latlng;
  // On a circle, the popup's tip touches its top edge rather than hiding it.
  popup.options.offset = L.point(0, layer.getRadius ? 5 - layer.getRadius() : 7);
  popup.setLatLng(at).setContent(popupContent(name, layer.feature)).openOn(map);
  popupFilled(name, layer.feature);
}

for (const name of ORDER) {
  const overlay = overlays[name];
  overlay.group.on("click", (e) => {
    L.DomEvent.stop(e);
    openPopup(name, e.layer, e.latlng);
  });
  if (name === "villages" || name === "hazards") {
    overlay.group.on("mouseover", (e) => e.layer.setStyle({ weight: 3.5, opacity: 1 }));
    overlay.group.on("mouseout", (e) => restyle(name, e.layer));
  }
}

// --- live updates --------------------------------------------------------------------------

const reloadTimers = {};

function reloadSoon(overlay) {
  overlay.loaded = null; // a hidden layer reloads when shown again
  window.clearTimeout(reloadTimers[overlay.name]);
  reloadTimers[overlay.name] = window.setTimeout(() => load(overlay, true), 500);
}

function intersectsLoaded(overlay, feature) {
  if (!overlay.loaded || !feature.geometry) return false;
  const probe = L.geoJSON(feature);
  return overlay.loaded.intersects(probe.getBounds());
}

// Apply one `layer` event: {layer, action: create|update|delete|import, code, feature?}.
function apply(overlay, message) {
  const code = String(message.code ?? "");
  if (message.action === "import") {
    reloadSoon(overlay);
    return null;
  }
  if (message.action === "delete") {
    remove(overlay, code);
    return null;
  }
  const feature = message.feature;
  if (!feature || !feature.geometry) return null;
  if (!overlay.byCode.has(codeOf(feature)) && !intersectsLoaded(overlay, feature)) return null;
  const layer = upsert(overlay, feature);
  if (CANVAS.includes(overlay.name)) restack();
  if (popupFor && popupFor.name === overlay.name && popupFor.code === codeOf(feature)) {
    popup.setContent(popupContent(overlay.name, layer.feature));
    popupFilled(overlay.name, layer.feature);
    if (layer.getLatLng) popup.setLatLng(layer.getLatLng());
  }
  return layer;
}

function flash(name, layer) {
  const node = layer.getElement && layer.getElement();
  if (node && !CANVAS.includes(name)) {
    node.classList.remove("flash");
    void node.getBoundingClientRect(); // restart the animation
    node.classList.add("flash");
    return;
  }
  if (!layer.setStyle) return;
  const base = STYLES[name](layer.feature.properties || {});
  layer.setStyle({ weight: (base.weight || 1) + 4, opacity: 1 });
  window.setTimeout(() => {
    if (overlays[name].byCode.get(codeOf(layer.feature)) === layer) restyle(name, layer);
  }, 1600);
}

function onLayerEvent(message) {
  const overlay = message && overlays[message.layer];
  if (!overlay) return;
  if (overlay.pending) overlay.pending.push(message);
  const layer = apply(overlay, message);
  showCounts();
  mapEl.dataset.lastChange = `${message.layer}:${message.code ?? ""}:${message.action}`;
  if (layer && map.hasLayer(overlay.group)) {
    flash(overlay.name, layer);
    const p = layer.feature.properties || {};
    toast(`${T.status.updated} ${T.layers[overlay.name]} ${shownName(p) || label(p.road_class) || ""} ${
      codeOf(layer.feature)}`);
  }
}

async function connectLive() {
  if (!document.getElementById("live")) return; // no live channel on this page (base.html)
  const { socket, onLive } = await import("../live.js");
  liveSocket = socket;
  for (const [event, handler] of liveWaiting.splice(0)) socket.on(event, handler);
  socket.on("layer", onLayerEvent);
  socket.on("alert", (message) => panel.take(message));
  socket.on("reading", onReading);
  socket.on("sensor_status", onSensorStatus);
  socket.on("plan", (message) => plan.take(message));
  let wasOnline = false;
  let connectedBefore = false;
  onLive((live) => {
    // Back after a drop: the server replays recent events, but reload to be sure nothing is stale.
    if (live.online && !wasOnline && connectedBefore && started) {
      loadAll(true);
      panel.load();
      plan.load();
      for (const callback of reconnected) callback();
    }
    if (live.online) connectedBefore = true;
    wasOnline = live.online;
  });
}

// --- controls: layer switcher, legend, status, whole-township button ------------------------

function swatch(kind, options = {}) {
  const node = el("span", { class: `sw sw-${kind}`, "aria-hidden": "true" });
  for (const [k, v] of Object.entries(options)) node.style.setProperty(`--${k}`, v);
  return node;
}

// Leaflet's layer switcher takes its names as HTML: ours are this page's own words, escaped by
// building them as text first.
function overlayName(name) {
  return el("span", { class: "lc-name" }, T.layers[name]).outerHTML;
}

const legendSections = {};
// A 10-inch tablet in either orientation (1280x800, 800x1280) and anything smaller.
const SMALL_SCREEN = "(max-width: 1100px), (max-height: 820px)";
const LEGEND_KEY = "rescuehub.map.legend";

function recall(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // storage disabled: the default applies
  }
}

function remember(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // storage disabled or full: the choice lasts until the page is left
  }
}

function legendSection(layerName, heading, items, extra) {
  const section = el("section", { class: "lg-section", "data-layer": layerName },
    el("h3", null, heading),
    el("ul", { class: "lg-items" }, items.map(([sw, words, attrs]) =>
      el("li", attrs || null, sw, el("span", null, words)))),
    extra || null);
  (legendSections[layerName] ||= []).push(section);
  return section;
}

function buildLegend() {
  const ramp = el("ol", { class: "lg-ramp", "data-field": "population" },
    POPULATION_FILLS.map((fill, i) => {
      const lo = i === 0 ? null : POPULATION_BREAKS[i - 1];
      const hi = POPULATION_BREAKS[i];
      const words = lo === null ? `<${number.format(hi)}` : `${number.format(lo)}+`;
      return el("li", null, swatch("fill", { fill, line: VILLAGE_LINE }), el("span", null, words));
    }));
  const populationSection = el("section", { class: "lg-section", "data-layer": "villages" },
    el("h3", null, T.legend.population), ramp);
  (legendSections.villages ||= []).push(populationSection);

  const prepare = warningStyle("prepare");
  const evacuate = warningStyle("evacuate");
  const sections = [
    populationSection,
    legendSection("villages", T.legend.warning, [
      [swatch("fill", { fill: prepare.fill, line: prepare.line }), T.legend.prepare],
      [swatch("fill", { fill: evacuate.fill, line: evacuate.line }), T.legend.evacuate],
      [swatch("fill", { fill: POPULATION_FILLS[1], line: RIVERSIDE_LINE }),
        el("span", { class: "riverside-name" }, T.legend.riverside)],
    ]),
    legendSection("shelters", T.layers.shelters,
      SHELTER_STATES.map((s) => [swatch("dot", { fill: colour(s) }), label(s)]),
      el("p", { class: "lg-note" }, T.legend.shelterSize)),
    legendSection("roads", T.layers.roads, [
      ...ROAD_CLASSES.map((c) => [swatch("line", { line: colour(c),
        weight: `${Math.round(ROAD_WEIGHT[c])}px` }), label(c)]),
      [swatch("line", { line: colour("closed"), weight: "4px", style: "dashed" }),
        T.legend.roadClosed],
    ]),
    legendSection("hazards", T.layers.hazards, HAZARD_KINDS.map((k) => [
      swatch("hatch", { line: colour(k), angle: `${-(HATCH_ANGLE[k] ?? 45)}deg` }),
      label(k)])),
    legendSection("rivers", T.layers.rivers,
      [[swatch("line", { line: RIVER, weight: "3px" }), T.legend.river]]),
    legendSection("sensors", T.layers.sensors, ["good", "suspect", "fail", "missing"].map((f) =>
      [swatch("dot", { fill: f === "good" ? SENSOR : FLAG_COLOURS[f] }), TS.flags[f]])),
    legendSection("sensors", T.legend.signals, RAINSTORM_LEVELS.map((level) =>
      [swatch("dot", { fill: colourOf(level) }),
        levelLabel({ kind: "rainstorm", level })])),
  ];

  for (const extra of added.values()) sections.push(...extra.sections);
  const body = el("div", { class: "lg-body", id: "map-legend-body" }, sections);
  legendBody = body;
  const toggle = el("button", { type: "button", class: "lg-toggle", "aria-expanded": "true",
    "aria-controls": "map-legend-body", title: T.legend.hide }, T.legend.title);
  const box = el("div", { class: "map-legend leaflet-bar", id: "map-legend",
    role: "region", "aria-label": T.legend.title }, toggle, body);
  const setOpen = (open) => {
    box.classList.toggle("collapsed", !open);
    box.dataset.open = String(open);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.title = open ? T.legend.hide : T.legend.show;
  };
  toggle.addEventListener("click", () => {
    const open = box.classList.contains("collapsed");
    setOpen(open);
    remember(LEGEND_KEY, open ? "open" : "closed");
  });
  // Open where there is room; on a tablet (either way round) the map comes first. A person's
  // own choice is kept for the next visit on this device.
  const chosen = recall(LEGEND_KEY);
  setOpen(chosen ? chosen === "open" : !window.matchMedia(SMALL_SCREEN).matches);

  const control = L.control({ position: "bottomleft" });
  control.onAdd = () => {
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return box;
  };
  control.addTo(map);
  syncLegend();
}

function syncLegend() {
  for (const [name, sections] of Object.entries(legendSections)) {
    const group = overlays[name] ? overlays[name].group : (added.get(name) || {}).group;
    const shown = Boolean(group) && map.hasLayer(group);
    for (const section of sections) section.hidden = !shown;
  }
}

// Status: loading, "zoom in for roads", failures, and a short note when something changes live.
const statusBox = el("div", { class: "map-status", role: "status", "aria-live": "polite" });
let toastText = "";
let toastTimer = null;

function toast(words) {
  toastText = words;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => {
    toastText = "";
    showStatus();
  }, 6000);
  showStatus();
}

let emptyNotice = false;

function showStatus() {
  const lines = [];
  if (emptyNotice) lines.push(["info", T.status.noTownship]);
  if (busy > 0) lines.push(["busy", T.status.loading]);
  const roads = overlays.roads;
  if (map.hasLayer(roads.group) && map.getZoom() < roads.minZoom) {
    lines.push(["hint", T.status.zoomForRoads]);
  }
  const failed = ORDER.filter((n) => overlays[n].failed && map.hasLayer(overlays[n].group));
  if (failed.length) {
    lines.push(["error", `${T.status.failed} ${failed.map((n) => T.layers[n]).join("、")}`]);
  }
  if (toastText) lines.push(["live", toastText]);
  statusBox.replaceChildren(...lines.map(([kind, words]) =>
    el("p", { class: `st st-${kind}` }, words)));
  statusBox.hidden = lines.length === 0;
}

let homeBounds = null;
let started = false;

function fitHome(animate = false) {
  if (!homeBounds) return;
  map.fitBounds(homeBounds, { paddingTopLeft: [56, 16], paddingBottomRight: [16, 16], animate });
}

function buildControls(townships) {
  const top = L.control({ position: "topleft" });
  const fit = el("button", { type: "button", class: "map-button", title: T.controls.fitTitle },
    T.controls.fit);
  fit.addEventListener("click", () => fitHome(true));
  const box = el("div", { class: "map-tools" }, fit);
  if (townships.length > 1) {
    const select = el("select", { class: "map-select", "aria-label": T.controls.township },
      townships.map((t, i) => el("option", { value: String(i) }, `${shownName(t)} ${t.code}`)));
    select.addEventListener("change", () => {
      homeBounds = townshipBounds(townships[Number(select.value)]);
      fitHome(true);
    });
    box.append(select);
  }
  top.onAdd = () => {
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  if (homeBounds) top.addTo(map);
  const status = L.control({ position: "topleft" });
  status.onAdd = () => statusBox;
  status.addTo(map);

  // Folded to its button where the screen is narrow (a tablet held upright): open, it would
  // cover the close button of the popups below it.
  const collapsed = window.matchMedia("(max-width: 1100px)").matches;
  const switcher = L.control.layers(null, null, { position: "topright", collapsed });
  if (config.tileUrl) {
    // The attribution is HTML from the hub's own settings (map.tile_attribution), as Leaflet
    // expects, never from data.
    const base = L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 18 });
    base.addTo(map);
    switcher.addOverlay(base, overlayName("base"));
  }
  plan.group.addTo(map);
  switcher.addOverlay(plan.group, overlayName("plan"));
  layerSwitcher = switcher;
  for (const extra of added.values()) showAdded(extra);
  for (const name of [...ORDER].reverse()) {
    overlays[name].group.addTo(map);
    switcher.addOverlay(overlays[name].group, overlayName(name));
  }
  switcher.addTo(map);
  switcher.getContainer().classList.add("map-layers");
}

map.on("overlayadd overlayremove", (e) => {
  if (!started) return; // start() loads what is shown
  syncLegend();
  const name = ORDER.find((n) => overlays[n].group === e.layer);
  if (name && e.type === "overlayremove" && popupFor && popupFor.name === name) {
    map.closePopup(popup);
  }
  if (name && e.type === "overlayadd") {
    load(overlays[name]).then(() => {
      if (CANVAS.includes(name)) restack();
      if (name === "villages") labelVillages(true);
    });
  }
  showStatus();
});

function townshipBounds(t) {
  const [minx, miny, maxx, maxy] = t.bounds;
  return L.latLngBounds([miny, minx], [maxy, maxx]);
}

// --- layers of other packages (config.extensions) -------------------------------------------

const added = new Map(); // name -> {group, label, sections}
let layerSwitcher = null; // once the controls are built
let legendBody = null; // once the legend is built
let liveSocket = null;
const liveWaiting = []; // [event, handler] asked for before the live channel was up
const reconnected = []; // called when the live channel is back after a drop

function showAdded(extra) {
  extra.group.addTo(map);
  layerSwitcher.addOverlay(extra.group, el("span", { class: "lc-name" }, extra.label).outerHTML);
}

// What an extension's `attach(api)` gets: the map, its words (the package's vocabulary),
// and ways to add its layer (to the switcher, with legend entries that follow it), to listen to
// live events, and to hear of a reconnection (to reload what it shows).
function extensionApi(ext) {
  return {
    L,
    map,
    lang,
    english,
    words: ext.words || {},
    toast,
    /** Adds `group` as the layer `label` (shown at first), with legend `entries`:
     * [[{kind: "dot" | "line" | "fill", fill, line, opacity}, words], …] and an optional note. */
    addLayer({ group, label, entries = [], note = null }) {
      const section = legendSection(ext.name, label, entries.map(([look, words]) => [
        swatch(look.kind || "dot", Object.fromEntries(Object.entries(look)
          .filter(([k]) => k !== "kind").map(([k, v]) => [k, String(v)]))), words]),
      note ? el("p", { class: "lg-note" }, note) : null);
      const extra = { group, label, sections: [section] };
      added.set(ext.name, extra);
      if (layerSwitcher) showAdded(extra);
      if (legendBody) {
        legendBody.append(section);
        syncLegend();
      }
    },
    /** Calls handler(payload) for each live `event` (once the live channel is up). */
    on(event, handler) {
      if (liveSocket) liveSocket.on(event, handler);
      else liveWaiting.push([event, handler]);
    },
    onReconnect(callback) {
      reconnected.push(callback);
    },
  };
}

function loadExtensions() {
  for (const ext of config.extensions || []) {
    import(ext.script)
      .then((module) => module.attach(extensionApi(ext)))
      .catch((error) => {
        console.error(`map layer ${ext.name}:`, error); // the rest of the map works without it
      });
  }
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  mapEl.dataset.state = "loading";
  showStatus();
  const [legendData, townshipData] = await Promise.all([
    getJson(config.urls.legend).catch(() => ({})),
    getJson(config.urls.townships).catch(() => ({ items: [] })),
  ]);
  legend = legendData || {};
  const townships = (townshipData && townshipData.items) || [];
  if (townships.length) {
    homeBounds = townshipBounds(townships[0]);
  } else {
    // Villages entered without a township: show where they are.
    const all = await getJson(layerUrl("villages")).catch(() => null);
    if (all && all.features && all.features.length) homeBounds = L.geoJSON(all).getBounds();
  }
  buildControls(townships);
  buildLegend();
  if (homeBounds) {
    fitHome(false);
  } else {
    emptyNotice = true;
    map.setView([33.1, 108.9], 7);
  }
  symbolScale = scaleFor(map.getZoom());
  // Never hide the roads of the home township at its own fitted zoom.
  overlays.roads.minZoom = Math.min(ROAD_MIN_ZOOM, Math.floor(map.getZoom()));
  showView();
  labelVillages(true);
  started = true;
  await loadAll(true);
  labelVillages(true);
  mapEl.dataset.state = emptyNotice ? "empty" : "ready";
  showStatus();
}

// --- the alert panel ------------------------------------------------------------------------

vocabulary();

function lightUp(alert) {
  const codes = {
    villages: alert ? alert.villages || [] : [],
    hazards: alert && alert.subject.type === "hazard" ? [alert.subject.code] : [],
    sensors: alert && alert.subject.type === "gauge" ? [alert.subject.code] : [],
  };
  if (alert && alert.subject.type === "village" && !codes.villages.includes(alert.subject.code)) {
    codes.villages.push(alert.subject.code);
  }
  const bounds = L.latLngBounds([]);
  for (const name of ["villages", "hazards", "sensors"]) {
    const was = highlight[name];
    highlight[name] = new Set(codes[name]);
    for (const code of new Set([...was, ...codes[name]])) {
      const layer = overlays[name].byCode.get(code);
      if (!layer) continue;
      restyle(name, layer);
      if (highlight[name].has(code)) {
        if (layer.bringToFront) layer.bringToFront();
        bounds.extend(layer.getBounds ? layer.getBounds() : layer.getLatLng());
      }
    }
  }
  mapEl.dataset.highlight = codes.villages.join(",");
  return bounds;
}

let selectedId = null;

const panel = new AlertPanel(document.getElementById("alert-panel"), {
  words: T.alerts,
  urls: config.urls,
  role: config.role,
  lang,
  onSelect(alert) {
    const bounds = lightUp(alert);
    const id = alert ? alert.id : null;
    // Fly to the alert's places when it is chosen, not on every update of it.
    if (alert && id !== selectedId && bounds.isValid()) {
      map.fitBounds(bounds, { maxZoom: 14, padding: [60, 60], animate: true });
    }
    selectedId = id;
  },
  onAlerts(alerts) {
    setSignals(alerts);
  },
  onFold() {
    map.invalidateSize({ pan: false });
  },
});
panel.load();

// --- the evacuation plan (./plan_layer.js): a layer of the switcher and its panel -------------

const plan = new PlanLayer(map, {
  words: JSON.parse(document.getElementById("plan-vocabulary").textContent),
  urls: config.urls,
  lang,
  english,
});
plan.load();

connectLive().catch(() => {
  // The map works without the live channel; the indicator in the top bar shows it is down.
});
loadExtensions();
start();
