// One alert's page (alerts/templates/alert.html): GET /api/v1/alerts/<id> (with its history)
// and GET …/cap (its CAP 1.2 messages, oldest first), drawn as text (../dom.js); reloaded when an
// `alert` event about it arrives on /live. A slope's failure-time forecast is shown as a
// forecast with its fit quality (r², points), never as a certainty.
//
// #alert keeps data-state (loading | ready | error), data-kind, data-level and data-alert-state.

import { getJson } from "../api.js";
import { el } from "../dom.js";
import {
  capLabel,
  colourOf,
  kindLabel,
  levelLabel,
  ruleRows,
  sourceLabel,
  stateLabel,
  vocabulary,
} from "../warnings.js";

const config = JSON.parse(document.getElementById("al-config").textContent);
const T = config.labels;
const lang = document.documentElement.lang || "zh-CN";
const number = new Intl.NumberFormat(lang);
const when = new Intl.DateTimeFormat(lang, { year: "numeric", month: "numeric", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const WEAK_FIT = 0.8; // below this r² the forecast gets a further warning

const root = document.getElementById("alert");
const id = Number(root.dataset.id);
const field = (name) => root.querySelector(`[data-field="${name}"]`);
const part = (name) => root.querySelector(`[data-part="${name}"]`);
const villageNames = new Map();

const time = (iso) => (iso ? el("time", { datetime: iso }, when.format(new Date(iso))) : "—");

function fact(label, value, name) {
  return el("div", { "data-fact": name }, el("dt", null, label), el("dd", null, value));
}

function showHead(a) {
  root.dataset.kind = a.kind;
  root.dataset.level = a.level;
  root.dataset.alertState = a.state;
  root.style.setProperty("--level", colourOf(a.level));
  field("level").textContent = levelLabel(a);
  field("kind").textContent = kindLabel(a.kind);
  field("state").textContent = stateLabel(a.state);
  field("subject").textContent = a.subject.name || a.subject.code;
  field("code").textContent = a.subject.code;
  field("facts").replaceChildren(...[
    fact(T.raisedAt, time(a.raised_at), "raised"),
    fact(T.updatedAt, time(a.updated_at), "updated"),
    a.closed_at ? fact(T.closedAt, time(a.closed_at), "closed") : null,
    a.acknowledged_by ? fact(T.acknowledgedBy, a.acknowledged_by, "acknowledged") : null,
    a.escalation_step ? fact(T.escalation, String(a.escalation_step), "escalation") : null,
    a.people ? fact(T.people, number.format(a.people), "people") : null,
  ].filter(Boolean));
  document.title = `${levelLabel(a)} · ${a.subject.name || a.subject.code} · ${
    document.title.split(" · ").slice(-1)[0]}`;
}

function showRule(a) {
  field("source").textContent = sourceLabel(a.rule);
  const link = field("thresholds-link");
  const village = a.subject.type === "village";
  link.hidden = !village;
  if (village) {
    link.setAttribute("href", config.urls.villageThresholds.replace(/CODE$/,
      encodeURIComponent(a.subject.code)));
  }
  const rows = ruleRows(a.rule, number);
  field("rule").replaceChildren(...(rows.length ? rows.map(([key, label, value]) =>
    el("div", { "data-key": key }, el("dt", null, label), el("dd", null, value)))
    : [el("div", null, el("dt", null, T.noRule))]));
}

function sensorLink(code) {
  return el("a", { href: config.urls.sensorPage.replace(/CODE$/, encodeURIComponent(code)) },
    code);
}

function showEvidence(a) {
  const items = a.evidence || [];
  field("evidence").replaceChildren(...(items.length ? items.map((e) =>
    el("tr", { "data-sensor": e.sensor }, el("td", null, sensorLink(e.sensor)),
      el("td", null, time(e.ts)),
      el("td", { class: "num" }, typeof e.value === "number" ? number.format(e.value) : "—")))
    : [el("tr", null, el("td", { colspan: "3", class: "muted" }, T.noEvidence))]));
}

function showForecast(a) {
  const box = part("forecast");
  const f = a.forecast;
  box.hidden = !f;
  if (!f) return;
  field("forecast").replaceChildren(el("strong", null,
    T.forecast.replace("TIME", when.format(new Date(f.failure_at)))));
  const r2 = typeof f.r2 === "number" ? f.r2 : null;
  field("fit").replaceChildren(...[
    el("div", { "data-key": "r2" }, el("dt", null, T.r2),
      el("dd", null, r2 === null ? "—" : number.format(r2))),
    el("div", { "data-key": "points" }, el("dt", null, T.points),
      el("dd", null, f.points === undefined ? "—" : number.format(f.points))),
    r2 !== null && r2 < WEAK_FIT ? el("div", { class: "al-weak" }, el("dt", null, T.weakFit))
      : null,
  ].filter(Boolean)); // replaceChildren would write a null as the text "null"
}

function showVillages(a) {
  const codes = a.villages || [];
  field("villages").replaceChildren(...(codes.length ? codes.map((code) =>
    el("li", { "data-code": code }, el("span", { class: "al-name" },
      villageNames.get(code) || code), el("span", { class: "al-code" }, code)))
    : [el("li", { class: "muted" }, T.noVillages)]));
}

function showHistory(a) {
  const V = vocabulary();
  field("history").replaceChildren(...(a.history || []).map((h) =>
    el("tr", { "data-state": h.state }, el("td", null, time(h.at)),
      el("td", null, stateLabel(h.state)),
      el("td", null, V.levels[`${a.kind}:${h.level}`] || h.level),
      el("td", null, h.by || "—"),
      el("td", { class: "al-note" }, h.note || ""))));
}

function message(m) {
  const type = m.response === "AllClear" ? T.allClear : T.msgTypes[m.msg_type] || m.msg_type;
  return el("li", { "data-n": m.n, "data-status": m.status },
    el("p", { class: "al-cap-head" },
      el("strong", null, T.message.replace("N", String(m.n))), " ", type, " · ",
      el("span", { class: "al-cap-status" }, capLabel(m.status))),
    el("dl", { class: "rows" },
      el("div", null, el("dt", null, T.identifier), el("dd", null, m.identifier)),
      el("div", null, el("dt", null, T.sent), el("dd", null, time(m.sent_at))),
      m.published_at ? el("div", null, el("dt", null, T.published),
        el("dd", null, time(m.published_at))) : null,
      m.approved_by ? el("div", null, el("dt", null, T.approvedBy),
        el("dd", null, m.approved_by)) : null),
    el("details", null, el("summary", null, T.showXml), el("pre", { class: "al-xml" }, m.xml)));
}

function showCap(a, messages) {
  const link = field("cap-link");
  link.hidden = messages.length === 0;
  if (messages.length) link.setAttribute("href", config.urls.capFile);
  field("cap-status").textContent = messages.length ? capLabel(a.cap.status) : T.noCap;
  field("cap").replaceChildren(...messages.map(message));
}

async function load() {
  try {
    const [a, cap, villages] = await Promise.all([
      getJson(config.urls.alert),
      getJson(config.urls.cap).catch(() => ({ items: [] })),
      villageNames.size ? null : getJson(config.urls.villages).catch(() => ({ items: [] })),
    ]);
    for (const v of (villages && villages.items) || []) villageNames.set(v.code, v.name);
    showHead(a);
    showRule(a);
    showEvidence(a);
    showForecast(a);
    showVillages(a);
    showHistory(a);
    showCap(a, cap.items || []);
    root.dataset.state = "ready";
  } catch (error) {
    root.dataset.state = "error";
    const problem = root.querySelector(".al-problem");
    problem.hidden = false;
    problem.textContent = `${T.failed} ${(error && error.message) || ""}`;
  }
}

load();
if (document.getElementById("live")) {
  import("../live.js").then(({ socket }) => {
    socket.on("alert", (m) => {
      if (m && m.alert && m.alert.id === id) load();
    });
  });
}
