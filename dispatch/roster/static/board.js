// The team board (dispatch/roster/templates/roster/board.html): who is on shift now (the current
// shift's crew, GET /api/v1/rota, after leave and swaps) or the whole team, with duty status,
// last fix and its age, battery and phone (GET /api/v1/members and the members layer).
// Live: a `position` event updates its members' rows at once (and flashes them); the ages tick
// every second; `roster` events (shift change, leave, swaps) reload the board.
// #board keeps data-state (loading | ready | error), data-count and data-updates (positions
// taken live) for people and tests; each row data-code, data-status and data-age.

import { getJson } from "../api.js";
import { el } from "../dom.js";
import {
  W, ageClass, ageText, clock, config, fill, live, memberUrl, problem, statusBadge, when,
} from "./common.js";

const T = JSON.parse(document.getElementById("board-words").textContent);
const table = document.getElementById("board");
const body = table.querySelector("tbody");
const heading = document.getElementById("board-shift");
const counts = document.getElementById("board-counts");
const empty = document.getElementById("board-empty");
const LOW_BATTERY = 20; // % (a phone below this may not last the shift)
const RETRY_MS = 10000;

let show = "shift";
let shift = null; // the current shift: {start, end, squad, members}
const members = new Map(); // code -> the API's member
const fixes = new Map(); // code -> {ts, battery_pct, accuracy_m, source}
let skewMs = 0; // the hub's clock minus this device's (from the layer's age_s)
let retry = null;

const ageOf = (fix) => (fix ? (Date.now() + skewMs - Date.parse(fix.ts)) / 1000 : null);

function shown() {
  if (show === "shift") return shift ? shift.members.map((m) => m.code) : [];
  return [...members.keys()].sort();
}

function batteryCell(fix) {
  if (!fix || typeof fix.battery_pct !== "number") return el("td", { class: "num" }, "—");
  const low = fix.battery_pct < LOW_BATTERY;
  return el("td", { class: "num battery", "data-low": low ? "true" : null,
    title: low ? T.low : null }, `${Math.round(fix.battery_pct)} %`);
}

function row(code) {
  const m = members.get(code) || { code, name: code, status: "", phone: "" };
  const fix = fixes.get(code);
  const age = ageOf(fix);
  return el("tr", { "data-code": code, "data-status": m.status, "data-age": ageClass(age) },
    el("th", { scope: "row" }, el("a", { href: memberUrl(code), class: "member-link" },
      el("span", { class: "member-name" }, m.name), el("span", { class: "member-code" }, code))),
    el("td", null, m.squad || "—"),
    el("td", { "data-field": "status" }, statusBadge(m.status)),
    el("td", { "data-field": "fix" }, fix ? [el("time", { datetime: fix.ts, title: when(fix.ts) },
      clock(fix.ts)), el("span", { class: "fix-source" }, [T.sources[fix.source] || fix.source,
      typeof fix.accuracy_m === "number" ? fill(T.accuracy, { m: Math.round(fix.accuracy_m) })
        : null].filter(Boolean).join(" · "))] : "—"),
    el("td", { "data-field": "age", "data-age": ageClass(age) }, ageText(age)),
    batteryCell(fix),
    el("td", null, m.phone ? el("a", { href: `tel:${m.phone}`, class: "tel" }, m.phone) : "—"));
}

function showCounts(codes) {
  const by = new Map();
  for (const c of codes) {
    const s = (members.get(c) || {}).status || "";
    by.set(s, (by.get(s) || 0) + 1);
  }
  counts.replaceChildren(...W.statusOrder.filter((s) => by.get(s)).map((s) =>
    el("li", { "data-status": s }, statusBadge(s), el("b", null, String(by.get(s))))));
}

function render() {
  const codes = shown();
  body.replaceChildren(...codes.map(row));
  table.dataset.count = String(codes.length);
  empty.hidden = codes.length > 0;
  showCounts(codes);
  if (show === "all") {
    heading.textContent = fill(T.everyone, { n: members.size });
  } else if (shift) {
    heading.textContent = `${fill(T.shift, { squad: shift.squad || "—", start: when(shift.start),
      end: when(shift.end) })} · ${fill(T.onShift, { n: codes.length })}`;
  } else {
    heading.textContent = T.noShift;
  }
}

// Every second: each row's age in words and its staleness.
function tick() {
  for (const tr of body.rows) {
    const age = ageOf(fixes.get(tr.dataset.code));
    const cell = tr.querySelector('[data-field="age"]');
    const words = ageText(age);
    if (cell.textContent !== words) cell.textContent = words;
    tr.dataset.age = ageClass(age);
    cell.dataset.age = tr.dataset.age;
  }
}

async function load() {
  window.clearTimeout(retry);
  const now = new Date();
  const soon = new Date(now.getTime() + 60000);
  try {
    const [rota, everyone, layer] = await Promise.all([
      getJson(`${config.urls.rota}?from=${encodeURIComponent(now.toISOString())}&to=${
        encodeURIComponent(soon.toISOString())}`),
      getJson(config.urls.members),
      getJson(config.urls.layer),
    ]);
    shift = (rota.shifts || []).find((s) => Date.parse(s.start) <= now.getTime()
      && now.getTime() < Date.parse(s.end)) || null;
    members.clear();
    for (const m of everyone.items || []) members.set(m.code, m);
    fixes.clear();
    for (const f of layer.features || []) {
      const p = f.properties || {};
      fixes.set(p.code, { ts: p.ts, battery_pct: p.battery_pct, accuracy_m: p.accuracy_m,
        source: p.source });
      skewMs = Date.parse(p.ts) + p.age_s * 1000 - Date.now();
    }
    render();
    table.dataset.state = "ready";
    problem(null);
  } catch (error) {
    table.dataset.state = "error";
    problem(`${W.failed} ${error.message}`);
    retry = window.setTimeout(load, RETRY_MS);
  }
}

// A `position` event: {positions: [{member, name, status, lon, lat, ts, accuracy_m, speed_mps,
// battery_pct, source}, ...]} (dispatch/positions/live.py). Only a newer fix moves a row (the hub
// sends only those, but events can cross).
function takeFix(p) {
  if (!p || typeof p.member !== "string") return;
  const known = fixes.get(p.member);
  if (known && Date.parse(known.ts) > Date.parse(p.ts)) return;
  fixes.set(p.member, p);
  const m = members.get(p.member);
  if (m && p.status) m.status = p.status;
  table.dataset.updates = String(Number(table.dataset.updates || 0) + 1);
  const old = body.querySelector(`tr[data-code="${CSS.escape(p.member)}"]`);
  if (!old) return;
  const fresh = row(p.member);
  fresh.classList.add("flash");
  old.replaceWith(fresh);
}

function onPosition(message) {
  const list = message && Array.isArray(message.positions) ? message.positions : [];
  for (const p of list) takeFix(p);
  if (list.length) showCounts(shown());
}

for (const button of document.querySelectorAll(".segmented [data-show]")) {
  button.addEventListener("click", () => {
    show = button.dataset.show;
    for (const b of document.querySelectorAll(".segmented [data-show]")) {
      b.setAttribute("aria-pressed", String(b === button));
    }
    render();
  });
}

load();
window.setInterval(tick, 1000);
let reloading = null;
live().then((channel) => {
  if (!channel) return;
  channel.socket.on("position", onPosition);
  channel.socket.on("roster", () => {
    window.clearTimeout(reloading);
    reloading = window.setTimeout(load, 300);
  });
  let wasOnline = false;
  let connectedBefore = false;
  channel.onLive((state) => {
    // Back after a drop: fetch again what may have been missed.
    if (state.online && !wasOnline && connectedBefore) load();
    if (state.online) connectedBefore = true;
    wasOnline = state.online;
  });
});
