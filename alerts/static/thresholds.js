// A village's threshold editor (alerts/templates/thresholds.html): the critical-rainfall table of
// DESIGN §5 (windows_h; prepare and evacuate, each dry/normal/wet; antecedent_mm) as inputs, with
// the rain of the windows ending now above each column (the wettest of the village's gauges, from
// GET /api/v1/sensors/<gauge>/sums) and every cell that rain reaches marked. The soil row that
// applies now is named from the antecedent rain (as alerts.rules.soil_state: unknown is wet).
// Saving sends PUT; a 422 `bad_thresholds` answer lists cells [{path, why}], each shown beside
// its input (`data-path`), the rest in a list.
//
// #th-form keeps data-state (loading | ready | saving | saved | bad | error).

import { ApiError, getJson, request } from "../api.js";
import { el } from "../dom.js";

const config = JSON.parse(document.getElementById("th-config").textContent);
const T = config.labels;
const lang = document.documentElement.lang || "zh-CN";
const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 });
const LEVELS = ["prepare", "evacuate"];
const SOILS = ["dry", "normal", "wet"];
const DEFAULT = { gauges: [], windows_h: [1, 3, 6], antecedent_mm: { dry_below: 15, wet_above: 50 } };

const form = document.getElementById("th-form");
const table = document.getElementById("th-table");
const status = document.getElementById("th-status");
const problems = document.getElementById("th-problems");
const soilLine = document.getElementById("th-soil");
let windows = [];
let now = { windows: {}, antecedent: null, gauges: [] }; // the sums of the gauges compared with
let inside = []; // rain gauges registered in this village (used when the table names none)

// "1h", "3h", "30m": how telemetry names its windows (alerts.rules.window_name).
function windowName(hours) {
  if (Number.isInteger(hours)) return `${hours}h`;
  const minutes = hours * 60;
  if (hours < 1 && Number.isInteger(minutes)) return `${minutes}m`;
  return `${hours}h`;
}

function parseList(text) {
  return text.split(/[,，、\s]+/).map((s) => s.trim()).filter(Boolean);
}

// A cell's value as the API wants it: a number when it reads as one, else the text (the API
// names it).
function value(text) {
  const t = String(text).trim();
  if (t === "") return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

function cellInput(level, soil, i, v) {
  const path = `${level}.${soil}[${i}]`;
  const input = el("input", { name: path, "data-path": path, inputmode: "decimal",
    autocomplete: "off", disabled: !config.canEdit, "aria-label":
      `${T[level]} · ${T.soils[soil]} · ${T.window.replace("H", number.format(windows[i]))}` });
  input.value = v === null || v === undefined ? "" : String(v);
  input.addEventListener("input", mark);
  return el("td", null, input, el("span", { class: "th-why", "data-why": path, hidden: true }));
}

function build(doc) {
  const head = el("tr", null, el("th", { scope: "col", colspan: "2" }),
    windows.map((h, i) => el("th", { scope: "col", "data-window": i },
      el("span", { class: "th-window" }, T.window.replace("H", number.format(h))),
      el("span", { class: "th-now", "data-now": i, title: T.nowHint }, ""))));
  table.tHead.replaceChildren(head);
  const rows = [];
  for (const level of LEVELS) {
    SOILS.forEach((soil, k) => {
      const given = (doc[level] && doc[level][soil]) || [];
      rows.push(el("tr", { "data-level": level, "data-soil": soil },
        k === 0 ? el("th", { scope: "rowgroup", rowspan: "3", class: "th-level" }, T[level])
          : null,
        el("th", { scope: "row", class: "th-soil-name" }, T.soils[soil]),
        windows.map((_h, i) => cellInput(level, soil, i, given[i]))));
    });
  }
  table.tBodies[0].replaceChildren(...rows);
  showNow();
}

function current() {
  const rows = {};
  for (const level of LEVELS) {
    rows[level] = {};
    for (const soil of SOILS) {
      rows[level][soil] = windows.map((_h, i) =>
        value(form.elements[`${level}.${soil}[${i}]`].value));
    }
  }
  return rows;
}

function documentNow() {
  return {
    gauges: parseList(form.elements.gauges.value),
    windows_h: parseList(form.elements.windows.value).map(value),
    ...current(),
    antecedent_mm: { dry_below: value(form.elements.dry_below.value),
      wet_above: value(form.elements.wet_above.value) },
  };
}

// --- the rain now --------------------------------------------------------------------------

async function loadNow() {
  const named = parseList(form.elements.gauges.value);
  const gauges = named.length ? named : inside;
  const answers = await Promise.all(gauges.map((code) =>
    getJson(config.urls.sums.replace(/CODE(?=\/sums$)/, encodeURIComponent(code)))
      .catch(() => null)));
  const windowsNow = {};
  let antecedent = null;
  for (const a of answers.filter(Boolean)) {
    for (const [name, w] of Object.entries(a.windows || {})) {
      if (w.mm === null || w.mm === undefined) continue;
      if (!windowsNow[name] || w.mm > windowsNow[name].mm) windowsNow[name] = w;
    }
    if (typeof a.antecedent_mm === "number") antecedent = Math.max(antecedent ?? 0, a.antecedent_mm);
  }
  now = { windows: windowsNow, antecedent, gauges: gauges.filter((_g, i) => answers[i]) };
  showNow();
}

function soilNow() {
  const dry = Number(form.elements.dry_below.value);
  const wet = Number(form.elements.wet_above.value);
  if (now.antecedent === null || !Number.isFinite(wet) || now.antecedent >= wet) return "wet";
  if (Number.isFinite(dry) && now.antecedent < dry) return "dry";
  return "normal";
}

function showNow() {
  windows.forEach((h, i) => {
    const cell = table.querySelector(`[data-now="${i}"]`);
    if (!cell) return;
    const w = now.windows[windowName(h)];
    cell.textContent = !now.gauges.length ? "" : w
      ? `${T.now} ${number.format(w.mm)} mm${w.complete < 0.995 ? ` (${percent.format(w.complete)})`
        : ""}` : `${T.now} ${T.noData}`;
    cell.dataset.mm = w ? String(w.mm) : "";
  });
  const soil = soilNow();
  soilLine.textContent = !now.gauges.length ? T.noGauges : now.antecedent === null
    ? T.soilUnknown
    : T.soilNow.replace("MM", number.format(now.antecedent)).replace("SOIL", T.soils[soil]);
  for (const row of table.tBodies[0].rows) {
    row.classList.toggle("th-applies", Boolean(now.gauges.length) && row.dataset.soil === soil);
  }
  mark();
}

// Cells the rain now reaches (the level they stand for would be raised by them).
function mark() {
  windows.forEach((h, i) => {
    const w = now.windows[windowName(h)];
    for (const level of LEVELS) {
      for (const soil of SOILS) {
        const input = form.elements[`${level}.${soil}[${i}]`];
        const v = Number(input.value);
        const reached = Boolean(w) && input.value !== "" && Number.isFinite(v) && w.mm >= v;
        input.closest("td").classList.toggle("th-reached", reached);
        input.title = reached ? T.reached : "";
      }
    }
  });
}

// --- problems ------------------------------------------------------------------------------

// The API's reason in the page's language where the page knows its code.
function reason(cell) {
  return (cell.code && config.problems[cell.code]) || cell.why;
}

function clearProblems() {
  for (const node of form.querySelectorAll("[data-why]")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  problems.replaceChildren();
  problems.hidden = true;
}

function showProblems(cells) {
  const rest = [];
  for (const cell of cells) {
    const input = form.querySelector(`[data-path="${CSS.escape(cell.path)}"]`)
      || form.querySelector(`[data-path="${CSS.escape(cell.path.replace(/\[\d+\]$/, ""))}"]`);
    if (!input) {
      rest.push(cell);
      continue;
    }
    input.setAttribute("aria-invalid", "true");
    let why = form.querySelector(`[data-why="${CSS.escape(cell.path)}"]`);
    if (!why) {
      why = el("span", { class: "th-why", "data-why": cell.path });
      input.after(why);
    }
    why.hidden = false;
    why.textContent = why.textContent ? `${why.textContent}; ${reason(cell)}` : reason(cell);
  }
  problems.replaceChildren(...rest.map((c) => el("li", { "data-path": c.path },
    el("code", null, c.path), " ", reason(c))));
  problems.hidden = rest.length === 0;
}

// --- load and save -------------------------------------------------------------------------

function fill(doc) {
  form.elements.gauges.value = (doc.gauges || []).join(", ");
  windows = (doc.windows_h || DEFAULT.windows_h).slice();
  form.elements.windows.value = windows.map((h) => String(h)).join(", ");
  const antecedent = doc.antecedent_mm || DEFAULT.antecedent_mm;
  form.elements.dry_below.value = String(antecedent.dry_below ?? "");
  form.elements.wet_above.value = String(antecedent.wet_above ?? "");
  build(doc);
}

async function start() {
  for (const input of form.querySelectorAll(".th-fields input")) input.disabled = !config.canEdit;
  let doc = null;
  try {
    const answer = await request("GET", config.urls.table);
    if (answer.ok) doc = answer.body;
    else if (answer.body.error !== "no_thresholds") throw new ApiError(answer.status, answer.body);
    const gauges = await getJson(config.urls.gauges).catch(() => ({ items: [] }));
    const list = document.getElementById("th-gauges");
    list.replaceChildren(...(gauges.items || []).map((g) => el("option", { value: g.code },
      g.name || g.code)));
    inside = (gauges.items || []).filter((g) => g.village === config.village).map((g) => g.code);
  } catch (error) {
    form.dataset.state = "error";
    status.textContent = `${T.failed} ${(error && error.message) || ""}`;
    return;
  }
  fill(doc || DEFAULT);
  status.textContent = doc ? T.loaded : T.noTable;
  form.dataset.state = "ready";
  loadNow();
}

form.elements.windows.addEventListener("change", () => {
  const rows = current();
  const given = parseList(form.elements.windows.value).map(Number);
  if (!given.length || given.some((h) => !Number.isFinite(h) || h <= 0)) return; // the API says
  windows = given;
  build(rows);
});
form.elements.gauges.addEventListener("change", () => loadNow());
for (const name of ["dry_below", "wet_above"]) form.elements[name].addEventListener("input", showNow);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!config.canEdit) return;
  clearProblems();
  form.dataset.state = "saving";
  status.textContent = T.saving;
  let answer;
  try {
    answer = await request("PUT", config.urls.table, { body: documentNow(), timeout: 15000 });
  } catch (error) {
    answer = { ok: false, status: 0, body: { message: (error && error.message) || "" } };
  }
  if (answer.ok) {
    fill(answer.body);
    form.dataset.state = "saved";
    status.textContent = T.saved;
    loadNow();
    return;
  }
  form.dataset.state = "bad";
  status.textContent = answer.body.cells ? T.bad : answer.body.message || T.bad;
  if (answer.body.cells) showProblems(answer.body.cells);
  else showProblems([{ path: "", why: answer.body.message || "" }]);
});

start();
