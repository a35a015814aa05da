// The dead-letter office (telemetry/templates/dead_letters.html).
//
// Rows come from GET /api/v1/dead-letters (newest first, `next_before` pages on with "Older");
// the reason chips' counts from GET /api/v1/dead-letters/summary. Filters (reason, gateway,
// sensor, resolved) live in the address so a filtered view can be shared. New dead letters: the
// hub sends no live event for them, so the summary is polled every 15 s and rows newer than the
// newest shown are fetched and put on top (marked "new").
//
// Safety: a payload is whatever a gateway (or an attacker with its token) sent. Everything from
// the API reaches the page as text nodes or attributes (../dom.js), never innerHTML; control, invisible
// and bidi characters are drawn as visible marks, and bytes that were not UTF-8 (U+FFFD from the
// API) are marked too.
//
// #dl-list keeps data-state (loading | ready | empty | error) and data-count; each row carries
// data-id, data-reason and data-resolved (and data-resolution once settled) for people and tests.

import { getJson, request } from "../api.js";
import { el } from "../dom.js";

const config = JSON.parse(document.getElementById("dead-letters-config").textContent);
const T = config.labels;
const lang = document.documentElement.lang || "zh-CN";
const number = new Intl.NumberFormat(lang);
const dateTime = new Intl.DateTimeFormat(lang, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const clock = new Intl.DateTimeFormat(lang, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

const list = document.getElementById("dl-list");
const empty = document.getElementById("dl-empty");
const older = document.getElementById("dl-older");
const status = document.getElementById("dl-status");
const chips = [...document.querySelectorAll("#dl-chips .dl-chip")];
const form = document.getElementById("dl-form");
const dialog = document.getElementById("dl-confirm");

const MALFORMED = ["bad_json", "bad_encoding", "schema", "bad_timestamp", "not_finite", "too_large"];
const REGISTRY = ["retired_sensor", "unit_mismatch", "out_of_range"];
// Decoding is deterministic and the stored payload never changes: reprocessing these can only
// refuse them again (and file another dead letter), so they get no Reprocess button; an
// over_quota letter kept no payloads to reprocess (the API refuses it). Each can be dismissed.
const HOPELESS = [...MALFORMED, "too_old", "over_quota"];
// The stored (English) details in the page's words: [pattern, words with {group} holes].
const DETAILS = config.details.map(([pattern, words]) => [new RegExp(pattern, "u"), words]);

/** "{name}" placeholders filled from `values`. */
function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

function formatTime(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? iso : dateTime.format(when);
}

// --- filters, kept in the address --------------------------------------------------------

const filters = { reason: "", gateway: "", sensor: "", resolved: false };

function readAddress() {
  const params = new URLSearchParams(window.location.search);
  filters.reason = config.reasons[params.get("reason")] ? params.get("reason") : "";
  filters.gateway = params.get("gateway") || "";
  filters.sensor = params.get("sensor") || "";
  filters.resolved = params.get("resolved") === "1";
  form.elements.gateway.value = filters.gateway;
  form.elements.sensor.value = filters.sensor;
  form.elements.resolved.checked = filters.resolved;
}

function writeAddress() {
  const params = new URLSearchParams();
  if (filters.reason) params.set("reason", filters.reason);
  if (filters.gateway) params.set("gateway", filters.gateway);
  if (filters.sensor) params.set("sensor", filters.sensor);
  if (filters.resolved) params.set("resolved", "1");
  const query = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (query ? `?${query}` : ""));
}

/** Query parameters for the API; `withReason` false for the summary. */
function query(extra = {}, withReason = true) {
  const params = new URLSearchParams();
  if (withReason && filters.reason) params.set("reason", filters.reason);
  if (filters.gateway) params.set("gateway", filters.gateway);
  if (filters.sensor) params.set("sensor", filters.sensor);
  if (!filters.resolved && withReason) params.set("resolved", "0");
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return params.toString();
}

const REQUEST_TIMEOUT_MS = 15000;

// --- the payload, drawn safely -----------------------------------------------------------

// Characters a reader cannot see or that reorder text (Trojan Source, CVE-2021-42574): drawn as
// a visible mark. Newline and tab stay what they are.
const INVISIBLE = /[\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\u3164\ufeff\ufff9-\ufffb]/u;

function codeOf(ch) {
  return `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}

function mark(ch) {
  const cp = ch.codePointAt(0);
  if (ch === "\ufffd") {
    const span = el("span", { class: "dl-mark dl-mark-bad" }, "\ufffd");
    span.title = T.invalidByte;
    return span;
  }
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
    // C0 controls as their Unicode "control pictures" (␀ ␛ …); DEL and C1 as their code.
    const picture = cp < 0x20 ? String.fromCodePoint(0x2400 + cp) : cp === 0x7f ? "\u2421" : codeOf(ch);
    const span = el("span", { class: "dl-mark dl-mark-ctl" }, picture);
    span.title = fill(T.control, { code: codeOf(ch) });
    return span;
  }
  const span = el("span", { class: "dl-mark dl-mark-inv" }, `<${codeOf(ch)}>`);
  span.title = fill(T.invisible, { code: codeOf(ch) });
  return span;
}

function isMarked(ch) {
  if (ch === "\n" || ch === "\t") return false;
  const cp = ch.codePointAt(0);
  return ch === "\ufffd" || cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || INVISIBLE.test(ch);
}

/** The payload text in a <pre>, as text nodes and marks only. */
function payloadBlock(text) {
  const pre = el("pre", { class: "dl-payload" });
  let run = "";
  for (const ch of text) {
    if (!isMarked(ch)) {
      run += ch;
      continue;
    }
    if (run) pre.append(document.createTextNode(run));
    run = "";
    pre.append(mark(ch));
  }
  if (run) pre.append(document.createTextNode(run));
  return pre;
}

// --- one row -----------------------------------------------------------------------------

/** A JSON reader's or time parser's problem in words (it begins with a known phrase). */
function problemWords(text) {
  const known = Object.keys(config.problems).filter((start) => text.startsWith(start))
    .sort((a, b) => b.length - a.length)[0];
  return known ? config.problems[known] : text;
}

/** "bad_json 3, schema 2" (an over_quota letter's count per reason) with the reasons' labels. */
function countedWords(text) {
  return text.replace(/\b([a-z_]+) (\d+)\b/g, (whole, code, n) => (config.reasons[code]
    ? `${config.reasons[code]} ${number.format(Number(n))}` : whole));
}

/** A letter's detail in the page's language, or null when no pattern knows it. */
function detailWords(detail) {
  for (const [pattern, words] of DETAILS) {
    const match = pattern.exec(detail);
    if (!match) continue;
    const values = { ...match.groups };
    if (values.problem) values.problem = problemWords(values.problem);
    if (values.counted) values.counted = countedWords(values.counted);
    return fill(words, values);
  }
  return null;
}

function hintFor(reason) {
  if (reason === "unknown_sensor" || reason === "foreign_sensor" || reason === "conflict"
      || reason === "over_quota") {
    return config.hints[reason];
  }
  if (REGISTRY.includes(reason)) return config.hints.registry;
  if (reason === "too_old" || reason === "future") return config.hints.clock;
  if (MALFORMED.includes(reason)) return config.hints.malformed;
  return "";
}

function meta(letter) {
  const dl = el("dl", { class: "dl-meta" });
  const rows = [
    ["topic", letter.topic],
    ["gateway", letter.gateway || "—"],
    ["sensor", letter.sensor || "—"],
    ["index", letter.index === null || letter.index === undefined ? T.whole : `#${letter.index}`],
    ["message", letter.message_id],
  ];
  for (const [key, value] of rows) {
    const div = el("div");
    div.dataset.field = key;
    div.append(el("dt", null, T[key]), el("dd", null, value));
    dl.append(div);
  }
  return dl;
}

function payloadSection(letter) {
  const box = el("div", { class: "dl-payload-box" });
  const head = el("div", { class: "dl-payload-head" });
  head.append(el("span", { class: "dl-payload-title" }, T.payload),
    el("span", { class: "dl-payload-size" }, fill(T.bytes, { n: number.format(letter.payload_bytes) })));
  box.append(head);
  const shown = new TextEncoder().encode(letter.payload).length;
  if (letter.payload_truncated || letter.payload_bytes > shown) {
    box.append(el("p", { class: "dl-note dl-cut" }, fill(T.cut, {
      shown: number.format(Math.min(shown, letter.payload_bytes)),
      total: number.format(letter.payload_bytes),
    })));
  }
  if (letter.payload_utf8 === false) box.append(el("p", { class: "dl-note dl-not-utf8" }, T.notUtf8));
  box.append(payloadBlock(letter.payload));
  return box;
}

function outcomeText(letter) {
  const resolution = T.resolution[letter.resolution] || letter.resolution || T.resolved;
  const who = (letter.resolved_by || "").replace(/^user:/, "");
  return fill(T.resolvedBy, {
    resolution, who: who || "—", when: letter.resolved_at ? formatTime(letter.resolved_at) : "—",
  });
}

function actions(letter, row) {
  const footer = el("div", { class: "dl-actions" });
  const message = el("p", { class: "dl-outcome" });
  message.setAttribute("role", "status");
  if (letter.resolved) {
    message.dataset.kind = "resolved";
    message.textContent = outcomeText(letter);
    footer.append(message);
    return footer;
  }
  footer.append(message);
  if (!config.canAct) return footer;
  const buttons = el("div", { class: "dl-buttons" });
  const choices = HOPELESS.includes(letter.reason) ? []
    : letter.reason === "conflict" ? [["keep", "btn-plain"], ["replace", "btn-primary"]]
      : [["reprocess", "btn-primary"]];
  choices.push(["dismiss", "btn-plain btn-dismiss"]);
  for (const [action, style] of choices) {
    const button = el("button", { class: `btn ${style}` }, T[action]);
    button.type = "button";
    button.dataset.action = action;
    button.addEventListener("click", () => act(letter, action, row));
    buttons.append(button);
  }
  footer.prepend(buttons);
  return footer;
}

function renderRow(letter, isNew = false) {
  const li = el("li", { class: "dl-item card" });
  li.dataset.id = letter.id;
  li.dataset.reason = letter.reason;
  li.dataset.resolved = letter.resolved ? "1" : "0";
  if (letter.resolution) li.dataset.resolution = letter.resolution;
  if (isNew) li.classList.add("dl-is-new");

  const head = el("div", { class: "dl-head" });
  const reason = el("span", { class: "dl-reason" });
  reason.append(el("strong", { class: "dl-reason-label" }, config.reasons[letter.reason] || letter.reason),
    el("code", { class: "dl-code" }, letter.reason));
  const when = el("time", { class: "dl-time" }, formatTime(letter.received_at));
  when.dateTime = letter.received_at;
  head.append(reason);
  if (isNew) head.append(el("span", { class: "dl-new-tag" }, T.new));
  head.append(when, el("span", { class: "dl-id" }, `#${letter.id}`));

  li.append(head, meta(letter));
  if (letter.detail) {
    const words = detailWords(letter.detail);
    // An unknown form of detail is shown as stored (marked, for the next translation).
    li.append(el("p", { class: "dl-detail", "data-translated": String(words !== null),
      title: words === null ? null : letter.detail }, words ?? letter.detail));
  }
  if (letter.reason === "over_quota" && letter.dropped_count) {
    li.append(el("p", { class: "dl-dropped" }, fill(T.dropped, {
      count: number.format(letter.dropped_count),
      bytes: number.format(letter.dropped_bytes || 0) })));
  }
  const hint = !letter.resolved && hintFor(letter.reason);
  if (hint && config.canAct) li.append(el("p", { class: "dl-hint" }, hint));
  li.append(payloadSection(letter), actions(letter, li));
  return li;
}

// --- actions -----------------------------------------------------------------------------

/** The reading the letter is about, from its payload when it parses (sensor, ts, value). */
function readingOf(letter) {
  try {
    const body = JSON.parse(letter.payload);
    const one = letter.index === null || letter.index === undefined ? body : body.readings[letter.index];
    return { sensor: one.sensor ?? letter.sensor, ts: one.ts ?? "—", value: one.value ?? T.unknownValue };
  } catch {
    return { sensor: letter.sensor || "—", ts: "—", value: T.unknownValue };
  }
}

function confirmAction(letter, action) {
  const reading = readingOf(letter);
  const ts = reading.ts === "—" || reading.ts === undefined ? "—" : formatTime(reading.ts);
  document.getElementById("dl-confirm-title").textContent = T[`${action}Title`];
  document.getElementById("dl-confirm-text").textContent = fill(T[`${action}Text`], {
    sensor: reading.sensor, ts, value: reading.value,
  });
  document.getElementById("dl-confirm-ok").textContent = T[action];
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

/** The letter as stored now (one row of the list: the newest with id below id + 1). */
async function fetchLetter(id) {
  const body = await getJson(`${config.urls.list}?before=${id + 1}&limit=1`, { timeout: REQUEST_TIMEOUT_MS });
  return body.items.find((item) => item.id === id);
}

async function act(letter, action, row) {
  if (action !== "reprocess" && !(await confirmAction(letter, action))) return;
  const buttons = row.querySelectorAll(".dl-buttons button");
  const outcome = row.querySelector(".dl-outcome");
  for (const button of buttons) button.disabled = true;
  outcome.dataset.kind = "working";
  outcome.textContent = T.working;
  try {
    const url = config.urls.reprocess.replace("/0/reprocess", `/${letter.id}/reprocess`);
    const answer = await request("POST", url, { body: { action }, timeout: REQUEST_TIMEOUT_MS });
    const { body } = answer;
    if (!answer.ok) throw new Error(body.message || String(answer.status));
    if (!body.resolution) {
      const reasons = (body.rejected || []).map((r) => `${config.reasons[r.reason] || r.reason} (${r.reason})`);
      outcome.dataset.kind = "refused";
      outcome.textContent = fill(T.stillRefused, { reasons: reasons.join("、") || "—" });
      for (const button of buttons) button.disabled = false;
      refreshSoon();
      return;
    }
    const now = (await fetchLetter(letter.id)) || { ...letter, resolved: true, resolution: body.resolution };
    row.replaceWith(renderRow(now));
    refreshSoon();
  } catch (error) {
    outcome.dataset.kind = "error";
    outcome.textContent = `${T.failed} ${error.message}`;
    for (const button of buttons) button.disabled = false;
  }
}

// --- the list ----------------------------------------------------------------------------

let nextBefore = null;
let newestId = 0; // the newest id the list has asked for under the current filters
let loading = 0; // generation: a newer load makes an older answer moot

function setListState() {
  const count = list.children.length;
  list.dataset.count = String(count);
  list.dataset.state = count ? "ready" : "empty";
  empty.hidden = count > 0;
  older.hidden = nextBefore === null;
}

async function load({ append = false } = {}) {
  const generation = ++loading;
  if (!append) {
    list.dataset.state = "loading";
    status.textContent = T.loading;
  }
  older.disabled = true;
  try {
    const extra = { limit: config.pageSize };
    if (append && nextBefore !== null) extra.before = nextBefore;
    const body = await getJson(`${config.urls.list}?${query(extra)}`, { timeout: REQUEST_TIMEOUT_MS });
    if (generation !== loading) return;
    if (!append) list.replaceChildren();
    for (const letter of body.items) list.append(renderRow(letter));
    if (!append && body.items.length) newestId = Math.max(newestId, body.items[0].id);
    nextBefore = body.next_before;
    setListState();
    status.textContent = fill(T.updated, { time: clock.format(new Date()) });
  } catch {
    if (generation !== loading) return;
    list.dataset.state = "error";
    status.textContent = T.loadFailed;
  } finally {
    older.disabled = false;
  }
}

/** Rows newer than the newest shown, put on top. */
async function showFresh() {
  const body = await getJson(`${config.urls.list}?${query({ limit: config.pageSize })}`, { timeout: REQUEST_TIMEOUT_MS });
  const newer = body.items.filter((item) => item.id > newestId);
  const shown = new Set([...list.children].map((li) => Number(li.dataset.id)));
  for (const letter of newer.reverse()) {
    if (!shown.has(letter.id)) list.prepend(renderRow(letter, true));
  }
  if (body.items.length) newestId = Math.max(newestId, body.items[0].id);
  setListState();
}

// --- chips and polling -------------------------------------------------------------------

function showSummary(summary) {
  const which = filters.resolved ? "total" : "unresolved";
  for (const chip of chips) {
    const code = chip.dataset.reason;
    const count = code ? (summary.reasons[code] || { total: 0, unresolved: 0 }) : summary;
    chip.querySelector(".dl-chip-count").textContent = number.format(count[which]);
    chip.dataset.count = String(count[which]);
    chip.hidden = Boolean(code) && count.total === 0 && filters.reason !== code;
    chip.setAttribute("aria-pressed", String(code === filters.reason));
  }
}

let pollTimer = null;
let lastLatest = null; // the summary's newest id at the previous poll

async function poll() {
  window.clearTimeout(pollTimer);
  try {
    const summary = await getJson(`${config.urls.summary}?${query({}, false)}`, { timeout: REQUEST_TIMEOUT_MS });
    showSummary(summary);
    const latest = summary.latest_id || 0;
    const moved = lastLatest === null ? latest > newestId : latest > lastLatest;
    if (moved && list.dataset.state !== "loading") await showFresh();
    lastLatest = latest;
    status.textContent = fill(T.updated, { time: clock.format(new Date()) });
  } catch {
    status.textContent = T.loadFailed;
  }
  pollTimer = window.setTimeout(poll, config.interval);
}

function refreshSoon() {
  window.clearTimeout(pollTimer);
  pollTimer = window.setTimeout(poll, 300);
}

function restart() {
  writeAddress();
  newestId = 0;
  lastLatest = null;
  nextBefore = null;
  for (const chip of chips) chip.setAttribute("aria-pressed", String(chip.dataset.reason === filters.reason));
  load().then(poll);
}

for (const chip of chips) {
  chip.addEventListener("click", () => {
    filters.reason = chip.dataset.reason;
    restart();
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  filters.gateway = form.elements.gateway.value.trim();
  filters.sensor = form.elements.sensor.value.trim();
  filters.resolved = form.elements.resolved.checked;
  restart();
});
form.elements.resolved.addEventListener("change", () => form.requestSubmit());
form.addEventListener("reset", () => {
  Object.assign(filters, { reason: "", gateway: "", sensor: "", resolved: false });
  window.setTimeout(restart, 0); // after the form has cleared its fields
});

older.addEventListener("click", () => load({ append: true }));
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refreshSoon();
});

readAddress();
restart();
