"""The sensor registry as services: register, change, retire, list, and the sensors map layer."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch.core import audit
from dispatch.core.codes import check_code
from dispatch.core.errors import BadRequest, Conflict, NotFound, field_error
from dispatch.core.models import Gateway
from maps import geo
from maps.models import SRID, HazardZone, Village
from maps.service import FeatureKind, geometry_error, layer_features
from telemetry.choices import DEFAULT_RANGES, LABELS, UNITS, SensorKind
from telemetry.models import Sensor
from telemetry.sensor_memory import qc_params


def _text(body: dict, field: str, *, required: bool = False, max_len: int = 64) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise field_error(field, _l("is required"))
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise field_error(field, _l("must be text of 1-%(max)d characters", max=max_len))
    return value.strip()


def _number(body: dict, field: str, lo: float, hi: float, *, required: bool = False):
    value = body.get(field)
    if value is None:
        if required:
            raise field_error(field, _l("is required"))
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise field_error(field, _l("must be a finite number"))
    if not lo <= value <= hi:
        raise field_error(field, _l("must be between %(lo)s and %(hi)s", lo=lo, hi=hi))
    return value


def _range(body: dict, kind: SensorKind) -> tuple[float, float]:
    raw = body.get("range")
    if raw is None:
        return DEFAULT_RANGES[kind]
    if (not isinstance(raw, list) or len(raw) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            for v in raw) or raw[0] >= raw[1]):
        raise field_error("range", _l("must be [min, max] with min < max"))
    return float(raw[0]), float(raw[1])


# "No … has the code X" in the office's words for each linked record (not the field's name).
_NOT_FOUND = {
    "gateway": lambda code: _l("no gateway has the code %(code)s", code=code),
    "village": lambda code: _l("no village has the code %(code)s", code=code),
    "hazard": lambda code: _l("no hazard zone has the code %(code)s", code=code),
}


def _lookup(session: Session, model, code: str | None, field: str):
    if code is None:
        return None
    row = session.scalar(select(model).where(model.code == code))
    if row is None:
        raise field_error(field, _NOT_FOUND[field](code))
    return row


# How far beyond its villages' bounding box a sensor may stand without a confirmation.
OUTSIDE_MARGIN_KM = 20.0
KM_PER_DEGREE = 111.32


def _km_outside(session: Session, point: Point) -> float | None:
    """How far (km) a point lies beyond the township's extent (its villages' bounding box plus
    OUTSIDE_MARGIN_KM), or None inside it or when there are no villages to tell."""
    # The same bounds are ST_XMin… on PostGIS and ST_MinX… on SpatiaLite.
    x0, y0, x1, y1 = (getattr(func, name) for name in (
        ("ST_XMin", "ST_YMin", "ST_XMax", "ST_YMax")
        if session.bind.dialect.name == "postgresql"
        else ("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")))
    box = session.execute(select(
        func.min(x0(Village.boundary)), func.min(y0(Village.boundary)),
        func.max(x1(Village.boundary)), func.max(y1(Village.boundary)))).one()
    if any(v is None for v in box):
        return None
    west, south, east, north = box
    # Degrees to km on the spot (an equirectangular estimate: ample for "far outside").
    dx = max(west - point.x, 0.0, point.x - east) * KM_PER_DEGREE * math.cos(
        math.radians(point.y))
    dy = max(south - point.y, 0.0, point.y - north) * KM_PER_DEGREE
    beyond = math.hypot(dx, dy) - OUTSIDE_MARGIN_KM
    return beyond if beyond > 0 else None


def _location(session: Session, body: dict) -> Point:
    lon = _number(body, "lon", -180, 180, required=True)
    lat = _number(body, "lat", -90, 90, required=True)
    point = Point(lon, lat)
    try:
        geo.check_lonlat(point)
    except geo.GeometryError as exc:
        raise geometry_error(exc) from None
    confirmed = body.get("confirm_outside", False)
    if not isinstance(confirmed, bool):
        raise field_error("confirm_outside", _l("must be true or false"))
    # A typo in a coordinate (a swapped or missing digit) puts a sensor hundreds of km away,
    # where nothing on the map shows it: refuse unless the request confirms it on purpose.
    km = None if confirmed else _km_outside(session, point)
    if km is not None:
        shown = f"{km:,.0f}" if km >= 10 else f"{km:.1f}"
        raise BadRequest(_l("This location is %(km)s km outside the township (beyond its "
                            "villages and a margin of %(margin)d km). Check the longitude and "
                            "latitude, or confirm that the sensor really stands there.",
                            km=shown, margin=int(OUTSIDE_MARGIN_KM)),
                         code="outside_township",
                         details={"field": "lon", "distance_km": round(km, 1),
                                  "confirm": "confirm_outside"})
    return point


def register(session: Session, body: Any, *, actor: str) -> Sensor:
    """Register a sensor (DESIGN §5 body); audited. A location outside the township's extent
    needs `"confirm_outside": true`."""
    if not isinstance(body, dict):
        raise BadRequest(_l("Send a JSON object."), code="bad_json")
    code = check_code("code", _text(body, "code", required=True))
    try:
        kind = SensorKind(_text(body, "kind", required=True))
    except ValueError:
        raise field_error("kind", _l("must be one of %(choices)s",
                                     choices=", ".join(SensorKind))) from None
    unit = _text(body, "unit", required=True, max_len=16)
    if unit not in UNITS[kind]:
        raise field_error("unit", _l("must be %(units)s for this kind of sensor (%(kind)s)",
                                     units=" / ".join(UNITS[kind]), kind=LABELS[kind]))
    gateway = _lookup(session, Gateway, _text(body, "gateway", required=True), "gateway")
    if session.scalar(select(Sensor.id).where(Sensor.code == code)):
        raise Conflict(_l("Sensor %(code)s exists already.", code=code), code="exists")
    low, high = _range(body, kind)
    sensor = Sensor(
        code=code, name=_text(body, "name", max_len=128) or code, kind=kind, unit=unit,
        gateway_id=gateway.id, location=from_shape(_location(session, body), srid=SRID),
        village_id=getattr(_lookup(session, Village, _text(body, "village"), "village"), "id",
                           None),
        hazard_id=getattr(_lookup(session, HazardZone, _text(body, "hazard"), "hazard"), "id",
                          None),
        range_min=low, range_max=high,
        interval_s=int(_number(body, "interval_s", 10, 86400) or 300),
        qc={})
    sensor.qc = _qc(body.get("qc"), sensor) if body.get("qc") is not None else {}
    session.add(sensor)
    session.flush()
    audit.record(session, actor=actor, action="sensor.create", entity_type="sensor",
                 entity_id=code, after=describe(session, sensor))
    return sensor


def _qc(value: Any, sensor: Sensor) -> dict:
    """Check QC parameters (telemetry.qc.QcParams names) merged over the kind's defaults."""
    if not isinstance(value, dict):
        raise field_error("qc", _l("must be an object of QC parameters"))
    for key, number in value.items():
        if number is not None and (isinstance(number, bool)
                                   or not isinstance(number, int | float)
                                   or not math.isfinite(number)):
            raise field_error("qc", _l("parameter %(key)s must be a number or null", key=key))
    try:
        qc_params(sensor.kind, value, sensor.interval_s)
    except (TypeError, ValueError) as exc:
        raise field_error("qc", str(exc)) from None  # telemetry.qc names the parameter
    return value


def find(session: Session, code: str) -> Sensor:
    sensor = session.scalar(select(Sensor).where(Sensor.code == code))
    if sensor is None:
        raise NotFound(_l("There is no sensor with the code %(code)s.", code=code),
                       code="not_found")
    return sensor


def change(session: Session, code: str, body: Any, *, actor: str) -> Sensor:
    """Change name, location, links, range, interval or QC parameters; audited."""
    if not isinstance(body, dict):
        raise BadRequest(_l("Send a JSON object."), code="bad_json")
    sensor = find(session, code)
    before = describe(session, sensor)
    if "name" in body:
        sensor.name = _text(body, "name", required=True, max_len=128)
    if "lon" in body or "lat" in body:
        sensor.location = from_shape(_location(session, body), srid=SRID)
    if "range" in body:
        sensor.range_min, sensor.range_max = _range(body, SensorKind(sensor.kind))
    if "interval_s" in body:
        sensor.interval_s = int(_number(body, "interval_s", 10, 86400, required=True))
    _change_links(session, sensor, body)
    if "qc" in body:
        sensor.qc = _qc(body["qc"], sensor)
    if "retired" in body:
        if not isinstance(body["retired"], bool):
            raise field_error("retired", _l("must be true or false"))
        sensor.retired = body["retired"]
    session.flush()
    after = describe(session, sensor)
    if after != before:
        audit.record(session, actor=actor, action="sensor.update", entity_type="sensor",
                     entity_id=code, before=before, after=after)
    return sensor


def _change_links(session: Session, sensor: Sensor, body: dict) -> None:
    # null unlinks; a code links to that village or hazard zone.
    if "village" in body:
        village = _lookup(session, Village, _text(body, "village"), "village")
        sensor.village_id = village.id if village else None
    if "hazard" in body:
        hazard = _lookup(session, HazardZone, _text(body, "hazard"), "hazard")
        sensor.hazard_id = hazard.id if hazard else None


def retire(session: Session, code: str, *, actor: str) -> Sensor:
    """Retire a sensor: its history stays, new readings are refused as retired_sensor."""
    return change(session, code, {"retired": True}, actor=actor)


def describe(session: Session, sensor: Sensor) -> dict[str, Any]:
    """A sensor as the API shows it."""
    point = to_shape(sensor.location)
    gateway = session.get(Gateway, sensor.gateway_id)
    village = session.get(Village, sensor.village_id) if sensor.village_id else None
    hazard = session.get(HazardZone, sensor.hazard_id) if sensor.hazard_id else None
    return {
        "code": sensor.code, "name": sensor.name, "kind": sensor.kind, "unit": sensor.unit,
        "gateway": gateway.code if gateway else None,
        # The gateway's own state (retained status, last will, silence): a page that is
        # reloaded while the gateway is offline must still say so (null: never heard of).
        "gateway_online": gateway.online if gateway else None,
        "gateway_offline_reason": gateway.offline_reason if gateway else None,
        "lon": point.x, "lat": point.y,
        "village": village.code if village else None, "hazard": hazard.code if hazard else None,
        "range": [sensor.range_min, sensor.range_max], "interval_s": sensor.interval_s,
        "qc": sensor.qc or {}, "retired": sensor.retired,
        "last_ts": sensor.last_ts.isoformat() if sensor.last_ts else None,
        "last_value": sensor.last_value, "last_flag": sensor.last_flag,
        "status": sensor.status,
        "status_at": sensor.status_at.isoformat() if sensor.status_at else None,
    }


def listing(session: Session, *, kind: str | None = None, gateway: str | None = None,
            include_retired: bool = False) -> list[dict[str, Any]]:
    """Sensors, filtered by kind and gateway."""
    query = select(Sensor).order_by(Sensor.code)
    if kind:
        query = query.where(Sensor.kind == kind)
    if gateway:
        query = query.join(Gateway, Gateway.id == Sensor.gateway_id).where(
            func.lower(Gateway.code) == gateway.lower())
    if not include_retired:
        query = query.where(Sensor.retired.is_(False))
    return [describe(session, s) for s in session.scalars(query)]


def _layer_props(sensor: Sensor) -> dict[str, Any]:
    return {"code": sensor.code, "name": sensor.name, "kind": sensor.kind, "unit": sensor.unit,
            "last_value": sensor.last_value,
            # A silent sensor is missing whatever its last reading's flag was (DESIGN §6).
            "last_flag": sensor.last_flag if sensor.status == "reporting" and sensor.last_flag
            else "missing",
            "status": sensor.status,
            "last_ts": sensor.last_ts.isoformat() if sensor.last_ts else None}


SENSORS = FeatureKind("sensors", "sensor", Sensor, "location", ("Point",), {}, _layer_props)


def sensors_layer(session: Session, bbox) -> Iterator[str]:
    """The sensors map layer: active sensors with their last value and QC flag."""
    return layer_features(session, SENSORS, bbox, where=Sensor.retired.is_(False))


def load_demo_sensors(session: Session, sensors, gateway_codes: list[str], *, actor: str,
                      new_gateway) -> int:
    """Register the demo gateways (via `new_gateway(code)`) and sensors that are not there yet."""
    for code in gateway_codes:
        if not session.scalar(select(Gateway.id).where(Gateway.code == code)):
            new_gateway(code)
    added = 0
    for item in sensors:
        if session.scalar(select(Sensor.id).where(Sensor.code == item.code)):
            continue
        register(session, {"code": item.code, "name": item.name, "kind": item.kind,
                           "unit": item.unit, "gateway": item.gateway, "lon": item.lon,
                           "lat": item.lat, "village": item.village, "hazard": item.hazard,
                           "interval_s": item.interval_s}, actor=actor)
        added += 1
    return added
