"""MQTT ingest through a real Mosquitto: a gateway publishes, the worker stores and acks."""

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update

from dispatch import create_app
from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.runtime import Background
from dispatch.jobs import SUBSCRIBERS
from telemetry import service
from telemetry.models import DeadLetter, Reading, Sensor
from tests.conftest import empty_tables
from tests.fixtures.broker import new_broker_dir, running_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One real Mosquitto for the module (the gateways' logins are added as the tests go)."""
    with running_broker(new_broker_dir(tmp_path_factory)) as running:
        yield running


@pytest.fixture(scope="module", params=["3.1.1", "5"])
def worker(request, database_url, broker, tmp_path_factory):
    """The app's background work (MQTT + ingest, with its writer process) against the test
    broker, on each protocol the hub's connection can speak (mqtt.protocol): one per backend and
    protocol for the module, its readings and dead letters emptied before each test
    (`no_readings`)."""
    app = create_app({"database": {"url": database_url},
                      "data": {"dir": str(tmp_path_factory.mktemp("worker"))},
                      "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}", "managed": False,
                               "password": broker.hub_password, "protocol": request.param,
                               "session_expiry_s": 60}})
    with app.app_context():
        empty_tables(db.engine)
        with db.transaction() as s:
            for code in ("GW-A", "GW-B"):
                auth.create_gateway(s, code, actor="test", mqtt_hash=str)
            for code, gw in (("RG-A", "GW-A"), ("RG-B", "GW-B")):
                service.register(s, {"code": code, "kind": "rain_gauge", "unit": "mm",
                                     "gateway": gw, "lon": 109.05, "lat": 33.15}, actor="test")
        db.remove()
    background = Background(app, [], SUBSCRIBERS)
    background.start()
    assert background.mqtt.wait_connected(10)
    yield app
    background.stop()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def no_readings(worker):
    """No readings nor dead letters before a test. Each sensor's revision is raised, as every
    change to its readings raises it, so the writer process reloads what it remembers of it
    (telemetry.sensor_memory) instead of judging against readings deleted here."""
    with worker.app_context():
        with db.transaction() as s:
            s.execute(delete(Reading))
            s.execute(delete(DeadLetter))
            s.execute(update(Sensor).values(revision=Sensor.revision + 1))
        db.remove()


def _count(app, model, **where):
    with app.app_context():
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        try:
            return db.session.scalar(query)
        finally:
            db.remove()


def _wait(app, model, expected, timeout=15, **where):
    deadline = time.monotonic() + timeout
    while (n := _count(app, model, **where)) < expected:
        assert time.monotonic() < deadline, f"{model.__name__}: {n} of {expected}"
        time.sleep(0.05)
    return n


def _ts(minutes_ago):
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def test_gateway_readings_are_stored_and_bad_ones_dead_lettered(worker, broker):
    password = broker.add_gateway("GW-A")
    gateway = broker.probe("GW-A", password, "GW-A")
    assert not gateway.connect().is_failure
    topic = "rescuehub/v1/readings/GW-A"
    assert not gateway.publish(topic, json.dumps(
        {"sensor": "RG-A", "ts": _ts(5), "value": 1.5}).encode()).is_failure
    gateway.publish(topic, json.dumps({"readings": [
        {"sensor": "RG-A", "ts": _ts(4), "value": 0.5},
        {"sensor": "RG-B", "ts": _ts(4), "value": 0.5},     # GW-B's sensor: refused by the hub
        {"sensor": "RG-A", "ts": _ts(3), "value": "0.5"},   # a numeric string is not a number
    ]}).encode())
    gateway.publish(topic, b"\x00not json")
    # Under another gateway's topic: the broker refuses it (MQTT 5 reason 135).
    assert gateway.publish("rescuehub/v1/readings/GW-B", json.dumps(
        {"sensor": "RG-B", "ts": _ts(2), "value": 1.0}).encode()).value == 135
    _wait(worker, Reading, 2)
    _wait(worker, DeadLetter, 3)
    assert _count(worker, DeadLetter, reason="foreign_sensor") == 1
    assert _count(worker, DeadLetter, reason="schema") == 1
    assert _count(worker, DeadLetter, reason="bad_json") + _count(
        worker, DeadLetter, reason="bad_encoding") == 1
    gateway.close()


def test_redelivered_message_is_a_duplicate(worker, broker):
    password = broker.add_gateway("GW-A")
    gateway = broker.probe("GW-A", password, "GW-A")
    gateway.connect()
    body = json.dumps({"sensor": "RG-A", "ts": _ts(5), "value": 1.5}).encode()
    for _ in range(3):
        gateway.publish("rescuehub/v1/readings/GW-A", body)
    _wait(worker, Reading, 1)
    time.sleep(0.5)
    assert _count(worker, Reading) == 1 and _count(worker, DeadLetter) == 0
    gateway.close()


def test_a_gateway_cannot_take_the_hubs_session(worker, broker, caplog):
    """Issue #18: a gateway connecting with the hub's client id (the published default, the
    hub's actual one, or its login) and a persistent session used to push the hub off and
    inherit its queue, so readings acknowledged to their gateways were neither stored nor
    dead-lettered (20 published, 5 stored). Now the broker makes each client id the login's."""
    caplog.set_level(logging.WARNING, logger="dispatch.core.mqtt")
    client_id = worker.extensions["rescuehub.mqtt"].client._client_id
    hub_id = client_id.decode() if isinstance(client_id, bytes) else client_id
    assert hub_id != "rescuehub-worker"  # the hub's own id is no published constant
    publisher = broker.probe("GW-B", broker.add_gateway("GW-B"), "GW-B")
    assert not publisher.connect().is_failure
    published = 0
    for n, stolen in enumerate(("rescuehub-worker", hub_id, broker.hub_username)):
        # A login of its own each time: the module's broker keeps a persistent session that
        # an earlier test's thief left under its own name.
        name = f"GW-T{n}-{uuid.uuid4().hex[:6]}"
        thief = broker.probe(name, broker.add_gateway(name), stolen, protocol="3.1.1",
                             persistent=True)
        try:
            assert not thief.connect().is_failure
            assert thief.session_present is False, f"{stolen}: the thief got a session"
            for _ in range(20):
                published += 1
                body = {"sensor": "RG-B", "ts": _ts(published), "value": 0.5}
                assert not publisher.publish("rescuehub/v1/readings/GW-B",
                                             json.dumps(body).encode()).is_failure
        finally:
            thief.close()
    assert _wait(worker, Reading, published) == published == 60
    assert _count(worker, DeadLetter) == 0
    assert "MQTT disconnected" not in caplog.text
    assert worker.extensions["rescuehub.mqtt"].connected
    publisher.close()
