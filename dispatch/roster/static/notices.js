// The commander's notices on the office home page (dispatch/templates/home.html #notices): the
// rota's coverage gaps ahead and certificates expiring soon (GET /api/v1/rota/notices), each in
// the page's language, linking to the rota or the member; a `notice` event adds one at once,
// a `roster` event (leave, swaps, rules, shift change) reloads the list.
// #notices keeps data-state (loading | ready | error) and data-count.

import { getJson } from "../api.js";
import { el } from "../dom.js";

const box = document.getElementById("notices");
const words = JSON.parse(document.getElementById("notice-words").textContent);
const chinese = (document.documentElement.lang || "zh-CN").startsWith("zh");
const list = box.querySelector(".notice-list");
const RETRY_MS = 15000;
const notices = new Map(); // key -> notice, in the order they came
let retry = null;

const fill = (template, values) => String(template).replace(/\{(\w+)\}/g,
  (whole, key) => (key in values ? String(values[key]) : whole));

function link(notice) {
  if (notice.kind === "certificate_expiring" && notice.member) {
    return words.memberPage.replace("CODE", encodeURIComponent(notice.member));
  }
  return words.rota;
}

function item(notice) {
  const text = (notice.text && (chinese ? notice.text.zh : notice.text.en)) || notice.key;
  const fillers = Array.isArray(notice.fill) ? notice.fill : [];
  return el("li", { "data-kind": notice.kind, "data-key": notice.key },
    el("span", { class: "notice-kind" }, notice.kind === "coverage_gap" ? words.gap
      : words.expiry),
    el("span", { class: "notice-text" }, el("a", { href: link(notice) }, text),
      fillers.length ? el("span", { class: "notice-fill" },
        fill(words.fill, { names: fillers.join("、") })) : null));
}

function show() {
  // Gaps first (they leave a shift short), then certificates; each in order of time.
  const items = [...notices.values()].sort((a, b) =>
    Number(b.kind === "coverage_gap") - Number(a.kind === "coverage_gap"));
  list.replaceChildren(...items.map(item));
  box.dataset.count = String(items.length);
  box.querySelector('[data-field="count"]').textContent = fill(words.count, { n: items.length });
  box.querySelector(".notice-none").hidden = items.length > 0;
}

async function load() {
  window.clearTimeout(retry);
  try {
    const answer = await getJson(words.url, { timeout: 10000 });
    notices.clear();
    for (const n of answer.items || []) notices.set(n.key, n);
    show();
    box.dataset.state = "ready";
    box.querySelector(".notice-failed").hidden = true;
  } catch {
    box.dataset.state = "error";
    box.querySelector(".notice-failed").hidden = false;
    retry = window.setTimeout(load, RETRY_MS);
  }
}

load();
if (document.getElementById("live")) {
  import("../live.js").then(({ socket }) => {
    socket.on("notice", (notice) => {
      if (!notice || typeof notice.key !== "string") return;
      notices.set(notice.key, notice);
      show();
    });
    let reloading = null;
    socket.on("roster", () => {
      window.clearTimeout(reloading);
      reloading = window.setTimeout(load, 500);
    });
  });
}
