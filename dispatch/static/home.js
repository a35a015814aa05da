// Office home, the situation page: the situation card (./situation.js: active warnings, villages
// to move, rainstorm signals, silent sensors and gateways), the system status panel (GET /readyz
// every 15 s), the live channel card, the sensor gateways (GET /api/v1/gateways, kept current by
// `sensor_status` events that carry {gateway, online, reason}) and the clock.
//
// The status panel says "all systems ready" only when the hub is ready, no warning is active
// and nothing is silent: a storm never leaves this page looking like a dry day.
import { getJson, request } from "./api.js";
import { el } from "./dom.js";
import { liveState, onLive, socket } from "./live.js";
import { Situation } from "./situation.js";

const lang = document.documentElement.lang || "zh-CN";
const panel = document.getElementById("system-status");
const channel = document.getElementById("live-channel");
const badge = document.getElementById("live");

const timeFormat = new Intl.DateTimeFormat(lang, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

function setPill(item, state, text) {
  const pill = item.querySelector(".pill");
  pill.dataset.state = state;
  pill.textContent = text;
}

// --- system status -------------------------------------------------------------------------

const labels = panel ? panel.dataset : {};
const checkLabel = { up: labels.labelUp, down: labels.labelDown, unknown: labels.labelUnknown };
let checkTimer = null;
let checking = false;

let readiness = null; // "ready" | "not-ready" | "unreachable" from the last check
let picture = { loaded: false, alerts: 0, silent: 0 }; // from the situation card

function showOverall() {
  const overall = panel.querySelector(".overall");
  let state = readiness || "unknown";
  let text = { "not-ready": labels.labelNotReady, unreachable: labels.labelUnreachable }[state]
    || labels.labelChecking;
  if (readiness === "ready") {
    if (!picture.loaded) {
      state = "unknown";
    } else if (picture.alerts > 0) {
      state = "alert";
      text = labels.labelAlerts.replace("N", String(picture.alerts));
    } else if (picture.silent > 0) {
      state = "degraded";
      text = labels.labelSilent;
    } else {
      text = labels.labelReady;
    }
  }
  overall.dataset.overall = state;
  overall.textContent = text;
}

function showChecks(checks) {
  for (const name of ["database", "mqtt"]) {
    const item = panel.querySelector(`[data-check="${name}"]`);
    const value = checks[name] in checkLabel ? checks[name] : "unknown";
    setPill(item, value, checkLabel[value]);
  }
}

async function checkReadiness() {
  if (checking) return;
  checking = true;
  window.clearTimeout(checkTimer);
  try {
    // A 503 carries the same body, with what is down.
    const { body } = await request("GET", panel.dataset.url, { timeout: 10000 });
    if (!body.status) throw new Error("not the hub's answer"); // e.g. a proxy's error page
    showChecks(body.checks || {});
    readiness = body.status === "ready" ? "ready" : "not-ready";
  } catch {
    showChecks({});
    readiness = "unreachable";
  }
  showOverall();
  panel.querySelector(".checked-at").textContent = timeFormat.format(new Date());
  checking = false;
  window.clearTimeout(checkTimer);
  checkTimer = window.setTimeout(checkReadiness, Number(panel.dataset.interval) || 15000);
}

// --- live connection -----------------------------------------------------------------------

function roomLabel(room) {
  const labels = { office: channel.dataset.labelOffice, township: channel.dataset.labelTownship };
  return labels[room] || room;
}

const LIVE_PILL = { online: "up", quiet: "unknown", offline: "down" };

function showLive(live) {
  const shown = liveState(live);
  const key = shown[0].toUpperCase() + shown.slice(1);
  const text = badge.dataset[`label${key}`];
  if (panel) setPill(panel.querySelector('[data-check="live"]'), LIVE_PILL[shown], text);
  if (!channel) return;
  const field = (name) => channel.querySelector(`[data-field="${name}"]`);
  field("state").textContent = text;
  field("state").dataset.state = LIVE_PILL[shown];
  const transports = { websocket: channel.dataset.labelWebsocket, polling: channel.dataset.labelPolling };
  field("transport").textContent = (live.online && transports[live.transport]) || "—";
  field("rooms").textContent = live.online
    ? live.rooms.map(roomLabel).join("、") || channel.dataset.labelNone
    : "—";
  field("since").textContent = live.since ? timeFormat.format(live.since) : "—";
  field("reconnects").textContent = String(live.reconnects);
  field("last-event").textContent = live.lastEventAt ? timeFormat.format(live.lastEventAt) : "—";
}

// --- sensor gateways -----------------------------------------------------------------------

const gatewayBox = document.getElementById("gateways");
const G = gatewayBox ? gatewayBox.dataset : {};
const GATEWAY_REFRESH_MS = 60000; // battery, last seen and quota change without an event
const seenFormat = new Intl.DateTimeFormat(lang, {
  month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
const volts = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const gateways = new Map(); // code -> the API's item, changed by live events
let gatewayTimer = null;

// online / offline (danger) / unknown (grey: never reported, or disabled).
function gatewayState(g) {
  if (g.active === false) return "disabled";
  if (g.online === true) return "online";
  if (g.online === false) return "offline";
  return "unknown";
}

const GATEWAY_PILL = { online: "up", offline: "down", unknown: "unknown", disabled: "unknown" };

function gatewayStateCell(g) {
  const state = gatewayState(g);
  const words = { online: G.labelOnline, offline: G.labelOffline, unknown: G.labelUnknown,
    disabled: G.labelDisabled }[state];
  const reason = state === "offline" && g.offline_reason
    ? ({ reported: G.labelReported, silent: G.labelSilent }[g.offline_reason] || null) : null;
  const quota = g.dead_letters && g.dead_letters.over_quota;
  const dropped = g.dead_letters && g.dead_letters.dropped;
  return el("td", { "data-field": "state" },
    el("span", { class: "pill", "data-state": GATEWAY_PILL[state] }, words),
    reason ? el("span", { class: "gw-reason", "data-field": "reason" }, reason) : null,
    quota ? el("span", { class: "gw-quota", "data-field": "over-quota" }, G.labelOverQuota,
      dropped ? ` · ${G.labelDropped.replace("N", String(dropped))}` : "") : null);
}

function gatewayRow(g) {
  const seen = g.last_seen_at ? new Date(g.last_seen_at) : null;
  const battery = typeof g.battery_v === "number" ? `${volts.format(g.battery_v)} V` : "—";
  return el("tr", { "data-code": g.code, "data-state": gatewayState(g),
    "data-over-quota": g.dead_letters && g.dead_letters.over_quota ? "true" : null },
  el("th", { scope: "row" }, el("span", { class: "gw-code" }, g.code),
    g.name && g.name !== g.code ? el("span", { class: "gw-name" }, g.name) : null),
  gatewayStateCell(g),
  el("td", { "data-field": "last-seen" },
    seen ? el("time", { datetime: seen.toISOString() }, seenFormat.format(seen)) : "—"),
  el("td", { class: "num", "data-field": "battery" }, battery),
  el("td", { class: "num", "data-field": "sensors" }, String(g.sensors ?? "—")));
}

function showGateways() {
  const items = [...gateways.values()];
  const body = gatewayBox.querySelector("tbody");
  body.replaceChildren(...items.map(gatewayRow));
  gatewayBox.querySelector(".table-wrap").hidden = items.length === 0; // no empty headings
  const note = gatewayBox.querySelector(".gw-note");
  note.hidden = items.length > 0;
  note.textContent = items.length ? "" : G.labelNone;
  const online = items.filter((g) => gatewayState(g) === "online").length;
  gatewayBox.querySelector('[data-field="summary"]').textContent = G.labelSummary
    .replace("ONLINE", String(online)).replace("TOTAL", String(items.length));
  gatewayBox.dataset.state = "ready";
  if (situation) situation.gateways(items);
}

async function loadGateways() {
  window.clearTimeout(gatewayTimer);
  try {
    const data = await getJson(G.url, { timeout: 10000 });
    gateways.clear();
    for (const g of data.items || []) gateways.set(g.code, g);
    showGateways();
  } catch {
    gatewayBox.dataset.state = "error";
    const note = gatewayBox.querySelector(".gw-note");
    note.textContent = G.labelFailed;
    note.hidden = false;
  }
  gatewayTimer = window.setTimeout(loadGateways, GATEWAY_REFRESH_MS);
}

// `sensor_status` about a gateway: {gateway, online, reason, since?}; about sensors otherwise.
function onGatewayStatus(message) {
  if (!message || typeof message.gateway !== "string") return;
  const known = gateways.get(message.gateway);
  if (!known) {
    loadGateways(); // a gateway added since the page loaded
    return;
  }
  known.online = typeof message.online === "boolean" ? message.online : null;
  known.offline_reason = known.online === false ? message.reason || null : null;
  if (known.online && message.ts) known.last_seen_at = message.ts;
  showGateways();
}

// --- clock ---------------------------------------------------------------------------------

const clock = document.getElementById("clock");
const clockFormat = new Intl.DateTimeFormat(lang, {
  year: "numeric", month: "long", day: "numeric", weekday: "long",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});

function tick() {
  const now = new Date();
  clock.textContent = clockFormat.format(now);
  clock.dateTime = now.toISOString();
  window.setTimeout(tick, 60000 - (now.getSeconds() * 1000 + now.getMilliseconds()));
}

// --- start ---------------------------------------------------------------------------------

const situationBox = document.getElementById("situation");
const situation = situationBox ? new Situation(situationBox, (summary) => {
  picture = summary;
  if (panel) showOverall();
}) : null;

if (clock) tick();
if (badge) {
  let wasOnline = false;
  onLive((live) => {
    showLive(live);
    // Back online after a drop: check the hub (and the gateways) at once, not at the next tick.
    if (live.online && !wasOnline) {
      if (panel) checkReadiness();
      if (situation && situationBox.dataset.state !== "loading") situation.reload();
      if (gatewayBox && gatewayBox.dataset.state !== "loading") loadGateways();
    }
    wasOnline = live.online;
  });
}
if (situation) situation.start(socket);
if (gatewayBox) {
  socket.on("sensor_status", onGatewayStatus);
  loadGateways();
}
if (panel) {
  checkReadiness();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") checkReadiness();
  });
}
