"""Geofence events from fixes and OwnTracks transitions, stored (both databases), and
`GET /api/v1/geofence-events`.

A small township in UTM zone 49N, in metres from an origin (shelter radius 150 m, margin 30 m):

    V1 (0, 0)-(1000, 1000) "上坝村"   │ V2 (1000, 0)-(2000, 1000) "下坝村"
      S1 at (500, 500) "上坝小学"     │   S2 at (1500, 500) "下坝小学"
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.events import FeatureChanged, feature_changed
from dispatch.positions import places
from dispatch.positions.models import GeofenceEvent, Presence
from dispatch.roster.models import Member
from maps import geo
from maps.models import Shelter, Township, Village

EPSG = 32649
ORIGIN = geo.to_metric(Point(109.05, 33.15), EPSG)
T0 = datetime(2026, 7, 27, 13, 0, tzinfo=UTC)


def lonlat(geom):
    """A geometry given in metres from the origin, in lon/lat."""
    from shapely import affinity

    return geo.to_lonlat(affinity.translate(geom, ORIGIN.x, ORIGIN.y), EPSG)


@dataclass(frozen=True)
class F:
    """A fix as the intake hands it over."""

    ts: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None


def fix(x: float, y: float, minute: float = 0, accuracy: float | None = None) -> F:
    point = lonlat(Point(x, y))
    return F(T0 + timedelta(minutes=minute), point.x, point.y, accuracy)


def _village(code, name, x0):
    return Village(code=code, name_zh=name, boundary=from_shape(
        MultiPolygon([lonlat(box(x0, 0, x0 + 1000, 1000))]), 4326),
        centre=from_shape(lonlat(Point(x0 + 500, 500)), 4326))


def _shelter(code, name, x, y=500.0):
    return Shelter(code=code, name_zh=name, kind="school",
                   location=from_shape(lonlat(Point(x, y)), 4326))


@pytest.fixture
def township(app):
    with db.transaction() as s:
        town = Township(code="T1", name_zh="上坝镇", epsg=EPSG, boundary=from_shape(
            MultiPolygon([lonlat(box(-500, -500, 2500, 1500))]), 4326))
        s.add(town)
        s.flush()
        villages = [_village("V1", "上坝村", 0), _village("V2", "下坝村", 1000)]
        shelters = [_shelter("S1", "上坝小学", 500), _shelter("S2", "下坝小学", 1500)]
        for feature in (*villages, *shelters):
            feature.township_id = town.id
        s.add_all([*villages, *shelters])


@pytest.fixture
def member(app):
    with db.transaction() as s:
        m = Member(code="M001", name="王强")
        s.add(m)
    return m.id


def record(member_id, *fixes):
    with db.transaction() as s:
        events = places.record_fixes(s, member_id, list(fixes))
    return [(e.place, e.event) for e in events], events


def presence(member_id):
    with db.transaction() as s:
        return {(p["place_type"], p["place"]) for p in places.places_inside(s, member_id)}


def stored(member_id):
    with db.transaction() as s:
        return [(e.place, e.event, e.source) for e in s.scalars(
            select(GeofenceEvent).where(GeofenceEvent.member_id == member_id)
            .order_by(GeofenceEvent.ts, GeofenceEvent.id))]


def test_walking_into_a_shelter_and_out_again(township, member):
    assert record(member, fix(-300, 500, 0)) == ([], [])
    found, events = record(member, fix(100, 500, 1))
    assert found == [("V1", "enter")]
    assert events[0].source == "fix" and events[0].ts == T0 + timedelta(minutes=1)
    found, _ = record(member, fix(400, 500, 2))  # 100 m from S1
    assert found == [("S1", "enter")]
    assert presence(member) == {("village", "V1"), ("shelter", "S1")}
    # 170 m from S1: inside the margin, still there.
    assert record(member, fix(330, 500, 3))[0] == []
    assert record(member, fix(310, 500, 4))[0] == [("S1", "leave")]
    assert presence(member) == {("village", "V1")}
    assert stored(member) == [("V1", "enter", "fix"), ("S1", "enter", "fix"),
                              ("S1", "leave", "fix")]


def test_crossing_from_one_village_to_the_next(township, member):
    record(member, fix(900, 100, 0))
    # Just over the shared edge: in V2 at once, still in V1 (within the margin).
    assert record(member, fix(1010, 100, 1))[0] == [("V2", "enter")]
    assert record(member, fix(1040, 100, 2))[0] == [("V1", "leave")]
    assert presence(member) == {("village", "V2")}


def test_jitter_at_an_edge_makes_one_enter(township, member):
    # Along V1's west edge, ±12 m across it, a fix every 10 s.
    offsets = [-12, 5, -3, 11, -8, 2, -11, 9, -1, 12, -6, 7] * 3
    fixes = [fix(offset, 100 + 20 * i, i / 6) for i, offset in enumerate(offsets)]
    for f in fixes:
        record(member, f)
    assert stored(member) == [("V1", "enter", "fix")]


def test_a_batch_is_taken_in_time_order(township, member):
    found, events = record(member, fix(-300, 500, 3), fix(500, 500, 2), fix(-300, 500, 1))
    assert found == [("V1", "enter"), ("S1", "enter"), ("S1", "leave"), ("V1", "leave")]
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert presence(member) == set()


def test_an_older_fix_does_not_flip_presence_back(township, member):
    record(member, fix(500, 500, 10))
    assert presence(member) == {("village", "V1"), ("shelter", "S1")}
    # A backlog from before (outside everything), and the same fix again: no events.
    assert record(member, fix(-800, 500, 5), fix(-800, 500, 9))[0] == []
    assert record(member, fix(-800, 500, 10))[0] == []
    assert presence(member) == {("village", "V1"), ("shelter", "S1")}
    # A batch mixing old and new: only the new ones are judged.
    assert record(member, fix(500, 500, 8), fix(-800, 500, 11))[0] == [
        ("S1", "leave"), ("V1", "leave")]
    assert presence(member) == set()
    assert [e for _, e, _ in stored(member)].count("enter") == 2


def test_poor_accuracy_flips_nothing_near_an_edge(township, member):
    record(member, fix(-300, 500, 0))
    assert record(member, fix(20, 500, 1, accuracy=500))[0] == []
    assert record(member, fix(20, 500, 2, accuracy=25))[0] == [("V1", "enter")]
    assert record(member, fix(-200, 500, 3, accuracy=500))[0] == []
    assert record(member, fix(-600, 500, 4, accuracy=500))[0] == [("V1", "leave")]


def test_unusable_fixes_are_skipped(township, member):
    good = fix(500, 500)
    naive = F(datetime(2026, 7, 27, 13, 0), good.lon, good.lat)
    bad = [naive, F(T0, float("nan"), 33.15), F(T0, 181.0, 33.15), F(T0, 109.05, 91.0),
           F(T0, True, 33.15), fix(500, 500, accuracy=float("inf")),
           fix(500, 500, accuracy=-5)]
    assert record(member, *bad) == ([], [])
    assert record(member) == ([], [])
    assert presence(member) == set()


def test_two_members_are_apart(township, member):
    with db.transaction() as s:
        other = Member(code="M002", name="李娜")
        s.add(other)
    record(member, fix(500, 500, 0))
    assert record(other.id, fix(1500, 500, 0))[0] == [("V2", "enter"), ("S2", "enter")]
    assert presence(member) == {("village", "V1"), ("shelter", "S1")}
    assert presence(other.id) == {("village", "V2"), ("shelter", "S2")}


def test_fences_follow_the_places(township, member, monkeypatch):
    record(member, fix(500, 900, 0))
    assert presence(member) == {("village", "V1")}
    # A place added (anywhere): fenced at once.
    with db.transaction() as s:
        s.add(_shelter("S3", "新安置点", 500, 950))
    assert record(member, fix(500, 900, 1))[0] == [("S3", "enter")]
    # A place deleted in this process (maps sends feature_changed): the member is no longer in
    # it, and no event says so.
    with db.transaction() as s:
        s.delete(s.scalar(select(Shelter).where(Shelter.code == "S3")))
    feature_changed.send(FeatureChanged("shelters", "delete", "S3"))
    assert record(member, fix(500, 900, 2))[0] == []
    assert presence(member) == {("village", "V1")}
    # A shelter moved by another process (no signal here): fenced anew once the places' key is
    # read again (every KEY_CHECK_S; at once here).
    with db.transaction() as s:
        s.scalar(select(Shelter).where(Shelter.code == "S1")).location = from_shape(
            lonlat(Point(500, 780)), 4326)
    monkeypatch.setattr(places, "KEY_CHECK_S", 0.0)
    assert record(member, fix(500, 900, 3))[0] == [("S1", "enter")]


def test_two_devices_of_one_member_at_once_make_one_enter(app, township, member):
    # Two phones of the same member, in two threads (two connections), report at the same
    # moment: the cursor row makes one wait for the other's commit.
    barrier = threading.Barrier(2)
    found: list = []
    failures: list = []

    def report(minute):
        try:
            with app.app_context(), db.transaction() as s:
                barrier.wait(timeout=10)
                found.extend((e.place, e.event) for e in places.record_fixes(
                    s, member, [fix(500, 500 + minute, minute)]))
        except Exception as exc:  # pragma: no cover - shown by the assertion
            failures.append(exc)

    threads = [threading.Thread(target=report, args=(m,)) for m in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert sorted(found) == [("S1", "enter"), ("V1", "enter")]
    assert presence(member) == {("village", "V1"), ("shelter", "S1")}


def test_the_cursor_is_not_a_place(township, member):
    record(member, fix(-300, 500, 0))
    assert presence(member) == set()
    with db.transaction() as s:
        cursor = s.scalar(select(Presence).where(Presence.member_id == member))
        assert (cursor.place_type, cursor.place, cursor.since) == ("cursor", "", T0)


# --- OwnTracks transitions ------------------------------------------------------------------

def transition(member_id, desc, event, minute, **position):
    with db.transaction() as s:
        found = places.record_transition(s, member_id, desc=desc, event=event,
                                         ts=T0 + timedelta(minutes=minute), **position)
    return None if found is None else (found.place, found.event, found.source)


@pytest.mark.parametrize("desc", ["S1", "s1", " S1 ", "上坝小学"])
def test_a_transition_names_a_place_by_code_or_name(township, member, desc):
    assert transition(member, desc, "enter", 0) == ("S1", "enter", "transition")
    assert presence(member) == {("shelter", "S1")}


@pytest.mark.parametrize(("desc", "event"), [
    ("Home", "enter"), ("", "enter"), ("S1", "dwell"), ("S1", "ENTER"), ("x" * 500, "enter")])
def test_unknown_regions_and_events_are_none(township, member, desc, event):
    assert transition(member, desc, event, 0) is None
    assert stored(member) == [] and presence(member) == set()


def test_transitions_keep_presence_consistent_with_fixes(township, member):
    assert transition(member, "S1", "enter", 0) == ("S1", "enter", "transition")
    # Fixes inside S1 say nothing new; the village is entered by the fix.
    assert record(member, fix(500, 520, 1))[0] == [("V1", "enter")]
    assert transition(member, "s1", "leave", 2) == ("S1", "leave", "transition")
    assert presence(member) == {("village", "V1")}
    # A transition older than the newest fix is recorded but changes nothing.
    assert transition(member, "S1", "enter", 1.5) == ("S1", "enter", "transition")
    assert presence(member) == {("village", "V1")}
    # Nor may a fix older than the newest transition.
    assert record(member, fix(500, 500, 1.8))[0] == []
    assert stored(member) == [("S1", "enter", "transition"), ("V1", "enter", "fix"),
                              ("S1", "enter", "transition"), ("S1", "leave", "transition")]


def test_a_name_used_twice_is_told_apart_by_position(township, member):
    with db.transaction() as s:
        s.add(_shelter("S9", "上坝小学", 1800, 900))  # a second school of the same name
    assert transition(member, "上坝小学", "enter", 0) is None
    assert transition(member, "上坝小学", "enter", 0, lon=181.0, lat=33.15) is None
    assert transition(member, "上坝小学", "enter", 0, lon=float("nan"), lat=33.15) is None
    near_s9 = lonlat(Point(1750, 900))
    assert transition(member, "上坝小学", "enter", 1, lon=near_s9.x, lat=near_s9.y) == (
        "S9", "enter", "transition")


def test_event_payload(township, member):
    _, events = record(member, fix(500, 500, 0))
    payload = places.event_payload(events[0])
    assert payload == {"member": "M001", "place": payload["place"],
                       "place_type": payload["place_type"], "event": "enter",
                       "ts": "2026-07-27T13:00:00Z", "source": "fix"}
    assert {(p["place_type"], p["place"]) for p in map(places.event_payload, events)} == {
        ("village", "V1"), ("shelter", "S1")}
    # An event read back from the database (no code kept on it): looked up.
    with db.transaction() as s:
        again = s.get(GeofenceEvent, events[0].id)
        assert places.event_payload(again)["member"] == "M001"


def test_a_member_walks_into_a_demo_shelter(app, member):
    from geoalchemy2.shape import to_shape

    from maps import demo, service

    with db.transaction() as s:
        service.load_demo_township(s, demo.build_township(), actor="test")
    with db.transaction() as s:
        epsg = s.scalar(select(Township.epsg))
        shelter = s.scalar(select(Shelter).order_by(Shelter.code).limit(1))
        centre = geo.to_metric(to_shape(shelter.location), epsg)
    far = geo.to_lonlat(Point(centre.x + 2000, centre.y), epsg)
    near = geo.to_lonlat(Point(centre.x + 50, centre.y), epsg)
    with db.transaction() as s:
        places.record_fixes(s, member, [F(T0, far.x, far.y)])
        found = places.record_fixes(s, member, [F(T0 + timedelta(minutes=5), near.x, near.y)])
    assert ("shelter", shelter.code, "enter") in {(e.place_type, e.place, e.event)
                                                  for e in found}
    assert ("shelter", shelter.code) in presence(member)


# --- batches: every member of one intake transaction at once --------------------------------------

EPSG_EAST = 32650
ORIGIN_EAST = geo.to_metric(Point(117.05, 33.15), EPSG_EAST)


def lonlat_east(geom):
    """A geometry given in metres from the east township's origin (UTM zone 50N), in lon/lat."""
    from shapely import affinity

    return geo.to_lonlat(affinity.translate(geom, ORIGIN_EAST.x, ORIGIN_EAST.y), EPSG_EAST)


def fix_east(x: float, y: float, minute: float = 0, accuracy: float | None = None) -> F:
    point = lonlat_east(Point(x, y))
    return F(T0 + timedelta(minutes=minute), point.x, point.y, accuracy)


@pytest.fixture
def east(township):
    """A second township in another UTM zone (so another zone of fences): V3 (0, 0)-(1000, 1000)
    "东坝村" in metres from 117.05° E, 33.15° N."""
    with db.transaction() as s:
        town = Township(code="T2", name_zh="东坝镇", epsg=EPSG_EAST, boundary=from_shape(
            MultiPolygon([lonlat_east(box(-500, -500, 1500, 1500))]), 4326))
        s.add(town)
        s.flush()
        s.add(Village(code="V3", name_zh="东坝村", township_id=town.id, boundary=from_shape(
            MultiPolygon([lonlat_east(box(0, 0, 1000, 1000))]), 4326),
            centre=from_shape(lonlat_east(Point(500, 500)), 4326)))


def add_members(*codes: str) -> list[int]:
    with db.transaction() as s:
        added = [Member(code=code, name=code) for code in codes]
        s.add_all(added)
    return [m.id for m in added]


def record_all(fixes_by_member):
    """One batch; each member's (place, event) pairs, and the events in the order returned."""
    with db.transaction() as s:
        events = places.record_batch(s, fixes_by_member)
    found = {member_id: [] for member_id in fixes_by_member}
    for event in events:
        found[event.member_id].append((event.place, event.event))
    return found, events


def cursor(member_id):
    with db.transaction() as s:
        return s.scalar(select(Presence.since).where(Presence.member_id == member_id,
                                                     Presence.place_type == "cursor"))


V1, S1, V2, S2, V3 = (("village", "V1"), ("shelter", "S1"), ("village", "V2"),
                      ("shelter", "S2"), ("village", "V3"))


def entered(member_id):
    with db.transaction() as s:
        return {(p["place_type"], p["place"]): p["since"] for p in places.places_inside(
            s, member_id)}


def test_members_of_one_batch_each_cross_their_own_places(township):
    a, b, c, d, e = add_members("A01", "A02", "A03", "A04", "A05")
    record_all({a: [fix(500, 900, 0)], b: [fix(-300, 500, 0)], c: [fix(1500, 500, 0)],
                e: [fix(500, 500, 0)]})
    assert [presence(m) for m in (a, b, c, e)] == [{V1}, set(), {V2, S2}, {V1, S1}]
    # Given in no particular order; d reports twice (into V2, then over the edge into V1); e
    # walks out of V1 and back in.
    found, events = record_all({
        e: [fix(500, 500, 2), fix(-300, 500, 1)], c: [fix(1500, 900, 1)],
        a: [fix(-300, 500, 1)], b: [fix(500, 500, 1)], d: [fix(900, 100, 2), fix(1040, 100, 1)]})
    assert found == {a: [("V1", "leave")], b: [("V1", "enter"), ("S1", "enter")],
                     c: [("S2", "leave")],
                     d: [("V2", "enter"), ("V2", "leave"), ("V1", "enter")],
                     e: [("S1", "leave"), ("V1", "leave"), ("V1", "enter"), ("S1", "enter")]}
    assert [ev.member_id for ev in events] == sorted(ev.member_id for ev in events)
    assert {ev.member_id: ev.member_code for ev in events} == {
        a: "A01", b: "A02", c: "A03", d: "A04", e: "A05"}
    assert [presence(m) for m in (a, b, c, d)] == [set(), {V1, S1}, {V2}, {V1}]
    assert entered(c) == {V2: T0}
    assert entered(e) == {V1: T0 + timedelta(minutes=2), S1: T0 + timedelta(minutes=2)}
    assert [cursor(m) for m in (a, b, c, d, e)] == [
        T0 + timedelta(minutes=m) for m in (1, 1, 1, 2, 2)]


def test_one_members_backlog_beside_anothers_new_fixes(township):
    a, b = add_members("A01", "A02")
    record_all({a: [fix(500, 500, 10)]})
    # a's fixes are behind its cursor, b's (just as old) are b's first.
    found, _ = record_all({a: [fix(-800, 500, 5), fix(-800, 500, 10)], b: [fix(500, 500, 5)]})
    assert found == {a: [], b: [("V1", "enter"), ("S1", "enter")]}
    assert presence(a) == presence(b) == {V1, S1}
    assert (cursor(a), cursor(b)) == (T0 + timedelta(minutes=10), T0 + timedelta(minutes=5))
    # Old and new in a's list, only old in b's: a's new one is judged alone.
    found, _ = record_all({a: [fix(500, 500, 8), fix(-800, 500, 11)], b: [fix(-800, 500, 4)]})
    assert found == {a: [("S1", "leave"), ("V1", "leave")], b: []}
    assert (presence(a), presence(b)) == (set(), {V1, S1})
    assert (cursor(a), cursor(b)) == (T0 + timedelta(minutes=11), T0 + timedelta(minutes=5))


def test_presence_in_one_zone_and_fixes_in_another(east):
    a, b, c = add_members("A01", "A02", "A03")
    record_all({a: [fix(500, 900, 0)], b: [fix_east(500, 500, 0)], c: [fix(1500, 900, 0)]})
    assert (presence(a), presence(b), presence(c)) == ({V1}, {V3}, {V2})
    # a and b swap zones; c stays. Each is judged in the zone of its fixes and the zone of its
    # presence (the western zone, EPSG 32649, first at the same time).
    found, _ = record_all({a: [fix_east(500, 500, 1)], b: [fix(500, 900, 1)],
                           c: [fix(1500, 880, 1)]})
    assert found == {a: [("V1", "leave"), ("V3", "enter")],
                     b: [("V1", "enter"), ("V3", "leave")], c: []}
    assert (presence(a), presence(b), presence(c)) == ({V3}, {V1}, {V2})


def _random_fix(rng: random.Random, round_: int) -> F:
    minute = round_ * 10 + rng.uniform(-15, 10)  # some behind the cursor
    accuracy = rng.choice([None, 5.0, 25.0, 60.0, 400.0])
    if rng.random() < 0.05:  # unusable: a naive time
        return F((T0 + timedelta(minutes=minute)).replace(tzinfo=None), 109.05, 33.15)
    if rng.random() < 0.2:
        return fix_east(rng.uniform(-400, 1400), rng.uniform(-400, 1400), minute, accuracy)
    return fix(rng.uniform(-400, 2400), rng.uniform(-300, 1300), minute, accuracy)


@pytest.mark.parametrize("chunk", [places.IN_CHUNK, 2])
def test_a_batch_judges_as_member_by_member(east, monkeypatch, chunk):
    # chunk 2: the presence, deletion and member-code reads span several IN lists.
    monkeypatch.setattr(places, "IN_CHUNK", chunk)
    rng = random.Random(21)
    batched = add_members(*(f"B{i:02d}" for i in range(8)))
    alone = add_members(*(f"S{i:02d}" for i in range(8)))

    def summary(events, ids):
        return [(ids.index(e.member_id), e.member_code[1:], e.place_type, e.place, e.event,
                 e.ts, e.source) for e in events]

    crossings = 0
    for round_ in range(15):
        fixes = {i: [_random_fix(rng, round_) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
                 for i in range(8)}
        with db.transaction() as s:
            got = summary(places.record_batch(
                s, {batched[i]: fs for i, fs in reversed(fixes.items())}), batched)
        with db.transaction() as s:
            want = summary([e for i, fs in fixes.items()
                            for e in places.record_fixes(s, alone[i], fs)], alone)
        assert got == want
        crossings += len(got)
    assert crossings > 20  # the walk crossed plenty of fences
    with db.transaction() as s:
        for mine, theirs in zip(batched, alone, strict=True):
            assert places.places_inside(s, mine) == places.places_inside(s, theirs)
    assert [cursor(m) for m in batched] == [cursor(m) for m in alone]


def test_two_batches_sharing_members_at_once(app, township):
    # Two transactions (two connections) take the same members' cursors, each given them in
    # another order: both lock in member order, so one waits for the other (no deadlock).
    a, b = add_members("A01", "A02")
    barrier = threading.Barrier(2)
    found: list = []
    failures: list = []

    def report(order, minute):
        try:
            with app.app_context(), db.transaction() as s:
                barrier.wait(timeout=10)
                found.extend((e.member_id, e.place, e.event) for e in places.record_batch(
                    s, {m: [fix(500, 500 + minute, minute)] for m in order}))
        except Exception as exc:  # pragma: no cover - shown by the assertion
            failures.append(exc)

    threads = [threading.Thread(target=report, args=args)
               for args in (((a, b), 1), ((b, a), 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert sorted(found) == sorted((m, place, "enter") for m in (a, b) for place in ("V1", "S1"))
    assert presence(a) == presence(b) == {V1, S1}


# --- GET /api/v1/geofence-events ----------------------------------------------------------------

@pytest.fixture
def history(township, member):
    record(member, fix(-300, 500, 0))
    record(member, fix(500, 500, 1))  # V1, S1 enter
    record(member, fix(1500, 500, 2))  # S2, V2 enter; S1, V1 leave
    transition(member, "S2", "leave", 3)
    return member


def test_list_events(client, bearer, history):
    answer = client.get("/api/v1/geofence-events", headers=bearer("viewer"))
    assert answer.status_code == 200
    items = answer.json["items"]
    assert len(items) == 7
    assert items[0] == {"id": items[0]["id"], "member": "M001", "place": "S2",
                        "place_type": "shelter", "event": "leave",
                        "ts": "2026-07-27T13:03:00Z", "source": "transition"}
    assert [i["ts"] for i in items] == sorted((i["ts"] for i in items), reverse=True)


@pytest.mark.parametrize(("query", "expected"), [
    ("member=M001", 7),
    ("place=S1", 2),
    ("place=V9", 0),
    ("since=2026-07-27T13:01:00Z", 5),  # after since
    ("until=2026-07-27T21:01:00%2B08:00", 2),  # up to until
    ("until=2026-07-27T21:01:00 08:00", 2),  # an unescaped "+"
    ("since=2026-07-27T13:01:00Z&until=2026-07-27T13:02:00Z", 4),
    ("limit=3", 3),
    ("since=0001-01-01T00:00:00%2B08:00", 7),
    ("until=9999-12-31T23:59:59-08:00", 7),
])
def test_list_filters(client, bearer, history, query, expected):
    answer = client.get(f"/api/v1/geofence-events?{query}", headers=bearer("team_leader"))
    assert answer.status_code == 200, answer.json
    assert len(answer.json["items"]) == expected


@pytest.mark.parametrize(("query", "parameter"), [
    ("member=a/b", "member"), ("member=" + "M" * 33, "member"), ("place=%E4%B8%8A", "place"),
    ("since=yesterday", "since"), ("until=2026-07-27T13:00:00", "until"),
    ("since=1785000000", "since"),
    ("since=2026-07-27T13:02:00Z&until=2026-07-27T13:01:00Z", "since"),
    ("since=2026-07-27T13:02:00Z&until=2026-07-27T13:02:00Z", "since"),
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=-1", "limit"),
    ("limit=abc", "limit"), (f"limit={2**31}", "limit"), (f"limit={2**63}", "limit"),
    ("limit=%C2%B2", "limit"),
])
@pytest.mark.any_backend
def test_bad_parameters(client, bearer, query, parameter):
    answer = client.get(f"/api/v1/geofence-events?{query}", headers=bearer("viewer"))
    assert answer.status_code == 400
    assert answer.json["error"] == "bad_parameter" and answer.json["parameter"] == parameter


def test_an_unknown_member_is_404(client, bearer, member):
    answer = client.get("/api/v1/geofence-events?member=M999", headers=bearer("commander"))
    assert answer.status_code == 404 and answer.json["error"] == "no_member"


@pytest.mark.parametrize("role", ["commander", "dispatcher", "team_leader", "keeper", "viewer"])
@pytest.mark.any_backend
def test_every_person_role_reads(client, bearer, role):
    assert client.get("/api/v1/geofence-events", headers=bearer(role)).status_code == 200


@pytest.mark.any_backend
def test_strangers_and_gateways_are_refused(client):
    assert client.get("/api/v1/geofence-events").status_code == 401
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
    answer = client.get("/api/v1/geofence-events", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
