// The sensor registry page (telemetry/templates/sensors.html).
//
// Reads GET /api/v1/sensors?retired=1 once and filters in the page (a township has tens of
// sensors); villages and hazard zones come from their list APIs for names and the form's choices.
// Commanders and dispatchers register (POST), edit (PATCH), retire (DELETE, after a confirmation),
// reactivate (PATCH retired=false) and import a CSV/GeoJSON file (POST …/import, which answers 422
// with every refused row). Live: `reading` events update a row's last value at once and
// `sensor_status` events (and a reading, for its QC flag) re-read that one sensor, on the shared
// /live socket (dispatch/static/live.js).
//
// Above the list, the gateways (GET /api/v1/gateways): online state as stored, so an offline
// gateway still shows after a reload, last seen, battery. The list has a search (code or name),
// sortable columns and a "problems only" filter (missing, suspect or failed, gateway offline).
//
// #sensors keeps data-state (loading | ready | failed) and each row data-code, data-flag,
// data-retired and data-problem, for people and tests; #gateways each row data-gateway and
// data-online.

import { request, Unreachable } from "../api.js";
import { el } from "../dom.js";
import { onLive, socket } from "../live.js";

const config = JSON.parse(document.getElementById("sensors-config").textContent);
const T = config.labels;
const KINDS = config.kinds;
const lang = document.documentElement.lang || "zh-CN";
const numberFormat = new Intl.NumberFormat(lang, { maximumFractionDigits: 3 });
const timeFormat = new Intl.DateTimeFormat(lang, {
  month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
const FLAGS = ["good", "suspect", "fail", "missing"];
const RETRY_MS = 10000;
const REFRESH_DELAY_MS = 400;

const table = document.getElementById("sensors");
const tbody = table.querySelector("tbody");
const countEl = document.getElementById("sensor-count");
const emptyEl = document.getElementById("sensors-empty");
const statusEl = document.getElementById("page-status");
const filters = {
  search: document.getElementById("filter-search"),
  kind: document.getElementById("filter-kind"),
  gateway: document.getElementById("filter-gateway"),
  problems: document.getElementById("filter-problems"),
  retired: document.getElementById("filter-retired"),
};
const gatewayBody = document.querySelector("#gateways tbody");
const ENGLISH = !lang.toLowerCase().startsWith("zh");

const sensors = new Map(); // code -> sensor as the API describes it
const places = { villages: new Map(), hazards: new Map() }; // code -> name
// gateway code -> {online, reason}: from the sensors' and the gateways' JSON, then live events.
const gatewayState = new Map();
const gateways = new Map(); // code -> gateway as GET /api/v1/gateways describes it
const sort = { key: "code", direction: 1 };

// "Sensor CODE saved." with CODE (COUNT, SHOWN, TOTAL, FIELD) filled in, in one pass.
const fill = (text, values) => text.replace(/\b(CODE|COUNT|SHOWN|TOTAL|FIELD)\b/g,
  (key) => (key in values ? String(values[key]) : key));
const urlFor = (template, code) => template.replace("CODE", encodeURIComponent(code));

// --- talking to the hub --------------------------------------------------------------------

/** {ok, status, body} from the hub; a network failure throws an Error saying so in words. */
async function api(method, url, body) {
  try {
    return await request(method, url, { body });
  } catch (error) {
    throw error instanceof Unreachable ? new Error(T.unreachable) : error;
  }
}

function showStatus(text, kind = "info") {
  statusEl.hidden = !text;
  statusEl.className = `alert alert-${kind}`;
  statusEl.textContent = text || "";
}

// --- the table -----------------------------------------------------------------------------

// A silent sensor is missing whatever its last reading's flag was (as on the map).
function flagOf(sensor) {
  if (sensor.status && sensor.status !== "reporting") return "missing";
  return FLAGS.includes(sensor.last_flag) ? sensor.last_flag : "missing";
}

function placeCell(sensor) {
  const parts = [];
  if (sensor.village) parts.push(places.villages.get(sensor.village) || sensor.village);
  if (sensor.hazard) parts.push(places.hazards.get(sensor.hazard) || sensor.hazard);
  return parts.length ? parts.join(" / ") : "—";
}

function valueCell(sensor) {
  if (sensor.last_value === null || sensor.last_value === undefined) {
    return el("td", { class: "num muted" }, T.never);
  }
  const when = sensor.last_ts ? new Date(sensor.last_ts) : null;
  return el("td", { class: "num" },
    el("span", { class: "value" }, `${numberFormat.format(sensor.last_value)} ${sensor.unit}`),
    when ? el("time", { class: "when", datetime: sensor.last_ts }, timeFormat.format(when))
      : null);
}

function actionsCell(sensor) {
  const cell = el("td", { class: "row-actions" });
  cell.append(el("button", { type: "button", class: "btn btn-small", "data-action": "edit",
    "aria-label": `${T.edit} ${sensor.code}` }, T.edit));
  if (sensor.retired) {
    cell.append(el("button", { type: "button", class: "btn btn-small",
      "data-action": "reactivate", "aria-label": `${T.reactivate} ${sensor.code}` },
    T.reactivate));
  } else {
    cell.append(el("button", { type: "button", class: "btn btn-small btn-danger-quiet",
      "data-action": "retire", "aria-label": `${T.retire} ${sensor.code}` }, T.retire));
  }
  return cell;
}

function gatewayOffline(code) {
  const known = gatewayState.get(code);
  return Boolean(known) && known.online === false;
}

/** Whether a sensor needs a look: missing, suspect or failed, or its gateway offline. */
function problem(sensor) {
  if (sensor.retired) return false;
  return flagOf(sensor) !== "good" || sensor.status === "missing" || gatewayOffline(sensor.gateway);
}

function kindLabel(sensor) {
  return (KINDS[sensor.kind] && KINDS[sensor.kind].label) || sensor.kind;
}

function row(sensor) {
  const flag = flagOf(sensor);
  const gateway = el("td", {}, sensor.gateway || "—");
  if (gatewayOffline(sensor.gateway)) {
    gateway.append(el("span", { class: "gw-offline" }, T.gatewayOffline));
  }
  const tr = el("tr", { "data-code": sensor.code, "data-flag": flag,
    "data-retired": String(Boolean(sensor.retired)), "data-problem": String(problem(sensor)) },
  el("th", { scope: "row" }, el("a", { href: urlFor(config.urls.detail, sensor.code) },
    sensor.code)),
  el("td", {}, sensor.name || "", el("span", { class: "sub" }, kindLabel(sensor))),
  el("td", { class: "col-kind" }, kindLabel(sensor)),
  el("td", { class: "col-unit" }, sensor.unit),
  gateway,
  el("td", {}, placeCell(sensor)),
  valueCell(sensor),
  el("td", {}, el("span", { class: "flag", "data-flag": flag, title: T.flagHints[flag] },
    T.flags[flag])),
  el("td", { class: "col-state" }, el("span", { class: "state",
    "data-retired": String(Boolean(sensor.retired)) }, sensor.retired ? T.retired : T.active)));
  if (config.canEdit) tr.append(actionsCell(sensor));
  return tr;
}

function visible(sensor) {
  if (sensor.retired && !filters.retired.checked) return false;
  if (filters.kind.value && sensor.kind !== filters.kind.value) return false;
  if (filters.gateway.value && sensor.gateway !== filters.gateway.value) return false;
  if (filters.problems.checked && !problem(sensor)) return false;
  const words = filters.search.value.trim().toLocaleLowerCase();
  if (words && !`${sensor.code} ${sensor.name || ""}`.toLocaleLowerCase().includes(words)) {
    return false;
  }
  return true;
}

// --- sorting -------------------------------------------------------------------------------

const SEVERITY = { fail: 0, missing: 1, suspect: 2, good: 3 };
const collator = new Intl.Collator(lang, { numeric: true, sensitivity: "base" });

function sortValue(sensor, key) {
  switch (key) {
    case "kind": return kindLabel(sensor);
    case "place": return placeCell(sensor);
    case "value": return sensor.last_value;
    case "quality": return SEVERITY[flagOf(sensor)];
    case "state": return sensor.retired ? 1 : 0;
    case "gateway": return `${gatewayOffline(sensor.gateway) ? 0 : 1} ${sensor.gateway || ""}`;
    default: return sensor[key] ?? "";
  }
}

function compare(a, b) {
  const x = sortValue(a, sort.key);
  const y = sortValue(b, sort.key);
  // Sensors with no value yet go last, whichever the direction.
  if ((x === null || x === undefined) !== (y === null || y === undefined)) {
    return x === null || x === undefined ? 1 : -1;
  }
  let order = typeof x === "number" && typeof y === "number" ? x - y
    : collator.compare(String(x ?? ""), String(y ?? ""));
  if (order === 0) order = collator.compare(a.code, b.code);
  return order * sort.direction;
}

function showSort() {
  for (const th of table.querySelectorAll("th[data-sort-key]")) {
    const on = th.dataset.sortKey === sort.key;
    th.setAttribute("aria-sort", on ? (sort.direction > 0 ? "ascending" : "descending") : "none");
  }
}

table.querySelector("thead").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-sort]");
  if (!button) return;
  const key = button.dataset.sort;
  sort.direction = sort.key === key ? -sort.direction : 1;
  sort.key = key;
  showSort();
  render();
});

function fillGatewayFilter() {
  const chosen = filters.gateway.value;
  const codes = [...new Set([...sensors.values()].map((s) => s.gateway).filter(Boolean))].sort();
  if (chosen && !codes.includes(chosen)) codes.push(chosen);
  filters.gateway.replaceChildren(filters.gateway.options[0],
    ...codes.map((code) => el("option", { value: code }, code)));
  filters.gateway.value = chosen;
}

function render() {
  fillGatewayFilter();
  const all = [...sensors.values()];
  const shown = all.filter(visible).sort(compare);
  tbody.replaceChildren(...shown.map(row));
  countEl.textContent = fill(T.count, { SHOWN: shown.length, TOTAL: all.length });
  emptyEl.hidden = shown.length > 0;
  if (!all.length) emptyEl.textContent = config.canEdit ? T.empty : T.emptyViewer;
  else if (filters.problems.checked && !filters.search.value.trim()) {
    emptyEl.textContent = T.noProblems;
  } else emptyEl.textContent = T.noMatch;
}

function replaceRow(sensor, flash) {
  const old = tbody.querySelector(`tr[data-code="${CSS.escape(sensor.code)}"]`);
  if (!old || !visible(sensor)) {
    render();
    return;
  }
  const fresh = row(sensor);
  if (flash) fresh.classList.add("flash");
  old.replaceWith(fresh);
}

let retryTimer = null;

async function loadSensors() {
  window.clearTimeout(retryTimer);
  try {
    const answer = await api("GET", `${config.urls.sensors}?retired=1`);
    if (!answer.ok) throw new Error(answer.body.message || T.loadFailed);
    sensors.clear();
    for (const sensor of answer.body.items || []) remember(sensor);
    table.dataset.state = "ready";
    if (statusEl.dataset.loadFailed) {
      delete statusEl.dataset.loadFailed;
      showStatus("");
    }
    render();
  } catch {
    table.dataset.state = "failed";
    statusEl.dataset.loadFailed = "1";
    showStatus(T.loadFailed, "error");
    retryTimer = window.setTimeout(loadSensors, RETRY_MS);
  }
}

/** Keep a sensor, and what it says of its gateway's state (as stored: right after a reload). */
function remember(sensor) {
  sensors.set(sensor.code, sensor);
  if (sensor.gateway && typeof sensor.gateway_online === "boolean") {
    gatewayState.set(sensor.gateway, { online: sensor.gateway_online,
      reason: sensor.gateway_offline_reason });
  }
}

// --- the gateways --------------------------------------------------------------------------

function gatewayRow(gateway) {
  const known = gatewayState.get(gateway.code);
  const online = known ? known.online : gateway.online;
  let state = online ? "online" : (known && known.reason) || gateway.offline_reason || "reported";
  if (online === null || online === undefined) state = "unknown";
  if (gateway.active === false) state = "inactive";
  const seen = gateway.last_seen_at ? new Date(gateway.last_seen_at) : null;
  return el("tr", { "data-gateway": gateway.code, "data-online": String(online === true),
    "data-state": state },
  el("th", { scope: "row" }, gateway.code, gateway.name && gateway.name !== gateway.code
    ? el("span", { class: "sub" }, gateway.name) : null),
  el("td", {}, el("span", { class: "gw-state", "data-state": state },
    T.gatewayState[state] || state)),
  el("td", {}, seen ? el("time", { datetime: gateway.last_seen_at }, timeFormat.format(seen))
    : "—"),
  el("td", { class: "num" }, typeof gateway.battery_v === "number"
    ? `${numberFormat.format(gateway.battery_v)} V` : "—"),
  el("td", { class: "num" }, fill(T.sensorCount, { COUNT: gateway.sensors ?? 0 })));
}

function renderGateways() {
  const rows = [...gateways.values()].sort((a, b) => collator.compare(a.code, b.code))
    .map(gatewayRow);
  gatewayBody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5,
    class: "muted" }, T.gatewaysEmpty))]));
}

let gatewayTimer = null;

const GATEWAYS_EVERY_MS = 60000; // last seen and battery move without events: re-read them
const GATEWAY_DELAY_MS = 1000;

// A reading is news of its gateway too (ingest marks it online and seen): re-read the gateways
// soon, at most once a second.
function refreshGatewaysSoon() {
  window.clearTimeout(gatewayTimer);
  gatewayTimer = window.setTimeout(loadGateways, GATEWAY_DELAY_MS);
}

async function loadGateways() {
  window.clearTimeout(gatewayTimer);
  const box = document.getElementById("gateways");
  try {
    const answer = await api("GET", config.urls.gateways);
    if (!answer.ok) throw new Error(answer.body.message || T.gatewaysFailed);
    gateways.clear();
    for (const gateway of answer.body.items || []) {
      gateways.set(gateway.code, gateway);
      gatewayState.set(gateway.code, { online: gateway.online, reason: gateway.offline_reason });
    }
    box.dataset.state = "ready";
    renderGateways();
    render();
    gatewayTimer = window.setTimeout(loadGateways, GATEWAYS_EVERY_MS);
  } catch {
    box.dataset.state = "failed";
    gatewayBody.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" },
      T.gatewaysFailed)));
    gatewayTimer = window.setTimeout(loadGateways, RETRY_MS);
  }
}

async function loadPlaces() {
  for (const [name, url] of [["villages", config.urls.villages], ["hazards", config.urls.hazards]]) {
    try {
      const answer = await api("GET", url);
      if (!answer.ok) continue;
      places[name].clear();
      for (const item of answer.body.items || []) {
        // English pages show the pinyin where the record has one.
        places[name].set(item.code, (ENGLISH && item.name_pinyin) || item.name || item.code);
      }
    } catch {
      // Names are a convenience: the table shows codes without them.
    }
  }
  fillPlaceChoices();
  render();
}

// --- live updates --------------------------------------------------------------------------

const pending = new Set();
let refreshTimer = null;

function refreshSoon(code) {
  pending.add(code);
  if (refreshTimer) return;
  refreshTimer = window.setTimeout(async () => {
    refreshTimer = null;
    const codes = [...pending];
    pending.clear();
    for (const c of codes) {
      try {
        const answer = await api("GET", urlFor(config.urls.sensor, c));
        if (answer.status === 404) {
          sensors.delete(c);
          render();
        } else if (answer.ok) {
          remember(answer.body);
          replaceRow(answer.body, false);
        }
      } catch {
        // Offline: the reload on reconnect catches up.
      }
    }
  }, REFRESH_DELAY_MS);
}

function onReading(event) {
  const sensor = event && sensors.get(event.sensor);
  if (!sensor || typeof event.value !== "number") return;
  if (sensor.last_ts && event.ts && new Date(event.ts) < new Date(sensor.last_ts)) return;
  sensor.last_value = event.value;
  sensor.last_ts = event.ts || sensor.last_ts;
  if (FLAGS.includes(event.flag)) sensor.last_flag = event.flag;
  replaceRow(sensor, true);
  refreshSoon(sensor.code); // the reading's QC flag
  const known = gatewayState.get(sensor.gateway);
  if (!known || known.online !== true) refreshGatewaysSoon();
}

function onSensorStatus(event) {
  if (!event) return;
  if (event.sensor) {
    refreshSoon(event.sensor);
  } else if (event.gateway && typeof event.online === "boolean") {
    gatewayState.set(event.gateway, { online: event.online, reason: event.reason || null });
    const known = gateways.get(event.gateway);
    if (known && event.online) known.last_seen_at = event.since || new Date().toISOString();
    if (!known) loadGateways();
    renderGateways();
    render();
  }
}

socket.on("reading", onReading);
socket.on("sensor_status", onSensorStatus);
let wasOnline = null;
onLive((live) => {
  // Back after a drop: read the list again (events missed meanwhile are replayed too).
  if (live.online && wasOnline === false) {
    loadSensors();
    loadGateways();
  }
  wasOnline = live.online;
});

for (const input of Object.values(filters)) input.addEventListener("change", render);
filters.search.addEventListener("input", render);
document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());

// --- register and edit ---------------------------------------------------------------------

const FIELD_INPUTS = {
  code: "s-code", name: "s-name", kind: "s-kind", unit: "s-unit", gateway: "s-gateway",
  lon: "s-lon", lat: "s-lat", village: "s-village", hazard: "s-hazard", range: "s-range-min",
  range_min: "s-range-min", range_max: "s-range-max", interval_s: "s-interval",
};

function fillPlaceChoices() {
  for (const [name, id] of [["villages", "s-village"], ["hazards", "s-hazard"]]) {
    const select = document.getElementById(id);
    if (!select) continue;
    const chosen = select.value;
    const entries = [...places[name].entries()].sort((a, b) => a[0].localeCompare(b[0]));
    select.replaceChildren(el("option", { value: "" }, T.none),
      ...entries.map(([code, label]) => el("option", { value: code }, `${label} (${code})`)));
    select.value = chosen;
  }
}

/** The API's "lon: must be …" without the field's API name (the form names it by its label). */
function withoutField(message, field) {
  const prefix = T.fieldProblem.split("PROBLEM")[0].replace("FIELD", field);
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

function setupEditing() {
  const dialog = document.getElementById("sensor-dialog");
  const form = document.getElementById("sensor-form");
  const errorBox = document.getElementById("sensor-form-error");
  const input = (name) => document.getElementById(FIELD_INPUTS[name]);
  let editing = null; // the sensor being edited, or null when registering
  let confirmed = null; // the body the office confirmed outside the township

  function fillUnits() {
    const kind = KINDS[input("kind").value];
    input("unit").replaceChildren(...kind.units.map((u) => el("option", { value: u }, u)));
    input("range_min").placeholder = numberFormat.format(kind.range[0]);
    input("range_max").placeholder = numberFormat.format(kind.range[1]);
  }

  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    document.getElementById("sensor-submit").textContent = editing ? T.save : T.register;
    delete form.dataset.confirm;
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showError(message, field) {
    const target = field && input(field);
    const label = field && T.fields[field === "range_min" || field === "range_max" ? "range" : field];
    errorBox.textContent = label ? `${fill(T.fieldError, { FIELD: label })} ${
      withoutField(message, field)}` : message;
    errorBox.hidden = false;
    if (target) {
      target.setAttribute("aria-invalid", "true");
      target.focus();
    }
  }

  function open(sensor) {
    editing = sensor;
    confirmed = null;
    form.reset();
    clearErrors();
    const title = document.getElementById("sensor-dialog-title");
    title.textContent = sensor ? fill(T.editTitle, { CODE: sensor.code }) : T.registerTitle;
    document.getElementById("sensor-submit").textContent = sensor ? T.save : T.register;
    for (const name of ["code", "kind", "unit", "gateway"]) input(name).disabled = Boolean(sensor);
    if (sensor) {
      input("code").value = sensor.code;
      input("kind").value = sensor.kind;
      fillUnits();
      input("unit").value = sensor.unit;
      if (![...input("gateway").options].some((o) => o.value === sensor.gateway)) {
        input("gateway").append(el("option", { value: sensor.gateway }, sensor.gateway));
      }
      input("gateway").value = sensor.gateway;
      input("name").value = sensor.name || "";
      input("lon").value = sensor.lon;
      input("lat").value = sensor.lat;
      input("village").value = sensor.village || "";
      input("hazard").value = sensor.hazard || "";
      input("range_min").value = sensor.range[0];
      input("range_max").value = sensor.range[1];
      input("interval_s").value = sensor.interval_s;
    } else {
      fillUnits();
    }
    dialog.showModal();
    (sensor ? input("name") : input("code")).focus();
  }

  // The API body from the form, or null after showing what to fix.
  function body() {
    const value = (name) => input(name).value.trim();
    for (const name of (editing ? ["lon", "lat"] : ["code", "lon", "lat", "gateway"])) {
      if (!value(name)) {
        showError(T.required, name);
        return null;
      }
    }
    const low = value("range_min");
    const high = value("range_max");
    if (Boolean(low) !== Boolean(high)) {
      showError(T.rangeBoth, low ? "range_max" : "range_min");
      return null;
    }
    const data = {
      lon: Number(value("lon")),
      lat: Number(value("lat")),
      village: value("village") || null,
      hazard: value("hazard") || null,
    };
    if (value("name")) data.name = value("name");
    if (low) data.range = [Number(low), Number(high)];
    if (value("interval_s")) data.interval_s = Number(value("interval_s"));
    if (!editing) {
      Object.assign(data, { code: value("code"), kind: value("kind"), unit: value("unit"),
        gateway: value("gateway") });
    }
    return data;
  }

  input("kind").addEventListener("change", fillUnits);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const asking = form.dataset.confirm === "outside";
    clearErrors();
    const data = body();
    if (!data) return;
    // A location outside the township is sent again with the office's confirmation, once the
    // office has seen the distance and pressed the button that now says so.
    const same = confirmed && JSON.stringify(confirmed) === JSON.stringify(data);
    if (asking && same) data.confirm_outside = true;
    const submit = document.getElementById("sensor-submit");
    submit.disabled = true;
    try {
      const answer = editing
        ? await api("PATCH", urlFor(config.urls.sensor, editing.code), data)
        : await api("POST", config.urls.sensors, data);
      if (!answer.ok) {
        showError(answer.body.message || T.unreachable, answer.body.field);
        if (answer.body.error === "outside_township") {
          confirmed = { ...data };
          delete confirmed.confirm_outside;
          form.dataset.confirm = "outside";
          submit.textContent = editing ? T.confirmOutsideSave : T.confirmOutside;
        }
        return;
      }
      remember(answer.body);
      render();
      dialog.close();
      showStatus(fill(editing ? T.saved : T.registered, { CODE: answer.body.code }), "ok");
    } catch (error) {
      showError(error.message);
    } finally {
      submit.disabled = false;
    }
  });
  document.getElementById("register-open").addEventListener("click", () => open(null));
  return open;
}

function setupRetiring() {
  const dialog = document.getElementById("retire-dialog");
  const errorBox = document.getElementById("retire-error");
  let target = null;

  function open(sensor) {
    target = sensor;
    errorBox.hidden = true;
    document.getElementById("retire-title").textContent = fill(T.retireTitle, { CODE: sensor.code });
    dialog.showModal();
    dialog.querySelector("[data-close]").focus(); // the safe choice first
  }

  document.getElementById("retire-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const confirm = document.getElementById("retire-confirm");
    confirm.disabled = true;
    try {
      const answer = await api("DELETE", urlFor(config.urls.sensor, target.code));
      if (!answer.ok) throw new Error(answer.body.message || T.unreachable);
      sensors.set(answer.body.code, answer.body);
      render();
      dialog.close();
      showStatus(fill(T.retiredDone, { CODE: target.code }), "ok");
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    } finally {
      confirm.disabled = false;
    }
  });
  return open;
}

async function reactivate(sensor) {
  try {
    const answer = await api("PATCH", urlFor(config.urls.sensor, sensor.code), { retired: false });
    if (!answer.ok) throw new Error(answer.body.message || T.unreachable);
    sensors.set(answer.body.code, answer.body);
    render();
    showStatus(fill(T.reactivated, { CODE: sensor.code }), "ok");
  } catch (error) {
    showStatus(error.message, "error");
  }
}

// --- import --------------------------------------------------------------------------------

function setupImport() {
  const dialog = document.getElementById("import-dialog");
  const form = document.getElementById("import-form");
  const fileInput = document.getElementById("import-file");
  const result = document.getElementById("import-result");
  const errorsWrap = document.getElementById("import-errors-wrap");
  const errorRows = document.querySelector("#import-errors tbody");

  function say(text, kind) {
    result.className = `alert alert-${kind}`;
    result.textContent = text;
    result.hidden = !text;
  }

  function open() {
    form.reset();
    say("", "info");
    errorsWrap.hidden = true;
    errorRows.replaceChildren();
    dialog.showModal();
    fileInput.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorsWrap.hidden = true;
    errorRows.replaceChildren();
    const file = fileInput.files[0];
    if (!file) {
      say(T.chooseFile, "error");
      fileInput.focus();
      return;
    }
    const submit = document.getElementById("import-submit");
    submit.disabled = true;
    say(T.busy, "info");
    const data = new FormData();
    data.append("file", file, file.name);
    try {
      const answer = await api("POST", config.urls.import, data);
      if (answer.ok) {
        say(fill(T.imported, { COUNT: answer.body.created }), "ok");
        fileInput.value = "";
        await loadSensors();
      } else if (answer.status === 422 && Array.isArray(answer.body.rows)) {
        say(fill(T.rowsRefused, { COUNT: answer.body.rows.length }), "error");
        errorRows.replaceChildren(...answer.body.rows.map((r) => el("tr", { "data-line": r.line },
          el("td", { class: "num" }, String(r.line)), el("td", {}, r.code || "—"),
          el("td", {}, r.reason))));
        errorsWrap.hidden = false;
      } else {
        say(answer.body.message || T.unreachable, "error");
      }
    } catch (error) {
      say(error.message, "error");
    } finally {
      submit.disabled = false;
    }
  });
  document.getElementById("import-open").addEventListener("click", open);
}

// --- start ---------------------------------------------------------------------------------

if (config.canEdit) {
  const openForm = setupEditing();
  const openRetire = setupRetiring();
  setupImport();
  for (const dialog of document.querySelectorAll("dialog")) {
    for (const button of dialog.querySelectorAll("[data-close]")) {
      button.addEventListener("click", () => dialog.close());
    }
  }
  tbody.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const sensor = sensors.get(button.closest("tr").dataset.code);
    if (!sensor) return;
    if (button.dataset.action === "edit") openForm(sensor);
    else if (button.dataset.action === "retire") openRetire(sensor);
    else if (button.dataset.action === "reactivate") reactivate(sensor);
  });
}
showSort();
loadSensors();
loadPlaces();
loadGateways();
