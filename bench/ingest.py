"""Benchmark: MQTT ingest through the real hub process (issue #11, "Performance").

Per backend (SpatiaLite, PostGIS on RESCUEHUB_TEST_DATABASE_URL's server), on a fresh data directory
after `rescuehub demo`, with `rescuehub run` as the hub and Mosquitto with config/mosquitto.conf,
gateways publishing at QoS 1 with their own logins and the JSON of DESIGN §5:

- throughput: stored readings per second from the first publish to the last reading stored
  (rescuehub_readings_stored_total from /metrics, then checked against the rows in the database:
  zero loss means published == stored with no duplicate and no dead letter), for single readings
  and for batches, and the ratio to the reference measured in the same run on the same broker with
  the same messages: a bare paho subscriber (an observer login, automatic acks) that only counts
  what it receives, over the hub's own protocol (--hub-protocol, mqtt.protocol: 3.1.1 by
  default) and, for single readings, over MQTT 5 too (the gateways' protocol, and the one of the
  issue's 8,500-9,900 msg/s figure) for information. The ratio target (>= 0.6) is judged on
  single readings against the reference of the hub's protocol; for batches the bare subscriber
  pays almost nothing per reading, so that ratio is printed for information only.
- backlog: the hub stopped for --backlog-seconds while the gateways publish 1,000 readings/s (its
  persistent session queues them in the broker), then the time from restarting the hub to all of
  them stored (target < 15 s);
- latency: publish -> `reading` event at a Socket.IO client on /live, p50 and p99, under 1,000
  readings/s of background load. `reading` events are throttled per sensor (EVENT_EVERY_S), so the
  probes go to their own sensors, each published less often than that.

Honest about the broker: `rescuehub run` normally starts Mosquitto itself, and the broker dies
with the hub. The backlog needs a broker that outlives the hub, and the reference needs a broker the
hub has never subscribed to (or its persistent session would queue the reference traffic). So this
script starts the broker itself with the hub's own code and template (dispatch.core.runtime's
`managed_broker`: the same config/mosquitto.conf rendering, password and ACL files), and runs the
hub with mqtt.managed = false against it. The broker, the hub, the publishers and the subscriber
are separate processes, as in the field.

One connection per MQTT login, as the broker enforces (use_username_as_clientid: a second
connection with a login pushes the first off): the bench registers gateways of its own
(BENCH_GATEWAYS publishers, each its own login, plus one for the latency probes), and the
reference subscriber uses an observer login (mqtt.observers), never the hub's.

Run: .venv/bin/python bench/ingest.py [--quick] [--db spatialite|postgis|both]
     [--part throughput|backlog|latency|all] [--backlog-seconds 60]
Progress goes to stderr, the figures table to stdout. The machine's other load changes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESCUEHUB = str(Path(sys.executable).with_name("rescuehub"))
ADMIN_URL = os.environ.get("RESCUEHUB_TEST_DATABASE_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
READINGS_TOPIC = "rescuehub/v1/readings/{}"
STEP_S = 10  # seconds between two readings of one bench sensor (its registered interval)
CST = timezone(timedelta(hours=8))  # gateways in the field stamp local time with its offset

TARGET_RATE = 5000.0
TARGET_RATIO = 0.6
TARGET_BACKLOG_S = 15.0
TARGET_P99_MS = 250.0
LOAD_RATE = 1000.0  # readings/s of the backlog and of the latency part's background load (default)
BENCH_GATEWAYS = 6  # publishers of the bench sensors, one login each
PROBE_GATEWAY = "BG-PROBE"  # the latency probes' own login, beside the load's
REFERENCE_OBSERVER = "bench-reference"  # the bare subscriber's read-only login


@dataclass(frozen=True)
class Sizes:
    sensors: int
    probes: int
    singles: int
    batches: int
    batch_size: int
    latency_s: float
    probe_every_s: float


FULL = Sizes(sensors=1000, probes=30, singles=50000, batches=100000, batch_size=20,
             latency_s=30.0, probe_every_s=0.1)
QUICK = Sizes(sensors=60, probes=10, singles=1000, batches=3000, batch_size=20,
              latency_s=4.0, probe_every_s=0.2)


LOG_NAME = "ingest"  # the progress lines' prefix (bench/alerts.py sets its own)


def log(message: str) -> None:
    print(f"[{LOG_NAME} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The bench cannot go on; the message says why."""


def _interrupt(signum, _frame) -> None:
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every `finally` below stops what it started.
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- child processes: gateways and the bare subscriber (top level: spawned, not forked) --------

def _mqtt_client(client_id: str, username: str, password: str, protocol: str = "5"):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5 if protocol == "5" else paho.MQTTv311)
    client.username_pw_set(username, password)
    return client


def _connect(client, host: str, port: int, timeout: float = 15.0) -> None:
    connected, refused = threading.Event(), []

    def on_connect(_c, _u, _flags, reason_code, _props):
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=60)
    client.loop_start()
    if not connected.wait(timeout) or refused:
        client.loop_stop()
        raise BenchError(f"the broker refused {client._client_id!r}: "
                         f"{refused[0] if refused else 'no answer'}")


def gateway_process(spec: dict, go, results) -> None:
    """A gateway: publish `payloads` at QoS 1 (paced at spec['rate'] messages/s, or flat out),
    then wait for every PUBACK. Reports when connected and when done (monotonic times)."""
    name = spec["name"]
    try:
        payloads: list[bytes] = spec["payloads"]
        client = _mqtt_client(spec["client_id"], spec["username"], spec["password"])
        client.max_inflight_messages_set(spec.get("inflight", 200))
        lock, done = threading.Lock(), threading.Event()
        state = {"acked": 0, "failed": 0, "t_last": 0.0}
        total = len(payloads)

        def on_publish(_c, _u, _mid, reason_code, _props):
            with lock:
                state["failed" if reason_code.is_failure else "acked"] += 1
                state["t_last"] = time.monotonic()
                if state["acked"] + state["failed"] >= total:
                    done.set()

        client.on_publish = on_publish
        _connect(client, spec["host"], spec["port"])
        results.put(("ready", name, None))
        go.wait()
        started = time.monotonic() + spec.get("delay", 0.0)
        rate = spec.get("rate")
        probes = []
        for i, payload in enumerate(payloads):
            if rate:
                wait = started + i / rate - time.monotonic()
                if wait > 0.0005:
                    time.sleep(wait)
            if spec.get("probe"):
                probes.append(time.monotonic())
            client.publish(spec["topic"], payload, qos=1)
        if total == 0:
            done.set()
        complete = done.wait(spec.get("ack_timeout", 120.0))
        with lock:
            report = dict(state, total=total, started=started, complete=complete,
                          readings=sum(p.count(b'"sensor"') for p in payloads), probes=probes)
        client.disconnect()
        client.loop_stop()
        results.put(("done", name, report))
    except BaseException as exc:  # report any failure to the parent, which decides
        results.put(("error", name, f"{type(exc).__name__}: {exc}"))


def bare_subscriber_process(spec: dict, results) -> None:
    """The reference: a plain paho subscriber on the readings topics (automatic acks) that only
    counts messages and readings (a byte count, no JSON decoding) until it has `expected`.
    spec["topic"] and spec["marker"] (one per item counted) default to the readings'."""
    try:
        client = _mqtt_client(spec["client_id"], spec["username"], spec["password"],
                              spec["protocol"])
        lock, done, subscribed = threading.Lock(), threading.Event(), threading.Event()
        state = {"messages": 0, "readings": 0, "t_first": 0.0, "t_last": 0.0}
        expected = spec["expected"]
        marker = spec.get("marker", b'"sensor"')

        def on_message(_c, _u, message):
            now = time.monotonic()
            with lock:
                if not state["messages"]:
                    state["t_first"] = now
                state["messages"] += 1
                state["readings"] += message.payload.count(marker)
                state["t_last"] = now
                if state["readings"] >= expected:
                    done.set()

        client.on_message = on_message
        client.on_subscribe = lambda *_: subscribed.set()
        _connect(client, spec["host"], spec["port"])
        client.subscribe(spec.get("topic", READINGS_TOPIC.format("+")), qos=1)
        if not subscribed.wait(10):
            raise BenchError("the broker did not answer the subscription")
        results.put(("ready", "bare", None))
        last, idle_since = -1, time.monotonic()
        while not done.wait(0.2):
            with lock:
                seen = state["readings"]
            if seen != last:
                last, idle_since = seen, time.monotonic()
            elif time.monotonic() - idle_since > spec.get("stall_s", 30.0):
                break
        with lock:
            report = dict(state)
        client.disconnect()
        client.loop_stop()
        results.put(("done", "bare", report))
    except BaseException as exc:
        results.put(("error", "bare", f"{type(exc).__name__}: {exc}"))


class Children:
    """Spawned child processes of one measurement, always terminated and joined."""

    def __init__(self):
        self.ctx = multiprocessing.get_context("spawn")
        self.results = self.ctx.Queue()
        self.go = self.ctx.Event()
        self.procs: list = []
        self.pending: dict[tuple[str, str], object] = {}

    def start(self, target, *args) -> None:
        proc = self.ctx.Process(target=target, args=args, daemon=True)
        proc.start()
        self.procs.append(proc)

    def collect(self, kind: str, names: set[str], timeout: float) -> dict[str, object]:
        """Wait for the reports of `kind` ("ready" or "done") from the children `names`; raise on
        a child's error. Other reports are kept for a later call."""
        got = {name: self.pending.pop((kind, name)) for name in list(names)
               if (kind, name) in self.pending}
        deadline = time.monotonic() + timeout
        while len(got) < len(names):
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"only {len(got)} of {len(names)} child processes reported "
                                 f"{kind!r} within {timeout:.0f} s")
            try:
                what, name, data = self.results.get(timeout=min(left, 1.0))
            except queue.Empty:  # check the children are still alive
                dead = [p for p in self.procs if p.exitcode not in (None, 0)]
                if dead:
                    raise BenchError(f"a child process died (exit {dead[0].exitcode})") from None
                continue
            if what == "error":
                raise BenchError(f"{name}: {data}")
            if what == kind and name in names:
                got[name] = data
            else:
                self.pending[(what, name)] = data
        return got

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self.results.close()
        self.results.join_thread()


# --- payloads ------------------------------------------------------------------------------

@dataclass
class Clock:
    """Hands out disjoint time windows, oldest first, so no reading repeats a (sensor, ts)."""

    start: datetime
    end: datetime

    def window(self, rounds: int) -> datetime:
        base = self.start
        self.start = base + timedelta(seconds=rounds * STEP_S + 60)
        if self.start > self.end:
            raise BenchError("the readings would not fit in the last 30 days: use smaller sizes")
        return base


def _reading(code: str, ts: datetime, value: float, seq: int) -> dict:
    return {"sensor": code, "ts": ts.astimezone(CST).isoformat(timespec="seconds"),
            "value": value, "seq": seq}


def make_messages(sensors: list[str], total: int, batch: int, base: datetime,
                  rng: random.Random) -> list[bytes]:
    """`total` readings of `sensors` (a round of all of them, then the next, STEP_S apart), as
    single-reading messages (batch 1) or `{"readings": [...]}` batches of `batch`."""
    readings = []
    for n in range(total):
        rnd, i = divmod(n, len(sensors))
        readings.append(_reading(sensors[i], base + timedelta(seconds=rnd * STEP_S),
                                 round(rng.uniform(0.0, 2.5), 1), n))
    if batch == 1:
        return [json.dumps(r, separators=(",", ":")).encode() for r in readings]
    return [json.dumps({"readings": readings[i:i + batch]}, separators=(",", ":")).encode()
            for i in range(0, len(readings), batch)]


# --- the hub --------------------------------------------------------------------------------

@dataclass
class Setup:
    """One backend's fresh hub: data dir, env, broker, sensors, credentials."""

    label: str
    url: str
    data_dir: Path
    env: dict
    web_port: int
    mqtt_port: int
    gateways: dict[str, str] = field(default_factory=dict)  # code -> MQTT password
    probe_password: str = ""  # PROBE_GATEWAY's
    observer_password: str = ""  # REFERENCE_OBSERVER's
    one_time: str = ""
    token: str = ""
    sensors: dict[str, list[str]] = field(default_factory=dict)  # gateway -> bench sensor codes
    probes: list[str] = field(default_factory=list)
    app: object = None
    # Where /metrics is when the process that owns MQTT is not the web process (a separate
    # `rescuehub worker` serves its metrics on worker.metrics_port).
    metrics_base: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"


class Hub:
    """`rescuehub run` as a child process in its own session, stopped with SIGTERM."""

    def __init__(self, setup: Setup, log_path: Path):
        self.setup = setup
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start the hub; returns the monotonic time of the start."""
        started = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [RESCUEHUB, "run", "--port", str(self.setup.web_port)], env=self.setup.env,
                cwd=self.setup.data_dir.parent, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        return started

    def wait_ready(self, timeout: float = 90.0) -> float:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the hub exited with status {self.proc.returncode}: "
                                 f"{self.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.setup.base + "/readyz", timeout=2).status_code == 200:
                    return time.monotonic()
            time.sleep(0.1)
        raise BenchError(f"the hub was not ready within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-3:])[-600:] or "no log lines"

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.setup.label}: the hub ignored SIGTERM for {timeout:.0f} s; killing it")
        # Its session (gunicorn master and worker) only: the group id is the hub's own pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def rescuehub(setup: Setup, *args: str) -> str:
    done = subprocess.run([RESCUEHUB, *args], env=setup.env, cwd=setup.data_dir.parent,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"rescuehub {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def api(setup: Setup, method: str, path: str, session=None, **kwargs):
    import requests

    headers = {"Authorization": f"Bearer {setup.token}"} if setup.token else {}
    response = (session or requests).request(method, setup.base + path, headers=headers,
                                             timeout=30, **kwargs)
    if response.status_code >= 400:
        raise BenchError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response


def metric(setup: Setup, name: str) -> float:
    """A counter of the hub's /metrics (0 while the hub is not serving yet)."""
    import requests

    try:
        if setup.metrics_base:
            answer = requests.get(setup.metrics_base + "/metrics", timeout=30)
            answer.raise_for_status()
            text = answer.text
        else:
            text = api(setup, "GET", "/metrics").text
    except (requests.RequestException, BenchError):
        return -1.0
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def counter(setup: Setup, name: str, timeout: float = 15.0) -> float:
    """A counter of /metrics, retried while the hub does not answer."""
    deadline = time.monotonic() + timeout
    while (value := metric(setup, name)) < 0:
        if time.monotonic() > deadline:
            raise BenchError(f"the hub's /metrics did not answer within {timeout:.0f} s")
        time.sleep(0.2)
    return value


def db_counts(setup: Setup) -> tuple[int, int]:
    """(readings of bench sensors, dead letters) straight from the database."""
    from sqlalchemy import func, select

    from dispatch.core.db import db
    from telemetry.models import DeadLetter, Reading, Sensor

    with setup.app.app_context():
        try:
            s = db.session
            readings = s.scalar(select(func.count()).select_from(Reading).join(
                Sensor, Sensor.id == Reading.sensor_id).where(Sensor.code.like("B%-%")))
            letters = s.scalar(select(func.count()).select_from(DeadLetter))
        finally:
            db.remove()
    return readings, letters


def prepare(setup: Setup, stack: contextlib.ExitStack, demo: tuple[str, ...] = ("demo",),
            logins: Callable[[Setup], None] | None = None) -> Hub:
    """Fresh data dir: `rescuehub demo` (with these arguments), a commander, the bench gateways,
    `logins(setup)` (in the app context: more MQTT logins of the bench, e.g. phones), the broker
    (started here); returns the hub, not started."""
    from dispatch import create_app
    from dispatch.core import auth
    from dispatch.core.broker import hash_mqtt_password, write_broker_files
    from dispatch.core.db import db
    from dispatch.core.runtime import (
        broker_accounts,
        broker_dir,
        managed_broker,
        observer_password,
    )
    from dispatch.core.settings import load_settings

    started = time.monotonic()
    rescuehub(setup, *demo)
    out = rescuehub(setup, "user", "add", "benchcmd", "--role", "commander")
    one_time = re.search(r"one-time password: (\S+)", out).group(1)
    settings = load_settings(environ=setup.env)
    setup.app = create_app(settings=settings)
    stack.callback(_dispose, setup)
    with setup.app.app_context():
        with db.transaction() as s:
            for code in [f"BG-{k + 1}" for k in range(BENCH_GATEWAYS)] + [PROBE_GATEWAY]:
                _gateway, password, _token = auth.create_gateway(
                    s, code, actor="bench", mqtt_hash=hash_mqtt_password)
                if code == PROBE_GATEWAY:
                    setup.probe_password = password
                else:
                    setup.gateways[code] = password
        if logins is not None:
            logins(setup)
        write_broker_files(broker_dir(settings), broker_accounts(settings))
        db.remove()
    setup.observer_password = observer_password(settings, REFERENCE_OBSERVER)
    broker = managed_broker(settings)
    broker.start()
    stack.callback(broker.stop)
    log(f"{setup.label}: demo loaded, broker (pid {broker.pid}) on port {setup.mqtt_port} "
        f"with {broker.conf_path.name} rendered from config/mosquitto.conf")
    hub = Hub(setup, setup.data_dir.parent / f"hub-{setup.label}.log")
    stack.callback(hub.stop)
    # The hub starts after the reference (see run_backend): only its sensors need it now, and
    # those go through the API below, once it is up.
    setup.one_time = one_time
    log(f"{setup.label}: prepared in {time.monotonic() - started:.1f} s")
    return hub


def _dispose(setup: Setup) -> None:
    from dispatch.core.db import db

    with setup.app.app_context():
        db.remove()
        db.engine.dispose()


def sign_in(setup: Setup) -> None:
    """Sign in as the bench commander (its one-time password changed first): setup.token."""
    password = "bench-" + secrets.token_urlsafe(16)
    api(setup, "POST", "/api/v1/auth/password", json={
        "username": "benchcmd", "password": setup.one_time, "new_password": password})
    setup.token = api(setup, "POST", "/api/v1/auth/token", json={
        "username": "benchcmd", "password": password}).json()["token"]


def post_all(setup: Setup, method: str, items: list[tuple[str, dict]], threads: int = 4) -> None:
    """Send each (path, JSON body) with `method` over the API, a few at a time."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = threading.local()

    def send(item: tuple[str, dict]) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        api(setup, method, item[0], session=local.session, json=item[1])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, items))


def register_sensors(setup: Setup, sizes: Sizes) -> None:
    """Sign in as the bench commander and register the bench sensors through the HTTP API."""
    sign_in(setup)
    demo = api(setup, "GET", "/api/v1/sensors").json()["items"]
    lon0, lat0 = demo[0]["lon"], demo[0]["lat"]
    codes = sorted(setup.gateways)
    bodies = []
    for i in range(sizes.sensors + sizes.probes):
        probe = i >= sizes.sensors
        code = f"BP-{i - sizes.sensors + 1:03d}" if probe else f"BN-{i + 1:04d}"
        gateway = PROBE_GATEWAY if probe else codes[i % len(codes)]
        bodies.append({"code": code, "kind": "rain_gauge", "unit": "mm", "gateway": gateway,
                       "name": f"bench {code}", "interval_s": STEP_S,
                       "lon": round(lon0 + 0.0004 * (i % 50), 6),
                       "lat": round(lat0 + 0.0004 * (i // 50), 6)})
        if probe:
            setup.probes.append(code)
        else:
            setup.sensors.setdefault(gateway, []).append(code)
    started = time.monotonic()
    post_all(setup, "POST", [("/api/v1/sensors", body) for body in bodies])
    log(f"{setup.label}: {len(bodies)} bench sensors registered over the API in "
        f"{time.monotonic() - started:.1f} s ({len(codes)} gateways)")


# --- measurements ---------------------------------------------------------------------------

def gateway_specs(setup: Setup, plan: dict[str, list[bytes]], *,
                  rate_total: float | None) -> list[dict]:
    """One spec per publisher: one connection per gateway login (the broker keeps one)."""
    publishers = sum(1 for payloads in plan.values() if payloads)
    return [{"name": gateway, "client_id": gateway,
             "username": gateway, "password": setup.gateways[gateway],
             "host": "127.0.0.1", "port": setup.mqtt_port,
             "topic": READINGS_TOPIC.format(gateway), "payloads": payloads,
             "rate": rate_total / publishers if rate_total else None}
            for gateway, payloads in plan.items() if payloads]


def publish(specs: list[dict], children: Children, *, timeout: float) -> dict:
    """Start the publishers, release them together; returns totals (after every PUBACK)."""
    for spec in specs:
        children.start(gateway_process, spec, children.go, children.results)
    names = {spec["name"] for spec in specs}
    children.collect("ready", names, 60)
    t0 = time.monotonic()
    children.go.set()
    return {"t0": t0, "wait": lambda: _published(children.collect("done", names, timeout), t0)}


def _published(reports: dict, t0: float) -> dict:
    failed = sum(r["failed"] for r in reports.values())
    incomplete = [n for n, r in reports.items() if not r["complete"]]
    if failed or incomplete:
        raise BenchError(f"publishing failed: {failed} refused PUBACK(s), unacknowledged at "
                         f"{', '.join(incomplete) or 'none'}")
    readings = sum(r["readings"] for r in reports.values())
    messages = sum(r["total"] for r in reports.values())
    t_last = max(r["t_last"] for r in reports.values())
    return {"readings": readings, "messages": messages, "seconds": t_last - t0,
            "rate": readings / max(t_last - t0, 1e-9), "reports": reports}


def reference(setup: Setup, plan: dict[str, list[bytes]], label: str, protocol: str) -> dict:
    """The bare paho subscriber's receive rate for these messages over MQTT `protocol` (before
    the hub ever runs)."""
    expected = sum(p.count(b'"sensor"') for payloads in plan.values() for p in payloads)
    children = Children()
    try:
        children.start(bare_subscriber_process, {
            "client_id": REFERENCE_OBSERVER, "username": REFERENCE_OBSERVER,
            "password": setup.observer_password, "host": "127.0.0.1", "port": setup.mqtt_port,
            "expected": expected, "protocol": protocol}, children.results)
        children.collect("ready", {"bare"}, 60)
        run = publish(gateway_specs(setup, plan, rate_total=None), children,
                      timeout=300)
        sent = run["wait"]()
        got = children.collect("done", {"bare"}, 300)["bare"]
    finally:
        children.close()
    if got["readings"] < expected:
        raise BenchError(f"the bare subscriber got {got['readings']} of {expected} readings")
    seconds = got["t_last"] - run["t0"]
    result = {"rate": expected / seconds, "msg_rate": got["messages"] / seconds,
              "publish_rate": sent["rate"], "readings": expected}
    log(f"{setup.label}: reference {label}, MQTT {protocol}: bare paho received {expected} "
        f"readings in "
        f"{got['messages']} messages in {seconds:.2f} s = {result['rate']:,.0f} readings/s "
        f"({result['msg_rate']:,.0f} msg/s); publishers {sent['rate']:,.0f} readings/s")
    return result


def wait_stored(setup: Setup, target: float, *, baseline: float, stall_s: float = 45.0,
                poll_s: float = 0.25, name: str = "rescuehub_readings_stored_total",
                ) -> tuple[float | None, list[tuple[float, float]]]:
    """Poll the counter `name` (stored readings) until it has grown by `target`; returns the
    time it got there (None when it stalled) and the samples."""
    samples: list[tuple[float, float]] = []
    last, idle_since = -2.0, time.monotonic()
    while True:
        value = metric(setup, name)
        now = time.monotonic()
        if value >= 0:
            samples.append((now, value - baseline))
            if value - baseline >= target:
                return now, samples
        if value != last:
            last, idle_since = value, now
        elif now - idle_since > stall_s:
            return None, samples
        time.sleep(poll_s)


def per_second(samples: list[tuple[float, float]], t0: float) -> str:
    """Readings stored in each second after t0 (from the polled samples), for the log: where a
    run spends its time (a slow start, a tail) shows here and not in the averages."""
    counts, done = [], 0.0
    for second in range(1, int((samples[-1][0] - t0) if samples else 0) + 2):
        reached = max((v for t, v in samples if t <= t0 + second), default=0.0)
        counts.append(f"{reached - done:.0f}")
        done = reached
    return " ".join(counts)


def through_hub(setup: Setup, plan: dict[str, list[bytes]], label: str) -> dict:
    """Publish the same messages to the running hub; stored readings/s and the loss check."""
    before_rows, before_letters = db_counts(setup)
    baseline, dup0 = (counter(setup, n) for n in ("rescuehub_readings_stored_total",
                                                  "rescuehub_readings_duplicate_total"))
    children = Children()
    # The stored counter is sampled while the publishers run too, so that the per-second log
    # shows the hub storing during the burst (it did: the zeros an earlier log showed there
    # were seconds nobody asked).
    early: list[tuple[float, float]] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.25):
            value = metric(setup, "rescuehub_readings_stored_total")
            if value >= 0:
                early.append((time.monotonic(), value - baseline))

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    try:
        run = publish(gateway_specs(setup, plan, rate_total=None), children,
                      timeout=600)
        sampler.start()
        try:
            sent = run["wait"]()
        finally:
            stop_sampling.set()
            sampler.join()
        done_at, samples = wait_stored(setup, sent["readings"], baseline=baseline)
        samples = early + samples
    finally:
        children.close()
    rows, letters = db_counts(setup)
    stored = rows - before_rows
    duplicates = counter(setup, "rescuehub_readings_duplicate_total") - dup0
    result = {"published": sent["readings"], "stored": stored, "letters": letters - before_letters,
              "duplicates": duplicates, "publish_rate": sent["rate"], "messages": sent["messages"]}
    if done_at is None:
        result["rate"] = 0.0
        log(f"{setup.label}: {label}: stalled at {samples[-1][1] if samples else 0:.0f} of "
            f"{sent['readings']} stored")
    else:
        result["rate"] = sent["readings"] / (done_at - run["t0"])
        lo, hi = (next(t for t, v in samples if v >= f * sent["readings"]) for f in (0.1, 0.9))
        result["sustained"] = 0.8 * sent["readings"] / (hi - lo) if hi > lo else result["rate"]
        log(f"{setup.label}: {label}: {sent['readings']} readings in {sent['messages']} messages "
            f"published at {sent['rate']:,.0f}/s; stored in {done_at - run['t0']:.2f} s = "
            f"{result['rate']:,.0f}/s (10-90 %: {result['sustained']:,.0f}/s); rows +{stored}, "
            f"dead letters +{result['letters']}, duplicates +{duplicates:.0f}")
        log(f"{setup.label}: {label}: stored per second: {per_second(samples, run['t0'])}")
    return result


def emitted_at(event_id: str) -> float:
    """When the hub emitted a `/live` event, on this process's monotonic clock (the id starts
    with the hub's wall-clock milliseconds; clocks within ~1 ms on one machine)."""
    return int(event_id.split("-", 1)[0]) / 1000 - (time.time() - time.monotonic())


class LiveClient:
    """A lean Socket.IO client on /live for the latency probes: one thread reading websocket
    frames, answering pings, and stamping the probe sensors' `reading` events on arrival.

    Why not python-socketio's Client: its Engine.IO layer starts a new thread for every
    message it receives, and under the 1,000 `reading` events/s of the background load that cost
    (in this bench process) added 200-300 ms to the slowest probes, after the hub had emitted them
    (measured from the event ids, which carry the hub's emit time). A browser handles messages in
    its event loop; this does the same amount of work per frame: look at it, parse only a probe's.
    """

    def __init__(self, base: str, token: str, prefix: str = "BP-"):
        import simple_websocket

        self.prefix = prefix.encode()
        self.received: dict[tuple[str, float], float] = {}
        # (sensor, ts) -> when the hub emitted the event (monotonic, from the event id's
        # wall-clock milliseconds): splits a probe's latency into the hub's storing and the
        # delivery of the event.
        self.emitted: dict[tuple[str, float], float] = {}
        self.hello = threading.Event()
        self.failed: list[str] = []
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = simple_websocket.Client.connect(url)
        opening = self.ws.receive(10)
        if not opening or not str(opening).startswith("0"):
            raise BenchError(f"no Engine.IO open packet from {url}: {opening!r}")
        self.ws.send("40/live," + json.dumps({"token": token}))
        self._thread = threading.Thread(target=self._read, name="live-client", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import simple_websocket

        while True:
            try:
                frame = self.ws.receive()
            except simple_websocket.ConnectionClosed:
                return
            now = time.monotonic()
            if frame is None:
                return
            if frame == "2":  # Engine.IO ping
                self.ws.send("3")
            elif frame.startswith("42/live,"):
                if '["hello"' in frame[:20]:
                    self.hello.set()
                else:
                    self.event(frame, now)
            elif frame.startswith("44/live,"):
                self.failed.append(frame)
                self.hello.set()

    def event(self, frame: str, now: float) -> None:
        """A server event's frame (`42/live,[name, data]`) that arrived at `now` (monotonic)."""
        if self.prefix in frame.encode() and '["reading"' in frame[:20]:
            data = json.loads(frame[len("42/live,"):])[1]
            ts = datetime.fromisoformat(data["ts"])
            ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
            self.received[(data["sensor"], ts.timestamp())] = now
            self.emitted[(data["sensor"], ts.timestamp())] = emitted_at(data["id"])

    def close(self) -> None:
        self.ws.close()


def latency(setup: Setup, sizes: Sizes, clock: Clock, load_rate: float, load_batch: int) -> dict:
    """Probe readings -> `reading` events at a Socket.IO client, under background load."""
    client = LiveClient(setup.base, setup.token)
    received, hello = client.received, client.hello
    rng = random.Random(11)
    warmup = 2.0
    seconds = warmup + sizes.latency_s + 1.0
    all_sensors = [c for codes in setup.sensors.values() for c in codes]
    total = int(load_rate * seconds)
    base = clock.window(-(-total // len(all_sensors)))
    plan = {g: [] for g in setup.sensors}
    owner = {c: g for g, codes in setup.sensors.items() for c in codes}
    readings = make_messages(all_sensors, total, 1, base, rng)
    for payload in readings:  # each sensor's readings go through its own gateway
        plan[owner[json.loads(payload)["sensor"]]].append(payload)
    if load_batch > 1:
        plan = {g: _rebatch(p, load_batch) for g, p in plan.items()}
    count = int(sizes.latency_s / sizes.probe_every_s)
    probe_base = clock.window(-(-count // len(setup.probes)))
    probe_keys, probe_payloads = [], []
    for n in range(count):
        rnd, i = divmod(n, len(setup.probes))
        ts = probe_base + timedelta(seconds=rnd * STEP_S)
        probe_keys.append((setup.probes[i], ts.timestamp()))
        probe_payloads.append(json.dumps(_reading(setup.probes[i], ts, 1.0, n)).encode())
    before_rows, before_letters = db_counts(setup)
    children = Children()
    try:
        if not hello.wait(10) or client.failed:
            raise BenchError(f"no `hello` from the Socket.IO server: {client.failed}")
        specs = gateway_specs(setup, plan, rate_total=load_rate / load_batch)
        specs.append({"name": "probe", "client_id": PROBE_GATEWAY,
                      "username": PROBE_GATEWAY, "password": setup.probe_password,
                      "host": "127.0.0.1", "port": setup.mqtt_port,
                      "topic": READINGS_TOPIC.format(PROBE_GATEWAY), "payloads": probe_payloads,
                      "rate": 1.0 / sizes.probe_every_s, "delay": warmup, "probe": True})
        run = publish(specs, children, timeout=seconds + 120)
        sent = run["wait"]()
        # A hub that falls behind the load delivers the probes' events late, not never: wait
        # until everything published is stored (or stalls), then a little for the last events.
        rows, last, idle_since = 0, -1, time.monotonic()
        while time.monotonic() - idle_since < 45:
            rows = db_counts(setup)[0] - before_rows
            if rows >= sent["readings"]:
                break
            if rows != last:
                last, idle_since = rows, time.monotonic()
            time.sleep(0.5)
        deadline = time.monotonic() + 5.0
        while len(received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        children.close()
        client.close()
    published_at = sent["reports"]["probe"]["probes"]
    lat = [(received[key] - t) * 1000 for key, t in zip(probe_keys, published_at, strict=True)
           if key in received]
    stored_ms = [(client.emitted[key] - t) * 1000
                 for key, t in zip(probe_keys, published_at, strict=True) if key in received]
    delivered_ms = [(received[key] - client.emitted[key]) * 1000 for key in probe_keys
                    if key in received]
    load = sent["readings"] - count
    load_seconds = max(r["t_last"] for n, r in sent["reports"].items() if n != "probe") - run["t0"]
    letters = db_counts(setup)[1] - before_letters
    result = {"p50": percentile(lat, 0.5) if lat else float("inf"),
              "p99": percentile(lat, 0.99) if lat else float("inf"),
              "probes": count, "missed": count - len(lat), "load_rate": load / load_seconds,
              "stored": rows, "published": sent["readings"], "letters": letters}
    log(f"{setup.label}: latency: {len(lat)} of {count} probe events, p50 {result['p50']:.1f} ms "
        f"p99 {result['p99']:.1f} ms, max {max(lat, default=float('nan')):.1f} ms; background "
        f"{result['load_rate']:,.0f} readings/s; stored {rows} of {sent['readings']}")
    if lat:
        log(f"{setup.label}: latency: publish -> hub's emit p50 "
            f"{percentile(stored_ms, 0.5):.1f} ms p99 {percentile(stored_ms, 0.99):.1f} ms; "
            f"emit -> client p50 {percentile(delivered_ms, 0.5):.1f} ms p99 "
            f"{percentile(delivered_ms, 0.99):.1f} ms (clocks within ~1 ms)")
    return result


def _rebatch(singles: list[bytes], size: int) -> list[bytes]:
    items = [json.loads(p) for p in singles]
    return [json.dumps({"readings": items[i:i + size]}, separators=(",", ":")).encode()
            for i in range(0, len(items), size)]


def backlog(setup: Setup, hub: Hub, clock: Clock, seconds: float, load_rate: float,
            load_batch: int) -> dict:
    """Hub down, gateways publish `load_rate` readings/s for `seconds`; time the drain."""
    rng = random.Random(13)
    total = int(load_rate * seconds)
    all_sensors = [c for codes in setup.sensors.values() for c in codes]
    base = clock.window(-(-total // len(all_sensors)))
    owner = {c: g for g, codes in setup.sensors.items() for c in codes}
    plan: dict[str, list[bytes]] = {g: [] for g in setup.sensors}
    for payload in make_messages(all_sensors, total, 1, base, rng):
        plan[owner[json.loads(payload)["sensor"]]].append(payload)
    if load_batch > 1:
        plan = {g: _rebatch(p, load_batch) for g, p in plan.items()}
    before_rows, before_letters = db_counts(setup)
    log(f"{setup.label}: backlog: stopping the hub, then {total} readings at "
        f"{load_rate:,.0f}/s for {seconds:g} s")
    hub.stop()
    children = Children()
    try:
        run = publish(gateway_specs(setup, plan, rate_total=load_rate / load_batch), children,
                      timeout=seconds + 120)
        sent = run["wait"]()
    finally:
        children.close()
    log(f"{setup.label}: backlog: {sent['readings']} readings queued in the broker at "
        f"{sent['rate']:,.0f}/s; restarting the hub")
    restarted = hub.start()
    ready = hub.wait_ready()
    done_at, samples = wait_stored(setup, sent["readings"], baseline=0)
    rows, letters = db_counts(setup)
    result = {"published": sent["readings"], "stored": rows - before_rows,
              "letters": letters - before_letters, "publish_rate": sent["rate"],
              "ready_s": ready - restarted,
              "drain_s": (done_at - restarted) if done_at else float("inf")}
    log(f"{setup.label}: backlog: ready {result['ready_s']:.1f} s after restart, all "
        f"{sent['readings']} stored {result['drain_s']:.1f} s after restart; rows +"
        f"{result['stored']}, dead letters +{result['letters']}")
    log(f"{setup.label}: backlog: stored per second after the restart: "
        f"{per_second(samples, restarted)}")
    return result


# --- per backend ------------------------------------------------------------------------------

@dataclass
class Row:
    backend: str
    figure: str
    value: str
    target: str
    verdict: str
    reference: str = ""


def verdict(ok: bool | None) -> str:
    return "info" if ok is None else ("pass" if ok else "MISS")


def hub_env(data_dir: Path, url: str, web_port: int, mqtt_port: int, protocol: str,
            observers: list[str]) -> dict:
    """The environment of the hub and its commands: this data dir, database and ports, the
    broker started by the bench (mqtt.managed = false), these observer logins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESCUEHUB_")}
    env.update(RESCUEHUB_DATA_DIR=str(data_dir), RESCUEHUB_DATABASE_URL=url,
               RESCUEHUB_MQTT_PROTOCOL=protocol,
               RESCUEHUB_MQTT_URL=f"mqtt://127.0.0.1:{mqtt_port}", RESCUEHUB_MQTT_MANAGED="false",
               RESCUEHUB_WEB_PORT=str(web_port), RESCUEHUB_LANG="en",  # output is parsed
               RESCUEHUB_MQTT_OBSERVERS=",".join(observers),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    return env


def run_backend(label: str, url: str, tmp: Path, args, sizes: Sizes) -> list[Row]:
    data_dir = tmp / f"var-{label.lower()}"
    web_port, mqtt_port = free_port(), free_port()
    env = hub_env(data_dir, url, web_port, mqtt_port, args.hub_protocol, [REFERENCE_OBSERVER])
    setup = Setup(label, url, data_dir, env, web_port, mqtt_port)
    rows: list[Row] = []
    parts = {"throughput", "backlog", "latency"} if args.part == "all" else {args.part}
    now = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(now - timedelta(hours=6), now - timedelta(minutes=5))
    rng = random.Random(7)
    with contextlib.ExitStack() as stack:
        hub = prepare(setup, stack)
        gateways = sorted(setup.gateways)
        # The bench sensors' codes are fixed before they are registered: the reference runs
        # before the hub ever connects, so its persistent session queues none of it.
        names = [f"BN-{i + 1:04d}" for i in range(sizes.sensors)]
        profiles = {}
        if "throughput" in parts:
            for key, total, batch in (("singles", sizes.singles, 1),
                                      (f"batches of {sizes.batch_size}", sizes.batches,
                                       sizes.batch_size)):
                base = clock.window(-(-total // sizes.sensors))
                plan = {g: make_messages(names[k::len(gateways)], total // len(gateways), batch,
                                         base, rng) for k, g in enumerate(gateways)}
                profiles[key] = plan
            # The ratio is judged against a bare subscriber speaking the hub's protocol; for
            # single readings the MQTT 5 one (the gateways' protocol, and the issue's reference
            # figure) is printed too.
            refs = {key: reference(setup, plan, key, args.hub_protocol)
                    for key, plan in profiles.items()}
            if args.hub_protocol != "5":
                refs["singles, MQTT 5"] = reference(setup, profiles["singles"], "singles", "5")
        hub.start()
        hub.wait_ready()
        log(f"{setup.label}: hub up (rescuehub run, pid {hub.proc.pid}, web port {web_port})")
        register_sensors(setup, sizes)
        if "throughput" in parts:
            for key, plan in profiles.items():
                got = through_hub(setup, plan, key)
                ref = refs[key]
                lossless = (got["stored"] == got["published"] and not got["letters"]
                            and not got["duplicates"])
                rows.append(Row(label, f"stored readings/s, {key}", f"{got['rate']:,.0f}/s",
                                f">= {TARGET_RATE:,.0f}/s", verdict(got["rate"] >= TARGET_RATE),
                                f"published at {got['publish_rate']:,.0f}/s"))
                ratio = got["rate"] / ref["rate"]
                rows.append(Row(label, f"ratio to bare paho {args.hub_protocol}, {key}",
                                f"{ratio:.2f}",
                                f">= {TARGET_RATIO}" if key == "singles" else "(info)",
                                verdict(ratio >= TARGET_RATIO if key == "singles" else None),
                                f"bare {ref['rate']:,.0f}/s ({ref['msg_rate']:,.0f} msg/s), "
                                f"publishers {ref['publish_rate']:,.0f}/s"))
                v5 = refs.get(f"{key}, MQTT 5")
                if v5:
                    rows.append(Row(label, f"ratio to bare paho 5, {key}",
                                    f"{got['rate'] / v5['rate']:.2f}", "(info)", verdict(None),
                                    f"bare {v5['rate']:,.0f}/s over MQTT 5, the gateways' "
                                    "protocol"))
                rows.append(Row(label, f"lost readings, {key}",
                                f"{got['published'] - got['stored']}", "0", verdict(lossless),
                                f"published {got['published']}, stored {got['stored']}, "
                                f"dead letters {got['letters']}"))
        if "latency" in parts:
            got = latency(setup, sizes, clock, args.load_rate, args.load_batch)
            rows.append(Row(label, "publish -> reading event p50", f"{got['p50']:.1f} ms", "",
                            verdict(None), f"{got['probes'] - got['missed']} of {got['probes']} "
                                           f"probes under {got['load_rate']:,.0f} readings/s"))
            rows.append(Row(label, "publish -> reading event p99", f"{got['p99']:.1f} ms",
                            f"< {TARGET_P99_MS:.0f} ms",
                            verdict(got["p99"] < TARGET_P99_MS and not got["missed"]),
                            f"missed events {got['missed']}; load stored {got['stored']} of "
                            f"{got['published']}, dead letters {got['letters']}"))
        if "backlog" in parts:
            got = backlog(setup, hub, clock, args.backlog_seconds, args.load_rate,
                          args.load_batch)
            lossless = got["stored"] == got["published"] and not got["letters"]
            rows.append(Row(label, f"backlog drain ({got['published']:,} readings)",
                            f"{got['drain_s']:.1f} s", f"< {TARGET_BACKLOG_S:.0f} s",
                            verdict(got["drain_s"] < TARGET_BACKLOG_S and lossless),
                            f"hub ready after {got['ready_s']:.1f} s; queued at "
                            f"{got['publish_rate']:,.0f}/s; stored {got['stored']}, dead "
                            f"letters {got['letters']}"))
    return rows


def print_rows(script: str, detail: str, rows: list[Row]) -> None:
    """The figures table every bench prints to stdout: a title line (the script, the machine,
    its load at the end, then `detail`) and the rows in aligned columns."""
    load = os.getloadavg()
    print(f"\nbench/{script} ({os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
          f"at the end; {detail})")
    header = Row("backend", "figure", "value", "target", "result", "reference / detail")
    widths = [max(len(getattr(r, f)) for r in [header, *rows])
              for f in ("backend", "figure", "value", "target", "verdict")]
    for row in [header, *rows]:
        cells = [row.backend, row.figure, row.value, row.target, row.verdict]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  "
              + row.reference)


def print_table(rows: list[Row], args, sizes: Sizes, seconds: float) -> None:
    print_rows("ingest.py", f"{'quick' if args.quick else 'full'}; {sizes.sensors} bench "
                            f"sensors; {seconds:.0f} s", rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--hub-protocol", choices=["3.1.1", "5"], default="3.1.1",
                        help="the hub's own MQTT protocol (setting mqtt.protocol)")
    parser.add_argument("--db", choices=["spatialite", "postgis", "both"], default="both")
    parser.add_argument("--part", choices=["throughput", "backlog", "latency", "all"],
                        default="all")
    parser.add_argument("--backlog-seconds", type=float, default=None,
                        help="how long the hub is down (default 60, 2 with --quick)")
    parser.add_argument("--load-rate", type=float, default=LOAD_RATE,
                        help="readings/s of the backlog and the background load (default 1000; "
                             "the targets assume 1000)")
    parser.add_argument("--load-batch", type=int, default=1,
                        help="readings per message of the 1,000 readings/s loads (default 1)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.backlog_seconds is None:
        args.backlog_seconds = 2.0 if args.quick else 60.0
    if not 1 <= args.load_batch <= 1000:
        parser.error("--load-batch must be 1-1000")
    # Ctrl-C too when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    started = time.monotonic()
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="rescuehub-bench-ingest-"))
    tmp.chmod(0o755)  # a root hub's broker runs as `mosquitto` and must reach its directory
    try:
        if args.db in ("spatialite", "both"):
            rows += run_backend("SpatiaLite", "", tmp, args, sizes)
        if args.db in ("postgis", "both"):
            rows += run_postgis(tmp, args, sizes)
    except BenchError as exc:
        log(f"stopped: {exc}")
        print_table(rows, args, sizes, time.monotonic() - started)
        return 1
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, args, sizes, time.monotonic() - started)
    # A missed target is a figure, not a failure of the bench (`make bench` runs the next one).
    return 0


def run_postgis(tmp: Path, args, sizes, runner=None) -> list[Row]:
    """`runner` (run_backend by default) on a scratch database of ADMIN_URL's server, dropped
    after; no server: skipped with a line in the log."""
    from sqlalchemy import create_engine, text

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"rescuehub_bench_{uuid.uuid4().hex[:8]}"
    try:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # no server: report and go on without it
            log(f"PostGIS skipped: {str(exc).splitlines()[0]}")
            return []
        try:
            return (runner or run_backend)("PostGIS", ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
                                           tmp, args, sizes)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
