// One member's page (dispatch/roster/templates/roster/member.html): skills and certificates
// (GET /api/v1/members/<code>, names from the skills catalogue), the coming shifts
// (GET /api/v1/rota for the coming 14 days, the member among each shift's crew or absent), the
// last fix (the members layer) and the track of the last 24 hours (GET /api/v1/positions) on a
// Leaflet map over the villages it crosses; live: the member's `position` events extend it.
// #track-map keeps data-state (loading | ready | empty | error) and data-fixes.

import { getJson } from "../api.js";
import { el } from "../dom.js";
import {
  W, ageText, catalogueOf, clock, config, expiryState, expiryText, fill, live, problem,
  skillName, statusBadge, when,
} from "./common.js";

const L = window.L;
const code = config.code;
const DAY_MS = 86400000;
const SHIFT_DAYS = 14;
const TRACK = "#1d4677";

const skillsTable = document.getElementById("skills");
const shiftList = document.getElementById("shifts");
const lastFix = document.getElementById("last-fix");
const mapEl = document.getElementById("track-map");

// --- skills ----------------------------------------------------------------------------------

function showSkills(member, catalogue) {
  const rows = member.skills.map((held) => {
    const state = expiryState(held.expires);
    return el("tr", { "data-skill": held.skill, "data-expiry": state },
      el("th", { scope: "row" }, skillName(catalogue, held.skill)),
      el("td", { class: "level", title: fill(W.level, { n: held.level }) },
        el("span", { "aria-hidden": "true" }, "★".repeat(held.level || 1)),
        el("span", { class: "visually-hidden" }, fill(W.level, { n: held.level }))),
      el("td", { class: "expiry" }, el("span", { class: "cert", "data-expiry": state },
        expiryText(held.expires))));
  });
  skillsTable.querySelector("tbody").replaceChildren(...rows);
  skillsTable.hidden = rows.length === 0;
  document.getElementById("skills-none").hidden = rows.length > 0;
  skillsTable.dataset.state = "ready";
  const badge = document.getElementById("member-status");
  badge.replaceWith(Object.assign(statusBadge(member.status), { id: "member-status" }));
}

// --- coming shifts ---------------------------------------------------------------------------

function showShifts(rota) {
  const items = [];
  for (const shift of rota.shifts || []) {
    const serving = (shift.members || []).find((m) => m.code === code);
    const absent = (shift.absent || []).find((m) => m.code === code);
    if (!serving && !absent) continue;
    // On leave or swapped out (absent), swapped in, or with their squad.
    const why = absent ? (absent.why === "swap" ? "swap_out" : "leave")
      : (serving.via === "swap" ? "swap_in" : "squad");
    items.push(el("li", { "data-start": shift.start, "data-why": why },
      el("span", { class: "shift-when" }, `${when(shift.start)} – ${when(shift.end)}`),
      shift.squad ? el("span", { class: "squad-tag", "data-squad": shift.squad },
        fill(W.squad, { squad: shift.squad })) : null,
      why === "squad" ? null : el("span", { class: "shift-why", "data-why": why }, W.why[why])));
  }
  shiftList.replaceChildren(...items);
  shiftList.dataset.count = String(items.length);
  shiftList.dataset.state = "ready";
  document.getElementById("shifts-none").hidden = items.length > 0;
}

// --- last fix and track ----------------------------------------------------------------------

let fix = null; // {ts, battery_pct, accuracy_m}
let skewMs = 0; // the hub's clock minus this device's, from the layer's age_s

function showFix() {
  const field = (name) => lastFix.querySelector(`[data-field="${name}"]`);
  lastFix.dataset.state = fix ? "ready" : "none";
  field("ts").textContent = fix ? `${when(fix.ts)} (${clock(fix.ts)})` : W.age.never;
  field("age").textContent = fix
    ? ageText((Date.now() + skewMs - Date.parse(fix.ts)) / 1000) : "—";
  field("battery").textContent = fix && typeof fix.battery_pct === "number"
    ? `${Math.round(fix.battery_pct)} %` : "—";
  field("accuracy").textContent = fix && typeof fix.accuracy_m === "number"
    ? `± ${Math.round(fix.accuracy_m)} m` : "—";
  field("fixes").textContent = String(points.length);
}

const points = [];
let map = null;
let line = null;
let here = null;

function drawTrack() {
  mapEl.dataset.fixes = String(points.length);
  document.getElementById("track-none").hidden = points.length > 0;
  mapEl.hidden = points.length === 0;
  if (!points.length) {
    mapEl.dataset.state = "empty";
    return;
  }
  const latlngs = points.map((p) => [p.lat, p.lon]);
  if (!map) {
    map = L.map(mapEl, { zoomSnap: 0.25, attributionControl: false });
    map.createPane("villages").style.zIndex = 350;
    line = L.polyline(latlngs, { color: TRACK, weight: 4, opacity: 0.85 }).addTo(map);
    L.circleMarker(latlngs[0], { radius: 6, color: TRACK, fillColor: "#fff", fillOpacity: 1,
      weight: 3 }).addTo(map).bindTooltip(when(points[0].ts));
    here = L.circleMarker(latlngs[latlngs.length - 1], { radius: 9, color: "#fff", weight: 3,
      fillColor: TRACK, fillOpacity: 1 }).addTo(map);
    map.fitBounds(line.getBounds(), { padding: [30, 30], maxZoom: 16 });
    villages(line.getBounds());
  } else {
    line.setLatLngs(latlngs);
    here.setLatLng(latlngs[latlngs.length - 1]);
  }
  here.getElement()?.setAttribute("data-member", code);
  mapEl.dataset.state = "ready";
}

// The villages around the track, for where it is (the township's own layers are the map).
async function villages(bounds) {
  const b = bounds.pad(0.5);
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5));
  try {
    const layer = await getJson(`${config.urls.villages}?bbox=${bbox.join(",")}`);
    L.geoJSON(layer, { pane: "villages", interactive: false,
      style: { color: "#8798ac", weight: 1, fillColor: "#d5dde6", fillOpacity: 0.35 } })
      .addTo(map);
  } catch {
    // The track stands on its own without them.
  }
}

async function loadTrack() {
  try {
    const [track, layer] = await Promise.all([
      getJson(`${config.urls.track}?member=${encodeURIComponent(code)}`),
      getJson(config.urls.layer),
    ]);
    points.splice(0, points.length, ...(track.items || []));
    const feature = (layer.features || []).find((f) => (f.properties || {}).code === code);
    if (feature) {
      const p = feature.properties;
      fix = { ts: p.ts, battery_pct: p.battery_pct, accuracy_m: p.accuracy_m };
      skewMs = Date.parse(p.ts) + p.age_s * 1000 - Date.now();
    } else {
      fix = points.length ? points[points.length - 1] : null;
    }
    showFix();
    drawTrack();
  } catch (error) {
    mapEl.dataset.state = "error";
    problem(`${W.failed} ${error.message}`);
  }
}

// A `position` event lists the markers that moved (dispatch/positions/live.py): this member's
// entry, if any, is the newest fix.
function onPosition(message) {
  const list = message && Array.isArray(message.positions) ? message.positions : [];
  const p = list.find((item) => item && item.member === code);
  if (!p) return;
  if (!fix || Date.parse(p.ts) > Date.parse(fix.ts)) fix = p;
  if (points.some((known) => known.ts === p.ts)) return; // a replay after a reconnect
  points.push(p);
  points.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  showFix();
  drawTrack();
}

// --- start -----------------------------------------------------------------------------------

async function start() {
  const now = new Date();
  const until = new Date(now.getTime() + SHIFT_DAYS * DAY_MS);
  const rotaUrl = `${config.urls.rota}?from=${encodeURIComponent(now.toISOString())}`
    + `&to=${encodeURIComponent(until.toISOString())}`;
  try {
    const [member, skills] = await Promise.all([
      getJson(config.urls.member.replace("CODE", encodeURIComponent(code))),
      getJson(config.urls.skills)]);
    showSkills(member, catalogueOf(skills));
  } catch (error) {
    skillsTable.dataset.state = "error";
    problem(`${W.failed} ${error.message}`);
  }
  getJson(rotaUrl).then(showShifts).catch(() => {
    shiftList.dataset.state = "error";
  });
  await loadTrack();
}

start();
window.setInterval(showFix, 5000);
live().then((channel) => {
  if (!channel) return;
  channel.socket.on("position", onPosition);
  channel.socket.on("roster", () => start());
});
