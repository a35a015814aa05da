"""The tablet's own fix: Socket.IO `position` on /live from a signed-in person who is a member."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, select

from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.realtime import NAMESPACE, socketio
from dispatch.positions.models import LatestPosition, Position
from dispatch.roster.models import Member
from tests.conftest import PASSWORD
from tests.positions.conftest import LAT, LON, ago


def link(user, member: str = "W01") -> None:
    with db.transaction() as s:
        s.scalars(select(Member).where(Member.code == member)).one().user_id = user.id


def fix(**fields) -> dict:
    return {"lat": LAT, "lon": LON, "ts": ago(seconds=20).isoformat(), "accuracy": 14,
            "speed": 0.8, "battery": 0.64, **fields}


def office_socket(app):
    """A dispatcher's live connection by token (the HTTP client's cookie is the tablet's)."""
    with db.transaction() as s:
        user, _ = auth.create_user(s, "office-screen", "dispatcher", actor="test")
        auth.change_password(s, user, PASSWORD)
        token, _ = auth.issue_user_token(s, user, 600)
    return socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})


def test_a_team_leaders_tablet_moves_their_marker(app, team, login, sio):
    link(login("team_leader"))
    office = office_socket(app)
    office.get_received(NAMESPACE)
    tablet = sio()
    data = fix()
    assert tablet.emit("position", data, namespace=NAMESPACE, callback=True) == {"ok": True}
    [stored] = db.session.scalars(select(Position)).all()
    assert (stored.source, stored.device_id, stored.accuracy_m, stored.speed_mps,
            stored.battery_pct) == ("tablet", None, 14.0, 0.8, 64.0)
    assert stored.ts.isoformat() == data["ts"]
    assert db.session.scalar(select(LatestPosition.source)) == "tablet"
    [event] = [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "position"]
    [entry] = event["positions"]
    assert (entry["member"], entry["source"], entry["battery_pct"]) == ("W01", "tablet", 64.0)
    office.disconnect(NAMESPACE)


@pytest.mark.parametrize(("data", "reason"), [
    (fix(lat=91), "out_of_range"),
    (fix(lat=LON, lon=LAT), "swapped"),
    (fix(lat=math.nan), "not_finite"),
    (fix(ts=ago(hours=-2).isoformat()), "future"),
    (fix(ts=1785160800000), "bad_timestamp"),
    ({"lat": LAT}, "schema"),
    ("here", "schema"),
])
def test_a_bad_tablet_fix_is_answered_with_its_reason(team, login, sio, data, reason):
    link(login("dispatcher"))
    tablet = sio()
    answer = tablet.emit("position", data, namespace=NAMESPACE, callback=True)
    assert answer["error"] == reason and answer["message"]
    assert db.session.scalar(select(func.count()).select_from(Position)) == 0


def test_a_person_who_is_no_member_cannot_send_a_fix(team, login, sio):
    login("team_leader")
    tablet = sio()
    answer = tablet.emit("position", fix(), namespace=NAMESPACE, callback=True)
    assert answer["error"] == "no_member"
    assert db.session.scalar(select(func.count()).select_from(Position)) == 0


def test_a_retired_members_tablet_cannot_send_a_fix(team, login, sio):
    user = login("team_leader")
    link(user, "W09")
    assert sio().emit("position", fix(), namespace=NAMESPACE, callback=True)["error"] == \
        "no_member"


def test_walking_into_a_shelter_sends_a_geofence_event(app, team, login, sio):
    # The intake hands each stored fix to the geofences in its transaction and announces what
    # they decided once it is committed (issue #21 "Done when": a member walking into a
    # shelter's polygon makes an `enter` event).
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon, Point, box

    from maps.models import Shelter, Township

    with db.transaction() as s:
        town = Township(code="TG", name_zh="铁关镇", epsg=32649, boundary=from_shape(
            MultiPolygon([box(LON - 0.1, LAT - 0.1, LON + 0.1, LAT + 0.1)]), 4326))
        s.add(town)
        s.flush()
        s.add(Shelter(code="S-TG1", name_zh="铁关小学", kind="school", township_id=town.id,
                      location=from_shape(Point(LON, LAT), 4326)))
    link(login("team_leader"))
    office = office_socket(app)
    office.get_received(NAMESPACE)
    tablet = sio()
    away = fix(lat=LAT + 0.01, ts=ago(seconds=60).isoformat())  # about 1.1 km north
    assert tablet.emit("position", away, namespace=NAMESPACE, callback=True) == {"ok": True}
    assert not [e for e in office.get_received(NAMESPACE) if e["name"] == "geofence"]
    assert tablet.emit("position", fix(), namespace=NAMESPACE, callback=True) == {"ok": True}
    [event] = [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "geofence"]
    assert (event["member"], event["place"], event["place_type"], event["event"]) == \
        ("W01", "S-TG1", "shelter", "enter")
    office.disconnect(NAMESPACE)
