// The check-in page (depot/templates/depot/checkin.html): scan the items that come back, or a
// member's or team's code to see their open check-outs and take one back whole; say for each item
// whether it is good, damaged (it goes to repair) or lost, with a note; confirm with
// POST /api/v1/depot/checkins. The answer says what became of each item, which check-outs closed,
// and that damaged items went to repair.

import { el } from "../dom.js";
import { request, Unreachable } from "../api.js";
import { config, fill, quantity, say, scanField, top, W, when } from "./desk.js";

const T = JSON.parse(document.getElementById("checkin-words").textContent);
const WANT = ["item", ...(config.incidents ? ["member", "team", "incident"] : ["member", "team"])];
const CONDITIONS = ["ok", "damaged", "lost"];

const desk = document.getElementById("desk");
const holderBox = document.getElementById("holder");
const openList = document.getElementById("open-list");
const list = document.getElementById("lines");
const empty = document.getElementById("lines-empty");
const count = document.getElementById("line-count");
const problems = document.getElementById("problems");
const confirm = document.getElementById("confirm");
const result = document.getElementById("result");

// lines: {kind: "item", code, name, from, condition, note} | {kind: "stock", type, name, unit,
// whole, qty, out, checkout}
const state = { holder: null, lines: [], sending: false };

function holderText(to) {
  return fill(W.holderOf, { kind: W.kinds[to.kind] || to.kind, code: to.code });
}

// --- the holder and their open check-outs ----------------------------------------------------

function outstanding(checkout) {
  return checkout.lines.filter((line) => !line.returned_at
    && Number(line.qty) - Number(line.returned_qty) > 0);
}

function takeAll(checkout) {
  const to = holderText(checkout.to);
  for (const line of outstanding(checkout)) {
    if (line.item) {
      if (!state.lines.some((l) => l.kind === "item" && l.code === line.item)) {
        state.lines.push({ kind: "item", code: line.item, name: line.name,
          from: fill(T.from, { holder: to, id: checkout.id }), condition: "ok", note: "" });
      }
    } else {
      const left = Number(line.qty) - Number(line.returned_qty);
      const existing = state.lines.find((l) => l.kind === "stock" && l.type === line.type
        && l.checkout === checkout.id);
      if (existing) existing.out += left;
      else {
        state.lines.push({ kind: "stock", type: line.type, name: line.name, unit: "",
          qty: quantity(left), out: left, checkout: checkout.id,
          from: fill(T.from, { holder: to, id: checkout.id }) });
      }
    }
  }
  update();
}

function renderHolder() {
  const h = state.holder;
  holderBox.hidden = !h;
  openList.hidden = !h;
  holderBox.replaceChildren();
  openList.replaceChildren();
  if (!h) return;
  holderBox.dataset.code = h.code;
  holderBox.append(el("div", { class: "holder-text" },
    el("span", { class: "holder-kind" }, W.kinds[h.kind] || h.kind),
    el("strong", { class: "holder-code" }, h.code),
    el("span", { class: "holder-name" }, h.name),
    el("span", { class: "muted holder-part" },
      h.checkouts.length ? fill(T.holds, { n: h.checkouts.length }) : T.holdsNone)));
  for (const checkout of h.checkouts) {
    const left = outstanding(checkout);
    const take = el("button", { type: "button", class: "btn btn-primary",
      "data-checkout": checkout.id }, fill(T.returnAll, { id: checkout.id }));
    take.disabled = !left.length;
    take.addEventListener("click", () => takeAll(checkout));
    openList.append(el("li", { class: "open", "data-checkout": checkout.id,
      "data-overdue": String(Boolean(checkout.overdue)) },
    el("div", { class: "open-text" },
      el("strong", null, fill(W.checkoutNo, { id: checkout.id })),
      el("span", null, fill(W.due, { time: when(checkout.due) })),
      checkout.overdue ? el("span", { class: "badge-overdue" }, W.overdue) : null,
      el("span", { class: "muted" }, fill(T.outstanding, { n: left.length })),
      el("span", { class: "open-items muted" }, left.map((line) => line.item
        ? `${line.item} ${line.name}` : `${line.name} × ${quantity(Number(line.qty)
          - Number(line.returned_qty))}`).join("、"))),
    take));
  }
}

// --- the lines -------------------------------------------------------------------------------

function conditionPicker(line) {
  const name = `condition-${line.code}`;
  return el("fieldset", { class: "conditions" },
    el("legend", { class: "visually-hidden" }, fill(T.conditionOf, { code: line.code })),
    CONDITIONS.map((condition) => {
      const input = el("input", { type: "radio", name, value: condition,
        checked: line.condition === condition });
      input.addEventListener("change", () => {
        line.condition = condition;
        refresh();
      });
      return el("label", { class: "condition", "data-condition": condition }, input,
        el("span", null, T.conditions[condition]));
    }));
}

function itemLine(line) {
  const noteInput = el("input", { type: "text", class: "note", maxlength: "200",
    value: line.note, placeholder: T.notePlaceholder,
    "aria-label": fill(T.noteOf, { code: line.code }) });
  noteInput.addEventListener("input", () => {
    line.note = noteInput.value;
  });
  return [
    el("div", { class: "line-main" },
      el("span", { class: "line-code" }, line.code),
      el("span", { class: "line-name" }, line.name),
      line.from ? el("span", { class: "line-bin muted" }, line.from) : null),
    el("div", { class: "line-return" }, conditionPicker(line), noteInput),
    line.blocked ? el("p", { class: "line-why" }, line.blocked) : null,
  ];
}

function stockLine(line) {
  const qty = el("input", { type: "number", inputmode: "decimal", min: "0", step: "any",
    value: line.qty, class: "qty", "aria-label": fill(T.qtyOf, { name: line.name,
      unit: line.unit }) });
  qty.addEventListener("input", () => {
    line.qty = qty.value;
    refresh();
  });
  return [
    el("div", { class: "line-main" },
      el("span", { class: "line-code" }, line.type),
      el("span", { class: "line-name" }, line.name),
      el("span", { class: "line-bin muted" }, line.from)),
    el("div", { class: "line-stock" },
      el("label", { class: "qty-field" }, el("span", null, T.qty), qty,
        el("span", { class: "unit muted" }, fill(T.of, { n: quantity(line.out) })))),
    line.blocked ? el("p", { class: "line-why" }, line.blocked) : null,
  ];
}

function renderLines() {
  list.replaceChildren(...state.lines.map((line) => {
    const remove = el("button", { type: "button", class: "btn btn-secondary btn-remove",
      "aria-label": fill(W.removeLabel, { code: line.code || line.type }) }, W.remove);
    remove.addEventListener("click", () => {
      state.lines = state.lines.filter((other) => other !== line);
      update();
    });
    return el("li", { class: "line", "data-kind": line.kind, "data-code": line.code || line.type,
      "data-condition": line.condition || "", "data-state": line.blocked ? "blocked" : "ok" },
    el("div", { class: "line-body" }, line.kind === "item" ? itemLine(line) : stockLine(line)),
    remove);
  }));
}

function valid(line) {
  return line.kind === "item" || (Number(line.qty) > 0 && Number(line.qty) <= line.out);
}

function refresh() {
  desk.dataset.lines = String(state.lines.length);
  count.textContent = state.lines.length ? fill(T.lines, { n: state.lines.length }) : "";
  empty.hidden = state.lines.length > 0;
  for (const li of list.children) {
    const line = state.lines.find((l) => (l.code || l.type) === li.dataset.code);
    if (line) li.dataset.condition = line.condition || "";
  }
  confirm.disabled = state.sending || !state.lines.length || !state.lines.every(valid);
}

function update() {
  renderHolder();
  renderLines();
  refresh();
}

// --- scanning --------------------------------------------------------------------------------

function found(answer) {
  say(result, null);
  say(problems, null);
  if (answer.kind !== "item") {
    state.holder = answer;
    update();
    return null;
  }
  if (state.lines.some((line) => line.kind === "item" && line.code === answer.code)) {
    return fill(W.twice, { code: answer.code });
  }
  if (answer.status !== "out") {
    return fill(T.notOut, { code: answer.code, status: W.status[answer.status] || answer.status });
  }
  const holder = answer.holder;
  state.lines.push({ kind: "item", code: answer.code, name: answer.name, condition: "ok",
    note: "", from: holder ? fill(T.from, { holder: holderText(holder.to), id: holder.checkout })
      : "" });
  update();
  return null;
}

const field = scanField({ want: () => WANT, onFound: found });

// --- confirming ------------------------------------------------------------------------------

function body() {
  return {
    items: state.lines.filter((l) => l.kind === "item").map((l) => ({
      code: l.code, condition: l.condition, ...(l.note.trim() ? { note: l.note.trim() } : {}) })),
    stock: state.lines.filter((l) => l.kind === "stock").map((l) => ({
      type: l.type, qty: Number(l.qty), checkout: l.checkout })),
  };
}

function done(answer) {
  const known = new Map(state.lines.map((l) => [l.code || l.type, l.name]));
  const repairs = answer.items.filter((i) => i.repair);
  result.replaceChildren(
    el("p", { class: "result-head" }, fill(T.done, { n: answer.items.length
      + answer.stock.length })),
    repairs.length ? el("p", { class: "result-repair" }, fill(T.repaired, { n: repairs.length }))
      : null,
    el("ul", { class: "result-lines" },
      answer.items.map((item) => el("li", { "data-item": item.code, "data-status": item.status },
        el("strong", null, item.code), " ", known.get(item.code) || "", " — ",
        fill(T.back[item.status] || item.status, { id: item.repair }))),
      answer.stock.map((line) => el("li", { "data-type": line.type },
        fill(T.stockBack, { qty: quantity(line.qty), type: known.get(line.type) || line.type })))),
    el("ul", { class: "result-checkouts" }, answer.checkouts.map((c) => {
      const left = outstanding(c).length;
      return el("li", { "data-checkout": c.id, "data-open": String(c.open) },
        c.open ? fill(T.stillOpen, { id: c.id, n: left }) : fill(T.closed, { id: c.id }));
    })));
  result.hidden = false;
  result.dataset.tone = "ok";
  state.lines = [];
  state.holder = null;
  update();
  field.focus();
  top();
}

function refused(items) {
  const shown = items.map((entry) => {
    const status = entry.status === "not_out" ? T.statusNotOut
      : entry.status === "more_than_out" ? T.moreThanOut : W.status[entry.status] || entry.status;
    const line = state.lines.find((l) => (l.code || l.type) === entry.code);
    if (line) line.blocked = fill(T.notOut, { code: entry.code, status });
    return el("li", { "data-code": entry.code }, el("strong", null, entry.code), " — ", status);
  });
  update();
  problems.replaceChildren(el("span", null, T.refused), el("ul", null, shown));
  problems.hidden = false;
  problems.dataset.tone = "error";
}

confirm.addEventListener("click", async () => {
  if (confirm.disabled) return;
  await field.idle();
  state.sending = true;
  refresh();
  say(problems, T.sending, "info");
  let answer;
  try {
    answer = await request("POST", config.urls.checkins, { body: body(), timeout: 30000 });
  } catch (error) {
    if (!(error instanceof Unreachable) && error.name !== "TimeoutError") throw error;
    answer = null;
  } finally {
    state.sending = false;
  }
  if (!answer) say(problems, W.unreachable, "error");
  else if (answer.ok) {
    say(problems, null);
    done(answer.body);
  } else if (answer.status === 409 && Array.isArray(answer.body.items)) {
    refused(answer.body.items);
  } else say(problems, answer.body.message || `HTTP ${answer.status}`, "error");
  refresh();
});

document.getElementById("clear").addEventListener("click", () => {
  state.lines = [];
  state.holder = null;
  say(result, null);
  say(problems, null);
  update();
  field.focus();
});

update();
desk.dataset.ready = "true";
