"""Bodies, query parameters and answers of the positions' endpoints, for the OpenAPI document
(DESIGN §5 "Roster and positions (contract)"). The phones' endpoints are public in the
document's sense: they carry their own credentials (OwnTracks: HTTP Basic with the device's
login and secret; OsmAnd / Traccar Client: the device identifier), and answer 401 without."""

from __future__ import annotations

from typing import Any

from flask import Flask

from dispatch.core import openapi
from dispatch.core.api_schemas import JSON, LAT, LON, TIMESTAMP, obj, ok, query
from dispatch.positions.models import SOURCES

NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
TEXT = {"type": "string"}

# OwnTracks JSON (booklet "JSON"): a location, a transition, or any other type (ignored).
OWNTRACKS = obj({
    "_type": TEXT, "lat": LAT, "lon": LON, "tst": {"type": "integer", "minimum": 0},
    "acc": NUMBER, "vel": NUMBER, "batt": NUMBER, "tid": TEXT,
    "event": {"enum": ["enter", "leave"]}, "desc": TEXT}, "_type")
# Traccar Client's body (its `locationTemplate`), a location or a list of them.
TRACCAR_LOCATION = obj({
    "timestamp": TIMESTAMP,
    "coords": obj({"latitude": LAT, "longitude": LON, "accuracy": NUMBER, "speed": NUMBER,
                   "heading": NUMBER, "altitude": NUMBER}, "latitude", "longitude"),
    "battery": obj({"level": NUMBER, "is_charging": {"type": "boolean"}})},
    "timestamp", "coords")
TRACCAR = obj({"device_id": TEXT, "location": {"oneOf": [
    TRACCAR_LOCATION, {"type": "array", "items": TRACCAR_LOCATION, "maxItems": 500}]}},
    "device_id", "location")
OSMAND_FIELDS = obj({"id": TEXT, "deviceid": TEXT, "lat": TEXT, "lon": TEXT, "location": TEXT,
                     "timestamp": TEXT, "speed": TEXT, "bearing": TEXT, "altitude": TEXT,
                     "accuracy": TEXT, "batt": TEXT})
OSMAND_QUERY = [
    query("id", TEXT, "the device identifier `rescuehub device add --kind traccar` printed"),
    query("deviceid", TEXT, "the same, under OsmAnd's other name"),
    query("lat", TEXT, "latitude, WGS 84 degrees"), query("lon", TEXT, "longitude"),
    query("location", TEXT, "lat,lon instead of lat and lon"),
    query("timestamp", TEXT, "epoch seconds (milliseconds from 1e11), or RFC 3339"),
    query("speed", TEXT, "knots"), query("bearing", TEXT, "degrees"),
    query("altitude", TEXT, "metres"), query("accuracy", TEXT, "metres"),
    query("batt", TEXT, "battery, %")]

FIX = obj({"ts": TIMESTAMP, "lon": LON, "lat": LAT, "accuracy_m": NULLABLE_NUMBER,
           "speed_mps": NULLABLE_NUMBER, "battery_pct": NULLABLE_NUMBER,
           "source": {"enum": list(SOURCES)}}, "ts", "lon", "lat", "source")
TRACK = obj({"member": TEXT, "since": TIMESTAMP, "until": TIMESTAMP,
             "truncated": {"type": "boolean"}, "items": {"type": "array", "items": FIX}},
            "member", "since", "until", "truncated", "items")

ENDPOINTS: dict[str, dict[str, Any]] = {
    "positions.owntracks": {
        "media": {JSON: OWNTRACKS},
        "ok": ok(JSON, {"type": "array", "maxItems": 0}),
        "errors": (401,)},
    "positions.osmand": {
        "query": OSMAND_QUERY,
        "media": {"application/x-www-form-urlencoded": OSMAND_FIELDS, JSON: TRACCAR},
        "body_required": False,
        "ok": ok("text/plain", {"type": "string", "maxLength": 0}),
        "errors": (401,)},
    "positions.track": {
        "query": [query("member", {"type": "string", "minLength": 1, "maxLength": 32},
                        "a member's code (required)"),
                  query("since", TIMESTAMP, "RFC 3339 with an offset"),
                  query("until", TIMESTAMP, "RFC 3339 with an offset"),
                  query("limit", {"type": "integer", "minimum": 1, "maximum": 10000})],
        "ok": ok(schema=TRACK),
        "errors": (404,)},
}


def init_app(app: Flask) -> None:
    """Describe the positions' endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)
