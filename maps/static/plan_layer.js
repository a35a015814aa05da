// The evacuation plan on the live map (DESIGN §5 "Evacuation (contract)"): a layer of the layer
// switcher and a panel in the map's lower right corner (maps/static/map.js creates both).
//
// Layer (GET /api/v1/evacuation/plan.geojson?version=N, features by properties.kind):
// - route: village → shelter along the roads, width by people, colour by the share of vulnerable
//   people (light: none, dark: all), an arrow at the shelter; drills dashed. Tooltip and popup
//   as text: village → shelter, people, by class, minutes.
// - unplaced: a "!" at the village's road node, with the people and the reason.
// - closed_road: dashed red; unusable_shelter: a crossed marker with why it is not used.
// Panel: the version's metrics, the diff to the version before (GET …/plans/N/diff, in
// sentences), a link to the printable sheets, and "show drill plans".
//
// Which version: the latest live plan (GET /api/v1/evacuation/plan; 404 no_plan says there is
// none yet), or with "show drill plans" ticked the newest version of all (GET …/plans). Each
// `plan` event of /live (the version's summary) loads that version, except a drill's while
// drills are not shown: the panel only says one was made. A drill is marked as such wherever
// it shows (the panel's head and banner, each route's tooltip and popup, dashed routes).
//
// Words come from the page's JSON block #plan-vocabulary (dispatch/evacuation/pages.py), in the
// page's language; `{name}` marks where a value goes. Names from the database go into text nodes
// only (../dom.js). #plan-panel keeps data-state (loading | ready | none | error), data-version,
// data-drill and data-routes; each route path data-plan="route", data-village, data-shelter and
// data-people; marks and closed roads data-plan="unplaced" | "unusable_shelter" | "closed_road".

import { ApiError, getJson } from "../api.js";
import { el, svg } from "../dom.js";

const L = window.L;
const FOLD_KEY = "rescuehub.map.plan";
// A 10-inch tablet either way round, and smaller: folded to its head (which shows the version,
// the drill mark and people placed) until opened; the map comes first. As the legend does.
const SMALL_SCREEN = "(max-width: 1100px), (max-height: 820px)";
const RETRY_MS = 15000;
// Route colours: the share of vulnerable people (classes 1 and 3) on the route, from none to all.
const LIGHT = [149, 117, 205]; // #9575cd
const DARK = [49, 27, 146]; // #311b92
const CLOSED = "#c62828";
const MIN_WEIGHT = 3;
const MAX_WEIGHT = 12;
// An invisible wider line under each route takes taps (a 3 px line is too thin for a finger).
const HIT_WEIGHT = 22;
const ARROW_ID = "plan-arrow";

/** Put values into a vocabulary sentence: fill("Version {version}", {version: 3}). */
export function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (whole, key) =>
    (Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole));
}

function mix(share) {
  const t = Math.min(1, Math.max(0, share));
  const rgb = LIGHT.map((a, i) => Math.round(a + (DARK[i] - a) * t));
  return `rgb(${rgb.join(" ")})`;
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

function messageOf(error) {
  return (error && error.message) || "";
}

export class PlanLayer {
  /** map: the Leaflet map; options: {words, urls, lang, english, onFold()}. */
  constructor(map, options) {
    this.map = map;
    this.W = options.words;
    this.urls = options.urls;
    this.english = Boolean(options.english);
    this.onFold = options.onFold || (() => {});
    this.number = new Intl.NumberFormat(options.lang);
    this.time = new Intl.DateTimeFormat(options.lang, { year: "numeric", month: "numeric",
      day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    map.createPane("plan").style.zIndex = 450; // above the canvas (400), below names (650)
    map.createPane("planMarks").style.zIndex = 670; // above shelters and stations (660)
    this.renderer = L.svg({ pane: "plan", padding: 0.4 });
    this.group = L.featureGroup();
    this.popup = L.popup({ maxWidth: 340, minWidth: 230, className: "feature-popup plan-popup",
      autoPanPaddingTopLeft: [60, 70], autoPanPaddingBottomRight: [60, 40] });
    this.drills = false;
    this.body = null; // the plan shown (GET …/plans/N)
    this.drillMade = null; // a drill version made while drills are not shown
    this.seq = 0; // the newest load; older answers are dropped
    this.retry = null;
    this.box = this.panel();
    this.control = L.control({ position: "bottomright" });
    this.control.onAdd = () => {
      L.DomEvent.disableClickPropagation(this.box);
      L.DomEvent.disableScrollPropagation(this.box);
      return this.box;
    };
    // The panel shows with the layer.
    this.group.on("add", () => this.control.addTo(map));
    this.group.on("remove", () => {
      this.control.remove();
      if (this.popup.isOpen()) map.closePopup(this.popup);
    });
    this.chosen = recall(FOLD_KEY);
    this.fold(this.chosen ? this.chosen === "folded" : window.matchMedia(SMALL_SCREEN).matches);
  }

  // --- names ---------------------------------------------------------------------------------

  villageName(code) {
    return this.nameIn(this.body && this.body.villages, code);
  }

  shelterName(code) {
    return this.nameIn(this.body && this.body.shelters, code);
  }

  nameIn(list, code) {
    const found = (list || []).find((item) => item.code === code);
    if (!found) return code;
    return (this.english && found.name_pinyin) || found.name || code;
  }

  people(n) {
    return fill(this.W.people, { n: this.number.format(n || 0) });
  }

  minutes(seconds) {
    const n = seconds > 0 ? Math.max(1, Math.round(seconds / 60)) : 0;
    return fill(this.W.minutes, { n: this.number.format(n) });
  }

  closure(why) {
    const C = this.W.closure;
    if (why === "closed") return C.closed;
    let match = /^closed: ([\s\S]*)$/.exec(why || "");
    if (match) return fill(C.because, { reason: match[1] });
    match = /^hazard zone (.+) at evacuate$/.exec(why || "");
    if (match) return fill(C.hazard, { zone: match[1] });
    return why || C.closed;
  }

  // --- loading -------------------------------------------------------------------------------

  versionUrl(template, version) {
    return template.replace(/\/plans\/0(?=\/|$)/, `/plans/${encodeURIComponent(version)}`);
  }

  /** The plan to show now: the latest live one, or the newest of all with drills shown. */
  async load() {
    const seq = ++this.seq;
    window.clearTimeout(this.retry);
    try {
      let body;
      if (this.drills) {
        const list = await getJson(this.urls.plans);
        const newest = (list.items || [])[0];
        if (!newest) throw new ApiError(404, { error: "no_plan" });
        body = await getJson(this.versionUrl(this.urls.planVersion, newest.version));
      } else {
        body = await getJson(this.urls.plan);
      }
      await this.show(body, seq);
    } catch (error) {
      this.failed(error, seq);
    }
  }

  async loadVersion(version) {
    const seq = ++this.seq;
    window.clearTimeout(this.retry);
    try {
      await this.show(await getJson(this.versionUrl(this.urls.planVersion, version)), seq);
    } catch (error) {
      this.failed(error, seq);
    }
  }

  /** One `plan` event from /live: the summary of a version just made. */
  take(message) {
    if (!message || !Number.isInteger(message.version)) return;
    if (message.drill && !this.drills) {
      this.drillMade = message.version;
      this.renderNote();
      return;
    }
    if (this.body && message.version <= this.body.version) return;
    this.loadVersion(message.version);
  }

  async show(body, seq) {
    const version = body.version;
    const [layer, diff] = await Promise.all([
      getJson(`${this.urls.planGeojson}?version=${encodeURIComponent(version)}`),
      getJson(this.versionUrl(this.urls.planDiff, version)).catch(() => null),
    ]);
    if (seq !== this.seq) return;
    this.body = body;
    if (this.drills) this.drillMade = null; // drills are shown: no need to point at one
    this.draw(layer);
    this.render(diff);
  }

  failed(error, seq) {
    if (seq !== this.seq) return;
    if (error instanceof ApiError && error.status === 404 && error.body.error === "no_plan") {
      this.nothing();
      return;
    }
    this.box.dataset.state = "error";
    this.problem.hidden = false;
    this.problem.textContent = `${this.W.failed} ${messageOf(error)}`;
    this.retry = window.setTimeout(() => this.load(), RETRY_MS);
  }

  // --- drawing -------------------------------------------------------------------------------

  draw(collection) {
    this.group.clearLayers();
    if (this.popup.isOpen()) this.map.closePopup(this.popup);
    const features = (collection && collection.features) || [];
    const of = (kind) => features.filter((f) => f.properties && f.properties.kind === kind
      && f.geometry && f.geometry.coordinates);
    const routes = of("route").sort((a, b) => b.properties.people - a.properties.people);
    const most = Math.max(1, ...routes.map((f) => f.properties.people || 0));
    for (const f of of("closed_road")) this.addClosedRoad(f);
    for (const f of routes) this.addRoute(f, most); // the largest first: smaller ones on top
    for (const f of of("unplaced")) this.addMark(f, "unplaced");
    for (const f of of("unusable_shelter")) this.addMark(f, "unusable_shelter");
    this.box.dataset.routes = String(routes.length);
  }

  routeWords(p) {
    const drill = this.body && this.body.drill ? `${this.W.drill} · ` : "";
    return `${drill}${this.villageName(p.village)} → ${this.shelterName(p.shelter)} · ${
      this.people(p.people)} · ${this.minutes(p.travel_s)}`;
  }

  addRoute(feature, most) {
    const p = feature.properties;
    const latlngs = feature.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
    const classes = p.by_class || [0, 0, 0, 0];
    const share = p.people ? ((classes[0] || 0) + (classes[2] || 0)) / p.people : 0;
    const weight = MIN_WEIGHT + (MAX_WEIGHT - MIN_WEIGHT) * Math.sqrt((p.people || 0) / most);
    const drill = Boolean(this.body && this.body.drill);
    const hit = L.polyline(latlngs, { renderer: this.renderer, pane: "plan", weight: HIT_WEIGHT,
      opacity: 0, bubblingMouseEvents: false, className: "plan-hit" });
    const line = L.polyline(latlngs, { renderer: this.renderer, pane: "plan", color: mix(share),
      weight, opacity: 0.92, lineCap: "round", lineJoin: "round",
      dashArray: drill ? "14 8" : null, bubblingMouseEvents: false, className: "plan-route" });
    const words = this.routeWords(p);
    for (const layer of [hit, line]) {
      layer.bindTooltip(() => el("span", null, words), { sticky: true, direction: "top",
        offset: [0, -6], className: "plan-tip" });
      layer.on("click", (e) => this.openPopup(e.latlng, this.routePopup(p)));
    }
    line.on("add", () => {
      const node = line.getElement();
      node.dataset.plan = "route";
      node.dataset.village = p.village;
      node.dataset.shelter = p.shelter;
      node.dataset.people = String(p.people);
      node.setAttribute("aria-label", words);
      node.setAttribute("marker-end", `url(#${ARROW_ID})`);
      this.arrow(node);
    });
    hit.on("add", () => hit.getElement().setAttribute("aria-hidden", "true"));
    this.group.addLayer(hit);
    this.group.addLayer(line);
  }

  // One arrowhead definition in the plan's SVG (dark, fixed size whatever the line's width).
  arrow(path) {
    const root = path.ownerSVGElement;
    if (!root || root.querySelector(`#${ARROW_ID}`)) return;
    const marker = svg("marker", { id: ARROW_ID, viewBox: "0 0 10 10", refX: "7", refY: "5",
      markerWidth: "13", markerHeight: "13", markerUnits: "userSpaceOnUse",
      orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#1a1033", stroke: "#fff",
      "stroke-width": "1" }));
    root.prepend(svg("defs", null, marker));
  }

  addClosedRoad(feature) {
    const p = feature.properties;
    const layer = L.geoJSON(feature, { renderer: this.renderer, pane: "plan",
      style: { color: CLOSED, weight: 4.5, opacity: 1, dashArray: "7 6", lineCap: "butt" } });
    const words = `${this.W.route.closedRoad} ${p.code}: ${this.closure(p.why)}`;
    layer.eachLayer((line) => {
      line.options.bubblingMouseEvents = false;
      line.bindTooltip(() => el("span", null, words), { sticky: true, className: "plan-tip" });
      line.on("click", (e) => this.openPopup(e.latlng, [
        el("h3", { class: "fp-title" }, el("span", { class: "fp-name" }, this.W.route.closedRoad),
          el("span", { class: "fp-code" }, p.code)),
        this.rows([[this.W.route.reason, this.closure(p.why)]])]));
      line.on("add", () => {
        const node = line.getElement();
        node.dataset.plan = "closed_road";
        node.dataset.code = p.code;
      });
    });
    this.group.addLayer(layer);
  }

  addMark(feature, kind) {
    const p = feature.properties;
    const [lon, lat] = feature.geometry.coordinates;
    const unplaced = kind === "unplaced";
    const code = unplaced ? p.village : p.shelter;
    const name = unplaced ? this.villageName(code) : this.shelterName(code);
    const why = unplaced ? this.W.reasons[p.reason] || p.reason
      : this.W.whyNot[p.why_not] || p.why_not;
    const headline = unplaced ? fill(this.W.route.unplaced, { n: this.number.format(p.people) })
      : this.W.route.shelterUnusable;
    const words = `${name}: ${headline} (${why})`;
    const icon = L.divIcon({ className: `plan-mark plan-${unplaced ? "unplaced" : "unusable"}`,
      html: el("span", { class: "pm-glyph", "aria-hidden": "true" }, unplaced ? "!" : "×"),
      iconSize: [30, 30], iconAnchor: [15, 15] });
    const marker = L.marker([lat, lon], { icon, pane: "planMarks", keyboard: false,
      bubblingMouseEvents: false });
    marker.bindTooltip(() => el("span", null, words), { direction: "top", offset: [0, -14],
      className: "plan-tip" });
    marker.on("click", () => this.openPopup(L.latLng(lat, lon), [
      el("h3", { class: "fp-title" }, el("span", { class: "fp-name" }, name),
        el("span", { class: "fp-code" }, code)),
      el("p", { class: "fp-sub" }, headline),
      this.rows([[this.W.route.reason, why]])]));
    marker.on("add", () => {
      const node = marker.getElement();
      node.dataset.plan = kind;
      node.dataset.code = code;
      node.setAttribute("role", "img");
      node.setAttribute("aria-label", words);
    });
    this.group.addLayer(marker);
  }

  rows(pairs) {
    return el("dl", { class: "fp-rows" }, pairs.filter(Boolean).map(([dt, dd, attrs]) =>
      el("div", attrs || null, el("dt", null, dt), el("dd", null, dd))));
  }

  routePopup(p) {
    const classes = p.by_class || [];
    return [
      el("h3", { class: "fp-title" }, el("span", { class: "fp-name" },
        `${this.villageName(p.village)} → ${this.shelterName(p.shelter)}`)),
      el("p", { class: "fp-sub" }, `${p.village} → ${p.shelter}`),
      this.body && this.body.drill ? el("span", { class: "fp-badge pp-drill-badge" },
        this.W.drill) : null,
      this.rows([
        [this.W.route.people, this.number.format(p.people), { "data-field": "people" }],
        ...classes.map((n, i) => (n ? [this.W.classes[i], this.number.format(n)] : null)),
        [this.W.route.travel, this.minutes(p.travel_s), { "data-field": "travel" }],
        [this.W.route.segments, this.number.format((p.roads || []).length)],
      ]),
    ];
  }

  openPopup(latlng, content) {
    this.popup.setLatLng(latlng)
      .setContent(el("div", { class: "fp fp-plan" }, content)).openOn(this.map);
  }

  // --- the panel -----------------------------------------------------------------------------

  panel() {
    const W = this.W;
    this.toggle = el("button", { type: "button", class: "pp-toggle", "aria-expanded": "true",
      "aria-controls": "pp-body", title: W.fold },
    el("span", { class: "pp-icon", "aria-hidden": "true" }),
    el("span", { class: "pp-title" }, W.title),
    this.badge = el("span", { class: "pp-drill", "data-field": "drill", hidden: true }, W.drill),
    this.versionTag = el("span", { class: "pp-version", "data-field": "version" }),
    this.headline = el("span", { class: "pp-headline" }));
    this.toggle.addEventListener("click", () => {
      const folded = !this.box.classList.contains("folded");
      this.fold(folded);
      this.chosen = folded ? "folded" : "open";
      remember(FOLD_KEY, this.chosen);
    });
    this.drillBox = el("input", { type: "checkbox", id: "pp-drills" });
    this.drillBox.addEventListener("change", () => {
      this.drills = this.drillBox.checked;
      this.drillMade = null;
      this.load();
    });
    this.banner = el("p", { class: "pp-banner", role: "note", hidden: true }, W.drillBanner);
    this.problem = el("p", { class: "pp-problem", role: "alert", hidden: true });
    this.note = el("p", { class: "pp-note", hidden: true });
    this.metrics = el("dl", { class: "pp-metrics", "data-field": "metrics" });
    this.meta = el("p", { class: "pp-meta" });
    this.diffBox = el("section", { class: "pp-diff", "aria-live": "polite" });
    this.sheets = el("a", { class: "pp-sheets", target: "_blank", rel: "noopener",
      hidden: true }, W.sheets);
    const body = el("div", { class: "pp-body", id: "pp-body" },
      this.banner, this.problem, this.note, this.metrics, this.meta, this.diffBox,
      el("div", { class: "pp-actions" }, this.sheets,
        el("label", { class: "pp-drills", for: "pp-drills" }, this.drillBox,
          el("span", null, W.showDrills))),
      this.legend());
    this.box = el("section", { class: "plan-panel", id: "plan-panel", "data-state": "loading",
      "data-routes": "0", role: "region", "aria-label": W.title },
    el("div", { class: "pp-head" }, this.toggle), body);
    this.note.hidden = false;
    this.note.textContent = W.loading;
    return this.box;
  }

  legend() {
    const L2 = this.W.legend;
    const item = (swatch, words) => el("li", null, swatch, el("span", null, words));
    return el("details", { class: "pp-legend" }, el("summary", null, L2.title), el("ul", null,
      item(el("span", { class: "pp-sw pp-sw-route", "aria-hidden": "true" }), L2.colour),
      item(el("span", { class: "pp-sw pp-sw-width", "aria-hidden": "true" }), L2.width),
      item(el("span", { class: "pp-sw pp-sw-closed", "aria-hidden": "true" }), L2.closed),
      item(el("span", { class: "pp-sw plan-mark plan-unusable", "aria-hidden": "true" },
        el("span", { class: "pm-glyph" }, "×")), L2.unusable),
      item(el("span", { class: "pp-sw plan-mark plan-unplaced", "aria-hidden": "true" },
        el("span", { class: "pm-glyph" }, "!")), L2.unplaced)));
  }

  fold(folded) {
    this.box.classList.toggle("folded", folded);
    this.toggle.setAttribute("aria-expanded", String(!folded));
    this.toggle.title = folded ? this.W.unfold : this.W.fold;
    this.onFold();
  }

  nothing() {
    this.body = null;
    this.group.clearLayers();
    Object.assign(this.box.dataset, { state: "none", routes: "0", drill: "false" });
    delete this.box.dataset.version;
    this.problem.hidden = true;
    this.badge.hidden = true;
    this.banner.hidden = true;
    this.sheets.hidden = true;
    this.versionTag.textContent = "";
    this.headline.textContent = "";
    this.metrics.replaceChildren();
    this.meta.replaceChildren();
    this.diffBox.replaceChildren();
    this.renderNote();
  }

  renderNote() {
    const lines = [];
    if (!this.body && this.box.dataset.state === "none") lines.push(this.W.none);
    if (this.drillMade !== null) lines.push(fill(this.W.drillMade, { version: this.drillMade }));
    this.note.hidden = lines.length === 0;
    this.note.replaceChildren(...lines.map((words) => el("span", null, words)));
  }

  render(diff) {
    const body = this.body;
    const m = body.metrics || {};
    const unplaced = m.unplaced || {};
    const trigger = body.trigger || {};
    Object.assign(this.box.dataset, { state: "ready", version: String(body.version),
      drill: String(Boolean(body.drill)) });
    this.problem.hidden = true;
    this.badge.hidden = !body.drill;
    this.banner.hidden = !body.drill;
    this.box.classList.toggle("is-drill", Boolean(body.drill));
    this.versionTag.textContent = fill(this.W.version, { version: body.version });
    this.headline.textContent = `${this.number.format(m.placed || 0)} / ${
      this.number.format(m.to_move || 0)}`;
    const M = this.W.metrics;
    const row = (field, dt, dd, bad = false) => el("div", { "data-field": field,
      class: bad ? "pp-bad" : null }, el("dt", null, dt), el("dd", null, dd));
    // Three columns: what moves, then what is left behind and how long it took to work out.
    this.metrics.replaceChildren(
      row("to_move", M.toMove, this.people(m.to_move)),
      row("placed", M.placed, this.people(m.placed)),
      row("longest", M.longest, this.minutes(m.max_travel_s)),
      row("no_route", M.noRoute, this.people(unplaced.no_route), unplaced.no_route > 0),
      row("no_capacity", M.noCapacity, this.people(unplaced.no_capacity),
        unplaced.no_capacity > 0),
      row("computed", M.computed, fill(this.W.ms, { n: this.number.format(m.total_ms || 0) })));
    const meta = (field, label, words) => el("span", { "data-field": field, title: label },
      words);
    this.meta.replaceChildren(
      meta("made", M.made, body.created_at ? this.time.format(new Date(body.created_at)) : "—"),
      meta("trigger", M.trigger, [this.W.triggers[trigger.kind] || trigger.kind, trigger.ref]
        .filter(Boolean).join(" ")),
      meta("mode", M.mode, this.W.modes[body.mode] || body.mode));
    if (this.shown !== undefined && this.shown !== body.version) this.flash();
    this.shown = body.version;
    this.sheets.hidden = false;
    this.sheets.href = this.versionUrl(this.urls.planSheets, body.version);
    this.renderDiff(diff);
    this.renderNote();
  }

  // A new version while the person looks: the head flashes (folded or not).
  flash() {
    this.box.classList.remove("pp-new");
    void this.box.offsetWidth; // restart the animation
    this.box.classList.add("pp-new");
  }

  renderDiff(diff) {
    const D = this.W.diff;
    if (!diff) {
      this.diffBox.replaceChildren();
      return;
    }
    if (diff.from === null || diff.from === undefined) {
      this.diffBox.replaceChildren(el("p", { class: "pp-diff-none" }, D.first));
      return;
    }
    // Villages moved by a cause of their own (a road, a shelter, their level) first; those that
    // only gave up places to them (capacity) after.
    const direct = (move) => (move.why || []).some((why) => why.why !== "capacity");
    const moves = [...(diff.moves || [])].sort((a, b) => direct(b) - direct(a));
    this.diffBox.dataset.from = String(diff.from);
    this.diffBox.replaceChildren(
      el("h3", null, fill(D.title, { version: diff.from })),
      moves.length ? el("ol", { class: "pp-moves" }, moves.map((move) => this.move(move)))
        : el("p", { class: "pp-diff-none" }, D.same));
  }

  side(shelters, unplaced) {
    const parts = Object.entries(shelters || {}).map(([code, n]) =>
      `${this.shelterName(code)} ${this.number.format(n)}`);
    if (unplaced) parts.push(fill(this.W.diff.unplaced, { n: this.number.format(unplaced) }));
    return parts.length ? parts.join(" · ") : this.W.diff.nowhere;
  }

  move(move) {
    const unplaced = move.unplaced || {};
    return el("li", { class: "pp-move", "data-village": move.village },
      el("p", { class: "pp-move-name" }, el("strong", null, this.villageName(move.village)),
        " ", el("span", { class: "fp-code" }, move.village)),
      el("p", { class: "pp-change pp-before" }, el("span", { class: "pp-label" },
        this.W.diff.before), this.side(move.before, unplaced.before)),
      el("p", { class: "pp-change pp-after" }, el("span", { class: "pp-label" },
        this.W.diff.after), this.side(move.after, unplaced.after)),
      el("ul", { class: "pp-why" }, (move.why || []).map((why) =>
        el("li", { "data-why": why.why }, this.reason(why)))));
  }

  reason(why) {
    const R = this.W.diff.why;
    const level = (key) => this.W.levels[key] || key;
    switch (why.why) {
      case "level":
        return fill(R.level, { from: level(why.from), to: level(why.to) });
      case "people":
        return fill(R.people, { from: this.number.format(why.from),
          to: this.number.format(why.to) });
      case "road_closed":
        return fill(R.road_closed, { road: why.road, shelter: this.shelterName(why.shelter),
          reason: this.closure(why.reason) });
      case "shelter_unusable":
        return fill(R.shelter_unusable, { shelter: this.shelterName(why.shelter),
          reason: this.W.whyNot[why.reason] || why.reason });
      case "shelter_gone":
        return fill(R.shelter_gone, { shelter: this.shelterName(why.shelter) });
      default:
        return R.capacity;
    }
  }
}
