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

A batch (`record_batch`: the intake's transaction, every member who reported in it) is judged
set-based, because a statement per member made the geofences 95 % of a 1,248-phone intake: one
upsert takes all the members' cursors (… ON CONFLICT DO UPDATE … RETURNING, rows in ascending
member id, the one order in which every writer here locks members, so two batches sharing
members wait instead of deadlocking); one SELECT per IN_CHUNK members reads their presence; each
zone projects the new fixes of every member it concerns in one call; the hysteresis then runs
per member, in time order, as for one member alone (`Fences.track`); presence changes are one
DELETE, one UPDATE and one INSERT for all members, the cursors move in one executemany, and the
events take their members' codes from one SELECT and are flushed once. `record_fixes` is the
batch of one member.

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
from sqlalchemy import Engine, bindparam, func, select
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

    def holds(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Which of the lon/lat points lie within the extent (may be inside a fence here)."""
        minx, miny, maxx, maxy = self.bounds
        return (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)

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

_PRESENCE = Presence.__table__
# Members per IN list: far below SQLite's 32,766 host parameters and PostgreSQL's 65,535.
IN_CHUNK = 5000


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start:start + IN_CHUNK]


def _cursor_upsert(dialect) -> Any:
    statement = dialect.insert(_PRESENCE)
    # A no-op update (since = since), so that RETURNING also gives the rows that were there.
    return statement.on_conflict_do_update(
        index_elements=["member_id", "place_type", "place"],
        set_={"since": _PRESENCE.c.since},
    ).returning(_PRESENCE.c.member_id, _PRESENCE.c.since)


# Built once: executed with many rows, SQLAlchemy sends them as multi-row statements
# ("insertmanyvalues") from one compiled form, in the rows' order.
_TAKE_CURSORS = {"postgresql": _cursor_upsert(postgresql), "sqlite": _cursor_upsert(sqlite)}
_MOVE_CURSOR = _PRESENCE.update().where(
    _PRESENCE.c.member_id == bindparam("cursor_member"), _PRESENCE.c.place_type == CURSOR[0],
    _PRESENCE.c.place == CURSOR[1], _PRESENCE.c.since < bindparam("cursor_ts"),
).values(since=bindparam("cursor_ts"))
_ENTER_AGAIN = _PRESENCE.update().where(_PRESENCE.c.id == bindparam("row_id")).values(
    since=bindparam("entered_at"))


def _take_cursors(session: Session, members: Iterable[int]) -> dict[int, datetime]:
    """The members' cursors, created at EPOCH if new, locked until the caller's commit. One
    upsert with the rows in ascending member order: every writer here locks members in that
    order, so two batches sharing members wait for each other instead of deadlocking."""
    rows = [{"member_id": m, "place_type": CURSOR[0], "place": CURSOR[1], "since": EPOCH}
            for m in sorted(members)]
    if not rows:
        return {}
    statement = _TAKE_CURSORS[session.get_bind().dialect.name]
    return dict(session.connection().execute(statement, rows).all())


def _move_cursors(session: Session, newest: dict[int, datetime]) -> None:
    """Each member's cursor forward to its newest judged fix or transition (never back)."""
    if newest:
        session.connection().execute(_MOVE_CURSOR, [
            {"cursor_member": m, "cursor_ts": ts} for m, ts in sorted(newest.items())])


# A member's presence rows: place -> (row id, entered at).
MemberPresence = dict[Key, tuple[int, datetime]]


def _presence(session: Session, members: Iterable[int]) -> dict[int, MemberPresence]:
    """The places each member is inside (rows of the cursor left out), read in one SELECT per
    IN_CHUNK members."""
    found: dict[int, MemberPresence] = {m: {} for m in members}
    for chunk in _chunks(sorted(found)):
        rows = session.connection().execute(select(
            _PRESENCE.c.member_id, _PRESENCE.c.place_type, _PRESENCE.c.place, _PRESENCE.c.id,
            _PRESENCE.c.since,
        ).where(_PRESENCE.c.member_id.in_(chunk), _PRESENCE.c.place_type.in_(
            geofence.PLACE_TYPES)))
        for member_id, place_type, place, row_id, since in rows:
            found[member_id][(place_type, place)] = (row_id, since)
    return found


def places_inside(session: Session, member_id: int) -> list[dict[str, Any]]:
    """The places a member is inside now, each with the time they entered."""
    return [{"place": key[1], "place_type": key[0], "since": since}
            for key, (_, since) in sorted(_presence(session, [member_id])[member_id].items())]


@dataclass(frozen=True)
class PresenceChange:
    """What one member's presence was, is now, and when each place was (re-)entered."""

    member_id: int
    before: MemberPresence
    after: set[Key]
    entered_at: dict[Key, datetime]


def _settle(session: Session, changes: Iterable[PresenceChange]) -> None:
    """Make the members' presence rows say `after` (entries at `entered_at`): at most one
    DELETE per IN_CHUNK rows, one UPDATE and one INSERT, each for every member at once."""
    gone: list[int] = []
    again: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    for change in changes:
        for key, (row_id, _) in change.before.items():
            if key not in change.after:
                gone.append(row_id)
            elif key in change.entered_at:  # left and entered again since
                again.append({"row_id": row_id, "entered_at": change.entered_at[key]})
        added += [{"member_id": change.member_id, "place_type": key[0], "place": key[1],
                   "since": change.entered_at[key]}
                  for key in sorted(change.after - change.before.keys())]
    connection = session.connection()
    for chunk in _chunks(gone):
        connection.execute(_PRESENCE.delete().where(_PRESENCE.c.id.in_(chunk)))
    if again:
        connection.execute(_ENTER_AGAIN, again)
    if added:
        connection.execute(_PRESENCE.insert(), added)


def _member_codes(session: Session, members: Iterable[int]) -> dict[int, str]:
    codes: dict[int, str] = {}
    for chunk in _chunks(sorted(set(members))):
        codes.update(session.execute(select(Member.id, Member.code).where(
            Member.id.in_(chunk))).all())
    return codes


def _events(session: Session, crossings: dict[int, list[Crossing]],
            source: str) -> list[GeofenceEvent]:
    """The events of every member's crossings (by member, then time), added to the session
    and flushed once; each keeps its member's code (read in one SELECT)."""
    events = [GeofenceEvent(member_id=member_id, place=c.place, place_type=c.place_type,
                            event=c.event, ts=c.ts, source=source)
              for member_id, found in sorted(crossings.items()) for c in found]
    if events:
        codes = _member_codes(session, (e.member_id for e in events))
        for event in events:
            # Kept on the object for event_payload after the caller's commit (no query then).
            event.member_code = codes.get(event.member_id)
        session.add_all(events)
        session.flush()
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


@dataclass
class Tracks:
    """The new fixes of a batch's members, one array of all of them: each member's (in time
    order) at offsets [starts[j], ends[j]), so a zone projects every member's at once."""

    members: list[int]
    fixes: list[Any]
    lon: np.ndarray
    lat: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    owner: np.ndarray  # the index in `members` of each fix

    @classmethod
    def of(cls, new: dict[int, list[Any]]) -> Tracks:
        members = sorted(new)
        counts = np.array([len(new[m]) for m in members], dtype=np.intp)
        fixes = [f for m in members for f in new[m]]
        ends = np.cumsum(counts)
        return cls(members, fixes, np.array([f.lon for f in fixes], dtype=float),
                   np.array([f.lat for f in fixes], dtype=float), ends - counts, ends,
                   np.repeat(np.arange(len(members)), counts))


def _touched(places: Atlas, i: int, tracks: Tracks, zones_in: list[set[int]]) -> np.ndarray:
    """Which members zone i concerns: a fix of theirs within its extent, or presence in it."""
    touched = np.zeros(len(tracks.members), dtype=bool)
    touched[tracks.owner[places.zones[i].holds(tracks.lon, tracks.lat)]] = True
    touched[[j for j, zones in enumerate(zones_in) if i in zones]] = True
    return touched


def _crossings(places: Atlas, inside: dict[int, set[Key]],
               tracks: Tracks) -> dict[int, list[Crossing]]:
    """Run each member's fixes (in time order) through every zone they or the member's
    presence touch, changing `inside`; one projection per zone for every member's fixes."""
    zones_in = [{places.zone_of[k] for k in inside[m] if k in places.zone_of}
                for m in tracks.members]
    found: dict[int, list[Crossing]] = {m: [] for m in tracks.members}
    for i, zone in enumerate(places.zones):
        touched = _touched(places, i, tracks, zones_in)
        if not touched.any():
            continue
        take = touched[tracks.owner]
        xy = np.zeros((len(tracks.fixes), 2))
        xy[take] = zone.project(tracks.lon[take], tracks.lat[take])
        for j in np.flatnonzero(touched).tolist():
            member_id, start, end = tracks.members[j], tracks.starts[j], tracks.ends[j]
            metric = [Fix(f.ts, x, y, f.accuracy_m)
                      for f, (x, y) in zip(tracks.fixes[start:end], xy[start:end].tolist(),
                                           strict=True)]
            mine = {k for k in inside[member_id] if places.zone_of.get(k) == i}
            after, crossed = zone.fences.track(mine, metric)
            inside[member_id] -= mine - after
            inside[member_id] |= after
            found[member_id] += crossed
    for crossed in found.values():
        # One time line across zones (a sort is stable: each zone's own order stays).
        crossed.sort(key=lambda c: c.ts)
    return found


def record_batch(session: Session, fixes_by_member: dict[int, Sequence[Any]], *,
                 settings=None) -> list[GeofenceEvent]:
    """Judge every member's new fixes (objects with ts, lon, lat, accuracy_m) against the
    fences, each member's in time order; write the geofence events (source "fix") and presence
    in the caller's transaction and return the events (by member, then time). Fixes not newer
    than their member's cursor (module docstring) and unusable ones (naive time, non-finite or
    out-of-range numbers) are skipped."""
    usable = {m: [f for f in fixes if _usable(f)] for m, fixes in fixes_by_member.items()}
    cursors = _take_cursors(session, [m for m, fixes in usable.items() if fixes])
    new = {m: sorted((f for f in usable[m] if f.ts > since), key=lambda f: f.ts)
           for m, since in cursors.items()}
    new = {m: fixes for m, fixes in new.items() if fixes}
    if not new:
        return []
    places = atlas(session, settings)
    before = _presence(session, new)
    # Places whose fence is gone (deleted, or renamed) are no longer anywhere to be inside.
    inside = {m: {k for k in before[m] if k in places.zone_of} for m in new}
    crossings = _crossings(places, inside, Tracks.of(new))
    _settle(session, [
        PresenceChange(m, before[m], inside[m],
                       {c.key: c.ts for c in crossings[m] if c.event == ENTER})
        for m in sorted(new)])
    _move_cursors(session, {m: fixes[-1].ts for m, fixes in new.items()})
    return _events(session, crossings, "fix")


def record_fixes(session: Session, member_id: int, fixes: Sequence[Any], *,
                 settings=None) -> list[GeofenceEvent]:
    """One member's new fixes: `record_batch` of that member alone."""
    return record_batch(session, {member_id: fixes}, settings=settings)


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
    if ts >= _take_cursors(session, [member_id])[member_id]:
        before = _presence(session, [member_id])[member_id]
        after = set(before)
        if event == ENTER:
            after.add(key)
        else:
            after.discard(key)
        entered = {key: ts} if event == ENTER and key not in before else {}
        _settle(session, [PresenceChange(member_id, before, after, entered)])
        _move_cursors(session, {member_id: ts})
    recorded, = _events(session, {member_id: [Crossing(key[0], key[1], event, ts)]},
                        "transition")
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
        code = (_member_codes(session, [event.member_id]).get(event.member_id)
                if session is not None else None)
    body = item(event, code)
    del body["id"]
    return body
