"""Geofence events at villages and shelters (DESIGN §5 "Roster and positions (contract)"): from
fixes crossing the places' fences (dispatch.positions.geofence: the hysteresis) and from
OwnTracks transitions (the phone's own regions, named like a place).

Where a member is: `geofence_presence` holds one row per place the member is inside now, and one
more row per member, the **cursor** (place_type "cursor", place ""), whose `since` is the time of
the newest fix or transition that presence reflects. A fix not newer than the cursor joins the
track (the caller stores it) but is not judged here: a phone's late backlog must not flip
presence back to what it was an hour ago. Writing the cursor first also serialises one member's
geofence work (a row lock on PostgreSQL, the write lock on SQLite), so two devices of the same
member reporting at once cannot both record the same `enter`. The cursor is ours, not the
intake's `latest_positions` row, so the order in which a caller moves that row and calls us does
not matter. Read presence through `places_inside`, which leaves the cursor out.

Everything is written in the caller's transaction; the caller sends `geofence` live events
(`event_payload`) after its commit.

The fences are built from the villages, shelters and townships and kept per engine (so per
process), one STRtree per metric CRS (each place in its township's UTM zone: a prefecture and the
demo township may lie in different zones). They are built again when a place was added (the
largest ids, read on every call: O(1)), edited or deleted in this process (`feature_changed`),
or when the places' key (counts, last `updated_at`, townships' zones: a scan, ~1 ms on
SpatiaLite for a prefecture) changed, which is read every KEY_CHECK_S: an edit made by another
process (a web process, while the worker takes the fixes) is fenced within that time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, object_session

from dispatch.core.events import FeatureChanged
from dispatch.positions import geofence
from dispatch.positions.geofence import ENTER, LEAVE, Crossing, Fence, Fences, Fix, Key
from dispatch.positions.models import GeofenceEvent, Presence
from dispatch.roster.models import Member
from maps import geo
from maps.models import Shelter, Township, Village

log = logging.getLogger(__name__)

CURSOR: Key = ("cursor", "")
# Before any fix: the cursor's first value.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SOURCES = ("transition", "fix")
# The longest OwnTracks region description looked up (a place's code or name is far shorter).
MAX_DESC = 200
# Deletions and edits made in another process are noticed within this many seconds (those made
# in this one at once, through `feature_changed`; additions anywhere at once, by their ids).
KEY_CHECK_S = 5.0
# Metres per degree of latitude, for a group's lon/lat extent around circles (generously).
_M_PER_DEG = 100_000.0


# --- the fences, built once per revision -------------------------------------------------------

@dataclass
class Zone:
    """The fences of one metric CRS and their lon/lat extent (which fixes may be inside one)."""

    epsg: int
    bounds: tuple[float, float, float, float]
    fences: Fences

    def holds(self, lon: float, lat: float) -> bool:
        minx, miny, maxx, maxy = self.bounds
        return minx <= lon <= maxx and miny <= lat <= maxy

    def project(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Lon/lat arrays as an (n, 2) array of metric coordinates."""
        return shapely.get_coordinates(geo.to_metric(shapely.points(lon, lat), self.epsg))


@dataclass
class Atlas:
    """Every place's fence, grouped by CRS, and the names a transition may use for a place."""

    key: tuple
    zones: list[Zone]
    head: tuple = ()
    checked_at: float = 0.0
    stale: bool = False
    zone_of: dict[Key, int] = field(default_factory=dict)
    by_code: dict[str, list[Key]] = field(default_factory=dict)
    by_name: dict[str, list[Key]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, zone in enumerate(self.zones):
            for fence in zone.fences.fences:
                self.zone_of[fence.key] = i
                self.by_code.setdefault(fence.place.casefold(), []).append(fence.key)
                if fence.name:
                    self.by_name.setdefault(fence.name.strip().casefold(), []).append(fence.key)

    def match(self, desc: str, lon: float | None = None, lat: float | None = None) -> Key | None:
        """The place an OwnTracks region names (its code, else its Chinese name, either case);
        several (a code or name used twice): the nearest to lon/lat, None without a position."""
        text = desc.strip().casefold()
        keys = self.by_code.get(text) or self.by_name.get(text) or []
        if len(keys) == 1:
            return keys[0]
        if (not keys or lon is None or lat is None or not _finite(lon, lat)
                or abs(lon) > 180 or abs(lat) > 90):
            return None
        return min(keys, key=lambda k: self._distance(k, lon, lat))

    def _distance(self, key: Key, lon: float, lat: float) -> float:
        zone = self.zones[self.zone_of[key]]
        (x, y), = zone.project(np.array([lon]), np.array([lat]))
        return zone.fences.signed_distance(key, float(x), float(y))


# Per engine (a process has one; each test app its own), dropped with it.
_atlases: weakref.WeakKeyDictionary[Engine, Atlas] = weakref.WeakKeyDictionary()
_atlases_lock = threading.Lock()


def _head(session: Session) -> tuple:
    """The largest village and shelter ids: O(1) on both backends, read on every call (a place
    added anywhere is fenced at once)."""
    return tuple(session.execute(select(
        select(func.max(Village.id)).scalar_subquery(),
        select(func.max(Shelter.id)).scalar_subquery())).one())


def _places_key(session: Session) -> tuple:
    """Changes when a village, shelter or township is added, removed or edited (counting and
    scanning the tables: ~1 ms on SpatiaLite for a prefecture, so read every KEY_CHECK_S)."""
    parts = []
    for model in (Village, Shelter):
        parts += [select(func.count(model.id)).scalar_subquery(),
                  select(func.max(model.updated_at)).scalar_subquery()]
    parts += [select(func.count(Township.id)).scalar_subquery(),
              select(func.sum(Township.epsg)).scalar_subquery()]
    return tuple(session.execute(select(*parts)).one())


def _settings(settings) -> tuple[float, float]:
    if settings is None:
        from flask import current_app

        settings = current_app.config["SETTINGS"]
    return float(settings.positions.shelter_radius_m), float(settings.positions.geofence_margin_m)


def atlas(session: Session, settings=None) -> Atlas:
    """The fences of the current revision of the places (built on first use after a change)."""
    head = (*_head(session), *_settings(settings))
    engine = session.get_bind()
    with _atlases_lock:
        cached = _atlases.get(engine)
        now = time.monotonic()
        if (cached is not None and cached.head == head and not cached.stale
                and now - cached.checked_at < KEY_CHECK_S):
            return cached
        key = _places_key(session)
        if cached is not None and cached.head == head and cached.key == key:
            cached.checked_at, cached.stale = now, False
            return cached
        built = _build(session, key, head[-2], head[-1])
        built.head, built.checked_at = head, now
        _atlases[engine] = built
        log.info("positions: geofences built, %d places in %d zone(s)",
                 sum(len(z.fences) for z in built.zones), len(built.zones))
        return built


def on_feature_changed(payload: FeatureChanged) -> None:
    """`feature_changed` receiver: a village or shelter edited in this process is fenced anew
    on the next fix (edits in other processes within KEY_CHECK_S)."""
    if payload.layer in ("villages", "shelters"):
        with _atlases_lock:
            for cached in _atlases.values():
                cached.stale = True


def _zone_epsg(epsg_of: dict[int, int], township_id: int | None, lon: float, lat: float) -> int:
    epsg = epsg_of.get(township_id) if township_id is not None else None
    return epsg or geo.utm_epsg(lon, lat)


def _build(session: Session, key: tuple, radius_m: float, margin_m: float) -> Atlas:
    epsg_of = {tid: int(e) for tid, e in session.execute(select(Township.id, Township.epsg))}
    village_town = dict(session.execute(select(Village.id, Village.township_id)).all())
    # (epsg) -> [(place_type, code, name, lon/lat shape, radius)]
    grouped: dict[int, list[tuple[str, str, str, Any, float]]] = {}
    for code, name, town, boundary in session.execute(select(
            Village.code, Village.name_zh, Village.township_id, Village.boundary)):
        shape = to_shape(boundary)
        if not shape.is_valid:
            shape = shapely.make_valid(shape)
        if shape.is_empty:
            continue
        lon, lat = shapely.get_coordinates(shape.representative_point())[0]
        grouped.setdefault(_zone_epsg(epsg_of, town, lon, lat), []).append(
            ("village", code, name, shape, 0.0))
    for code, name, town, village_id, location in session.execute(select(
            Shelter.code, Shelter.name_zh, Shelter.township_id, Shelter.village_id,
            Shelter.location)):
        point = to_shape(location)
        if point.is_empty:
            continue
        town = town if town is not None else village_town.get(village_id)
        grouped.setdefault(_zone_epsg(epsg_of, town, point.x, point.y), []).append(
            ("shelter", code, name, point, radius_m))
    zones = []
    for epsg, places in sorted(grouped.items()):
        shapes = geo.to_metric(np.array([p[3] for p in places], dtype=object), epsg)
        fences = [Fence(kind, code, shape, radius, name or "")
                  for (kind, code, name, _, radius), shape in zip(places, shapes, strict=True)]
        zones.append(Zone(epsg, _extent([p[3] for p in places], radius_m),
                          Fences(fences, margin_m)))
    return Atlas(key, zones)


def _extent(shapes: Sequence[Any], radius_m: float) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = shapely.total_bounds(np.array(shapes, dtype=object))
    # Circles reach radius_m beyond their centres: widen by that in degrees (with room to spare
    # for the longitude's cos(lat); a Chinese township lies below 54° N).
    pad_lat = radius_m / _M_PER_DEG
    pad_lon = pad_lat / math.cos(math.radians(min(max(abs(miny), abs(maxy)), 80.0)))
    return (minx - pad_lon, miny - pad_lat, maxx + pad_lon, maxy + pad_lat)


# --- presence and the cursor ------------------------------------------------------------------

def _insert(session: Session):
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def _take_cursor(session: Session, member_id: int) -> datetime:
    """The member's cursor, created at EPOCH if new; locks it until the caller's commit."""
    statement = _insert(session)(Presence).values(
        member_id=member_id, place_type=CURSOR[0], place=CURSOR[1], since=EPOCH)
    statement = statement.on_conflict_do_update(
        index_elements=["member_id", "place_type", "place"],
        set_={"since": Presence.since}).returning(Presence.since)
    return session.connection().execute(statement).scalar_one()


def _move_cursor(session: Session, member_id: int, ts: datetime) -> None:
    session.connection().execute(Presence.__table__.update().where(
        Presence.member_id == member_id, Presence.place_type == CURSOR[0],
        Presence.place == CURSOR[1], Presence.since < ts).values(since=ts))


def _presence(session: Session, member_id: int) -> dict[Key, Presence]:
    rows = session.scalars(select(Presence).where(
        Presence.member_id == member_id, Presence.place_type.in_(geofence.PLACE_TYPES)))
    return {(p.place_type, p.place): p for p in rows}


def places_inside(session: Session, member_id: int) -> list[dict[str, Any]]:
    """The places a member is inside now, each with the time they entered."""
    return [{"place": key[1], "place_type": key[0], "since": row.since}
            for key, row in sorted(_presence(session, member_id).items())]


def _settle(session: Session, member_id: int, before: dict[Key, Presence], after: set[Key],
            entered_at: dict[Key, datetime]) -> None:
    """Make the member's presence rows say `after` (entries at `entered_at`)."""
    for key, row in before.items():
        if key not in after:
            session.delete(row)
        elif key in entered_at:  # left and entered again since
            row.since = entered_at[key]
    for key in after - before.keys():
        session.add(Presence(member_id=member_id, place_type=key[0], place=key[1],
                             since=entered_at[key]))


def _member_code(session: Session, member_id: int) -> str | None:
    return session.scalar(select(Member.code).where(Member.id == member_id))


def _events(session: Session, member_id: int, crossings: Iterable[Crossing],
            source: str) -> list[GeofenceEvent]:
    events = [GeofenceEvent(member_id=member_id, place=c.place, place_type=c.place_type,
                            event=c.event, ts=c.ts, source=source) for c in crossings]
    if events:
        code = _member_code(session, member_id)
        for event in events:
            # Kept on the object for event_payload after the caller's commit (no query then).
            event.member_code = code
        session.add_all(events)
    return events


# --- the service --------------------------------------------------------------------------------

def _finite(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in values)


def _usable(fix: Any) -> bool:
    ts = getattr(fix, "ts", None)
    accuracy = getattr(fix, "accuracy_m", None)
    return (isinstance(ts, datetime) and ts.tzinfo is not None
            and _finite(fix.lon, fix.lat) and abs(fix.lon) <= 180 and abs(fix.lat) <= 90
            and (accuracy is None or (_finite(accuracy) and accuracy >= 0)))


def _crossings(places: Atlas, inside: set[Key], fixes: Sequence[Any]) -> list[Crossing]:
    """Run the fixes (in time order) through every zone they or the presence touch."""
    lon = np.array([f.lon for f in fixes], dtype=float)
    lat = np.array([f.lat for f in fixes], dtype=float)
    present_zones = {places.zone_of[k] for k in inside if k in places.zone_of}
    crossings: list[Crossing] = []
    for i, zone in enumerate(places.zones):
        if i not in present_zones and not any(zone.holds(a, b) for a, b in zip(lon, lat,
                                                                               strict=True)):
            continue
        xy = zone.project(lon, lat)
        metric = [Fix(f.ts, float(x), float(y), f.accuracy_m)
                  for f, (x, y) in zip(fixes, xy, strict=True)]
        mine = {k for k in inside if places.zone_of.get(k) == i}
        after, found = zone.fences.track(mine, metric)
        inside -= mine - after
        inside |= after
        crossings += found
    # One time line across zones (a sort is stable: each zone's own order stays).
    crossings.sort(key=lambda c: c.ts)
    return crossings


def record_fixes(session: Session, member_id: int, fixes: Sequence[Any], *,
                 settings=None) -> list[GeofenceEvent]:
    """Judge a member's new fixes (objects with ts, lon, lat, accuracy_m) against the fences in
    time order; write the geofence events (source "fix") and presence in the caller's
    transaction and return the events. Fixes not newer than the member's cursor (module
    docstring) and unusable ones (naive time, non-finite or out-of-range numbers) are skipped."""
    usable = [f for f in fixes if _usable(f)]
    if not usable:
        return []
    cursor = _take_cursor(session, member_id)
    new = sorted((f for f in usable if f.ts > cursor), key=lambda f: f.ts)
    if not new:
        return []
    places = atlas(session, settings)
    before = _presence(session, member_id)
    inside = set(before)
    # Places whose fence is gone (deleted, or renamed) are no longer anywhere to be inside.
    inside -= {k for k in before if k not in places.zone_of}
    crossings = _crossings(places, inside, new)
    entered_at = {c.key: c.ts for c in crossings if c.event == ENTER}
    _settle(session, member_id, before, inside, entered_at)
    _move_cursor(session, member_id, new[-1].ts)
    events = _events(session, member_id, crossings, "fix")
    session.flush()
    return events


def record_transition(session: Session, member_id: int, *, desc: str, event: str, ts: datetime,
                      lon: float | None = None, lat: float | None = None,
                      settings=None) -> GeofenceEvent | None:
    """An OwnTracks `transition` (the phone entered or left its region `desc`): the event
    (source "transition"), or None when `desc` names no village or shelter (or `event` is
    neither enter nor leave). Every transition is recorded as the phone reported it; one newer
    than the member's cursor also sets presence (so fixes do not report that crossing again)."""
    if (event not in (ENTER, LEAVE) or not isinstance(desc, str) or len(desc) > MAX_DESC
            or not isinstance(ts, datetime) or ts.tzinfo is None):
        return None
    places = atlas(session, settings)
    key = places.match(desc, lon, lat)
    if key is None:
        return None
    cursor = _take_cursor(session, member_id)
    if ts >= cursor:
        before = _presence(session, member_id)
        after = set(before)
        if event == ENTER:
            after.add(key)
        else:
            after.discard(key)
        entered = {key: ts} if event == ENTER and key not in before else {}
        _settle(session, member_id, before, after, entered)
        _move_cursor(session, member_id, ts)
    recorded, = _events(session, member_id, [Crossing(key[0], key[1], event, ts)],
                        "transition")
    session.flush()
    return recorded


# --- what the API and the live event say -------------------------------------------------------

def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def item(event: GeofenceEvent, member_code: str | None) -> dict[str, Any]:
    """An event as `GET /api/v1/geofence-events` lists it."""
    return {"id": event.id, "member": member_code, "place": event.place,
            "place_type": event.place_type, "event": event.event, "ts": _iso(event.ts),
            "source": event.source}


def event_payload(event: GeofenceEvent) -> dict[str, Any]:
    """The `geofence` live event for an event record_fixes or record_transition returned (sent
    after the commit; no `id`: realtime.notify stamps its own)."""
    code = getattr(event, "member_code", None)
    if code is None:
        session = object_session(event)
        code = _member_code(session, event.member_id) if session is not None else None
    body = item(event, code)
    del body["id"]
    return body
