// The roster list (dispatch/roster/templates/roster/roster.html): GET /api/v1/members with the
// filters as its query (q, team, squad, skill, status, expiring), the skills catalogue for the
// skills' names, and the teams and squads for the filters. #roster keeps data-state
// (loading | ready | error) and data-count for people and tests.

import { getJson } from "../api.js";
import { el } from "../dom.js";
import {
  W, catalogueOf, config, fill, live, memberUrl, problem, skillChip, statusBadge,
} from "./common.js";

const table = document.getElementById("roster");
const body = table.querySelector("tbody");
const form = document.getElementById("filters");
const count = document.getElementById("roster-count");
const empty = document.getElementById("roster-empty");
const SEARCH_DELAY_MS = 250;
const RETRY_MS = 10000;

let catalogue = new Map();
let teamNames = new Map();
let request = null;
let retry = null;

function option(value, words) {
  return el("option", { value }, words);
}

function fillFilters(skills, teams) {
  const named = (code) => (teamNames.get(code) ? `${teamNames.get(code)} (${code})` : code);
  form.elements.team.append(...teams.filter((t) => !t.parent).map((t) =>
    option(t.code, named(t.code))));
  form.elements.squad.append(...teams.filter((t) => t.parent).map((t) =>
    option(t.code, named(t.code))));
  form.elements.skill.append(...skills.map((s) =>
    option(s.code, (document.documentElement.lang.startsWith("zh") ? s.name_zh : s.name_en)
      || s.name_zh)));
  form.elements.status.append(...W.statusOrder.map((code) => option(code, W.status[code].label)));
}

function query() {
  const params = new URLSearchParams();
  for (const name of ["q", "team", "squad", "skill", "status"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  if (form.elements.expiring.checked) params.set("expiring", String(config.warnDays));
  return params;
}

function row(m) {
  const team = [m.team ? teamNames.get(m.team) || m.team : null, m.squad].filter(Boolean);
  return el("tr", { "data-code": m.code, "data-status": m.status },
    el("th", { scope: "row" },
      el("a", { href: memberUrl(m.code), class: "member-link" },
        el("span", { class: "member-name" }, m.name),
        el("span", { class: "member-code" }, m.code))),
    el("td", { class: "team" }, team.length ? team.join(" · ") : "—"),
    el("td", { class: "skills" }, m.skills.length
      ? el("span", { class: "skill-list" }, m.skills.map((s) => skillChip(s, catalogue)))
      : "—"),
    el("td", { class: "status" }, statusBadge(m.status)));
}

async function load() {
  window.clearTimeout(retry);
  if (request) request.abort();
  request = new AbortController();
  table.dataset.state = "loading";
  try {
    const answer = await getJson(`${config.urls.members}?${query()}`, { signal: request.signal });
    const items = answer.items || [];
    body.replaceChildren(...items.map(row));
    table.dataset.count = String(items.length);
    table.dataset.state = "ready";
    empty.hidden = items.length > 0;
    count.textContent = fill(W.count, { n: items.length });
    problem(null);
  } catch (error) {
    if (error && error.name === "AbortError") return;
    table.dataset.state = "error";
    problem(`${W.failed} ${error.message}`);
    retry = window.setTimeout(load, RETRY_MS);
  }
}

async function start() {
  try {
    const [skills, teams] = await Promise.all([getJson(config.urls.skills),
      getJson(config.urls.teams)]);
    catalogue = catalogueOf(skills);
    teamNames = new Map((teams.items || []).map((t) => [t.code, t.name]));
    fillFilters(skills.items || [], teams.items || []);
  } catch (error) {
    problem(`${W.failed} ${error.message}`);
  }
  await load();
}

let typing = null;
form.addEventListener("input", (event) => {
  window.clearTimeout(typing);
  typing = window.setTimeout(load, event.target.type === "search" ? SEARCH_DELAY_MS : 0);
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});

start();
// Duty statuses change at shift change and with leave and swaps (`roster` events).
live().then((channel) => {
  if (channel) channel.socket.on("roster", () => load());
});
