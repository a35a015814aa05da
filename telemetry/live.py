"""Telemetry's live events (DESIGN §5), each payload built here only: `reading`, throttled per
sensor, and `sensor_status`.

A sensor gets at most one `reading` event per EVENT_EVERY_S. A reading that arrives inside that
time is not dropped: the newest one is held and sent when the time is up (trailing throttle), so
the map never stays on a value older than the sensor's last one.

`sensor_status` comes in two shapes, read by maps/static/map.js, telemetry/static/sensors.js and
telemetry/static/sensor.js:
- a sensor's (`sensor_status_event`): `{"sensor": code, "status": "new" | "reporting" |
  "missing", "flag": the QC flag of its last reading ("missing" while it is missing or before it
  reported), "retired": bool, "since": ISO time its status began, or null}`;
- a gateway's (`gateway_status_event`): `{"gateway": code, "online": bool, "reason": null |
  "reported" (its status topic or last will) | "silent", "since": ISO time}`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from flask import Flask

from dispatch.core.realtime import notify
from telemetry.decode import Reading

EVENT_EVERY_S = 1.0


# What the `reading` event of a stored reading needs: (sensor code, ts, value, QC flag).
Stored = tuple[str, datetime, float, str]


def reading_event(code: str, ts: datetime, value: float, flag: str) -> dict:
    """A `reading` event: a sensor's stored reading with its QC flag."""
    return {"sensor": code, "ts": ts.isoformat(), "value": value, "flag": flag}


def sensor_status_event(code: str, *, status: str, flag: str | None, retired: bool = False,
                        since: datetime | None = None) -> dict:
    """A sensor's `sensor_status` event (module docstring)."""
    return {"sensor": code, "status": status,
            "flag": "missing" if status == "missing" or flag is None else flag,
            "retired": retired, "since": since.isoformat() if since else None}


def gateway_status_event(code: str, *, online: bool, reason: str | None,
                         since: datetime) -> dict:
    """A gateway's `sensor_status` event (module docstring)."""
    return {"gateway": code, "online": online, "reason": None if online else reason,
            "since": since.isoformat()}


def send_status(events: Sequence[dict]) -> None:
    """Send `sensor_status` events built above (after the commit that made them true)."""
    for event in events:
        notify("sensor_status", event)


class Announcer:
    """Sends `reading` events for stored readings, at most one per sensor per EVENT_EVERY_S."""

    def __init__(self, app: Flask, every_s: float = EVENT_EVERY_S):
        self.app = app
        self.every_s = every_s
        self._sent: dict[str, float] = {}
        self._held: dict[str, Stored] = {}
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def announce(self, stored: Iterable[Stored]) -> None:
        """Announce the newest stored reading of each sensor (held if sent too recently). Held
        readings stay tuples; an event is built only for what is sent (in the process that owns
        MQTT, for every batch the writer stores)."""
        latest: dict[str, Stored] = {}
        for reading in stored:
            code = reading[0]
            if code not in latest or reading[1] > latest[code][1]:
                latest[code] = reading
        now = time.monotonic()
        due = []
        with self._lock:
            for code, reading in latest.items():
                held = self._held.get(code)
                if held is not None and held[1] > reading[1]:
                    continue
                if now - self._sent.get(code, -self.every_s) >= self.every_s:
                    self._sent[code] = now
                    self._held.pop(code, None)
                    due.append(reading)
                else:
                    self._held[code] = reading
            self._arm()
        self._send(due)

    def _arm(self) -> None:
        if self._held and self._timer is None:
            self._timer = threading.Timer(self.every_s / 4, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        now = time.monotonic()
        due = []
        with self._lock:
            self._timer = None
            for code in list(self._held):
                if now - self._sent.get(code, -self.every_s) >= self.every_s:
                    self._sent[code] = now
                    due.append(self._held.pop(code))
            self._arm()
        self._send(due)

    def _send(self, readings: list[Stored]) -> None:
        if not readings:
            return
        with self.app.app_context():
            for reading in readings:
                notify("reading", reading_event(*reading))


def announcer_of(app: Flask) -> Announcer:
    """This process's announcer (shared by MQTT and HTTP ingest)."""
    announcer = app.extensions.get("telemetry_announcer")
    if announcer is None:
        announcer = app.extensions.setdefault("telemetry_announcer", Announcer(app))
    return announcer


def announce_readings(stored: Iterable[tuple[str, Reading, str]]) -> None:
    """Announce readings stored by the current app (call after the commit)."""
    from flask import current_app

    announcer_of(current_app._get_current_object()).announce(
        (code, reading.ts, reading.value, flag) for code, reading, flag in stored)
