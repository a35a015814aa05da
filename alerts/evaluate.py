"""Feeding the rules: which subjects a sensor's readings can change, their inputs from telemetry's
memory, and the evaluator thread of the process that owns MQTT (DESIGN §5, §6).

- **When**: right after every committed batch of readings (`readings_stored`, sent in the
  process that learned of the commit: the MQTT owner after its writer's batch, or an HTTP ingest
  in the same process), for the subjects of those sensors only; and a sweep of every subject
  every 15 s (the `sweep_warnings` job in dispatch/jobs.py: time passing clears alerts, slides
  windows off the rain, and finds readings stored by other processes). A replayed or late old
  reading cannot raise anything: the rules always judge the windows ending *now*.
- **Inputs, no rescans**: rain windows come from telemetry's incremental memory
  (TelemetryState.rain_sums, which the bridge keeps current with `follow`); the antecedent index
  is read from the hourly roll-ups once per gauge and day; a gauge's current rain event and a
  displacement sensor's recent series are read again only when the sensor's revision moved.
- **Subjects**: every rain gauge (rainstorm), every village with a threshold table (flash flood
  and data), every hazard zone with a threshold table (landslide rain and slope movement). A
  table without gauges uses the gauges inside its village or zone, else the nearest rain gauge
  within `alerts.gauge_radius_m`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask
from geoalchemy2.shape import to_shape
from pyproj import Geod
from shapely.strtree import STRtree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts import rules, service
from alerts.choices import AlertKind
from alerts.models import Alert, HazardThreshold, VillageThreshold
from dispatch.core.db import db, utcnow
from maps.models import HazardZone, Village
from telemetry import series as telemetry_series
from telemetry.choices import DISPLACEMENT_KINDS, SensorKind
from telemetry.models import Reading, Sensor
from telemetry.rain import USABLE_FLAGS, current_event
from telemetry.sensor_memory import state_of
from telemetry.slope import inverse_velocity_forecast

log = logging.getLogger(__name__)

# Subjects judged per slice of a sweep (readings' work goes between slices).
SWEEP_CHUNK = 100
_GEOD = Geod(ellps="WGS84")
# Rainstorm windows (CMA): 3, 6 and 12 h.
RAINSTORM_WINDOWS_H = (3.0, 6.0, 12.0)
# How long the evaluator keeps the list of subjects with an active alert (what quiet readings
# are judged for): measured, reading it on every pass took 13 % of the evaluator's CPU under
# 1,000 dry readings/s. Its own raises and closes drop it at once; an alert closed by a person
# elsewhere is seen within this time (until then its quiet readings are judged for nothing).
ALERTED_KEPT_S = 1.0
# How far back a slope's failure forecast looks.
FORECAST_LOOKBACK = timedelta(days=3)


@dataclass
class VillageSubject:
    subject: service.Subject
    table: rules.VillageTable
    gauges: list[int]


@dataclass
class HazardSubject:
    landslide: service.Subject
    slope: service.Subject
    table: rules.HazardRainTable
    slope_table: rules.SlopeTable
    gauges: list[int]
    sensors: list[int]


@dataclass
class SubjectIndex:
    """Every subject the rules judge, and which subjects each sensor's readings can change."""

    fingerprint: tuple
    gauges: dict[int, service.Subject] = field(default_factory=dict)
    villages: dict[str, VillageSubject] = field(default_factory=dict)
    hazards: dict[str, HazardSubject] = field(default_factory=dict)
    by_sensor: dict[int, set[tuple[str, str]]] = field(default_factory=dict)

    def link(self, sensor_id: int, group: str, code: str) -> None:
        self.by_sensor.setdefault(sensor_id, set()).add((group, code))


def _fingerprint(session: Session) -> tuple:
    """Changes whenever a threshold table, a sensor registration or a village changes."""
    return (
        tuple(session.execute(select(func.count(), func.max(VillageThreshold.updated_at))).one()),
        tuple(session.execute(select(func.count(), func.max(HazardThreshold.updated_at))).one()),
        tuple(session.execute(select(func.count(), func.max(Sensor.id))).one()),
        session.scalar(select(func.count()).select_from(Sensor).where(Sensor.retired)),
        session.scalar(select(func.max(Village.updated_at))),
        session.scalar(select(func.max(HazardZone.updated_at))),
    )


def _village_table(doc: dict) -> rules.VillageTable:
    return rules.VillageTable(
        windows_h=tuple(float(w) for w in doc["windows_h"]),
        prepare={k: tuple(v) for k, v in doc["prepare"].items()},
        evacuate={k: tuple(v) for k, v in doc["evacuate"].items()},
        dry_below=float(doc.get("antecedent_mm", {}).get("dry_below", 15.0)),
        wet_above=float(doc.get("antecedent_mm", {}).get("wet_above", 50.0)))


def hazard_tables(doc: dict) -> tuple[rules.HazardRainTable, rules.SlopeTable]:
    prepare, evacuate = doc.get("prepare", {}), doc.get("evacuate", {})
    velocity = doc.get("velocity_mm_d") or {}
    return (rules.HazardRainTable(
        prepare=rules.Curve(float(prepare.get("alpha", 2.20)), float(prepare.get("beta", 0.44))),
        evacuate=rules.Curve(float(evacuate.get("alpha", 14.82)),
                             float(evacuate.get("beta", 0.39))),
        min_duration_h=float(doc.get("min_duration_h", 1.0))),
        rules.SlopeTable(velocity.get("attention"), velocity.get("warning"),
                         velocity.get("alarm"), int(doc.get("agree", 1))))


class GaugePicker:
    """Rain gauges' points for "inside this area, else the nearest within the radius"."""

    def __init__(self, rows: list[tuple[int, str, object]], radius_m: float):
        self.ids = [r[0] for r in rows]
        self.by_code = {r[1]: r[0] for r in rows}
        self.points = [r[2] for r in rows]
        self.tree = STRtree(self.points) if self.points else None
        self.radius_m = radius_m

    def pick(self, codes: Iterable[str], area) -> list[int]:
        named = [self.by_code[c] for c in codes if c in self.by_code]
        if named or self.tree is None:
            return named
        inside = [self.ids[i] for i in self.tree.query(area, predicate="contains")]
        if inside:
            return sorted(inside)
        centre = area.representative_point()
        best, best_m = None, self.radius_m
        # ~0.1° per 10 km at these latitudes: candidates from a generous box, then geodesic.
        degrees = self.radius_m / 80000
        for i in self.tree.query(area.buffer(degrees)):
            point = self.points[i]
            _, _, metres = _GEOD.inv(centre.x, centre.y, point.x, point.y)
            edge = 0.0 if area.contains(point) else metres
            if edge <= best_m:
                best, best_m = self.ids[i], edge
        return [best] if best is not None else []


def build_index(session: Session, radius_m: float) -> SubjectIndex:
    """Read every subject and its sensors (rebuilt when the fingerprint changes)."""
    index = SubjectIndex(_fingerprint(session))
    sensors = session.execute(select(Sensor.id, Sensor.code, Sensor.name, Sensor.kind,
                                     Sensor.location, Sensor.village_id, Sensor.hazard_id)
                              .where(Sensor.retired.is_(False))).all()
    village_codes = dict(session.execute(select(Village.id, Village.code)).all())
    rain = [(s.id, s.code, to_shape(s.location)) for s in sensors
            if s.kind == SensorKind.RAIN_GAUGE]
    gauges = GaugePicker(rain, radius_m)
    for s in sensors:
        if s.kind == SensorKind.RAIN_GAUGE:
            village = village_codes.get(s.village_id)
            index.gauges[s.id] = service.Subject(
                AlertKind.RAINSTORM, s.code, s.name or s.code, "gauge",
                (village,) if village else ())
            index.link(s.id, "gauge", s.code)
    for threshold, village in session.execute(select(VillageThreshold, Village).join(
            Village, Village.id == VillageThreshold.village_id)):
        subject = service.Subject(AlertKind.FLASH_FLOOD, village.code, village.name_zh,
                                  "village", (village.code,), village.population)
        ids = gauges.pick(threshold.table.get("gauges") or (), to_shape(village.boundary))
        index.villages[village.code] = VillageSubject(subject, _village_table(threshold.table),
                                                      ids)
        for sid in ids:
            index.link(sid, "village", village.code)
    slope_sensors = [(s.id, s.code, s.hazard_id) for s in sensors
                     if s.kind in DISPLACEMENT_KINDS]
    for threshold, zone in session.execute(select(HazardThreshold, HazardZone).join(
            HazardZone, HazardZone.id == HazardThreshold.hazard_id)):
        _add_hazard(session, index, gauges, slope_sensors, village_codes, threshold, zone)
    return index


def _add_hazard(session, index, gauges, slope_sensors, village_codes, threshold, zone) -> None:
    area = to_shape(zone.geometry)
    villages = {village_codes[zone.village_id]} if zone.village_id in village_codes else set()
    villages |= set(session.scalars(select(Village.code).where(
        func.ST_Intersects(Village.boundary, zone.geometry))))
    villages_t = tuple(sorted(villages))
    name = zone.name_zh or zone.code
    rain_table, slope_table = hazard_tables(threshold.table)
    named = set(threshold.table.get("sensors") or ())
    sensor_ids = [sid for sid, code, hazard_id in slope_sensors
                  if (code in named if named else hazard_id == zone.id)]
    subject = HazardSubject(
        service.Subject(AlertKind.LANDSLIDE_RAIN, zone.code, name, "hazard", villages_t,
                        zone.people),
        service.Subject(AlertKind.SLOPE_MOVEMENT, zone.code, name, "hazard", villages_t,
                        zone.people),
        rain_table, slope_table, gauges.pick(threshold.table.get("gauges") or (), area),
        sensor_ids)
    index.hazards[zone.code] = subject
    for sid in subject.gauges + subject.sensors:
        index.link(sid, "hazard", zone.code)


class Inputs:
    """The rules' inputs for one evaluation, read through caches that follow revisions."""

    def __init__(self, app: Flask, caches: dict):
        # The pass's active alerts by "kind:subject" (read once: alerts.service.apply_decision).
        self.actives: dict[str, object] = {}
        self.held: dict[str, object] = {}
        self.app = app
        self.settings = app.config["SETTINGS"]
        self.state = state_of(app)
        self.caches = caches
        self.sensors: dict[int, Sensor] = {}

    def load(self, session: Session, ids: Iterable[int]) -> None:
        wanted = set(ids) - set(self.sensors)
        if wanted:
            for sensor in session.scalars(select(Sensor).where(Sensor.id.in_(wanted))):
                self.sensors[sensor.id] = sensor

    def _last(self, sensor: Sensor) -> tuple[datetime, float] | None:
        if sensor.last_ts is None or sensor.last_flag not in USABLE_FLAGS:
            return None
        return (sensor.last_ts, sensor.last_value)

    def rain(self, session: Session, sid: int, hours: Iterable[float],
             now: datetime) -> rules.GaugeRain | None:
        sensor = self.sensors.get(sid)
        if sensor is None:
            return None
        hours = sorted(set(hours))
        sums = self.state.rain_sums(session, sensor, now, [round(h * 3600) for h in hours])
        windows = {h: sums[round(h * 3600)] for h in hours}
        return rules.GaugeRain(sensor.code, windows, self._antecedent(session, sensor, now),
                               self._last(sensor))

    def prime_antecedents(self, session: Session, now: datetime) -> None:
        """Read P_a of every loaded rain gauge that has none for today, in one query: a storm's
        first readings (and the first pass after midnight) need them all at once, and one
        query per gauge there held the ingest back (bench/alerts.py's slow first second)."""
        day = now.date()
        cache = self.caches.setdefault("antecedent", {})
        missing = [sid for sid, sensor in self.sensors.items()
                   if sensor.kind == SensorKind.RAIN_GAUGE
                   and (sid not in cache or cache[sid][0] != day)]
        if not missing:
            return
        found = telemetry_series.antecedents(
            session, missing, now, self.settings.telemetry.antecedent_days,
            self.settings.telemetry.antecedent_k)
        for sid, (index, complete) in found.items():
            cache[sid] = (day, index if complete > 0 else None)

    def _antecedent(self, session: Session, sensor: Sensor, now: datetime) -> float | None:
        day = now.date()
        cache = self.caches.setdefault("antecedent", {})
        hit = cache.get(sensor.id)
        if hit is None or hit[0] != day:
            index, complete = telemetry_series.antecedent(
                session, sensor, now, self.settings.telemetry.antecedent_days,
                self.settings.telemetry.antecedent_k)
            hit = cache[sensor.id] = (day, index if complete > 0 else None)
        return hit[1]

    def event(self, session: Session, sid: int, now: datetime) -> rules.GaugeEvent | None:
        sensor = self.sensors.get(sid)
        if sensor is None:
            return None
        cache = self.caches.setdefault("event", {})
        hit = cache.get(sid)
        if hit is None or hit[0] != sensor.revision:
            since = now - telemetry_series.EVENT_LOOKBACK
            rows = telemetry_series.readings_between(session, sensor, since, now)
            gap = self.settings.telemetry.event_dry_gap_h
            found = current_event(rows, now=now, interval_s=sensor.interval_s, dry_gap_h=gap)
            seen = telemetry_series.seen_dry(rows, now, gap)
            hit = cache[sid] = (sensor.revision, found, seen)
        _, found, seen = hit
        if found is not None:
            return rules.GaugeEvent(sensor.code, found.start, found.mm, self._last(sensor))
        return rules.GaugeEvent(sensor.code, None, 0.0 if seen else None, self._last(sensor))

    def displacement(self, session: Session, sid: int, now: datetime,
                     lookback: timedelta) -> list[tuple[datetime, float]]:
        sensor = self.sensors.get(sid)
        if sensor is None:
            return []
        cache = self.caches.setdefault("displacement", {})
        hit = cache.get((sid, lookback))
        if hit is None or hit[0] != sensor.revision:
            rows = session.execute(select(Reading.ts, Reading.value).where(
                Reading.sensor_id == sid, Reading.ts > now - lookback, Reading.ts <= now,
                Reading.flag.in_(USABLE_FLAGS)).order_by(Reading.ts)).all()
            hit = cache[(sid, lookback)] = (sensor.revision, [tuple(r) for r in rows])
        return hit[1]

    def velocity(self, session: Session, sid: int, now: datetime) -> rules.SensorVelocity | None:
        sensor = self.sensors.get(sid)
        if sensor is None:
            return None
        window_h = self.settings.alerts.velocity_window_h
        # One reading before the window is needed for its start: look a little further back.
        series = self.displacement(session, sid, now, timedelta(hours=window_h * 1.5))
        value = rules.velocity_mm_d(series, now=now, window_h=window_h)
        return rules.SensorVelocity(sensor.code, value, self._last(sensor))


def _evaluate_gauge(session, inputs: Inputs, sid: int, subject, now, minimum) -> service.Changes:
    rain = inputs.rain(session, sid, RAINSTORM_WINDOWS_H, now)
    if rain is None:
        return service.Changes()
    decision = rules.rainstorm(rain, min_completeness=minimum)
    return _apply(session, inputs, subject, decision if decision.level else None, now)


def _apply(session, inputs: Inputs, subject: service.Subject, decision, now) -> service.Changes:
    return service.apply_decision(session, subject, decision, now,
                                  current=inputs.actives.get(subject.key),
                                  held_by=inputs.held.get(subject.key))


def _evaluate_village(session, inputs: Inputs, item: VillageSubject, now,
                      minimum) -> service.Changes:
    rains = [r for r in (inputs.rain(session, sid, item.table.windows_h, now)
                         for sid in item.gauges) if r is not None]
    decision = rules.flash_flood(item.table, rains, min_completeness=minimum)
    changes = _apply(session, inputs, item.subject, decision if decision.level else None, now)
    data = service.Subject(AlertKind.DATA, item.subject.code, item.subject.name, "village",
                           item.subject.villages, item.subject.people)
    missing = None
    if decision.incomplete:
        missing = rules.Decision("missing", {
            "source": "data completeness", "windows": list(decision.incomplete),
            "min_completeness": minimum, "gauges": [r.gauge for r in rains]})
    changes.extend(_apply(session, inputs, data, missing, now))
    return changes


def _evaluate_hazard(session, inputs: Inputs, item: HazardSubject, now) -> service.Changes:
    events = [e for e in (inputs.event(session, sid, now) for sid in item.gauges)
              if e is not None]
    rain = rules.landslide_rain(item.table, events, now=now)
    changes = _apply(session, inputs, item.landslide, rain if rain.level else None, now)
    velocities = [v for v in (inputs.velocity(session, sid, now) for sid in item.sensors)
                  if v is not None]
    slope = rules.slope_movement(item.slope_table, velocities)
    if slope.level is not None:
        slope = rules.slope_movement(item.slope_table, velocities,
                                     forecast=_forecast(session, inputs, item, now))
    changes.extend(_apply(session, inputs, item.slope, slope if slope.level else None, now))
    return changes


def _forecast(session, inputs: Inputs, item: HazardSubject, now):
    """Fukuzono's forecast from the fastest sensor of the zone (None when 1/v is not falling)."""
    best = None
    for sid in item.sensors:
        series = inputs.displacement(session, sid, now, FORECAST_LOOKBACK)
        forecast = inverse_velocity_forecast(series) if len(series) >= 5 else None
        if forecast is not None and (best is None or forecast.failure_time < best.failure_time):
            best = forecast
    return best


def evaluate(session: Session, app: Flask, index: SubjectIndex, caches: dict,
             keys: set[tuple[str, str]] | None, now: datetime) -> service.Changes:
    """Judge these subjects (None: every one) at now, in the caller's transaction."""
    minimum = app.config["SETTINGS"].alerts.min_completeness
    inputs = Inputs(app, caches)
    gauges = [sid for sid, s in index.gauges.items()
              if keys is None or ("gauge", s.code) in keys]
    villages = [v for code, v in index.villages.items()
                if keys is None or ("village", code) in keys]
    hazards = [h for code, h in index.hazards.items()
               if keys is None or ("hazard", code) in keys]
    inputs.load(session, [*gauges, *(g for v in villages for g in v.gauges),
                          *(s for h in hazards for s in h.gauges + h.sensors)])
    inputs.prime_antecedents(session, now)
    # The active alerts (and those holding off a new one) of the subjects judged only: under
    # load most passes judge a few subjects while hundreds of alerts are active elsewhere.
    active = Alert.active_key.is_not(None)
    holding = Alert.holds_off.is_(True)
    if keys is not None:
        codes = {code for _group, code in keys}
        active = active & Alert.subject_code.in_(codes)
        holding = holding & Alert.subject_code.in_(codes)
    inputs.actives = {a.active_key: a for a in session.scalars(select(Alert).where(active))}
    for held in session.scalars(select(Alert).where(holding).order_by(Alert.id)):
        inputs.held[f"{held.kind}:{held.subject_code}"] = held
    changes = service.Changes()
    for sid in gauges:
        changes.extend(_evaluate_gauge(session, inputs, sid, index.gauges[sid], now, minimum))
    for village in villages:
        changes.extend(_evaluate_village(session, inputs, village, now, minimum))
    for hazard in hazards:
        changes.extend(_evaluate_hazard(session, inputs, hazard, now))
    return changes


class Evaluator:
    """The thread that runs the rules in the process that owns MQTT: readings' sensors come in
    through `submit`, a sweep through `sweep`; work that piles up is merged into one pass.

    A sweep judges every subject, SWEEP_CHUNK at a time, and readings' work goes first between
    chunks: measured (bench/alerts.py, the prefecture under 1,000 readings/s), a whole sweep in
    one pass held a crossing reading's alert back by up to 2 s."""

    def __init__(self, app: Flask, announce: Callable[[service.Changes], None]):
        self.app = app
        self.announce = announce
        self.queue: queue.Queue = queue.Queue()
        self.caches: dict = {}
        self.index: SubjectIndex | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alerts-evaluator", daemon=True)
        # The sweep's subjects still to judge (then its escalations are taken).
        self._sweeping: list[tuple[str, str]] = []
        # The subjects with an active alert, and when they were read (ALERTED_KEPT_S).
        self._alerted_keys: set[tuple[str, str]] = set()
        self._alerted_read = float("-inf")
        self.passes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.queue.put(None)
        self._thread.join(10)

    def submit(self, sensor_ids: Iterable[int], nonzero_ids: Iterable[int] | None = None) -> None:
        """Judge these sensors' subjects: all of them for sensors with a non-zero reading (or
        when that is not known), only those with an active alert for the others (0 mm of rain
        raises nothing; measured, judging every dry gauge of the prefecture under load took the
        MQTT owner's time from receiving)."""
        ids = frozenset(sensor_ids)
        nonzero = ids if nonzero_ids is None else frozenset(nonzero_ids) & ids
        self.queue.put((nonzero, ids - nonzero))

    def sweep(self) -> None:
        self.queue.put("all")

    def _take(self, block: bool) -> tuple[set[int], set[int], bool]:
        """What is queued, merged: readings' sensor ids (with a non-zero reading, and the
        others) and whether a sweep was asked for."""
        nonzero: set[int] = set()
        quiet: set[int] = set()
        everything = False
        try:
            item = self.queue.get(block=block)
        except queue.Empty:
            return nonzero, quiet, everything
        while True:
            if item is None:
                self._stop.set()
                break
            if item == "all":
                everything = True
            else:
                nonzero |= item[0]
                quiet |= item[1]
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
        return nonzero, quiet - nonzero, everything

    def _loop(self) -> None:
        while not self._stop.is_set():
            nonzero, quiet, everything = self._take(block=not self._sweeping)
            if self._stop.is_set():
                return
            try:
                if everything and not self._sweeping:
                    self._sweeping = self._all_keys()
                if nonzero or quiet:
                    self.run(nonzero, quiet=quiet)
                elif self._sweeping:
                    chunk = set(self._sweeping[:SWEEP_CHUNK])
                    del self._sweeping[:SWEEP_CHUNK]
                    self._run_keys(chunk, escalate=not self._sweeping)
            except Exception:
                log.exception("alerts: evaluating the rules failed; the next readings or sweep "
                              "try again")

    def _all_keys(self) -> list[tuple[str, str]]:
        with self.app.app_context():
            try:
                with db.transaction() as s:
                    self._refresh_index(s)
            finally:
                db.remove()
        index = self.index
        return ([("gauge", s.code) for s in index.gauges.values()]
                + [("village", code) for code in index.villages]
                + [("hazard", code) for code in index.hazards])

    def run(self, sensor_ids: set[int], everything: bool = False, *,
            quiet: set[int] = frozenset()) -> service.Changes:
        """One whole pass (the subjects of these sensors, or every subject and the escalations
        due): judge, commit, announce. `quiet` sensors (only 0 readings) count only for subjects
        with an active alert."""
        if everything or self.index is None:
            self._all_keys()
        if everything:
            return self._run_keys(None, escalate=True)
        keys = set().union(*(self.index.by_sensor.get(sid, set()) for sid in sensor_ids))
        if quiet:
            maybe = set().union(*(self.index.by_sensor.get(sid, set()) for sid in quiet))
            keys |= maybe & self._alerted()
        return self._run_keys(keys, escalate=False) if keys else service.Changes()

    def _alerted(self) -> set[tuple[str, str]]:
        """The subjects with an active alert of any kind, as index keys (ALERTED_KEPT_S)."""
        if time.monotonic() - self._alerted_read < ALERTED_KEPT_S:
            return self._alerted_keys
        with self.app.app_context():
            try:
                rows = db.session.execute(select(Alert.subject_type, Alert.subject_code).where(
                    Alert.active_key.is_not(None))).all()
            finally:
                db.remove()
        self._alerted_keys = {(subject_type, code) for subject_type, code in rows}
        self._alerted_read = time.monotonic()
        return self._alerted_keys

    def _run_keys(self, keys: set[tuple[str, str]] | None, *,
                  escalate: bool) -> service.Changes:
        with self.app.app_context():
            try:
                with db.transaction() as s:
                    now = utcnow()
                    changes = evaluate(s, self.app, self.index, self.caches, keys, now)
                    if escalate:
                        changes.extend(service.escalate_due(s, now))
                    service.prepare_announcement(s, changes)
            finally:
                db.remove()
            self.passes += 1
            if changes.alerts:  # raised or closed here: the active subjects are read again
                self._alerted_read = float("-inf")
            if changes:
                self.announce(changes)
            return changes

    def _refresh_index(self, session: Session) -> None:
        radius = self.app.config["SETTINGS"].alerts.gauge_radius_m
        if self.index is None or self.index.fingerprint != _fingerprint(session):
            self.index = build_index(session, radius)
            log.info("alerts: judging %d gauges, %d villages and %d hazard zones",
                     len(self.index.gauges), len(self.index.villages), len(self.index.hazards))
