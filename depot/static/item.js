// One item's page (depot/templates/depot/item.html): GET /api/v1/depot/items/<code> gives the
// header (status and its problems in words, condition, type, serial, bin, home site, who has it
// since when and until when, inspection due, expiry, purchase) and `history`, newest first:
// check-outs and returns with to whom and in what condition, inspections with their checklist,
// repairs opened and closed, and the audit log's registration and edits, each a line in words
// at its time on the depot's clock. Live: a `depot` event naming the item (its `codes`, or
// `items` in the other shape) fetches it again. #history keeps data-state (loading | ready |
// error | gone), data-count and data-loads for people and tests.

import { ApiError, getJson } from "../api.js";
import { el } from "../dom.js";
import {
  W, config, fill, holderName, learnNames, live, namedCodes, problem, problems, statusView,
  typeName, when, whereView,
} from "./items_common.js";

const code = String(config.code).toUpperCase();
const H = W.history;
const state = document.getElementById("item-state");
const facts = document.getElementById("facts");
const history = document.getElementById("history");
const REFRESH_MS = 300;
const RETRY_MS = 10000;
let loads = 0;
let retry = null;
let request = null;

function field(root, name) {
  return root.querySelector(`[data-field="${name}"]`);
}

function dated(date, template, overdue) {
  if (!date) return W.where.none;
  return overdue ? el("span", { class: "status-word", "data-problem": overdue }, template)
    : template;
}

function showItem(item) {
  const wrong = new Set(problems(item).map((p) => p.key));
  document.querySelector('.item-head [data-field="type"]').textContent = typeName(item.type);
  document.querySelector('.item-head [data-field="category"]').textContent =
    W.categories[item.type.category] || item.type.category;
  state.replaceChildren(statusView(item), el("span", { class: "item-where" }, whereView(item)));
  state.dataset.state = "ready";
  state.dataset.status = item.status;
  const set = (name, ...content) => field(facts, name).replaceChildren(...content);
  set("condition", item.condition || "—");
  set("type", `${typeName(item.type)} (${item.type.code})`);
  set("serial", item.serial || "—");
  set("bin", item.bin || W.where.nowhere);
  set("home_site", item.home_site || "—");
  set("holder", item.holder ? whereView(item) : "—");
  set("inspection_due", dated(item.inspection_due, wrong.has("inspection_overdue")
    ? fill(W.flags.inspection_overdue, { date: item.inspection_due }) : item.inspection_due,
  wrong.has("inspection_overdue") && "inspection_overdue"));
  set("expires", dated(item.expires, wrong.has("expired")
    ? fill(W.flags.expired, { date: item.expires }) : item.expires,
  wrong.has("expired") && "expired"));
  set("purchased", item.purchased || "—");
  facts.dataset.state = "ready";
  facts.dataset.holder = item.holder ? item.holder.to.code : "";
}

// --- the history, one line in words per entry ------------------------------------------------

function who(actor) {
  if (!actor) return null;
  return fill(H.by, { who: String(actor).replace(/^user:/, "") });
}

function checklist(checks) {
  const entries = Object.entries(checks || {});
  if (!entries.length) return null;
  return el("ul", { class: "checks-done" }, entries.map(([step, value]) => {
    const verdict = value === true ? "pass" : value === false ? "fail"
      : value === null || value === undefined ? "skip" : null;
    return el("li", { "data-check": verdict || "text" },
      el("span", { class: "check-step" }, step), "：",
      el("span", { class: "check-value" }, verdict ? H.checks[verdict] : String(value)));
  }));
}

function shown(name, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (name === "status") return (W.status[value] || {}).label || value;
  return String(value);
}

function edits(before, after) {
  const changed = Object.keys(H.fields).filter((name) =>
    before && after && JSON.stringify(before[name]) !== JSON.stringify(after[name]));
  return changed.map((name) => `${H.fields[name]} ${shown(name, before[name])} → ${
    shown(name, after[name])}`).join("；");
}

function describe(entry) {
  switch (entry.kind) {
    case "checkout":
      return { text: fill(H.checkout, { holder: holderName(entry.to) }),
        extra: [entry.due ? fill(H.due, { time: when(entry.due) }) : null,
          entry.kit ? fill(H.kit, { kit: entry.kit }) : null] };
    case "checkin":
      return { text: fill(H.checkin, { holder: holderName(entry.to),
        condition: H.conditions[entry.condition] || entry.condition }),
      problem: entry.condition !== "ok" ? entry.condition : null };
    case "inspection":
      return { text: fill(H.inspection, { result: H.results[entry.result] || entry.result }),
        problem: ["repair_required", "unserviceable", "lost"].includes(entry.result)
          ? entry.result : null,
        details: checklist(entry.checklist) };
    case "repair_opened":
      return { text: fill(H.repair_opened, { reason: entry.reason || "—" }), problem: "repair" };
    case "repair_closed":
      return { text: fill(H.repair_closed, {
        outcome: H.outcomes[entry.outcome] || entry.outcome || "—" }) };
    case "audit":
      if (entry.action === "depot_item.create") return { text: H.created };
      if (entry.action === "depot.expiry_notice") return { text: H.expiryNotice };
      if (entry.action === "depot_item.update") {
        return { text: fill(H.updated, { fields: edits(entry.before, entry.after) || "—" }) };
      }
      return { text: fill(H.audit, { action: entry.action }) };
    default:
      return { text: entry.kind };
  }
}

function line(entry) {
  const said = describe(entry);
  return el("li", { class: "event", "data-kind": entry.kind,
    "data-problem": said.problem || null },
  el("time", { class: "event-time", datetime: entry.at }, when(entry.at)),
  el("div", { class: "event-body" },
    el("span", { class: "event-text" }, said.text),
    (said.extra || []).filter(Boolean).map((words) => el("span", { class: "event-extra" },
      words)),
    entry.note ? el("span", { class: "event-note" }, fill(H.note, { note: entry.note }))
      : null,
    said.details || null,
    entry.by ? el("span", { class: "event-by muted" }, who(entry.by)) : null));
}

function showHistory(entries) {
  history.replaceChildren(...entries.map(line));
  document.getElementById("history-count").textContent = fill(H.count, { n: entries.length });
  const more = document.getElementById("history-more");
  more.hidden = entries.length < 500;
  more.textContent = fill(H.more, { n: entries.length });
  loads += 1;
  Object.assign(history.dataset, { state: "ready", count: String(entries.length),
    loads: String(loads) });
}

async function load() {
  window.clearTimeout(retry);
  if (request) request.abort();
  request = new AbortController();
  const mine = request;
  try {
    const item = await getJson(config.urls.item.replace("CODE", encodeURIComponent(code)),
      { signal: request.signal });
    await learnNames([item.holder && item.holder.to, ...(item.history || []).map((e) => e.to)]);
    if (request !== mine) return; // a newer answer is on its way
    showItem(item);
    showHistory(item.history || []);
    problem(null);
  } catch (error) {
    if (error && error.name === "AbortError") return;
    if (error instanceof ApiError && error.status === 404) {
      history.dataset.state = "gone";
      problem(W.gone);
      return;
    }
    history.dataset.state = "error";
    problem(`${W.failed} ${error.message}`);
    retry = window.setTimeout(load, RETRY_MS);
  }
}

load();

let refresh = null;
live().then((channel) => {
  if (!channel) return;
  channel.socket.on("depot", (payload) => {
    if (!namedCodes(payload).has(code)) return;
    window.clearTimeout(refresh);
    refresh = window.setTimeout(load, REFRESH_MS);
  });
});
