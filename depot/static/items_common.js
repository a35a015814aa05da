// What the depot's item pages share (depot/item_pages.py renders the JSON block
// #depot-items-config): the words, an item's status in words with its problems (coloured only
// when something is wrong: in repair, unserviceable, lost, inspection overdue, expired, overdue
// back), where an item is (its bin, or who has it since when and until when), times on the
// depot's clock, and which `depot` events (depot/live.py) name an item. Everything from the
// data becomes text (../dom.js), never HTML.

import { getJson } from "../api.js";
import { el } from "../dom.js";

export const config = JSON.parse(document.getElementById("depot-items-config").textContent);
export const W = config.words;
export const lang = document.documentElement.lang || "zh-CN";
export const chinese = lang.toLowerCase().startsWith("zh");

/** "{name} …" with each {key} replaced by its value. */
export function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (whole, key) =>
    (key in values ? String(values[key]) : whole));
}

/** A type's name in the page's language. */
export function typeName(type) {
  if (!type) return "—";
  return (chinese ? type.name_zh : type.name_en || type.name_zh) || type.code;
}

const timeFormat = new Intl.DateTimeFormat(lang, { timeZone: config.timezone || undefined,
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  hourCycle: "h23" });

/** A moment on the depot's clock: "2026/03/01 16:00". */
export function when(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "—";
}

// Holders' names by "kind:CODE", from the roster's API where the hub has one (the depot
// names a holder by code only).
const names = new Map();
const NAMES_ASKED = 40; // members asked about at once at most (a long life names many)
const asked = new Map(); // "kind:CODE" -> Promise
let teams = null;

function askTeams() {
  if (!teams) {
    teams = config.urls.teams ? getJson(config.urls.teams).then((answer) => {
      for (const t of answer.items || []) names.set(`team:${t.code}`, t.name);
    }).catch(() => {}) : Promise.resolve();
  }
  return teams;
}

function askMember(code) {
  const key = `member:${code}`;
  if (!asked.has(key)) {
    asked.set(key, config.urls.member ? getJson(config.urls.member.replace("CODE",
      encodeURIComponent(code))).then((m) => names.set(key, m.name)).catch(() => {})
      : Promise.resolve());
  }
  return asked.get(key);
}

/** Learns the names of these holders ({kind, code}) before they are shown; a name that cannot
 * be had (or one past NAMES_ASKED new members) leaves the code alone. */
export async function learnNames(holders) {
  const waits = [];
  let members = 0;
  for (const to of holders) {
    if (!to) continue;
    if (to.kind === "team") waits.push(askTeams());
    if (to.kind === "member" && (asked.has(`member:${to.code}`) || members < NAMES_ASKED)) {
      if (!asked.has(`member:${to.code}`)) members += 1;
      waits.push(askMember(to.code));
    }
  }
  await Promise.all(waits);
}

/** Who has it: "队员 张三（T000-01）", "队伍 T000-FT", "事件 INC-1". */
export function holderName(to) {
  if (!to) return "—";
  const name = names.get(`${to.kind}:${to.code}`);
  if (name && W.named[to.kind]) return fill(W.named[to.kind], { name, code: to.code });
  return W.kinds[to.kind] ? fill(W.kinds[to.kind], { code: to.code }) : `${to.kind} ${to.code}`;
}

// Dates that no longer matter for an item that is gone or written off.
const SETTLED = new Set(["lost", "retired"]);

/** What is wrong with an item, each {key, text}: its status, an overdue inspection, expiry,
 * a check-out past its due time. Empty when it works. */
export function problems(item, now = Date.now()) {
  const found = [];
  const status = W.status[item.status];
  if (status && status.problem) found.push({ key: item.status, text: status.label });
  if (SETTLED.has(item.status)) return found;
  if (item.expires && item.expires < config.today) {
    found.push({ key: "expired", text: fill(W.flags.expired, { date: item.expires }) });
  }
  if (item.inspection_due && item.inspection_due < config.today) {
    found.push({ key: "inspection_overdue",
      text: fill(W.flags.inspection_overdue, { date: item.inspection_due }) });
  }
  const holder = item.holder;
  if (holder && holder.due && Date.parse(holder.due) < now) {
    found.push({ key: "overdue", text: fill(W.flags.overdue, { time: when(holder.due) }) });
  }
  return found;
}

/** The status in words, then each problem as a coloured word. */
export function statusView(item) {
  const status = W.status[item.status];
  const wrong = problems(item);
  return el("span", { class: "status", "data-status": item.status,
    "data-problems": wrong.map((p) => p.key).join(" ") || null },
  status && status.problem ? null
    : el("span", { class: "status-word", "data-status": item.status },
      status ? status.label : item.status),
  wrong.map((p) => el("span", { class: "status-word", "data-problem": p.key }, p.text)));
}

/** Where an item is: its bin (or home site), or who has it, since when, due back when. */
export function whereView(item) {
  const holder = item.holder;
  if (holder) {
    return el("span", { class: "where", "data-where": "held" },
      el("span", { class: "holder", "data-field": "holder" },
        fill(W.where.held, { holder: holderName(holder.to) })),
      el("span", { class: "since" }, fill(W.where.since, { time: when(holder.since) })),
      el("span", { class: "due" }, holder.due
        ? fill(W.where.due, { time: when(holder.due) }) : W.where.noDue));
  }
  if (item.bin) {
    return el("span", { class: "where", "data-where": "bin" },
      el("span", { class: "bin" }, item.bin));
  }
  return el("span", { class: "where", "data-where": "none" }, item.home_site
    ? fill(W.where.home, { site: item.home_site }) : W.where.nowhere);
}

/** An item's page. */
export function itemPage(code) {
  return config.urls.itemPage.replace("CODE", encodeURIComponent(code));
}

/** The item's API address. */
export function itemApi(code) {
  return config.urls.item.replace("CODE", encodeURIComponent(code));
}

/** The item codes a `depot` event names, upper case: `codes` (depot/live.py), and `items`
 * (codes or {code} objects) for an event of the other shape. */
export function namedCodes(payload) {
  const named = new Set();
  for (const key of ["codes", "items"]) {
    const list = payload && payload[key];
    if (!Array.isArray(list)) continue;
    for (const entry of list) {
      const code = typeof entry === "string" ? entry
        : entry && typeof entry.code === "string" ? entry.code : null;
      if (code) named.add(code.toUpperCase());
    }
  }
  return named;
}

/** Shows a problem in #page-status (or hides it with null). */
export function problem(words) {
  const box = document.getElementById("page-status");
  if (!box) return;
  box.hidden = !words;
  box.textContent = words || "";
}

/** The live socket when this page has one (base.html leaves it out before a password change). */
export async function live() {
  if (!document.getElementById("live")) return null;
  return import("../live.js");
}
