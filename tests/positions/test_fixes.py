"""dispatch.positions.fixes: every source decoded into one fix or a named refusal (issue #21
"Bad input": lat 91, lon 181, swapped, NaN, milliseconds, the future, unknown OwnTracks types)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.positions.fixes import (
    CHINA,
    KNOT_MPS,
    MAX_MESSAGE_BYTES,
    REASONS,
    Area,
    Fix,
    Ignored,
    Rejection,
    Transition,
    Window,
    battery_pct,
    decode_osmand,
    decode_owntracks,
    decode_tablet,
    decode_traccar,
    osmand_device,
    traccar_body,
)

NOW = datetime(2026, 7, 27, 14, 0, tzinfo=UTC)
TST = int((NOW - timedelta(minutes=5)).timestamp())
WHEN = datetime.fromtimestamp(TST, UTC)
# The demo township, 铁关镇, north of Ankang: about 109.0° E, 33.1° N.
TOWNSHIP = Area(108.9, 33.0, 109.2, 33.3).grown()
WINDOW = Window(NOW, max_future_s=300, max_age_days=7, area=TOWNSHIP)
LON, LAT = 109.05, 33.15


def owntracks(**fields) -> bytes:
    body = {"_type": "location", "lat": LAT, "lon": LON, "tst": TST, "tid": "wq"}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def reason(outcome) -> str:
    assert isinstance(outcome, Rejection), outcome
    return outcome.reason


# --- OwnTracks -----------------------------------------------------------------------------------

def test_an_owntracks_location_in_metres_metres_per_second_and_percent():
    fix = decode_owntracks(owntracks(acc=12, vel=36, batt=87, alt=410, cog=90), WINDOW)
    assert fix == Fix(WHEN, LON, LAT, accuracy_m=12.0, speed_mps=10.0, battery_pct=87.0)
    assert fix.ts.tzinfo is UTC


def test_optional_owntracks_fields_may_be_absent_or_nonsense():
    assert decode_owntracks(owntracks(), WINDOW) == Fix(WHEN, LON, LAT)
    nonsense = decode_owntracks(owntracks(acc=-1, vel="fast", batt=250), WINDOW)
    assert (nonsense.accuracy_m, nonsense.speed_mps, nonsense.battery_pct) == (None, None, None)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"lat": 91}, "out_of_range"),
    ({"lat": -90.5}, "out_of_range"),
    ({"lon": 181}, "out_of_range"),
    ({"lon": -180.01}, "out_of_range"),
    ({"lat": 0, "lon": 0}, "out_of_range"),                 # a phone with no fix
    ({"lat": LON, "lon": LAT}, "swapped"),                   # lon in lat's place
    ({"lat": ...}, "schema"),
    ({"lon": None}, "schema"),
    ({"lat": "33.15"}, "schema"),                            # numeric strings are no numbers
    ({"lat": True}, "schema"),
    ({"tst": ...}, "schema"),
    ({"tst": "1785160800"}, "bad_timestamp"),
    ({"tst": TST * 1000}, "bad_timestamp"),                  # milliseconds: refused
    ({"tst": -5}, "bad_timestamp"),
    ({"tst": TST + 3600}, "future"),
    ({"tst": TST - 8 * 86400}, "too_old"),
    ({"tst": 99_999_999_999}, "future"),                     # seconds: the year 5138
])
def test_bad_owntracks_locations_are_named(fields, expected):
    assert reason(decode_owntracks(owntracks(**fields), WINDOW)) == expected


def test_an_old_fix_within_the_window_is_a_fix():
    fix = decode_owntracks(owntracks(tst=TST - 6 * 86400), WINDOW)
    assert isinstance(fix, Fix) and fix.ts == WHEN - timedelta(days=6)


def test_a_swapped_fix_is_told_from_the_townships_extent():
    # Far from any township, lat/lon the other way round is still a place: judged by the area.
    west = Window(NOW, area=Area(79.9, 39.9, 80.1, 40.1).grown())
    assert isinstance(decode_owntracks(owntracks(lat=40.0, lon=80.0), west), Fix)
    assert reason(decode_owntracks(owntracks(lat=80.0, lon=40.0), west)) == "swapped"
    # Before any township is loaded, China's extent.
    assert reason(decode_owntracks(owntracks(lat=LON, lon=LAT), Window(NOW))) == "swapped"
    assert Window(NOW).area == CHINA


@pytest.mark.parametrize(("payload", "expected"), [
    (b"{not json", "bad_json"),
    (b'{"_type": "location", "lat": NaN, "lon": 109, "tst": 1}', "bad_json"),
    (b'{"_type": "location", "_type": "card"}', "bad_json"),            # duplicate key
    (b"\xff\xfe", "bad_encoding"),
    (b"[1, 2]", "schema"),
    (b'{"lat": 33.1, "lon": 109.0, "tst": 1}', "schema"),               # no _type
    (b'{"_type": 5}', "schema"),
    (b'{"_type": "location", "lat": 1e400, "lon": 109, "tst": 1}', "not_finite"),
    (b" " * (MAX_MESSAGE_BYTES + 1), "too_large"),
])
def test_malformed_owntracks_messages_are_named(payload, expected):
    assert reason(decode_owntracks(payload, WINDOW)) == expected


@pytest.mark.parametrize(("kind", "counted_as"), [
    ("encrypted", "encrypted"), ("waypoint", "waypoint"), ("waypoints", "waypoints"),
    ("card", "card"), ("lwt", "lwt"), ("cmd", "cmd"), ("steps", "steps"), ("status", "status"),
    ("beacon", "beacon"), ("something-new", "other"),
])
def test_other_owntracks_types_are_ignored_not_errors(kind, counted_as):
    payload = json.dumps({"_type": kind, "data": "Zm9v", "tst": TST}).encode()
    assert decode_owntracks(payload, WINDOW) == Ignored(counted_as)


def test_an_empty_message_clears_a_retained_location_and_is_ignored():
    assert decode_owntracks(b"", WINDOW) == Ignored("empty")


def test_an_owntracks_transition():
    payload = json.dumps({"_type": "transition", "event": "enter", "desc": "S01 安置点",
                          "tst": TST, "wtst": TST - 999, "lat": LAT, "lon": LON, "acc": 20,
                          "t": "c", "tid": "wq"}).encode()
    assert decode_owntracks(payload, WINDOW) == Transition("enter", "S01 安置点", WHEN, LON, LAT,
                                                           20.0)
    bare = json.dumps({"_type": "transition", "event": "leave", "desc": "V01",
                       "tst": TST}).encode()
    assert decode_owntracks(bare, WINDOW) == Transition("leave", "V01", WHEN)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"event": "exit"}, "schema"),
    ({"desc": ""}, "schema"),
    ({"desc": None}, "schema"),
    ({"desc": 7}, "schema"),
    ({"tst": TST * 1000}, "bad_timestamp"),
    ({"lat": 91}, "out_of_range"),
])
def test_bad_transitions_are_named(fields, expected):
    body = {"_type": "transition", "event": "enter", "desc": "S01", "tst": TST, "lat": LAT,
            "lon": LON}
    body.update(fields)
    assert reason(decode_owntracks(json.dumps(body).encode(), WINDOW)) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_an_outcome(payload):
    outcome = decode_owntracks(payload, WINDOW)
    assert isinstance(outcome, Fix | Transition | Ignored | Rejection)
    if isinstance(outcome, Rejection):
        assert outcome.reason in REASONS


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["_type", "lat", "lon", "tst", "acc", "vel", "batt"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                 st.text(max_size=5), st.just("location"))))
def test_any_owntracks_object_decodes_to_an_outcome(body):
    try:
        payload = json.dumps(body, allow_nan=False).encode()
    except ValueError:
        return
    outcome = decode_owntracks(payload, WINDOW)
    if isinstance(outcome, Fix):
        assert -90 <= outcome.lat <= 90 and -180 <= outcome.lon <= 180
        assert math.isfinite(outcome.lat) and math.isfinite(outcome.lon)


# --- OsmAnd / Traccar Client's query fields ------------------------------------------------------

def osmand(**fields) -> dict[str, str]:
    params = {"id": "abc", "lat": str(LAT), "lon": str(LON), "timestamp": str(TST)}
    params.update(fields)
    return {k: v for k, v in params.items() if v is not ...}


def test_an_osmand_fix_in_knots_becomes_metres_per_second():
    fix = decode_osmand(osmand(speed="10", accuracy="8.5", batt="64", bearing="90",
                               altitude="400"), WINDOW)
    assert fix == Fix(WHEN, LON, LAT, accuracy_m=8.5, speed_mps=pytest.approx(10 * KNOT_MPS),
                      battery_pct=64.0)


@pytest.mark.parametrize(("timestamp", "expected"), [
    (str(TST), WHEN),                                        # Traccar Client: seconds
    (str(TST * 1000), WHEN),                                 # OsmAnd's {2}: milliseconds
    (WHEN.isoformat(), WHEN),
    (WHEN.strftime("%Y-%m-%d %H:%M:%S+00:00"), WHEN),        # a space for the T
    (..., NOW),                                              # none given: the hub's clock
])
def test_osmand_timestamps(timestamp, expected):
    assert decode_osmand(osmand(timestamp=timestamp), WINDOW).ts == expected


@pytest.mark.parametrize(("fields", "expected"), [
    ({"lat": "91"}, "out_of_range"),
    ({"lon": "181"}, "out_of_range"),
    ({"lat": str(LON), "lon": str(LAT)}, "swapped"),
    ({"lat": "NaN"}, "not_finite"),
    ({"lon": "inf"}, "not_finite"),
    ({"lat": "north"}, "schema"),
    ({"lat": ...}, "schema"),
    ({"lat": "1" * 80}, "schema"),
    ({"timestamp": "2026-07-27 13:55:00"}, "bad_timestamp"),     # no offset
    ({"timestamp": "yesterday"}, "bad_timestamp"),
    ({"timestamp": str(TST + 3600)}, "future"),
    ({"timestamp": str(TST - 30 * 86400)}, "too_old"),
    ({"timestamp": "1" * 30}, "future"),
    ({"speed": "fast"}, "schema"),
])
def test_bad_osmand_fixes_are_named(fields, expected):
    assert reason(decode_osmand(osmand(**fields), WINDOW)) == expected


def test_osmand_location_field_and_device_names():
    fix = decode_osmand({"location": f"{LAT},{LON}", "timestamp": str(TST)}, WINDOW)
    assert (fix.lon, fix.lat) == (LON, LAT)
    assert osmand_device({"deviceid": "x1"}) == "x1"
    assert osmand_device({"id": "x2", "deviceid": "x1"}) == "x2"
    assert osmand_device({"lat": "1"}) is None


# --- Traccar Client's JSON -----------------------------------------------------------------------

def traccar(**location) -> bytes:
    body = {"timestamp": WHEN.isoformat().replace("+00:00", ".000Z"),
            "coords": {"latitude": LAT, "longitude": LON, "accuracy": 6.5, "speed": 2.5,
                       "heading": 180, "altitude": 400},
            "is_moving": True, "odometer": 1200, "event": "motionchange",
            "battery": {"level": 0.42, "is_charging": False},
            "activity": {"type": "walking"}, "extras": {},
            "_": f"&id=abc&lat={LAT}&lon={LON}&timestamp={WHEN.isoformat()}&"}
    body.update(location)
    return json.dumps({"location": body, "device_id": "abc"}).encode()


def test_a_traccar_client_body():
    device, location, refused = traccar_body(traccar())
    assert (device, refused) == ("abc", None)
    assert decode_traccar(location, WINDOW) == [
        Fix(WHEN, LON, LAT, accuracy_m=6.5, speed_mps=2.5, battery_pct=42.0)]


def test_traccar_unknowns_are_minus_one():
    _, location, _ = traccar_body(traccar(battery={"level": -1, "is_charging": False},
                                          coords={"latitude": LAT, "longitude": LON,
                                                  "accuracy": -1, "speed": -1, "heading": -1}))
    fix = decode_traccar(location, WINDOW)[0]
    assert (fix.battery_pct, fix.speed_mps, fix.accuracy_m) == (None, None, None)


def test_a_traccar_batch_gives_one_result_per_location():
    one = json.loads(traccar())["location"]
    bad = {**one, "coords": {"latitude": 91, "longitude": LON}}
    results = decode_traccar([one, bad, "x"], WINDOW)
    assert isinstance(results[0], Fix)
    assert [reason(r) for r in results[1:]] == ["out_of_range", "schema"]
    assert [reason(r) for r in decode_traccar([one] * 501, WINDOW)] == ["too_large"]


@pytest.mark.parametrize(("location", "expected"), [
    ({"timestamp": 1785160800}, "bad_timestamp"),
    ({"timestamp": "2026-07-27T13:55:00"}, "bad_timestamp"),
    ({"timestamp": None}, "schema"),
    ({"coords": None}, "schema"),
    ({"coords": {"latitude": LON, "longitude": LAT}}, "swapped"),
    ({"coords": {"latitude": "33", "longitude": LON}}, "schema"),
])
def test_bad_traccar_locations_are_named(location, expected):
    _, body, _ = traccar_body(traccar(**location))
    assert [reason(r) for r in decode_traccar(body, WINDOW)] == [expected]


@pytest.mark.parametrize(("payload", "device", "expected"), [
    (b"{", None, "bad_json"),
    (b'{"device_id": "abc"}', "abc", "schema"),
    (b'{"device_id": 12345678, "location": 1}', "12345678", None),
    (b"[]", None, "schema"),
])
def test_traccar_bodies_that_cannot_be_read(payload, device, expected):
    named, _, refused = traccar_body(payload)
    assert named == device
    assert (refused.reason if refused else None) == expected


# --- the tablet ----------------------------------------------------------------------------------

def test_the_tablets_fix_with_the_battery_apis_level():
    data = {"lat": LAT, "lon": LON, "ts": WHEN.isoformat(), "accuracy": 15, "speed": 1.2,
            "battery": 0.8}
    assert decode_tablet(data, WINDOW) == Fix(WHEN, LON, LAT, 15.0, 1.2, 80.0)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"lat": math.nan}, "not_finite"),
    ({"lon": math.inf}, "not_finite"),
    ({"lat": 91}, "out_of_range"),
    ({"ts": None}, "schema"),
    ({"ts": int(WHEN.timestamp() * 1000)}, "bad_timestamp"),
    ({"ts": "2026-07-27T13:55:00"}, "bad_timestamp"),
    ({"ts": (NOW + timedelta(hours=1)).isoformat()}, "future"),
])
def test_bad_tablet_fixes_are_named(fields, expected):
    data = {"lat": LAT, "lon": LON, "ts": WHEN.isoformat()}
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    assert reason(decode_tablet(data, WINDOW)) == expected


@pytest.mark.parametrize("data", [None, [], "x", 5])
def test_a_tablet_event_that_is_no_object(data):
    assert reason(decode_tablet(data, WINDOW)) == "schema"


@pytest.mark.parametrize(("value", "fraction", "expected"), [
    (0.42, True, 42.0), (1, True, 100.0), (0, True, 0.0), (87, True, 87.0),
    (-1, True, None), (-1, False, None), (87, False, 87.0), (0.5, False, 0.5),
    (101, False, None), (math.nan, True, None), ("50", False, None), (True, False, None),
])
def test_battery_forms(value, fraction, expected):
    assert battery_pct(value, fraction=fraction) == expected
