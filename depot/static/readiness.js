// The depot's readiness on the office home page (dispatch/templates/home.html #readiness): for
// each depot site and category, what can go out now, what is out, in repair or unserviceable,
// overdue for inspection, expired, and which stock is below its minimum, from
// GET /api/v1/depot/readiness?by=site (every site's entries, per type, in one answer, summed
// per category here as depot/layer.py sums them for the map). Boats come first and have their own line
// ("where are our boats and can they go now"); a category filter narrows the table.
// Problems are marked in colour and in words: none can go out, inspection overdue, expired,
// below minimum. A `depot` event (depot/live.py) naming a site refetches them all (one request),
// debounced.
// Every name from the data is text (../dom.js), never HTML.
// #readiness keeps data-state (loading | ready | error), data-sites and data-problems; each
// site is a <tbody data-site data-problems>, each category a <tr data-category data-problems>
// with cells [data-field], for people and tests.

import { getJson } from "../api.js";
import { el } from "../dom.js";

const box = document.getElementById("readiness");
const W = JSON.parse(document.getElementById("readiness-words").textContent);
const lang = document.documentElement.lang || "zh-CN";
const chinese = lang.toLowerCase().startsWith("zh");
const number = new Intl.NumberFormat(lang);
const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit",
  second: "2-digit" });
const list = chinese ? "、" : ", ";
const REFRESH_MS = 600; // a burst of events (an import, a kit of 20 items) refetches once
const RETRY_MS = 15000;
const BOATS_NAMED = 6; // depots named in the boats line
const COUNTS = ["serviceable", "out", "repair", "inspection_overdue", "expired", "lost",
  "total"];
const PROBLEMS = ["none_ready", "inspection_overdue", "expired", "below_min"];

const table = box.querySelector(".rd-table");
const filter = box.querySelector(".rd-filter select");
const sites = new Map(); // code -> {code, name, items: [...] | null}
for (const s of W.sites || []) sites.set(s.code, { ...s, items: null });

const fill = (template, values) => String(template).replace(/\{(\w+)\}/g,
  (whole, key) => (key in values ? String(values[key]) : whole));
const typeName = (t) => (chinese ? t.name_zh : t.name_en || t.name_zh) || t.type;
const categoryLabel = (c) => (W.categories[c] || {}).label || c;

/** One site's readiness entries (one per type) summed per category, boats first. */
function byCategory(items) {
  const sums = new Map();
  for (const entry of items) {
    let row = sums.get(entry.category);
    if (!row) {
      row = { category: entry.category, types: [], belowMin: [] };
      for (const name of COUNTS) row[name] = 0;
      sums.set(entry.category, row);
    }
    row.types.push(entry);
    if (entry.below_min) row.belowMin.push(entry);
    for (const name of COUNTS) row[name] += entry[name];
  }
  const rows = W.order.filter((c) => sums.has(c)).map((c) => sums.get(c));
  for (const row of rows) {
    row.problems = PROBLEMS.filter((p) => {
      if (p === "none_ready") return row.total > 0 && row.serviceable === 0;
      if (p === "below_min") return row.belowMin.length > 0;
      return row[p] > 0;
    });
  }
  return rows;
}

// What each type of a category has: "冲锋舟 5/6" (ready of all), "沙袋 1,300 条" (stock).
function typesLine(row) {
  return row.types.map((t) => (t.serialized
    ? `${typeName(t)} ${number.format(t.serviceable)}/${number.format(t.total)}`
    : `${typeName(t)} ${fill(W.stockOf, { qty: number.format(Number(t.stock || 0)),
      unit: t.unit || "" })}`.trim())).join(list);
}

function cell(field, value, problem) {
  return el("td", { class: "num", "data-field": field, "data-problem": problem ? "true" : null,
    title: problem ? W.problems[field === "serviceable" ? "none_ready" : field] : null }, value);
}

function categoryRow(row) {
  const has = (p) => row.problems.includes(p);
  // Bulk stock only (sandbags, rope): no items to count; the type line gives the quantities.
  const bulk = row.total === 0 && row.types.every((t) => !t.serialized);
  const count = (n) => (bulk ? "—" : number.format(n));
  const below = row.belowMin.map((t) => `${typeName(t)} ${number.format(Number(
    t.serialized ? t.serviceable : t.stock || 0))}/${number.format(Number(t.reorder_min))}`);
  return el("tr", { "data-category": row.category, "data-problems": row.problems.join(" ") },
    el("th", { scope: "row" },
      el("span", { class: "rd-cat", style: { "--cat": (W.categories[row.category] || {})
        .colour || "#607d8b" } }, categoryLabel(row.category)),
      el("span", { class: "rd-types" }, typesLine(row))),
    cell("serviceable", count(row.serviceable), has("none_ready")),
    cell("out", count(row.out), false),
    cell("repair", count(row.repair), false),
    cell("inspection_overdue", number.format(row.inspection_overdue),
      has("inspection_overdue")),
    cell("expired", number.format(row.expired), has("expired")),
    el("td", { class: "rd-below", "data-field": "below_min",
      "data-problem": has("below_min") ? "true" : null,
      title: has("below_min") ? W.problems.below_min : null },
    below.length ? below.join(list) : "—"));
}

function siteBody(site, wanted) {
  const rows = byCategory(site.items || []);
  const problems = rows.filter((r) => r.problems.length).length;
  const shown = rows.filter((r) => !wanted || r.category === wanted);
  const span = 7;
  const head = el("tr", { class: "rd-site" }, el("th", { colspan: span, scope: "rowgroup" },
    el("span", { class: "rd-site-name" }, site.name || site.code),
    el("span", { class: "rd-site-code" }, site.code),
    site.items === null ? null : el("span", { class: "rd-badge",
      "data-problems": String(problems), "data-empty": rows.length ? null : "true" },
    problems ? fill(W.problemCount, { n: problems }) : rows.length ? W.ok : W.nothing)));
  let body;
  if (site.items === null) body = [];
  else if (!shown.length) {
    body = [el("tr", { class: "rd-empty" }, el("td", { colspan: span },
      wanted ? W.empty : W.emptySite))];
  } else body = shown.map(categoryRow);
  return el("tbody", { "data-site": site.code, "data-problems": String(problems) }, head, body);
}

// "Boats ready now: 12 — Main depot 8, Riverside post 4; 2 out, 1 in repair".
function boatsLine() {
  const line = box.querySelector('[data-field="boats"]');
  let ready = 0;
  let out = 0;
  let repair = 0;
  let total = 0;
  const at = [];
  for (const site of sites.values()) {
    const boats = byCategory(site.items || []).find((r) => r.category === "boat");
    if (!boats) continue;
    ready += boats.serviceable;
    out += boats.out;
    repair += boats.repair;
    total += boats.total;
    if (boats.serviceable) at.push([boats.serviceable, site.name || site.code]);
  }
  // Where most are first; a prefecture's hundred depots end in "and N more".
  at.sort((a, b) => b[0] - a[0]);
  const named = at.slice(0, BOATS_NAMED).map(([n, site]) => fill(W.boatsAt, { site,
    n: number.format(n) }));
  if (at.length > BOATS_NAMED) {
    named.push(fill(W.boatsMore, { n: number.format(at.length - BOATS_NAMED) }));
  }
  line.dataset.ready = String(ready);
  line.dataset.problem = total > 0 && ready === 0 ? "true" : "false";
  if (!total) {
    line.textContent = W.boatsUnknown;
    return;
  }
  const parts = [ready ? fill(W.boats, { n: number.format(ready) }) : W.boatsNone];
  if (named.length) parts.push(` — ${named.join(list)}`);
  if (out || repair) {
    parts.push(`${chinese ? "；" : "; "}${fill(W.boatsAway, { out: number.format(out),
      repair: number.format(repair) })}`);
  }
  line.textContent = parts.join("");
}

function render() {
  const wanted = filter.value;
  const bodies = [...sites.values()].map((site) => siteBody(site, wanted));
  table.querySelectorAll("tbody").forEach((b) => b.remove());
  table.append(...bodies);
  const problems = bodies.reduce((n, b) => n + Number(b.dataset.problems), 0);
  box.dataset.sites = String(sites.size);
  box.dataset.problems = String(problems);
  box.querySelector('[data-field="summary"]').textContent = fill(W.summary, {
    sites: number.format(sites.size), problems: number.format(problems) });
  box.querySelector(".rd-none").hidden = sites.size > 0;
  box.querySelector(".table-wrap").hidden = sites.size === 0;
  boatsLine();
}

let retry = null;
let loads = 0;

async function load() {
  window.clearTimeout(retry);
  try {
    const answer = await getJson(`${W.readiness}?by=site`, { timeout: 10000 });
    for (const site of Array.isArray(answer.sites) ? answer.sites : []) {
      const known = sites.get(site.code);
      sites.set(site.code, { ...(known || {}), code: site.code,
        name: site.name || (known && known.name) || site.code,
        items: Array.isArray(site.items) ? site.items : [] });
    }
    render();
    loads += 1;
    box.dataset.state = "ready";
    box.dataset.loads = String(loads);
    box.querySelector(".rd-failed").hidden = true;
    box.querySelector('[data-field="updated"]').textContent = fill(W.updated, {
      time: clock.format(new Date()) });
  } catch {
    box.dataset.state = "error";
    box.querySelector(".rd-failed").hidden = false;
    retry = window.setTimeout(() => load(), RETRY_MS);
  }
}

// The filter: every category, boats first; the choice is kept in the page's address (#).
function buildFilter() {
  filter.replaceChildren(el("option", { value: "" }, W.all),
    ...W.order.map((c) => el("option", { value: c }, categoryLabel(c))));
  const kept = new URLSearchParams(window.location.hash.slice(1)).get("depot");
  if (kept && W.order.includes(kept)) filter.value = kept;
  filter.addEventListener("change", () => {
    const url = new URL(window.location.href);
    url.hash = filter.value ? `depot=${filter.value}` : "";
    window.history.replaceState(null, "", url);
    render();
  });
}

// A `depot` event names the sites where something changed (a catalogue change may name none);
// either way every site comes again in one request, once for a burst of events.
let timer = null;

function onDepot(event) {
  if (!event || typeof event !== "object") return;
  window.clearTimeout(timer);
  timer = window.setTimeout(load, REFRESH_MS);
}

buildFilter();
load();
if (document.getElementById("live")) {
  import("../live.js").then(({ socket }) => socket.on("depot", onDepot));
}
