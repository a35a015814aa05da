"""Bodies, query parameters and answers of the alert and threshold endpoints, for the OpenAPI
document (DESIGN §5 "Alerts (contract)")."""

from __future__ import annotations

from typing import Any

from flask import Flask

from alerts.choices import LEVELS, AlertKind, AlertState, CapStatus
from dispatch.core import openapi
from dispatch.core.api_schemas import (
    JSON,
    NULLABLE_TIMESTAMP,
    TIMESTAMP,
    items_of,
    obj,
    ok,
    query,
)

CAP_XML = "application/cap+xml"
TEXT = {"type": "string"}
LEVEL = {"enum": sorted({lv for levels in LEVELS.values() for lv in levels})}
ALERT = obj({
    "id": {"type": "integer"}, "kind": {"enum": list(AlertKind)}, "level": LEVEL,
    "state": {"enum": list(AlertState)},
    "subject": obj({"type": {"enum": ["gauge", "village", "hazard"]}, "code": TEXT,
                    "name": TEXT}, "type", "code", "name"),
    "villages": {"type": "array", "items": TEXT}, "people": {"type": "integer"},
    "raised_at": TIMESTAMP, "updated_at": TIMESTAMP, "closed_at": NULLABLE_TIMESTAMP,
    "rule": obj({"source": TEXT}), "evidence": {"type": "array", "items": obj({
        "sensor": TEXT, "ts": TIMESTAMP, "value": {"type": "number"}})},
    "forecast": {"type": ["object", "null"]}, "escalation_step": {"type": "integer"},
    "history": {"type": "array", "items": obj({
        "at": TIMESTAMP, "state": {"enum": list(AlertState)}, "level": LEVEL, "by": TEXT,
        "note": TEXT}, "at", "state", "level", "by")},
    "cap": obj({"status": {"enum": list(CapStatus)},
                "identifier": {"type": ["string", "null"]},
                "url": {"type": ["string", "null"]}}, "status"),
}, "id", "kind", "level", "state", "subject", "villages", "raised_at", "updated_at", "rule",
    "evidence", "escalation_step", "cap")
REASON = obj({"reason": {"type": "string", "minLength": 1, "pattern": r"\S"}}, "reason")
NOTE = obj({"note": {"type": "string"}})
MM_ROW = {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1,
          "maxItems": 12}
SOIL_ROWS = obj({"dry": MM_ROW, "normal": MM_ROW, "wet": MM_ROW}, "dry", "normal", "wet")
VILLAGE_TABLE = obj({
    "gauges": {"type": "array", "items": TEXT},
    "windows_h": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0,
                                             "maximum": 24}, "minItems": 1, "maxItems": 12},
    "prepare": SOIL_ROWS, "evacuate": SOIL_ROWS,
    "antecedent_mm": obj({"dry_below": {"type": "number", "minimum": 0},
                          "wet_above": {"type": "number", "minimum": 0}})},
    "prepare", "evacuate")
CURVE = obj({"alpha": {"type": "number", "exclusiveMinimum": 0},
             "beta": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1.5}},
            "alpha", "beta")
VELOCITY = {"type": ["number", "null"], "exclusiveMinimum": 0}
HAZARD_TABLE = obj({
    "gauges": {"type": "array", "items": TEXT}, "prepare": CURVE, "evacuate": CURVE,
    "min_duration_h": {"type": "number", "exclusiveMinimum": 0},
    "sensors": {"type": "array", "items": TEXT},
    "velocity_mm_d": obj({"attention": VELOCITY, "warning": VELOCITY, "alarm": VELOCITY}),
    "agree": {"type": "integer", "minimum": 1}})

ENDPOINTS: dict[str, dict[str, Any]] = {
    "alerts.list_alerts": {
        "query": [query("state", {"enum": ["active", "all"]}, "active (default) or all"),
                  query("kind", {"enum": list(AlertKind)}),
                  query("village", TEXT, "a village's code")],
        "ok": ok(schema=items_of(ALERT))},
    "alerts.get_alert": {"ok": ok(schema=ALERT)},
    "alerts.ack_alert": {"body": NOTE, "body_required": False, "ok": ok(schema=ALERT),
                         "errors": (409,)},
    "alerts.clear_alert": {"body": REASON, "ok": ok(schema=ALERT), "errors": (409,)},
    "alerts.cancel_alert": {"body": REASON, "ok": ok(schema=ALERT), "errors": (409,)},
    "alerts.approve_alert": {"body": obj({}), "body_required": False, "ok": ok(schema=ALERT),
                             "errors": (409,)},
    "alerts.publish_alert": {"body": obj({}), "body_required": False, "ok": ok(schema=ALERT),
                             "errors": (409,)},
    "alerts.alert_cap": {"ok": ok(CAP_XML, TEXT)},
    "alerts.alert_cap_messages": {"ok": ok(schema=items_of(obj({
        "n": {"type": "integer"}, "identifier": TEXT, "msg_type": {
            "enum": ["Alert", "Update", "Cancel"]}, "status": {"enum": list(CapStatus)},
        "sent_at": TIMESTAMP, "xml": TEXT}, "n", "identifier", "msg_type", "status", "xml")))},
    "alerts.alerts_feed": {"ok": ok("application/atom+xml", TEXT)},
    "alerts.get_village_thresholds": {"ok": ok(schema=VILLAGE_TABLE)},
    "alerts.put_village_thresholds": {"body": VILLAGE_TABLE, "ok": ok(schema=VILLAGE_TABLE),
                                      "errors": (422,)},
    "alerts.get_hazard_thresholds": {"ok": ok(schema=HAZARD_TABLE)},
    "alerts.put_hazard_thresholds": {"body": HAZARD_TABLE, "ok": ok(schema=HAZARD_TABLE),
                                     "errors": (422,)},
    "alerts.import_thresholds": {
        "media": {"text/csv": TEXT, "multipart/form-data": obj(
            {"file": {"type": "string", "format": "binary"}}, "file")},
        "ok": ok(JSON, obj({"imported": {"type": "array", "items": TEXT}}, "imported")),
        "errors": (415, 422)},
}


def init_app(app: Flask) -> None:
    """Describe the alert endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)
