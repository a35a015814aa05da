"""Bodies, query parameters and answers of the depot's places, catalogue, item, stock and kit
endpoints, for the OpenAPI document (DESIGN §5 "Depot (contract)"). The limits are those
depot.fields and depot.service check, so the document cannot promise what the server refuses."""

from __future__ import annotations

from typing import Any

from flask import Flask

from depot import fields, labels, scan, service
from depot.choices import Category, ItemStatus, MoveKind
from depot.models import RECIPIENT_KINDS
from dispatch.core import openapi
from dispatch.core.api_schemas import (
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

TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": ["string", "null"]}
CODE = {"type": "string", "minLength": 1, "maxLength": fields.CODE_MAX,
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}
PATH = {"type": "string", "minLength": 3, "maxLength": fields.PATH_MAX,
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){1,3}$"}
NAME = {"type": "string", "minLength": 1, "maxLength": fields.NAME_MAX}
DATE = {"type": ["string", "null"], "format": "date"}
NUMBER = {"type": "number"}
QTY = {"type": "number", "minimum": -float(fields.QTY_MAX), "maximum": float(fields.QTY_MAX)}
RECIPIENT = {"type": "object", "minProperties": 1, "maxProperties": 1,
             "properties": {kind: CODE for kind in RECIPIENT_KINDS},
             "additionalProperties": False}
TO = obj({"kind": {"enum": list(RECIPIENT_KINDS)}, "code": TEXT}, "kind", "code")

SITE_FIELDS: dict[str, Any] = {
    "code": CODE, "name": NAME, "lon": LON, "lat": LAT,
    "keeper": {"type": ["string", "null"], "maxLength": fields.NAME_MAX},
    "phone": {"type": ["string", "null"], "maxLength": fields.PHONE_MAX},
    "township": {**CODE, "type": ["string", "null"]},
}
SITE = obj({"code": TEXT, "name": TEXT, "lon": {"type": ["number", "null"]},
            "lat": {"type": ["number", "null"]}, "keeper": TEXT, "phone": TEXT,
            "township": NULLABLE_TEXT}, "code", "name", "lon", "lat", "keeper", "phone")
BIN = obj({"path": TEXT, "site": TEXT}, "path", "site")

INSPECTION = obj({
    "every_days": {"type": ["integer", "null"], "minimum": 1,
                   "maximum": service.INSPECTION_DAYS},
    "checklist": {"type": ["array", "null"], "maxItems": service.CHECKLIST_MAX,
                  "items": {"type": "string", "minLength": 1, "maxLength": fields.REASON_MAX}}})
TYPE_FIELDS: dict[str, Any] = {
    "code": CODE, "name_zh": NAME,
    "name_en": {"type": ["string", "null"], "maxLength": fields.NAME_EN_MAX},
    "category": {"enum": list(Category)}, "serialized": {"type": ["boolean", "null"]},
    "unit": {"type": ["string", "null"], "maxLength": fields.UNIT_MAX},
    "whole_units": {"type": ["boolean", "null"]},
    "specs": {"type": ["object", "null"], "maxProperties": service.SPECS_MAX},
    "inspection": {**INSPECTION, "type": ["object", "null"]},
    "expiry_watch": {"type": ["boolean", "null"]},
    "reorder_min": {"type": ["number", "null"], "minimum": 0,
                    "maximum": float(fields.QTY_MAX)},
}
TYPE_BRIEF = obj({"code": TEXT, "name_zh": TEXT, "name_en": TEXT,
                  "category": {"enum": list(Category)}}, "code", "name_zh", "name_en",
                 "category")
TYPE = obj({**TYPE_BRIEF["properties"], "serialized": {"type": "boolean"}, "unit": TEXT,
            "whole_units": {"type": "boolean"}, "specs": {"type": "object"},
            "inspection": obj({"every_days": {"type": ["integer", "null"]},
                               "checklist": {"type": "array", "items": TEXT}},
                              "every_days", "checklist"),
            "expiry_watch": {"type": "boolean"}, "reorder_min": NUMBER},
           *TYPE_BRIEF["required"], "serialized", "unit", "whole_units", "inspection",
           "expiry_watch", "reorder_min")

ITEM_FIELDS: dict[str, Any] = {
    "serial": {"type": ["string", "null"], "maxLength": fields.SERIAL_MAX},
    "condition": {"type": ["string", "null"], "maxLength": fields.CONDITION_MAX},
    "bin": {**PATH, "type": ["string", "null"]},
    "home_site": {**CODE, "type": ["string", "null"]},
    "purchased": DATE, "expires": DATE, "inspection_due": DATE,
}
NEW_ITEM = obj({"code": CODE, "type": CODE, **ITEM_FIELDS,
                "status": {"enum": list(service.NEW_STATUSES)}}, "code", "type")
ITEM_CHANGE = obj({**ITEM_FIELDS, "status": {"enum": list(ItemStatus)}})
ITEM = obj({
    "code": TEXT, "type": TYPE_BRIEF, "serial": TEXT, "status": {"enum": list(ItemStatus)},
    "condition": TEXT, "bin": NULLABLE_TEXT, "home_site": NULLABLE_TEXT, "purchased": DATE,
    "expires": DATE, "inspection_due": DATE,
    "holder": {"type": ["object", "null"], "properties": {
        "to": TO, "since": TIMESTAMP, "due": NULLABLE_TIMESTAMP,
        "checkout": {"type": "integer"}}}},
    "code", "type", "serial", "status", "condition", "bin", "home_site", "purchased",
    "expires", "inspection_due", "holder")
HISTORY_ENTRY = obj({"kind": {"enum": ["checkout", "checkin", "inspection", "repair_opened",
                                       "repair_closed", "audit"]},
                     "at": TIMESTAMP}, "kind", "at")
ITEM_PAGE = obj({"items": {"type": "array", "items": ITEM},
                 "total": {"type": "integer", "minimum": 0},
                 "limit": {"type": "integer"}, "offset": {"type": "integer"}},
                "items", "total", "limit", "offset")
# Query values: a code (type, site) is short; a bin path or a search text longer. Together they
# stay well within the request line a server takes (gunicorn: 4,094 bytes, percent-encoded).
FILTER = {"type": "string", "maxLength": fields.PATH_MAX}
CODE_FILTER = {"type": "string", "maxLength": fields.CODE_MAX}
ITEM_QUERY = [
    query("q", FILTER, "part of the code, serial, type name or bin path"),
    query("type", CODE_FILTER, "items of this type (code)"),
    query("status", {"enum": list(ItemStatus)}, "items in this status"),
    query("site", CODE_FILTER, "items in this site's bins (or of this home site, when in no bin)"),
    query("category", {"enum": list(Category)}, "items of types of this category"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": service.MAX_LIMIT},
          f"page size (default {service.DEFAULT_LIMIT})"),
    query("offset", {"type": "integer", "minimum": 0, "maximum": service.MAX_OFFSET},
          "items to skip"),
]

STOCK_LINE = obj({"type": TYPE_BRIEF, "unit": TEXT, "bin": TEXT, "site": TEXT,
                  "quantity": NUMBER, "site_quantity": NUMBER, "reorder_min": NUMBER,
                  "below_min": {"type": "boolean"}},
                 "type", "unit", "bin", "site", "quantity", "reorder_min", "below_min")
STOCK_QUERY = [
    query("type", CODE_FILTER, "lines of this type (code)"),
    query("bin", FILTER, "lines of this bin (path)"),
    query("site", CODE_FILTER, "lines in this site's bins"),
    query("category", {"enum": list(Category)}, "lines of types of this category"),
    query("below_min", {"enum": ["true", "false"]},
          "lines whose site holds less of the type than its reorder minimum (or not)"),
]
NEW_MOVE = obj({"type": CODE, "bin": PATH, "kind": {"enum": list(MoveKind)}, "qty": QTY,
                "reason": {"type": ["string", "null"], "maxLength": fields.REASON_MAX},
                "to": {**RECIPIENT, "type": ["object", "null"]}}, "type", "bin", "kind", "qty")
MOVE = obj({"id": {"type": "integer"}, "type": TEXT, "bin": TEXT,
            "kind": {"enum": list(MoveKind)}, "qty": NUMBER, "reason": TEXT,
            "to": {**TO, "type": ["object", "null"]}, "by": TEXT, "at": TIMESTAMP},
           "id", "type", "bin", "kind", "qty", "reason", "to", "by", "at")
MOVE_DONE = obj({**MOVE["properties"], "quantity": NUMBER}, *MOVE["required"], "quantity")

KIT_LINE = obj({"type": CODE, "count": {"type": "integer", "minimum": 1,
                                        "maximum": service.KIT_COUNT}}, "type", "count")
NEW_KIT = obj({"code": CODE, "name": NAME,
               "lines": {"type": "array", "items": KIT_LINE, "minItems": 1,
                         "maxItems": service.KIT_LINES}}, "code", "name", "lines")
KIT = obj({"code": TEXT, "name": TEXT, "lines": {"type": "array", "items": obj({
    "type": TEXT, "count": {"type": "integer"}, "name_zh": TEXT, "name_en": TEXT},
    "type", "count")}}, "code", "name", "lines")

LABEL_QUERY = [
    # Documented short, like the other filters: with type, bin and site at their longest too,
    # a request stays within the request line a server takes. The hub reads longer lists.
    query("items", FILTER, "item codes, separated by commas (a label each, in this order); "
          "or instead of them:"),
    query("type", CODE_FILTER, "every item of this type (code)"),
    query("bin", FILTER, "every item in this bin (path) or the bins under it"),
    query("site", CODE_FILTER, "every item of this site"),
    query("layout", {"enum": list(labels.LAYOUTS)},
          f"a4-3x8 (A4, 24 labels of 70 x 37 mm; the default) or 62mm (a label printer); at "
          f"most {labels.MAX_LABELS} labels"),
]

# GET /api/v1/depot/scan (depot.scan): what a scanned code names, by kind.
SCAN_KINDS = "|".join(scan.WANTED)
OPEN_CHECKOUT = obj({"id": {"type": "integer"}, "due": NULLABLE_TIMESTAMP,
                     "overdue": {"type": "boolean"}, "lines": {"type": "array", "items": obj({
                         "item": NULLABLE_TEXT, "type": TEXT, "name": TEXT, "qty": NUMBER,
                         "returned_qty": NUMBER, "bin": NULLABLE_TEXT}, "item", "type", "qty")}},
                    "id", "due", "lines")
SCANNED = {"oneOf": [
    {**ITEM, "properties": {**ITEM["properties"], "kind": {"const": "item"}, "name": TEXT,
                            "available": {"type": "boolean"},
                            "reason": {"type": ["string", "null"]}},
     "required": [*ITEM["required"], "kind", "name", "available", "reason"]},
    obj({"kind": {"const": "kit"}, "code": TEXT, "name": TEXT, "short": {"type": "boolean"},
         "site": NULLABLE_TEXT, "lines": {"type": "array", "items": obj({
             "type": TEXT, "count": {"type": "integer"}, "name": TEXT,
             "serialized": {"type": "boolean"}, "unit": TEXT, "ready": NUMBER,
             "short": {"type": "boolean"}}, "type", "count", "name", "ready", "short")}},
        "kind", "code", "name", "lines", "short"),
    obj({"kind": {"const": "stock"}, "code": TEXT, "name": TEXT, "unit": TEXT,
         "whole_units": {"type": "boolean"}, "available": {"type": "boolean"},
         "reason": {"type": ["string", "null"]}, "bins": {"type": "array", "items": obj({
             "bin": TEXT, "site": TEXT, "quantity": NUMBER}, "bin", "site", "quantity")}},
        "kind", "code", "name", "unit", "whole_units", "bins", "available"),
    obj({"kind": {"enum": ["member", "team", "incident"]}, "code": TEXT, "name": TEXT,
         "part_of": TEXT, "checkouts": {"type": "array", "items": OPEN_CHECKOUT}},
        "kind", "code", "name", "checkouts"),
]}
SCAN_QUERY = [
    # Documented shorter than the hub reads (scan.MAX_SCAN), as the labels' `items`: at its
    # longest in 4-byte characters, percent-encoded, a request stays within the request line
    # a server takes (a code is at most 32 characters).
    {**query("code", {"type": "string", "minLength": 1, "maxLength": 128},
             "the code as scanned or typed (case-insensitive; whitespace and CR/LF trimmed)"),
     "required": True},
    query("want", {"type": "string", "maxLength": 64,
                   "pattern": f"^({SCAN_KINDS})(,({SCAN_KINDS}))*$"},
          "the kinds this step takes, comma-separated (default: any)"),
    query("site", CODE_FILTER, "count a kit's ready items and a stock type's bins at this site"),
]

CSV_MEDIA = {
    "text/csv": {"type": "string"},
    "multipart/form-data": obj({"file": {"type": "string", "format": "binary"}}, "file"),
}
CREATED = 201

ENDPOINTS: dict[str, dict[str, Any]] = {
    "depot.list_sites": {"ok": ok(schema=items_of(SITE))},
    "depot.create_site": {"body": obj(SITE_FIELDS, "code", "name"),
                          "ok": ok(schema=SITE, status=CREATED), "errors": (409,)},
    "depot.list_bins": {"query": [query("site", CODE_FILTER, "bins of this site")],
                        "ok": ok(schema=items_of(BIN)), "errors": (404,)},
    "depot.create_bin": {"body": obj({"path": PATH}, "path"),
                         "ok": ok(schema=BIN, status=CREATED), "errors": (409,)},
    "depot.list_types": {"query": [query("category", {"enum": list(Category)})],
                         "ok": ok(schema=items_of(TYPE))},
    "depot.create_type": {"body": obj(TYPE_FIELDS, "code", "name_zh", "category"),
                          "ok": ok(schema=TYPE, status=CREATED), "errors": (409,)},
    "depot.list_items": {"query": ITEM_QUERY, "ok": ok(schema=ITEM_PAGE), "errors": (404,)},
    "depot.create_item": {"body": NEW_ITEM, "ok": ok(schema=ITEM, status=CREATED),
                          "errors": (409,)},
    "depot.get_item": {"ok": ok(schema={**ITEM, "properties": {
        **ITEM["properties"], "history": {"type": "array", "items": HISTORY_ENTRY}},
        "required": [*ITEM["required"], "history"]})},
    "depot.update_item": {"body": ITEM_CHANGE, "ok": ok(schema=ITEM), "errors": (409,)},
    "depot.import_items": {"media": CSV_MEDIA, "ok": ok(JSON, obj(
        {"created": {"type": "integer", "minimum": 0}}, "created")), "errors": (409, 422)},
    "depot.list_stock": {"query": STOCK_QUERY, "ok": ok(schema=items_of(STOCK_LINE)),
                         "errors": (404,)},
    "depot.list_moves": {"query": [
        query("type", CODE_FILTER, "moves of this type"), query("bin", FILTER, "moves of this bin"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": service.MAX_LIMIT})],
        "ok": ok(schema=items_of(MOVE))},
    "depot.create_move": {"body": NEW_MOVE, "ok": ok(schema=MOVE_DONE, status=CREATED),
                          "errors": (409,)},
    "depot.import_stock": {"media": CSV_MEDIA, "ok": ok(JSON, obj(
        {"moves": {"type": "integer", "minimum": 0}}, "moves")), "errors": (409, 422)},
    "depot.list_kits": {"ok": ok(schema=items_of(KIT))},
    "depot_labels.labels_page": {"query": LABEL_QUERY, "ok": ok("text/html", TEXT),
                                 "errors": (404,)},
    "depot_scan.resolve_scan": {"query": SCAN_QUERY, "ok": ok(schema=SCANNED),
                                "errors": (404, 409)},
    "depot.create_kit": {"body": NEW_KIT, "ok": ok(schema=KIT, status=CREATED),
                         "errors": (409,)},
}


def init_app(app: Flask) -> None:
    """Describe the depot's catalogue, item, stock and kit endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)
