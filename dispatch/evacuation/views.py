"""Evacuation plan endpoints (DESIGN §5 "Evacuation (contract)"): thin adapters over
dispatch.evacuation.service and planner."""

from __future__ import annotations

import json
from typing import Any

import shapely
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.body import json_object
from dispatch.core.choices import EDITORS, PERSON_ROLES
from dispatch.core.db import db
from dispatch.core.errors import BadRequest, NotFound, parameter_error
from dispatch.evacuation import planner, rules, service
from dispatch.evacuation.models import EvacuationPlan
from maps.models import Shelter, Village

bp = Blueprint("evacuation", __name__)

# The most versions one list answers (newest first).
MAX_ITEMS = 500
MAX_VERSION = 2**31 - 1


def _version(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit() or not 0 < int(text) <= MAX_VERSION:
        raise parameter_error(name, _l("must be a plan version (a whole number from 1)"))
    return int(text)


def _plan(version: int) -> EvacuationPlan:
    # A number past the column's range is no version (and must not reach the database).
    plan = db.session.scalar(select(EvacuationPlan).where(
        EvacuationPlan.version == version)) if 0 < version <= MAX_VERSION else None
    if plan is None:
        raise NotFound(_l("There is no evacuation plan version %(version)s.", version=version),
                       code="no_plan")
    return plan


def _latest() -> EvacuationPlan:
    plan = service.latest(db.session, live_only=True)
    if plan is None:
        raise NotFound(_l("There is no evacuation plan yet: one is made when a village is "
                          "warned, or ask for one (POST /api/v1/evacuation/plan)."),
                       code="no_plan")
    return plan


def _request_body() -> tuple[dict[str, str] | None, str]:
    body = json_object(required=False)
    unknown = sorted(set(body) - {"levels", "mode"})
    if unknown:
        raise BadRequest(_l("Unknown fields: %(names)s. Send levels and/or mode.",
                            names=", ".join(unknown)), code="bad_request")
    mode = body.get("mode", "split")
    if mode not in service.MODES:
        raise BadRequest(_l("mode must be split or together."), code="bad_mode")
    levels = None
    if "levels" in body:
        codes = db.session.scalars(select(Village.code)).all()
        try:
            levels = rules.levels_from(body["levels"], codes)
        except ValueError as exc:
            raise BadRequest(_l("levels: %(problem)s", problem=str(exc)),
                             code="bad_levels") from None
    return levels, mode


@bp.post("/api/v1/evacuation/plan")
@auth.roles(*EDITORS)
def create_plan():
    """Compute and store a new version now (levels given by hand make a drill)."""
    levels, mode = _request_body()
    actor = auth.current_principal().actor
    db.session.commit()  # the planner opens its own transaction
    plan = planner.make_plan(current_app._get_current_object(), trigger="manual", ref=actor,
                             actor=actor, drill_levels=levels, mode=mode)
    return jsonify(plan.body), 201


@bp.get("/api/v1/evacuation/plan")
@auth.roles(*PERSON_ROLES)
def latest_plan():
    """The latest live plan (drills are listed with the versions)."""
    return jsonify(_latest().body)


@bp.get("/api/v1/evacuation/plans")
@auth.roles(*PERSON_ROLES)
def list_plans():
    """Versions, newest first (summaries: trigger, mode, drill, metrics)."""
    rows = db.session.scalars(select(EvacuationPlan).order_by(EvacuationPlan.version.desc())
                              .limit(MAX_ITEMS)).all()
    return jsonify({"items": [service.summary(p) for p in rows]})


@bp.get("/api/v1/evacuation/plans/<int:version>")
@auth.roles(*PERSON_ROLES)
def get_plan(version: int):
    """One version, whole."""
    return jsonify(_plan(version).body)


@bp.get("/api/v1/evacuation/plans/<int:version>/diff")
@auth.roles(*PERSON_ROLES)
def plan_diff(version: int):
    """Who moves elsewhere between version `from` (default: the one before) and this one."""
    new = _plan(version)
    before = _version(request.args.get("from"), "from")
    if before is None:
        old = db.session.scalar(select(EvacuationPlan).where(
            EvacuationPlan.version < version, EvacuationPlan.drill.is_(new.drill))
            .order_by(EvacuationPlan.version.desc()).limit(1))
    else:
        old = _plan(before)
    old_body = old.body if old is not None else {}
    return jsonify({"from": old.version if old is not None else None, "to": new.version,
                    "moves": rules.diff(old_body, new.body)})


def _route_line(lines, codes_index, roads: list[str], start) -> list[list[float]]:
    """The route's coordinates in travel order from the village's node."""
    coords: list[list[float]] = []
    at = start
    for code in roads:
        points = [list(p) for p in lines[codes_index[code]].coords]
        if at is not None and _far(points[0], at) > _far(points[-1], at):
            points.reverse()
        coords.extend(points if not coords else points[1:])
        at = points[-1]
    return coords


def _far(a, b) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def plan_features(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan as GeoJSON features: routes, unplaced villages, closed roads, unusable shelters."""
    net = service.network(db.session)
    node_at = {int(n): net.node_lonlat[i].tolist() for i, n in enumerate(net.graph.node_ids)}
    villages = {v["code"]: v for v in body["villages"]}
    features = []
    for a in body["assignments"]:
        start = node_at.get(villages[a["village"]]["node"])
        coords = _route_line(net.lines, net.by_code, a["roads"], start)
        if len(coords) < 2:  # village and shelter at one node: a point is all there is
            coords = [start, start] if start else []
        features.append({"type": "Feature", "geometry": {"type": "LineString",
                                                         "coordinates": coords},
                         "properties": {"kind": "route", **a}})
    for v in body["villages"]:
        if v["unplaced"]:
            features.append({"type": "Feature",
                             "geometry": {"type": "Point", "coordinates": node_at.get(v["node"])},
                             "properties": {"kind": "unplaced", "village": v["code"],
                                            "name": v["name"], "people": v["unplaced"],
                                            "reason": v["reason"]}})
    for road in body["closed_roads"]:
        index = net.by_code.get(road["code"])
        if index is not None:
            features.append({"type": "Feature",
                             "geometry": shapely.geometry.mapping(net.lines[index]),
                             "properties": {"kind": "closed_road", **road}})
    for s in body["shelters"]:
        if not s["usable"]:
            features.append({"type": "Feature",
                             "geometry": {"type": "Point", "coordinates": node_at.get(s["node"])},
                             "properties": {"kind": "unusable_shelter", "shelter": s["code"],
                                            "name": s["name"], "why_not": s["why_not"]}})
    return features


@bp.get("/api/v1/evacuation/plan.geojson")
@auth.roles(*PERSON_ROLES)
def plan_geojson():
    """The latest live plan (or ?version=) as a FeatureCollection for the map."""
    version = _version(request.args.get("version"), "version")
    plan = _plan(version) if version is not None else _latest()
    collection = {"type": "FeatureCollection", "version": plan.version, "drill": plan.drill,
                  "features": plan_features(plan.body)}
    return Response(json.dumps(collection, ensure_ascii=False, separators=(",", ":")),
                    mimetype="application/geo+json")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


__all__ = ["bp", "init_app", "plan_features", "Shelter"]
