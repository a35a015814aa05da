"""Rota endpoints (DESIGN §5 "Roster and positions (contract)"): template, rules, shifts,
coverage, swaps, leave and the commander's notices. Thin adapters over
dispatch.roster.rota_service; commanders and dispatchers write, swap decisions are the
commander's, every person reads. Each change is announced to the office as a `roster` event."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request

from dispatch.core import auth
from dispatch.core.body import json_body, json_object
from dispatch.core.choices import EDITORS, PERSON_ROLES, Role
from dispatch.core.db import db, utcnow
from dispatch.core.realtime import notify
from dispatch.roster import rota_service as service
from telemetry.series import positive_parameter

bp = Blueprint("rota", __name__)

MAX_DAYS = service.MAX_RANGE.days


def _settings():
    return current_app.config["SETTINGS"]


def _actor() -> str:
    return auth.current_principal().actor


def _changed(change: str, **data: Any) -> None:
    """After the commit: tell open office pages the rota changed."""
    notify("roster", {"action": "rota", "change": change, **data}, rooms=("office",))


@bp.get("/api/v1/rota/template")
@auth.roles(*PERSON_ROLES)
def get_template():
    """The rota template: shift length, local change time, squads in turn and anchor date."""
    return jsonify(service.template_body(db.session, _settings()))


@bp.put("/api/v1/rota/template")
@auth.roles(*EDITORS)
def put_template():
    """Replace the rota template (audited)."""
    s = db.session
    body = service.save_template(s, _settings(), json_object(), actor=_actor(), now=utcnow())
    s.commit()
    _changed("template")
    return jsonify(body)


@bp.get("/api/v1/rota")
@auth.roles(*PERSON_ROLES)
def get_rota():
    """The shifts overlapping ?from=&to= (default a week from now, at most 62 days), each with
    its squad, crew, absences, swaps and leave."""
    start, end = service.time_range(request.args, utcnow())
    return jsonify(service.shifts(db.session, _settings(), start, end))


@bp.get("/api/v1/rota/rules")
@auth.roles(*PERSON_ROLES)
def get_rules():
    """The coverage rules every shift must meet: [{"skill", "min"}]."""
    return jsonify(service.rules_value(db.session))


@bp.put("/api/v1/rota/rules")
@auth.roles(*EDITORS)
def put_rules():
    """Replace the coverage rules (audited)."""
    s = db.session
    rules = service.save_rules(s, json_body(), actor=_actor())
    s.commit()
    _changed("rules")
    return jsonify(rules)


@bp.get("/api/v1/rota/coverage")
@auth.roles(*PERSON_ROLES)
def get_coverage():
    """Each shift's cover from now to ?days= ahead (default [roster] coverage_days), with its
    gaps and who could fill them."""
    days = positive_parameter(request.args, "days", _settings().roster.coverage_days, MAX_DAYS)
    return jsonify(service.coverage(db.session, _settings(), utcnow(), days))


@bp.get("/api/v1/rota/swaps")
@auth.roles(*PERSON_ROLES)
def list_swaps():
    """Swaps by shift (?from=, default the current shift; ?to=), ?status=, ?member=."""
    return jsonify(service.list_swaps(db.session, _settings(), request.args, utcnow()))


@bp.post("/api/v1/rota/swaps")
@auth.roles(*EDITORS)
def create_swap():
    """Ask for a swap: 201 approved when it keeps the cover, 202 pending a commander's approval
    (with the gaps it would open) when it does not."""
    s = db.session
    principal = auth.current_principal()
    _row, body = service.request_swap(s, _settings(), json_object(), actor=principal.actor,
                                      role=principal.role, now=utcnow())
    s.commit()
    _changed("swap", swap=body["id"], status=body["status"])
    return jsonify(body), 201 if body["status"] == "approved" else 202


def _decide(swap_id: int, approve: bool):
    json_object(required=False)  # no fields; a body, if any, must still be a JSON object
    s = db.session
    body = service.decide_swap(s, _settings(), swap_id, approve=approve, actor=_actor(),
                               now=utcnow())
    s.commit()
    _changed("swap", swap=body["id"], status=body["status"])
    return jsonify(body)


@bp.post("/api/v1/rota/swaps/<int:swap_id>/approve")
@auth.roles(Role.COMMANDER)
def approve_swap(swap_id: int):
    """Approve a pending swap (commander): it applies from now on."""
    return _decide(swap_id, True)


@bp.post("/api/v1/rota/swaps/<int:swap_id>/reject")
@auth.roles(Role.COMMANDER)
def reject_swap(swap_id: int):
    """Reject a pending swap (commander)."""
    return _decide(swap_id, False)


@bp.get("/api/v1/rota/leave")
@auth.roles(*PERSON_ROLES)
def list_leave():
    """Leave overlapping ?from=&to= (default: not over yet), ?member=."""
    return jsonify(service.list_leave(db.session, request.args, utcnow()))


@bp.post("/api/v1/rota/leave")
@auth.roles(*EDITORS)
def create_leave():
    """Record a member's leave (never overlapping their other leave); answers with the coverage
    gaps it opens in the coming days."""
    s = db.session
    body = service.add_leave(s, _settings(), json_object(), actor=_actor(), now=utcnow())
    s.commit()
    _changed("leave", leave=body["id"])
    return jsonify(body), 201


@bp.get("/api/v1/rota/notices")
@auth.roles(*PERSON_ROLES)
def list_notices():
    """The commander's notices now: coverage gaps ahead and certificates expiring soon."""
    return jsonify({"items": service.notices(db.session, _settings(), utcnow())})


def init_app(app: Flask) -> None:
    """Register the rota's endpoints and describe them in the OpenAPI document."""
    from dispatch.roster import rota_schemas

    app.register_blueprint(bp)
    rota_schemas.init_app(app)
