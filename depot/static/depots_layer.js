// The depots on the live map (maps/static/map.js loads this module through config.extensions;
// dispatch/views.py registers it, since the depot may not import maps). Each depot site with a
// location, from GET /api/v1/layers/depots (depot/layer.py), is a square marker: teal when every
// category is ready, red with the number of categories needing attention. A tap opens a
// text-only popup with the site's readiness per category, boats first: ready now, out, in repair
// or unserviceable, and each problem in words. A `depot` event (depot/live.py) reloads the layer
// (debounced) and updates markers and an open popup in place.
// Everything from the data is text (../dom.js). Each marker carries data-site, data-problems
// and data-ready (boats ready now); the layer's pane keeps data-count and data-loads.

import { getJson } from "../api.js";
import { el } from "../dom.js";

const SIZE = 34; // px: with the margin of the map's hit areas, a finger's width
const OK = "#00838f";
const BAD = "#c62828";
const RELOAD_MS = 600;

const fill = (template, values) => String(template).replace(/\{(\w+)\}/g,
  (whole, key) => (key in values ? String(values[key]) : whole));

export function attach(api) {
  const { L, map } = api;
  const T = api.words;
  const number = new Intl.NumberFormat(api.lang);
  const list = api.english ? ", " : "、";
  const pane = map.createPane("depots");
  pane.style.zIndex = 665; // above the shelters and stations (660), below the members (670)
  const group = L.featureGroup();
  const depots = new Map(); // code -> {props, marker}
  let loads = 0;

  const label = (c) => (T.categories[c] || {}).label || c;

  function categoryRows(c) {
    const problems = (c.problems || []).map((p) => T.problems[p] || p);
    return [
      el("tr", { "data-category": c.category, "data-problems": (c.problems || []).join(" ") },
        el("th", { scope: "row", style: { "text-align": "left", "font-weight": "600",
          "border-left": `4px solid ${(T.categories[c.category] || {}).colour || "#607d8b"}`,
          "padding-left": ".4rem" } }, label(c.category)),
        ...["serviceable", "out", "repair"].map((k) => el("td", { "data-field": k, style: {
          "text-align": "right", padding: "0 .35rem", "font-variant-numeric": "tabular-nums",
          color: k === "serviceable" && c.problems.includes("none_ready") ? BAD : null,
          "font-weight": k === "serviceable" ? "700" : null } },
        // Bulk stock only (sandbags, rope): no items to count, its minimum says the rest.
        c.total === 0 && c.stock_types > 0 ? "—" : number.format(c[k])))),
      problems.length ? el("tr", { class: "dp-problems" }, el("td", { colspan: 4, style: {
        color: BAD, "font-size": ".82rem", "font-weight": "600", "padding-bottom": ".3rem" } },
      problems.join(list))) : null,
    ];
  }

  function popupContent(props) {
    const categories = props.categories || [];
    const head = el("tr", null, el("th", null, ""), ...["serviceable", "out", "repair"].map(
      (k) => el("th", { scope: "col", style: { "font-size": ".75rem", color: "#5a6a7e",
        "font-weight": "600", "text-align": "right", padding: "0 .35rem" } }, T.columns[k])));
    return el("div", { class: "depot-popup", "data-site": props.code },
      el("h3", { class: "fp-title" }, el("span", { class: "fp-name" }, props.name || props.code),
        el("span", { class: "fp-code" }, props.code)),
      el("p", { style: { margin: ".3rem 0", "font-weight": "700",
        color: props.problems ? BAD : OK } },
      props.problems ? fill(T.problemCount, { n: props.problems }) : T.noProblems),
      categories.length
        ? el("table", { class: "dp-table", style: { "border-collapse": "collapse",
          width: "100%" } }, el("caption", { style: { "text-align": "left",
          "font-size": ".82rem", color: "#5a6a7e" } }, T.popupTitle),
        el("thead", null, head), el("tbody", null, categories.flatMap(categoryRows)))
        : el("p", null, T.nothing));
  }

  function boatsReady(props) {
    const boats = (props.categories || []).find((c) => c.category === "boat");
    return boats ? boats.serviceable : 0;
  }

  function icon(props) {
    const mark = el("div", { class: "depot-mark", "data-site": props.code,
      "data-problems": String(props.problems || 0), "data-ready": String(boatsReady(props)),
      role: "img", "aria-label": `${props.name || props.code} · ${props.problems
        ? fill(T.problemCount, { n: props.problems }) : T.noProblems}`,
      style: { width: `${SIZE}px`, height: `${SIZE}px`, display: "flex",
        "align-items": "center", "justify-content": "center", "box-sizing": "border-box",
        "border-radius": "6px", border: "3px solid #fff", "box-shadow": "0 1px 4px rgb(0 0 0 / 45%)",
        background: props.problems ? BAD : OK, color: "#fff", "font-weight": "700",
        "font-size": "15px", cursor: "pointer" } },
    props.problems ? String(props.problems) : "✓");
    return L.divIcon({ html: mark, className: "", iconSize: [SIZE, SIZE],
      iconAnchor: [SIZE / 2, SIZE / 2], popupAnchor: [0, -SIZE / 2] });
  }

  function upsert(props, lon, lat) {
    let entry = depots.get(props.code);
    if (!entry) {
      const marker = L.marker([lat, lon], { pane: "depots", icon: icon(props),
        keyboard: true, title: props.name || props.code });
      entry = { props, marker };
      marker.bindPopup(() => popupContent(entry.props), { maxWidth: 360, minWidth: 240,
        className: "feature-popup", pane: "popupPane" });
      depots.set(props.code, entry);
      group.addLayer(marker);
      return;
    }
    entry.props = props;
    entry.marker.setLatLng([lat, lon]);
    entry.marker.setIcon(icon(props));
    if (entry.marker.isPopupOpen()) entry.marker.setPopupContent(popupContent(props));
  }

  let loading = null;
  async function load() {
    if (loading) return loading;
    loading = (async () => {
      try {
        const layer = await getJson(T.layer);
        const seen = new Set();
        for (const f of layer.features || []) {
          const p = f.properties || {};
          seen.add(p.code);
          upsert(p, f.geometry.coordinates[0], f.geometry.coordinates[1]);
        }
        for (const [code, entry] of depots) {
          if (!seen.has(code)) {
            group.removeLayer(entry.marker);
            depots.delete(code);
          }
        }
        loads += 1;
        pane.dataset.count = String(depots.size);
        pane.dataset.loads = String(loads);
      } catch {
        window.setTimeout(load, 10000); // the rest of the map goes on meanwhile
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  // A `depot` event: reload the layer once the burst is over; say which depot changed.
  let timer = null;
  function onDepot(event) {
    if (!event || typeof event !== "object") return;
    window.clearTimeout(timer);
    timer = window.setTimeout(async () => {
      await load();
      const named = (Array.isArray(event.sites) ? event.sites : [])
        .map((code) => depots.get(code)).filter(Boolean)
        .map((entry) => entry.props.name || entry.props.code);
      if (named.length && map.hasLayer(group)) api.toast(`${T.moved} ${named.join(list)}`);
    }, RELOAD_MS);
  }

  api.addLayer({ group, label: T.title, note: T.note, entries: [
    [{ kind: "dot", fill: OK }, T.legendOk], [{ kind: "dot", fill: BAD }, T.legendProblem]] });
  api.on("depot", onDepot);
  api.onReconnect(load);
  load();
}
