// The rota calendar (dispatch/roster/templates/roster/rota.html): each shift of the coming days
// with its squad, its cover per rule (GET /api/v1/rota/coverage) and its crew, leave and swaps
// (GET /api/v1/rota for the same span); a shift with a gap is red and names who could fill it.
// Editors record leave (POST /api/v1/rota/leave) and ask for swaps (POST /api/v1/rota/swaps);
// the commander approves or rejects pending ones. `roster` events reload it.
// #rota keeps data-state (loading | ready | error), data-shifts and data-gaps.

import { ApiError, fieldMessage, getJson, request } from "../api.js";
import { el } from "../dom.js";
import {
  W, catalogueOf, config, day, fill, live, memberUrl, skillName, when,
} from "./common.js";

const T = JSON.parse(document.getElementById("rota-words").textContent);
const list = document.getElementById("rota");
const summary = document.getElementById("rota-summary");
const rulesLine = document.getElementById("rota-rules");
const pendingBox = document.getElementById("pending");
const status = document.getElementById("page-status");
const RETRY_MS = 10000;

let catalogue = new Map();
let members = []; // every member, for the forms
let shifts = []; // the coming shifts: coverage joined with the crew
let retry = null;

const names = () => new Map(members.map((m) => [m.code, m.name]));

function say(words, kind = "ok") {
  status.hidden = !words;
  status.className = `alert alert-${kind}`;
  status.textContent = words || "";
}

// --- a shift ---------------------------------------------------------------------------------

function person(code, name) {
  return el("a", { href: memberUrl(code), class: "person" }, name || code,
    el("span", { class: "person-code" }, code));
}

function coverChips(shift) {
  return el("ul", { class: "cover", "aria-label": T.covered }, shift.rules.map((rule) => {
    const ok = rule.have >= rule.min;
    return el("li", { class: "cover-chip", "data-skill": rule.skill, "data-ok": String(ok),
      title: rule.members.join(", ") },
    el("span", null, skillName(catalogue, rule.skill)),
    el("b", null, `${rule.have}/${rule.min}`));
  }));
}

function gapBlock(shift) {
  if (!shift.gaps.length) return null;
  const fills = new Map((shift.fill || []).map((f) => [f.skill, f.members]));
  return el("div", { class: "gaps", role: "note" }, shift.gaps.map((gap) => {
    const who = fills.get(gap.skill) || [];
    return el("div", { class: "gap", "data-skill": gap.skill, "data-missing": String(gap.missing) },
      el("p", { class: "gap-what" }, el("span", { class: "gap-tag" }, T.gap),
        fill(T.missing, { skill: skillName(catalogue, gap.skill), n: gap.missing })),
      el("p", { class: "gap-fill" }, T.fill, " ", who.length
        ? el("span", { class: "fill-list" }, who.map((m) => el("span", {
          class: "fill-member", "data-code": m.code, "data-rested": String(m.rested) },
        person(m.code, m.name), el("span", { class: "fill-rest" },
          m.rested ? T.rested : T.notRested))))
        : el("span", { class: "muted" }, T.nobody)));
  }));
}

function changes(shift) {
  const known = names();
  const lines = [
    ...(shift.leave || []).map((l) => el("li", { class: "change", "data-kind": "leave",
      "data-id": String(l.id) }, el("span", { class: "change-tag" }, T.leave),
    fill(T.leaveText, { member: `${known.get(l.member) || l.member} (${l.member})`,
      start: when(l.start), end: when(l.end) }), l.reason ? ` · ${l.reason}` : "")),
    ...(shift.swaps || []).map((s) => el("li", { class: "change", "data-kind": "swap",
      "data-id": String(s.id), "data-status": s.status }, el("span", { class: "change-tag" },
      T.swap),
    fill(T.swapText, { member: `${known.get(s.member) || s.member} (${s.member})`,
      with: `${known.get(s.with) || s.with} (${s.with})` }),
    el("span", { class: "swap-status", "data-status": s.status }, T.statuses[s.status]))),
  ];
  return lines.length ? el("ul", { class: "changes" }, lines) : null;
}

function shiftItem(shift, now) {
  const current = Date.parse(shift.start) <= now && now < Date.parse(shift.end);
  return el("li", { class: "shift", "data-start": shift.start, "data-squad": shift.squad || "",
    "data-gaps": String(shift.gaps.length), "data-current": current ? "true" : null },
  el("div", { class: "shift-head" },
    el("span", { class: "shift-day" }, day(shift.start)),
    el("span", { class: "shift-time" }, `${when(shift.start)} – ${when(shift.end)}`),
    el("span", { class: "squad-tag", "data-squad": shift.squad || "" },
      shift.squad ? fill(T.squad, { squad: shift.squad }) : T.noSquad),
    el("span", { class: "crew muted" }, fill(T.crew, { n: (shift.members || []).length })),
    current ? el("span", { class: "now-tag" }, T.now) : null,
    el("span", { class: "shift-state", "data-ok": String(!shift.gaps.length) },
      shift.gaps.length ? T.gap : T.covered)),
  shift.rules.length ? coverChips(shift) : null,
  gapBlock(shift),
  changes(shift));
}

// --- pending swaps ---------------------------------------------------------------------------

function pendingItem(swap) {
  const known = names();
  const gaps = (swap.gaps || []).map((g) => fill(T.missing, { skill: skillName(catalogue, g.skill),
    n: g.missing })).join("；");
  const item = el("li", { "data-id": String(swap.id) },
    el("p", { class: "pending-what" },
      fill(T.swapText, { member: `${known.get(swap.member) || swap.member} (${swap.member})`,
        with: `${known.get(swap.with) || swap.with} (${swap.with})` }),
      el("span", { class: "muted" }, ` · ${fill(T.shiftOf, { date: when(swap.shift) })}`)),
    gaps ? el("p", { class: "pending-gaps" }, fill(T.opensGaps, { gaps })) : null,
    swap.created_by ? el("p", { class: "muted" }, fill(T.requestedBy, { name: swap.created_by }))
      : null);
  if (config.canApprove) {
    const buttons = ["approve", "reject"].map((action) => {
      const button = el("button", { type: "button", class: `btn ${action === "approve"
        ? "btn-primary" : "btn-secondary"}`, "data-action": action }, T[action]);
      button.addEventListener("click", () => decide(swap, action, item));
      return button;
    });
    item.append(el("div", { class: "pending-actions" }, buttons));
  }
  return item;
}

async function decide(swap, action, item) {
  for (const button of item.querySelectorAll("button")) button.disabled = true;
  const url = config.urls[action].replace("/0/", `/${swap.id}/`);
  try {
    const answer = await request("POST", url, { body: {} });
    if (!answer.ok) throw new ApiError(answer.status, answer.body);
    say(fill(T.decided, { status: T.statuses[answer.body.status] || answer.body.status }));
    await load();
  } catch (error) {
    say(error.message, "error");
    for (const button of item.querySelectorAll("button")) button.disabled = false;
  }
}

function showPending(items) {
  pendingBox.hidden = items.length === 0;
  pendingBox.querySelector(".pending-list").replaceChildren(...items.map(pendingItem));
}

// --- loading ---------------------------------------------------------------------------------

function span(from, to) {
  return `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
}

async function load() {
  window.clearTimeout(retry);
  try {
    const coverage = await getJson(`${config.urls.coverage}?days=${config.days}`);
    const [crews, pending, rules] = await Promise.all([
      getJson(`${config.urls.rota}?${span(coverage.from, coverage.to)}`),
      getJson(`${config.urls.swaps}?status=pending`),
      getJson(config.urls.rules),
    ]);
    const byStart = new Map((crews.shifts || []).map((s) => [s.start, s]));
    shifts = (coverage.shifts || []).map((s) => ({ ...(byStart.get(s.start) || {}), ...s }));
    const now = Date.now();
    list.replaceChildren(...shifts.map((s) => shiftItem(s, now)));
    const gaps = shifts.filter((s) => s.gaps.length).length;
    list.dataset.shifts = String(shifts.length);
    list.dataset.gaps = String(gaps);
    list.dataset.state = "ready";
    summary.textContent = fill(T.summary, { shifts: shifts.length, gaps });
    rulesLine.textContent = rules.length
      ? fill(T.rules, { rules: rules.map((r) => `${skillName(catalogue, r.skill)} ≥ ${r.min}`)
        .join("、") })
      : T.noRules;
    showPending(pending.items || []);
    if (status.classList.contains("alert-error")) say(null);
  } catch (error) {
    list.dataset.state = "error";
    say(`${W.failed} ${error.message}`, "error");
    retry = window.setTimeout(load, RETRY_MS);
  }
}

// --- forms (commanders and dispatchers) ------------------------------------------------------

// A wall-clock time on the rota's clock ("2026-12-06T08:00") as an instant: the zone's offset
// at that moment, found by formatting a first guess in the zone.
function zonedIso(wall) {
  const guess = new Date(`${wall}:00Z`);
  if (Number.isNaN(guess.getTime())) return null;
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: config.timezone,
    hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit" }).formatToParts(guess).map((p) => [p.type, p.value]));
  const shown = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day),
    Number(parts.hour), Number(parts.minute), Number(parts.second));
  return new Date(guess.getTime() - (shown - guess.getTime())).toISOString();
}

function memberOptions(select, codes) {
  const known = names();
  select.replaceChildren(...codes.map((c) => el("option", { value: c },
    `${known.get(c) || c} (${c})`)));
}

function formError(form, words) {
  const box = form.querySelector(".alert");
  box.hidden = !words;
  box.textContent = words || "";
}

function dialog(id, prepare, submit) {
  const box = document.getElementById(id);
  const form = box.querySelector("form");
  box.querySelector("[data-close]").addEventListener("click", () => box.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError(form, null);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const words = await submit(form);
      box.close();
      say(words);
      await load();
    } catch (error) {
      const label = error.field && form.querySelector(`label[for="${form.id.split("-")[0]}-${
        error.field}"]`);
      formError(form, error instanceof ApiError ? fieldMessage(error, label && label.textContent)
        : error.message);
    } finally {
      button.disabled = false;
    }
  });
  return () => {
    formError(form, null);
    prepare(form);
    box.showModal();
  };
}

async function post(url, body) {
  const answer = await request("POST", url, { body });
  if (!answer.ok) throw new ApiError(answer.status, answer.body);
  return answer;
}

function setUpForms() {
  const openLeave = dialog("leave-dialog", (form) => {
    memberOptions(form.elements.member, members.map((m) => m.code));
  }, async (form) => {
    const f = form.elements;
    if (!f.member.value || !f.start.value || !f.end.value) throw new Error(T.required);
    const start = zonedIso(f.start.value);
    const end = zonedIso(f.end.value);
    if (!start || !end || end <= start) throw new Error(T.endBeforeStart);
    const answer = await post(config.urls.leave, { member: f.member.value, start, end,
      reason: f.reason.value.trim() });
    const gaps = (answer.body.gaps || []).length;
    return gaps ? fill(T.leaveGaps, { n: gaps }) : T.leaveSaved;
  });
  document.getElementById("leave-open").addEventListener("click", openLeave);

  const crewOf = (start) => {
    const shift = shifts.find((s) => s.start === start);
    return shift ? (shift.members || []).map((m) => m.code) : [];
  };
  const swapForm = document.getElementById("swap-form");
  const fillMembers = () => {
    const crew = crewOf(swapForm.elements.shift.value);
    memberOptions(swapForm.elements.member, crew);
    memberOptions(swapForm.elements.with, members.map((m) => m.code)
      .filter((c) => !crew.includes(c)));
  };
  swapForm.elements.shift.addEventListener("change", fillMembers);
  const openSwap = dialog("swap-dialog", (form) => {
    form.elements.shift.replaceChildren(...shifts.map((s) => el("option", { value: s.start },
      `${when(s.start)} · ${s.squad ? fill(T.squad, { squad: s.squad }) : T.noSquad}`)));
    fillMembers();
  }, async (form) => {
    const f = form.elements;
    if (!f.shift.value || !f.member.value || !f.with.value) throw new Error(T.required);
    const answer = await post(config.urls.swaps, { member: f.member.value, with: f.with.value,
      shift: f.shift.value });
    return answer.body.status === "approved" ? T.swapApproved : T.swapPending;
  });
  document.getElementById("swap-open").addEventListener("click", openSwap);
}

// --- start -----------------------------------------------------------------------------------

async function start() {
  try {
    const [skills, everyone] = await Promise.all([getJson(config.urls.skills),
      getJson(config.urls.members)]);
    catalogue = catalogueOf(skills);
    members = everyone.items || [];
  } catch (error) {
    say(`${W.failed} ${error.message}`, "error");
  }
  if (config.canEdit) setUpForms();
  await load();
}

start();
let reloading = null;
live().then((channel) => {
  if (!channel) return;
  channel.socket.on("roster", () => {
    window.clearTimeout(reloading);
    reloading = window.setTimeout(load, 300);
  });
});
