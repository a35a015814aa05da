// Find an item (depot/templates/depot/items.html): GET /api/v1/depot/items with the search box
// (q: code, serial, name or bin) and the filters (site, category, status) as its query, a page
// of config.pageSize at a time; the sites for the site filter from GET /api/v1/depot/sites.
// The query stays in the address (back from an item's page finds the same list). A `depot`
// event naming a listed item, or new items, refetches the page. #items keeps data-state
// (loading | ready | error), data-count and data-total for people and tests.

import { getJson } from "../api.js";
import { el } from "../dom.js";
import {
  W, config, fill, itemPage, learnNames, live, namedCodes, problem, problems, statusView,
  typeName, whereView,
} from "./items_common.js";

const list = document.getElementById("items");
const form = document.getElementById("filters");
const count = document.getElementById("items-count");
const empty = document.getElementById("items-empty");
const pager = document.getElementById("pager");
const prev = document.getElementById("page-prev");
const next = document.getElementById("page-next");
const range = document.getElementById("page-range");
const FILTERS = ["q", "site", "category", "status"];
const SEARCH_DELAY_MS = 250;
const REFRESH_MS = 600; // a burst of events (a kit of 20 items) refetches once
const RETRY_MS = 10000;
const size = Number(config.pageSize) || 50;

let offset = 0;
let total = 0;
let shown = new Set();
let request = null;
let retry = null;
let loads = 0;

function option(value, words) {
  return el("option", { value }, words);
}

function fillFilters(sites) {
  form.elements.site.append(...sites.map((s) => option(s.code,
    s.name ? `${s.name} (${s.code})` : s.code)));
  form.elements.category.append(...W.categoryOrder.map((c) => option(c, W.categories[c])));
  form.elements.status.append(...W.statusOrder.map((s) => option(s, W.status[s].label)));
}

// The address keeps the query: ?q=…&site=…&offset=…
function fromAddress() {
  const params = new URLSearchParams(window.location.search);
  for (const name of FILTERS) {
    const value = params.get(name);
    const field = form.elements[name];
    if (value === null) continue;
    if (field.tagName === "SELECT" && ![...field.options].some((o) => o.value === value)) {
      field.append(option(value, value)); // a site added since the page was made
    }
    field.value = value;
  }
  offset = Math.max(0, Number.parseInt(params.get("offset"), 10) || 0);
}

function query() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function row(item) {
  const wrong = problems(item);
  return el("li", { class: "item-row", "data-code": item.code, "data-status": item.status,
    "data-problem": wrong.length ? "true" : null },
  el("a", { class: "item-link", href: itemPage(item.code) },
    el("span", { class: "item-code" }, item.code),
    el("span", { class: "item-type" }, typeName(item.type)),
    item.serial ? el("span", { class: "item-serial" }, item.serial) : null),
  el("span", { class: "item-status" }, statusView(item)),
  el("span", { class: "item-where" }, whereView(item)));
}

function showPager() {
  pager.hidden = total <= size;
  prev.disabled = offset <= 0;
  next.disabled = offset + size >= total;
  const first = total ? offset + 1 : 0;
  range.textContent = fill(W.range, { first, last: Math.min(offset + size, total), n: total });
}

async function load() {
  window.clearTimeout(retry);
  if (request) request.abort();
  request = new AbortController();
  list.dataset.state = "loading";
  const params = query();
  if (offset) params.set("offset", String(offset));
  window.history.replaceState(null, "", `${window.location.pathname}${params.size
    ? `?${params}` : ""}`);
  params.set("limit", String(size));
  const mine = request;
  try {
    const answer = await getJson(`${config.urls.items}?${params}`, { signal: request.signal });
    const items = answer.items || [];
    total = answer.total || 0;
    if (!items.length && offset > 0 && total > 0) {
      offset = Math.max(0, Math.floor((total - 1) / size) * size); // past the end: the last page
      load();
      return;
    }
    await learnNames(items.map((i) => i.holder && i.holder.to));
    if (request !== mine) return; // a newer query is on its way
    list.replaceChildren(...items.map(row));
    shown = new Set(items.map((i) => i.code));
    loads += 1;
    Object.assign(list.dataset, { count: String(items.length), total: String(total),
      state: "ready", loads: String(loads) });
    empty.hidden = items.length > 0;
    count.textContent = fill(W.count, { n: total });
    showPager();
    problem(null);
  } catch (error) {
    if (error && error.name === "AbortError") return;
    list.dataset.state = "error";
    problem(`${W.failed} ${error.message}`);
    retry = window.setTimeout(load, RETRY_MS);
  }
}

async function start() {
  try {
    const sites = await getJson(config.urls.sites);
    fillFilters(sites.items || []);
  } catch (error) {
    fillFilters([]);
    problem(`${W.failed} ${error.message}`);
  }
  fromAddress();
  await load();
}

let typing = null;
form.addEventListener("input", (event) => {
  window.clearTimeout(typing);
  offset = 0;
  typing = window.setTimeout(load, event.target.type === "search" ? SEARCH_DELAY_MS : 0);
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  load();
});
prev.addEventListener("click", () => {
  offset = Math.max(0, offset - size);
  load().then(() => list.scrollIntoView({ block: "start" }));
});
next.addEventListener("click", () => {
  offset += size;
  load().then(() => list.scrollIntoView({ block: "start" }));
});

start();

// An item listed here changed (checked out or in, inspected, repaired, edited), or items were
// added: the page is fetched again, once for a burst.
let refresh = null;
live().then((channel) => {
  if (!channel) return;
  channel.socket.on("depot", (payload) => {
    const named = namedCodes(payload);
    const added = payload && payload.kind === "item"
      && (payload.action === "create" || payload.action === "import");
    if (!added && ![...named].some((code) => shown.has(code))) return;
    window.clearTimeout(refresh);
    refresh = window.setTimeout(load, REFRESH_MS);
  });
});
