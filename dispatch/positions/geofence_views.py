"""`GET /api/v1/geofence-events` (DESIGN §5 "Roster and positions (contract)"): who entered or
left which village or shelter, and when; a thin adapter over dispatch.positions.places, with its
OpenAPI declaration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from dispatch.core import auth, openapi
from dispatch.core.api_schemas import TIMESTAMP, items_of, obj, ok, query
from dispatch.core.choices import PERSON_ROLES
from dispatch.core.codes import is_code
from dispatch.core.db import db
from dispatch.core.errors import NotFound, parameter_error
from dispatch.positions import places
from dispatch.positions.geofence import ENTER, LEAVE, PLACE_TYPES
from dispatch.positions.models import GeofenceEvent
from dispatch.roster.models import Member
from telemetry.decode import OutsideYears, parse_timestamp
from telemetry.series import EARLIEST, LATEST, positive_parameter

bp = Blueprint("geofence", __name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Member and place codes are at most this long (their columns).
MAX_CODE = 32


def _code(name: str) -> str | None:
    text = request.args.get(name, "")
    if text == "":
        return None
    if not is_code(text, MAX_CODE):
        raise parameter_error(name, _l("must be a code of 1-%(max)d characters: ASCII letters, "
                                       "digits, “-”, “_” and “.”, starting with a letter or "
                                       "digit", max=MAX_CODE))
    return text


def _time(name: str) -> datetime | None:
    text = request.args.get(name, "")
    if text == "":
        return None
    try:
        # A "+" left unescaped in a query string arrives as a space.
        return parse_timestamp(text.replace(" ", "+"))
    except OutsideYears as exc:
        return LATEST if exc.later else EARLIEST
    except ValueError as exc:
        raise parameter_error(name, _l("must be a time like 2026-07-27T21:00:00+08:00 "
                                       "(%(problem)s)", problem=str(exc))) from None


@bp.get("/api/v1/geofence-events")
@auth.roles(*PERSON_ROLES)
def geofence_events():
    """Who entered or left which village or shelter, newest first.

    `?member=&place=` codes, `?since=&until=` RFC 3339 (after since, up to until), `?limit=` up
    to 1000."""
    member, place = _code("member"), _code("place")
    since, until = _time("since"), _time("until")
    if since is not None and until is not None and since >= until:
        raise parameter_error("since", _l("must be before until"))
    limit = positive_parameter(request.args, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    s = db.session
    query_ = select(GeofenceEvent, Member.code).join(Member, Member.id == GeofenceEvent.member_id)
    if member is not None:
        member_id = s.scalar(select(Member.id).where(Member.code == member))
        if member_id is None:
            raise NotFound(_l("There is no member with the code %(code)s.", code=member),
                           code="no_member")
        query_ = query_.where(GeofenceEvent.member_id == member_id)
    if place is not None:
        query_ = query_.where(GeofenceEvent.place == place)
    if since is not None:
        query_ = query_.where(GeofenceEvent.ts > since)
    if until is not None:
        query_ = query_.where(GeofenceEvent.ts <= until)
    rows = s.execute(query_.order_by(GeofenceEvent.ts.desc(), GeofenceEvent.id.desc())
                     .limit(limit)).all()
    return jsonify({"items": [places.item(event, code) for event, code in rows]})


CODE_FILTER = {"type": "string", "minLength": 1, "maxLength": MAX_CODE,
               "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}
EVENT: dict[str, Any] = obj({
    "id": {"type": "integer"}, "member": {"type": "string"}, "place": {"type": "string"},
    "place_type": {"enum": list(PLACE_TYPES)}, "event": {"enum": [ENTER, LEAVE]},
    "ts": TIMESTAMP, "source": {"enum": list(places.SOURCES)}},
    "id", "member", "place", "place_type", "event", "ts", "source")

ENDPOINTS: dict[str, dict[str, Any]] = {
    "geofence.geofence_events": {
        "query": [query("member", CODE_FILTER, "a member's code"),
                  query("place", CODE_FILTER, "a village's or shelter's code"),
                  query("since", {"type": "string", "format": "date-time"},
                        "only events after this time"),
                  query("until", {"type": "string", "format": "date-time"},
                        "only events up to this time"),
                  query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})],
        "ok": ok(schema=items_of(EVENT)),
        "errors": (404,),
    },
}


def init_app(app: Flask) -> None:
    """Register the geofence events endpoint, its OpenAPI declaration, and the receiver that
    fences edited places anew."""
    from dispatch.core.events import feature_changed

    app.register_blueprint(bp)
    openapi.register(app, ENDPOINTS)
    # Global, like every signal: connected once per process (a second connect is a no-op).
    feature_changed.connect(places.on_feature_changed)
