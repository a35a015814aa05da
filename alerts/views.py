"""Alert and threshold endpoints (DESIGN §5 "Alerts (contract)"): thin adapters over
alerts.service and alerts.thresholds."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from alerts import cap, capmessages, service, tables
from alerts.choices import ACTIVE_STATES, AlertKind, CapStatus
from alerts.models import Alert, AlertMessage, HazardThreshold, VillageThreshold
from dispatch.core import auth
from dispatch.core.body import json_object
from dispatch.core.choices import EDITORS, PERSON_ROLES, Role
from dispatch.core.db import db
from dispatch.core.errors import HubError, NotFound, parameter_error
from dispatch.core.realtime import live_event
from maps.models import HazardZone, Village
from telemetry.choices import DISPLACEMENT_KINDS, SensorKind
from telemetry.models import Sensor

bp = Blueprint("alerts", __name__)

COMMANDER = (Role.COMMANDER,)
ACKNOWLEDGERS = (Role.COMMANDER, Role.DISPATCHER)
# The most alerts one list answers (newest first).
MAX_ITEMS = 1000


def _finish(changes: service.Changes) -> None:
    """Deliveries in the transaction, commit, then tell everyone (alerts.service)."""
    s = db.session
    service.prepare_announcement(s, changes)
    s.commit()
    service.announce(changes)


@bp.get("/api/v1/alerts")
@auth.roles(*PERSON_ROLES)
def list_alerts():
    """Alerts: `?state=active` (default) or `all`, `&kind=`, `&village=`, newest first."""
    state = request.args.get("state", "active")
    if state not in {"active", "all"}:
        raise parameter_error("state", _l("must be active or all"))
    query = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(MAX_ITEMS)
    if state == "active":
        query = query.where(Alert.state.in_([s.value for s in ACTIVE_STATES]))
    kind = request.args.get("kind")
    if kind:
        if kind not in set(AlertKind):
            raise parameter_error("kind", _l("must be one of %(kinds)s",
                                             kinds=", ".join(AlertKind)))
        query = query.where(Alert.kind == kind)
    s = db.session
    items = [service.describe(s, a, with_history=False) for a in s.scalars(query)]
    village = request.args.get("village")
    if village:
        items = [a for a in items if village in a["villages"]]
    return jsonify(items=items)


@bp.get("/api/v1/alerts/<int:alert_id>")
@auth.roles(*PERSON_ROLES)
def get_alert(alert_id: int):
    """One alert with its history."""
    s = db.session
    return jsonify(service.describe(s, service.get(s, alert_id)))


def _note(field: str) -> object:
    body = json_object(required=False)
    return body.get(field, "")


@bp.post("/api/v1/alerts/<int:alert_id>/ack")
@auth.roles(*ACKNOWLEDGERS)
def ack_alert(alert_id: int):
    """Acknowledge (stops escalation); optional `{"note"}`."""
    s = db.session
    changes = service.acknowledge(s, alert_id, actor=auth.current_principal().actor,
                                  note=_note("note"))
    _finish(changes)
    return jsonify(service.describe(s, service.get(s, alert_id)))


def _closing(action, alert_id: int):
    s = db.session
    changes = action(s, alert_id, actor=auth.current_principal().actor,
                     reason=_note("reason"))
    _finish(changes)
    return jsonify(service.describe(s, service.get(s, alert_id)))


@bp.post("/api/v1/alerts/<int:alert_id>/clear")
@auth.roles(*COMMANDER)
def clear_alert(alert_id: int):
    """Clear with `{"reason"}`: the danger is over."""
    return _closing(service.clear, alert_id)


@bp.post("/api/v1/alerts/<int:alert_id>/cancel")
@auth.roles(*COMMANDER)
def cancel_alert(alert_id: int):
    """Cancel with `{"reason"}`: raised in error."""
    return _closing(service.cancel, alert_id)


@bp.post("/api/v1/alerts/<int:alert_id>/approve")
@auth.roles(*COMMANDER)
def approve_alert(alert_id: int):
    """Approve the drafted public warning (CAP)."""
    s = db.session
    _finish(service.approve(s, alert_id, actor=auth.current_principal().actor))
    return jsonify(service.describe(s, service.get(s, alert_id)))


@bp.post("/api/v1/alerts/<int:alert_id>/publish")
@auth.roles(*COMMANDER)
def publish_alert(alert_id: int):
    """Publish the approved public warning (joins the Atom feed)."""
    s = db.session
    _finish(service.publish(s, alert_id, actor=auth.current_principal().actor))
    return jsonify(service.describe(s, service.get(s, alert_id)))


@bp.get("/api/v1/alerts/<int:alert_id>.cap")
@auth.roles(*PERSON_ROLES)
def alert_cap(alert_id: int):
    """The alert's latest CAP 1.2 message."""
    s = db.session
    alert = service.get(s, alert_id)
    messages = service.messages(s, alert)
    if not messages:
        raise NotFound(_l("Alert %(id)s has no CAP message (data alerts are not public).",
                          id=alert_id))
    return Response(messages[-1].xml, mimetype=cap.CAP_MEDIA_TYPE)


@bp.get("/api/v1/alerts/<int:alert_id>/cap")
@auth.roles(*PERSON_ROLES)
def alert_cap_messages(alert_id: int):
    """All the alert's CAP messages, oldest first."""
    s = db.session
    alert = service.get(s, alert_id)
    return jsonify(items=[
        {"n": m.n, "identifier": m.identifier, "msg_type": m.msg_type, "response": m.response,
         "status": m.status, "sent_at": m.sent_at.isoformat(),
         "published_at": m.published_at.isoformat() if m.published_at else None,
         "approved_by": m.approved_by or None, "xml": m.xml}
        for m in service.messages(s, alert)])


@bp.get("/api/v1/alerts.atom")
@auth.roles(*PERSON_ROLES)
def alerts_feed():
    """Atom feed of the published CAP messages, newest first."""
    s = db.session
    base = capmessages.public_url()
    rows = s.execute(select(AlertMessage, Alert).join(Alert, Alert.id == AlertMessage.alert_id)
                     .where(AlertMessage.status == CapStatus.PUBLISHED)
                     .order_by(AlertMessage.published_at.desc()).limit(200)).all()
    entries = [cap.FeedEntry(m.identifier, f"{a.subject_name}: {m.msg_type} {a.level}",
                             m.published_at or m.sent_at, f"{base}/api/v1/alerts/{a.id}.cap",
                             f"{a.kind} {a.level} ({m.response or m.msg_type})")
               for m, a in rows]
    updated = entries[0].updated if entries else datetime(2026, 1, 1, tzinfo=UTC)
    body = cap.atom_feed(entries, feed_id=f"{base}/api/v1/alerts.atom",
                         title=current_app.config["SETTINGS"].alerts.cap_sender,
                         self_url=f"{base}/api/v1/alerts.atom", updated=updated)
    return Response(body, mimetype="application/atom+xml")


# --- thresholds ---------------------------------------------------------------------------------

class BadThresholdsError(HubError):
    """A threshold table with bad cells (422 naming each)."""

    status = 422
    code = "bad_thresholds"
    message = _l("The threshold table has bad cells: fix each one listed.")


# Each bad cell's reason in the reader's language (alerts.thresholds gives codes and English).
WHY = {
    "not_an_object": _l("must be an object"),
    "not_a_list": _l("must be a list"),
    "unknown_key": _l("is not a field of this table"),
    "missing": _l("is missing"),
    "not_a_number": _l("must be a finite number"),
    "not_positive": _l("must be greater than zero"),
    "negative": _l("must not be negative"),
    "not_an_integer": _l("must be a whole number"),
    "empty": _l("must have at least one window"),
    "too_many": _l("must have at most 12 windows"),
    "too_long": _l("must be at most 24 h: the hub keeps 24 h of rain per gauge"),
    "not_increasing": _l("must be longer than the window before it"),
    "wrong_length": _l("must have exactly one value per window"),
    "decreasing": _l("must not be less than the value for the shorter window before it"),
    "below_prepare": _l("must not be less than the prepare value for the same soil and window"),
    "wet_above_dry": _l("must not be more than the value for drier soil: wetter soil floods "
                        "sooner"),
    "not_above_dry_below": _l("must be greater than dry_below"),
    "unknown_gauge": _l("is not a registered rain gauge"),
    "unknown_sensor": _l("is not a registered crack meter or GNSS station"),
    "duplicate": _l("is listed twice"),
    "too_steep": _l("must be less than 1.5: published curves have β well below that (are α "
                    "and β swapped?)"),
    "curve_below_prepare": _l("makes the evacuate curve fall below the prepare curve for "
                              "events between min_duration_h and 240 h"),
    "below_lower_level": _l("must not be less than the velocity of a lower level"),
    "more_than_sensors": _l("must not be more than the number of sensors"),
    "bad_header": _l("the first line must be: village,level,soil,window_h,mm"),
    "malformed": _l("is not well-formed CSV (check the quotes)"),
    "no_rows": _l("the file has no rows after its header"),
    "wrong_columns": _l("must have five columns: village,level,soil,window_h,mm"),
    "no_village": _l("names no village"),
    "unknown_village": _l("names a village that is not registered"),
    "unknown_level": _l("level must be prepare or evacuate"),
    "unknown_soil": _l("soil must be dry, normal or wet"),
    "bad_window": _l("window_h must be a number of hours above 0 and at most 24"),
    "bad_mm": _l("mm must be a number above 0"),
    "duplicate_row": _l("repeats the village, level, soil and window of an earlier line"),
    "missing_row": _l("no line gives the rain for this village, level, soil and window"),
}


def _bad(exc) -> BadThresholdsError:
    return BadThresholdsError(details={"cells": [
        {"path": c.path, "why": str(WHY.get(c.code, c.why)), "code": c.code}
        for c in exc.cells]})


def _gauge_codes(s) -> set[str]:
    return set(s.scalars(select(Sensor.code).where(Sensor.kind == SensorKind.RAIN_GAUGE,
                                                   Sensor.retired.is_(False))))


def _displacement_codes(s) -> set[str]:
    return set(s.scalars(select(Sensor.code).where(Sensor.kind.in_(DISPLACEMENT_KINDS),
                                                   Sensor.retired.is_(False))))


def _village(s, code: str) -> Village:
    village = s.scalar(select(Village).where(Village.code == code))
    if village is None:
        raise NotFound(_l("No village %(code)s.", code=code))
    return village


def _zone(s, code: str) -> HazardZone:
    zone = s.scalar(select(HazardZone).where(HazardZone.code == code))
    if zone is None:
        raise NotFound(_l("No hazard zone %(code)s.", code=code))
    return zone


def _table(row, missing) -> Response:
    if row is None:
        raise NotFound(missing, code="no_thresholds")
    return jsonify(row.table)


def _replace(parse, store, target) -> Response:
    """Validate the body with `parse`, store it on `target` (audited), judge again."""
    from alerts import thresholds

    s = db.session
    try:
        table = parse(s, json_object())
    except thresholds.BadThresholds as exc:
        raise _bad(exc) from None
    store(s, target, table.as_json(), actor=auth.current_principal().actor)
    s.commit()
    _nudge_evaluator()
    return jsonify(table.as_json())


@bp.get("/api/v1/villages/<code>/thresholds")
@auth.roles(*PERSON_ROLES)
def get_village_thresholds(code: str):
    """The village's critical-rainfall table (404 `no_thresholds` when it has none)."""
    s = db.session
    village = _village(s, code)
    return _table(s.scalar(select(VillageThreshold).where(
        VillageThreshold.village_id == village.id)),
        _l("Village %(code)s has no threshold table yet.", code=code))


@bp.put("/api/v1/villages/<code>/thresholds")
@auth.roles(*EDITORS)
def put_village_thresholds(code: str):
    """Replace the village's table (422 naming every bad cell); audited."""
    from alerts import thresholds

    return _replace(lambda s, body: thresholds.village_thresholds(
        body, rain_gauges=_gauge_codes(s)), tables.store_village_table,
        _village(db.session, code))


@bp.get("/api/v1/hazards/<code>/thresholds")
@auth.roles(*PERSON_ROLES)
def get_hazard_thresholds(code: str):
    """The zone's rainfall curves and slope-velocity thresholds."""
    s = db.session
    zone = _zone(s, code)
    return _table(s.scalar(select(HazardThreshold).where(HazardThreshold.hazard_id == zone.id)),
                  _l("Hazard zone %(code)s has no threshold table yet.", code=code))


@bp.put("/api/v1/hazards/<code>/thresholds")
@auth.roles(*EDITORS)
def put_hazard_thresholds(code: str):
    """Replace the zone's table (422 naming every bad cell); audited."""
    from alerts import thresholds

    return _replace(lambda s, body: thresholds.hazard_thresholds(
        body, rain_gauges=_gauge_codes(s), displacement_sensors=_displacement_codes(s)),
        tables.store_hazard_table, _zone(db.session, code))


@bp.post("/api/v1/thresholds/import")
@auth.roles(*EDITORS)
def import_thresholds():
    """CSV `village,level,soil,window_h,mm`: all rows or none, each bad row named (422)."""
    from alerts import thresholds
    from dispatch.core.tabular import decode_text

    s = db.session
    upload = request.files.get("file")
    raw = upload.read() if upload is not None else request.get_data()
    text = decode_text(raw)
    try:
        docs = thresholds.parse_csv(text, villages=set(s.scalars(select(Village.code))))
    except thresholds.BadThresholds as exc:
        raise _bad(exc) from None
    gauges, cells, validated = _gauge_codes(s), [], {}
    for code, doc in docs.items():
        village = s.scalar(select(Village).where(Village.code == code))
        if village is None:
            cells.append(thresholds.BadCell(code, f"no village {code}", "unknown_village"))
            continue
        row = s.scalar(select(VillageThreshold).where(VillageThreshold.village_id == village.id))
        kept = {k: v for k, v in (row.table if row else {}).items()
                if k in {"gauges", "antecedent_mm"}}
        try:
            validated[village] = thresholds.village_thresholds({**kept, **doc}, rain_gauges=gauges)
        except thresholds.BadThresholds as exc:
            cells += [thresholds.BadCell(f"{code}.{c.path}", c.why, c.code) for c in exc.cells]
    if cells:
        raise _bad(thresholds.BadThresholds(cells))
    actor = auth.current_principal().actor
    for village, table in validated.items():
        tables.store_village_table(s, village, table.as_json(), actor=actor)
    s.commit()
    _nudge_evaluator()
    return jsonify(imported=sorted(v.code for v in validated))


def _nudge_evaluator() -> None:
    evaluator = current_app.extensions.get("alerts.evaluator")
    if evaluator is not None:
        evaluator.sweep()


def _ack_over_socket(principal, data=None):
    """Client event `ack_alert` `{"id", "note"}` from the office page or a tablet."""
    from dispatch.core.errors import BadRequest

    if not isinstance(data, dict) or not isinstance(data.get("id"), int) \
            or isinstance(data.get("id"), bool):
        return {"error": "bad_request", "message": str(BadRequest.message)}
    try:
        changes = service.acknowledge(db.session, data["id"], actor=principal.actor,
                                      note=data.get("note", ""))
        _finish(changes)
    except HubError as exc:
        db.session.rollback()
        return {"error": exc.code, "message": str(exc.message)}
    finally:
        db.remove()
    return {"ok": True}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # Registered per app, as the kernel's own live events are (dispatch.core.realtime.init_app):
    # each app's init binds a new Socket.IO server.
    live_event("ack_alert", *ACKNOWLEDGERS)(_ack_over_socket)

