"""OwnTracks over MQTT through a real Mosquitto: `rescuehub device add` makes the phone's login,
the phone publishes as OwnTracks does, the hub stores the fix and sends `position`; the broker
keeps the phone to its own OwnTracks tree."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import func, select

from dispatch import create_app
from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.metrics import registry
from dispatch.core.realtime import NAMESPACE, socketio
from dispatch.core.runtime import Background
from dispatch.positions import jobs as positions_jobs
from dispatch.positions.models import LatestPosition, Position
from telemetry.models import DeadLetter
from tests.conftest import CHEAP_PASSWORD_HASH, PASSWORD, empty_tables
from tests.positions.conftest import LAT, LON, ago, location

NOT_AUTHORIZED = 135


@pytest.fixture
def app(database_url, broker):
    """The hub's app against the test broker, its data directory the broker's parent (so
    `device add` rewrites the running broker's files)."""
    app = create_app({
        "database": {"url": database_url}, "data": {"dir": str(broker.broker_dir.parent)},
        "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}", "managed": True,
                 "password": broker.hub_password},
        "web": {"password_hash": CHEAP_PASSWORD_HASH}})
    with app.app_context():
        empty_tables(db.engine)
        yield app
        db.remove()
        db.engine.dispose()


@pytest.fixture
def hub(app, team):
    """The positions' MQTT subscription of a worker, with a dispatcher's token for /live."""
    with db.transaction() as s:
        user, _ = auth.create_user(s, "office", "dispatcher", actor="test")
        auth.change_password(s, user, PASSWORD)
        token, _ = auth.issue_user_token(s, user, 600)
    db.remove()
    background = Background(app, [], [positions_jobs.attach])
    background.start()
    assert background.mqtt.wait_connected(10)
    app.extensions["test.token"] = token
    yield app
    background.stop()


def device_add(runner, broker, member: str) -> tuple[str, str]:
    """`rescuehub device add MEMBER` against the running broker; (login, MQTT password)."""
    result = runner.invoke("device", "add", member, extra_env={
        "RESCUEHUB_MQTT_MANAGED": "true", "RESCUEHUB_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
        "RESCUEHUB_DATA_DIR": str(broker.broker_dir.parent),
        "RESCUEHUB_MQTT_PASSWORD": broker.hub_password})
    assert result.exit_code == 0, result.output
    assert "broker reloaded" in result.output
    login = re.search(r"user (\S+)$", result.output, re.M).group(1)
    password = re.search(r"^  password (\S+)$", result.output, re.M).group(1)
    return login, password


def connected_phone(broker, login: str, password: str):
    """The phone's MQTT client, once the reloaded broker takes its login."""
    deadline = time.monotonic() + 10
    while True:
        phone = broker.probe(login, password, f"{login}-phone")
        if not phone.connect().is_failure:
            return phone
        phone.close()
        assert time.monotonic() < deadline, "the broker never took the phone's login"
        time.sleep(0.05)


def wait_for(app, query, expected, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            value = db.session.scalar(query)
            db.remove()
        if value == expected:
            return
        assert time.monotonic() < deadline, f"{value} != {expected}"
        time.sleep(0.05)


def counted(name: str, **labels) -> float:
    return registry.get_sample_value(f"rescuehub_positions_{name}_total", labels) or 0.0


@pytest.fixture
def places(monkeypatch):
    """Spies on the geofences: what the intake hands them, before they decide."""
    from dispatch.positions import places as module

    calls = []
    record_batch, record_transition = module.record_batch, module.record_transition

    def batch(session, fixes_by_member, **kw):
        calls.extend(("fixes", len(fixes)) for fixes in fixes_by_member.values())
        return record_batch(session, fixes_by_member, **kw)

    def transition(session, member_id, **kw):
        calls.append(("transition", kw["desc"], kw["event"]))
        return record_transition(session, member_id, **kw)

    monkeypatch.setattr(module, "record_batch", batch)
    monkeypatch.setattr(module, "record_transition", transition)
    return calls


def test_a_phone_added_with_device_add_reports_over_owntracks(hub, broker, runner, places):
    login, password = device_add(runner, broker, "W01")
    office = socketio.test_client(hub, namespace=NAMESPACE,
                                  auth={"token": hub.extensions["test.token"]})
    assert office.is_connected(NAMESPACE)
    phone = connected_phone(broker, login, password)
    when = ago(seconds=30)
    body = json.dumps(location(when, acc=7, vel=7.2, batt=81, conn="m", t="u")).encode()
    assert not phone.publish(f"owntracks/{login}/phone", body, retain=True).is_failure
    wait_for(hub, select(func.count()).select_from(Position), 1)
    with hub.app_context():
        fix = db.session.scalar(select(Position))
        assert (fix.ts, fix.lon, fix.lat, fix.accuracy_m, fix.speed_mps, fix.battery_pct,
                fix.source) == (when, LON, LAT, 7.0, 2.0, 81.0, "owntracks")
        assert db.session.scalar(select(LatestPosition.ts)) == when
        db.remove()
    deadline = time.monotonic() + 5
    received = []
    while not received and time.monotonic() < deadline:
        received = [entry for e in office.get_received(NAMESPACE) if e["name"] == "position"
                    for entry in e["args"][0]["positions"]]
        time.sleep(0.02)
    assert [(e["member"], e["source"], e["ts"]) for e in received] == [
        ("W01", "owntracks", when.isoformat())]
    transition = {"_type": "transition", "event": "enter", "desc": "S01",
                  "tst": int(when.timestamp()), "lat": LAT, "lon": LON, "acc": 7, "t": "c"}
    ignored = counted("ignored", type="encrypted")
    phone.publish(f"owntracks/{login}/phone/event", json.dumps(transition).encode())
    phone.publish(f"owntracks/{login}/phone", b'{"_type": "encrypted", "data": "AAAA"}')
    phone.publish(f"owntracks/{login}/phone", json.dumps(location(when, lat=91)).encode())
    wait_for(hub, select(func.count()).select_from(DeadLetter), 1)
    assert ("transition", "S01", "enter") in places and ("fixes", 1) in places
    assert counted("ignored", type="encrypted") == ignored + 1
    with hub.app_context():
        letter = db.session.scalar(select(DeadLetter))
        assert (letter.topic, letter.gateway, letter.reason) == (
            f"owntracks/{login}/phone", login, "out_of_range")
        db.remove()
    phone.close()
    office.disconnect(NAMESPACE)


def test_a_phone_is_kept_to_its_own_owntracks_tree(hub, broker, runner):
    login, password = device_add(runner, broker, "W01")
    other, _ = device_add(runner, broker, "W02")
    phone = connected_phone(broker, login, password)
    fix = json.dumps(location(ago(seconds=10))).encode()
    reading = b'{"sensor": "RG-001", "ts": "2026-07-27T21:05:00+08:00", "value": 3.5}'
    for topic, payload in ((f"rescuehub/v1/readings/{login}", reading),
                           (f"rescuehub/v1/status/{login}", b'{"online": true}'),
                           (f"owntracks/{other}/phone", fix),
                           ("rescuehub/v1/warnings/V01", b"{}"),
                           ("owntracks/rescuehub/x", fix)):
        assert phone.publish(topic, payload).value == NOT_AUTHORIZED, topic
    # Its own tree is open to it (the positive control).
    assert not phone.publish(f"owntracks/{login}/phone", fix).is_failure
    wait_for(hub, select(func.count()).select_from(Position), 1)
    phone.close()


def test_an_unknown_owntracks_user_is_counted_not_stored(hub, broker):
    # A gateway's login may write under owntracks/<its name>/ (the ACL's pattern for every
    # account): no device has that name, so the hub refuses it.
    password = broker.add_gateway("GW-X")
    before = counted("rejected", reason="unknown_device")
    with broker.probe("GW-X", password, "GW-X") as gateway:
        assert not gateway.connect().is_failure
        assert not gateway.publish("owntracks/GW-X/phone",
                                   json.dumps(location(ago(seconds=5))).encode()).is_failure
        deadline = time.monotonic() + 10
        while counted("rejected", reason="unknown_device") == before:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with hub.app_context():
        assert db.session.scalar(select(func.count()).select_from(Position)) == 0
        assert db.session.scalar(select(func.count()).select_from(DeadLetter)) == 0
        db.remove()
