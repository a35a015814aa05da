"""Bodies, query parameters and answers of the check-out, check-in, inspection, repair and
readiness endpoints, for the OpenAPI document (DESIGN §5 "Depot (contract)")."""

from __future__ import annotations

from typing import Any

from flask import Flask

from depot import rules
from depot.models import CATEGORIES, INSPECTION_RESULTS, ITEM_STATUSES, RECIPIENT_KINDS
from dispatch.core import openapi
from dispatch.core.api_schemas import NULLABLE_TIMESTAMP, TIMESTAMP, items_of, obj, ok, query

TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": ["string", "null"]}
INT = {"type": "integer"}
NULLABLE_INT = {"type": ["integer", "null"]}
BOOL = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
CODE = {"type": "string", "minLength": 1, "maxLength": 32,
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}
QTY = {"type": "number", "exclusiveMinimum": 0}
STATUS = {"enum": list(ITEM_STATUSES)}

HOLDER = {"type": "object", "minProperties": 1, "maxProperties": 1,
          "properties": {kind: CODE for kind in RECIPIENT_KINDS}, "additionalProperties": False}
STOCK_OUT = obj({"type": CODE, "qty": QTY, "bin": TEXT}, "type", "qty", "bin")
CHECKOUT_BODY = obj({
    "items": {"type": "array", "items": CODE, "maxItems": 500},
    "stock": {"type": "array", "items": STOCK_OUT, "maxItems": 500},
    "kit": CODE,
    "site": {**CODE, "description": "with a kit alone: pick from this site only"},
    "to": HOLDER, "due": TIMESTAMP, "note": {"type": "string", "maxLength": 200}}, "to")
LINE = obj({"item": NULLABLE_TEXT, "type": TEXT, "bin": NULLABLE_TEXT, "qty": {"type": "number"},
            "returned_qty": {"type": "number"}, "returned_at": NULLABLE_TIMESTAMP,
            "condition": {"enum": [*rules.CONDITIONS, None]}, "note": TEXT,
            "status": {"enum": [*ITEM_STATUSES, None]}},
           "item", "type", "bin", "qty", "returned_qty", "returned_at", "condition")
CHECKOUT = obj({
    "id": INT, "to": obj({"kind": {"enum": list(RECIPIENT_KINDS)}, "code": TEXT}, "kind", "code"),
    "kit": NULLABLE_TEXT, "due": NULLABLE_TIMESTAMP, "at": TIMESTAMP, "by": TEXT, "note": TEXT,
    "closed_at": NULLABLE_TIMESTAMP, "open": BOOL, "overdue": BOOL,
    "reminded_at": NULLABLE_TIMESTAMP, "lines": {"type": "array", "items": LINE},
    "picked": BOOL}, "id", "to", "due", "at", "by", "closed_at", "open", "overdue", "lines")
CHECKIN_BODY = obj({
    "items": {"type": "array", "maxItems": 500, "items": obj({
        "code": CODE, "condition": {"enum": list(rules.CONDITIONS)},
        "note": {"type": "string", "maxLength": 200}}, "code")},
    "stock": {"type": "array", "maxItems": 500, "items": obj({
        "type": CODE, "qty": QTY, "bin": TEXT,
        "checkout": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}, "type", "qty")}})
CHECKIN = obj({
    "items": {"type": "array", "items": obj({
        "code": TEXT, "condition": {"enum": list(rules.CONDITIONS)}, "status": STATUS,
        "repair": NULLABLE_INT}, "code", "condition", "status", "repair")},
    "stock": {"type": "array", "items": obj({"type": TEXT, "qty": {"type": "number"}},
                                            "type", "qty")},
    "checkouts": {"type": "array", "items": CHECKOUT}}, "items", "stock", "checkouts")
INSPECTION_BODY = obj({
    "result": {"enum": list(INSPECTION_RESULTS)},
    "checklist": {"type": "object", "maxProperties": 100,
                  "additionalProperties": {"type": ["boolean", "string", "null"],
                                           "maxLength": 200}},
    "note": {"type": "string", "maxLength": 500}}, "result")
INSPECTION = obj({"id": INT, "item": TEXT, "at": TIMESTAMP, "by": TEXT,
                  "result": {"enum": list(INSPECTION_RESULTS)}, "checklist": {"type": "object"},
                  "note": TEXT, "item_status": STATUS, "inspection_due": NULLABLE_DATE,
                  "repair": NULLABLE_INT},
                 "id", "item", "at", "by", "result", "item_status", "inspection_due", "repair")
REPAIR_BODY = obj({"reason": {"type": "string", "maxLength": 500},
                   "outcome": {"enum": list(rules.OUTCOMES)},
                   "note": {"type": "string", "maxLength": 500}})
REPAIR = obj({"id": INT, "item": TEXT, "opened_at": TIMESTAMP, "opened_by": TEXT,
              "reason": TEXT, "closed_at": NULLABLE_TIMESTAMP, "closed_by": NULLABLE_TEXT,
              "outcome": {"enum": [*rules.OUTCOMES, None]}, "note": TEXT, "item_status": STATUS},
             "id", "item", "opened_at", "opened_by", "closed_at", "outcome", "item_status")
DUE = obj({"code": TEXT, "status": STATUS, "inspection_due": DATE, "days_left": INT,
           "overdue": BOOL, "type": TEXT, "name_zh": TEXT, "name_en": TEXT,
           "bin": NULLABLE_TEXT}, "code", "status", "inspection_due", "days_left", "overdue")
COUNT = {"type": "integer", "minimum": 0}
READINESS = obj({
    "site": NULLABLE_TEXT, "category": NULLABLE_TEXT, "date": DATE,
    "items": {"type": "array", "items": obj({
        "type": TEXT, "name_zh": TEXT, "name_en": TEXT, "category": {"enum": list(CATEGORIES)},
        "serialized": BOOL, "unit": TEXT, "serviceable": COUNT, "out": COUNT, "repair": COUNT,
        "inspection_overdue": COUNT, "expired": COUNT, "lost": COUNT, "total": COUNT,
        "stock": {"type": ["number", "null"]}, "reorder_min": {"type": ["number", "null"]},
        "below_min": BOOL},
        "type", "category", "serviceable", "out", "repair", "inspection_overdue", "expired",
        "stock", "below_min")}}, "site", "category", "date", "items")
READINESS_BY_SITE = obj({
    "category": NULLABLE_TEXT, "date": DATE,
    "sites": {"type": "array", "items": obj({
        "code": TEXT, "name": TEXT, "items": READINESS["properties"]["items"]},
        "code", "name", "items")}}, "category", "date", "sites")
FLAG = {"enum": ["true", "false"]}

ENDPOINTS: dict[str, dict[str, Any]] = {
    "depot_checkouts.create_checkout": {"body": CHECKOUT_BODY,
                                        "ok": ok(schema=CHECKOUT, status=201),
                                        "errors": (409, 422)},
    "depot_checkouts.list_checkouts": {
        "query": [query("open", FLAG, "true: open check-outs only; false: closed only"),
                  query("overdue", FLAG, "true: open check-outs past their due time")],
        "ok": ok(schema=items_of(CHECKOUT))},
    "depot_checkouts.create_checkin": {"body": CHECKIN_BODY, "ok": ok(schema=CHECKIN),
                                       "errors": (409, 422)},
    "depot_checkouts.create_inspection": {"body": INSPECTION_BODY,
                                          "ok": ok(schema=INSPECTION, status=201),
                                          "errors": (409,)},
    "depot_checkouts.create_repair": {"body": REPAIR_BODY, "body_required": False,
                                      "ok": {**ok(schema=REPAIR, status=201), **ok(schema=REPAIR)},
                                      "errors": (409,)},
    "depot_checkouts.inspections_due": {
        "query": [query("days", {"type": "integer", "minimum": 0, "maximum": 3650},
                        "due within this many days (default [depot] inspection_warn_days)")],
        "ok": ok(schema=items_of(DUE))},
    "depot_checkouts.readiness": {
        "query": [query("site", CODE, "a depot site's code"),
                  query("category", {"enum": list(CATEGORIES)}, "one category"),
                  query("by", {"enum": ["site"]}, "every site's readiness in one answer "
                        "(without site)")],
        "ok": ok(schema={"anyOf": [READINESS, READINESS_BY_SITE]}), "errors": (404,)},
}


def init_app(app: Flask) -> None:
    """Describe the check-out endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)
