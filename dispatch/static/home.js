// Office home: the system status panel (GET /readyz every 15 s), the live channel card and the clock.
import { request } from "./api.js";
import { onLive } from "./live.js";

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

function showOverall(state, text) {
  const overall = panel.querySelector(".overall");
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
    if (body.status === "ready") showOverall("ready", labels.labelReady);
    else showOverall("not-ready", labels.labelNotReady);
  } catch {
    showChecks({});
    showOverall("unreachable", labels.labelUnreachable);
  }
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

function showLive(live) {
  const text = live.online ? badge.dataset.labelOnline : badge.dataset.labelOffline;
  if (panel) setPill(panel.querySelector('[data-check="live"]'), live.online ? "up" : "down", text);
  if (!channel) return;
  const field = (name) => channel.querySelector(`[data-field="${name}"]`);
  field("state").textContent = text;
  field("state").dataset.state = live.online ? "up" : "down";
  const transports = { websocket: channel.dataset.labelWebsocket, polling: channel.dataset.labelPolling };
  field("transport").textContent = (live.online && transports[live.transport]) || "—";
  field("rooms").textContent = live.online
    ? live.rooms.map(roomLabel).join("、") || channel.dataset.labelNone
    : "—";
  field("since").textContent = live.since ? timeFormat.format(live.since) : "—";
  field("reconnects").textContent = String(live.reconnects);
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

if (clock) tick();
if (badge) {
  let wasOnline = false;
  onLive((live) => {
    showLive(live);
    // Back online after a drop: check the hub at once rather than at the next tick.
    if (panel && live.online && !wasOnline) checkReadiness();
    wasOnline = live.online;
  });
}
if (panel) {
  checkReadiness();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") checkReadiness();
  });
}
