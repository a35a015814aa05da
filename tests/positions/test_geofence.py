"""Geofences with hysteresis (pure): a village polygon and a shelter circle in metres, margin 30 m.

    village V1: the square (0, 0)-(1000, 1000)        shelter S1: radius 150 m around (500, 500)
    village V2: two squares, (2000, 0)-(2200, 200) and (2400, 0)-(2600, 200)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, box

from dispatch.positions.geofence import ENTER, LEAVE, Crossing, Fence, Fences, Fix

MARGIN = 30.0
RADIUS = 150.0
V1, V2, S1 = ("village", "V1"), ("village", "V2"), ("shelter", "S1")
T0 = datetime(2026, 7, 27, 13, 0, tzinfo=UTC)

FENCES = Fences([
    Fence("village", "V1", box(0, 0, 1000, 1000), name="上坝村"),
    Fence("village", "V2", MultiPolygon([box(2000, 0, 2200, 200), box(2400, 0, 2600, 200)])),
    Fence("shelter", "S1", Point(500, 500), RADIUS, name="上坝小学"),
], MARGIN)


def fix(x: float, y: float, accuracy: float | None = None, minute: int = 0) -> Fix:
    return Fix(T0 + timedelta(minutes=minute), x, y, accuracy)


def events(crossings: list[Crossing]) -> list[tuple[str, str]]:
    return [(c.place, c.event) for c in crossings]


@pytest.mark.parametrize(("inside", "at", "expected"), [
    # Outside: enter once inside, however little.
    (set(), fix(1001, 500), []),
    (set(), fix(999, 500), [("V1", ENTER)]),
    (set(), fix(1000, 500), [("V1", ENTER)]),  # on the edge is inside
    # Inside: leave only farther than the margin outside.
    ({V1}, fix(1029, 500), []),
    ({V1}, fix(1030, 500), []),
    ({V1}, fix(1031, 500), [("V1", LEAVE)]),
    ({V1}, fix(500, -40), [("V1", LEAVE)]),
    # Unknown accuracy counts as exact; an accuracy within the margin changes nothing.
    (set(), fix(995, 500, None), [("V1", ENTER)]),
    (set(), fix(995, 500, 30), [("V1", ENTER)]),
    ({V1}, fix(1031, 500, 30), [("V1", LEAVE)]),
    # Worse than the margin: enter only `accuracy - margin` inside, leave only beyond accuracy.
    (set(), fix(985, 500, 50), []),  # 15 m inside, needs 20
    (set(), fix(980, 500, 50), [("V1", ENTER)]),
    ({V1}, fix(1050, 500, 100), []),
    ({V1}, fix(1100, 500, 100), []),
    ({V1}, fix(1101, 500, 100), [("V1", LEAVE)]),
    # A cell-tower fix flips nothing near any edge.
    (set(), fix(300, 300, 2000), []),
    ({V1}, fix(1500, 500, 2000), []),
    # A multipolygon: either part is the village, the gap between them is not.
    (set(), fix(2500, 100), [("V2", ENTER)]),
    (set(), fix(2300, 100), []),
    ({V2}, fix(2300, 100), [("V2", LEAVE)]),  # 100 m from either part
    ({V2}, fix(2220, 100), []),
])
def test_village_polygon(inside, at, expected):
    now = set(inside)
    assert events(FENCES.step(now, at)) == expected
    entered = {("village", p) for p, e in expected if e == ENTER}
    left = {("village", p) for p, e in expected if e == LEAVE}
    assert now == (set(inside) | entered) - left


@pytest.mark.parametrize(("inside", "at", "expected"), [
    (set(), fix(649, 500), [("S1", ENTER)]),
    (set(), fix(651, 500), []),
    (set(), fix(500, 350), [("S1", ENTER)]),  # on the circle
    ({S1}, fix(679, 500), []),  # 29 m out
    ({S1}, fix(500, 500 + 181), [("S1", LEAVE)]),
    # Accuracy worse than the margin: 100 m accuracy must be 70 m inside the circle.
    (set(), fix(500 + 90, 500, 100), []),
    (set(), fix(500 + 80, 500, 100), [("S1", ENTER)]),
    ({S1}, fix(500 + 240, 500, 100), []),
    ({S1}, fix(500 + 251, 500, 100), [("S1", LEAVE)]),
])
def test_shelter_circle(inside, at, expected):
    # The shelter lies in V1: keep V1 out of the way (inside it, deep in its middle).
    now = set(inside) | {V1}
    assert events(FENCES.step(now, at)) == expected
    assert (S1 in now) == (S1 in inside) ^ bool(expected)


def test_a_shelter_in_a_village_is_entered_with_it():
    now: set = set()
    assert sorted(events(FENCES.step(now, fix(500, 500)))) == [("S1", ENTER), ("V1", ENTER)]
    assert now == {V1, S1}


@pytest.mark.parametrize("accuracy", [math.nan, math.inf, -1.0])
def test_an_unusable_accuracy_flips_nothing(accuracy):
    now: set = set()
    assert FENCES.step(now, fix(500, 500, accuracy)) == []
    assert now == set()


@pytest.mark.parametrize(("x", "y"), [(math.nan, 500), (500, math.inf)])
def test_an_unusable_position_flips_nothing(x, y):
    now = {V1}
    assert FENCES.step(now, fix(x, y)) == []
    assert now == {V1}


def test_places_without_a_fence_are_left_alone():
    now = {("shelter", "GONE")}
    assert events(FENCES.step(now, fix(5000, 5000))) == []
    assert now == {("shelter", "GONE")}


def test_track_takes_fixes_in_time_order():
    # Sent newest first: out at 3, in at 2, out at 1.
    fixes = [fix(1200, 500, minute=3), fix(500, 900, minute=2), fix(1200, 500, minute=1)]
    inside, crossings = FENCES.track(set(), fixes)
    assert [(c.place, c.event, c.ts) for c in crossings] == [
        ("V1", ENTER, T0 + timedelta(minutes=2)), ("V1", LEAVE, T0 + timedelta(minutes=3))]
    assert inside == set()


def test_signed_distance():
    assert FENCES.signed_distance(V1, 990, 500) == pytest.approx(-10)
    assert FENCES.signed_distance(V1, 1000, 1040) == pytest.approx(40)
    assert FENCES.signed_distance(S1, 500, 500) == pytest.approx(-RADIUS)
    assert FENCES.signed_distance(S1, 500 + 200, 500) == pytest.approx(50)
    assert V1 in FENCES and ("village", "V9") not in FENCES and len(FENCES) == 3
    assert FENCES.fence(S1).name == "上坝小学"


@pytest.mark.parametrize("margin", [-1.0, math.nan, math.inf])
def test_a_bad_margin_is_refused(margin):
    with pytest.raises(ValueError, match="margin"):
        Fences([], margin)


def test_an_unknown_place_type_is_refused():
    with pytest.raises(ValueError, match="place type"):
        Fences([Fence("hazard", "H1", box(0, 0, 1, 1))], MARGIN)


# --- properties ---------------------------------------------------------------------------------

def _walk(steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Cumulative positions along an edge (t) with jitter across it (offset)."""
    t, out = 0.0, []
    for along, offset in steps:
        t = min(max(t + along, 0.0), 1.0)
        out.append((t, offset))
    return out


JITTER = st.lists(st.tuples(st.floats(-0.05, 0.05), st.floats(-MARGIN / 2, MARGIN / 2)),
                  min_size=1, max_size=60)
ACCURACY = st.one_of(st.none(), st.floats(0, 3 * MARGIN))


@settings(max_examples=100, deadline=None)
@given(steps=JITTER, accuracies=st.lists(ACCURACY, min_size=60, max_size=60),
       start_inside=st.booleans())
def test_jitter_along_a_village_edge_makes_at_most_one_enter(steps, accuracies, start_inside):
    # Along V1's east edge (x = 1000, y from 100 to 900), within ±margin/2 of it.
    fixes = [Fix(T0 + timedelta(seconds=10 * i), 1000 + offset, 100 + 800 * t, accuracies[i])
             for i, (t, offset) in enumerate(_walk(steps))]
    inside, crossings = FENCES.track({V1} if start_inside else set(), fixes)
    mine = [c.event for c in crossings if c.key == V1]
    assert mine.count(ENTER) <= 1 and mine.count(LEAVE) <= 1
    if start_inside:
        assert mine == [] and V1 in inside


@settings(max_examples=100, deadline=None)
@given(steps=JITTER, accuracies=st.lists(ACCURACY, min_size=60, max_size=60),
       start_inside=st.booleans())
def test_jitter_along_a_shelter_circle_makes_at_most_one_enter(steps, accuracies, start_inside):
    fixes = []
    for i, (t, offset) in enumerate(_walk(steps)):
        angle, r = 2 * math.pi * t, RADIUS + offset
        fixes.append(Fix(T0 + timedelta(seconds=10 * i), 500 + r * math.cos(angle),
                         500 + r * math.sin(angle), accuracies[i]))
    inside, crossings = FENCES.track({V1, S1} if start_inside else {V1}, fixes)
    mine = [c.event for c in crossings if c.key == S1]
    assert mine.count(ENTER) <= 1 and mine.count(LEAVE) <= 1
    assert V1 in inside  # never near V1's edge


@settings(max_examples=100, deadline=None)
@given(points=st.lists(st.tuples(st.floats(-500, 3000), st.floats(-500, 1500), ACCURACY),
                       min_size=1, max_size=40),
       start=st.sets(st.sampled_from([V1, V2, S1])))
def test_events_alternate_and_follow_the_rule(points, start):
    fixes = [Fix(T0 + timedelta(seconds=i), x, y, a) for i, (x, y, a) in enumerate(points)]
    inside, crossings = FENCES.track(start, fixes)
    by_ts = {f.ts: f for f in fixes}
    for key in (V1, V2, S1):
        state = key in start
        for crossing in (c for c in crossings if c.key == key):
            # enter only from outside, leave only from inside
            assert crossing.event == (LEAVE if state else ENTER)
            state = not state
            at = by_ts[crossing.ts]
            d = FENCES.signed_distance(key, at.x, at.y)
            a = at.accuracy_m or 0.0
            if crossing.event == ENTER:
                assert d <= min(0.0, MARGIN - a) + 1e-6
            else:
                assert d > max(MARGIN, a) - 1e-6
        assert (key in inside) == state
