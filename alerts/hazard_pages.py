"""A hazard zone's page for the office (`/hazards/<code>`): its current rain event on the
intensity–duration chart with both curves, each slope sensor's inverse-velocity plot with
Fukuzono's forecast line, and the zone's active alerts.

The page draws what `GET /api/v1/hazards/<code>/charts` answers. That answer is computed with the
rules' own code (alerts.rules, telemetry.rain, telemetry.slope) and the zone's own table, so the
chart never disagrees with the alert: D is the hours from the event's first rain to now (at
least `min_duration_h`), I = event mm / D (DESIGN §6), and 1/v is smoothed over 3 intervals
before fitting, as Fukuzono 1985 advises and /sums does.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template
from flask_babel import lazy_gettext as _l
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import rules, service
from alerts.choices import (
    ACTIVE_STATES,
    COLOURS,
    LEVEL_LABELS,
    LEVELS,
    WARNING_LABELS,
    AlertKind,
)
from alerts.evaluate import GaugePicker, hazard_tables  # the same choices the evaluator makes
from alerts.models import Alert, HazardThreshold
from dispatch.core import auth, openapi
from dispatch.core.api_schemas import obj, ok
from dispatch.core.choices import PERSON_ROLES
from dispatch.core.db import db, utcnow
from dispatch.core.errors import NotFound
from maps.choices import LABELS as MAP_LABELS
from maps.models import HazardZone
from telemetry import series as telemetry_series
from telemetry.choices import DISPLACEMENT_KINDS, SensorKind
from telemetry.models import Reading, Sensor
from telemetry.rain import CAINE_1980, GUZZETTI_2008, USABLE_FLAGS, current_event
from telemetry.slope import inverse_velocity_forecast, smoothed_inverse_velocity

bp = Blueprint("hazard_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/hazards")

# The chart's axes (DESIGN §6 curves hold over these ranges: Caine 10 min-10 days).
DURATION_AXIS_H = (0.1, 240.0)
INTENSITY_AXIS_MM_H = (0.1, 200.0)
# The most 1/v points one sensor's plot gets (the fit uses all of them; the plot a stride).
MAX_PLOT_POINTS = 1500
# Moving average of the velocity over this many intervals before inverting (as /sums).
SMOOTH_INTERVALS = 3
KINDS = (AlertKind.LANDSLIDE_RAIN, AlertKind.SLOPE_MOVEMENT)


def _zone(s: Session, code: str) -> HazardZone:
    zone = s.scalar(select(HazardZone).where(HazardZone.code == code))
    if zone is None:
        raise NotFound(_l("No hazard zone %(code)s.", code=code))
    return zone


def _curve(alpha: float, beta: float, published) -> dict[str, Any]:
    """A curve with the paper it comes from, or None for a zone's own numbers."""
    same = math.isclose(alpha, published.alpha) and math.isclose(beta, published.beta)
    return {"alpha": alpha, "beta": beta, "source": published.name if same else None}


def _gauges(s: Session, zone: HazardZone, table: dict, radius_m: float) -> list[Sensor]:
    """The zone's rain gauges as the rules pick them: the table's, else those inside the zone,
    else the nearest within alerts.gauge_radius_m."""
    rain = s.scalars(select(Sensor).where(Sensor.kind == SensorKind.RAIN_GAUGE,
                                          Sensor.retired.is_(False)).order_by(Sensor.code)).all()
    pick = GaugePicker([(g.id, g.code, to_shape(g.location)) for g in rain], radius_m)
    chosen = set(pick.pick(table.get("gauges") or (), to_shape(zone.geometry)))
    return [g for g in rain if g.id in chosen]


def _slope_sensors(s: Session, zone: HazardZone, table: dict) -> list[Sensor]:
    """The table's displacement sensors, else those registered with this hazard zone."""
    named = list(table.get("sensors") or ())
    query = select(Sensor).where(Sensor.kind.in_(DISPLACEMENT_KINDS), Sensor.retired.is_(False))
    query = query.where(Sensor.code.in_(named)) if named else \
        query.where(Sensor.hazard_id == zone.id)
    return s.scalars(query.order_by(Sensor.code)).all()


def _gauge_event(s: Session, gauge: Sensor, now: datetime, dry_gap_h: float,
                 min_duration_h: float) -> tuple[dict[str, Any], rules.GaugeEvent]:
    """One gauge's current event as the chart shows it and as the rule reads it."""
    rows = telemetry_series.readings_between(s, gauge, now - telemetry_series.EVENT_LOOKBACK, now)
    event = current_event(rows, now=now, interval_s=gauge.interval_s, dry_gap_h=dry_gap_h)
    item: dict[str, Any] = {"code": gauge.code, "name": gauge.name or gauge.code,
                            "status": gauge.status, "event": None}
    if event is None:
        # Dry only when observed dry lately; a silent gauge is unknown, never 0 mm (DESIGN §6).
        seen = telemetry_series.seen_dry(rows, now, dry_gap_h)
        item["state"] = "dry" if seen else "unknown"
        return item, rules.GaugeEvent(gauge.code, None, 0.0 if seen else None)
    duration = max((now - event.start) / timedelta(hours=1), min_duration_h)
    item["state"] = "event"
    item["event"] = {"start": event.start.isoformat(), "end": event.end.isoformat(),
                     "mm": round(event.mm, 3), "duration_h": round(duration, 4),
                     "intensity_mm_h": round(event.mm / duration, 4),
                     "rain_duration_h": round(event.duration_h, 3),
                     "dry_h": round(event.dry_h, 3)}
    return item, rules.GaugeEvent(gauge.code, event.start, event.mm)


def _thin(points: list[tuple[datetime, float]], most: int) -> list[tuple[datetime, float]]:
    """Every n-th point, ending on the newest (the plot needs its shape, not every point)."""
    if len(points) <= most:
        return points
    stride = math.ceil(len(points) / most)
    return points[::-1][::stride][::-1]


def _slope_sensor(s: Session, sensor: Sensor, now: datetime,
                  window_h: float) -> tuple[dict[str, Any], rules.SensorVelocity]:
    """One displacement sensor's smoothed 1/v, forecast and velocity over the rules' window."""
    rows = s.execute(select(Reading.ts, Reading.value).where(
        Reading.sensor_id == sensor.id, Reading.ts > now - telemetry_series.DISPLACEMENT_LOOKBACK,
        Reading.ts <= now, Reading.flag.in_(USABLE_FLAGS)).order_by(Reading.ts)).all()
    series = [(ts, value) for ts, value in rows]
    inverse = smoothed_inverse_velocity(series, SMOOTH_INTERVALS)
    forecast = inverse_velocity_forecast(series, smooth=SMOOTH_INTERVALS)
    velocity = rules.velocity_mm_d(series, now=now, window_h=window_h)
    item: dict[str, Any] = {
        "code": sensor.code, "name": sensor.name or sensor.code, "kind": sensor.kind,
        "unit": sensor.unit, "status": sensor.status,
        "readings": len(series), "first": series[0][0].isoformat() if series else None,
        "velocity_mm_d": None if velocity is None else round(velocity, 4),
        "inverse": [[t.isoformat(), round(y, 6)] for t, y in _thin(inverse, MAX_PLOT_POINTS)],
        "forecast": None}
    if forecast is not None:
        fitted = inverse[-forecast.points:]
        item["forecast"] = {"failure_time": forecast.failure_time.isoformat(),
                            "slope": forecast.slope, "r2": round(forecast.r2, 4),
                            "points": forecast.points, "fit_from": fitted[0][0].isoformat(),
                            "fit_to": fitted[-1][0].isoformat()}
    return item, rules.SensorVelocity(sensor.code, velocity)


def _alerts(s: Session, code: str) -> list[dict[str, Any]]:
    query = select(Alert).where(Alert.kind.in_([str(k) for k in KINDS]),
                                Alert.subject_code == code,
                                Alert.state.in_([str(st) for st in ACTIVE_STATES]))
    return [service.describe(s, a, with_history=False)
            for a in s.scalars(query.order_by(Alert.raised_at.desc(), Alert.id.desc()))]


def zone_charts(s: Session, zone: HazardZone, now: datetime, settings) -> dict[str, Any]:
    """What the hazard page draws: curves, events, slope sensors, levels and active alerts."""
    row = s.scalar(select(HazardThreshold).where(HazardThreshold.hazard_id == zone.id))
    table = row.table if row is not None else {}
    rain_table, slope_table = hazard_tables(table)
    gauges, events = [], []
    for gauge in _gauges(s, zone, table, settings.alerts.gauge_radius_m):
        item, event = _gauge_event(s, gauge, now, settings.telemetry.event_dry_gap_h,
                                   rain_table.min_duration_h)
        gauges.append(item)
        events.append(event)
    rain = rules.landslide_rain(rain_table, events, now=now)
    sensors, velocities = [], []
    for sensor in _slope_sensors(s, zone, table):
        item, velocity = _slope_sensor(s, sensor, now, settings.alerts.velocity_window_h)
        sensors.append(item)
        velocities.append(velocity)
    slope = rules.slope_movement(slope_table, velocities)
    return {
        "zone": {"code": zone.code, "name": zone.name_zh or zone.code, "kind": zone.kind,
                 "people": zone.people, "households": zone.households,
                 "warning_level": zone.warning_level},
        "as_of": now.isoformat(),
        # Without a table the rules judge nothing here: the page shows the default curves and
        # says that no alert is raised for this zone (alerts.evaluate judges tabled zones only).
        "table": "configured" if row is not None else "none",
        "rain": {
            "prepare": _curve(rain_table.prepare.alpha, rain_table.prepare.beta, GUZZETTI_2008),
            "evacuate": _curve(rain_table.evacuate.alpha, rain_table.evacuate.beta,
                               CAINE_1980),
            "min_duration_h": rain_table.min_duration_h, "level": rain.level,
            "rule": rain.rule, "unknown": list(rain.incomplete), "gauges": gauges},
        "slope": {
            "velocity_mm_d": {level: getattr(slope_table, level)
                              for level in LEVELS[AlertKind.SLOPE_MOVEMENT]},
            "agree": slope_table.agree, "window_h": settings.alerts.velocity_window_h,
            "level": slope.level, "rule": slope.rule, "sensors": sensors},
        "alerts": _alerts(s, zone.code),
    }


@bp.get("/api/v1/hazards/<code>/charts")
@auth.roles(*PERSON_ROLES)
def hazard_charts(code: str):
    """The zone's rain event against its I-D curves, its slope sensors' 1/v with forecasts, its
    levels by the rules now and its active alerts."""
    s = db.session
    return jsonify(zone_charts(s, _zone(s, code), utcnow(), current_app.config["SETTINGS"]))


@bp.get("/hazards/<code>")
@auth.signed_in
def hazard_page(code: str):
    """One hazard zone: the I-D chart, the inverse-velocity plots and the active alerts."""
    s = db.session
    zone = _zone(s, code)
    levels = {f"{kind}:{level}": {"label": str(LEVEL_LABELS[(kind, level)]),
                                  "colour": COLOURS[level]}
              for kind in KINDS for level in LEVELS[kind]}
    return render_template(
        "hazard.html", zone=zone, kind_label=MAP_LABELS.get(zone.kind, zone.kind),
        warning_label=WARNING_LABELS.get(zone.warning_level, zone.warning_level),
        levels=levels, colours={k: COLOURS[k] for k in ("prepare", "evacuate", "attention",
                                                         "warning", "alarm", "none")},
        axes={"duration_h": DURATION_AXIS_H, "intensity_mm_h": INTENSITY_AXIS_MM_H})


NUMBER = {"type": ["number", "null"]}
TEXT = {"type": "string"}
ENDPOINTS = {
    "hazard_pages.hazard_charts": {"ok": ok(schema=obj({
        "zone": obj({"code": TEXT, "name": TEXT, "kind": TEXT, "people": {"type": "integer"},
                     "warning_level": TEXT}, "code", "name"),
        "as_of": {"type": "string", "format": "date-time"},
        "table": {"enum": ["configured", "none"]},
        "rain": obj({"prepare": obj({"alpha": NUMBER, "beta": NUMBER}),
                     "evacuate": obj({"alpha": NUMBER, "beta": NUMBER}),
                     "min_duration_h": NUMBER, "level": {"type": ["string", "null"]},
                     "gauges": {"type": "array", "items": obj({
                         "code": TEXT, "state": {"enum": ["event", "dry", "unknown"]},
                         "event": {"type": ["object", "null"]}}, "code", "state")}}),
        "slope": obj({"velocity_mm_d": {"type": "object"}, "agree": {"type": "integer"},
                      "level": {"type": ["string", "null"]},
                      "sensors": {"type": "array", "items": obj({
                          "code": TEXT, "velocity_mm_d": NUMBER,
                          "inverse": {"type": "array", "items": {"type": "array"}},
                          "forecast": {"type": ["object", "null"]}}, "code", "inverse")}}),
        "alerts": {"type": "array", "items": {"type": "object"}},
    }, "zone", "as_of", "table", "rain", "slope", "alerts"))},
}


def init_app(app: Flask) -> None:
    """Register the hazard page, its JSON and its OpenAPI declaration."""
    app.register_blueprint(bp)
    openapi.register(app, ENDPOINTS)
