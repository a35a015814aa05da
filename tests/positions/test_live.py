"""`position` events: moved markers gathered per process and sent together, at most one event per
`positions.event_every_s` (dispatch.positions.live), to real Socket.IO clients in the office."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest

from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.realtime import NAMESPACE, socketio
from dispatch.core.settings import SettingsError, load_settings
from dispatch.positions import live
from tests.conftest import PASSWORD
from tests.positions.conftest import LAT, LON, ago, location

# Long enough that nothing held goes out by itself during a test: flush() sends it.
NEVER_S = 3600.0
# The coalescer's own tests (any_backend: SpatiaLite only) use the database only to sign the
# office socket in; the one through the intake runs on both.


def moved(member: str, ts: datetime, lon: float = LON, *, source: str = "owntracks") -> live.Moved:
    return live.Moved(member, f"队员{member}", "on_shift", ts, lon, LAT, 8.0, None, 50.0, source)


def position_events(socket) -> list[dict]:
    return [e["args"][0] for e in socket.get_received(NAMESPACE) if e["name"] == "position"]


def listed(event: dict) -> list[tuple[str, str]]:
    return [(p["member"], p["ts"]) for p in event["positions"]]


@pytest.fixture
def office(app, team):
    """A dispatcher's live connection by token (`.token` to connect again)."""
    with db.transaction() as s:
        user, _ = auth.create_user(s, "office-wall", "dispatcher", actor="test")
        auth.change_password(s, user, PASSWORD)
        token, _ = auth.issue_user_token(s, user, 600)
    socket = socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})
    socket.token = token
    socket.get_received(NAMESPACE)
    yield socket
    socket.disconnect(NAMESPACE)


@pytest.mark.any_backend
def test_the_first_marker_goes_at_once_and_a_window_sends_each_members_newest(app, office):
    coalescer = live.PositionCoalescer(app, NEVER_S)
    first, second, third = ago(minutes=3), ago(minutes=2), ago(minutes=1)
    coalescer.add([moved("W01", first)])
    [event] = position_events(office)
    assert listed(event) == [("W01", first.isoformat())]
    assert set(event) == {"id", "ts", "positions"}
    assert datetime.fromisoformat(event["ts"]) > first  # the event's own time, not the fix's
    assert event["positions"][0] == {
        "member": "W01", "name": "队员W01", "status": "on_shift", "lon": LON, "lat": LAT,
        "ts": first.isoformat(), "accuracy_m": 8.0, "speed_mps": None, "battery_pct": 50.0,
        "source": "owntracks"}
    # Two more fixes of the member inside the window: held, then one entry, the newest.
    coalescer.add([moved("W01", second, LON + 0.001)])
    coalescer.add([moved("W01", third, LON + 0.002)])
    assert position_events(office) == []
    coalescer.flush()
    [event] = position_events(office)
    assert listed(event) == [("W01", third.isoformat())]
    assert event["positions"][0]["lon"] == LON + 0.002


@pytest.mark.any_backend
def test_many_members_moved_in_a_window_are_one_event_listing_them_all(app, office):
    coalescer = live.PositionCoalescer(app, NEVER_S)
    when = ago(minutes=1)
    codes = [f"M{n:03d}" for n in range(60)]
    coalescer.add([moved(code, when) for code in codes[:30]])  # one batch: one event at once
    [event] = position_events(office)
    assert listed(event) == [(code, when.isoformat()) for code in codes[:30]]
    later = when + timedelta(seconds=10)
    for code in codes:  # every source, one transaction each
        coalescer.add([moved(code, later, source="osmand")])
    assert position_events(office) == []
    coalescer.flush()
    [event] = position_events(office)
    assert sorted(listed(event)) == [(code, later.isoformat()) for code in codes]
    assert {p["source"] for p in event["positions"]} == {"osmand"}


@pytest.mark.any_backend
def test_an_older_fix_never_replaces_a_newer_one_held_or_sent(app, office):
    coalescer = live.PositionCoalescer(app, NEVER_S)
    old, newer, newest = ago(minutes=5), ago(minutes=3), ago(minutes=1)
    coalescer.add([moved("W01", newer), moved("W02", newer)])
    assert [listed(e) for e in position_events(office)] == [
        [("W01", newer.isoformat()), ("W02", newer.isoformat())]]
    # Committed in one order, announced in the other: the older after the newer was held...
    coalescer.add([moved("W01", newest)])
    coalescer.add([moved("W01", old), moved("W01", newer)])
    # ...or after the newer was sent (W02): never sent backwards.
    coalescer.add([moved("W02", old)])
    coalescer.flush()
    [event] = position_events(office)
    assert listed(event) == [("W01", newest.isoformat())]


@pytest.mark.any_backend
def test_a_quiet_hub_sends_nothing(app, office):
    coalescer = live.PositionCoalescer(app, NEVER_S)
    coalescer.add([])
    coalescer.flush()
    assert position_events(office) == []


@pytest.mark.any_backend
def test_held_markers_go_out_by_themselves_when_the_window_is_up(app, office):
    coalescer = live.PositionCoalescer(app, 0.05)
    first, second = ago(minutes=2), ago(minutes=1)
    coalescer.add([moved("W01", first)])
    coalescer.add([moved("W01", second), moved("W02", second)])
    received = position_events(office)
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
        received += position_events(office)
    assert [listed(e) for e in received] == [
        [("W01", first.isoformat())],
        [("W01", second.isoformat()), ("W02", second.isoformat())]]


def test_every_source_shares_the_apps_coalescer_and_a_reconnect_replays_it(app, client,
                                                                            add_phone, office):
    owntracks, traccar = add_phone("W01"), add_phone("W02", kind="traccar")
    first, second = ago(minutes=2), ago(minutes=1)
    # The app's own coalescer (what every source calls), its window longer than the test.
    app.extensions["positions.coalescer"] = live.PositionCoalescer(app, NEVER_S)

    def report(ts, lon):
        answer = client.post("/api/v1/owntracks", content_type="application/json",
                             data=json.dumps(location(ts, lon=lon)), headers=owntracks.basic)
        assert answer.status_code == 200
        answer = client.get("/api/v1/osmand", query_string={
            "id": traccar.traccar_id, "lat": LAT, "lon": lon, "timestamp": int(ts.timestamp())})
        assert answer.status_code == 200

    report(first, LON)  # W01 at once; W02 held, with W01's next fix
    report(second, LON + 0.001)
    live.coalescer_of(app).flush()
    events = position_events(office)
    assert [listed(e) for e in events] == [
        [("W01", first.isoformat())],
        [("W02", second.isoformat()), ("W01", second.isoformat())]]
    assert [p["source"] for p in events[1]["positions"]] == ["osmand", "owntracks_http"]
    # A client that was away gets the events it missed (dispatch.core.realtime's replay).
    again = socketio.test_client(app, namespace=NAMESPACE,
                                 auth={"token": office.token, "since": events[0]["id"]})
    assert [listed(e) for e in position_events(again)] == [listed(events[1])]
    again.disconnect(NAMESPACE)


@pytest.mark.parametrize("value", ["0", "-1", "5.5", "60"])
def test_event_every_s_must_be_more_than_0_and_at_most_5(value):
    with pytest.raises(SettingsError, match=r"positions\.event_every_s"):
        load_settings(environ={"RESCUEHUB_POSITIONS_EVENT_EVERY_S": value})


def test_event_every_s_defaults_to_a_quarter_second_and_takes_up_to_5():
    assert load_settings(environ={}).positions.event_every_s == 0.25
    assert load_settings(environ={"RESCUEHUB_POSITIONS_EVENT_EVERY_S": "5"}
                         ).positions.event_every_s == 5.0
