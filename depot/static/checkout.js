// The check-out page (depot/templates/depot/checkout.html): scan who takes it (a member or a
// team), then items, a kit or bulk stock; set the due time; confirm with
// POST /api/v1/depot/checkouts. An item that cannot go out says why as soon as it is scanned, and
// the page will not send a check-out that would be refused; a 409 (another keeper was faster)
// marks each item with its reason. A kit scanned alone is picked by the depot; a kit with items
// scanned must be covered by them (the API checks: 422 kit_short).

import { el } from "../dom.js";
import { request, Unreachable } from "../api.js";
import { config, fill, quantity, reasonText, say, scanField, top, W, when } from "./desk.js";

const T = JSON.parse(document.getElementById("checkout-words").textContent);
const HOLDERS = config.incidents ? ["member", "team", "incident"] : ["member", "team"];
const WHAT = ["item", "kit", "stock"];

const desk = document.getElementById("desk");
const holderBox = document.getElementById("holder");
const kitBox = document.getElementById("kit");
const list = document.getElementById("lines");
const empty = document.getElementById("lines-empty");
const count = document.getElementById("line-count");
const due = document.getElementById("due");
const note = document.getElementById("note");
const siteField = document.getElementById("site-field");
const site = document.getElementById("site");
const problems = document.getElementById("problems");
const confirm = document.getElementById("confirm");
const result = document.getElementById("result");
const label = document.getElementById("scan-label");

// holder: the scan answer of a member, team or incident; kit: a kit's; lines: items and stock.
const state = { holder: null, kit: null, lines: [], sending: false };

for (const s of config.sites) site.append(el("option", { value: s.code }, `${s.code} · ${s.name}`));
if (config.sites.length) site.value = localStorage.getItem("depot.site") || "";
site.addEventListener("change", () => localStorage.setItem("depot.site", site.value));

function pad(n) {
  return String(n).padStart(2, "0");
}

/** A datetime-local value on the tablet's clock. */
function localInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${
    pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function resetDue() {
  due.value = localInput(new Date(Date.now() + config.defaultDueH * 3600 * 1000));
}

function holderName(holder) {
  const kind = T.holderKind[holder.kind] || holder.kind;
  return holder.name && holder.name !== holder.code
    ? `${kind} ${holder.code} · ${holder.name}` : `${kind} ${holder.code}`;
}

// --- what the page shows ---------------------------------------------------------------------

function renderHolder() {
  const h = state.holder;
  holderBox.hidden = !h;
  holderBox.replaceChildren();
  if (!h) return;
  const change = el("button", { type: "button", class: "btn btn-secondary", id: "holder-change" },
    W.change);
  change.addEventListener("click", () => {
    state.holder = null;
    update();
  });
  holderBox.dataset.kind = h.kind;
  holderBox.dataset.code = h.code;
  holderBox.append(
    el("div", { class: "holder-text" },
      el("span", { class: "holder-kind" }, T.holderKind[h.kind] || h.kind),
      el("strong", { class: "holder-code" }, h.code),
      el("span", { class: "holder-name" }, h.name),
      h.part_of ? el("span", { class: "muted holder-part" }, h.part_of) : null),
    change);
}

/** How many of each type the scanned items and stock lines give (to follow a kit). */
function given() {
  const counts = new Map();
  for (const line of state.lines) {
    const type = line.kind === "item" ? line.data.type.code : line.data.code;
    const n = line.kind === "item" ? 1 : Number(line.qty) || 0;
    counts.set(type, (counts.get(type) || 0) + n);
  }
  return counts;
}

function renderKit() {
  const kit = state.kit;
  kitBox.hidden = !kit;
  kitBox.replaceChildren();
  siteField.hidden = !kit || state.lines.length > 0 || config.sites.length < 2;
  if (!kit) return;
  const have = given();
  const own = state.lines.length > 0;
  const remove = el("button", { type: "button", class: "btn btn-secondary btn-remove",
    "aria-label": T.removeKit }, W.remove);
  remove.addEventListener("click", () => {
    state.kit = null;
    update();
  });
  kitBox.dataset.code = kit.code;
  kitBox.append(
    el("div", { class: "kit-head" },
      el("strong", null, fill(T.kitTitle, { code: kit.code, name: kit.name })), remove),
    el("ul", { class: "kit-lines" }, kit.lines.map((line) => {
      const short = own ? (have.get(line.type) || 0) < line.count : line.short;
      return el("li", { "data-type": line.type, "data-short": String(short) },
        el("span", { class: "kit-name" }, line.name),
        el("span", { class: "kit-count" }, own
          ? fill(T.kitLine, { given: quantity(have.get(line.type) || 0), count: line.count })
          : `× ${line.count}`),
        el("span", { class: "kit-ready muted" }, fill(T.kitReady, { n: quantity(line.ready) })),
        line.blocked ? el("span", { class: "line-why" }, line.blocked)
          : short && !own ? el("span", { class: "line-why" }, T.kitShort) : null);
    })),
    el("p", { class: "muted kit-note" }, own ? T.kitOwn : T.kitPick));
}

function itemLine(line) {
  const item = line.data;
  const why = line.blocked || (item.available ? null : reasonText(item.reason, item));
  return [
    el("div", { class: "line-main" },
      el("span", { class: "line-code" }, item.code),
      el("span", { class: "line-name" }, item.name),
      item.bin ? el("span", { class: "line-bin muted" }, fill(W.bin, { bin: item.bin })) : null),
    why ? el("p", { class: "line-why" }, fill(T.cannot, { why })) : null,
  ];
}

function stockLine(line) {
  const stock = line.data;
  const id = `qty-${stock.code}`;
  const qty = el("input", { id, type: "number", inputmode: "decimal", min: "0",
    step: stock.whole_units ? "1" : "0.001", value: line.qty, class: "qty",
    "aria-label": fill(T.qtyOf, { name: stock.name, unit: stock.unit }) });
  qty.addEventListener("input", () => {
    line.qty = qty.value;
    line.blocked = null;
    renderKit();
    refresh();
  });
  const bin = el("select", { class: "bin", "aria-label": T.fromBin },
    stock.bins.map((b) => el("option", { value: b.bin },
      fill(T.inBin, { bin: b.bin, qty: `${quantity(b.quantity)} ${stock.unit}` }))));
  bin.value = line.bin;
  bin.addEventListener("change", () => {
    line.bin = bin.value;
    line.blocked = null;
    refresh();
  });
  const why = line.blocked || (stock.bins.length ? null : T.none);
  return [
    el("div", { class: "line-main" },
      el("span", { class: "line-code" }, stock.code),
      el("span", { class: "line-name" }, stock.name)),
    el("div", { class: "line-stock" },
      el("label", { class: "qty-field" }, el("span", null, T.qty), qty,
        el("span", { class: "unit" }, stock.unit)),
      stock.bins.length ? el("label", { class: "bin-field" }, el("span", null, T.fromBin), bin)
        : null),
    why ? el("p", { class: "line-why" }, fill(T.cannot, { why })) : null,
  ];
}

function blocked(line) {
  if (line.blocked) return true;
  if (line.kind === "item") return !line.data.available;
  const qty = Number(line.qty);
  return !line.data.bins.length || !(qty > 0);
}

function renderLines() {
  list.replaceChildren(...state.lines.map((line) => {
    const remove = el("button", { type: "button", class: "btn btn-secondary btn-remove",
      "aria-label": fill(W.removeLabel, { code: line.data.code }) }, W.remove);
    remove.addEventListener("click", () => {
      state.lines = state.lines.filter((other) => other !== line);
      update();
    });
    return el("li", { class: "line", "data-kind": line.kind, "data-code": line.data.code,
      "data-state": blocked(line) ? "blocked" : "ok" },
    el("div", { class: "line-body" }, line.kind === "item" ? itemLine(line) : stockLine(line)),
    remove);
  }));
}

/** Counts, the step, what the field asks for and whether the check-out may go. */
function refresh() {
  const n = state.lines.length + (state.kit ? state.kit.lines.length : 0);
  desk.dataset.step = state.holder ? "what" : "who";
  desk.dataset.lines = String(state.lines.length);
  count.textContent = n ? fill(T.lines, { n }) : "";
  empty.hidden = n > 0;
  label.textContent = state.holder ? T.step.what : T.step.who;
  for (const li of list.children) {
    const line = state.lines.find((l) => l.data.code === li.dataset.code);
    if (line) li.dataset.state = blocked(line) ? "blocked" : "ok";
  }
  const stuck = state.lines.some(blocked);
  confirm.disabled = state.sending || !state.holder || !n || stuck;
  // A refusal from the hub stays until the next scan; the page's own hint follows the list.
  if (problems.dataset.kept === "true") return;
  if (state.holder && n && stuck) say(problems, T.fixFirst, "error");
  else if (problems.dataset.tone === "error") say(problems, null);
}

function update() {
  renderHolder();
  renderKit();
  renderLines();
  refresh();
}

// --- scanning --------------------------------------------------------------------------------

function found(answer) {
  say(result, null);
  problems.dataset.kept = "false";
  if (HOLDERS.includes(answer.kind)) {
    state.holder = answer;
    update();
    return null;
  }
  if (answer.kind === "kit") {
    if (state.kit && state.kit.code === answer.code) return fill(W.twice, { code: answer.code });
    state.kit = answer;
    update();
    return null;
  }
  if (state.lines.some((line) => line.data.code === answer.code)) {
    return fill(W.twice, { code: answer.code });
  }
  if (answer.kind === "stock") {
    state.lines.push({ kind: "stock", data: answer, qty: "1",
      bin: answer.bins.length ? answer.bins[0].bin : "" });
  } else {
    state.lines.push({ kind: "item", data: answer });
  }
  update();
  return null;
}

const field = scanField({ want: () => (state.holder ? WHAT : HOLDERS), onFound: found });

// --- confirming ------------------------------------------------------------------------------

function body() {
  const items = state.lines.filter((l) => l.kind === "item").map((l) => l.data.code);
  const stock = state.lines.filter((l) => l.kind === "stock")
    .map((l) => ({ type: l.data.code, qty: Number(l.qty), bin: l.bin }));
  const answer = { to: { [state.holder.kind]: state.holder.code }, items, stock,
    due: new Date(due.value).toISOString() };
  if (note.value.trim()) answer.note = note.value.trim();
  if (state.kit) {
    answer.kit = state.kit.code;
    if (!items.length && !stock.length && site.value) answer.site = site.value;
  }
  return answer;
}

function names() {
  const known = new Map();
  for (const line of state.lines) {
    known.set(line.kind === "item" ? line.data.type.code : line.data.code, line.data.name);
  }
  for (const line of (state.kit ? state.kit.lines : [])) known.set(line.type, line.name);
  return known;
}

/** A 409: each item (or kit line, or stock line) that cannot go out is marked with why. */
function refused(items) {
  const shown = [];
  for (const entry of items) {
    const why = W.reasons[entry.reason] || entry.reason;
    const line = state.lines.find((l) => l.data.code === entry.code);
    const kitLine = state.kit && state.kit.lines.find((l) => l.type === entry.code);
    if (line) line.blocked = why;
    else if (kitLine) kitLine.blocked = entry.available !== undefined
      ? `${why} (${quantity(entry.available)} / ${quantity(entry.needed ?? kitLine.count)})`
      : why;
    const name = line ? line.data.name : kitLine ? kitLine.name : "";
    shown.push(el("li", { "data-code": entry.code, "data-reason": entry.reason },
      el("strong", null, entry.code), name ? ` ${name}` : "", " — ", why));
  }
  update();
  problems.replaceChildren(el("span", null, T.refused), el("ul", null, shown));
  problems.hidden = false;
  problems.dataset.tone = "error";
  problems.dataset.kept = "true";
}

function done(answer) {
  const known = names();
  const holder = holderName(state.holder);
  result.replaceChildren(
    el("p", { class: "result-head" }, fill(T.done, { id: answer.id, n: answer.lines.length,
      holder, due: when(answer.due) })),
    answer.picked ? el("p", null, T.picked) : null,
    el("ul", { class: "result-lines" }, answer.lines.map((line) => el("li", {
      "data-item": line.item || "", "data-type": line.type },
    el("strong", null, line.item || line.type), " ", known.get(line.type) || line.type,
    line.item ? "" : ` × ${quantity(line.qty)}`,
    line.bin ? el("span", { class: "muted" }, " · ", fill(W.bin, { bin: line.bin })) : null))));
  result.hidden = false;
  result.dataset.tone = "ok";
  result.dataset.checkout = String(answer.id);
  clear();
  top();
}

function clear() {
  state.holder = null;
  state.kit = null;
  state.lines = [];
  note.value = "";
  problems.dataset.kept = "false";
  say(problems, null);
  resetDue();
  update();
  field.focus();
}

confirm.addEventListener("click", async () => {
  if (confirm.disabled) return;
  if (!state.holder) return say(problems, T.needWho, "error");
  if (!due.value || Number.isNaN(new Date(due.value).getTime())) {
    return say(problems, fill(W.due, { time: "?" }), "error");
  }
  await field.idle();
  state.sending = true;
  refresh();
  say(problems, T.sending, "info");
  say(result, null);
  let answer;
  try {
    answer = await request("POST", config.urls.checkouts, { body: body(), timeout: 30000 });
  } catch (error) {
    if (!(error instanceof Unreachable) && error.name !== "TimeoutError") throw error;
    answer = null;
  } finally {
    state.sending = false;
  }
  if (!answer) {
    say(problems, W.unreachable, "error");
  } else if (answer.status === 201) {
    say(problems, null);
    done(answer.body);
  } else if (answer.status === 409 && Array.isArray(answer.body.items)) {
    refused(answer.body.items);
  } else {
    problems.dataset.kept = "true";
    say(problems, answer.body.message || `HTTP ${answer.status}`, "error");
  }
  refresh();
});

document.getElementById("clear").addEventListener("click", () => {
  say(result, null);
  clear();
});

resetDue();
update();
desk.dataset.ready = "true";
