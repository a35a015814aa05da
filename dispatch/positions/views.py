"""Positions over HTTP and Socket.IO (DESIGN §5 "Roster and positions (contract)"): OwnTracks HTTP
mode, Traccar Client / OsmAnd, the tablet's own fix, a member's track and the members layer.
Thin adapters over dispatch.positions.fixes (decoding) and intake (storing).

Phones retry until they get a 2xx, so a known device is answered 200 whatever it sent (a bad fix
goes to the dead letters); a request naming no active device is 401 (counted, logged).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from dispatch.core import auth
from dispatch.core.choices import PERSON_ROLES
from dispatch.core.db import db, utcnow
from dispatch.core.errors import NotFound, parameter_error
from dispatch.core.realtime import live_event
from dispatch.positions import devices, fixes
from dispatch.positions.intake import Intake, Letter, window
from dispatch.positions.models import LatestPosition, Position
from dispatch.roster.models import Member, MemberSkill, Skill, Team
from maps.views import register_layer
from telemetry.quota import quota_of
from telemetry.series import positive_parameter, time_range

bp = Blueprint("positions", __name__)

OWNTRACKS_TOPIC = "http:owntracks"
OSMAND_TOPIC = "http:osmand"
# The most fixes one track answer holds (the answer says when it was cut).
MAX_TRACK = 10000
TRACK_DEFAULT = timedelta(hours=24)
MAX_LAYER = 5000


def _message_id() -> str:
    return f"http-{uuid.uuid4().hex[:16]}"


def _unknown(source: str, who: str, *, basic: bool) -> Response:
    """401 for a request naming no active device (counted and logged by the intake)."""
    s = db.session
    intake = Intake(s, utcnow())
    intake.unknown(source, who)
    s.rollback()
    intake.after_commit()
    response = jsonify(error="unknown_device", message=_(
        "No active device has these credentials: register the phone with `rescuehub device "
        "add` and enter what it printed."))
    response.status_code = 401
    if basic:
        response.headers["WWW-Authenticate"] = 'Basic realm="rescuehub", charset="UTF-8"'
    return response


def _store(intake: Intake) -> None:
    intake.finish()
    db.session.commit()
    intake.after_commit()


@bp.post("/api/v1/owntracks")
@auth.public
@auth.csrf_exempt
def owntracks():
    """A location or region event from OwnTracks in HTTP mode (Basic: the device's login and
    HTTP secret); 200 with `[]` whenever the device is known."""
    credentials = request.authorization
    s = db.session
    reporter = None
    if credentials is not None and credentials.type == "basic" and credentials.username \
            and credentials.password:
        reporter = devices.owntracks_by_secret(s, credentials.username, credentials.password)
    if reporter is None:
        who = credentials.username if credentials is not None and credentials.username else \
            request.headers.get("X-Limit-U", "")
        return _unknown("owntracks_http", who or "", basic=True)
    # Read one byte past the limit ourselves: a known device's oversized message is a dead
    # letter (answered 200), not a 413 it would retry for ever.
    request.max_content_length = None
    raw = request.stream.read(fixes.MAX_MESSAGE_BYTES + 1)
    now = utcnow()
    intake = Intake(s, now, quota=quota_of(current_app))
    intake.take(reporter, fixes.decode_owntracks(raw, window(s, now)), "owntracks_http",
                Letter(OWNTRACKS_TOPIC, raw, _message_id()))
    _store(intake)
    # OwnTracks reads the answer as messages for the device (cards, commands): none.
    return jsonify([])


def _osmand_request() -> tuple[dict[str, str], bytes | None]:
    """The fields of an OsmAnd request (query, then form) and, for Traccar Client's JSON, the
    body."""
    params = {key: request.args[key] for key in request.args}
    if request.method != "POST":
        return params, None
    if request.mimetype == "application/x-www-form-urlencoded":
        return {**{key: request.form[key] for key in request.form}, **params}, None
    request.max_content_length = fixes.MAX_MESSAGE_BYTES
    raw = request.get_data()
    return params, raw or None


@bp.route("/api/v1/osmand", methods=["GET", "POST"])
@auth.public
@auth.csrf_exempt
def osmand():
    """A fix from Traccar Client or OsmAnd (`id` the device identifier `rescuehub device add
    --kind traccar` printed; fields in the query, a form, or Traccar Client's JSON body);
    200 whenever the device is known."""
    params, body = _osmand_request()
    identifier, location, refused = fixes.osmand_device(params), None, None
    if body is not None:
        named, location, refused = fixes.traccar_body(body)
        identifier = named or identifier
    s = db.session
    reporter = devices.traccar_by_identifier(s, identifier) if identifier else None
    if reporter is None:
        return _unknown("osmand", identifier or "", basic=False)
    now = utcnow()
    intake = Intake(s, now, quota=quota_of(current_app))
    checks = window(s, now)
    message_id = _message_id()
    if body is None:
        raw = urlencode(sorted(params.items())).encode()
        intake.take(reporter, fixes.decode_osmand(params, checks), "osmand",
                    Letter(OSMAND_TOPIC, raw, message_id))
    elif refused is not None:
        intake.take(reporter, refused, "osmand", Letter(OSMAND_TOPIC, body, message_id))
    else:
        many = isinstance(location, list)
        for index, outcome in enumerate(fixes.decode_traccar(location, checks)):
            intake.take(reporter, outcome, "osmand",
                        Letter(OSMAND_TOPIC, body, message_id, index if many else None))
    _store(intake)
    return Response("", mimetype="text/plain")


# --- reading ---------------------------------------------------------------------------------

def _member(s: Session, code: str | None) -> Member:
    if not code:
        raise parameter_error("member", _("is required: a member's code"))
    member = s.scalar(select(Member).where(Member.code == code)) if len(code) <= 32 else None
    if member is None:
        raise NotFound(_("No team member %(code)s.", code=code), code="no_member")
    return member


def _fix_item(row) -> dict[str, Any]:
    return {"ts": row.ts.isoformat(), "lon": row.lon, "lat": row.lat,
            "accuracy_m": row.accuracy_m, "speed_mps": row.speed_mps,
            "battery_pct": row.battery_pct, "source": row.source}


@bp.get("/api/v1/positions")
@auth.roles(*PERSON_ROLES)
def track():
    """A member's track, oldest first (`?member=` required; `?since=&until=` RFC 3339, default
    the last 24 h; `?limit=` up to 10,000)."""
    s = db.session
    member = _member(s, request.args.get("member"))
    since, until = time_range(request.args, utcnow(), TRACK_DEFAULT)
    limit = positive_parameter(request.args, "limit", MAX_TRACK, MAX_TRACK)
    rows = s.execute(select(Position).where(
        Position.member_id == member.id, Position.ts > since, Position.ts <= until)
        .order_by(Position.ts).limit(limit + 1)).scalars().all()
    return jsonify(member=member.code, since=since.isoformat(), until=until.isoformat(),
                   truncated=len(rows) > limit, items=[_fix_item(r) for r in rows[:limit]])


def members_layer(session: Session, bbox) -> Iterator[str]:
    """The members layer: each active member's latest fix with its age, duty status, skills,
    team, squad, phone, battery and accuracy (GeoJSON points)."""
    team, squad = aliased(Team), aliased(Team)
    query = (select(Member.id, Member.code, Member.name, Member.phone, Member.status,
                    team.code, squad.code, LatestPosition)
             .join(LatestPosition, LatestPosition.member_id == Member.id)
             .outerjoin(team, team.id == Member.team_id)
             .outerjoin(squad, squad.id == Member.squad_id)
             .where(Member.active.is_(True)).order_by(Member.code).limit(MAX_LAYER + 1))
    if bbox is not None:
        query = query.where(LatestPosition.lon.between(bbox[0], bbox[2]),
                            LatestPosition.lat.between(bbox[1], bbox[3]))
    rows = session.execute(query).all()
    truncated = len(rows) > MAX_LAYER
    rows = rows[:MAX_LAYER]
    skills = _skills(session, [row[0] for row in rows])
    now = utcnow()
    yield '{"type":"FeatureCollection","features":['
    for n, (member_id, code, name, phone, status, team_code, squad_code, fix) in \
            enumerate(rows):
        props = {"code": code, "name": name, "status": status, "team": team_code,
                 "squad": squad_code, "phone": phone, "skills": skills.get(member_id, []),
                 "ts": fix.ts.isoformat(), "age_s": max(0, int((now - fix.ts).total_seconds())),
                 "accuracy_m": fix.accuracy_m, "speed_mps": fix.speed_mps,
                 "battery_pct": fix.battery_pct, "source": fix.source}
        feature = {"type": "Feature", "id": code,
                   "geometry": {"type": "Point", "coordinates": [fix.lon, fix.lat]},
                   "properties": props}
        yield ("," if n else "") + json.dumps(feature, ensure_ascii=False,
                                              separators=(",", ":"))
    yield f'],"numberReturned":{len(rows)},"truncated":{"true" if truncated else "false"}}}'


def _skills(session: Session, member_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(member_ids), 500):
        rows = session.execute(
            select(MemberSkill.member_id, Skill.code, Skill.name_zh, Skill.name_en,
                   MemberSkill.level, MemberSkill.expires)
            .join(Skill, Skill.id == MemberSkill.skill_id)
            .where(MemberSkill.member_id.in_(member_ids[start:start + 500]))
            .order_by(MemberSkill.member_id, Skill.code))
        for member_id, skill, name_zh, name_en, level, expires in rows:
            found.setdefault(member_id, []).append({
                "skill": skill, "name_zh": name_zh, "name_en": name_en, "level": level,
                "expires": expires.isoformat() if expires else None})
    return found


# --- the tablet's own fix --------------------------------------------------------------------

def tablet_position(principal, data=None) -> dict[str, Any]:
    """Socket.IO `position` from a signed-in person who is a team member (Member.user): their
    tablet's fix. Acknowledged with `{"ok": true}` or `{"error": reason, "message"}`."""
    s = db.session
    now = utcnow()
    reporter = devices.member_of_user(s, principal.id) if principal.kind == "user" else None
    if reporter is None:
        intake = Intake(s, now)
        intake.unknown("tablet", principal.name)
        s.rollback()
        intake.after_commit()
        return {"error": "no_member", "message": _(
            "Your sign-in is linked to no team member: ask the commander to link it.")}
    outcome = fixes.decode_tablet(data, window(s, now))
    intake = Intake(s, now)
    intake.take(reporter, outcome, "tablet", None)
    _store(intake)
    if isinstance(outcome, fixes.Rejection):
        return {"error": outcome.reason, "message": outcome.detail}
    return {"ok": True}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_layer(app, "members", members_layer)
    live_event("position", *PERSON_ROLES)(tablet_position)
