"""Bodies, query parameters and answers of the member, skill and team endpoints, for the OpenAPI
document (DESIGN §5 "Roster and positions (contract)"). The limits are those
dispatch.roster.members checks, so the document cannot promise what the server refuses."""

from __future__ import annotations

from typing import Any

from flask import Flask

from dispatch.core import openapi
from dispatch.core.api_schemas import JSON, items_of, obj, ok, query
from dispatch.roster import members, service
from dispatch.roster.choices import DutyStatus, Employment, Post, SquadRole

CODE = {"type": "string", "minLength": 1, "maxLength": members.CODE_MAX,
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}
NULLABLE_CODE = {**CODE, "type": ["string", "null"]}
NAME = {"type": "string", "minLength": 1, "maxLength": members.NAME_MAX}
DATE = {"type": ["string", "null"], "format": "date"}
SKILL_HELD = obj({"skill": CODE, "level": {"type": "integer", "minimum": 1, "maximum": 3},
                  "expires": DATE}, "skill")
FIELDS: dict[str, Any] = {
    "code": CODE, "name": NAME,
    "phone": {"type": ["string", "null"], "maxLength": members.PHONE_MAX},
    "post": {"enum": list(Post)}, "employment": {"enum": list(Employment)},
    "team": NULLABLE_CODE, "squad": NULLABLE_CODE,
    "roles": {"type": "array", "items": {"enum": list(SquadRole)}, "uniqueItems": True},
    "skills": {"type": "array", "items": SKILL_HELD},
    "status": {"enum": list(DutyStatus)},
    "user": {"type": ["string", "null"], "minLength": 1, "maxLength": members.NAME_MAX},
}
NEW_MEMBER = obj(FIELDS, "code", "name")
MEMBER_CHANGE = obj(FIELDS)
MEMBER = obj({
    **FIELDS, "phone": {"type": "string"}, "team": {"type": ["string", "null"]},
    "squad": {"type": ["string", "null"]}, "user": {"type": ["string", "null"]},
    "skills": {"type": "array", "items": obj({
        "skill": {"type": "string"}, "level": {"enum": list(members.LEVELS)},
        "expires": DATE}, "skill", "level", "expires")}},
    *members.FIELDS)

SKILL_FIELDS: dict[str, Any] = {
    "code": CODE, "name_zh": NAME,
    "name_en": {"type": ["string", "null"], "maxLength": members.NAME_EN_MAX},
    "needs_certificate": {"type": "boolean"},
}
SKILL = obj({**SKILL_FIELDS, "name_en": {"type": "string"}}, *SKILL_FIELDS)

TEAM = obj({"code": {"type": "string"}, "name": {"type": "string"},
            "parent": {"type": ["string", "null"]},
            "squads": {"type": "array", "items": {"type": "string"}},
            "members": {"type": "integer", "minimum": 0}},
           "code", "name", "parent", "squads", "members")
NEW_TEAM = obj({"code": CODE, "name": NAME, "parent": NULLABLE_CODE}, "code", "name")

FILTER = {"type": "string", "maxLength": 64}
MEMBER_QUERY = [
    query("team", FILTER, "members of this team (or squad)"),
    query("squad", FILTER, "members of this squad"),
    query("skill", FILTER, "members holding this skill"),
    query("status", {"enum": list(DutyStatus)}, "duty status"),
    query("q", FILTER, "part of the code, name or phone"),
    query("expiring", {"type": "integer", "minimum": 0, "maximum": service.MAX_EXPIRING_DAYS},
          "certificates expiring within this many days, or expired (with skill: of that skill)"),
]
IMPORTED = obj({"created": {"type": "integer", "minimum": 0},
                "updated": {"type": "integer", "minimum": 0}}, "created", "updated")
CSV_MEDIA = {
    "text/csv": {"type": "string"},
    "multipart/form-data": obj({"file": {"type": "string", "format": "binary"}}, "file"),
}

ENDPOINTS: dict[str, dict[str, Any]] = {
    "roster.list_members": {"query": MEMBER_QUERY, "ok": ok(schema=items_of(MEMBER))},
    "roster.create_member": {"body": NEW_MEMBER, "ok": ok(schema=MEMBER, status=201),
                             "errors": (409, 422)},
    "roster.get_member": {"ok": ok(schema=MEMBER)},
    "roster.update_member": {"body": MEMBER_CHANGE, "ok": ok(schema=MEMBER),
                             "errors": (409, 422)},
    "roster.delete_member": {"ok": ok(None, status=204)},
    "roster.import_members": {
        "media": CSV_MEDIA,
        "query": [query("mode", {"enum": ["upsert"]},
                        "upsert: update members whose code exists (else they are refused)")],
        "ok": ok(JSON, IMPORTED), "errors": (422,)},
    "roster.list_skills": {"ok": ok(schema=items_of(SKILL))},
    "roster.create_skill": {"body": obj(SKILL_FIELDS, "code", "name_zh"),
                            "ok": ok(schema=SKILL, status=201), "errors": (409, 422)},
    "roster.update_skill": {"body": obj(SKILL_FIELDS), "ok": ok(schema=SKILL),
                            "errors": (409, 422)},
    "roster.list_teams": {"ok": ok(schema=items_of(TEAM))},
    "roster.create_team": {"body": NEW_TEAM, "ok": ok(schema=TEAM, status=201),
                           "errors": (409, 422)},
    "roster.get_team": {"ok": ok(schema={**TEAM, "properties": {
        **TEAM["properties"], "roster": {"type": "array", "items": MEMBER}},
        "required": [*TEAM["required"], "roster"]})},
}


def init_app(app: Flask) -> None:
    """Describe the member, skill and team endpoints in the OpenAPI document."""
    openapi.register(app, ENDPOINTS)
