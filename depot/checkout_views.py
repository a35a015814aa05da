"""Check-out, check-in, inspection, repair and readiness endpoints (DESIGN §5 "Depot
(contract)"): thin adapters over depot.checkouts. Keepers and commanders write; dispatchers
read; every person reads readiness; gateways never. Each committed change is announced as a
`depot` live event (depot.live builds it)."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import lazy_gettext as _l

from depot import checkouts, layer, live
from depot.models import CATEGORIES
from dispatch.core import auth
from dispatch.core.body import json_object
from dispatch.core.choices import PERSON_ROLES, Role
from dispatch.core.codes import is_code
from dispatch.core.db import db, utcnow
from dispatch.core.errors import parameter_error

bp = Blueprint("depot_checkouts", __name__)

WRITERS = (Role.COMMANDER, Role.KEEPER)
READERS = (Role.COMMANDER, Role.KEEPER, Role.DISPATCHER)


def _flag(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise parameter_error(name, _l("must be true or false"))
    return raw == "true"


def _stock_lines(lines) -> list[tuple[str, str]]:
    """The (type, bin) of a check-out's stock lines, for the live event."""
    return [(line["type"], line["bin"]) for line in lines if not line["item"] and line["bin"]]


def _actor() -> str:
    return auth.current_principal().actor


def _settings():
    return current_app.config["SETTINGS"]


@bp.post("/api/v1/depot/checkouts")
@auth.roles(*WRITERS)
def create_checkout():
    """Check items, stock or a kit out to a member, a team or an incident (409 `unavailable`
    naming each item that cannot go, nothing written)."""
    s = db.session
    with db.turn_to_write():
        answer = checkouts.checkout(s, json_object(), actor=_actor(), settings=_settings(),
                                    now=utcnow())
        s.commit()
    live.send(live.item_change(
        s, "checkout", "out", [line["item"] for line in answer["lines"] if line["item"]],
        stock=_stock_lines(answer["lines"]), checkouts=[answer["id"]]))
    return jsonify(answer), 201


@bp.get("/api/v1/depot/checkouts")
@auth.roles(*READERS)
def list_checkouts():
    """Check-outs with their lines, holder, due time and overdue flag (`?open=true`,
    `?overdue=true`)."""
    return jsonify(items=checkouts.checkouts(db.session, open_only=_flag("open"),
                                             overdue=bool(_flag("overdue")), now=utcnow()))


@bp.post("/api/v1/depot/checkins")
@auth.roles(*WRITERS)
def create_checkin():
    """Items and stock back: ok, damaged (to repair) or lost; a check-out closes when all is
    back (409 `not_out` when something is not out, nothing written)."""
    s = db.session
    with db.turn_to_write():
        answer = checkouts.checkin(s, json_object(), actor=_actor(), now=utcnow())
        s.commit()
    returned = {line["type"] for line in answer["stock"]}
    live.send(live.item_change(
        s, "checkout", "in", [i["code"] for i in answer["items"]],
        stock=[(t, b) for t, b in _stock_lines(line for c in answer["checkouts"]
                                               for line in c["lines"]) if t in returned],
        checkouts=[c["id"] for c in answer["checkouts"]]))
    return jsonify(answer)


@bp.post("/api/v1/depot/items/<code>/inspections")
@auth.roles(*WRITERS)
def create_inspection(code: str):
    """Record an inspection: a pass sets the next due date; a failure takes the item out of
    service until a repair closes it."""
    s = db.session
    with db.turn_to_write():
        answer = checkouts.inspect(s, code, json_object(), actor=_actor(), settings=_settings(),
                                   now=utcnow())
        s.commit()
    live.send(live.item_change(s, "inspection", "create", [answer["item"]]))
    return jsonify(answer), 201


@bp.post("/api/v1/depot/items/<code>/repairs")
@auth.roles(*WRITERS)
def create_repair(code: str):
    """Open a repair (`reason`), or close the open one (`outcome`: repaired or written_off)."""
    s = db.session
    with db.turn_to_write():
        answer, opened = checkouts.repair(s, code, json_object(required=False), actor=_actor(),
                                          now=utcnow())
        s.commit()
    live.send(live.item_change(s, "repair", "open" if opened else "close", [answer["item"]]))
    return jsonify(answer), 201 if opened else 200


@bp.get("/api/v1/depot/inspections/due")
@auth.roles(*READERS)
def inspections_due():
    """Items whose inspection is due within `days` (default [depot] inspection_warn_days), or
    overdue, soonest first."""
    raw = request.args.get("days")
    days = _settings().depot.inspection_warn_days
    if raw not in (None, ""):
        if not raw.isdigit() or int(raw) > checkouts.MAX_DUE_DAYS:
            raise parameter_error("days", _l("must be a number of days from 0 to %(max)d",
                                             max=checkouts.MAX_DUE_DAYS))
        days = int(raw)
    return jsonify(items=checkouts.inspections_due(db.session, days, _settings(), utcnow()))


@bp.get("/api/v1/depot/readiness")
@auth.roles(*PERSON_ROLES)
def readiness():
    """Per type: serviceable in stock, out, in repair, inspection overdue, expired, stock below
    its minimum (`?site=&category=`); `?by=site`: every site's, in one answer (the office's
    readiness panel)."""
    site = request.args.get("site") or None
    if site is not None and not is_code(site, checkouts.CODE_LEN):
        raise parameter_error("site", _l("must be a site code"))
    category = request.args.get("category") or None
    if category is not None and category not in CATEGORIES:
        raise parameter_error("category", _l("must be one of %(choices)s",
                                             choices=", ".join(CATEGORIES)))
    by = request.args.get("by") or None
    if by is not None and by != "site":
        raise parameter_error("by", _l("must be site"))
    if by == "site":
        if site is not None:
            raise parameter_error("site", _l("leave it out with by=site (every site is given)"))
        today = checkouts.today_of(_settings(), utcnow())
        return jsonify(category=category, date=today.isoformat(), sites=[
            {"code": s.code, "name": s.name, "items": entries}
            for s, entries in layer.site_entries(db.session, today, category)])
    return jsonify(checkouts.readiness(db.session, site=site, category=category,
                                       settings=_settings(), now=utcnow()))


def init_app(app: Flask) -> None:
    """Register the endpoints and their OpenAPI declarations."""
    from depot import checkout_schemas

    app.register_blueprint(bp)
    checkout_schemas.init_app(app)
