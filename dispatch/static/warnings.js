// What every page that shows warnings shares: the alert vocabulary (kinds, levels, states,
// colours and rule fields of alerts.choices, in the page's language: the JSON block
// #alert-vocabulary that alerts.pages provides), the live alert list kept from GET /api/v1/alerts
// and the Socket.IO `alert` events, the title count and the alarm sound.
//
//   const V = vocabulary();
//   const book = new AlertBook(url, (book, event) => render(book.list()));
//   book.load(); socket.on("alert", (m) => book.take(m));
//
// Every string from an alert (subject names come from the database) goes into the page as text
// through ../dom.js, never as HTML.

import { getJson } from "./api.js";

export const ACTIVE = new Set(["raised", "acknowledged", "escalated"]);
// States that still want a person to look (the title counts them).
export const UNSEEN = new Set(["raised", "escalated"]);

let cached = null;

/** The alert vocabulary of the page (#alert-vocabulary), empty tables when absent. */
export function vocabulary() {
  if (cached) return cached;
  const node = document.getElementById("alert-vocabulary");
  const data = node ? JSON.parse(node.textContent) : {};
  cached = { kinds: {}, levels: {}, order: {}, subjects: {}, states: {}, cap: {}, warning: {},
    colours: {}, rule: [], sources: {}, soil: {}, ...data };
  return cached;
}

/** The level's words for this kind ("Evacuate now", "Red rainstorm signal"). */
export function levelLabel(alert) {
  const V = vocabulary();
  return V.levels[`${alert.kind}:${alert.level}`] || alert.level;
}

export function kindLabel(kind) {
  return vocabulary().kinds[kind] || kind;
}

export function stateLabel(state) {
  return vocabulary().states[state] || state;
}

export function capLabel(status) {
  return vocabulary().cap[status] || status;
}

export function colourOf(level) {
  return vocabulary().colours[level] || "#607d8b";
}

/** How severe a level is across kinds, 0..3 (the top level of every kind is 3). */
export function severity(alert) {
  const levels = vocabulary().order[alert.kind] || [];
  const i = levels.indexOf(alert.level);
  if (i < 0) return 0;
  return 3 - (levels.length - 1 - i);
}

/** Newest first (raised_at, then id), as the API lists them. */
export function newestFirst(a, b) {
  return (b.raised_at || "").localeCompare(a.raised_at || "") || b.id - a.id;
}

/**
 * The rule's numbers as [key, label, text] rows, in the vocabulary's order; `keys` limits them
 * (the panel shows a few, the alert page all). Unknown (null) values are left out.
 */
export function ruleRows(rule, number, keys = null) {
  const V = vocabulary();
  const rows = [];
  for (const { key, label, unit } of V.rule) {
    if (keys && !keys.includes(key)) continue;
    const value = rule ? rule[key] : undefined;
    if (value === null || value === undefined || value === "") continue;
    rows.push([key, label, ruleValue(key, value, unit, number)]);
  }
  return rows;
}

function ruleValue(key, value, unit, number) {
  const V = vocabulary();
  if (Array.isArray(value)) return value.join("、");
  if (key === "soil") return V.soil[value] || String(value);
  if (typeof value !== "number") return String(value);
  if (unit === "%") return `${number.format(Math.round(value * 1000) / 10)} %`;
  return unit ? `${number.format(value)} ${unit}` : number.format(value);
}

export function sourceLabel(rule) {
  const source = rule && rule.source;
  return source ? vocabulary().sources[source] || source : "";
}

/**
 * The active alerts of the township, kept current: load() from the list API, take() each `alert`
 * event ({id, ts, event, alert}). An event older than what is known (by updated_at) is ignored,
 * so a replay after a reconnect or an event that overtook the list never goes back in time.
 */
export class AlertBook {
  constructor(url, onChange) {
    this.url = url;
    this.onChange = onChange;
    this.byId = new Map();
    this.closed = new Map(); // id -> updated_at of alerts seen closing
    this.loaded = false;
  }

  list() {
    return [...this.byId.values()].sort(newestFirst);
  }

  unseen() {
    return this.list().filter((a) => UNSEEN.has(a.state)).length;
  }

  async load() {
    const data = await getJson(this.url);
    const fresh = new Map();
    for (const alert of data.items || []) {
      const known = this.byId.get(alert.id);
      const closedAt = this.closed.get(alert.id);
      if (closedAt && closedAt >= (alert.updated_at || "")) continue;
      fresh.set(alert.id, known && (known.updated_at || "") > (alert.updated_at || "")
        ? known : alert);
    }
    this.byId = fresh;
    this.loaded = true;
    this.onChange(this, null);
  }

  take(message) {
    const alert = message && message.alert;
    if (!alert || typeof alert.id !== "number") return;
    const known = this.byId.get(alert.id);
    if (known && (known.updated_at || "") > (alert.updated_at || "")) return;
    if (ACTIVE.has(alert.state)) {
      if ((this.closed.get(alert.id) || "") >= (alert.updated_at || "")) return;
      this.byId.set(alert.id, alert);
    } else {
      this.byId.delete(alert.id);
      this.closed.set(alert.id, alert.updated_at || "");
    }
    this.onChange(this, message);
  }
}

// --- seen and heard --------------------------------------------------------------------------

const plainTitle = document.title;

/** "(N) " before the page's title while N alerts wait for someone to look. */
export function showCount(n) {
  const title = n > 0 ? `(${n}) ${plainTitle}` : plainTitle;
  if (document.title !== title) document.title = title;
}

/**
 * A short alarm from the WebAudio oscillator (no file, no network). Browsers let a page play
 * sound only after a person has interacted with it: the first click or key arms it, and the
 * hint element says so until then (data-sound: waiting | armed).
 */
export class Alarm {
  constructor(hint, words) {
    this.hint = hint;
    this.words = words;
    this.context = null;
    this.played = 0;
    const arm = () => {
      this.arm();
      window.removeEventListener("pointerdown", arm, true);
      window.removeEventListener("keydown", arm, true);
    };
    window.addEventListener("pointerdown", arm, true);
    window.addEventListener("keydown", arm, true);
    this.show();
  }

  arm() {
    const AudioContext = window.AudioContext || window.webkitAudioContext;
    if (!AudioContext) return;
    try {
      this.context = this.context || new AudioContext();
      this.context.resume();
    } catch {
      this.context = null;
    }
    this.show();
  }

  show() {
    if (!this.hint) return;
    const armed = Boolean(this.context);
    this.hint.dataset.sound = armed ? "armed" : "waiting";
    this.hint.textContent = armed ? this.words.armed : this.words.waiting;
  }

  /** Beep `times` times (higher levels beep more); nothing until armed. */
  beep(times = 2) {
    if (!this.context) return false;
    const start = this.context.currentTime + 0.02;
    for (let i = 0; i < times; i += 1) {
      const tone = this.context.createOscillator();
      const gain = this.context.createGain();
      tone.type = "square";
      tone.frequency.value = i % 2 ? 660 : 880;
      const at = start + i * 0.28;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.22);
      tone.connect(gain).connect(this.context.destination);
      tone.start(at);
      tone.stop(at + 0.24);
    }
    this.played += 1;
    if (this.hint) this.hint.dataset.played = String(this.played);
    return true;
  }
}
