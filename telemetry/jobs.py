"""Telemetry's periodic jobs (scheduled in dispatch.jobs): hourly roll-ups, pruning raw
readings and resolved dead letters, and marking silent sensors and gateways missing.

The jobs (`roll_up_hours`, `prune_raw_readings`, `prune_dead_letters`, `mark_silent`) run in
the app context and commit in short transactions. The work itself is in functions that take a
session and the time, do their work in the caller's transaction and return what changed, so
tests call them directly.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from dispatch.core.db import db, utcnow
from dispatch.core.models import Gateway
from telemetry.ingest import _dialect
from telemetry.live import gateway_status_event, send_status, sensor_status_event
from telemetry.models import DeadLetter, Reading, ReadingHour, ReadingHourDirty, Sensor
from telemetry.qc import is_silent
from telemetry.rain import hour_totals
from telemetry.sensor_memory import MARK_AGAIN_S, qc_params, state_of

HOUR = timedelta(hours=1)
KEEP_MARK_S = 2 * MARK_AGAIN_S


def _spans(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours merged into (first, last) runs with at most one hour between them."""
    spans: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if spans and hour - spans[-1][1] <= 2 * HOUR:
            spans[-1] = (spans[-1][0], hour)
        else:
            spans.append((hour, hour))
    return spans


# Hours rolled up per transaction. The roll-up holds the database's write lock (SQLite has one)
# from its first write to its commit, while ingest waits: measured, 5,000 hours in one
# transaction, from a niced process on a busy machine, stalled ingest for ~0.8 s.
ROLL_UP_CHUNK = 500

MarkKey = tuple[datetime, int, datetime]


def roll_up(session: Session, *, now: datetime, limit: int = ROLL_UP_CHUNK,
            after: MarkKey | None = None) -> tuple[int, int, MarkKey | None]:
    """Recompute the hourly roll-ups of up to `limit` hours marked dirty, oldest mark first
    (after the mark `after`, a (marked_at, sensor id, hour) key); returns how many were rolled
    up, how many of their marks were removed, and the key of the last one (to go on from).

    An hour marked again while this runs keeps its mark (only marks no newer than the ones read
    are removed), so it is rolled up again next time."""
    key = (ReadingHourDirty.marked_at, ReadingHourDirty.sensor_id, ReadingHourDirty.hour)
    query = select(ReadingHourDirty.sensor_id, ReadingHourDirty.hour,
                   ReadingHourDirty.marked_at).order_by(*key).limit(limit)
    if after is not None:
        at, sid, hour = after
        query = query.where(or_(key[0] > at, and_(key[0] == at, or_(
            key[1] > sid, and_(key[1] == sid, key[2] > hour)))))
    marks = session.execute(query).all()
    if not marks:
        return 0, 0, None
    by_sensor: dict[int, list[datetime]] = defaultdict(list)
    for sensor_id, hour, _at in marks:
        by_sensor[sensor_id].append(hour)
    intervals = dict(session.execute(select(Sensor.id, Sensor.interval_s).where(
        Sensor.id.in_(by_sensor))).all())
    upserts, empties = [], []
    for sensor_id, hours in by_sensor.items():
        interval = timedelta(seconds=intervals[sensor_id])
        for first, last in _spans(hours):
            rows = session.execute(select(Reading.ts, Reading.value, Reading.flag).where(
                Reading.sensor_id == sensor_id, Reading.ts > first - interval,
                Reading.ts <= last + HOUR).order_by(Reading.ts)).all()
            span_hours = [h for h in hours if first <= h <= last]
            totals = hour_totals([tuple(r) for r in rows], span_hours,
                                 interval_s=interval.total_seconds())
            for hour, total in totals.items():
                if total is None:
                    empties.append((sensor_id, hour))
                else:
                    upserts.append({"sensor_id": sensor_id, "hour": hour, **vars(total)})
    if upserts:
        statement = _dialect(session).insert(ReadingHour)
        columns = ("count", "usable", "total", "minimum", "maximum", "last", "covered_s")
        session.execute(statement.on_conflict_do_update(
            index_elements=["sensor_id", "hour"],
            set_={c: getattr(statement.excluded, c) for c in columns}), upserts)
    for start in range(0, len(empties), 200):  # SQLite parses a long OR chain as deep as long
        session.execute(delete(ReadingHour).where(or_(*(
            and_(ReadingHour.sensor_id == sid, ReadingHour.hour == hour)
            for sid, hour in empties[start:start + 200]))))
    # A mark younger than KEEP_MARK_S stays (its hour is rolled up again next time): ingest
    # skips re-marking an hour it marked under MARK_AGAIN_S ago (telemetry.sensor_memory),
    # trusting the mark to be there.
    settled = [(sid, hour, at) for sid, hour, at in marks
               if at < now - timedelta(seconds=KEEP_MARK_S)]
    for start in range(0, len(settled), 200):
        session.execute(delete(ReadingHourDirty).where(or_(*(
            and_(ReadingHourDirty.sensor_id == sid, ReadingHourDirty.hour == hour,
                 ReadingHourDirty.marked_at <= at)
            for sid, hour, at in settled[start:start + 200]))))
    last_sid, last_hour, last_at = marks[-1]
    return len(marks), len(settled), (last_at, last_sid, last_hour)


def prune_raw(session: Session, *, now: datetime, retention_days: int,
              limit: int = 20000) -> int:
    """Delete raw readings older than the retention whose hours are rolled up; returns how
    many. Per sensor, so each delete is a range of the (sensor, ts) index, never a scan."""
    cutoff = now - timedelta(days=retention_days)
    # Keep hours still waiting for their roll-up.
    waiting = session.scalar(select(ReadingHourDirty.hour).where(
        ReadingHourDirty.hour < cutoff).order_by(ReadingHourDirty.hour).limit(1))
    if waiting is not None:
        cutoff = waiting
    removed = 0
    for sensor_id in session.scalars(select(Sensor.id).order_by(Sensor.id)):
        ids = session.scalars(select(Reading.id).where(
            Reading.sensor_id == sensor_id, Reading.ts <= cutoff).limit(limit - removed)).all()
        if ids:
            session.execute(delete(Reading).where(Reading.id.in_(ids)))
            removed += len(ids)
        if removed >= limit:
            break
    return removed


def prune_resolved_letters(session: Session, *, now: datetime, retention_days: int,
                           limit: int = 1000) -> int:
    """Delete up to `limit` dead letters resolved (reprocessed, settled, dismissed) more than
    the retention ago; returns how many. Unresolved letters stay whatever their age. Few rows a
    call: each may hold a payload of up to the ingest limit."""
    ids = session.scalars(select(DeadLetter.id).where(
        DeadLetter.resolved_at < now - timedelta(days=retention_days))
        .order_by(DeadLetter.id).limit(limit)).all()
    if ids:
        session.execute(delete(DeadLetter).where(DeadLetter.id.in_(ids)))
    return len(ids)


def silence(session: Session, *, now: datetime, gateway_silence_s: int) -> list[dict]:
    """QARTOD timing/gap test over every active sensor, and the same for gateways: those silent
    too long become missing / offline. Returns the `sensor_status` events to send."""
    events = []
    sensors = session.execute(select(
        Sensor.id, Sensor.code, Sensor.kind, Sensor.qc, Sensor.interval_s, Sensor.last_ts,
        Sensor.created_at, Sensor.status).where(Sensor.retired.is_(False),
                                                Sensor.status != "missing")).all()
    # Sensor ids by the status they were read with: one UPDATE per status, each only where the
    # status is still that one (ingest may have changed it meanwhile), instead of a statement
    # per sensor while holding the write lock: after a hub restart every sensor may be silent.
    silent_by_status: dict[str, list[int]] = defaultdict(list)
    for sid, code, kind, qc, interval_s, last_ts, created_at, status in sensors:
        params = qc_params(kind, qc, interval_s)
        if not is_silent(last_ts or created_at, now, params):
            continue
        silent_by_status[status].append(sid)
        events.append(sensor_status_event(code, status="missing", flag="missing",
                                          since=last_ts or created_at))
    for status, ids in silent_by_status.items():
        for start in range(0, len(ids), 900):
            session.execute(update(Sensor).where(
                Sensor.id.in_(ids[start:start + 900]), Sensor.status == status)
                .values(status="missing", status_at=now))
    silent = session.execute(select(Gateway.id, Gateway.code, Gateway.last_seen_at).where(
        Gateway.online.is_(True),
        Gateway.last_seen_at < now - timedelta(seconds=gateway_silence_s))).all()
    for gid, code, seen in silent:
        session.execute(update(Gateway).where(Gateway.id == gid).values(
            online=False, offline_reason="silent"))
        events.append(gateway_status_event(code, online=False, reason="silent", since=seen))
    return events


# --- the jobs ------------------------------------------------------------------------------

def roll_up_hours() -> None:
    """Hourly roll-ups of the hours whose readings changed (`roll_up`), every mark once per
    run, in short transactions (ingest waits while one holds the write lock)."""
    after, chunk = None, ROLL_UP_CHUNK
    while True:
        with db.transaction() as s:
            done, _settled, after = roll_up(s, now=utcnow(), limit=chunk, after=after)
        if done < chunk:
            return


def prune_raw_readings() -> None:
    """Raw readings past telemetry.raw_retention_days go; hourly roll-ups stay for ever."""
    settings = current_app.config["SETTINGS"]
    roll_up_hours()
    while True:
        with db.transaction() as s:
            removed = prune_raw(s, now=utcnow(),
                                retention_days=settings.telemetry.raw_retention_days)
        if removed < 20000:
            return


def prune_dead_letters() -> None:
    """Resolved dead letters past ingest.dead_letter_retention_days go, in short transactions."""
    settings = current_app.config["SETTINGS"]
    while True:
        with db.transaction() as s:
            removed = prune_resolved_letters(
                s, now=utcnow(), retention_days=settings.ingest.dead_letter_retention_days)
        if removed < 1000:
            return


def mark_silent() -> None:
    """Sensors and gateways silent too long become missing / offline (`sensor_status`)."""
    settings = current_app.config["SETTINGS"]
    with db.transaction() as s:
        events = silence(s, now=utcnow(), gateway_silence_s=settings.telemetry.gateway_silence_s)
    state_of(current_app).forget_sensor_rows(e["sensor"] for e in events if "sensor" in e)
    send_status(events)
