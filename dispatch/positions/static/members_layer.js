// The team members on the live map (maps/static/map.js loads this module through
// config.extensions: dispatch/positions/pages.py registers it). Each member's latest fix from
// GET /api/v1/layers/members is a dot coloured by duty status (dispatch.roster.choices) that
// fades as the fix ages; a tap opens a popup with status, squad, phone, skills (certificates
// expired or expiring marked) and the fix. `position` events (each a list of moved markers)
// move the dots at once. Everything from the data is text (../dom.js). Each dot is an SVG
// circle carrying data-member, data-status and data-age (fresh | recent | old | stale) for
// people and tests; the layer's pane keeps data-count.

import { getJson } from "../api.js";
import { el } from "../dom.js";

const RADIUS = 9;
// A finger needs 40 px (WCAG 2.5.5): an invisible circle of this radius under each dot.
const HIT_RADIUS = 20;
const RESTYLE_MS = 15000;
const TOAST_NAMES = 3; // the live note names this many moved members, then counts the rest
// Fading by the fix's age: the same classes as the team board (dispatch/roster/static/common.js).
const OPACITY = { fresh: 1, recent: 0.7, old: 0.45, stale: 0.25 };

function ageClass(seconds) {
  if (seconds < 300) return "fresh";
  if (seconds < 1800) return "recent";
  if (seconds < 7200) return "old";
  return "stale";
}

const fill = (template, values) => String(template).replace(/\{(\w+)\}/g,
  (whole, key) => (key in values ? String(values[key]) : whole));

export function attach(api) {
  const { L, map } = api;
  const T = api.words;
  const chinese = !api.english;
  map.createPane("members").style.zIndex = 670; // above the shelters and stations (660)
  const renderer = L.svg({ pane: "members", padding: 0.4 });
  const group = L.featureGroup();
  const members = new Map(); // code -> {props, dot, hit}
  let skewMs = 0; // the hub's clock minus this device's, from the layer's age_s
  let loading = null;

  const ageOf = (props) => Math.max(0, (Date.now() + skewMs - Date.parse(props.ts)) / 1000);
  const colour = (status) => (T.status[status] || {}).colour || "#607d8b";

  function ageText(seconds) {
    const s = Math.round(seconds);
    if (s < 10) return T.age.now;
    if (s < 60) return fill(T.age.seconds, { n: s });
    if (s < 3600) return fill(T.age.minutes, { n: Math.floor(s / 60) });
    if (s < 86400) return fill(T.age.hours, { n: Math.floor(s / 3600) });
    return fill(T.age.days, { n: Math.floor(s / 86400) });
  }

  function warnUntil() {
    const [y, m, d] = T.today.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d + Number(T.warnDays || 30))).toISOString().slice(0, 10);
  }

  // A skill's name; a certificate expired (red) or expiring (amber) says so in words too.
  const EXPIRY_COLOURS = { expired: "#c62828", soon: "#9a5b00" };

  function skillItem(s) {
    const name = (chinese ? s.name_zh : s.name_en) || s.name_zh || s.skill;
    let state = "valid";
    if (s.expires && s.expires < T.today) state = "expired";
    else if (s.expires && s.expires <= warnUntil()) state = "soon";
    const marked = state !== "valid";
    return el("span", { class: "mp-skill", "data-skill": s.skill, "data-expiry": state,
      style: marked ? { color: EXPIRY_COLOURS[state], "font-weight": "700" } : null },
    name, marked ? ` (${fill(T.expiry[state], { date: s.expires })})` : "");
  }

  function popupContent(props) {
    const status = T.status[props.status];
    const fixWords = [ageText(ageOf(props)), T.sources[props.source] || props.source]
      .filter(Boolean).join(" · ");
    const skills = (props.skills || []).map(skillItem);
    const rows = [
      [T.fields.status, el("span", { class: "fp-badge", "data-status": props.status,
        style: { "--badge": colour(props.status) } }, status ? status.label : props.status)],
      [T.fields.squad, [props.team, props.squad].filter(Boolean).join(" · ") || "—"],
      [T.fields.phone, props.phone ? el("a", { href: `tel:${props.phone}` }, props.phone) : "—"],
      [T.fields.fix, fixWords],
      [T.fields.battery, typeof props.battery_pct === "number"
        ? `${Math.round(props.battery_pct)} %` : "—"],
      [T.fields.accuracy, typeof props.accuracy_m === "number"
        ? `± ${Math.round(props.accuracy_m)} m` : "—"],
    ];
    return el("div", { class: "member-popup", "data-member": props.code },
      el("h3", { class: "fp-title" }, el("span", { class: "fp-name" }, props.name || props.code),
        el("span", { class: "fp-code" }, props.code)),
      el("dl", { class: "fp-rows" }, rows.map(([k, v]) => el("div", null, el("dt", null, k),
        el("dd", null, v)))),
      skills.length ? el("p", { class: "mp-skills", style: { margin: ".4rem 0 0" } },
        el("b", null, `${T.fields.skills}${chinese ? "：" : ": "}`),
        skills.flatMap((node, i) => (i ? ["、", node] : [node]))) : null,
      el("p", { class: "fp-link", style: { margin: ".4rem 0 0" } }, el("a", {
        href: T.memberPage.replace("CODE", encodeURIComponent(props.code)) }, T.details)));
  }

  function tag(layer, props, age) {
    const node = layer.getElement && layer.getElement();
    if (!node) return;
    node.setAttribute("data-member", props.code);
    node.setAttribute("data-status", props.status || "");
    node.setAttribute("data-age", age);
    node.setAttribute("aria-label", `${props.name || props.code} · ${
      (T.status[props.status] || {}).label || props.status || ""}`);
  }

  function style(entry) {
    const age = ageClass(ageOf(entry.props));
    const opacity = OPACITY[age];
    entry.dot.setStyle({ fillColor: colour(entry.props.status), fillOpacity: opacity,
      opacity: Math.max(opacity, 0.5), color: "#fff", weight: 2.5,
      dashArray: age === "stale" ? "3 3" : null });
    tag(entry.dot, entry.props, age);
  }

  function openPopup(entry) {
    entry.dot.bindPopup(() => popupContent(entry.props), { maxWidth: 320, minWidth: 220,
      className: "feature-popup" });
    entry.dot.openPopup();
  }

  function upsert(props, lon, lat) {
    const latlng = L.latLng(lat, lon);
    let entry = members.get(props.code);
    if (!entry) {
      const hit = L.circleMarker(latlng, { renderer, radius: HIT_RADIUS, stroke: false,
        fillColor: "#000", fillOpacity: 0 });
      const dot = L.circleMarker(latlng, { renderer, radius: RADIUS });
      entry = { props, dot, hit };
      members.set(props.code, entry);
      hit.on("click", () => openPopup(entry));
      dot.on("click", () => openPopup(entry));
      dot.on("add", () => style(entry));
      group.addLayer(hit);
      group.addLayer(dot);
    } else {
      entry.props = props;
      entry.hit.setLatLng(latlng);
      entry.dot.setLatLng(latlng);
      if (entry.dot.isPopupOpen()) entry.dot.setPopupContent(popupContent(props));
    }
    style(entry);
    return entry;
  }

  function count() {
    map.getPane("members").dataset.count = String(members.size);
  }

  async function load() {
    if (loading) return loading;
    loading = (async () => {
      try {
        const layer = await getJson(T.layer);
        for (const f of layer.features || []) {
          const p = f.properties || {};
          skewMs = Date.parse(p.ts) + p.age_s * 1000 - Date.now();
          upsert(p, f.geometry.coordinates[0], f.geometry.coordinates[1]);
        }
        count();
      } catch {
        window.setTimeout(load, 10000); // the rest of the map goes on meanwhile
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  // A `position` event: the markers that moved, each member's new fix and duty status (a list:
  // dispatch/positions/live.py); skills, phone and squad stay those the layer gave (a member new
  // to the layer is fetched with it). A fix older than the one shown is left.
  function onPosition(message) {
    const list = message && Array.isArray(message.positions) ? message.positions : [];
    const moved = [];
    let unknown = false;
    for (const p of list) {
      if (!p || typeof p.member !== "string") continue;
      const entry = members.get(p.member);
      if (!entry) {
        unknown = true;
        continue;
      }
      if (Date.parse(p.ts) < Date.parse(entry.props.ts)) continue;
      upsert({ ...entry.props, name: p.name || entry.props.name,
        status: p.status || entry.props.status, ts: p.ts, battery_pct: p.battery_pct,
        accuracy_m: p.accuracy_m, speed_mps: p.speed_mps, source: p.source }, p.lon, p.lat);
      moved.push(p.name || p.member);
    }
    if (unknown) load();
    if (moved.length && map.hasLayer(group)) {
      const names = moved.slice(0, TOAST_NAMES).join(chinese ? "、" : ", ");
      const more = moved.length - TOAST_NAMES;
      api.toast(`${T.moved} ${names}${more > 0 ? ` ${fill(T.more, { n: more })}` : ""}`);
    }
  }

  api.addLayer({ group, label: T.title, note: T.fade,
    entries: T.statusOrder.map((s) => [{ kind: "dot", fill: colour(s) }, T.status[s].label]) });
  api.on("position", onPosition);
  api.onReconnect(load);
  window.setInterval(() => {
    for (const entry of members.values()) style(entry);
  }, RESTYLE_MS);
  load();
}
