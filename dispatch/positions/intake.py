"""Storing fixes: tracks, markers moved forward only, dead letters, geofences, `position` events.

`dispatch.positions.fixes` decodes (pure); an `Intake` takes the decoded messages of one
transaction, from any source (the OwnTracks MQTT batch, one HTTP request, one tablet event):
- fixes go into `positions` in one INSERT … ON CONFLICT (member, ts) DO NOTHING RETURNING, so a
  phone's retry is a counted duplicate, never a second row;
- each member's newest new fix moves the marker with one conditional upsert of
  `latest_positions` (… DO UPDATE … WHERE latest.ts < new.ts RETURNING): an older fix joins the
  track without moving the marker back, and two writers can never move it backwards;
- a known device's bad message is a dead letter in telemetry's store (topic: the MQTT topic, or
  `http:owntracks` / `http:osmand`; gateway: the device's login), within telemetry's dead-letter
  quota per login and minute (past it, counted in rescuehub_dead_letters_dropped_total only);
- the geofences hear of every new fix and OwnTracks transition (dispatch.positions.places) in
  the same transaction;
- after the commit (`after_commit`), the counters, and the moved markers handed to the
  positions' live coalescer (one `position` event lists all moved in a window: ./live.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from geoalchemy2.shape import to_shape
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dispatch.positions import live, metrics, places
from dispatch.positions.devices import Reporter, mark_seen
from dispatch.positions.fixes import (
    CHINA,
    Area,
    Fix,
    Ignored,
    Outcome,
    Rejection,
    Transition,
    Window,
)
from dispatch.positions.models import LatestPosition, Position
from maps.models import Township
from telemetry.models import DeadLetter
from telemetry.quota import DeadLetterQuota, counted_drops

log = logging.getLogger(__name__)

# A dead letter keeps this much of a too_large message.
TOO_LARGE_KEEP = 4096
# The townships' extent (for `swapped`) is read again after this long.
AREA_TTL_S = 300.0
# Unknown devices are logged at most once per source and this many seconds.
UNKNOWN_LOG_S = 60.0


@dataclass(frozen=True)
class Letter:
    """Where a refused message came from, for its dead letter."""

    topic: str
    raw: bytes
    message_id: str
    item: int | None = None


class Intake:
    """The position messages of one transaction: `take()` each, `finish()` before the commit,
    `after_commit()` once it held."""

    def __init__(self, session: Session, now: datetime, *, quota: DeadLetterQuota | None = None):
        self.session = session
        self.now = now
        self.quota = quota
        self._fixes: dict[tuple[int, datetime], tuple[Reporter, Fix, str]] = {}
        self._repeats = 0
        self._transitions: list[tuple[Reporter, Transition]] = []
        self._letters: list[dict[str, Any]] = []
        self._dropped: Counter[tuple[str, str]] = Counter()
        self._seen: set[int] = set()
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._ignored: Counter[str] = Counter()
        self.moved: list[live.Moved] = []
        # The `geofence` events of this transaction, built before the commit, sent after it.
        self.crossings: list[dict[str, Any]] = []

    def take(self, reporter: Reporter, outcome: Outcome, source: str, letter: Letter | None,
             *, keep_letter: bool = True) -> None:
        """One decoded message from a known reporter (`letter`: how to dead-letter it;
        `keep_letter` False: a refusal is counted only)."""
        self._counts["received"] += 1
        if reporter.device_id is not None:
            self._seen.add(reporter.device_id)
        if isinstance(outcome, Fix):
            key = (reporter.member_id, outcome.ts)
            if key in self._fixes:
                self._repeats += 1  # the same fix twice in one batch (two devices, a retry)
            else:
                self._fixes[key] = (reporter, outcome, source)
        elif isinstance(outcome, Transition):
            self._transitions.append((reporter, outcome))
        elif isinstance(outcome, Ignored):
            self._ignored[outcome.type] += 1
        else:
            self._rejected[outcome.reason] += 1
            if letter is not None and keep_letter:
                self._letter(reporter, outcome, letter)

    def unknown(self, source: str, who: str) -> None:
        """A message naming no active device (or a tablet user who is no member): counted and
        logged (at most once a minute per source), never stored."""
        self._counts["received"] += 1
        self._rejected["unknown_device"] += 1
        unknown_log.note(source, who)

    def _letter(self, reporter: Reporter, rejection: Rejection, letter: Letter) -> None:
        keep = TOO_LARGE_KEEP if rejection.reason == "too_large" else len(letter.raw)
        payload = letter.raw[:keep]
        login = reporter.device or ""
        if self.quota is not None and not self.quota.take(login, len(payload), self.now):
            self._dropped[(login, rejection.reason)] += 1
            return
        self._letters.append({
            "received_at": self.now, "topic": letter.topic[:200], "gateway": reporter.device,
            "message_id": letter.message_id[:64], "reason": rejection.reason,
            "detail": rejection.detail[:500], "sensor_code": None, "item": letter.item,
            "payload": payload})

    def finish(self) -> None:
        """Before the commit: store the fixes, move the markers, write the dead letters, tell
        the geofences."""
        inserted = self._insert_fixes()
        stored: dict[int, list[Fix]] = defaultdict(list)
        newest: dict[int, tuple[Reporter, Fix, str]] = {}
        for key in inserted:
            reporter, fix, source = self._fixes[key]
            stored[reporter.member_id].append(fix)
            if reporter.member_id not in newest or fix.ts > newest[reporter.member_id][1].ts:
                newest[reporter.member_id] = (reporter, fix, source)
        self._counts["stored"] += len(inserted)
        self._counts["duplicate"] += len(self._fixes) - len(inserted) + self._repeats
        self._move_markers(newest)
        mark_seen(self.session, self._seen, self.now)
        if self._letters:
            self.session.execute(insert(DeadLetter.__table__), self._letters)
        self.crossings = _tell_geofences(self.session, stored, self._transitions)

    def _insert_fixes(self) -> set[tuple[int, datetime]]:
        rows = [{"member_id": r.member_id, "device_id": r.device_id, "ts": f.ts, "lon": f.lon,
                 "lat": f.lat, "accuracy_m": f.accuracy_m, "speed_mps": f.speed_mps,
                 "battery_pct": f.battery_pct, "source": source, "received_at": self.now}
                for _key, (r, f, source) in sorted(self._fixes.items(), key=_by_member)]
        if not rows:
            return set()
        result = self.session.connection().execute(_statements(self.session).fixes, rows)
        return {(member_id, ts) for member_id, ts in result}

    def _move_markers(self, newest: dict[int, tuple[Reporter, Fix, str]]) -> None:
        """One conditional upsert: a marker moves only to a newer fix."""
        if not newest:
            return
        rows = [{"member_id": r.member_id, "device_id": r.device_id, "ts": f.ts, "lon": f.lon,
                 "lat": f.lat, "accuracy_m": f.accuracy_m, "speed_mps": f.speed_mps,
                 "battery_pct": f.battery_pct, "source": source}
                # In member order, as every writer here: concurrent ones lock rows in one order.
                for _, (r, f, source) in sorted(newest.items())]
        result = self.session.connection().execute(_statements(self.session).markers, rows)
        for member_id in sorted(result.scalars()):
            r, f, source = newest[member_id]
            self.moved.append(live.Moved(r.member, r.name, r.status, f.ts, f.lon, f.lat,
                                         f.accuracy_m, f.speed_mps, f.battery_pct, source))

    def after_commit(self) -> None:
        """Count what the committed transaction did and announce the moved markers."""
        metrics.received.inc(self._counts["received"])
        metrics.stored.inc(self._counts["stored"])
        metrics.duplicate.inc(self._counts["duplicate"])
        for reason, n in self._rejected.items():
            metrics.rejected.labels(reason=reason).inc(n)
        for kind, n in self._ignored.items():
            metrics.ignored.labels(type=kind).inc(n)
        counted_drops(self._dropped)
        live.announce(self.moved)
        live.announce_crossings(self.crossings)

    @property
    def stored(self) -> int:
        """Fixes stored by finish() (new rows)."""
        return self._counts["stored"]


def _by_member(item) -> tuple[int, datetime]:
    return item[0]


@dataclass(frozen=True)
class _Statements:
    """The two hot statements of a dialect, built once: executed with many rows at a time,
    SQLAlchemy batches them into multi-row INSERTs ("insertmanyvalues") from one compiled form
    (building a multi-row VALUES statement per batch spent two thirds of a batch compiling)."""

    fixes: Any
    markers: Any


def _build(dialect) -> _Statements:
    fixes = Position.__table__
    insert_fix = (dialect.insert(fixes).on_conflict_do_nothing(index_elements=["member_id", "ts"])
                  .returning(fixes.c.member_id, fixes.c.ts))
    latest = LatestPosition.__table__
    upsert = dialect.insert(latest)
    upsert = upsert.on_conflict_do_update(
        index_elements=["member_id"],
        set_={name: upsert.excluded[name] for name in (
            "device_id", "ts", "lon", "lat", "accuracy_m", "speed_mps", "battery_pct",
            "source")},
        where=latest.c.ts < upsert.excluded.ts).returning(latest.c.member_id)
    return _Statements(insert_fix, upsert)


_STATEMENTS = {"postgresql": _build(postgresql), "sqlite": _build(sqlite)}


def _statements(session: Session) -> _Statements:
    return _STATEMENTS[session.bind.dialect.name]


def _tell_geofences(session: Session, stored: dict[int, list[Fix]],
                    transitions: list[tuple[Reporter, Transition]]) -> list[dict[str, Any]]:
    """Hand every member's new fixes (all members in one set-based call) and each OwnTracks
    transition to the geofences, in this transaction (dispatch.positions.places); the
    `geofence` events to send once it is committed."""
    events = places.record_batch(session, stored)
    for reporter, t in transitions:
        event = places.record_transition(session, reporter.member_id, desc=t.desc,
                                         event=t.event, ts=t.ts, lon=t.lon, lat=t.lat)
        if event is not None:
            events.append(event)
    return [places.event_payload(event) for event in events]


# --- the window a fix is checked against ---------------------------------------------------------

def window(session: Session, now: datetime) -> Window:
    """The hub's clock, the [positions] limits and the townships' extent (for `swapped`)."""
    settings = current_app.config["SETTINGS"]
    return Window(now, settings.positions.max_future_s, settings.positions.max_age_days,
                  area(session))


def area(session: Session) -> Area:
    """The townships' extent grown by fixes.AREA_MARGIN_DEG (China before any township is
    loaded), read at most every AREA_TTL_S per app."""
    cached = current_app.extensions.get("positions.area")
    clock = time.monotonic()
    if cached is not None and cached[0] > clock:
        return cached[1]
    bounds = [to_shape(b).bounds for b in session.scalars(select(Township.boundary))]
    found = CHINA if not bounds else Area(
        min(b[0] for b in bounds), min(b[1] for b in bounds),
        max(b[2] for b in bounds), max(b[3] for b in bounds)).grown()
    current_app.extensions["positions.area"] = (clock + AREA_TTL_S, found)
    return found


class _UnknownLog:
    """Unknown devices, logged at most once per source and UNKNOWN_LOG_S (a stray phone
    retrying every few seconds must not flood the log)."""

    def __init__(self, every_s: float = UNKNOWN_LOG_S):
        self.every_s = every_s
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._missed: Counter[str] = Counter()

    def note(self, source: str, who: str) -> None:
        clock = time.monotonic()
        with self._lock:
            if clock < self._next.get(source, 0.0):
                self._missed[source] += 1
                return
            self._next[source] = clock + self.every_s
            missed, self._missed[source] = self._missed[source], 0
        log.warning("positions: %s from an unknown device %r refused (%d more since the last "
                    "such line)", source, who[:64], missed)


unknown_log = _UnknownLog()
