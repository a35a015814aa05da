"""Sensor registry endpoints (DESIGN §5) and the sensors map layer."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request

from dispatch.core import auth
from dispatch.core.choices import PERSON_ROLES, Role
from dispatch.core.db import db
from dispatch.core.realtime import notify
from maps.views import register_layer
from telemetry import service

bp = Blueprint("telemetry", __name__)

EDITORS = (Role.COMMANDER, Role.DISPATCHER)


def _changed(sensor) -> None:
    notify("sensor_status", {"sensor": sensor.code, "retired": sensor.retired,
                             "flag": sensor.last_flag or "missing"})


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
    sensor = service.register(s, request.get_json(silent=True),
                              actor=auth.current_principal().actor)
    s.commit()
    _changed(sensor)
    return jsonify(service.describe(s, sensor)), 201


@bp.get("/api/v1/sensors/<code>")
@auth.roles(*PERSON_ROLES)
def get_sensor(code: str):
    """One sensor with its last value and QC flag."""
    s = db.session
    return jsonify(service.describe(s, service.find(s, code)))


@bp.patch("/api/v1/sensors/<code>")
@auth.roles(*EDITORS)
def change_sensor(code: str):
    """Change a sensor's name, location, links, range, interval or QC parameters (audited)."""
    s = db.session
    sensor = service.change(s, code, request.get_json(silent=True),
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
