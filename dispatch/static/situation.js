// The situation card of the office home page (dispatch/templates/home.html #situation): what a
// storm looks like at a glance.
//
// - Active warnings by level (counts, then the list, most severe and newest first): GET
//   /api/v1/alerts and the
//   `alert` events of /live (../warnings.js AlertBook); the title counts those nobody has
//   acknowledged and a new one beeps once the page may play sound.
// - Villages at prepare and evacuate with their people: GET /api/v1/villages (the level alerts
//   wrote onto each row), fetched again after every alert event and village `layer` update.
// - Rain gauges at each rainstorm signal, from the active rainstorm alerts.
// - Sensors that went silent (GET /api/v1/sensors, status `missing`, kept by `sensor_status`)
//   and gateways offline (home.js hands over its gateway list).
//
// `onChange({loaded, alerts, silent})` tells home.js, whose status card says "all systems
// normal" only when nothing is active and nothing is silent.

import { getJson } from "./api.js";
import { el } from "./dom.js";
import {
  Alarm,
  AlertBook,
  colourOf,
  kindLabel,
  levelLabel,
  newestFirst,
  severity,
  showCount,
  stateLabel,
  vocabulary,
} from "./warnings.js";

const NEW_EVENTS = new Set(["raised", "upgraded"]);
const SIGNALS = ["red", "orange", "yellow", "blue"];
const REFRESH_MS = 60000;

export class Situation {
  constructor(box, onChange) {
    this.box = box;
    this.onChange = onChange;
    this.W = JSON.parse(document.getElementById("situation-words").textContent);
    const lang = document.documentElement.lang || "zh-CN";
    this.number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    this.time = new Intl.DateTimeFormat(lang, { month: "numeric", day: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    this.villages = [];
    this.sensors = new Map(); // code -> {code, name, kind, status, gateway}
    this.offline = []; // gateways offline: [{code, name}]
    this.loaded = { villages: false, sensors: false }; // the alerts': this.book.loaded
    this.book = new AlertBook(box.dataset.alertsUrl, (_b, message) => this.changed(message));
    this.alarm = new Alarm(box.querySelector(".sit-sound"), {
      waiting: this.W.soundWaiting, armed: this.W.soundArmed });
    this.villageTimer = null;
    vocabulary();
  }

  start(socket) {
    this.loadAlerts();
    this.loadVillages();
    this.loadSensors();
    if (!socket) return;
    socket.on("alert", (message) => {
      this.book.take(message);
      this.villagesSoon();
    });
    socket.on("layer", (message) => {
      if (message && message.layer === "villages") this.villagesSoon();
    });
    socket.on("sensor_status", (message) => this.sensorStatus(message));
  }

  /** After a reconnect: everything again (the replay may not reach back far enough). */
  reload() {
    this.loadAlerts();
    this.loadVillages();
    this.loadSensors();
  }

  /** Gateways from home.js's card: those offline count as silent. */
  gateways(items) {
    this.offline = items.filter((g) => g.active !== false && g.online === false);
    this.render();
  }

  async loadAlerts() {
    window.clearTimeout(this.alertTimer);
    let again = REFRESH_MS; // a missed event must not leave the page wrong for long
    try {
      await this.book.load(); // renders (through changed) once loaded
      this.failed("alerts", false);
    } catch {
      this.failed("alerts", true);
      again = 10000;
    }
    this.alertTimer = window.setTimeout(() => this.loadAlerts(), again);
  }

  villagesSoon() {
    window.clearTimeout(this.villageTimer);
    this.villageTimer = window.setTimeout(() => this.loadVillages(), 300);
  }

  async loadVillages() {
    try {
      const data = await getJson(this.box.dataset.villagesUrl, { timeout: 15000 });
      this.villages = data.items || [];
      this.loaded.villages = true;
      this.failed("villages", false);
    } catch {
      this.failed("villages", true);
      this.villagesSoon();
      return;
    }
    this.render();
  }

  async loadSensors() {
    window.clearTimeout(this.sensorTimer);
    try {
      const data = await getJson(this.box.dataset.sensorsUrl, { timeout: 15000 });
      this.sensors = new Map((data.items || []).map((s) => [s.code, s]));
      this.loaded.sensors = true;
      this.failed("sensors", false);
    } catch {
      this.failed("sensors", true);
    }
    this.sensorTimer = window.setTimeout(() => this.loadSensors(), REFRESH_MS);
    this.render();
  }

  sensorStatus(message) {
    if (!message || typeof message.sensor !== "string") return;
    const known = this.sensors.get(message.sensor);
    if (message.retired) this.sensors.delete(message.sensor);
    else if (known && message.status) known.status = message.status;
    else if (!known) {
      this.loadSensors(); // registered since the page loaded
      return;
    }
    this.render();
  }

  failed(what, yes) {
    this.box.querySelector(`[data-part="${what}"] .sit-failed`).hidden = !yes;
  }

  changed(message) {
    if (message && NEW_EVENTS.has(message.event) && message.alert) {
      this.alarm.beep(severity(message.alert) >= 3 ? 3 : 2);
    }
    showCount(this.book.unseen());
    this.render();
  }

  silent() {
    return [...this.sensors.values()].filter((s) => s.status === "missing" && !s.retired);
  }

  render() {
    const alerts = this.book.list();
    const silent = this.silent();
    const ready = this.book.loaded && this.loaded.sensors;
    this.box.dataset.state = ready ? "ready" : "loading";
    this.box.dataset.alerts = String(alerts.length);
    this.box.dataset.silent = String(silent.length + this.offline.length);
    const top = alerts.reduce((best, a) => (!best || severity(a) > severity(best) ? a : best),
      null);
    this.box.dataset.level = top ? top.level : "none";
    this.box.style.setProperty("--level", top ? colourOf(top.level) : "transparent");
    this.headline(alerts, silent, ready);
    this.renderWarnings(alerts);
    this.renderVillages();
    this.renderGauges(alerts);
    this.renderSilent(silent);
    this.onChange({ loaded: ready, alerts: alerts.length,
      silent: silent.length + this.offline.length });
  }

  headline(alerts, silent, ready) {
    const node = this.box.querySelector('[data-field="headline"]');
    const moving = this.moving();
    let words;
    if (!ready) words = this.W.checking;
    else if (alerts.length) {
      words = this.W.active.replace("N", this.number.format(alerts.length));
      const people = moving.evacuate.people + moving.prepare.people;
      if (people) words += ` · ${this.W.toMove.replace("N", this.number.format(people))}`;
    } else if (silent.length || this.offline.length) words = this.W.quietButSilent;
    else words = this.W.quiet;
    node.textContent = words;
  }

  renderWarnings(alerts) {
    const part = this.box.querySelector('[data-part="alerts"]');
    const counts = new Map();
    for (const a of alerts) {
      const key = `${a.kind}:${a.level}`;
      counts.set(key, { alert: a, n: (counts.get(key) || { n: 0 }).n + 1 });
    }
    const ordered = [...counts.values()].sort((x, y) => severity(y.alert) - severity(x.alert)
      || x.alert.kind.localeCompare(y.alert.kind));
    part.querySelector(".sit-counts").replaceChildren(...ordered.map(({ alert, n }) =>
      el("li", { "data-kind": alert.kind, "data-level": alert.level,
        style: { "--level": colourOf(alert.level) } },
      el("span", { class: "sit-level" }, levelLabel(alert)),
      el("span", { class: "sit-kind" }, kindLabel(alert.kind)),
      el("strong", { class: "sit-n", "data-field": "n" }, this.number.format(n)))));
    // The most severe first (then the newest): in a storm the list is long.
    const listed = [...alerts].sort((x, y) => severity(y) - severity(x) || newestFirst(x, y));
    part.querySelector(".sit-list").replaceChildren(...listed.map((a) =>
      el("li", { "data-id": a.id, "data-kind": a.kind, "data-level": a.level,
        "data-state": a.state, style: { "--level": colourOf(a.level) } },
      el("a", { href: this.box.dataset.alertPage.replace(/0$/, String(a.id)) },
        el("span", { class: "sit-level" }, levelLabel(a)),
        el("span", { class: "sit-subject" }, a.subject.name || a.subject.code),
        el("span", { class: "sit-code" }, a.subject.code)),
      el("span", { class: "sit-meta" }, [this.time.format(new Date(a.raised_at)),
        stateLabel(a.state)].join(" · ")))));
    part.querySelector(".sit-none").hidden = alerts.length > 0 || !this.book.loaded;
  }

  moving() {
    const by = { evacuate: { villages: [], people: 0 }, prepare: { villages: [], people: 0 } };
    for (const v of this.villages) {
      const group = by[v.warning_level];
      if (!group) continue;
      group.villages.push(v);
      group.people += Number(v.population) || 0;
    }
    for (const group of Object.values(by)) {
      group.villages.sort((a, b) => (b.population || 0) - (a.population || 0)
        || a.code.localeCompare(b.code));
    }
    return by;
  }

  renderVillages() {
    const part = this.box.querySelector('[data-part="villages"]');
    const moving = this.moving();
    const V = vocabulary();
    for (const level of ["evacuate", "prepare"]) {
      const group = moving[level];
      const box = part.querySelector(`[data-level="${level}"]`);
      box.hidden = group.villages.length === 0;
      box.style.setProperty("--level", colourOf(level));
      box.querySelector("h4").replaceChildren(
        el("span", { class: "sit-level" }, V.warning[level] || level),
        el("span", { class: "sit-total", "data-field": "total" }, this.W.villagesPeople
          .replace("V", this.number.format(group.villages.length))
          .replace("N", this.number.format(group.people))));
      box.querySelector("ul").replaceChildren(...group.villages.map((v) =>
        el("li", { "data-code": v.code },
          el("span", { class: "sit-subject" }, v.name || v.code),
          el("span", { class: "sit-code" }, v.code),
          el("span", { class: "sit-people", "data-field": "population" },
            this.W.people.replace("N", this.number.format(v.population || 0))))));
    }
    part.querySelector(".sit-none").hidden = !this.loaded.villages
      || moving.evacuate.villages.length + moving.prepare.villages.length > 0;
  }

  renderGauges(alerts) {
    const part = this.box.querySelector('[data-part="gauges"]');
    const signals = alerts.filter((a) => a.kind === "rainstorm");
    const rows = SIGNALS.map((level) => {
      const at = signals.filter((a) => a.level === level);
      if (!at.length) return null;
      return el("li", { "data-level": level, style: { "--level": colourOf(level) } },
        el("span", { class: "sit-level" }, levelLabel({ kind: "rainstorm", level })),
        el("span", { class: "sit-gauges" }, at.map((a) => el("span", { class: "sit-gauge",
          "data-code": a.subject.code }, a.subject.name || a.subject.code,
        a.rule && typeof a.rule.observed_mm === "number"
          ? el("span", { class: "sit-code" }, ` ${this.number.format(a.rule.observed_mm)} mm / ${
            this.number.format(a.rule.window_h)} h`) : null))));
    }).filter(Boolean);
    part.querySelector(".sit-signals").replaceChildren(...rows);
    part.querySelector(".sit-none").hidden = rows.length > 0 || !this.book.loaded;
  }

  renderSilent(silent) {
    const part = this.box.querySelector('[data-part="sensors"]');
    const items = [
      ...this.offline.map((g) => el("li", { "data-gateway": g.code },
        el("span", { class: "sit-tag" }, this.W.gatewayOffline),
        el("span", { class: "sit-subject" }, g.name || g.code),
        el("span", { class: "sit-code" }, g.code))),
      ...silent.sort((a, b) => a.code.localeCompare(b.code)).map((s) =>
        el("li", { "data-sensor": s.code },
          el("span", { class: "sit-tag" }, this.W.sensorSilent),
          el("span", { class: "sit-subject" }, s.name || s.code),
          el("span", { class: "sit-code" }, s.code))),
    ];
    part.querySelector(".sit-silent").replaceChildren(...items);
    part.querySelector(".sit-none").hidden = items.length > 0 || !this.loaded.sensors;
  }
}
