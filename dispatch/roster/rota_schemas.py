"""Bodies, query parameters and answers of the rota endpoints, for the OpenAPI document
(DESIGN §5 "Roster and positions (contract)": Rota)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from dispatch.core import openapi
from dispatch.core.api_schemas import NULLABLE_TIMESTAMP, TIMESTAMP, items_of, obj, ok, query
from dispatch.roster.rota import SHIFT_HOURS
from dispatch.roster.rota_service import MAX_MIN, MAX_RANGE, MAX_REASON, MAX_RULES, MAX_SQUADS

TEXT = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
NULLABLE_TEXT = {"type": ["string", "null"]}
CODE = {"type": "string", "minLength": 1, "maxLength": 32}
CLOCK = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"}
SQUADS = {"type": "array", "items": CODE, "minItems": 1, "maxItems": MAX_SQUADS}
# The template never saved takes every squad there is: none, or more than a body may name.
TEMPLATE = obj({"shift_h": {"enum": list(SHIFT_HOURS)}, "change_at": CLOCK,
                "squads": {"type": "array", "items": TEXT},
                "anchor": {"type": "string", "format": "date"}, "timezone": TEXT,
                "saved": BOOL},
               "shift_h", "change_at", "squads", "anchor", "timezone", "saved")
TEMPLATE_BODY = obj({"shift_h": {"enum": list(SHIFT_HOURS)}, "change_at": CLOCK,
                     "squads": SQUADS, "anchor": {"type": "string", "format": "date"}},
                    "squads")
RULE = obj({"skill": CODE, "min": {"type": "integer", "minimum": 0, "maximum": MAX_MIN}},
           "skill", "min")
RULES = {"type": "array", "items": RULE, "maxItems": MAX_RULES}
GAP = obj({"skill": TEXT, "missing": {"type": "integer", "minimum": 1}}, "skill", "missing")
GAPS = {"type": "array", "items": GAP}
PERSON = {"code": TEXT, "name": TEXT}
SHIFT_HEAD = {"start": TIMESTAMP, "end": TIMESTAMP, "squad": NULLABLE_TEXT}
SWAP = obj({"id": INT, "member": TEXT, "with": TEXT, "shift": TIMESTAMP,
            "status": {"enum": ["approved", "pending", "rejected"]}, "gaps": GAPS,
            "created_by": TEXT, "created_at": NULLABLE_TIMESTAMP,
            "decided_by": NULLABLE_TEXT, "decided_at": NULLABLE_TIMESTAMP},
           "id", "member", "with", "shift", "status", "gaps")
LEAVE = obj({"id": INT, "member": TEXT, "start": TIMESTAMP, "end": TIMESTAMP,
             "reason": TEXT, "created_by": TEXT}, "id", "member", "start", "end", "reason")
SHIFT = obj({**SHIFT_HEAD,
             "members": {"type": "array", "items": obj(
                 {**PERSON, "via": {"enum": ["squad", "swap"]}}, "code", "name", "via")},
             "absent": {"type": "array", "items": obj(
                 {**PERSON, "why": {"enum": ["leave", "swap"]}}, "code", "name", "why")},
             "swaps": {"type": "array", "items": SWAP},
             "leave": {"type": "array", "items": LEAVE}},
            "start", "end", "squad", "members", "absent", "swaps", "leave")
FILL = obj({"skill": TEXT, "members": {"type": "array", "items": obj(
    {**PERSON, "rested": BOOL}, "code", "name", "rested")}}, "skill", "members")
COVER = obj({**SHIFT_HEAD,
             "rules": {"type": "array", "items": obj({
                 "skill": TEXT, "min": INT, "have": INT,
                 "members": {"type": "array", "items": TEXT}},
                 "skill", "min", "have", "members")},
             "gaps": GAPS, "fill": {"type": "array", "items": FILL}},
            "start", "end", "squad", "rules", "gaps", "fill")
RANGE = {"from": TIMESTAMP, "to": TIMESTAMP, "timezone": TEXT}
NOTICE = obj({"kind": {"enum": ["coverage_gap", "certificate_expiring"]}, "key": TEXT,
              "text": obj({"zh": TEXT, "en": TEXT}, "zh", "en"),
              "shift": obj(SHIFT_HEAD, "start", "end", "squad"), "skill": TEXT,
              "missing": INT, "fill": {"type": "array", "items": TEXT}, "member": TEXT,
              "expires": {"type": "string", "format": "date"}, "days_left": INT},
             "kind", "key", "text")
SWAP_REQUEST = obj({"member": CODE, "with": CODE, "shift": TIMESTAMP, "approve": BOOL},
                   "member", "with", "shift")
LEAVE_REQUEST = obj({"member": CODE, "start": TIMESTAMP, "end": TIMESTAMP,
                     "reason": {"type": "string", "maxLength": MAX_REASON}},
                    "member", "start", "end")
FROM = query("from", TIMESTAMP, "RFC 3339 with an offset")
TO = query("to", TIMESTAMP, "RFC 3339 with an offset")
MEMBER = query("member", CODE, "a member's code")

ENDPOINTS: dict[str, dict[str, Any]] = {
    "rota.get_template": {"ok": ok(schema=TEMPLATE)},
    "rota.put_template": {"body": TEMPLATE_BODY, "ok": ok(schema=TEMPLATE), "errors": (409,)},
    "rota.get_rota": {
        "query": [FROM, query("to", TIMESTAMP, f"at most {MAX_RANGE.days} days after from")],
        "ok": ok(schema=obj({**RANGE, "shifts": {"type": "array", "items": SHIFT}},
                            "from", "to", "timezone", "shifts"))},
    "rota.get_rules": {"ok": ok(schema=RULES)},
    "rota.put_rules": {"body": RULES, "ok": ok(schema=RULES), "errors": (409,)},
    "rota.get_coverage": {
        "query": [query("days", {"type": "integer", "minimum": 1, "maximum": MAX_RANGE.days},
                        "how many days ahead (default [roster] coverage_days)")],
        "ok": ok(schema=obj({**RANGE, "shifts": {"type": "array", "items": COVER}},
                            "from", "to", "timezone", "shifts"))},
    "rota.list_swaps": {
        "query": [FROM, TO, query("status", {"enum": ["approved", "pending", "rejected"]}),
                  MEMBER],
        "ok": ok(schema=items_of(SWAP))},
    "rota.create_swap": {"body": SWAP_REQUEST,
                         "ok": {201: ("application/json", SWAP), 202: ("application/json", SWAP)},
                         "errors": (409,)},
    # No body needed; an empty object may be sent.
    "rota.approve_swap": {"body": obj({}), "body_required": False, "ok": ok(schema=SWAP),
                          "errors": (409,)},
    "rota.reject_swap": {"body": obj({}), "body_required": False, "ok": ok(schema=SWAP),
                         "errors": (409,)},
    "rota.list_leave": {"query": [FROM, TO, MEMBER], "ok": ok(schema=items_of(LEAVE))},
    "rota.create_leave": {"body": LEAVE_REQUEST,
                          "ok": ok(schema=obj({**LEAVE["properties"], "gaps": {
                              "type": "array", "items": obj({**SHIFT_HEAD, "gaps": GAPS},
                                                            "start", "end", "squad", "gaps")}},
                              "id", "member", "start", "end", "reason", "gaps"), status=201),
                          "errors": (409,)},
    "rota.list_notices": {"ok": ok(schema=items_of(NOTICE))},
}


def init_app(app: Flask) -> None:
    """Describe the rota endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)
