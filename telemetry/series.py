"""A sensor's readings, hourly roll-ups and rolling sums as the API serves them.

Sums come from the process's telemetry state (the same incremental windows ingest keeps) and,
for what reaches further back than 24 h, from raw rows (the current rain event) and the hourly
roll-ups (the antecedent-rain index over whole days). Days are hydrological days, 08:00 to
08:00 China Standard Time, which is 00:00 to 00:00 UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.core.errors import parameter_error
from telemetry.choices import DISPLACEMENT_KINDS, SensorKind
from telemetry.decode import OutsideYears, parse_timestamp
from telemetry.models import Reading, ReadingHour, Sensor
from telemetry.rain import USABLE_FLAGS, current_event
from telemetry.sensor_memory import TelemetryState
from telemetry.slope import (
    displacement_velocity,
    inverse_velocity_forecast,
    smoothed_inverse_velocity,
)

# The largest id (and whole-number parameter): a signed 64-bit column.
MAX_ID = 2**63 - 1
# The ends of the calendar Python (and both databases) can hold, in UTC.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
# The most rows one readings request returns (the answer says when it was cut).
MAX_ROWS = 20000
# How far back the current rain event and the displacement trend are looked for.
EVENT_LOOKBACK = timedelta(days=7)
DISPLACEMENT_LOOKBACK = timedelta(days=7)


def time_range(args, now: datetime, default: timedelta) -> tuple[datetime, datetime]:
    """`since` and `until` query parameters (RFC 3339 with an offset); defaults: the last
    `default` up to now."""
    bounds = {}
    for name in ("since", "until"):
        text = args.get(name)
        if text is None or text == "":
            continue
        try:
            bounds[name] = parse_timestamp(text.replace(" ", "+"))
        except OutsideYears as exc:
            # A well-formed time past the calendar's ends (year 1 at +08:00): the end itself.
            bounds[name] = LATEST if exc.later else EARLIEST
        except ValueError as exc:
            raise parameter_error(name, _l("must be a time like 2026-07-27T21:00:00+08:00 "
                                           "(%(problem)s)", problem=str(exc))) from None
    until = bounds.get("until", now)
    if "since" in bounds:
        since = bounds["since"]
        if since >= until:
            raise parameter_error("since", _l("must be before until"))
    else:
        # `until` near year 1 leaves less than `default` before it: the range starts at year 1
        # (and is empty at year 1 itself).
        since = until - default if until - EARLIEST > default else EARLIEST
    return since, until


def positive_parameter(args, name: str, default: int | None,
                       most: int | None = None) -> int | None:
    """A whole-number query parameter from 1 (to `most`), or `default` when absent or empty;
    ASCII digits only (str.isdigit() also takes "²", which int() refuses); never past the
    BIGINT columns ids are kept in (2^63 - 1), which no database driver binds."""
    raw = args.get(name, "")
    if raw == "":
        return default
    most = most or MAX_ID
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= most:
        raise parameter_error(name, _l("must be a whole number from 1 to %(max)d", max=most))
    return int(raw)


def readings(session: Session, sensor: Sensor, args, now: datetime) -> dict[str, Any]:
    """Stored readings in (since, until], oldest first, with their QC flags."""
    since, until = time_range(args, now, timedelta(hours=24))
    limit = positive_parameter(args, "limit", MAX_ROWS, MAX_ROWS)
    rows = session.execute(
        select(Reading.ts, Reading.value, Reading.flag, Reading.qc_reasons).where(
            Reading.sensor_id == sensor.id, Reading.ts > since, Reading.ts <= until)
        .order_by(Reading.ts).limit(limit + 1)).all()
    return {"sensor": sensor.code, "kind": sensor.kind, "unit": sensor.unit,
            "since": since.isoformat(), "until": until.isoformat(),
            "truncated": len(rows) > limit,
            "items": [{"ts": ts.isoformat(), "value": value, "flag": flag,
                       "qc": [r for r in reasons.split(",") if r]}
                      for ts, value, flag, reasons in rows[:limit]]}


def hourly(session: Session, sensor: Sensor, args, now: datetime) -> dict[str, Any]:
    """Hourly roll-ups whose hour (h, h + 1 h] starts in [since, until)."""
    since, until = time_range(args, now, timedelta(days=7))
    rows = session.scalars(select(ReadingHour).where(
        ReadingHour.sensor_id == sensor.id, ReadingHour.hour >= since,
        ReadingHour.hour < until).order_by(ReadingHour.hour).limit(MAX_ROWS)).all()
    return {"sensor": sensor.code, "kind": sensor.kind, "unit": sensor.unit,
            "since": since.isoformat(), "until": until.isoformat(),
            "items": [{"hour": r.hour.isoformat(), "count": r.count, "usable": r.usable,
                       "total": r.total, "min": r.minimum, "max": r.maximum, "last": r.last,
                       "complete": round(min(1.0, r.covered_s / 3600), 4)} for r in rows]}


def readings_between(session: Session, sensor: Sensor, since: datetime,
                     now: datetime) -> list[tuple]:
    """A sensor's (ts, value, flag) in (since, now], oldest first."""
    return [tuple(r) for r in session.execute(
        select(Reading.ts, Reading.value, Reading.flag).where(
            Reading.sensor_id == sensor.id, Reading.ts > since, Reading.ts <= now)
        .order_by(Reading.ts))]


def antecedent(session: Session, sensor: Sensor, now: datetime, days: int,
                k: float) -> tuple[float, float]:
    """P_a over the `days` whole days before today, and how complete those days' data is."""
    return antecedents(session, [sensor.id], now, days, k)[sensor.id]


def antecedents(session: Session, sensor_ids: Iterable[int], now: datetime, days: int,
                k: float) -> dict[int, tuple[float, float]]:
    """`antecedent` for many gauges in one query (the warning rules need every gauge's at once
    when a storm starts, and again when the day changes)."""
    ids = sorted(set(sensor_ids))
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days)
    totals = {sid: [0.0] * days for sid in ids}
    covered = dict.fromkeys(ids, 0.0)
    for chunk in (ids[i:i + 5000] for i in range(0, len(ids), 5000)):
        for sid, hour, total, covered_s in session.execute(
                select(ReadingHour.sensor_id, ReadingHour.hour, ReadingHour.total,
                       ReadingHour.covered_s).where(
                    ReadingHour.sensor_id.in_(chunk), ReadingHour.hour >= start,
                    ReadingHour.hour < today)):
            totals[sid][(hour - start).days] += total
            covered[sid] += covered_s
    return {sid: (math.fsum(k ** i * p for i, p in enumerate(reversed(totals[sid]), start=1)),
                  min(1.0, covered[sid] / (days * 86400))) for sid in ids}


def seen_dry(rows: list[tuple], now: datetime, dry_gap_h: float) -> bool:
    """Whether "no rain event" is an observation: a usable report in the last dry gap (the
    time after which an event ends). Without one the gauge has said nothing lately: unknown."""
    recent = now - timedelta(hours=dry_gap_h)
    return any(ts > recent and flag in USABLE_FLAGS for ts, _value, flag in rows)


def sums(session: Session, state: TelemetryState, sensor: Sensor, now: datetime,
         settings) -> dict[str, Any]:
    """The rolling sums of a rain gauge (DESIGN §5 shape) or the movement of a displacement
    sensor, ending now. Unknown is null, not 0: a window with no data at all, the event total
    when the gauge has not reported lately, the antecedent index with no data in its days."""
    answer: dict[str, Any] = {"sensor": sensor.code, "kind": sensor.kind, "unit": sensor.unit,
                              "as_of": now.isoformat(), "status": sensor.status}
    if sensor.kind == SensorKind.RAIN_GAUGE:
        windows = state.rain_windows(session, sensor, now)
        # A window no report covers is unknown (null), never 0 mm: a silent gauge is not dry.
        answer["windows"] = {name: {"mm": round(w.mm, 3) if w.complete > 0 else None,
                                    "complete": round(w.complete, 4)}
                             for name, w in windows.items()}
        rows = readings_between(session, sensor, now - EVENT_LOOKBACK, now)
        dry_gap_h = settings.telemetry.event_dry_gap_h
        event = current_event(rows, now=now, interval_s=sensor.interval_s, dry_gap_h=dry_gap_h)
        answer["event_mm"] = (round(event.mm, 3) if event
                              else 0.0 if seen_dry(rows, now, dry_gap_h) else None)
        answer["event"] = None if event is None else {
            "start": event.start.isoformat(), "end": event.end.isoformat(),
            "mm": round(event.mm, 3), "duration_h": round(event.duration_h, 3),
            "intensity_mm_h": round(event.intensity_mm_h, 3), "dry_h": round(event.dry_h, 3)}
        index, complete = antecedent(session, sensor, now, settings.telemetry.antecedent_days,
                                      settings.telemetry.antecedent_k)
        answer["antecedent_mm"] = round(index, 3) if complete > 0 else None
        answer["antecedent_complete"] = round(complete, 4)
    elif sensor.kind in DISPLACEMENT_KINDS:
        series = [(ts, value) for ts, value, flag in
                  readings_between(session, sensor, now - DISPLACEMENT_LOOKBACK, now)
                  if flag in {"good", "suspect"}]
        velocity = displacement_velocity(series)
        inverse = smoothed_inverse_velocity(series)
        forecast = inverse_velocity_forecast(series)
        answer["velocity_mm_d"] = round(velocity[-1][1], 4) if velocity else None
        answer["inverse_velocity_d_mm"] = round(inverse[-1][1], 6) if inverse else None
        answer["forecast"] = None if forecast is None else {
            "failure_time": forecast.failure_time.isoformat(), "slope": forecast.slope,
            "r2": round(forecast.r2, 4), "points": forecast.points}
    return answer
