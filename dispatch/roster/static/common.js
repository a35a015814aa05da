// What the roster pages share (dispatch/roster/pages.py renders the JSON block #roster-config):
// the page's config and words, skill chips whose certificate expiry is coloured (expired red,
// expiring within the warning days amber), duty-status badges coloured from
// dispatch.roster.choices, the age of a fix in words, and times on the rota's clock.
// Everything from the data becomes text (../dom.js), never HTML.

import { el } from "../dom.js";

export const config = JSON.parse(document.getElementById("roster-config").textContent);
export const W = config.words;
export const lang = document.documentElement.lang || "zh-CN";
export const chinese = lang.startsWith("zh");

/** "{name} …" with each {key} replaced by its value. */
export function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (whole, key) =>
    (key in values ? String(values[key]) : whole));
}

/** A skill's name in the page's language, from the catalogue (GET /api/v1/skills). */
export function skillName(catalogue, code) {
  const skill = catalogue.get(code);
  if (!skill) return code;
  return (chinese ? skill.name_zh : skill.name_en) || skill.name_zh || code;
}

/** Skills by code from the catalogue's answer. */
export function catalogueOf(answer) {
  return new Map(((answer && answer.items) || []).map((s) => [s.code, s]));
}

// ISO dates compare as text; the warning limit is today + warnDays on the calendar.
function addDays(iso, days) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

const warnUntil = addDays(config.today, Number(config.warnDays) || 30);

/** "expired" (before today), "soon" (within the warning days), "valid", or "none". */
export function expiryState(expires) {
  if (!expires) return "none";
  if (expires < config.today) return "expired";
  if (expires <= warnUntil) return "soon";
  return "valid";
}

/** The certificate's expiry in words ("expired 2026-11-20", "expires …", "valid until …"). */
export function expiryText(expires) {
  const state = expiryState(expires);
  return state === "none" ? W.expiry.none : fill(W.expiry[state], { date: expires });
}

/** A skill chip: name and level; a certificate's expiry coloured by how near it is. */
export function skillChip(held, catalogue) {
  const state = expiryState(held.expires);
  const title = [fill(W.level, { n: held.level }), expiryText(held.expires)].join(" · ");
  return el("span", { class: "skill", "data-skill": held.skill, "data-expiry": state, title },
    el("span", { class: "skill-name" }, skillName(catalogue, held.skill)),
    el("span", { class: "skill-level", "aria-hidden": "true" }, "★".repeat(held.level || 1)),
    state === "expired" || state === "soon"
      ? el("span", { class: "skill-expiry" }, expiryText(held.expires)) : null);
}

/** The duty status as a coloured badge with its word. */
export function statusBadge(status) {
  const known = W.status[status];
  return el("span", { class: "status-badge", "data-status": status,
    style: known ? { "--status": known.colour } : null }, known ? known.label : status || "—");
}

/** How long ago, in words: "just now", "42 s ago", "5 min ago", "3 h ago", "2 days ago". */
export function ageText(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return W.age.never;
  const s = Math.max(0, Math.round(seconds));
  if (s < 10) return W.age.now;
  if (s < 60) return fill(W.age.seconds, { n: s });
  if (s < 3600) return fill(W.age.minutes, { n: Math.floor(s / 60) });
  if (s < 86400) return fill(W.age.hours, { n: Math.floor(s / 3600) });
  return fill(W.age.days, { n: Math.floor(s / 86400) });
}

/** How stale a fix is, for styling: fresh (< 5 min), recent (< 30 min), old (< 2 h), stale. */
export function ageClass(seconds) {
  if (seconds === null || seconds === undefined) return "none";
  if (seconds < 300) return "fresh";
  if (seconds < 1800) return "recent";
  if (seconds < 7200) return "old";
  return "stale";
}

const zone = config.timezone || undefined;
const shortFormat = new Intl.DateTimeFormat(lang, { timeZone: zone, month: "numeric",
  day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const timeFormat = new Intl.DateTimeFormat(lang, { timeZone: zone, hour: "2-digit",
  minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const dayFormat = new Intl.DateTimeFormat(lang, { timeZone: zone, month: "numeric",
  day: "numeric", weekday: "short" });

/** A time on the rota's clock: "12/6 周六 08:00". */
export function when(iso) {
  return iso ? shortFormat.format(new Date(iso)) : "—";
}

/** Only the day: "12/6 周六". */
export function day(iso) {
  return iso ? dayFormat.format(new Date(iso)) : "—";
}

/** Only the clock time with seconds. */
export function clock(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "—";
}

/** A member's page. */
export function memberUrl(code) {
  return config.urls.memberPage.replace("CODE", encodeURIComponent(code));
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
