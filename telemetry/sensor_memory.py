"""What a hub process keeps in memory per sensor between readings.

Quality control judges a reading against the sensor's recent history, and a rain gauge's rolling
windows (telemetry.rain.RainWindows) are kept incrementally: neither rescans the database per
reading. The database stays the truth. A sensor's memory is loaded from its stored readings on
first use and again whenever the sensor's `revision` (raised by every change to its readings, in
the same transaction) differs from the revision the memory was built at, so a reading stored by
another process (HTTP ingest in a `web` process, a value replaced from the dead-letter page) is
picked up the next time this process touches the sensor.

Ingest works in two steps around its transaction: it flags readings against the memory plus the
readings pending in the same transaction (`Pending`), and only after the commit are they applied
(`TelemetryState.apply`), so a rolled-back batch leaves the memory as it was.

The process that owns MQTT learns its writer's readings (`TelemetryState.follow`) after every
batch, but reads a gauge's windows only when the rules judge it (a non-zero reading, an active
alert, the 15 s sweep): followed readings wait in the memory and are folded into the history and
the windows on the next read, many batches at once. Measured (bench/alerts.py, 1,106 gauges,
single readings), folding each batch as it came was about a fifth of that process's time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from telemetry import batch_sql
from telemetry.choices import DEFAULT_QC, SensorKind
from telemetry.models import Sensor
from telemetry.qc import QcParams, QcResult, check
from telemetry.rain import WINDOWS, RainWindows

# Readings kept per sensor for quality control: more than any spike window or stuck count needs
# at its defaults (telemetry.choices.DEFAULT_QC); a larger stuck count looks at what is kept.
HISTORY = 40
# A rain gauge's windows reach back 24 h; load a little more for the first report's predecessor.
RAIN_LOAD = timedelta(seconds=WINDOWS["24h"] + 20 * 60)
SENSOR_ROW_TTL_S = 2.0
# Ingest marks an hour for roll-up at most this often per process (the roll-up job keeps a mark
# for KEEP_MARK_S = 2 × this after it was set, so a skipped mark is never one already removed).
MARK_AGAIN_S = 60.0
# Followed readings a memory holds unfolded at most (a sensor nobody reads in this process, such
# as a level sensor whose memory HTTP ingest loaded once, must not grow without bound).
WAITING_MAX = 256


# QcParams fields that cannot be switched off (null in a sensor's `qc` means "use the default").
_NOT_NULL = frozenset({"silence_factor", "spike_window", "stuck_tolerance"})


def qc_params(kind: str, qc: Mapping[str, Any] | None, interval_s: float) -> QcParams:
    """A sensor's QC parameters: its own `qc` settings over its kind's defaults; a test whose
    parameter the sensor sets to null is off (ValueError on an unknown or invalid parameter)."""
    merged = {**DEFAULT_QC.get(SensorKind(kind), {}), **(qc or {})}
    return QcParams.from_mapping(
        {k: v for k, v in merged.items() if v is not None or k not in _NOT_NULL}, interval_s)


def _key(sensor: Sensor, *, copy: bool = False) -> tuple:
    """What a memory was built from: compared with the sensor's every time the writer flags a
    reading (its QC settings as they are: dicts compare by value); `copy` for the key a memory
    keeps, which must not change with the sensor's dict."""
    qc = sensor.qc or None
    return (sensor.revision, sensor.interval_s, dict(qc) if copy and qc else qc)


@dataclass
class Memory:
    """One sensor's recent readings (time order) and, for a rain gauge once asked for, its
    rolling windows."""

    key: tuple
    params: QcParams
    history: list[tuple[datetime, float]]
    rain: RainWindows | None = None
    # Readings `follow` took and no one has read yet, in the order they came (see `settle`).
    waiting: list[tuple[datetime, float, str]] = field(default_factory=list)

    def settle(self) -> None:
        """Fold the waiting readings into the history and the rain windows (the caller holds
        the state's lock)."""
        if self.waiting:
            waiting, self.waiting = self.waiting, []
            self.take(waiting)

    def take(self, readings: Sequence[tuple[datetime, float, str]]) -> None:
        """Add readings (in the order they were stored) to the history and the windows: the same
        as taking them one batch at a time (a later value of a time already held replaces it)."""
        if not readings:
            return
        pairs = [(ts, value) for ts, value, _ in readings]
        history = self.history
        if (not history or pairs[0][0] > history[-1][0]) and all(
                a[0] < b[0] for a, b in pairwise(pairs)):
            self.history = (history + pairs[-HISTORY:])[-HISTORY:]  # the usual case
        else:
            self.history = sorted({**dict(history), **dict(pairs)}.items())[-HISTORY:]
        if self.rain is not None:
            self.rain.extend(readings)


@dataclass
class Pending:
    """Readings flagged in a transaction that has not committed yet, per sensor id."""

    readings: dict[int, list[tuple[datetime, float, str]]] = field(default_factory=dict)

    def add(self, sensor_id: int, ts: datetime, value: float, flag: str) -> None:
        self.readings.setdefault(sensor_id, []).append((ts, value, flag))

    def of(self, sensor_id: int) -> list[tuple[datetime, float]]:
        return [(ts, value) for ts, value, _ in self.readings.get(sensor_id, ())]


class TelemetryState:
    """Per-sensor memories of one process; thread-safe (the ingest writer and HTTP threads)."""

    def __init__(self) -> None:
        self._memories: dict[int, Memory] = {}
        self._lock = threading.RLock()
        # Gateway code -> id (gateways are never renamed or deleted).
        # gateway code -> (its id, or None when unknown or disabled; until when to trust it)
        self.gateway_ids: dict[str, tuple[int | None, float]] = {}
        # Sensor code -> (what ingest reads of it, when read): ingest re-reads a sensor at most
        # every SENSOR_ROW_TTL_S, so a change made elsewhere (retired, new range) applies
        # within that time; its own writes it applies itself after each commit.
        self._sensor_rows: dict[str, tuple[Any, float]] = {}
        # (sensor id, hour) -> when this process's committed transaction marked it.
        self._marks: dict[tuple[int, datetime], float] = {}

    def memory(self, session: Session, sensor: Sensor) -> Memory:
        """The sensor's memory, (re)loaded from the database when it is missing or stale."""
        with self._lock:
            memory = self._memories.get(sensor.id)
            if memory is None or memory.key != _key(sensor):
                memory = self._memories[sensor.id] = _load(session, sensor)
            memory.settle()
            return memory

    def flag(self, session: Session, sensor: Sensor, ts: datetime, value: float,
             pending: Pending, now: datetime) -> QcResult:
        """Quality-control one reading against the history it would join."""
        memory = self.memory(session, sensor)
        with self._lock:
            history, waiting = memory.history, pending.of(sensor.id)
            needed = memory.params.history_needed
            if waiting:
                # Readings of this sensor earlier in the same transaction: usually each newer
                # than the last, so the history they extend is still in time order.
                ordered = all(a[0] < b[0] for a, b in pairwise(waiting)) and \
                    ts > waiting[-1][0] and not (history and waiting[0][0] <= history[-1][0])
                previous = (history[-needed:] + waiting)[-needed:] if ordered \
                    else history + waiting
            else:
                ordered = not (history and ts <= history[-1][0])
                # The usual case: a reading newer than all the sensor has.
                previous = history[-needed:] if ordered else history
        return check(value, ts, previous, memory.params, sensor.kind, ordered=ordered)

    def apply(self, pending: Pending, revisions: Mapping[int, int]) -> None:
        """After the commit: add the pending readings; the memory is now at `revisions`."""
        with self._lock:
            for sensor_id, readings in pending.readings.items():
                memory = self._memories.get(sensor_id)
                if memory is None:
                    continue
                if sensor_id not in revisions:
                    del self._memories[sensor_id]
                    continue
                memory.settle()
                memory.take(readings)
                memory.key = (revisions[sensor_id], *memory.key[1:])

    def follow(self, readings: Mapping[int, list[tuple[datetime, float, str]]],
               revisions: Mapping[int, tuple[int, int]]) -> None:
        """Learn readings another process committed (the ingest writer's batch), given each
        sensor's revision before and after that commit: a memory at `before` or later takes
        them (adding a reading twice changes nothing); a memory older than `before` missed
        readings (stored by a third process) and is dropped, to load again on next use. So
        the process that owns MQTT keeps its rain windows current without reading them back.
        The readings wait in the memory until it is read (module docstring)."""
        with self._lock:
            memories = self._memories
            for sensor_id, (before, after) in revisions.items():
                memory = memories.get(sensor_id)
                if memory is None:
                    continue
                if memory.key[0] < before:
                    del memories[sensor_id]
                    continue
                new = readings.get(sensor_id)
                if new:
                    memory.waiting += new
                    if len(memory.waiting) > WAITING_MAX:
                        memory.settle()
                if after > memory.key[0]:
                    memory.key = (after, *memory.key[1:])

    def followed(self, session: Session, sensor: Sensor) -> Memory:
        """The sensor's memory as `follow` keeps it: loaded when missing or when its interval or
        QC changed, but not reloaded because the database's revision is ahead (the batch that
        raised it is on its way to `follow`)."""
        with self._lock:
            memory = self._memories.get(sensor.id)
            if memory is None or memory.key[1:] != _key(sensor)[1:]:
                memory = self._memories[sensor.id] = _load(session, sensor)
            memory.settle()
            return memory

    def rain_sums(self, session: Session, sensor: Sensor, now: datetime,
                  seconds: list[int]) -> dict[int, Any]:
        """A followed rain gauge's window sums ending at now, for windows of these lengths
        (seconds, at most 24 h): {seconds: WindowSum}."""
        memory = self.followed(session, sensor)
        with self._lock:
            if memory.rain is None:
                _, rain = batch_sql.recent_readings(session, sensor.id, limit=0,
                                                    since=now - RAIN_LOAD)
                memory.rain = RainWindows(sensor.interval_s)
                memory.rain.load(rain)
            return {s: memory.rain.window(now, s) for s in seconds}

    def sensor_rows(self, codes: set[str], now: float) -> dict[str, Any]:
        """Cached sensor rows for these codes, those read less than SENSOR_ROW_TTL_S ago."""
        with self._lock:
            rows = {}
            for code in codes:
                entry = self._sensor_rows.get(code)
                if entry is not None and now - entry[1] < SENSOR_ROW_TTL_S:
                    rows[code] = entry[0]
            return rows

    def keep_sensor_rows(self, fresh: Mapping[str, Any], updated: Mapping[str, Any],
                         now: float) -> None:
        """After a commit: remember the rows read from the database in it (read now), and the
        rows as the commit left them (still as old as their first read)."""
        with self._lock:
            for code, row in fresh.items():
                self._sensor_rows[code] = (updated.get(code, row), now)
            for code, row in updated.items():
                if code not in fresh:
                    self._sensor_rows[code] = (row, self._sensor_rows.get(code, (None, now))[1])

    def forget_sensor_rows(self, codes) -> None:
        """Re-read these sensors' rows on next use (this process changed them)."""
        with self._lock:
            for code in codes:
                self._sensor_rows.pop(code, None)

    def marked_recently(self, hours: set, now: float) -> set:
        """Those of the (sensor id, hour) pairs this process marked under MARK_AGAIN_S ago."""
        with self._lock:
            if len(self._marks) > 100_000:
                self._marks = {k: t for k, t in self._marks.items() if now - t < MARK_AGAIN_S}
            return {h for h in hours if now - self._marks.get(h, -MARK_AGAIN_S) < MARK_AGAIN_S}

    def note_marked(self, hours: set, now: float) -> None:
        """After a commit: these hours were marked in it."""
        with self._lock:
            for hour in hours:
                self._marks[hour] = now

    def forget(self, sensor_id: int | None = None) -> None:
        """Drop one sensor's memory (or everything this process remembers): it reloads on next
        use."""
        with self._lock:
            if sensor_id is None:
                self._memories.clear()
                self._sensor_rows.clear()
                self._marks.clear()
            else:
                self._memories.pop(sensor_id, None)

    def rain_windows(self, session: Session, sensor: Sensor, now: datetime) -> dict:
        """A rain gauge's rolling windows ending at now: {name: WindowSum}. The windows are
        loaded on first use and then kept up to date by `apply`; a process that only ingests
        (the MQTT writer) never asks, and so never loads or keeps them: measured, loading a
        day of reports per gauge was most of what a hub restarted into a backlog paid before
        it stored at full speed, and keeping them ~5 % of the writer's time per reading."""
        if sensor.kind != SensorKind.RAIN_GAUGE:
            raise ValueError(f"{sensor.code} is not a rain gauge")
        memory = self.memory(session, sensor)
        with self._lock:
            if memory.rain is None:
                _, rain = batch_sql.recent_readings(session, sensor.id, limit=0,
                                                    since=now - RAIN_LOAD)
                memory.rain = RainWindows(sensor.interval_s)
                memory.rain.load(rain)
            return memory.rain.windows(now)


def _load(session: Session, sensor: Sensor) -> Memory:
    history, _ = batch_sql.recent_readings(session, sensor.id, limit=HISTORY, since=None)
    return Memory(_key(sensor, copy=True),
                  qc_params(sensor.kind, sensor.qc, sensor.interval_s), history)


def state_of(app: Flask) -> TelemetryState:
    """This process's telemetry state (one per app)."""
    state = app.extensions.get("telemetry_state")
    if state is None:
        state = app.extensions.setdefault("telemetry_state", TelemetryState())
    return state
