"""Bodies, query parameters and answers of the telemetry endpoints, for the OpenAPI document
(DESIGN §5: the sensor registry, readings over HTTP, dead letters)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from dispatch.core import openapi
from dispatch.core.api_schemas import (
    IMPORT_MEDIA,
    JSON,
    LAT,
    LON,
    NULLABLE_TIMESTAMP,
    TIMESTAMP,
    items_of,
    obj,
    ok,
    query,
)
from telemetry.choices import UNITS, SensorKind
from telemetry.decode import MAX_BATCH, MAX_SENSOR_CODE, MAX_SEQ
from telemetry.metrics import LETTER_REASONS, REJECT_REASONS
from telemetry.series import MAX_ROWS

NUMBER = {"type": "number"}
# A registered code: letters, digits, "-", "_" and "." (telemetry.service.CODE_CHARS).
SENSOR_CODE = {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,64}$"}
# Text the service strips first: at least one character that is not a space.
LINK = {"type": ["string", "null"], "minLength": 1, "maxLength": 64, "pattern": r"\S"}
RANGE = {"type": ["array", "null"], "items": NUMBER, "minItems": 2, "maxItems": 2,
         "description": "[min, max], min < max: the instrument's hard limits"}
INTERVAL = {"type": "number", "minimum": 10, "maximum": 86400}
QC = {"type": "object", "additionalProperties": {"type": ["number", "null"]},
      "description": "quality-control parameters merged over the kind's defaults"}
# Each kind reports in its own unit (telemetry.choices.UNITS).
KIND_UNITS = [obj({"kind": {"const": str(kind)}, "unit": {"enum": list(units)}})
              for kind, units in UNITS.items()]

REGISTER = {
    **obj({"code": SENSOR_CODE, "kind": {"enum": list(SensorKind)},
           "unit": {"enum": sorted({u for units in UNITS.values() for u in units})},
           "gateway": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"},
           "lon": LON, "lat": LAT,
           "name": {**LINK, "maxLength": 128}, "village": LINK, "hazard": LINK, "range": RANGE,
           "interval_s": {**INTERVAL, "type": ["number", "null"]},
           "qc": {**QC, "type": ["object", "null"]}},
          "code", "kind", "unit", "gateway", "lon", "lat"),
    "oneOf": KIND_UNITS,
}
CHANGE = {
    **obj({"name": {**LINK, "type": "string", "maxLength": 128}, "lon": LON, "lat": LAT,
           "village": LINK, "hazard": LINK, "range": RANGE, "interval_s": INTERVAL, "qc": QC,
           "retired": {"type": "boolean"}}),
    # A new location takes both coordinates.
    "dependentRequired": {"lon": ["lat"], "lat": ["lon"]},
}
SENSOR = obj({
    "code": {"type": "string"}, "name": {"type": "string"}, "kind": {"enum": list(SensorKind)},
    "unit": {"type": "string"}, "gateway": {"type": ["string", "null"]},
    "gateway_online": {"type": ["boolean", "null"]}, "lon": LON, "lat": LAT,
    "village": {"type": ["string", "null"]}, "hazard": {"type": ["string", "null"]},
    "range": {"type": "array", "items": NUMBER, "minItems": 2, "maxItems": 2},
    "interval_s": {"type": "integer"}, "qc": {"type": "object"}, "retired": {"type": "boolean"},
    "last_ts": NULLABLE_TIMESTAMP, "last_value": {"type": ["number", "null"]},
    "last_flag": {"type": ["string", "null"]}, "status_at": NULLABLE_TIMESTAMP,
}, "code", "kind", "unit", "lon", "lat", "range", "interval_s", "retired")

# One reading (DESIGN §5 MQTT); `ts` is checked against DESIGN's grammar by the hub, which
# dead-letters instead of refusing, so the schema only says "text".
# Text a database can store: no control characters (telemetry.decode refuses them as `schema`).
STORABLE = r"^[^\u0000-\u001f\u007f-\u009f]*$"
READING = obj({"sensor": {"type": "string", "minLength": 1, "maxLength": MAX_SENSOR_CODE,
                          "pattern": STORABLE},
               "ts": {"type": "string", "description":
                      "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)"},
               "value": NUMBER, "unit": {"type": ["string", "null"], "pattern": STORABLE},
               "seq": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEQ}},
              "sensor", "ts", "value")
READINGS_BODY = {"oneOf": [
    {**READING, "not": {"required": ["readings"]}},
    obj({"readings": {"type": "array", "items": READING, "maxItems": MAX_BATCH}}, "readings"),
]}
STORED = obj({"stored": {"type": "integer", "minimum": 0},
              "duplicates": {"type": "integer", "minimum": 0},
              "rejected": {"type": "array", "items": obj({
                  "index": {"type": ["integer", "null"]}, "reason": {"enum": list(REJECT_REASONS)}},
                  "index", "reason")}}, "stored", "duplicates", "rejected")

SINCE, UNTIL = (query(name, TIMESTAMP, "RFC 3339 with an offset") for name in ("since", "until"))
SERIES = obj({"sensor": {"type": "string"}, "since": TIMESTAMP, "until": TIMESTAMP,
              "items": {"type": "array", "items": {"type": "object"}}},
             "sensor", "since", "until", "items")
GATEWAY_FILTER = query("gateway", {"type": "string"}, "a gateway's code")
SENSOR_FILTER = query("sensor", {"type": "string"}, "a sensor's code")
DEAD_LETTER = obj({
    "id": {"type": "integer"}, "received_at": TIMESTAMP, "topic": {"type": "string"},
    "reason": {"enum": list(LETTER_REASONS)}, "payload": {"type": "string"},
    "payload_bytes": {"type": "integer", "minimum": 0}, "resolved": {"type": "boolean"},
    "resolved_at": NULLABLE_TIMESTAMP}, "id", "received_at", "reason", "payload", "resolved")

ENDPOINTS: dict[str, dict[str, Any]] = {
    "telemetry.list_sensors": {
        "query": [query("kind", {"enum": list(SensorKind)}), GATEWAY_FILTER,
                  query("retired", {"enum": ["1"]}, "1: retired sensors too")],
        "ok": ok(schema=items_of(SENSOR))},
    "telemetry.register_sensor": {"body": REGISTER, "ok": ok(schema=SENSOR, status=201),
                                  "errors": (409,)},
    "telemetry.import_sensors": {
        "media": IMPORT_MEDIA,
        "ok": ok(JSON, obj({"created": {"type": "integer", "minimum": 0},
                            "codes": {"type": "array", "items": {"type": "string"}}},
                           "created", "codes"), status=201),
        "errors": (415, 422)},
    "telemetry.list_gateways": {"ok": ok(schema=items_of(obj({
        "code": {"type": "string"}, "online": {"type": ["boolean", "null"]},
        "last_seen_at": NULLABLE_TIMESTAMP, "sensors": {"type": "integer", "minimum": 0}},
        "code", "sensors")))},
    "telemetry.get_sensor": {"ok": ok(schema=SENSOR)},
    "telemetry.change_sensor": {"body": CHANGE, "ok": ok(schema=SENSOR)},
    "telemetry.retire_sensor": {"ok": ok(schema=SENSOR)},
    "telemetry.sensor_readings": {
        "query": [SINCE, UNTIL, query("limit", {"type": "integer", "minimum": 1,
                                                "maximum": MAX_ROWS})],
        "ok": ok(schema=SERIES)},
    "telemetry.sensor_hourly": {"query": [SINCE, UNTIL], "ok": ok(schema=SERIES)},
    "telemetry.sensor_sums": {"ok": ok(schema=obj({
        "sensor": {"type": "string"}, "as_of": TIMESTAMP,
        # mm null: no data in the window (unknown, never counted as dry); likewise event_mm and
        # antecedent_mm.
        "windows": {"type": "object", "additionalProperties": obj(
            {"mm": {"type": ["number", "null"]},
             "complete": {"type": "number", "minimum": 0, "maximum": 1}})},
        "event_mm": {"type": ["number", "null"]},
        "antecedent_mm": {"type": ["number", "null"]}},
        "sensor", "as_of"))},
    "telemetry.post_readings": {"body": READINGS_BODY, "ok": ok(schema=STORED)},
    "telemetry.dead_letters": {
        "query": [query("reason", {"enum": [*LETTER_REASONS, "over_quota"]}), GATEWAY_FILTER,
                  SENSOR_FILTER, query("resolved", {"enum": ["0", "1"]}),
                  query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                  query("before", {"type": "integer", "minimum": 1, "maximum": MAX_SEQ},
                        "page on: the `next_before` of the previous answer")],
        "ok": ok(schema={**items_of(DEAD_LETTER), "properties": {
            "items": {"type": "array", "items": DEAD_LETTER},
            "next_before": {"type": ["integer", "null"]}}})},
    "telemetry.dead_letters_summary": {
        "query": [GATEWAY_FILTER, SENSOR_FILTER],
        "ok": ok(schema=obj({"reasons": {"type": "object"},
                             "total": {"type": "integer", "minimum": 0},
                             "unresolved": {"type": "integer", "minimum": 0},
                             "latest_id": {"type": ["integer", "null"]}},
                            "reasons", "total", "unresolved"))},
    "telemetry.reprocess_dead_letter": {
        "body": obj({"action": {"enum": ["reprocess", "keep", "replace", "dismiss"]}}),
        "body_required": False,
        "ok": ok(schema=obj({"resolution": {
            "enum": ["reprocessed", "kept", "replaced", "dismissed", None]}}, "resolution")),
        "errors": (409,)},
}


def init_app(app: Flask) -> None:
    """Describe the telemetry endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)
