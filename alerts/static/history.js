// The alert history (alerts/templates/alerts.html): GET /api/v1/alerts with the page's filters
// (kind, state active|all, village), newest first; the filters live in the query string so a
// filtered list can be linked and survives a reload. `alert` events on /live reload the list
// (debounced). Every name goes in as text (../dom.js).
//
// #al-table keeps data-state (loading | ready | error) and data-count for people and tests.

import { getJson } from "../api.js";
import { el } from "../dom.js";
import { capLabel, colourOf, kindLabel, levelLabel, stateLabel } from "../warnings.js";

const config = JSON.parse(document.getElementById("al-config").textContent);
const T = config.labels;
const lang = document.documentElement.lang || "zh-CN";
const number = new Intl.NumberFormat(lang);
const when = new Intl.DateTimeFormat(lang, { year: "numeric", month: "numeric", day: "numeric",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const LIMIT = 1000; // alerts.views.MAX_ITEMS

const form = document.getElementById("al-form");
const table = document.getElementById("al-table");
const body = table.querySelector("tbody");
const empty = document.getElementById("al-empty");
const status = document.getElementById("al-status");
const villageNames = new Map();
let running = null;
let reloadTimer = null;

function filters() {
  const data = new FormData(form);
  return { kind: data.get("kind") || "", state: data.get("state") || "all",
    village: data.get("village") || "" };
}

function fromQuery() {
  const query = new URLSearchParams(window.location.search);
  for (const name of ["kind", "state", "village"]) {
    const value = query.get(name);
    const select = form.elements[name];
    if (value === null) continue;
    if (name === "village" && ![...select.options].some((o) => o.value === value)) {
      select.append(el("option", { value }, value)); // named before the list arrives
    }
    select.value = value;
  }
}

function toQuery(f) {
  const query = new URLSearchParams();
  if (f.kind) query.set("kind", f.kind);
  if (f.state !== "all") query.set("state", f.state);
  if (f.village) query.set("village", f.village);
  const search = query.toString();
  window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
}

const time = (iso) => (iso ? el("time", { datetime: iso }, when.format(new Date(iso))) : "—");

function row(a) {
  const href = config.urls.page.replace(/0$/, String(a.id));
  const villages = a.villages || [];
  const names = villages.map((code) => villageNames.get(code) || code);
  return el("tr", { "data-id": a.id, "data-kind": a.kind, "data-level": a.level,
    "data-state": a.state, style: { "--level": colourOf(a.level) } },
  el("td", { "data-field": "level" }, el("span", { class: "al-level" }, levelLabel(a)),
    el("span", { class: "al-kind" }, kindLabel(a.kind))),
  el("th", { scope: "row", "data-field": "subject" },
    el("a", { href }, el("span", { class: "al-name" }, a.subject.name || a.subject.code),
      el("span", { class: "al-code" }, a.subject.code)),
    villages.length && a.subject.type !== "village"
      ? el("span", { class: "al-villages" }, names.join("、")) : null),
  el("td", { "data-field": "state" }, stateLabel(a.state)),
  el("td", { "data-field": "raised" }, time(a.raised_at)),
  el("td", { "data-field": "closed" }, a.closed_at ? time(a.closed_at)
    : el("span", { class: "al-open" }, T.open)),
  el("td", { class: "num", "data-field": "people" }, a.people ? number.format(a.people) : "—"),
  el("td", { "data-field": "cap" }, a.cap ? capLabel(a.cap.status) : "—"));
}

async function load() {
  const f = filters();
  toQuery(f);
  if (running) running.abort();
  const request = new AbortController();
  running = request;
  table.dataset.state = "loading";
  status.textContent = T.loading;
  const query = new URLSearchParams({ state: f.state });
  if (f.kind) query.set("kind", f.kind);
  if (f.village) query.set("village", f.village);
  try {
    const data = await getJson(`${config.urls.list}?${query}`, { signal: request.signal });
    const items = data.items || [];
    body.replaceChildren(...items.map(row));
    empty.hidden = items.length > 0;
    table.dataset.count = String(items.length);
    table.dataset.state = "ready";
    status.textContent = T.shown.replace("N", number.format(items.length))
      + (items.length >= LIMIT ? ` (${T.limit.replace("N", number.format(LIMIT))})` : "");
  } catch (error) {
    if (request.signal.aborted) return;
    table.dataset.state = "error";
    status.textContent = `${T.failed} ${(error && error.message) || ""}`;
    reloadSoon(10000);
  } finally {
    if (running === request) running = null;
  }
}

function reloadSoon(ms = 500) {
  window.clearTimeout(reloadTimer);
  reloadTimer = window.setTimeout(load, ms);
}

async function loadVillages() {
  try {
    const data = await getJson(config.urls.villages);
    const select = form.elements.village;
    const chosen = select.value;
    const items = (data.items || []).sort((a, b) => a.code.localeCompare(b.code));
    for (const v of items) villageNames.set(v.code, v.name || v.code);
    select.replaceChildren(select.options[0], ...items.map((v) =>
      el("option", { value: v.code }, `${v.name || v.code} (${v.code})`)));
    if (chosen && !items.some((v) => v.code === chosen)) {
      select.append(el("option", { value: chosen }, chosen));
    }
    select.value = chosen;
  } catch {
    // The list still works with a village named in the query string.
  }
}

form.addEventListener("change", () => load());
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
fromQuery();
loadVillages().then(() => load());

if (document.getElementById("live")) {
  import("../live.js").then(({ socket }) => {
    socket.on("alert", () => reloadSoon());
  });
}
