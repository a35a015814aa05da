"""Reliability and accounting of MQTT ingest (issue #11): the real `rescuehub run`, real Mosquitto.

Every test counts what a gateway published against what the database holds afterwards: zero
readings lost, zero extra. A broker killed mid-stream, the hub killed mid-stream, the database
unavailable for a while, a burst at ten times the normal rate, and a property test that every
generated reading ends up exactly once as a stored row, a duplicate or a dead letter (DESIGN §5).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from dispatch import create_app
from dispatch.core import auth, schema
from dispatch.core.broker import hash_mqtt_password
from dispatch.core.db import db, make_engine
from telemetry import service
from telemetry.models import DeadLetter, Reading, Sensor
from tests.conftest import ADMIN_URL, CHEAP_PASSWORD_HASH, PASSWORD
from tests.fixtures.hub import Hub, start_hub

pytestmark = pytest.mark.slow

VIEWER = "reliability-viewer"
RETRY_WARNING = "ingest: database write failed"


# --- setting a hub up -------------------------------------------------------------------------

@dataclass
class Site:
    """A prepared data directory and database: gateways with their sensors, a viewer login."""

    data_dir: Path
    database_url: str
    gateways: dict[str, str] = field(default_factory=dict)  # code -> MQTT password (hub's DB)
    sensors: dict[str, list[str]] = field(default_factory=dict)  # gateway code -> sensor codes

    def env(self, **extra: str) -> dict[str, str]:
        return {"RESCUEHUB_DATABASE_URL": self.database_url, **extra}


def prepare(data_dir: Path, database_url: str, sensors: dict[str, list[str]]) -> Site:
    """Migrate the database and register gateways, rain gauges (range 0-200 mm) and a viewer."""
    app = create_app({"database": {"url": database_url}, "data": {"dir": str(data_dir)},
                      "mqtt": {"url": "mqtt://127.0.0.1:1", "managed": False},
                      "web": {"password_hash": CHEAP_PASSWORD_HASH}})
    site = Site(data_dir, database_url, sensors=sensors)
    with app.app_context():
        schema.upgrade(db.engine)
        with db.transaction() as s:
            for gateway, codes in sensors.items():
                _, password, _ = auth.create_gateway(s, gateway, actor="test",
                                                     mqtt_hash=hash_mqtt_password)
                site.gateways[gateway] = password
                for code in codes:
                    service.register(s, {"code": code, "kind": "rain_gauge", "unit": "mm",
                                         "gateway": gateway, "lon": 109.05, "lat": 33.15},
                                     actor="test")
            user, _ = auth.create_user(s, VIEWER, "viewer", actor="test")
            auth.change_password(s, user, PASSWORD)
        db.remove()
        db.engine.dispose()
    return site


@pytest.fixture(params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def database_url(request, tmp_path) -> Iterator[str]:
    """A database of its own for one hub: a SpatiaLite file, or a fresh PostgreSQL database."""
    if request.param == "spatialite":
        yield f"sqlite:///{tmp_path / 'var' / 'rescuehub.sqlite'}"
        return
    request.getfixturevalue("postgis_url")  # skips (or fails in CI) without a server
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"rescuehub_rel_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture
def running() -> Iterator[list[Hub]]:
    """Hubs a test starts; each is stopped (or found dead) afterwards."""
    hubs: list[Hub] = []
    yield hubs
    for hub in hubs:
        hub.stop()


def launch(site: Site, hubs: list[Hub], **extra_env: str) -> Hub:
    hub = start_hub(site.data_dir, **site.env(**extra_env))
    hubs.append(hub)
    assert requests.get(hub.url + "/readyz", timeout=5).status_code == 200, hub.output()
    return hub


# --- a gateway ---------------------------------------------------------------------------------

class Gateway:
    """A field gateway: paho MQTT 5 with a persistent session, QoS 1, resending what the broker
    has not acknowledged after every reconnect (paho keeps unacknowledged publishes)."""

    def __init__(self, port: int, code: str, password: str):
        self.code = code
        self.topic = f"rescuehub/v1/readings/{code}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=code,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(code, password)
        self.client.reconnect_delay_set(1, 2)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.issued: set[int] = set()
        self.acked: set[int] = set()
        self.refused: list[tuple[int, int]] = []
        self.published = 0
        self._lock = threading.Condition()
        self._connected = threading.Event()
        self.client.on_publish = self._on_publish
        self.client.on_connect = lambda *_args: self._connected.set()
        self.client.on_disconnect = lambda *_args: self._connected.clear()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        self.client.connect_async("127.0.0.1", port, keepalive=10, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        assert self._connected.wait(10), f"gateway {code} could not connect"

    def publish(self, body: dict | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        # Not under self._lock: paho calls on_publish holding its own lock (a deadlock otherwise).
        info = self.client.publish(self.topic, payload, qos=1)
        with self._lock:
            self.issued.add(info.mid)  # packet ids do not wrap below 65,535 publishes
            self.published += 1

    def wait_acknowledged(self, timeout: float = 60) -> None:
        """Until the broker acknowledged every publish (refusals are recorded, not retried)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self.issued <= self.acked, timeout):
                raise AssertionError(f"{self.code}: {len(self.issued - self.acked)} publishes "
                                     "never acknowledged")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_publish(self, _client, _userdata, mid, reason_code, _properties) -> None:
        with self._lock:
            self.acked.add(mid)
            # 16 "no matching subscribers" is a success for MQTT, but for a hub a lost reading.
            if reason_code.is_failure or reason_code.value == 16:
                self.refused.append((mid, reason_code.value))
            self._lock.notify_all()


def reading(sensor: str, ts: datetime, value: float) -> dict:
    return {"sensor": sensor, "ts": ts.isoformat(timespec="seconds"), "value": value}


def stream(site: Site, gateway: str, count: int, start: datetime) -> Iterator[dict]:
    """count distinct good readings of the gateway's sensors, one minute apart per sensor."""
    codes = site.sensors[gateway]
    for i in range(count):
        yield reading(codes[i % len(codes)], start + timedelta(minutes=i // len(codes)),
                      round((i % 97) * 0.5, 1))


def paced(items, per_second: float, on_item: Callable[[int], None] = lambda _i: None):
    """Yield items at about per_second, calling on_item(i) before the i-th."""
    started = time.monotonic()
    for i, item in enumerate(items):
        on_item(i)
        ahead = started + i / per_second - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield item


# --- counting ----------------------------------------------------------------------------------

class Store:
    """Read-only look at the hub's database from the test."""

    def __init__(self, url: str):
        self.engine = make_engine(url)

    def count(self, model=Reading) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar_one()

    def readings(self, codes: list[str], since: datetime, until: datetime) -> dict:
        query = (select(Sensor.code, Reading.ts, Reading.value)
                 .join(Sensor, Sensor.id == Reading.sensor_id)
                 .where(Sensor.code.in_(codes), Reading.ts >= since, Reading.ts < until))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {(code, _utc(ts)): value for code, ts, value in rows}

    def letters_after(self, last_id: int) -> list[tuple]:
        query = (select(DeadLetter.id, DeadLetter.reason, DeadLetter.sensor_code,
                        DeadLetter.item).where(DeadLetter.id > last_id))
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query).all()]

    def last_letter_id(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.coalesce(func.max(DeadLetter.id), 0))).scalar_one()

    def wait_count(self, expected: int, hub: Hub, timeout: float = 90, model=Reading) -> int:
        """Poll until `expected` rows are there; then make sure no more arrive."""
        deadline = time.monotonic() + timeout
        while (n := self.count(model)) < expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"{n} of {expected} {model.__tablename__} stored\n"
                                     f"{tail(hub)}")
            time.sleep(0.2)
        time.sleep(1.0)  # anything extra (a redelivery stored twice) would show now
        return self.count(model)

    def close(self) -> None:
        self.engine.dispose()


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def tail(hub: Hub, lines: int = 40) -> str:
    return "\n".join(hub.output().splitlines()[-lines:])


def metrics(hub: Hub) -> dict[str, float]:
    """The hub's /metrics samples, e.g. 'rescuehub_readings_rejected_total{reason="schema"}'."""
    token = requests.post(hub.url + "/api/v1/auth/token", timeout=10,
                          json={"username": VIEWER, "password": PASSWORD}).json()["token"]
    body = requests.get(hub.url + "/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).text
    samples = {}
    for line in body.splitlines():
        if line.startswith("rescuehub_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def rejected(samples: dict[str, float]) -> Counter:
    found = Counter()
    for name, value in samples.items():
        match = re.fullmatch(r'rescuehub_readings_rejected_total\{reason="(\w+)"\}', name)
        if match and value:
            found[match.group(1)] = int(value)
    return found


def kill_hub(hub: Hub) -> None:
    """kill -9 every process of the hub: the gunicorn master and its worker (MQTT + writer)."""
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                and _parent_of(p) == hub.process.pid]
    hub.process.send_signal(signal.SIGKILL)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    hub.process.wait(10)


def _parent_of(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def settled(hub: Hub, store: Store, quiet_s: float = 1.5, timeout: float = 120) -> int:
    """Wait until the hub is connected to its broker again and has accounted for every reading
    it received (stored, duplicate or rejected), with nothing new received, stored or accounted
    for `quiet_s`; returns the rows stored then. (A connected hub gets what its broker queued
    for it at once: a hub that lost what it received never gets here, and the test's count
    says so.)"""
    deadline = time.monotonic() + timeout
    seen, since = None, time.monotonic()
    while True:
        ready = requests.get(hub.url + "/readyz", timeout=10).status_code == 200
        samples = metrics(hub)
        received = samples["rescuehub_readings_received_total"]
        accounted = (samples["rescuehub_readings_stored_total"]
                     + samples["rescuehub_readings_duplicate_total"]
                     + sum(rejected(samples).values()))
        state = (ready, received, accounted, store.count())
        if state != seen:
            seen, since = state, time.monotonic()
        elif ready and received == accounted and time.monotonic() - since >= quiet_s:
            return state[3]
        assert time.monotonic() < deadline, f"never settled: {state}\n{tail(hub)}"
        time.sleep(0.2)


def since_days(days: float) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)


# --- 1. the broker killed mid-stream -----------------------------------------------------------

def kill_broker_mid_stream(data_dir: Path, running: list[Hub], *, total: int, per_message: int,
                           messages_per_s: float, kill_at: int) -> tuple[Hub, int, float]:
    """Publish `total` readings, kill -9 the managed broker after message `kill_at`, let the hub
    restart it; returns the hub, the rows stored and the readings the hub says it received."""
    site = prepare(data_dir, f"sqlite:///{data_dir / 'rescuehub.sqlite'}",
                   {"GW-REL-1": ["RG-REL-1", "RG-REL-2", "RG-REL-3"]})
    hub = launch(site, running)
    store = Store(site.database_url)
    broker_dir = data_dir / "mosquitto"
    pid_file = broker_dir / "mosquitto.pid"
    first = int(pid_file.read_text())
    # The broker saves its sessions every autosave_interval (10 s); SIGUSR1 saves at once, so the
    # hub's subscription survives the crash as it would in a hub that has run for a while.
    os.kill(first, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not (broker_dir / "mosquitto.db").exists():
        assert time.monotonic() < deadline, "the managed broker never saved its persistence"
        time.sleep(0.1)
    gateway = Gateway(hub.mqtt_port, "GW-REL-1", site.gateways["GW-REL-1"])
    items = list(stream(site, "GW-REL-1", total, since_days(5)))
    messages = [{"readings": items[i:i + per_message]} if per_message > 1 else items[i]
                for i in range(0, total, per_message)]

    def kill_broker_at(i: int) -> None:
        if i == kill_at:
            os.kill(first, signal.SIGKILL)

    try:
        for body in paced(messages, messages_per_s, kill_broker_at):
            gateway.publish(body)
        gateway.wait_acknowledged(timeout=90)
        assert gateway.refused == []
        assert int(pid_file.read_text()) != first  # the hub restarted its broker
        assert "exited unexpectedly" in hub.output()
        stored = settled(hub, store)
    finally:
        gateway.close()
        store.close()
    return hub, stored, metrics(hub)["rescuehub_readings_received_total"]


def test_broker_killed_mid_stream_loses_nothing(data_dir, running):
    # Batches of 10 at 60 messages/s: a rate this hub keeps up with, so the broker holds (almost)
    # nothing the hub has not taken into its own queue when it dies.
    total = 3000
    hub, stored, received = kill_broker_mid_stream(data_dir, running, total=total,
                                                   per_message=10, messages_per_s=60,
                                                   kill_at=100)
    assert stored == total, tail(hub)
    # QoS 1 is at least once: a message the hub took whose PUBACK died with the broker comes
    # again after the restart (seen under load in CI: one batch of 10). It must be counted as a
    # duplicate, never stored twice, and only the messages in flight at the kill may repeat.
    duplicates = metrics(hub)["rescuehub_readings_duplicate_total"]
    assert received == total + duplicates
    assert duplicates <= 60 * 10  # at most a second of messages (60/s of 10) was in flight


def test_broker_killed_with_a_backlog_loses_nothing_the_hub_received(data_dir, running):
    """Gateways publishing faster than the hub stores, then the broker killed: the hub loses
    nothing it received. What the broker held in memory for the hub is lost with it (Mosquitto
    writes its queues only every autosave_interval, NOTES.md): a limit of the broker, which the
    README's deployment section names; hence no `stored == total` here."""
    total = 2000
    hub, stored, received = kill_broker_mid_stream(data_dir, running, total=total,
                                                   per_message=1, messages_per_s=5000,
                                                   kill_at=total - 1)
    # A message whose PUBACK died with the broker may come again after the restart (QoS 1 is
    # at least once; seen once on a loaded machine): counted a duplicate, never stored twice.
    duplicates = metrics(hub)["rescuehub_readings_duplicate_total"]
    assert 0 < received - duplicates <= total
    assert stored == received - duplicates, tail(hub)


# --- 2. the hub killed mid-stream --------------------------------------------------------------

def test_hub_killed_mid_stream_loses_nothing(data_dir, running, broker):
    """kill -9 of the whole hub (gunicorn master and worker) while a gateway publishes; the broker
    (external here: a managed one dies with the hub) keeps the hub's persistent session."""
    site = prepare(data_dir, f"sqlite:///{data_dir / 'rescuehub.sqlite'}",
                   {"GW-REL-2": ["RG-REL-21", "RG-REL-22"]})
    external = {"mqtt_port": broker.port, "RESCUEHUB_MQTT_MANAGED": "false",
                "RESCUEHUB_MQTT_PASSWORD": broker.hub_password}
    hub = launch(site, running, **external)
    store = Store(site.database_url)
    gateway = Gateway(broker.port, "GW-REL-2", broker.add_gateway("GW-REL-2"))
    total, killed = 3000, []
    items = list(stream(site, "GW-REL-2", total, since_days(5)))
    messages = [{"readings": items[i:i + 5]} for i in range(0, total, 5)]

    def kill_hub_at(i: int) -> None:
        if i == 150:
            kill_hub(hub)
            killed.append(store.count())

    try:
        for body in paced(messages, 100, kill_hub_at):
            gateway.publish(body)
        gateway.wait_acknowledged()
        assert gateway.refused == []
        assert 0 < killed[0] < total, "the hub was not killed mid-stream"
        restarted = launch(site, running, **external)
        stored = store.wait_count(total, restarted)
    finally:
        gateway.close()
        store.close()
    assert stored == total
    assert "MQTT connected" in restarted.output()


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and _parent_of(p) == pid]


def test_writer_process_killed_mid_stream_loses_nothing(data_dir, running):
    """kill -9 of the ingest writer process (telemetry.writer_process) while a gateway
    publishes: the hub starts another and sends it every batch it had not acknowledged."""
    site = prepare(data_dir, f"sqlite:///{data_dir / 'rescuehub.sqlite'}",
                   {"GW-REL-4": ["RG-REL-41", "RG-REL-42"]})
    hub = launch(site, running)
    store = Store(site.database_url)
    gateway = Gateway(hub.mqtt_port, "GW-REL-4", site.gateways["GW-REL-4"])
    total, killed = 3000, []
    items = list(stream(site, "GW-REL-4", total, since_days(5)))
    messages = [{"readings": items[i:i + 5]} for i in range(0, total, 5)]
    # gunicorn master -> worker (MQTT, web) -> writer (beside it the evacuation planner's
    # process and multiprocessing's resource tracker): the one the hub logged as the writer.
    writers = [int(pid) for pid in
               re.findall(r"ingest writer process (\d+) ready", hub.output())]
    spawned = [w for worker in _children(hub.process.pid) for w in _children(worker)
               if b"spawn_main" in Path(f"/proc/{w}/cmdline").read_bytes()]
    assert len(writers) == 1 and writers[0] in spawned, (writers, spawned)

    def kill_writer_at(i: int) -> None:
        if i == 150:
            os.kill(writers[0], signal.SIGKILL)
            killed.append(store.count())

    try:
        for body in paced(messages, 100, kill_writer_at):
            gateway.publish(body)
        gateway.wait_acknowledged()
        assert gateway.refused == []
        assert 0 < killed[0] < total, "the writer was not killed mid-stream"
        stored = store.wait_count(total, hub)
    finally:
        gateway.close()
        store.close()
    assert stored == total
    assert "the writer process died" in hub.output()
    assert hub.process.poll() is None
    assert metrics(hub)["rescuehub_readings_stored_total"] <= total


# --- 3. the database unavailable for a while ---------------------------------------------------

class Outage:
    """Make the hub's database refuse it, without stopping the shared server."""

    def __init__(self, url: str):
        self.url = make_url(url)
        self.lock: sqlite3.Connection | None = None

    def begin(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            # Held longer than the hub's busy timeout (database.busy_timeout_s, 3 s in the test
            # below), a writer gets "database is locked".
            self.lock = sqlite3.connect(self.url.database, isolation_level=None)
            self.lock.execute("BEGIN EXCLUSIVE")
            return
        with self._admin() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"),
                         {"name": self.url.database})

    def end(self) -> None:
        if self.lock is not None:
            self.lock.rollback()
            self.lock.close()
            self.lock = None
            return
        with self._admin() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS true'))

    def _admin(self):
        engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        conn = engine.connect()
        conn.info["engine"] = engine
        return _Closing(conn)


class _Closing:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *_exc):
        engine = self.conn.info["engine"]
        self.conn.close()
        engine.dispose()


def test_database_outage_is_retried_and_caught_up(data_dir, database_url, running):
    site = prepare(data_dir, database_url, {"GW-REL-3": ["RG-REL-31", "RG-REL-32"]})
    hub = launch(site, running, RESCUEHUB_DATABASE_BUSY_TIMEOUT_S="3")
    gateway = Gateway(hub.mqtt_port, "GW-REL-3", site.gateways["GW-REL-3"])
    outage = Outage(database_url)
    total = 1500
    items = list(stream(site, "GW-REL-3", total, since_days(5)))
    messages = [{"readings": items[i:i + 5]} for i in range(0, total, 5)]

    def cut_at(i: int) -> None:
        if i == 60:
            outage.begin()

    try:
        for body in paced(messages, 60, cut_at):
            gateway.publish(body)
        gateway.wait_acknowledged()
        # The writer fails, keeps its batch unacknowledged and retries (the hub's log says so).
        deadline = time.monotonic() + 60
        while RETRY_WARNING not in hub.output():
            assert time.monotonic() < deadline, tail(hub)
            time.sleep(0.5)
        time.sleep(2)
        assert hub.process.poll() is None
    finally:
        outage.end()
    store = Store(database_url)
    try:
        stored = store.wait_count(total, hub, timeout=120)
    finally:
        gateway.close()
        store.close()
    assert stored == total
    assert gateway.refused == []
    assert metrics(hub)["rescuehub_readings_stored_total"] == total


# --- 4. a burst at ten times the normal rate ---------------------------------------------------

def test_burst_at_ten_times_the_normal_rate(data_dir, running):
    """Four hours of a storm with every sensor reporting every 30 s instead of 300 s, sent as fast
    as the gateways can: one sends single readings, one a batch per time step, one big batches."""
    site = prepare(data_dir, f"sqlite:///{data_dir / 'rescuehub.sqlite'}", {
        "GW-BURST-1": [f"RG-B1-{n}" for n in range(3)],
        "GW-BURST-2": [f"RG-B2-{n}" for n in range(4)],
        "GW-BURST-3": [f"RG-B3-{n}" for n in range(5)]})
    hub = launch(site, running)
    store = Store(site.database_url)
    start, steps = since_days(2), 4 * 3600 // 30

    def at(step: int, code: str, n: int) -> dict:
        return reading(code, start + timedelta(seconds=30 * step), round((step * 7 + n) % 40 * 0.5,
                                                                         1))

    def messages(gateway: str) -> list[dict]:
        codes = site.sensors[gateway]
        rows = [[at(step, code, n) for n, code in enumerate(codes)] for step in range(steps)]
        if gateway == "GW-BURST-1":
            return [item for row in rows for item in row]
        if gateway == "GW-BURST-2":
            return [{"readings": row} for row in rows]
        flat = [item for row in rows for item in row]
        return [{"readings": flat[i:i + 60]} for i in range(0, len(flat), 60)]

    gateways = [Gateway(hub.mqtt_port, code, site.gateways[code]) for code in site.sensors]
    bodies = {g.code: messages(g.code) for g in gateways}
    total = steps * sum(len(codes) for codes in site.sensors.values())
    threads = [threading.Thread(target=lambda g=g: [g.publish(b) for b in bodies[g.code]])
               for g in gateways]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for gateway in gateways:
            gateway.wait_acknowledged()
            assert gateway.refused == []
        stored = store.wait_count(total, hub, timeout=120)
    finally:
        for gateway in gateways:
            gateway.close()
        store.close()
    assert stored == total
    samples = metrics(hub)
    assert samples["rescuehub_readings_stored_total"] == stored
    assert samples["rescuehub_readings_received_total"] == total
    assert samples["rescuehub_readings_duplicate_total"] == 0
    assert rejected(samples) == Counter()
    assert store_letters(site) == 0


def store_letters(site: Site) -> int:
    store = Store(site.database_url)
    try:
        return store.count(DeadLetter)
    finally:
        store.close()


# --- 5. accounting: every reading once, as a row, a duplicate or a dead letter -----------------

KNOWN = ("RG-PROP-1", "RG-PROP-2")  # on GW-PROP, range 0-200 mm
FOREIGN = "RG-PROP-Q"  # on GW-PROP-Q: foreign to GW-PROP
WINDOW_S = 1000


@dataclass
class Example:
    """One hypothesis example on the shared hub: its own time window and unknown sensor codes."""

    number: int
    base: datetime

    def ts(self, slot: int) -> datetime:
        return self.base + timedelta(seconds=slot)


@dataclass(frozen=True)
class Item:
    """A generated reading object and what the contract makes of it: reason None = good."""

    body: dict
    reason: str | None
    sensor: str | None  # the code a dead letter names
    key: tuple | None = None  # (sensor, slot) of a good or conflicting reading
    value: float | None = None


def _fmt(ts: datetime, offset: str) -> str:
    return ts.astimezone(UTC if offset == "Z" else timezone(timedelta(hours=8))).isoformat(
        timespec="seconds").replace("+00:00", "Z")


@st.composite
def items(draw, example: Example) -> Item:
    kind = draw(st.sampled_from(["good", "good", "good", "out_of_range", "unknown_sensor",
                                 "foreign_sensor", "bad_timestamp", "schema", "future",
                                 "too_old"]))
    sensor = draw(st.sampled_from(KNOWN))
    slot = draw(st.integers(0, 7))  # few slots: repeats make duplicates and conflicts
    value = draw(st.sampled_from([0.0, 1.5, 2.5]))
    ts = _fmt(example.ts(slot), draw(st.sampled_from(["Z", "+08:00"])))
    if kind == "good":
        return Item({"sensor": sensor, "ts": ts, "value": value}, None, sensor, (sensor, slot),
                    value)
    if kind == "out_of_range":
        return Item({"sensor": sensor, "ts": ts, "value": draw(st.sampled_from([-0.5, 250.0]))},
                    kind, sensor)
    if kind == "unknown_sensor":
        code = f"RG-NONE-{example.number}-{draw(st.integers(0, 3))}"
        return Item({"sensor": code, "ts": ts, "value": value}, kind, code)
    if kind == "foreign_sensor":
        return Item({"sensor": FOREIGN, "ts": ts, "value": value}, kind, FOREIGN)
    if kind == "bad_timestamp":
        bad = draw(st.sampled_from(["2026-07-27 21:05:00", "2026-07-27T21:05:00",
                                    "2026-07-27T21:05:60Z", "2026-07-27T21:05:00+0800",
                                    1785157500]))
        return Item({"sensor": sensor, "ts": bad, "value": value}, kind, sensor)
    if kind == "schema":
        body = draw(st.sampled_from([{"sensor": sensor, "ts": ts, "value": "1.5"},
                                     {"sensor": sensor, "ts": ts, "value": True},
                                     {"ts": ts, "value": value},
                                     {"sensor": sensor, "value": value}]))
        return Item(body, kind, body.get("sensor"))
    when = datetime.now(UTC) + (timedelta(days=1) if kind == "future" else -timedelta(days=40))
    return Item({"sensor": sensor, "ts": _fmt(when, "Z"), "value": value}, kind, sensor)


# Whole messages refused before they yield readings: one dead letter each.
BROKEN = [(b"{\"sensor\": ", "bad_json"), (b"\xff\xfe{}", "bad_encoding"),
          (b'{"sensor": "A", "sensor": "B", "ts": "x", "value": 1}', "bad_json"),
          (b"[1, 2]", "schema"), (b'{"readings": 5}', "schema"), (b"NaN", "bad_json")]


@st.composite
def messages(draw, example: Example) -> list:
    """A list of ("single", Item) | ("batch", [Item, ...]) | ("broken", bytes, reason)."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        shape = draw(st.sampled_from(["single", "batch", "broken"]))
        if shape == "single":
            out.append(("single", draw(items(example))))
        elif shape == "batch":
            # Not empty: an empty batch is test_empty_batch_counts_no_reading's case.
            out.append(("batch", draw(st.lists(items(example), min_size=1, max_size=6))))
        else:
            out.append(("broken", *draw(st.sampled_from(BROKEN))))
    return out


def expected(plan: list) -> tuple[dict, Counter, int]:
    """The contract, reading by reading in publish order: stored rows {(sensor, slot): value},
    dead letters {(reason, sensor, item): n} and the number of duplicates."""
    stored: dict = {}
    letters: Counter = Counter()
    duplicates = 0
    for message in plan:
        if message[0] == "broken":
            letters[(message[2], None, None)] += 1
            continue
        batch = message[0] == "batch"
        for index, item in enumerate(message[1] if batch else [message[1]]):
            position = index if batch else None
            if item.reason is not None:
                letters[(item.reason, item.sensor, position)] += 1
            elif item.key not in stored:
                stored[item.key] = item.value
            elif stored[item.key] == item.value:
                duplicates += 1
            else:
                letters[("conflict", item.sensor, position)] += 1
    return stored, letters, duplicates


def payload(message) -> bytes:
    if message[0] == "broken":
        return message[1]
    if message[0] == "batch":
        return json.dumps({"readings": [item.body for item in message[1]]}).encode()
    return json.dumps(message[1].body).encode()


@dataclass
class SharedHub:
    hub: Hub
    site: Site
    store: Store
    gateway: Gateway
    origin: datetime = field(default_factory=lambda: since_days(2))
    examples: int = 0

    def example(self) -> Example:
        # Each run of the test body (shrinking included) gets a fresh window and fresh codes;
        # windows counted from one fixed origin, so they never overlap.
        self.examples += 1
        return Example(self.examples, self.origin - timedelta(seconds=WINDOW_S * self.examples))


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory) -> Iterator[SharedHub]:
    """One hub, its managed broker and a gateway for the whole module (property examples)."""
    data_dir = tmp_path_factory.mktemp("shared") / "var"
    data_dir.mkdir()
    site = prepare(data_dir, f"sqlite:///{data_dir / 'rescuehub.sqlite'}",
                   {"GW-PROP": list(KNOWN), "GW-PROP-Q": [FOREIGN]})
    hubs: list[Hub] = []
    hub = launch(site, hubs)
    shared = SharedHub(hub, site, Store(site.database_url),
                       Gateway(hub.mqtt_port, "GW-PROP", site.gateways["GW-PROP"]))
    yield shared
    shared.gateway.close()
    shared.store.close()
    hub.stop()


def publish_and_settle(shared: SharedHub, example: Example, bodies: list[bytes]) -> None:
    """Publish in order, then a sentinel reading; once it is stored, everything before it is
    (one publisher, QoS 1: the broker and the hub's single writer keep the order)."""
    for body in bodies:
        shared.gateway.publish(body)
    sentinel = reading(KNOWN[0], example.ts(WINDOW_S - 1), 0.0)
    shared.gateway.publish(sentinel)
    shared.gateway.wait_acknowledged()
    deadline = time.monotonic() + 30
    key = (KNOWN[0], example.ts(WINDOW_S - 1))
    while key not in shared.store.readings([KNOWN[0]], key[1], key[1] + timedelta(seconds=1)):
        assert time.monotonic() < deadline, tail(shared.hub)
        time.sleep(0.05)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_reading_is_accounted_for_once(shared_hub, data):
    example = shared_hub.example()
    plan = data.draw(messages(example))
    note(f"example {example.number} from {example.base.isoformat()}: "
         f"{[payload(m) for m in plan]}")
    check_plan(shared_hub, example, plan)


def check_plan(shared_hub: SharedHub, example: Example, plan: list) -> None:
    """Publish the plan; the rows, dead letters and counters must be what the contract says."""
    want_rows, want_letters, want_duplicates = expected(plan)
    generated = sum(1 if m[0] != "batch" else len(m[1]) for m in plan)
    assert len(want_rows) + want_duplicates + sum(want_letters.values()) == generated
    before = metrics(shared_hub.hub)
    last_letter = shared_hub.store.last_letter_id()
    publish_and_settle(shared_hub, example, [payload(m) for m in plan])

    rows = shared_hub.store.readings(list(KNOWN), example.base, example.ts(WINDOW_S - 1))
    assert rows == {(sensor, example.ts(slot)): value
                    for (sensor, slot), value in want_rows.items()}
    letters = Counter((reason, sensor, item) for _id, reason, sensor, item in
                      shared_hub.store.letters_after(last_letter))
    assert letters == want_letters
    after = metrics(shared_hub.hub)

    def delta(name: str) -> int:
        return int(after.get(name, 0) - before.get(name, 0))

    assert delta("rescuehub_readings_stored_total") == len(want_rows) + 1  # and the sentinel
    assert delta("rescuehub_readings_duplicate_total") == want_duplicates
    by_reason = Counter()
    for (reason, _sensor, _item), n in want_letters.items():
        by_reason[reason] += n
    assert rejected(after) - rejected(before) == by_reason
    assert delta("rescuehub_readings_received_total") == generated + 1


def good(example: Example, sensor: str, slot: int, value: float) -> Item:
    return Item({"sensor": sensor, "ts": _fmt(example.ts(slot), "Z"), "value": value}, None,
                sensor, (sensor, slot), value)


def test_batch_repeating_a_stored_reading_is_a_duplicate(shared_hub):
    example = shared_hub.example()
    first = good(example, KNOWN[0], 0, 1.5)
    # Stored 1.5; then a batch with 2.5 (a conflict) and 1.5 again (the stored value: duplicate).
    check_plan(shared_hub, example, [("single", first), ("batch", [
        good(example, KNOWN[0], 0, 2.5), good(example, KNOWN[0], 0, 1.5)])])


def test_empty_batch_counts_no_reading(shared_hub):
    example = shared_hub.example()
    check_plan(shared_hub, example, [("batch", [])])
