"""Bodies, query parameters and answers of the evacuation endpoints, for the OpenAPI document
(DESIGN §5 "Evacuation (contract)")."""

from __future__ import annotations

from typing import Any

from flask import Flask

from dispatch.core import openapi
from dispatch.core.api_schemas import GEOJSON, JSON, TIMESTAMP, items_of, obj, ok, query

TEXT = {"type": "string"}
INT = {"type": "integer"}
LEVEL = {"enum": ["none", "prepare", "evacuate"]}
CLASSES = {"type": "array", "items": INT, "minItems": 4, "maxItems": 4}
TRIGGER = obj({"kind": {"enum": ["alert", "road", "shelter", "manual"]},
               "ref": {"type": ["string", "null"]}}, "kind")
METRICS = obj({"to_move": INT, "placed": INT,
               "unplaced": obj({"no_route": INT, "no_capacity": INT}, "no_route", "no_capacity"),
               "max_travel_s": INT, "route_ms": {"type": "number"},
               "solve_ms": {"type": "number"}, "total_ms": {"type": "number"}},
              "to_move", "placed", "unplaced", "max_travel_s", "route_ms", "solve_ms",
              "total_ms")
PLAN = obj({
    "version": INT, "created_at": TIMESTAMP, "trigger": TRIGGER,
    "mode": {"enum": ["split", "together"]}, "drill": {"type": "boolean"},
    "objective_person_s": INT, "metrics": METRICS,
    "closed_roads": {"type": "array", "items": obj({"code": TEXT, "why": TEXT}, "code", "why")},
    "villages": {"type": "array", "items": obj({
        "code": TEXT, "level": LEVEL, "to_move": CLASSES, "node": INT, "access_s": INT,
        "placed": INT, "unplaced": INT,
        "reason": {"enum": ["no_route", "no_capacity", None]}},
        "code", "level", "to_move", "node", "access_s", "placed", "unplaced", "reason")},
    "shelters": {"type": "array", "items": obj({
        "code": TEXT, "available": INT, "usable": {"type": "boolean"},
        "why_not": {"type": ["string", "null"]}, "node": INT, "access_s": INT,
        "assigned": INT}, "code", "available", "usable", "why_not", "node", "access_s",
        "assigned")},
    "assignments": {"type": "array", "items": obj({
        "village": TEXT, "shelter": TEXT, "people": INT, "by_class": CLASSES,
        "travel_s": INT, "roads": {"type": "array", "items": TEXT}},
        "village", "shelter", "people", "by_class", "travel_s", "roads")},
}, "version", "created_at", "trigger", "mode", "objective_person_s", "metrics", "closed_roads",
    "villages", "shelters", "assignments")
SUMMARY = obj({"version": INT, "created_at": TIMESTAMP, "trigger": TRIGGER,
               "mode": TEXT, "drill": {"type": "boolean"}, "objective_person_s": INT,
               "metrics": METRICS}, "version", "created_at", "trigger", "mode", "drill")
REQUEST = obj({"levels": {"type": "object", "additionalProperties": LEVEL},
               "mode": {"enum": ["split", "together"]}})
VERSION = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}

ENDPOINTS: dict[str, dict[str, Any]] = {
    "evacuation.create_plan": {"body": REQUEST, "body_required": False,
                               "ok": ok(schema=PLAN, status=201), "errors": (409,)},
    "evacuation.latest_plan": {"ok": ok(schema=PLAN), "errors": (404,)},
    "evacuation.list_plans": {"ok": ok(schema=items_of(SUMMARY))},
    "evacuation.get_plan": {"ok": ok(schema=PLAN)},
    "evacuation.plan_diff": {
        "query": [query("from", VERSION, "the earlier version (default: the one before)")],
        "ok": ok(schema=obj({"from": {"type": ["integer", "null"]}, "to": INT,
                             "moves": {"type": "array", "items": obj({
                                 "village": TEXT, "before": {"type": "object"},
                                 "after": {"type": "object"},
                                 "why": {"type": "array", "items": {"type": "object"}}},
                                 "village", "before", "after", "why")}},
                            "from", "to", "moves"))},
    "evacuation.plan_geojson": {
        "query": [query("version", VERSION, "a version (default: the latest live plan)")],
        "ok": ok(GEOJSON, obj({"type": {"const": "FeatureCollection"},
                               "features": {"type": "array"}}, "type", "features")),
        "errors": (404,)},
    "evacuation.plan_sheets": {"ok": ok("text/html", TEXT)},
}


def init_app(app: Flask) -> None:
    """Describe the evacuation endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)


__all__ = ["JSON", "init_app"]
