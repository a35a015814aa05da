// The alert panel beside the map (maps/templates/map.html #alert-panel): the active alerts,
// newest first, each in its level's colour, with what the person's role may do with it
// (DESIGN §5 "Alerts (contract)": commander everything; dispatcher acknowledges; others read).
//
// - List from GET /api/v1/alerts, kept current by the `alert` events of /live (map.js passes
//   them to take()) and fetched again every minute; an action's answer updates the list at once.
// - Clicking an alert selects it: map.js highlights its villages (and its gauge or zone).
// - A new alert (event raised or upgraded) is seen and heard: the panel unfolds, the item
//   flashes, the title gets "(N) " (N alerts nobody acknowledged yet) and a short alarm sounds
//   once the page may play sound (after the first click or key: the hint says so).
// - Clear and cancel ask for a reason in a small form; the API refuses them without one (400).
//
// #alert-panel keeps data-state (loading | ready | error), data-count (active alerts) and
// data-unseen; each item data-id, data-kind, data-level, data-state and data-cap.

import { ApiError, request } from "../api.js";
import { el } from "../dom.js";
import {
  Alarm,
  AlertBook,
  UNSEEN,
  capLabel,
  colourOf,
  kindLabel,
  levelLabel,
  ruleRows,
  severity,
  showCount,
  stateLabel,
} from "../warnings.js";

const ACKNOWLEDGERS = new Set(["commander", "dispatcher"]);
const NEW_EVENTS = new Set(["raised", "upgraded"]);
// The rule's numbers worth a line in the panel (the alert page shows them all).
const BRIEF = ["window_h", "observed_mm", "threshold_mm", "event_mm", "intensity_mm_h",
  "threshold_mm_h", "velocity_mm_d", "threshold_mm_d", "windows"];
const FOLD_KEY = "rescuehub.map.alerts";
// The list again now and then: roles outside the office room get no `alert` events, and a
// missed one must not leave the panel wrong for long.
const REFRESH_MS = 60000;
const NARROW = "(max-width: 900px)";

export class AlertPanel {
  /**
   * box: the #alert-panel element; options: {words, urls, role, lang, onSelect(alert|null),
   * onAlerts(list), onFold()}.
   */
  constructor(box, options) {
    this.box = box;
    this.W = options.words;
    this.urls = options.urls;
    this.role = options.role || "";
    this.onSelect = options.onSelect || (() => {});
    this.onAlerts = options.onAlerts || (() => {});
    this.onFold = options.onFold || (() => {});
    this.number = new Intl.NumberFormat(options.lang, { maximumFractionDigits: 1 });
    this.time = new Intl.DateTimeFormat(options.lang, { month: "numeric", day: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    this.list = box.querySelector(".ap-list");
    this.summary = box.querySelector(".ap-summary");
    this.empty = box.querySelector(".ap-empty");
    this.problem = box.querySelector(".ap-problem");
    this.toggle = box.querySelector(".ap-toggle");
    this.forms = new Map(); // alert id -> its open reason form (kept across re-renders)
    this.errors = new Map(); // alert id -> the last refusal's message
    this.busy = new Set(); // alert ids with a request in flight
    this.fresh = new Set(); // alert ids raised or upgraded since the person last looked
    this.selected = null;
    this.book = new AlertBook(this.urls.alerts, (_book, message) => this.changed(message));
    this.alarm = new Alarm(box.querySelector(".ap-sound"), {
      waiting: this.W.soundWaiting, armed: this.W.soundArmed });
    this.chosen = recall(FOLD_KEY); // a person's own choice on this device, kept
    this.toggle.addEventListener("click", () => {
      this.fold(!this.box.classList.contains("folded"));
      this.chosen = this.box.classList.contains("folded") ? "folded" : "open";
      remember(FOLD_KEY, this.chosen);
    });
    // Without a choice, a narrow screen (a tablet held upright) keeps the panel folded while
    // nothing is active: the map comes first. A new alert unfolds it anywhere.
    this.narrow = window.matchMedia(NARROW);
    this.fold(this.chosen ? this.chosen === "folded" : this.narrow.matches);
  }

  async load() {
    window.clearTimeout(this.timer);
    let again = REFRESH_MS;
    try {
      await this.book.load();
      this.box.dataset.state = "ready";
      this.problem.hidden = true;
    } catch (error) {
      this.box.dataset.state = "error";
      this.problem.hidden = false;
      this.problem.textContent = `${this.W.loadFailed} ${messageOf(error)}`;
      again = 10000;
    }
    this.timer = window.setTimeout(() => this.load(), again);
  }

  /** One `alert` event from /live. */
  take(message) {
    this.book.take(message);
  }

  fold(folded) {
    this.box.classList.toggle("folded", folded);
    this.toggle.setAttribute("aria-expanded", String(!folded));
    this.toggle.title = folded ? this.W.unfold : this.W.fold;
    this.onFold();
  }

  changed(message) {
    const alerts = this.book.list();
    if (message && NEW_EVENTS.has(message.event) && message.alert) {
      this.fresh.add(message.alert.id);
      this.alarm.beep(severity(message.alert) >= 3 ? 3 : 2);
      if (this.box.classList.contains("folded")) this.fold(false);
    }
    for (const id of [...this.fresh]) {
      if (!this.book.byId.has(id) || !UNSEEN.has(this.book.byId.get(id).state)) {
        this.fresh.delete(id);
      }
    }
    if (!this.chosen && this.narrow.matches && !message) this.fold(alerts.length === 0);
    if (this.selected !== null && !this.book.byId.has(this.selected)) this.select(null);
    else if (this.selected !== null) this.onSelect(this.book.byId.get(this.selected));
    this.render(alerts);
    showCount(this.book.unseen());
    this.onAlerts(alerts);
  }

  select(id) {
    this.selected = id;
    if (id !== null) this.fresh.delete(id);
    this.onSelect(id === null ? null : this.book.byId.get(id) || null);
    this.render(this.book.list());
  }

  render(alerts) {
    this.box.dataset.count = String(alerts.length);
    this.box.dataset.unseen = String(this.book.unseen());
    this.box.querySelector('[data-field="count"]').textContent = String(alerts.length);
    this.box.classList.toggle("has-alerts", alerts.length > 0);
    this.box.classList.toggle("has-unseen", this.book.unseen() > 0);
    this.empty.hidden = !this.book.loaded || alerts.length > 0;
    this.summary.replaceChildren(...levelCounts(alerts).map(({ alert, n }) =>
      el("li", { "data-kind": alert.kind, "data-level": alert.level,
        style: { "--level": colourOf(alert.level) } },
      el("span", { class: "ap-level" }, levelLabel(alert)),
      el("span", { class: "ap-kind" }, kindLabel(alert.kind)), el("strong", null, String(n)))));
    for (const id of [...this.forms.keys()]) if (!this.book.byId.has(id)) this.forms.delete(id);
    // A live event while someone types a reason must not take the cursor away.
    const focused = this.list.contains(document.activeElement) ? document.activeElement : null;
    this.list.replaceChildren(...alerts.map((a) => this.item(a)));
    if (focused && focused.isConnected) focused.focus();
  }

  item(alert) {
    const selected = this.selected === alert.id;
    const villages = alert.villages || [];
    const meta = [
      `${this.W.raisedAt} ${this.time.format(new Date(alert.raised_at))}`,
      stateLabel(alert.state),
      villages.length ? this.W.villages.replace("N", this.number.format(villages.length)) : null,
      alert.people ? this.W.people.replace("N", this.number.format(alert.people)) : null,
    ].filter(Boolean).join(" · ");
    const summary = el("button", { type: "button", class: "ap-select",
      "aria-pressed": String(selected), title: this.W.selectHint },
    el("span", { class: "ap-top" },
      el("span", { class: "ap-level", "data-field": "level" }, levelLabel(alert)),
      el("span", { class: "ap-kind", "data-field": "kind" }, kindLabel(alert.kind))),
    el("span", { class: "ap-subject", "data-field": "subject" },
      el("span", { class: "ap-name" }, alert.subject.name || alert.subject.code),
      el("span", { class: "ap-code" }, alert.subject.code)),
    el("span", { class: "ap-meta", "data-field": "meta" }, meta));
    summary.addEventListener("click", () => this.select(selected ? null : alert.id));
    const numbers = ruleRows(alert.rule, this.number, BRIEF)
      .map(([, label, value]) => `${label} ${value}`).join(" · ");
    const cap = alert.cap && alert.cap.status !== "none"
      ? el("p", { class: "ap-cap", "data-field": "cap" }, `${this.W.publicWarning}${capLabel(
        alert.cap.status)}`) : null;
    const error = this.errors.get(alert.id);
    return el("li", { class: `ap-item${this.fresh.has(alert.id) ? " ap-new" : ""}${
      selected ? " selected" : ""}`, "data-id": alert.id, "data-kind": alert.kind,
    "data-level": alert.level, "data-state": alert.state,
    "data-cap": alert.cap ? alert.cap.status : "none", style: { "--level": colourOf(alert.level) } },
    summary,
    numbers ? el("p", { class: "ap-rule", "data-field": "rule" }, numbers) : null,
    cap,
    this.actions(alert),
    error ? el("p", { class: "ap-error", role: "alert" }, error) : null,
    this.forms.get(alert.id) || null);
  }

  actions(alert) {
    const buttons = [];
    const busy = this.busy.has(alert.id);
    const button = (action, words, cls = "") => {
      const b = el("button", { type: "button", class: `ap-btn ${cls}`.trim(),
        "data-action": action, disabled: busy }, words);
      b.addEventListener("click", () => this.act(alert, action));
      buttons.push(b);
    };
    if (ACKNOWLEDGERS.has(this.role) && UNSEEN.has(alert.state)) {
      button("ack", this.W.ack, "ap-primary");
    }
    if (this.role === "commander") {
      const cap = alert.cap ? alert.cap.status : "none";
      if (cap === "draft") button("approve", this.W.approve);
      if (cap === "approved") button("publish", this.W.publish, "ap-primary");
      button("clear", this.W.clear);
      button("cancel", this.W.cancel, "ap-quiet");
    }
    return el("div", { class: "ap-actions" }, buttons,
      el("a", { class: "ap-details", href: this.urls.alertPage.replace(/0$/, String(alert.id)) },
        this.W.details));
  }

  act(alert, action) {
    if (action === "clear" || action === "cancel") {
      this.openForm(alert, action);
      return;
    }
    this.send(alert, action, undefined);
  }

  openForm(alert, action) {
    const words = action === "clear"
      ? { title: this.W.clearTitle, submit: this.W.clearSubmit }
      : { title: this.W.cancelTitle, submit: this.W.cancelSubmit };
    const fieldId = `ap-reason-${alert.id}`;
    const reason = el("textarea", { id: fieldId, name: "reason", rows: "2", maxlength: "1000",
      class: "ap-reason-text" });
    const problem = el("p", { class: "ap-form-error", role: "alert", hidden: true });
    const back = el("button", { type: "button", class: "ap-btn ap-quiet" }, this.W.back);
    const form = el("form", { class: "ap-reason", "data-action": action, novalidate: true },
      el("label", { for: fieldId }, words.title),
      reason,
      el("p", { class: "ap-hint" }, this.W.reasonHint),
      problem,
      el("div", { class: "ap-actions" },
        el("button", { type: "submit", class: "ap-btn ap-primary" }, words.submit), back));
    back.addEventListener("click", () => {
      this.forms.delete(alert.id);
      this.render(this.book.list());
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        problem.hidden = false;
        problem.textContent = this.W.reasonRequired;
        reason.focus();
        return;
      }
      this.send(alert, action, { reason: text }, problem);
    });
    this.forms.set(alert.id, form);
    this.render(this.book.list());
    reason.focus();
  }

  async send(alert, action, body, problem = null) {
    this.busy.add(alert.id);
    this.errors.delete(alert.id);
    this.render(this.book.list());
    const url = this.urls.alertAction.replace(/0\/ACTION$/, `${alert.id}/${action}`);
    let answer;
    try {
      answer = await request("POST", url, { body: body || {}, timeout: 15000 });
    } catch (error) {
      answer = { ok: false, body: { message: messageOf(error) } };
    }
    this.busy.delete(alert.id);
    if (answer.ok) {
      this.forms.delete(alert.id);
      this.fresh.delete(alert.id);
      this.book.take({ event: action, alert: answer.body });
      return;
    }
    const words = (answer.body && answer.body.message) || this.W.failed;
    if (problem && this.forms.has(alert.id)) {
      problem.hidden = false;
      problem.textContent = words;
    } else {
      this.errors.set(alert.id, words);
    }
    // Closed meanwhile (409 alert_closed): the list is out of date.
    if (answer.body && answer.body.error === "alert_closed") this.load();
    else this.render(this.book.list());
  }
}

// How many active alerts at each kind's level, the most severe first.
function levelCounts(alerts) {
  const counts = new Map();
  for (const alert of alerts) {
    const key = `${alert.kind}:${alert.level}`;
    counts.set(key, { alert, n: (counts.has(key) ? counts.get(key).n : 0) + 1 });
  }
  return [...counts.values()].sort((a, b) => severity(b.alert) - severity(a.alert)
    || b.n - a.n);
}

function messageOf(error) {
  if (error instanceof ApiError) return error.message;
  return (error && error.message) || "";
}

function recall(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function remember(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // storage disabled: the choice lasts until the page is left
  }
}
