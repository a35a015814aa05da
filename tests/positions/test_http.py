"""OwnTracks HTTP mode and Traccar Client / OsmAnd over HTTP, on both backends: known devices are
answered 2xx whatever they send (bad fixes dead-lettered), unknown ones 401."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatch.core.db import db
from dispatch.core.metrics import registry
from dispatch.positions.fixes import KNOT_MPS, MAX_MESSAGE_BYTES
from dispatch.positions.models import Device, LatestPosition, Position
from telemetry.models import DeadLetter
from tests.positions.conftest import LAT, LON, ago, location


def counter(name: str, **labels) -> float:
    return registry.get_sample_value(f"rescuehub_positions_{name}_total", labels) or 0.0


def rows(model, **where):
    query = select(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return db.session.scalars(query).all()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def places(monkeypatch):
    """Spies on the geofences (dispatch.positions.places): records what the intake hands them,
    then lets them decide."""
    from dispatch.positions import places as module

    calls = []
    record_batch, record_transition = module.record_batch, module.record_transition

    def batch(session, fixes_by_member, **kw):
        calls.extend(("fixes", member_id, list(fixes))
                     for member_id, fixes in fixes_by_member.items())
        return record_batch(session, fixes_by_member, **kw)

    def transition(session, member_id, **kw):
        calls.append(("transition", member_id, kw))
        return record_transition(session, member_id, **kw)

    monkeypatch.setattr(module, "record_batch", batch)
    monkeypatch.setattr(module, "record_transition", transition)
    return calls


def post_owntracks(client, phone, body, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/api/v1/owntracks", data=data, content_type="application/json",
                       headers={**phone.basic, **headers})


# --- OwnTracks HTTP ------------------------------------------------------------------------------

def test_an_owntracks_location_is_stored_and_moves_the_marker(client, add_phone, places):
    phone = add_phone()
    when = ago(minutes=2)
    answer = post_owntracks(client, phone, location(when, acc=9, vel=18, batt=55),
                            **{"X-Limit-U": phone.code, "X-Limit-D": "phone"})
    assert answer.status_code == 200 and answer.json == []
    [fix] = rows(Position)
    assert (fix.ts, fix.lon, fix.lat, fix.accuracy_m, fix.speed_mps, fix.battery_pct,
            fix.source) == (when, LON, LAT, 9.0, 5.0, 55.0, "owntracks_http")
    [marker] = rows(LatestPosition)
    assert marker.ts == when and marker.member_id == fix.member_id
    assert rows(Device)[0].last_seen_at is not None
    assert places == [("fixes", fix.member_id, [places[0][2][0]])]
    assert places[0][2][0].ts == when and places[0][2][0].accuracy_m == 9.0


def test_a_retry_is_a_duplicate_and_an_older_fix_joins_the_track_only(client, add_phone):
    phone = add_phone()
    new, old = ago(minutes=1), ago(hours=3)
    stored, duplicates = counter("stored"), counter("duplicate")
    for body in (location(new), location(new), location(old, lon=LON + 0.01)):
        assert post_owntracks(client, phone, body).status_code == 200
    assert sorted(p.ts for p in rows(Position)) == [old, new]
    assert rows(LatestPosition)[0].ts == new and rows(LatestPosition)[0].lon == LON
    assert counter("stored") - stored == 2 and counter("duplicate") - duplicates == 1


@pytest.mark.parametrize(("body", "reason"), [
    (location(ago(minutes=1), lat=91), "out_of_range"),
    (location(ago(minutes=1), lon=181), "out_of_range"),
    (location(ago(minutes=1), lat=LON, lon=LAT), "swapped"),
    ({**location(ago(minutes=1)), "tst": int(ago(minutes=1).timestamp()) * 1000},
     "bad_timestamp"),
    (location(ago(minutes=-30)), "future"),
    (location(ago(days=30)), "too_old"),
    (b'{"_type": "location", "lat": NaN, "lon": 109.0, "tst": 1}', "bad_json"),
    (b"x" * (MAX_MESSAGE_BYTES + 10), "too_large"),
])
def test_a_known_devices_bad_fix_is_answered_200_and_dead_lettered(client, add_phone, body,
                                                                    reason):
    phone = add_phone()
    before = counter("rejected", reason=reason)
    answer = post_owntracks(client, phone, body)
    assert answer.status_code == 200 and answer.json == []
    assert count(Position) == 0 and count(LatestPosition) == 0
    [letter] = rows(DeadLetter)
    assert (letter.topic, letter.gateway, letter.reason) == ("http:owntracks", phone.code,
                                                             reason)
    assert len(letter.payload) <= MAX_MESSAGE_BYTES
    assert counter("rejected", reason=reason) == before + 1


@pytest.mark.parametrize("kind", ["encrypted", "waypoint", "card", "lwt", "steps", "mystery"])
def test_other_owntracks_types_are_ignored_and_counted(client, add_phone, kind):
    phone = add_phone()
    label = "other" if kind == "mystery" else kind
    before = counter("ignored", type=label)
    answer = post_owntracks(client, phone, {"_type": kind, "data": "c2VjcmV0"})
    assert answer.status_code == 200 and answer.json == []
    assert count(Position) == 0 and count(DeadLetter) == 0
    assert counter("ignored", type=label) == before + 1


def test_a_region_transition_goes_to_the_geofences(client, add_phone, places):
    phone = add_phone()
    when = ago(minutes=1)
    body = {"_type": "transition", "event": "enter", "desc": "S01", "tst": int(when.timestamp()),
            "lat": LAT, "lon": LON, "acc": 10, "t": "c", "wtst": 1}
    assert post_owntracks(client, phone, body).status_code == 200
    member_id = rows(Device)[0].member_id
    assert places == [("transition", member_id, {"desc": "S01", "event": "enter", "ts": when,
                                                 "lon": LON, "lat": LAT})]
    assert count(Position) == 0


@pytest.mark.parametrize("credentials", ["wrong secret", "no such login", "none", "bearer"])
def test_unknown_credentials_are_401_and_counted(client, add_phone, credentials, bearer):
    phone = add_phone()
    headers = {
        "wrong secret": {"Authorization": phone.basic["Authorization"][:-4] + "AAA="},
        "no such login": {"Authorization": "Basic bm9ib2R5OnNlY3JldA=="},
        "none": {},
        "bearer": bearer("dispatcher"),
    }[credentials]
    before = counter("rejected", reason="unknown_device")
    answer = client.post("/api/v1/owntracks", data=json.dumps(location(ago(minutes=1))),
                         content_type="application/json", headers=headers)
    assert answer.status_code == 401
    assert answer.json["error"] == "unknown_device"
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert count(Position) == 0 and count(DeadLetter) == 0
    assert counter("rejected", reason="unknown_device") == before + 1


def test_a_disabled_device_or_a_retired_member_is_unknown(client, add_phone):
    from dispatch.positions import devices
    from dispatch.roster.models import Member

    phone, other = add_phone("W01"), add_phone("W02")
    with db.transaction() as s:
        devices.disable_device(s, phone.code, actor="test")
        s.scalars(select(Member).where(Member.code == "W02")).one().active = False
    for who in (phone, other):
        assert post_owntracks(client, who, location(ago(minutes=1))).status_code == 401


def test_a_traccar_device_has_no_owntracks_login(client, add_phone):
    phone = add_phone(kind="traccar")
    assert phone.http_secret is None and phone.mqtt_password is None
    basic = {"Authorization": "Basic " + __import__("base64").b64encode(
        f"{phone.code}:{phone.traccar_id}".encode()).decode()}
    assert client.post("/api/v1/owntracks", data=json.dumps(location(ago(minutes=1))),
                       content_type="application/json", headers=basic).status_code == 401


# --- Traccar Client / OsmAnd ---------------------------------------------------------------------

def test_an_osmand_get_in_knots(client, add_phone):
    phone = add_phone(kind="traccar")
    when = ago(minutes=3)
    answer = client.get("/api/v1/osmand", query_string={
        "id": phone.traccar_id, "lat": LAT, "lon": LON, "timestamp": int(when.timestamp()),
        "speed": 10, "bearing": 90, "altitude": 410, "accuracy": 12, "batt": 71})
    assert answer.status_code == 200 and answer.data == b""
    [fix] = rows(Position)
    assert (fix.ts, fix.lon, fix.lat, fix.accuracy_m, fix.battery_pct, fix.source) == (
        when, LON, LAT, 12.0, 71.0, "osmand")
    assert fix.speed_mps == pytest.approx(10 * KNOT_MPS)


def test_an_osmand_form_post_with_milliseconds(client, add_phone):
    phone = add_phone(kind="traccar")
    when = ago(minutes=3)
    answer = client.post("/api/v1/osmand", data={
        "deviceid": phone.traccar_id, "location": f"{LAT},{LON}",
        "timestamp": str(int(when.timestamp()) * 1000)})
    assert answer.status_code == 200
    assert rows(Position)[0].ts == when


def traccar_body(identifier, *locations):
    items = [{"timestamp": ts.isoformat().replace("+00:00", ".000Z"),
              "coords": {"latitude": lat, "longitude": LON, "accuracy": 5, "speed": 1.5,
                         "heading": -1, "altitude": 400},
              "is_moving": True, "odometer": 0, "event": "",
              "battery": {"level": 0.42, "is_charging": False},
              "activity": {"type": "still"}, "extras": {},
              "_": f"&id={identifier}&lat={lat}&lon={LON}&timestamp={ts.isoformat()}&"}
             for ts, lat in locations]
    return {"location": items[0] if len(items) == 1 else items, "device_id": identifier}


def test_traccar_clients_json_body(client, add_phone, places):
    phone = add_phone(kind="traccar")
    when = ago(minutes=1)
    answer = client.post("/api/v1/osmand", json=traccar_body(phone.traccar_id, (when, LAT)))
    assert answer.status_code == 200
    [fix] = rows(Position)
    assert (fix.ts, fix.speed_mps, fix.battery_pct, fix.accuracy_m) == (when, 1.5, 42.0, 5.0)
    assert [call[0] for call in places] == ["fixes"]


def test_a_traccar_batch_stores_the_good_and_dead_letters_the_bad(client, add_phone):
    phone = add_phone(kind="traccar")
    body = traccar_body(phone.traccar_id, (ago(minutes=2), LAT), (ago(minutes=1), 91.0))
    assert client.post("/api/v1/osmand", json=body).status_code == 200
    assert count(Position) == 1
    [letter] = rows(DeadLetter)
    assert (letter.topic, letter.reason, letter.item, letter.gateway) == (
        "http:osmand", "out_of_range", 1, phone.code)


@pytest.mark.parametrize(("query", "body", "reason"), [
    ({"lat": "91", "lon": str(LON)}, None, "out_of_range"),
    ({"lat": "NaN", "lon": str(LON)}, None, "not_finite"),
    ({"lat": str(LON), "lon": str(LAT)}, None, "swapped"),
    ({"lat": str(LAT), "lon": str(LON), "timestamp": "2026-07-27 13:00:00"}, None,
     "bad_timestamp"),
    ({}, b"{not json", "bad_json"),
    ({}, b'{"note": 1}', "schema"),
])
def test_osmand_bad_fixes_of_a_known_device_are_dead_lettered(client, add_phone, query, body,
                                                               reason):
    phone = add_phone(kind="traccar")
    params = {"id": phone.traccar_id, **query}
    if body is None:
        answer = client.get("/api/v1/osmand", query_string=params)
    else:
        answer = client.post("/api/v1/osmand", query_string=params, data=body,
                             content_type="application/json")
    assert answer.status_code == 200
    assert count(Position) == 0
    [letter] = rows(DeadLetter)
    assert (letter.topic, letter.reason) == ("http:osmand", reason)


@pytest.mark.parametrize("identifier", [None, "", "12345678", "W01-1"])
def test_osmand_unknown_identifiers_are_401(client, add_phone, identifier):
    add_phone()  # an OwnTracks device: its login is no Traccar identifier
    add_phone(kind="traccar")
    params = {"lat": LAT, "lon": LON}
    if identifier is not None:
        params["id"] = identifier
    before = counter("rejected", reason="unknown_device")
    assert client.get("/api/v1/osmand", query_string=params).status_code == 401
    assert client.post("/api/v1/osmand", json=traccar_body(identifier or "", (ago(minutes=1),
                                                                             LAT))
                       ).status_code == 401
    assert count(Position) == 0 and count(DeadLetter) == 0
    assert counter("rejected", reason="unknown_device") == before + 2


def test_an_oversized_osmand_body_is_413(client, add_phone):
    phone = add_phone(kind="traccar")
    answer = client.post("/api/v1/osmand", query_string={"id": phone.traccar_id},
                         data=b"{" + b" " * (MAX_MESSAGE_BYTES + 1) + b"}",
                         content_type="application/json")
    assert answer.status_code == 413


# --- the dead-letter store -----------------------------------------------------------------------

def test_a_position_letter_is_listed_and_can_be_dismissed_not_reprocessed(client, add_phone,
                                                                          bearer):
    phone = add_phone()
    post_owntracks(client, phone, location(ago(minutes=1), lat=91))
    editor = bearer("dispatcher")
    listed = client.get("/api/v1/dead-letters", headers=editor)
    assert listed.status_code == 200
    [item] = listed.json["items"]
    assert (item["gateway"], item["reason"], item["topic"]) == (phone.code, "out_of_range",
                                                                "http:owntracks")
    assert client.get("/api/v1/dead-letters/summary", headers=editor).status_code == 200
    again = client.post(f"/api/v1/dead-letters/{item['id']}/reprocess", json={}, headers=editor)
    assert again.status_code == 409 and again.json["error"] == "not_a_reading"
    dismissed = client.post(f"/api/v1/dead-letters/{item['id']}/reprocess",
                            json={"action": "dismiss"}, headers=editor)
    assert dismissed.status_code == 200 and dismissed.json["resolution"] == "dismissed"


def test_a_swapped_fix_is_found_by_its_reason_and_counted(client, add_phone, bearer):
    """`swapped` is a reason of the dead-letter store (telemetry's vocabulary), so the office
    can filter by it and the summary counts it."""
    phone = add_phone()
    post_owntracks(client, phone, location(ago(minutes=1), lat=LON, lon=LAT))
    editor = bearer("dispatcher")
    listed = client.get("/api/v1/dead-letters?reason=swapped", headers=editor)
    assert listed.status_code == 200, listed.json
    assert [item["reason"] for item in listed.json["items"]] == ["swapped"]
    summary = client.get("/api/v1/dead-letters/summary", headers=editor).json
    assert summary["reasons"]["swapped"] == {"unresolved": 1, "total": 1}


def test_past_the_quota_a_letter_is_counted_not_kept(app, client, add_phone):
    from telemetry.quota import DeadLetterQuota

    phone = add_phone()
    app.extensions["rescuehub.dead_letter_quota"] = DeadLetterQuota(2, 10**6)
    dropped = registry.get_sample_value("rescuehub_dead_letters_dropped_total",
                                        {"gateway": phone.code, "reason": "out_of_range"}) or 0
    for minutes in range(1, 5):
        assert post_owntracks(client, phone, location(ago(minutes=minutes), lat=91)
                              ).status_code == 200
    assert count(DeadLetter) == 2
    assert registry.get_sample_value("rescuehub_dead_letters_dropped_total", {
        "gateway": phone.code, "reason": "out_of_range"}) == dropped + 2


def test_metrics_name_the_positions_counters(client, bearer):
    text = client.get("/metrics", headers=bearer("viewer")).get_data(as_text=True)
    for name in ("rescuehub_positions_received_total", "rescuehub_positions_stored_total",
                 'rescuehub_positions_rejected_total{reason="swapped"}',
                 'rescuehub_positions_rejected_total{reason="unknown_device"}',
                 'rescuehub_positions_ignored_total{type="encrypted"}'):
        assert name in text


def test_a_fix_older_than_the_marker_never_moves_it_back_whatever_the_order(client, add_phone):
    phone = add_phone()
    times = [ago(minutes=m) for m in (5, 1, 9, 3)]
    for ts in times:
        post_owntracks(client, phone, location(ts))
    assert rows(LatestPosition)[0].ts == max(times)
    assert count(Position) == 4
    assert max(times) - min(times) == timedelta(minutes=8)
