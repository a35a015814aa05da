"""The positions' live events, their payloads built here only: `position` and `geofence`, to the
`office` room.

`position` carries the markers that moved forward (a fix newer than the member's latest; an older
one joins the track without an event), many at a time:

`{"positions": [{"member": code, "name", "status": duty status, "lon", "lat", "ts": ISO time of
the fix, "accuracy_m", "speed_mps", "battery_pct" (each null when unknown), "source":
"owntracks" | "owntracks_http" | "osmand" | "tablet"}, ...]}`, plus the event's own `id` and `ts`
(dispatch.core.realtime: the time it was sent, not a fix's).

One event per fix was one websocket frame per fix and office client: 1,248 phones every 10 s and
200 clients made 25,000 frames/s, more than the hub's CPU could write (README, bench/positions.py).
So each process's `PositionCoalescer` gathers the moved markers of every source (the OwnTracks MQTT
batches, OwnTracks HTTP, OsmAnd, the tablets) and sends them at most every
`positions.event_every_s` (0.25 s): the newest fix of each member, every member moved since the
last event, never a marker older than one already held or just sent. A quiet hub sends nothing.
The first markers after a quiet spell go out at once (leading edge); those that come within
event_every_s of an event are held and go together when that time is up, so no marker waits
longer than event_every_s (plus the time the previous event takes to send).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app

from dispatch.core.realtime import notify

log = logging.getLogger(__name__)

ROOMS = ("office",)
# A member's last sent fix guards against a marker going backwards only this long: the race it
# guards against (two transactions' after_commit in the other order) lasts milliseconds, and
# the database never moves a marker backwards.
REMEMBER_S = 60.0


@dataclass(frozen=True)
class Moved:
    """A member whose marker moved, and the fix it moved to."""

    member: str
    name: str
    status: str
    ts: datetime
    lon: float
    lat: float
    accuracy_m: float | None
    speed_mps: float | None
    battery_pct: float | None
    source: str


def position_entry(moved: Moved) -> dict:
    """One member's entry in a `position` event (module docstring)."""
    return {"member": moved.member, "name": moved.name, "status": moved.status,
            "lon": moved.lon, "lat": moved.lat, "ts": moved.ts.isoformat(),
            "accuracy_m": moved.accuracy_m, "speed_mps": moved.speed_mps,
            "battery_pct": moved.battery_pct, "source": moved.source}


def position_event(moved: Iterable[Moved]) -> dict:
    """A `position` event listing moved markers (module docstring)."""
    return {"positions": [position_entry(item) for item in moved]}


class PositionCoalescer:
    """This process's `position` events: at most one per `every_s`, listing each member's
    newest moved marker (module docstring)."""

    def __init__(self, app: Flask, every_s: float):
        self.app = app
        self.every_s = every_s
        self._held: dict[str, Moved] = {}
        # Per member: the newest fix held or sent, and when (monotonic) it was taken.
        self._newest: dict[str, tuple[datetime, float]] = {}
        self._last_sent = -float("inf")
        self._sending = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def add(self, moved: Iterable[Moved]) -> None:
        """Take moved markers (after the commit that moved them): sent at once if no event went
        out within every_s, else held for the next one."""
        now = time.monotonic()
        with self._lock:
            for item in moved:
                newest = self._newest.get(item.member)
                if newest is not None and item.ts <= newest[0] and (
                        item.member in self._held or now - newest[1] < REMEMBER_S):
                    continue  # never backwards: a newer fix of this member is held or was sent
                self._newest[item.member] = (item.ts, now)
                self._held[item.member] = item
            batch = self._take(now)
        self._send(batch)

    def flush(self) -> None:
        """Send what is held now, whatever the time (tests; a process about to stop)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch = self._take(time.monotonic(), force=True)
        self._send(batch)

    def _take(self, now: float, *, force: bool = False) -> list[Moved]:
        """Under the lock: the held markers if an event is due (none being sent, the last one
        every_s ago or more), else [] and the timer armed for when it is due."""
        if not self._held or self._sending:
            return []  # a sender arms the timer when it is done
        wait = self._last_sent + self.every_s - now
        if wait > 0 and not force:
            self._arm(wait)
            return []
        batch = list(self._held.values())
        self._held.clear()
        self._last_sent = now
        self._sending = True
        return batch

    def _arm(self, wait: float) -> None:
        if self._timer is None:
            self._timer = threading.Timer(wait, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            batch = self._take(time.monotonic())
        try:
            self._send(batch)
        except Exception:  # a thread of its own: log it, the next event carries on
            log.exception("positions: sending a `position` event of %d markers failed",
                          len(batch))

    def _send(self, batch: list[Moved]) -> None:
        if not batch:
            return
        try:
            with self.app.app_context():
                notify("position", position_event(batch), ROOMS)
        finally:
            with self._lock:
                self._sending = False
                if self._held:  # what came while this one was being sent
                    self._arm(max(0.0, self._last_sent + self.every_s - time.monotonic()))


def coalescer_of(app: Flask) -> PositionCoalescer:
    """The app's coalescer in this process (shared by every source of fixes)."""
    coalescer = app.extensions.get("positions.coalescer")
    if coalescer is None:
        coalescer = app.extensions.setdefault("positions.coalescer", PositionCoalescer(
            app, float(app.config["SETTINGS"].positions.event_every_s)))
    return coalescer


def announce(moved: Iterable[Moved]) -> None:
    """Announce markers moved by the current app's committed transaction (module docstring)."""
    moved = list(moved)
    if moved:
        coalescer_of(current_app._get_current_object()).add(moved)


def announce_crossings(payloads: Iterable[dict]) -> None:
    """A `geofence` event to the office per place entered or left (payloads from
    dispatch.positions.places.event_payload, built before the commit)."""
    for payload in payloads:
        notify("geofence", payload, ROOMS)
