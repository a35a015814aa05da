"""Computing, storing and reading evacuation plans (DESIGN §5 "Evacuation (contract)").

A plan is computed from the public layers as they are in the database: villages (people and
warning levels written by the warnings package), hazard zones, shelters and roads. The road graph
(maps.routing) is built once per road-network revision and kept in this process; closures are a
mask over it. The exact solver (maps.solver) places people by class, then by person-seconds.

Travel times are whole seconds (rounded once, at the boundary): the solver is exact on them and
the objective is Σ people × travel_s over the plan's own `travel_s` figures, so anyone can check
it from the plan document.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from flask_babel import lazy_gettext as _l
from geoalchemy2.shape import to_shape
from pyproj import Transformer
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.choices import AlertKind
from alerts.models import Alert
from dispatch.core import audit
from dispatch.core.db import utcnow
from dispatch.core.errors import Conflict
from dispatch.evacuation import rules
from dispatch.evacuation.models import EvacuationPlan
from dispatch.evacuation.settings import minutes_of_day
from maps import geo, routing, solver
from maps.models import HazardZone, RoadSegment, Shelter, Township, Village

log = logging.getLogger(__name__)

MODES = ("split", "together")
# A walk to the road network longer than this is named in the plan's problems (30 min at 4 km/h
# is 2 km: no village centre or shelter of a mapped township lies that far from a road).
FAR_FROM_ROADS_S = 1800
TRIGGERS = ("alert", "road", "shelter", "manual")


# --- the road network, built once per revision ----------------------------------------------------

@dataclass
class Network:
    """One revision of the road network: its graph, node positions and where each road runs."""

    key: tuple
    epsg: int
    graph: routing.RoadGraph
    node_xy: np.ndarray
    node_lonlat: np.ndarray
    lines: np.ndarray  # shapely LineStrings (lon/lat) by segment index
    tree: shapely.STRtree
    by_code: dict[str, int]


_networks: dict[str, Network] = {}
_networks_lock = threading.Lock()


def _road_key(session: Session) -> tuple:
    """Changes when a road is added, removed or changes length, speed or direction (not when it
    opens or closes: closures are a mask)."""
    return tuple(session.execute(select(
        func.count(), func.max(RoadSegment.id), func.sum(RoadSegment.speed_kmh),
        func.sum(RoadSegment.length_m),
        func.sum(case((RoadSegment.oneway.is_(True), RoadSegment.id), else_=0)))).one())


def _epsg(session: Session, lonlat: np.ndarray) -> int:
    epsg = session.scalar(select(Township.epsg).order_by(Township.id).limit(1))
    if epsg:
        return int(epsg)
    lon, lat = lonlat.mean(axis=0) if len(lonlat) else (108.9, 34.3)
    return geo.utm_epsg(float(lon), float(lat))


def _transformer(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


def network(session: Session) -> Network:
    """The road network of the current revision (built on first use after a change)."""
    key = _road_key(session)
    cache_key = str(session.get_bind().url)
    with _networks_lock:
        cached = _networks.get(cache_key)
        if cached is not None and cached.key == key:
            return cached
        rows = session.execute(select(
            RoadSegment.code, RoadSegment.source, RoadSegment.target, RoadSegment.length_m,
            RoadSegment.speed_kmh, RoadSegment.oneway, RoadSegment.geometry)
            .order_by(RoadSegment.id)).all()
        if not rows:
            raise Conflict(_l("The township has no roads yet, so nobody can be routed: load "
                              "the road network (rescuehub demo, or the roads of your "
                              "township) and plan again."), code="no_roads")
        codes = [r.code for r in rows]
        # The roads layer shows length_m to 0.1 m: the plan uses the same public figure.
        try:
            graph = routing.build_graph(
                codes, np.array([r.source for r in rows], dtype=np.int64),
                np.array([r.target for r in rows], dtype=np.int64),
                np.round(np.array([r.length_m for r in rows], dtype=float), 1),
                np.array([r.speed_kmh for r in rows], dtype=float),
                np.array([bool(r.oneway) for r in rows]))
        except routing.RoadInputError as exc:
            raise Conflict(_l("The road network cannot be routed: %(problem)s. Correct these "
                              "segments and plan again.", problem=str(exc)),
                           code="bad_roads") from None
        lines = np.array([to_shape(r.geometry) for r in rows], dtype=object)
        first = np.array([line.coords[0] for line in lines]).reshape(-1, 2)
        last = np.array([line.coords[-1] for line in lines]).reshape(-1, 2)
        node_lonlat = routing.node_positions(graph, first, last)
        epsg = _epsg(session, node_lonlat)
        x, y = _transformer(epsg).transform(node_lonlat[:, 0], node_lonlat[:, 1])
        built = Network(key, epsg, graph, np.column_stack([x, y]), node_lonlat, lines,
                        shapely.STRtree(lines), {c: i for i, c in enumerate(codes)})
        _networks[cache_key] = built
        log.info("evacuation: road graph built, %d segments and %d nodes",
                 len(codes), len(graph.node_ids))
        return built


# --- inputs ---------------------------------------------------------------------------------------

@dataclass
class Inputs:
    """Everything one plan reads, as plain values."""

    villages: list[Any]
    levels: dict[str, str]
    flood: dict[str, str]
    zones: list[Any]
    zone_info: Zones
    shelters: list[Any]
    closed: dict[str, str]  # road code -> why (its reason, or the hazard zone)
    drill: bool


@dataclass
class Zones:
    """The hazard zones' shapes (made valid) and villages, read again only when zones change."""

    key: tuple
    shapes: dict[str, Any]
    village_of: dict[str, str | None]
    repaired: list[str]


_zones: dict[str, Zones] = {}


def _zones_of(session: Session) -> Zones:
    """Each zone's shape and village: its own, else the village its centre lies in."""
    key = tuple(session.execute(select(func.count(HazardZone.id), func.max(HazardZone.id),
                                       func.max(HazardZone.updated_at))).one())
    cache_key = str(session.get_bind().url)
    cached = _zones.get(cache_key)
    if cached is not None and cached.key == key:
        return cached
    codes = dict(session.execute(select(Village.id, Village.code)).all())
    shapes, village_of, repaired = {}, {}, []
    for code, village_id, geometry in session.execute(select(
            HazardZone.code, HazardZone.village_id, HazardZone.geometry)):
        shape = to_shape(geometry)
        if not shape.is_valid:
            repaired.append(code)
            shape = shapely.make_valid(shape)
        shapes[code] = shape
        village_of[code] = codes.get(village_id) if village_id else None
        if village_of[code] is None:
            x, y = shapely.get_coordinates(shape.representative_point())[0]
            village_of[code] = session.scalar(select(Village.code).where(func.ST_Contains(
                Village.boundary, func.ST_GeomFromText(f"POINT({x} {y})", 4326))).limit(1))
    _zones[cache_key] = Zones(key, shapes, village_of, sorted(repaired))
    return _zones[cache_key]


def read_inputs(session: Session, net: Network, drill_levels: dict[str, str] | None) -> Inputs:
    """Read the villages, zones, shelters and closures a plan needs (drill: levels by hand)."""
    villages = session.execute(select(
        Village.id, Village.code, Village.name_zh, Village.name_pinyin, Village.population,
        Village.vulnerable, Village.moved, Village.warning_level, Village.contact_name,
        Village.contact_phone, func.ST_X(Village.centre).label("lon"),
        func.ST_Y(Village.centre).label("lat")).order_by(Village.code)).all()
    zones = session.execute(select(
        HazardZone.code, HazardZone.people, HazardZone.warning_level)
        .order_by(HazardZone.code)).all()
    shelters = session.execute(select(
        Shelter.code, Shelter.name_zh, Shelter.name_pinyin, Shelter.village_id,
        Shelter.capacity_day, Shelter.capacity_night, Shelter.occupancy, Shelter.status,
        Shelter.contact_name, Shelter.contact_phone, func.ST_X(Shelter.location).label("lon"),
        func.ST_Y(Shelter.location).label("lat")).order_by(Shelter.code)).all()
    closed = dict(session.execute(select(RoadSegment.code, RoadSegment.closed_reason)
                                  .where(RoadSegment.is_open.is_(False))).all())
    closed = {code: f"closed: {why}" if why else "closed" for code, why in closed.items()}
    if drill_levels is not None:
        levels = {v.code: drill_levels.get(v.code, "none") for v in villages}
        flood = dict(levels)
        zone_levels: dict[str, str] = {}
    else:
        levels = {v.code: v.warning_level or "none" for v in villages}
        flood = _flood_levels(session)
        zone_levels = {z.code: z.warning_level or "none" for z in zones}
    known = _zones_of(session)
    for code, level in zone_levels.items():
        if level == "evacuate" and code in known.shapes:
            for i in net.tree.query(known.shapes[code], predicate="intersects"):
                closed.setdefault(net.graph.codes[i], f"hazard zone {code} at evacuate")
    return Inputs(list(villages), levels, flood,
                  [(z, zone_levels.get(z.code, "none")) for z in zones], known,
                  list(shelters), closed, drill_levels is not None)


def _flood_levels(session: Session) -> dict[str, str]:
    """Each village's own flash-flood level (its whole population moves)."""
    rows = session.execute(select(Alert.subject_code, Alert.level).where(
        Alert.active_key.is_not(None), Alert.kind == str(AlertKind.FLASH_FLOOD))).all()
    return dict(rows)


# --- computing a plan -----------------------------------------------------------------------------

def _needs(session: Session, inputs: Inputs, shelter_level: dict[str, str]) -> list:
    zone_village = inputs.zone_info.village_of
    zones_of: dict[str, list[tuple[str, int]]] = {}
    for zone, level in inputs.zones:
        village = zone_village.get(zone.code)
        if village and level != "none":
            zones_of.setdefault(village, []).append((level, zone.people))
    sheltered: dict[str, int] = {}
    ids = {v.id: v.code for v in inputs.villages}
    for shelter in inputs.shelters:
        home = ids.get(shelter.village_id)
        if home and shelter_level.get(shelter.code) == "evacuate" and shelter.occupancy > 0:
            sheltered[home] = sheltered.get(home, 0) + shelter.occupancy
    return [rules.VillageNeed(
        v.code, v.population, v.vulnerable, v.moved or 0, inputs.flood.get(v.code, "none"),
        tuple(zones_of.get(v.code, ())), sheltered.get(v.code, 0)) for v in inputs.villages]


def _shelter_levels(inputs: Inputs) -> dict[str, str]:
    """A shelter is in danger when its village is at evacuate or it lies in a zone at evacuate."""
    village_level = {v.id: inputs.levels.get(v.code, "none") for v in inputs.villages}
    danger = [inputs.zone_info.shapes[z.code] for z, level in inputs.zones
              if level == "evacuate" and z.code in inputs.zone_info.shapes]
    lon = np.array([s.lon for s in inputs.shelters], dtype=float)
    lat = np.array([s.lat for s in inputs.shelters], dtype=float)
    inside = np.zeros(len(inputs.shelters), dtype=bool)
    for shape in danger:
        inside |= shapely.intersects_xy(shape, lon, lat)
    return {s.code: "evacuate" if inside[i] or village_level.get(s.village_id) == "evacuate"
            else "none" for i, s in enumerate(inputs.shelters)}


def _access(net: Network, points_lonlat: np.ndarray, speed_kmh: float):
    if not len(points_lonlat):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    x, y = _transformer(net.epsg).transform(points_lonlat[:, 0], points_lonlat[:, 1])
    nodes, dist = routing.nearest_nodes(net.node_xy, np.column_stack([x, y]))
    return nodes, dist / (speed_kmh / 3.6)


def _lonlat(rows) -> np.ndarray:
    return np.array([(r.lon, r.lat) for r in rows], dtype=float).reshape(-1, 2)


# Each independent part's last solution by its content (maps.solver.solve_parts): a change in
# one township re-solves that township only, and the others keep their assignments.
_memos: dict[str, dict] = {}


def _together(sub: solver.Instance) -> solver.Solution:
    """The together heuristic on one part, guided by that part's exact plan."""
    return solver.solve_together(sub, guide=solver.solve(sub))


def compute(session: Session, settings, *, drill_levels: dict[str, str] | None = None,
            mode: str = "split", now: datetime | None = None) -> dict[str, Any]:
    """The plan document (DESIGN's JSON, without version and trigger) for the current inputs."""
    started = time.perf_counter()
    now = now or utcnow()
    cfg = settings.evacuation
    net = network(session)
    inputs = read_inputs(session, net, drill_levels)
    local = now.astimezone(ZoneInfo(cfg.timezone))
    night = rules.is_night(local, minutes_of_day(cfg.night_start), minutes_of_day(cfg.night_end))
    shelter_level = _shelter_levels(inputs)
    needs = _needs(session, inputs, shelter_level)
    demand = np.array([rules.demand(n, cfg.prepare_fraction) for n in needs],
                      dtype=np.int64).reshape(-1, 4)

    v_nodes, v_access = _access(net, _lonlat(inputs.villages),
                                cfg.access_speed_kmh)
    s_nodes, s_access = _access(net, _lonlat(inputs.shelters),
                                cfg.access_speed_kmh)
    states = [rules.ShelterState(s.code, s.capacity_day, s.capacity_night, s.occupancy,
                                 s.status, shelter_level[s.code]) for s in inputs.shelters]
    avail = [rules.availability(st, night) for st in states]
    usable = np.array([why is None for _, why in avail], dtype=bool)
    open_segments = np.array([code not in inputs.closed for code in net.graph.codes])
    limit_s = cfg.max_travel_min * 60.0

    route_started = time.perf_counter()
    wanted = demand.sum(axis=1) > 0
    targets = s_nodes[usable]
    v_idx = np.flatnonzero(wanted)
    # Times from the villages with people to move only, kept per connected part (compact).
    reach = routing.reach_targets(net.graph, open_segments, targets, limit_s,
                                  sources=v_nodes[v_idx])
    # travel_s(v, s) = access(v) + road time node(v) -> node(s) + access(s), whole seconds.
    usable_idx = np.flatnonzero(usable)
    road = reach.time_s
    total = road + v_access[v_idx][None, :] + s_access[usable_idx][:, None]
    ok = np.isfinite(total) & (total <= limit_s)
    rows, cols = np.nonzero(ok)
    route_ms = (time.perf_counter() - route_started) * 1000

    instance = solver.Instance(
        demand=demand[v_idx] if len(v_idx) else np.zeros((0, 4), dtype=np.int64),
        capacity=np.array([max(0, avail[i][0]) for i in usable_idx], dtype=np.int64),
        arc_village=cols.astype(np.int32), arc_shelter=rows.astype(np.int32),
        arc_travel_s=np.rint(total[rows, cols]).astype(np.int64))
    memo = _memos.setdefault(str(session.get_bind().url), {})
    solution = solver.solve_parts(instance, solver.solve, memo)
    gap = None
    if mode == "together":  # the heuristic, guided by the exact plan, and its gap to it
        exact = solution
        solution = solver.solve_parts(instance, _together, memo)
        gap = {"exact_objective_person_s": int(exact.objective_person_s),
               "exact_placed": int(exact.placed.sum()),
               "placed": int(solution.placed.sum()),
               # Only meaningful when both place the same people (else compare `placed`).
               "objective_gap_pct": round(100.0 * (solution.objective_person_s
                                                   / exact.objective_person_s - 1), 2)
               if exact.objective_person_s else 0.0}

    doc = _document(net, inputs, needs, demand, v_idx, v_nodes, v_access, s_nodes, s_access,
                    avail, usable_idx, reach, instance, solution)
    doc.update({"mode": mode, "drill": inputs.drill, "night": night,
                "objective_person_s": int(solution.objective_person_s)})
    if gap is not None:
        doc["together_gap"] = gap
    metrics = doc["metrics"]
    metrics.update({"route_ms": round(route_ms, 1), "solve_ms": round(solution.solve_ms, 1),
                    "total_ms": round((time.perf_counter() - started) * 1000, 1)})
    return doc


def _document(net, inputs, needs, demand, v_idx, v_nodes, v_access, s_nodes, s_access, avail,
              usable_idx, reach, instance, solution) -> dict[str, Any]:
    codes = net.graph.codes
    node_ids = net.graph.node_ids
    row_of_v = {int(v): i for i, v in enumerate(v_idx)}
    assignments = []
    assigned = np.zeros(len(inputs.shelters), dtype=np.int64)
    max_travel = 0
    for arc in np.flatnonzero(solution.flow > 0):
        vi = int(v_idx[instance.arc_village[arc]])
        row = int(instance.arc_shelter[arc])
        si = int(usable_idx[row])
        people = int(solution.flow[arc])
        assigned[si] += people
        travel = int(instance.arc_travel_s[arc])
        max_travel = max(max_travel, travel)
        path = routing.route(net.graph, reach, row, int(v_nodes[vi]))
        assignments.append({
            "village": inputs.villages[vi].code, "shelter": inputs.shelters[si].code,
            "people": people, "by_class": [int(x) for x in solution.by_class[arc]],
            "travel_s": travel, "roads": [codes[i] for i in path]})
    assignments.sort(key=lambda a: (a["village"], a["shelter"]))
    villages = []
    for vi, village in enumerate(inputs.villages):
        row = row_of_v.get(vi)
        placed = int(solution.placed[row].sum()) if row is not None else 0
        unplaced = int(solution.unplaced[row].sum()) if row is not None else 0
        reason = solution.reason[row] if row is not None and unplaced else None
        villages.append({
            "code": village.code, "name": village.name_zh, "name_pinyin": village.name_pinyin,
            "level": inputs.levels.get(village.code, "none"),
            "to_move": [int(x) for x in demand[vi]],
            "node": int(node_ids[v_nodes[vi]]), "access_s": int(round(float(v_access[vi]))),
            "placed": placed, "unplaced": unplaced, "reason": reason,
            "population": village.population, "moved": needs[vi].moved,
            "contact_name": village.contact_name, "contact_phone": village.contact_phone})
    shelters = []
    for si, shelter in enumerate(inputs.shelters):
        available, why = avail[si]
        shelters.append({
            "code": shelter.code, "name": shelter.name_zh, "name_pinyin": shelter.name_pinyin,
            "available": int(available), "usable": why is None, "why_not": why,
            "node": int(node_ids[s_nodes[si]]), "access_s": int(round(float(s_access[si]))),
            "assigned": int(assigned[si]), "contact_name": shelter.contact_name,
            "contact_phone": shelter.contact_phone})
    unplaced = {"no_route": 0, "no_capacity": 0}
    for v in villages:
        if v["reason"] in unplaced:
            unplaced[v["reason"]] += v["unplaced"]
    problems = [{"village": v.code, "why": "no_population"} for v, need in
                zip(inputs.villages, needs, strict=True)
                if inputs.levels.get(v.code, "none") != "none" and need.population <= 0]
    problems += [{"shelter": s.code, "why": "over_capacity"} for s in inputs.shelters
                 if s.occupancy > max(s.capacity_day, s.capacity_night)]
    problems += [{"shelter": s.code, "why": "negative_capacity"} for s in inputs.shelters
                 if min(s.capacity_day, s.capacity_night, s.occupancy) < 0]
    # A village or shelter whose walk to the nearest road node is already most of the limit:
    # its node is probably not the road it uses (a missing road, or a misplaced point).
    far = FAR_FROM_ROADS_S
    problems += [{"village": v["code"], "why": "far_from_roads", "access_s": v["access_s"]}
                 for v in villages if v["access_s"] > far and sum(v["to_move"])]
    problems += [{"shelter": x["code"], "why": "far_from_roads", "access_s": x["access_s"]}
                 for x in shelters if x["access_s"] > far]
    problems += [{"hazard": code, "why": "invalid_polygon_repaired"}
                 for code in inputs.zone_info.repaired]
    stranded = sorted({v["code"] for v in villages if v["reason"] == "no_route"})
    if stranded:  # say how many parts the open roads fall into (a cut-off valley shows)
        parts = routing.components(net.graph, np.array([c not in inputs.closed
                                                       for c in net.graph.codes]))
        problems.append({"why": "no_route", "villages": stranded,
                         "road_parts": int(len(np.unique(parts)))})
    return {
        "metrics": {"to_move": int(demand.sum()), "placed": int(solution.placed.sum()),
                    "unplaced": unplaced, "max_travel_s": max_travel},
        "closed_roads": [{"code": c, "why": w} for c, w in sorted(inputs.closed.items())],
        "villages": villages, "shelters": shelters, "assignments": assignments,
        "problems": problems,
    }


# --- storing and reading versions -----------------------------------------------------------------

def inputs_key(doc: dict[str, Any]) -> str:
    """What decides a live plan, as a short key (levels, people, closures, shelters)."""
    import hashlib
    import json

    parts = {"v": [(v["code"], v["level"], v["to_move"]) for v in doc["villages"]],
             "r": [r["code"] for r in doc["closed_roads"]],
             "s": [(s["code"], s["available"], s["usable"]) for s in doc["shelters"]],
             "mode": doc["mode"]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def latest(session: Session, *, live_only: bool = False) -> EvacuationPlan | None:
    query = select(EvacuationPlan).order_by(EvacuationPlan.version.desc()).limit(1)
    if live_only:
        query = query.where(EvacuationPlan.drill.is_(False))
    return session.scalar(query)


def store(session: Session, doc: dict[str, Any], *, trigger: str, ref: str, actor: str,
          now: datetime | None = None) -> EvacuationPlan:
    """Store a computed plan as the next version (audited) in the caller's transaction."""
    now = now or utcnow()
    for _ in range(5):
        version = (session.scalar(select(func.max(EvacuationPlan.version))) or 0) + 1
        body = {"version": version, "created_at": now.isoformat(timespec="seconds"),
                "trigger": {"kind": trigger, "ref": ref or None}, **doc}
        plan = EvacuationPlan(
            version=version, created_at=now, created_by=actor, trigger_kind=trigger,
            trigger_ref=ref or "", mode=doc["mode"], drill=doc["drill"],
            objective_person_s=doc["objective_person_s"], to_move=doc["metrics"]["to_move"],
            placed=doc["metrics"]["placed"], inputs_key=inputs_key(doc), body=body)
        try:
            with session.begin_nested():
                session.add(plan)
                session.flush()
        except IntegrityError:
            continue  # another process took this version number: take the next
        audit.record(session, actor=actor, action="evacuation.plan", entity_type="plan",
                     entity_id=version, after={"trigger": trigger, "ref": ref, "mode": plan.mode,
                                               "drill": plan.drill, "to_move": plan.to_move,
                                               "placed": plan.placed,
                                               "objective_person_s": plan.objective_person_s})
        return plan
    raise RuntimeError("could not take a plan version number after 5 tries")


def summary(plan: EvacuationPlan) -> dict[str, Any]:
    """A version as listed (no villages, shelters or assignments)."""
    body = plan.body
    return {"version": plan.version, "created_at": body.get("created_at"),
            "trigger": body.get("trigger"), "mode": plan.mode, "drill": plan.drill,
            "objective_person_s": plan.objective_person_s, "metrics": body.get("metrics")}
