"""Sensor registry endpoints (DESIGN §5) and the sensors map layer."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import gettext as _

from dispatch.core import auth
from dispatch.core.body import json_body, json_object
from dispatch.core.choices import EDITORS, OFFICE_ROLES, PERSON_ROLES, Role
from dispatch.core.db import db
from dispatch.core.errors import parameter_error
from dispatch.core.events import ReadingsStored, readings_stored
from maps.views import register_layer
from telemetry import series, service
from telemetry.live import announce_readings, send_status, sensor_status_event
from telemetry.sensor_memory import state_of

bp = Blueprint("telemetry", __name__)


def _changed(sensor) -> None:
    state_of(current_app).forget_sensor_rows([sensor.code])
    send_status([sensor_status_event(sensor.code, status=sensor.status, flag=sensor.last_flag,
                                     retired=sensor.retired, since=sensor.status_at)])


@bp.get("/api/v1/sensors")
@auth.roles(*PERSON_ROLES)
def list_sensors():
    """Sensors (`?kind=`, `?gateway=`, `?retired=1` to include retired ones)."""
    return jsonify(items=service.listing(
        db.session, kind=request.args.get("kind"), gateway=request.args.get("gateway"),
        include_retired=request.args.get("retired") == "1"))


@bp.post("/api/v1/sensors")
@auth.roles(*EDITORS)
def register_sensor():
    """Register a sensor: code, kind, unit, gateway, lon, lat (+ village, hazard, range, …)."""
    s = db.session
    sensor = service.register(s, json_body(),
                              actor=auth.current_principal().actor)
    s.commit()
    _changed(sensor)
    return jsonify(service.describe(s, sensor)), 201


@bp.post("/api/v1/sensors/import")
@auth.roles(*EDITORS)
def import_sensors():
    """Register sensors from a CSV file or a GeoJSON FeatureCollection (upload field `file`, or
    the raw body as text/csv or application/geo+json); all or none, 422 lists every bad row."""
    from werkzeug.exceptions import RequestEntityTooLarge

    from dispatch.core.errors import BadRequest, PayloadTooLarge
    from dispatch.core.tabular import decode_text
    from telemetry import imports

    too_large = PayloadTooLarge(_("The file is larger than %(kib)d KiB: split it into smaller "
                                  "files.", kib=imports.MAX_BYTES // 1024))
    # Room for the multipart envelope around the file; the file itself is checked below.
    request.max_content_length = imports.MAX_BYTES + 16384
    try:
        upload = request.files.get("file")
        if upload is not None:
            raw, name, mimetype = upload.read(imports.MAX_BYTES + 1), upload.filename or "", \
                upload.mimetype
        elif request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise BadRequest(_("Choose a file to upload (form field “file”)."), code="no_file")
        else:
            raw, name, mimetype = request.stream.read(imports.MAX_BYTES + 1), "", \
                request.mimetype
    except RequestEntityTooLarge:
        raise too_large from None
    if len(raw) > imports.MAX_BYTES:
        raise too_large
    fmt = _import_format(name, mimetype)
    text = decode_text(raw)
    s = db.session
    created = imports.import_sensors(s, text, fmt=fmt, actor=auth.current_principal().actor)
    s.commit()
    for sensor in created:
        _changed(sensor)
    return jsonify(created=len(created), codes=[sensor.code for sensor in created]), 201


CSV_TYPES = ("text/csv", "application/csv")
GEOJSON_TYPES = ("application/geo+json", "application/json")


def _import_format(filename: str, mimetype: str) -> str:
    """"csv" or "geojson", from the file's name, else its content type."""
    from dispatch.core.errors import HubError

    lower = filename.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".geojson", ".json")):
        return "geojson"
    if mimetype in CSV_TYPES:
        return "csv"
    if mimetype in GEOJSON_TYPES:
        return "geojson"
    raise HubError(_("Send a CSV file (text/csv) or a GeoJSON FeatureCollection "
                     "(application/geo+json)."), code="unsupported_type", status=415)


@bp.get("/api/v1/gateways")
@auth.roles(*PERSON_ROLES)
def list_gateways():
    """Gateways with their online state (retained status, last will, silence), last seen time,
    battery, how many active sensors they own, and their dead-letter quota state (`dropped`:
    rejections not kept, in unresolved over_quota letters; `over_quota`: in the last 2 min)."""
    from sqlalchemy import func, select

    from dispatch.core.db import utcnow
    from dispatch.core.models import Gateway
    from telemetry.models import Sensor
    from telemetry.quota import gateway_states

    owned = dict(db.session.execute(select(Sensor.gateway_id, func.count(Sensor.id)).where(
        Sensor.retired.is_(False)).group_by(Sensor.gateway_id)).all())
    quota = gateway_states(db.session, utcnow())
    return jsonify(items=[{
        "code": g.code, "name": g.name, "active": g.active, "online": g.online,
        "offline_reason": g.offline_reason, "battery_v": g.battery_v,
        "last_seen_at": g.last_seen_at.isoformat() if g.last_seen_at else None,
        "sensors": owned.get(g.id, 0),
        "dead_letters": quota.get(g.code, {"over_quota": False, "dropped": 0,
                                           "dropped_since": None}),
    } for g in db.session.scalars(select(Gateway).order_by(Gateway.code))])


@bp.get("/api/v1/sensors/<code>")
@auth.roles(*PERSON_ROLES)
def get_sensor(code: str):
    """One sensor with its last value and QC flag."""
    s = db.session
    return jsonify(service.describe(s, service.find(s, code)))


@bp.get("/api/v1/sensors/<code>/readings")
@auth.roles(*PERSON_ROLES)
def sensor_readings(code: str):
    """Stored readings with QC flags, oldest first (`?since=&until=` RFC 3339, default the last
    24 h; `?limit=`)."""
    from dispatch.core.db import utcnow

    s = db.session
    return jsonify(series.readings(s, service.find(s, code), request.args, utcnow()))


@bp.get("/api/v1/sensors/<code>/hourly")
@auth.roles(*PERSON_ROLES)
def sensor_hourly(code: str):
    """Hourly roll-ups, kept for ever (`?since=&until=`, default the last 7 days)."""
    from dispatch.core.db import utcnow

    s = db.session
    return jsonify(series.hourly(s, service.find(s, code), request.args, utcnow()))


@bp.get("/api/v1/sensors/<code>/sums")
@auth.roles(*PERSON_ROLES)
def sensor_sums(code: str):
    """Rolling rain windows ending now with their completeness, the event total and the
    antecedent-rain index (rain gauges); velocity and failure forecast (displacement)."""
    from dispatch.core.db import utcnow

    s = db.session
    return jsonify(series.sums(s, state_of(current_app), service.find(s, code), utcnow(),
                               current_app.config["SETTINGS"]))


@bp.patch("/api/v1/sensors/<code>")
@auth.roles(*EDITORS)
def change_sensor(code: str):
    """Change a sensor's name, location, links, range, interval or QC parameters (audited)."""
    s = db.session
    sensor = service.change(s, code, json_body(),
                            actor=auth.current_principal().actor)
    s.commit()
    _changed(sensor)
    return jsonify(service.describe(s, sensor))


@bp.delete("/api/v1/sensors/<code>")
@auth.roles(*EDITORS)
def retire_sensor(code: str):
    """Retire a sensor (its history stays; new readings are refused)."""
    s = db.session
    sensor = service.retire(s, code, actor=auth.current_principal().actor)
    s.commit()
    _changed(sensor)
    return jsonify(service.describe(s, sensor))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    register_layer(app, "sensors", service.sensors_layer)


def _limits():
    from telemetry.ingest import IngestLimits

    return IngestLimits.of(current_app.config["SETTINGS"])


@bp.post("/api/v1/readings")
@auth.roles(Role.GATEWAY)
@auth.csrf_exempt
def post_readings():
    """Readings from a gateway over HTTP: the MQTT body; 200 whenever the body decoded."""
    import uuid

    from dispatch.core.db import utcnow
    from dispatch.core.errors import BadRequest, PayloadTooLarge
    from telemetry.ingest import Ingest
    from telemetry.quota import quota_of

    limits = _limits()
    gateway = auth.current_principal().name
    # Read at most one byte past the limit ourselves, so an oversized body is dead-lettered
    # (its first bytes kept) instead of being refused unseen by the app-wide limit.
    request.max_content_length = None
    raw = request.stream.read(limits.max_payload_bytes + 1)
    s = db.session
    ingest = Ingest(s, limits, state_of(current_app), quota_of(current_app))
    result = ingest.message(raw, topic="http", gateway=gateway,
                            message_id=f"http-{uuid.uuid4().hex[:16]}", now=utcnow())
    ingest.finish()
    s.commit()
    ingest.apply()
    steps = ingest.revision_steps()
    if steps:
        # The warning rules of this process (the all-in-one `run`) evaluate these sensors'
        # subjects now; a worker in another process sweeps them within alerts.evaluate_every_s.
        readings_stored.send(ReadingsStored(frozenset(steps), frozenset(
            sid for sid, readings in ingest.pending.readings.items()
            if any(value != 0 for _ts, value, _flag in readings))))
    announce_readings(result.stored_readings)
    send_status(ingest.status_events)
    whole = [reason for index, reason in result.rejected if index is None]
    if whole and not result.stored and not result.duplicates:
        if whole[0] == "too_large":
            raise PayloadTooLarge(_("The body exceeds %(bytes)d bytes or 1,000 readings: send "
                                    "smaller batches.", bytes=limits.max_payload_bytes))
        if whole[0] in {"bad_json", "bad_encoding", "schema"}:
            raise BadRequest(_("The body was refused (%(reason)s); it is kept in the "
                               "dead-letter store.", reason=whole[0]), code=whole[0])
    return jsonify(result.as_http())


# A dead letter's payload is shown up to this many bytes (the store keeps up to the ingest limit).
PAYLOAD_SHOWN = 4096


def _dead_letter_filters(*, with_reason: bool = True) -> list:
    """The WHERE conditions of `?reason=`, `?gateway=`, `?sensor=`, `?resolved=0|1`."""
    from telemetry.metrics import LETTER_REASONS
    from telemetry.models import DeadLetter

    args = request.args
    conditions = []
    reason = args.get("reason", "")
    if with_reason and reason:
        choices = (*LETTER_REASONS, "over_quota")
        if reason not in choices:
            raise parameter_error("reason", _("must be one of %(choices)s",
                                              choices=", ".join(choices)))
        conditions.append(DeadLetter.reason == reason)
    if args.get("gateway"):
        conditions.append(DeadLetter.gateway == args["gateway"])
    if args.get("sensor"):
        conditions.append(DeadLetter.sensor_code == args["sensor"])
    resolved = args.get("resolved", "")
    if resolved not in {"", "0", "1"}:
        raise parameter_error("resolved", _("must be 0 or 1"))
    if resolved:
        conditions.append(DeadLetter.resolved_at.is_not(None) if resolved == "1"
                          else DeadLetter.resolved_at.is_(None))
    return conditions


def _shown_payload(raw: bytes) -> tuple[str, bool]:
    """The first PAYLOAD_SHOWN bytes as text (invalid bytes as U+FFFD) and whether it is UTF-8.

    A cut through a multi-byte character drops that character's first bytes instead of showing
    them as invalid."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    shown = raw[:PAYLOAD_SHOWN]
    try:
        return decoder.decode(shown, final=len(raw) <= PAYLOAD_SHOWN), True
    except UnicodeDecodeError:
        replacing = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return replacing.decode(shown, final=len(raw) <= PAYLOAD_SHOWN), False


def _dead_letter_item(d) -> dict:
    payload, utf8 = _shown_payload(d.payload)
    return {
        "id": d.id, "received_at": d.received_at.isoformat(), "topic": d.topic,
        "gateway": d.gateway, "message_id": d.message_id, "reason": d.reason,
        "detail": d.detail, "sensor": d.sensor_code, "index": d.item,
        "payload": payload, "payload_bytes": len(d.payload),
        "payload_truncated": len(d.payload) > PAYLOAD_SHOWN, "payload_utf8": utf8,
        "resolved": d.resolved_at is not None,
        "resolved_at": d.resolved_at.isoformat() if d.resolved_at else None,
        "resolved_by": d.resolved_by, "resolution": d.resolution,
        # over_quota letters: the rejections they count, whose payloads were not kept.
        "dropped_count": d.dropped_count, "dropped_bytes": d.dropped_bytes,
    }


@bp.get("/api/v1/dead-letters")
@auth.roles(*OFFICE_ROLES)
def dead_letters():
    """Rejected messages and readings, newest first (`?reason=`, `?gateway=`, `?sensor=`,
    `?resolved=0|1`, `?limit=` up to 1000, `?before=id`; `next_before` pages on)."""
    from sqlalchemy import select

    from telemetry.models import DeadLetter

    limit = series.positive_parameter(request.args, "limit", 100, 1000)
    before = series.positive_parameter(request.args, "before", None)
    query = select(DeadLetter).where(*_dead_letter_filters()).order_by(DeadLetter.id.desc())
    if before is not None:
        query = query.where(DeadLetter.id < before)
    letters = list(db.session.scalars(query.limit(limit + 1)))
    more = len(letters) > limit
    letters = letters[:limit]
    return jsonify(items=[_dead_letter_item(d) for d in letters],
                   next_before=letters[-1].id if more else None)


@bp.get("/api/v1/dead-letters/summary")
@auth.roles(*OFFICE_ROLES)
def dead_letters_summary():
    """Dead letters counted per reason, unresolved and total (`?gateway=`, `?sensor=`)."""
    from sqlalchemy import case, func, select

    from telemetry.metrics import LETTER_REASONS
    from telemetry.models import DeadLetter

    unresolved = func.sum(case((DeadLetter.resolved_at.is_(None), 1), else_=0))
    rows = db.session.execute(
        select(DeadLetter.reason, func.count(DeadLetter.id), unresolved, func.max(DeadLetter.id))
        .where(*_dead_letter_filters(with_reason=False)).group_by(DeadLetter.reason)).all()
    counts = {reason: {"unresolved": 0, "total": 0} for reason in LETTER_REASONS}
    latest = None
    for reason, total, open_, newest in rows:
        counts.setdefault(reason, {})["total"] = total
        counts[reason]["unresolved"] = int(open_ or 0)
        latest = max(latest or 0, newest)
    return jsonify(reasons=counts, total=sum(c["total"] for c in counts.values()),
                   unresolved=sum(c["unresolved"] for c in counts.values()), latest_id=latest)


@bp.post("/api/v1/dead-letters/<int:letter_id>/reprocess")
@auth.roles(*EDITORS)
def reprocess_dead_letter(letter_id: int):
    """Ingest a dead letter again (`{"action": "reprocess"}`), settle a conflict
    (`{"action": "keep"}` / `{"action": "replace"}`) or set it aside (`{"action": "dismiss"}`);
    audited."""
    from dispatch.core.db import utcnow
    from dispatch.core.errors import NotFound
    from telemetry.ingest import reprocess

    if letter_id > series.MAX_ID:  # no id is past a BIGINT, and no driver binds one
        raise NotFound(_("There is no dead letter %(id)s.", id=letter_id))
    body = json_object(required=False)
    s = db.session
    outcome = reprocess(s, letter_id, action=str(body.get("action", "reprocess")),
                        actor=auth.current_principal().actor, limits=_limits(), now=utcnow())
    s.commit()
    return jsonify(outcome)
