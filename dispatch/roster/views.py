"""Member, skill and team endpoints (DESIGN §5 "Roster and positions (contract)"): thin adapters
over dispatch.roster.service. Commanders and dispatchers write; every person reads (a team
leader too); gateways never."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import lazy_gettext as _l

from dispatch.core import auth
from dispatch.core.body import json_object
from dispatch.core.choices import EDITORS, PERSON_ROLES
from dispatch.core.db import db
from dispatch.core.errors import parameter_error
from dispatch.core.tabular import decode_text
from dispatch.roster import service
from dispatch.roster.choices import DutyStatus

bp = Blueprint("roster", __name__)

# The longest text a list filter takes (`q`): longer is no name, code or phone.
MAX_QUERY = 64


def today() -> date:
    """Today in the roster's time zone (certificates expire by the local calendar)."""
    zone = ZoneInfo(current_app.config["SETTINGS"].roster.timezone)
    return datetime.now(zone).date()


def _text_parameter(name: str) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_QUERY:
        raise parameter_error(name, _l("must be at most %(max)d characters", max=MAX_QUERY))
    return value


def _expiring() -> int | None:
    raw = request.args.get("expiring")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > service.MAX_EXPIRING_DAYS:
        raise parameter_error("expiring", _l("must be a number of days from 0 to %(max)d",
                                             max=service.MAX_EXPIRING_DAYS))
    return int(raw)


def _filter() -> service.MemberFilter:
    status = _text_parameter("status")
    if status is not None and status not in tuple(DutyStatus):
        raise parameter_error("status", _l("must be one of %(choices)s",
                                           choices=", ".join(DutyStatus)))
    return service.MemberFilter(team=_text_parameter("team"), squad=_text_parameter("squad"),
                                skill=_text_parameter("skill"), status=status,
                                q=_text_parameter("q"), expiring=_expiring())


@bp.get("/api/v1/members")
@auth.roles(*PERSON_ROLES)
def list_members():
    """Members: `?team=&squad=&skill=&status=&q=`, `?expiring=DAYS` (certificates expiring
    within DAYS, or expired)."""
    return jsonify(items=service.listing(db.session, _filter(), today=today()))


@bp.post("/api/v1/members")
@auth.roles(*EDITORS)
def create_member():
    """Add a member (audited); the code of a member who left makes them rejoin."""
    s = db.session
    member = service.create_member(s, json_object(), actor=auth.current_principal().actor)
    s.commit()
    return jsonify(service.describe(s, member)), 201


@bp.get("/api/v1/members/<code>")
@auth.roles(*PERSON_ROLES)
def get_member(code: str):
    """One member."""
    s = db.session
    return jsonify(service.describe(s, service.find(s, code)))


@bp.patch("/api/v1/members/<code>")
@auth.roles(*EDITORS)
def update_member(code: str):
    """Change a member's fields (`skills` replaces the list; null clears phone, team, squad,
    user); audited."""
    s = db.session
    member = service.update_member(s, code, json_object(), actor=auth.current_principal().actor)
    s.commit()
    return jsonify(service.describe(s, member))


@bp.delete("/api/v1/members/<code>")
@auth.roles(*EDITORS)
def delete_member(code: str):
    """A member leaves the team: inactive, user link freed, history kept (audited)."""
    s = db.session
    service.remove_member(s, code, actor=auth.current_principal().actor)
    s.commit()
    return "", 204


@bp.post("/api/v1/members/import")
@auth.roles(*EDITORS)
def import_members():
    """Members from CSV (the contract's fields as columns; roles `rescue;relief`, skills
    `boat:2:2027-05-01;first_aid:1:`): all rows or none, each bad row named (422)."""
    upload = request.files.get("file")
    raw = upload.read() if upload is not None else request.get_data()
    s = db.session
    counts = service.import_members(s, decode_text(raw), actor=auth.current_principal().actor,
                                    upsert=request.args.get("mode") == "upsert")
    s.commit()
    return jsonify(counts)


@bp.get("/api/v1/skills")
@auth.roles(*PERSON_ROLES)
def list_skills():
    """The skills catalogue."""
    return jsonify(items=service.skills(db.session))


@bp.post("/api/v1/skills")
@auth.roles(*EDITORS)
def create_skill():
    """Add a skill to the catalogue (audited)."""
    s = db.session
    skill = service.create_skill(s, json_object(), actor=auth.current_principal().actor)
    s.commit()
    return jsonify(skill), 201


@bp.patch("/api/v1/skills/<code>")
@auth.roles(*EDITORS)
def update_skill(code: str):
    """Change a skill's names or whether it needs a certificate (audited)."""
    s = db.session
    skill = service.update_skill(s, code, json_object(), actor=auth.current_principal().actor)
    s.commit()
    return jsonify(skill)


@bp.get("/api/v1/teams")
@auth.roles(*PERSON_ROLES)
def list_teams():
    """Teams and squads, each with its squads and how many members it has."""
    return jsonify(items=service.teams(db.session))


@bp.post("/api/v1/teams")
@auth.roles(*EDITORS)
def create_team():
    """Add a team, or a squad of a team (`parent`); audited."""
    s = db.session
    team = service.create_team(s, json_object(), actor=auth.current_principal().actor)
    s.commit()
    return jsonify(team), 201


@bp.get("/api/v1/teams/<code>")
@auth.roles(*PERSON_ROLES)
def get_team(code: str):
    """A team or squad with its members (`roster`)."""
    return jsonify(service.team(db.session, code))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
