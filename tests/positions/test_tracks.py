"""Reading positions back: a member's track, the members layer, `position` events, retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, select

from dispatch.core.db import db
from dispatch.core.realtime import NAMESPACE
from dispatch.positions import intake as intake_module
from dispatch.positions import live
from dispatch.positions.fixes import Area
from dispatch.positions.jobs import prune_positions, prune_track
from dispatch.positions.models import LatestPosition, Position
from maps.models import Township
from tests.positions.conftest import LAT, LON, ago, location


def send(client, phone, ts, **fields):
    answer = client.post("/api/v1/owntracks", data=json.dumps(location(ts, **fields)),
                         content_type="application/json", headers=phone.basic)
    assert answer.status_code == 200


def events(socket, name="position"):
    return [e["args"][0] for e in socket.get_received(NAMESPACE) if e["name"] == name]


# --- the track -----------------------------------------------------------------------------------

def test_a_members_track_oldest_first_within_since_and_until(client, add_phone, bearer):
    phone = add_phone()
    times = [ago(hours=h) for h in (30, 5, 3, 1)]
    for n, ts in enumerate(times):
        send(client, phone, ts, lon=LON + n / 1000, batt=50 + n)
    viewer = bearer("viewer")
    answer = client.get("/api/v1/positions?member=W01", headers=viewer)
    assert answer.status_code == 200
    body = answer.json
    assert body["member"] == "W01" and body["truncated"] is False
    assert [item["ts"] for item in body["items"]] == [t.isoformat() for t in times[1:]]
    assert body["items"][0] == {"ts": times[1].isoformat(), "lon": LON + 0.001, "lat": LAT,
                                "accuracy_m": None, "speed_mps": None, "battery_pct": 51.0,
                                "source": "owntracks_http"}
    since = (times[0] - timedelta(minutes=1)).isoformat()
    until = times[2].isoformat()
    window = client.get("/api/v1/positions", query_string={"member": "W01", "since": since,
                                                           "until": until, "limit": 2},
                        headers=viewer).json
    assert [i["ts"] for i in window["items"]] == [t.isoformat() for t in times[:2]]
    assert window["truncated"] is True


@pytest.mark.parametrize(("query", "status", "error"), [
    ("", 400, "bad_parameter"),
    ("member=", 400, "bad_parameter"),
    ("member=NOBODY", 404, "no_member"),
    ("member=" + "X" * 40, 404, "no_member"),
    ("member=W01&since=yesterday", 400, "bad_parameter"),
    ("member=W01&since=2026-07-27T10:00:00Z&until=2026-07-27T09:00:00Z", 400, "bad_parameter"),
    ("member=W01&limit=0", 400, "bad_parameter"),
    ("member=W01&limit=99999999999999999999", 400, "bad_parameter"),
])
def test_bad_track_requests(client, team, bearer, query, status, error):
    answer = client.get(f"/api/v1/positions?{query}", headers=bearer("dispatcher"))
    assert answer.status_code == status and answer.json["error"] == error


def test_the_track_needs_a_signed_in_person(client, team):
    assert client.get("/api/v1/positions?member=W01").status_code == 401


# --- the members layer ---------------------------------------------------------------------------

def test_the_members_layer(client, add_phone, bearer):
    wang, li = add_phone("W01"), add_phone("W02")
    send(client, wang, ago(minutes=2), acc=8, batt=77, vel=3.6)
    send(client, li, ago(minutes=40), lon=LON + 0.1)
    answer = client.get("/api/v1/layers/members", headers=bearer("team_leader"))
    assert answer.status_code == 200 and answer.mimetype == "application/geo+json"
    layer = answer.json
    assert layer["type"] == "FeatureCollection" and layer["numberReturned"] == 2
    first = layer["features"][0]
    assert first["id"] == "W01"
    assert first["geometry"] == {"type": "Point", "coordinates": [LON, LAT]}
    props = first["properties"]
    assert props["name"] == "王强" and props["status"] == "on_shift"
    assert (props["team"], props["squad"], props["phone"]) == ("TG", "TG-A", "13800000001")
    assert props["skills"] == [{"skill": "boat", "name_zh": "舟艇操作",
                                "name_en": "Boat handling", "level": 2,
                                "expires": "2027-06-30"}]
    assert (props["battery_pct"], props["accuracy_m"], props["speed_mps"]) == (77.0, 8.0, 1.0)
    assert 100 <= props["age_s"] < 300
    assert layer["features"][1]["properties"]["skills"] == []
    assert layer["features"][1]["properties"]["squad"] is None
    near = client.get(f"/api/v1/layers/members?bbox={LON - 0.01},{LAT - 0.01},"
                      f"{LON + 0.01},{LAT + 0.01}", headers=bearer("viewer")).json
    assert [f["id"] for f in near["features"]] == ["W01"]


def test_a_retired_member_leaves_the_layer(client, add_phone, bearer):
    from dispatch.roster.models import Member

    send(client, add_phone("W01"), ago(minutes=2))
    with db.transaction() as s:
        s.scalars(select(Member).where(Member.code == "W01")).one().active = False
    layer = client.get("/api/v1/layers/members", headers=bearer("viewer")).json
    assert layer["features"] == [] and layer["numberReturned"] == 0


# --- live events ---------------------------------------------------------------------------------

def test_a_moved_marker_is_a_position_event_for_the_office(app, client, add_phone, login,
                                                           sio):
    phone = add_phone()
    login("dispatcher")
    office = sio()
    events(office, "hello")
    when = ago(minutes=1)
    send(client, phone, when, acc=5, batt=60)
    # The first marker after a quiet spell goes out at once, in an event of its own.
    [event] = events(office)
    assert set(event) == {"id", "ts", "positions"}
    assert event["ts"] != when.isoformat()  # the event's own time, not the fix's
    assert event["positions"] == [{
        "member": "W01", "name": "王强", "status": "on_shift", "lon": LON, "lat": LAT,
        "ts": when.isoformat(), "accuracy_m": 5.0, "speed_mps": None, "battery_pct": 60.0,
        "source": "owntracks_http"}]
    send(client, phone, when)                          # a retry
    send(client, phone, ago(minutes=30))               # an older fix: the track only
    live.coalescer_of(app).flush()
    assert events(office) == []


def test_field_roles_get_no_position_events(client, add_phone, login, sio):
    phone = add_phone()
    login("team_leader")
    tablet = sio()
    send(client, phone, ago(minutes=1))
    assert events(tablet) == []


# --- retention and the area ----------------------------------------------------------------------

def test_retention_keeps_each_members_latest_fix(app, client, add_phone):
    phone, other = add_phone("W01"), add_phone("W02")
    days = app.config["SETTINGS"].positions.retention_days
    now = datetime.now(UTC)
    for ts in (ago(minutes=5), ago(days=1)):
        send(client, phone, ts)
    send(client, other, ago(days=2))
    with db.transaction() as s:
        # Old enough to go (phones cannot send fixes this old: written as a past import would).
        member_id = s.scalar(select(LatestPosition.member_id))
        s.add_all([Position(member_id=member_id, ts=now - timedelta(days=days + d), lon=LON,
                            lat=LAT, source="owntracks") for d in (1, 2, 3)])
    with db.transaction() as s:
        # W02's only fix: older than the retention as the job sees it, but its marker.
        assert prune_track(s, now=now + timedelta(days=days), retention_days=days) == 4
    kept = db.session.execute(select(Position.member_id, Position.ts).order_by(Position.ts))
    assert len(kept.all()) == 2
    prune_positions()
    assert db.session.scalar(select(func.count()).select_from(Position)) == 2
    assert db.session.scalar(select(func.count()).select_from(LatestPosition)) == 2


def test_the_area_is_the_townships_extent(app):
    app.extensions.pop("positions.area", None)
    with db.transaction() as s:
        assert intake_module.area(s) == intake_module.CHINA
        app.extensions.pop("positions.area", None)
        s.add(Township(code="T000", name_zh="铁关镇", epsg=32649,
                       boundary=from_shape(MultiPolygon([box(108.9, 33.0, 109.2, 33.3)]),
                                           srid=4326)))
        s.flush()
        assert intake_module.area(s) == Area(108.9, 33.0, 109.2, 33.3).grown()
    app.extensions.pop("positions.area", None)
