"""Benchmark: members' positions through the real hub process (issue #21, "Performance").

Per backend (SpatiaLite, PostGIS on RESCUEHUB_TEST_DATABASE_URL's server), on a fresh data directory
after `rescuehub demo --scale prefecture` (103 townships, 1,106 villages, 1,248 members), with
`rescuehub run` as the hub and the broker of bench/ingest.py (imported from it: started with the
hub's own code and config/mosquitto.conf, mqtt.managed = false):

- every active member gets an OwnTracks phone, registered in one transaction through the devices
  service (`dispatch.positions.devices.register_device`, what `rescuehub device add` calls), so
  every phone has its own MQTT login in the broker's password and ACL files;
- phones: each phone is its own paho client with its own TCP connection and device login (the
  ACL ties a login to its own `owntracks/{login}/#`, and use_username_as_clientid to one
  connection). No thread per phone: PHONE_PROCESSES processes each drive their share of the
  connections from one selector loop through paho's external-loop calls (loop_read,
  loop_write, loop_misc), as a broker load tool would. They publish OwnTracks `_type: location`
  at QoS 1 (MQTT 3.1.1, as the OwnTracks apps do), not retained (a retained location is replayed
  when the hub subscribes; the hub takes it as a fix, which would blur the counts), from a point
  in a village of the member's township, walking ~10 m between reports;
- office clients: --clients (200) Socket.IO clients on `/live` with the bench commander's bearer
  token (so in the `office` room), over websockets, CLIENTS_PER_ADDRESS from each loopback
  address 127.0.0.2, .3, ... (under web.max_connections_per_address, left as configured).
  Each address's clients run in one process, from one selector loop with a minimal websocket
  reader (see `OfficeClients` for why not python-socketio's client);
- burst (before any office client connects): every phone publishes --rounds fixes back to back
  (its queue after that many 10 s reports without signal, oldest first), all phones at once.
  Reference: a bare paho subscriber (bench/ingest.py's, an observer login, MQTT 3.1.1 as the
  hub's own connection) receiving the very same messages from the same phones, before the hub
  ever connected (its persistent session would otherwise queue them). Figures: the hub's
  stored fixes/s (rescuehub_positions_stored_total, from the go to the last fix stored) and its
  ratio to the bare subscriber's receive rate;
- steady, with the office clients connected: every phone reports every PERIOD_S (1,248 phones:
  ~125 fixes/s), phases spread evenly, for --seconds: publish -> `position` event at every
  office client, p50 and p99 (target p99 < 500 ms; the first WARMUP_S are left out), positions
  delivered vs expected (one per fix and client: each fix is newer than its member's last; a
  `position` event lists the markers moved since the last one, dispatch/positions/live.py), and
  the CPU share of the hub's process tree (`rescuehub run`, its gunicorn worker, its children)
  from /proc over the measured part, beside the broker's, the bench's own processes' and the
  whole machine's;
- reconnect, the office clients still connected: every phone sends its current fix at once;
  how long until the last of those `position` events reached the clients.

With --layout split the hub is the scale-out instead: `rescuehub worker` (MQTT, the intake) and
one `rescuehub web` (Socket.IO) as two processes, events crossing through Redis.

Every fix published is then counted in the database: a lost fix makes the run fail (exit 1); a
slow figure never does. Progress goes to stderr, the figures table to stdout.

Run: .venv/bin/python bench/positions.py [--db spatialite|postgis|both] [--seconds 60]
     [--clients 200] [--rounds 10] [--part burst|steady|all] [--layout run|split] [--quick]
     [--keep]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import heapq
import json
import os
import queue
import random
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import ingest
from ingest import REFERENCE_OBSERVER, BenchError, Children, Row, Setup, log, percentile, verdict

ingest.LOG_NAME = "positions"

REDIS_URL = os.environ.get("RESCUEHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PERIOD_S = 10.0  # each phone reports this often in the steady part
WARMUP_S = 10.0  # the steady part's first reports, left out of the latency
TARGET_P99_MS = 500.0
PHONE_PROCESSES = 4
CLIENTS_PER_ADDRESS = 50  # office clients per loopback address (and per client process)
STORED = "rescuehub_positions_stored_total"
TOPIC = "owntracks/{}/phone"
QUIET_S = 3.0  # an office client's report waits until no `position` came for this long
SETTLE_MAX_S = 120.0  # ...or this long at most


@dataclass(frozen=True)
class Sizes:
    seconds: float
    clients: int
    rounds: int


FULL = Sizes(seconds=60.0, clients=200, rounds=10)
QUICK = Sizes(seconds=20.0, clients=50, rounds=3)


@dataclass(frozen=True)
class Phone:
    """A member's registered OwnTracks phone and where it starts."""

    index: int
    login: str
    password: str
    member: str
    lon: float
    lat: float


# --- phones: many paho clients per process, one selector loop ----------------------------------

def iso(tst: int) -> str:
    """A fix's time as the hub's `position` event carries it."""
    return datetime.fromtimestamp(tst, UTC).isoformat()


class Fleet:
    """The phones of one process: their paho clients, one selector, one loop."""

    def __init__(self, spec: dict):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.spec = spec
        self.rng = random.Random(spec["seed"])
        self.selector = selectors.DefaultSelector()
        self.phones = [Phone(**p) for p in spec["phones"]]
        self.where = {p.index: [p.lon, p.lat] for p in self.phones}
        self.clients = []
        self.connected = 0
        self.refused: list[str] = []
        self.acked = self.failed = 0
        self.t_ack = 0.0
        self.pending_write: set = set()
        self.bursts: dict[tuple[int, int], list[tuple[int, bytes]]] = {}
        for phone in self.phones:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=phone.login,
                                 protocol=paho.MQTTv311, clean_session=True)
            client.username_pw_set(phone.login, phone.password)
            client.on_connect = self._on_connect
            client.on_publish = self._on_publish
            self.clients.append(client)

    def _on_connect(self, client, _u, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            self.refused.append(f"{client._client_id!r}: {reason_code}")
        else:
            self.connected += 1

    def _on_publish(self, _c, _u, _mid, reason_code, _props) -> None:
        if reason_code.is_failure:
            self.failed += 1
        else:
            self.acked += 1
        self.t_ack = time.monotonic()

    def connect(self, timeout: float = 60.0) -> None:
        for client in self.clients:
            client.connect(self.spec["host"], self.spec["port"], keepalive=60)
            self.selector.register(client.socket(), selectors.EVENT_READ, client)
            self.pump(0)
        deadline = time.monotonic() + timeout
        while self.connected + len(self.refused) < len(self.clients):
            if time.monotonic() > deadline:
                raise BenchError(f"{self.connected} of {len(self.clients)} phones connected "
                                 f"within {timeout:.0f} s")
            self.pump(0.05)
        if self.refused:
            raise BenchError(f"the broker refused {len(self.refused)} phones, e.g. "
                             f"{self.refused[0]}")

    def pump(self, timeout: float) -> None:
        """Read what arrived (PUBACKs, CONNACKs, PINGRESPs), write what is left to write."""
        for key, _events in self.selector.select(timeout):
            key.data.loop_read(100)
        for client in list(self.pending_write):
            client.loop_write()
            if not client.want_write():
                self.pending_write.discard(client)

    def misc(self) -> None:
        """Keepalive pings (paho's loop_misc), once a second is plenty for a 60 s keepalive."""
        for client in self.clients:
            client.loop_misc()
            if client.want_write():
                self.pending_write.add(client)

    def payload(self, phone: Phone, tst: int) -> bytes:
        lon_lat = self.where[phone.index]
        lon_lat[0] += self.rng.gauss(0.0, 0.0001)
        lon_lat[1] += self.rng.gauss(0.0, 0.0001)
        return json.dumps({
            "_type": "location", "lat": round(lon_lat[1], 6), "lon": round(lon_lat[0], 6),
            "tst": tst, "acc": self.rng.randint(5, 30), "vel": self.rng.randint(0, 6),
            "batt": self.rng.randint(20, 100), "tid": phone.login[-2:], "conn": "m",
            "t": "p"}, separators=(",", ":")).encode()

    def publish(self, k: int, payload: bytes) -> None:
        client = self.clients[k]
        client.publish(TOPIC.format(self.phones[k].login), payload, qos=1)
        if client.want_write():
            self.pending_write.add(client)

    def wait_acks(self, total: int, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        last_misc = time.monotonic()
        while self.acked + self.failed < total and time.monotonic() < deadline:
            self.pump(0.05)
            if time.monotonic() - last_misc > 1.0:
                self.misc()
                last_misc = time.monotonic()
        return self.acked + self.failed >= total

    def burst(self, rounds: int, base_tst: int, go_at: float) -> dict:
        """Every phone publishes its `rounds` queued fixes (PERIOD_S apart, ending at base_tst),
        round after round, flat out from go_at."""
        # Built once: the reference and the hub get the very same messages.
        plan = self.bursts.get((rounds, base_tst))
        if plan is None:
            plan = [(k, self.payload(phone, base_tst - int(PERIOD_S) * (rounds - 1 - r)))
                    for r in range(rounds) for k, phone in enumerate(self.phones)]
            self.bursts[(rounds, base_tst)] = plan
        self.acked = self.failed = 0
        while time.monotonic() < go_at:
            self.pump(min(0.05, max(0.0, go_at - time.monotonic())))
        started = time.monotonic()
        for n, (k, payload) in enumerate(plan):
            self.publish(k, payload)
            if n % 100 == 99:
                self.pump(0)
        published = time.monotonic()
        complete = self.wait_acks(len(plan))
        return {"published": len(plan), "acked": self.acked, "failed": self.failed,
                "complete": complete, "started": started, "t_published": published,
                "t_last": self.t_ack}

    def steady(self, start_at: float, seconds: float) -> dict:
        """Each phone reports every PERIOD_S from start_at + its phase until start_at + seconds;
        returns when each fix was published, by (member, fix time)."""
        total = self.spec["total"]
        due = sorted((start_at + PERIOD_S * phone.index / total, k)
                     for k, phone in enumerate(self.phones))
        end = start_at + seconds
        sent: dict[str, float] = {}
        self.acked = self.failed = 0
        last_misc = time.monotonic()
        heapq.heapify(due)
        while due and due[0][0] < end:
            now = time.monotonic()
            if due[0][0] <= now:
                at, k = heapq.heappop(due)
                tst = int(time.time())
                phone = self.phones[k]
                sent[f"{phone.member}|{iso(tst)}"] = time.monotonic()
                self.publish(k, self.payload(phone, tst))
                heapq.heappush(due, (at + PERIOD_S, k))
                continue
            self.pump(min(0.05, due[0][0] - now))
            if now - last_misc > 1.0:
                self.misc()
                last_misc = now
        complete = self.wait_acks(len(sent))
        return {"published": len(sent), "acked": self.acked, "failed": self.failed,
                "complete": complete, "sent": sent}

    def idle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(0.05)
        self.misc()

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.disconnect()
                client.loop_write()


def phones_process(spec: dict, commands, results) -> None:
    """A process of phones (spawned): connect them all, then obey the parent's commands
    ("burst", rounds, base_tst, go_at), ("steady", start_at, seconds), ("stop",); keepalives
    in between."""
    name = spec["name"]
    try:
        fleet = Fleet(spec)
        fleet.connect()
        results.put(("ready", name, {"pid": os.getpid(), "connected": fleet.connected}))
        while True:
            try:
                command = commands.get_nowait()
            except queue.Empty:
                fleet.idle(0.5)
                continue
            if command[0] == "stop":
                fleet.close()
                return
            if command[0] == "burst":
                results.put(("burst", name, fleet.burst(*command[1:])))
            elif command[0] == "steady":
                results.put(("steady", name, fleet.steady(*command[1:])))
    except BaseException as exc:  # report any failure to the parent, which decides
        results.put(("error", name, f"{type(exc).__name__}: {exc}"))


# --- office clients: a minimal Socket.IO reader over raw websockets ------------------------------

POSITION_FRAME = b'42/live,["position"'


def ws_frame(opcode: int, data: bytes) -> bytes:
    """A client's (masked) websocket frame."""
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + body


@dataclass
class Conn:
    """One office client's websocket."""

    sock: socket.socket
    buffer: bytes = b""
    hello: bool = False
    refused: str = ""
    closed: bool = False


@dataclass
class Seen:
    """What the clients of one process received: per position listed in a `position` event
    (key member|fix time), the hub's emit time (ms, from the event's id) and each client's
    arrival (monotonic); `events` counts the events, `positions` the fixes they listed."""

    arrivals: dict[str, list[float]] = field(default_factory=dict)
    emitted: dict[str, int] = field(default_factory=dict)
    events: int = 0
    positions: int = 0
    other: int = 0
    unparsed: int = 0
    last: float = 0.0


class OfficeClients:
    """Socket.IO clients on /live (Engine.IO 4 over a websocket, bearer token), several per
    process, read by one selector loop that stamps each `position` event on arrival.

    Why not python-socketio's client: at one event per fix (125 events/s to each of 200 clients,
    25,000 frames/s, before the hub sent moved markers together) its Engine.IO layer (a thread
    per message received, wsproto in Python) cost more CPU than this machine's two cores have,
    and bench/ingest.py found it adding 200-300 ms to arrival at far lower rates. A browser
    reads its one websocket in native code; these readers parse a frame's header, answer pings
    and read a `position` frame's JSON, so the clients take a small share of the CPU the hub
    needs (their share is printed)."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.selector = selectors.DefaultSelector()
        self.conns: list[Conn] = []
        self.seen = Seen()

    def connect(self) -> None:
        host, port = "127.0.0.1", self.spec["port"]
        for _ in range(self.spec["count"]):
            sock = socket.create_connection((host, port), timeout=15,
                                            source_address=(self.spec["source"], 0))
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                          f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          ).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise BenchError("the hub closed a websocket handshake")
                head += chunk
            status, rest = head.split(b"\r\n\r\n", 1)
            if b" 101 " not in status.split(b"\r\n", 1)[0]:
                raise BenchError(f"websocket refused: {status.splitlines()[0]!r}")
            conn = Conn(sock, rest)
            self.conns.append(conn)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, conn)
            sock.sendall(ws_frame(1, b"40/live," + json.dumps(
                {"token": self.spec["token"]}).encode()))
            self._frames(conn, time.monotonic())
        deadline = time.monotonic() + 30
        while not all(c.hello or c.refused or c.closed for c in self.conns):
            if time.monotonic() > deadline:
                break
            self.pump(0.05)

    def pump(self, timeout: float) -> None:
        for key, _events in self.selector.select(timeout):
            conn = key.data
            try:
                data = conn.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                conn.closed = True
                self.selector.unregister(conn.sock)
                continue
            conn.buffer += data
            self._frames(conn, time.monotonic())

    def _frames(self, conn: Conn, now: float) -> None:
        buf, pos, n = conn.buffer, 0, len(conn.buffer)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if n - pos < head + length:
                break
            payload = buf[pos + head:pos + head + length]
            pos += head + length
            self._message(conn, b0 & 0x0F, payload, now)
        conn.buffer = buf[pos:]

    def _message(self, conn: Conn, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x9:  # websocket ping
            conn.sock.sendall(ws_frame(0xA, payload))
        elif opcode == 0x8:
            conn.closed = True
        elif opcode != 0x1:
            self.seen.other += 1
        elif payload.startswith(POSITION_FRAME):
            self._position(payload, now)
        elif payload == b"2":  # Engine.IO ping
            conn.sock.sendall(ws_frame(1, b"3"))
        elif payload.startswith(b'42/live,["hello"'):
            conn.hello = True
        elif payload.startswith(b"44/live,"):
            conn.refused = payload.decode(errors="replace")[:200]
        else:
            self.seen.other += 1

    def _position(self, payload: bytes, now: float) -> None:
        """A `position` event: {"id", "ts", "positions": [{"member", "ts" (the fix's), ...}]}
        (dispatch/positions/live.py); each listed fix counts as one position."""
        seen = self.seen
        seen.events += 1
        seen.last = now
        try:
            event = json.loads(payload[len(b"42/live,"):])[1]
            emitted = int(event["id"].split("-", 1)[0])
            keys = [f"{p['member']}|{p['ts']}" for p in event["positions"]]
        except (ValueError, KeyError, IndexError, TypeError):
            seen.unparsed += 1
            return
        seen.positions += len(keys)
        for key in keys:
            got = seen.arrivals.get(key)
            if got is None:
                seen.arrivals[key] = [now]
                seen.emitted[key] = emitted
            else:
                got.append(now)

    def settle(self, quiet_s: float, max_s: float) -> None:
        """Read until no `position` came for quiet_s (at most max_s)."""
        started = time.monotonic()
        while time.monotonic() - started < max_s:
            self.pump(0.05)
            if time.monotonic() - max(self.seen.last, started) > quiet_s:
                return

    def report(self) -> dict:
        seen, self.seen = self.seen, Seen()
        return {"arrivals": seen.arrivals, "emitted": seen.emitted, "events": seen.events,
                "positions": seen.positions, "other": seen.other, "unparsed": seen.unparsed,
                "last": seen.last, "closed": sum(c.closed for c in self.conns)}


def office_process(spec: dict, commands, results) -> None:
    """A process of office clients (spawned): connect, then read until told to report
    ("report", quiet_s, max_s) or to stop."""
    name = spec["name"]
    try:
        clients = OfficeClients(spec)
        clients.connect()
        refused = [c.refused for c in clients.conns if c.refused]
        hello = sum(c.hello for c in clients.conns)
        if refused or hello < len(clients.conns):
            raise BenchError(f"{hello} of {len(clients.conns)} office clients signed in to "
                             f"/live; refused: {refused[:1] or 'none'}")
        results.put(("ready", name, {"pid": os.getpid(), "connected": hello}))
        while True:
            try:
                command = commands.get_nowait()
            except queue.Empty:
                clients.pump(0.05)
                continue
            if command[0] == "stop":
                return
            clients.settle(*command[1:])
            results.put(("report", name, clients.report()))
    except BaseException as exc:
        results.put(("error", name, f"{type(exc).__name__}: {exc}"))


# --- CPU from /proc ---------------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, float]]:
    """Every process: pid -> (parent pid, CPU seconds used, user + system)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return table


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds used so far by these processes and all their descendants."""
    table = _proc_table()
    members, grew = {r for r in roots if r in table}, True
    while grew:
        more = {pid for pid, (ppid, _) in table.items() if ppid in members} - members
        members |= more
        grew = bool(more)
    return sum(table[pid][1] for pid in members)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuWatch:
    """CPU shares over a window: the hub's tree, the broker, the bench's phones and clients."""

    groups: dict[str, list[int]]
    started: float = 0.0
    before: dict[str, float] = field(default_factory=dict)
    machine: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        self.started = time.monotonic()
        self.before = {name: tree_cpu(pids) for name, pids in self.groups.items()}
        self.machine = machine_busy()

    def shares(self) -> dict[str, float]:
        """Each group's CPU over the window as a share of one core (1.0 = a whole core)."""
        wall = time.monotonic() - self.started
        out = {name: (tree_cpu(pids) - self.before[name]) / wall
               for name, pids in self.groups.items()}
        busy, total = machine_busy()
        out["machine"] = (busy - self.machine[0]) / max(total - self.machine[1], 1) * (
            os.cpu_count() or 1)
        return out


# --- set-up ------------------------------------------------------------------------------------

def register_phones(setup: Setup) -> list[Phone]:
    """A phone per active member, registered through the devices service in one transaction
    (what `rescuehub device add` does for one), each placed in a village of its township."""
    from geoalchemy2.shape import to_shape
    from sqlalchemy import select

    from dispatch.core.broker import hash_mqtt_password
    from dispatch.core.db import db
    from dispatch.positions.devices import register_device
    from dispatch.roster.models import Member
    from maps.models import Township, Village

    settings = setup.app.config["SETTINGS"]
    rng = random.Random(21)
    started = time.monotonic()
    with db.transaction() as s:
        points: dict[str, list[tuple[float, float]]] = {}
        for town, boundary in s.execute(select(Township.code, Village.boundary).join(
                Township, Township.id == Village.township_id)):
            point = to_shape(boundary).representative_point()
            points.setdefault(town, []).append((point.x, point.y))
        everywhere = [p for ps in points.values() for p in ps]
        members = s.scalars(select(Member.code).where(Member.active.is_(True))
                            .order_by(Member.code)).all()
        phones = []
        for index, member in enumerate(members):
            added = register_device(s, member, kind="owntracks", name=None, settings=settings,
                                    actor="bench", mqtt_hash=hash_mqtt_password)
            lon, lat = rng.choice(points.get(member.split("-", 1)[0]) or everywhere)
            phones.append(Phone(index, added.code, added.mqtt_password, added.member,
                                round(lon, 6), round(lat, 6)))
    log(f"{setup.label}: {len(phones)} phones registered through the devices service in "
        f"{time.monotonic() - started:.1f} s")
    return phones


@dataclass
class Bench:
    """One backend's running pieces."""

    setup: Setup
    hub: ingest.Hub
    children: Children
    phones: list[Phone]
    phone_queues: dict[str, object] = field(default_factory=dict)
    client_queues: dict[str, object] = field(default_factory=dict)
    pids: dict[str, list[int]] = field(default_factory=dict)
    connected_clients: int = 0


def start_phones(bench: Bench) -> None:
    started = time.monotonic()
    ctx = bench.children.ctx
    shares = [bench.phones[k::PHONE_PROCESSES] for k in range(PHONE_PROCESSES)]
    for k, share in enumerate(shares):
        name = f"phones-{k + 1}"
        bench.phone_queues[name] = ctx.Queue()
        spec = {"name": name, "host": "127.0.0.1", "port": bench.setup.mqtt_port, "seed": k,
                "total": len(bench.phones), "phones": [p.__dict__ for p in share]}
        bench.children.start(phones_process, spec, bench.phone_queues[name],
                             bench.children.results)
    ready = bench.children.collect("ready", set(bench.phone_queues), 180)
    bench.pids["phones"] = [r["pid"] for r in ready.values()]
    connected = sum(r["connected"] for r in ready.values())
    log(f"{bench.setup.label}: {connected} phones connected, each with its own login, from "
        f"{PHONE_PROCESSES} processes in {time.monotonic() - started:.1f} s")


def start_clients(bench: Bench, count: int) -> None:
    started = time.monotonic()
    ctx = bench.children.ctx
    groups = [min(CLIENTS_PER_ADDRESS, count - i) for i in range(0, count, CLIENTS_PER_ADDRESS)]
    for k, size in enumerate(groups):
        name = f"office-{k + 1}"
        bench.client_queues[name] = ctx.Queue()
        spec = {"name": name, "port": bench.setup.web_port, "token": bench.setup.token,
                "count": size, "source": f"127.0.0.{k + 2}"}
        bench.children.start(office_process, spec, bench.client_queues[name],
                             bench.children.results)
    ready = bench.children.collect("ready", set(bench.client_queues), 120)
    bench.pids["clients"] = [r["pid"] for r in ready.values()]
    bench.connected_clients = sum(r["connected"] for r in ready.values())
    log(f"{bench.setup.label}: {bench.connected_clients} office clients on /live (office room) "
        f"from {len(groups)} processes in {time.monotonic() - started:.1f} s")


def command_phones(bench: Bench, command: tuple, kind: str, timeout: float) -> dict:
    for q in bench.phone_queues.values():
        q.put(command)
    reports = bench.children.collect(kind, set(bench.phone_queues), timeout)
    failed = sum(r["failed"] for r in reports.values())
    incomplete = [n for n, r in reports.items() if not r["complete"]]
    if failed or incomplete:
        raise BenchError(f"publishing failed: {failed} refused PUBACK(s), unacknowledged at "
                         f"{', '.join(incomplete) or 'none'}")
    return reports


def client_reports(bench: Bench) -> dict:
    for q in bench.client_queues.values():
        q.put(("report", QUIET_S, SETTLE_MAX_S))
    return bench.children.collect("report", set(bench.client_queues), SETTLE_MAX_S + 60)


def fixes_in_db(setup: Setup) -> int:
    from sqlalchemy import func, select

    from dispatch.core.db import db
    from dispatch.positions.models import Position

    with setup.app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(Position))
        finally:
            db.remove()


# --- the parts ---------------------------------------------------------------------------------

def reference(bench: Bench, rounds: int, base_tst: int) -> dict:
    """The bare paho subscriber's receive rate for the burst (the hub has never connected)."""
    setup, children = bench.setup, bench.children
    expected = len(bench.phones) * rounds
    children.start(ingest.bare_subscriber_process, {
        "client_id": REFERENCE_OBSERVER, "username": REFERENCE_OBSERVER,
        "password": setup.observer_password, "host": "127.0.0.1", "port": setup.mqtt_port,
        "expected": expected, "protocol": "3.1.1", "topic": TOPIC.format("+"),
        "marker": b'"_type"'}, children.results)
    children.collect("ready", {"bare"}, 60)
    go_at = time.monotonic() + 1.0
    sent = command_phones(bench, ("burst", rounds, base_tst, go_at), "burst", 300)
    got = children.collect("done", {"bare"}, 300)["bare"]
    if got["readings"] < expected:
        raise BenchError(f"the bare subscriber got {got['readings']} of {expected} messages")
    seconds = got["t_last"] - go_at
    published = max(r["t_published"] for r in sent.values()) - go_at
    result = {"rate": expected / seconds, "seconds": seconds,
              "publish_rate": expected / published}
    log(f"{setup.label}: reference: bare paho (MQTT 3.1.1) received the burst of {expected} "
        f"messages in {seconds:.2f} s = {result['rate']:,.0f}/s; phones published at "
        f"{result['publish_rate']:,.0f}/s")
    return result


def burst(bench: Bench, rounds: int, base_tst: int, label: str) -> dict:
    """A burst to the running hub: stored fixes/s, and with office clients connected, when the
    last of its `position` events reached them."""
    setup = bench.setup
    expected = len(bench.phones) * rounds
    baseline = ingest.counter(setup, STORED)
    go_at = time.monotonic() + 1.0
    cpu0 = tree_cpu(hub_pids(bench))
    sent = command_phones(bench, ("burst", rounds, base_tst, go_at), "burst", 300)
    done_at, samples = ingest.wait_stored(setup, expected, baseline=baseline, name=STORED)
    if done_at is None:
        raise BenchError(f"{label}: the hub stalled at {samples[-1][1] if samples else 0:.0f} "
                         f"of {expected} fixes stored")
    cpu = tree_cpu(hub_pids(bench)) - cpu0
    published = max(r["t_published"] for r in sent.values()) - go_at
    result = {"rate": expected / (done_at - go_at), "seconds": done_at - go_at,
              "publish_rate": expected / published, "published": expected,
              "cpu_ms": cpu / expected * 1000, "share": cpu / (done_at - go_at)}
    log(f"{setup.label}: {label}: {expected} fixes stored in {result['seconds']:.2f} s = "
        f"{result['rate']:,.0f}/s (published at {result['publish_rate']:,.0f}/s); the hub's "
        f"CPU {result['cpu_ms']:.2f} ms per fix ({result['share'] * 100:.0f} % of a core); "
        f"stored per second: {ingest.per_second(samples, go_at)}")
    if bench.client_queues:
        reports = client_reports(bench)
        result["positions"] = sum(r["positions"] for r in reports.values())
        result["events"] = sum(r["events"] for r in reports.values())
        last = max((r["last"] for r in reports.values() if r["events"]), default=go_at)
        result["map_current_s"] = last - go_at
        log(f"{setup.label}: {label}: {result['positions']} positions in {result['events']} "
            f"`position` events at {bench.connected_clients} clients, the last "
            f"{result['map_current_s']:.1f} s after the go")
    return result


def steady(bench: Bench, seconds: float) -> dict:
    """Every phone every PERIOD_S: latency, delivery and CPU."""
    setup = bench.setup
    baseline = ingest.counter(setup, STORED)
    groups = {"hub": hub_pids(bench), "broker": bench.pids["broker"],
              "phones": bench.pids["phones"], "clients": bench.pids["clients"]}
    if getattr(bench.hub, "worker", None):
        groups.update(worker=[bench.hub.worker.pid], web=[bench.hub.proc.pid])
    watch = CpuWatch(groups)
    start_at = time.monotonic() + 1.0
    for q in bench.phone_queues.values():
        q.put(("steady", start_at, seconds))
    time.sleep(max(0.0, start_at + WARMUP_S - time.monotonic()))
    watch.start()
    time.sleep(max(0.0, start_at + seconds - time.monotonic()))
    shares = watch.shares()
    reports = bench.children.collect("steady", set(bench.phone_queues), 120)
    if any(r["failed"] or not r["complete"] for r in reports.values()):
        raise BenchError("steady: a phone's fix was refused or not acknowledged")
    sent: dict[str, float] = {}
    for r in reports.values():
        sent.update(r["sent"])
    done_at, samples = ingest.wait_stored(setup, len(sent), baseline=baseline, name=STORED)
    if done_at is None:
        raise BenchError(f"steady: the hub stalled at {samples[-1][1] if samples else 0:.0f} "
                         f"of {len(sent)} fixes stored")
    seen = client_reports(bench)
    lat, hub_ms, deliver_ms, delivered = [], [], [], 0
    offset = time.time() - time.monotonic()
    for r in seen.values():
        for key, arrivals in r["arrivals"].items():
            published = sent.get(key)
            if published is None:
                continue
            delivered += len(arrivals)
            if published < start_at + WARMUP_S:
                continue
            emitted = r["emitted"][key] / 1000 - offset
            lat += [(t - published) * 1000 for t in arrivals]
            deliver_ms += [(t - emitted) * 1000 for t in arrivals]
            hub_ms.append((emitted - published) * 1000)
    expected = len(sent) * bench.connected_clients
    result = {"lat": lat, "hub_ms": hub_ms, "deliver_ms": deliver_ms, "delivered": delivered,
              "expected": expected, "fixes": len(sent), "shares": shares,
              "unparsed": sum(r["unparsed"] for r in seen.values()),
              "closed": sum(r["closed"] for r in seen.values()),
              "rate": len(sent) / seconds, "events": sum(r["events"] for r in seen.values())}
    log(f"{setup.label}: steady: {len(sent)} fixes in {seconds:.0f} s ({result['rate']:.0f}/s); "
        f"{delivered} of {expected} positions delivered in {result['events']} `position` events "
        f"({result['events'] / max(1, bench.connected_clients):.0f} per client); publish -> "
        f"event {_stats(lat)}")
    log(f"{setup.label}: steady: publish -> hub's emit {_stats(hub_ms)}; emit -> client "
        f"{_stats(deliver_ms)}; clients closed {result['closed']}, unparsed "
        f"{result['unparsed']}")
    log(f"{setup.label}: steady: CPU (share of one core) " + ", ".join(
        f"{k} {v * 100:.0f} %" for k, v in shares.items()))
    return result


def _stats(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"p50 {percentile(values, 0.5):.1f} ms p99 {percentile(values, 0.99):.1f} ms "
            f"max {max(values):.1f} ms")


# --- per backend ---------------------------------------------------------------------------------

def run_backend(label: str, url: str, tmp: Path, args, sizes: Sizes) -> list[Row]:
    data_dir = tmp / f"var-{label.lower()}"
    web_port, mqtt_port = ingest.free_port(), ingest.free_port()
    env = ingest.hub_env(data_dir, url, web_port, mqtt_port, "3.1.1", [REFERENCE_OBSERVER])
    setup = Setup(label, url, data_dir, env, web_port, mqtt_port)
    phones: list[Phone] = []
    with contextlib.ExitStack() as stack:
        hub = ingest.prepare(setup, stack, demo=("demo", "--scale", "prefecture"),
                             logins=lambda s: phones.extend(register_phones(s)))
        children = Children()
        stack.callback(children.close)
        bench = Bench(setup, hub, children, phones)
        stack.callback(_stop_children, bench)
        bench.pids["broker"] = [_broker_pid()]
        start_phones(bench)
        # The burst's fixes: each phone's last `rounds` reports, the newest a minute ago (the
        # steady part's, stamped when sent, are newer, so each of those moves its marker).
        base_tst = int(time.time()) - 60
        ref = reference(bench, sizes.rounds, base_tst) if args.part != "steady" else {}
        before = fixes_in_db(setup)
        if args.layout == "split":
            bench.hub = SplitHub(setup, hub.log_path)
            stack.callback(bench.hub.stop)
        start_hub(bench, args.layout)
        ingest.sign_in(setup)
        settle_hub(bench)
        got = calm = again = None
        if args.part in ("burst", "all"):
            got = burst(bench, sizes.rounds, base_tst, "burst")
        start_clients(bench, sizes.clients)
        settle_hub(bench)
        if args.part in ("steady", "all"):
            calm = steady(bench, sizes.seconds)
        if args.part in ("burst", "all"):
            # Every phone back at once with its current fix, the office watching.
            again = burst(bench, 1, int(time.time()), "reconnect")
        stored = fixes_in_db(setup) - before
        published = sum(part["published"] for part in (got, again) if part) + (
            calm["fixes"] if calm else 0)
    return _rows(label, ref, got, calm, again, stored, published, bench.connected_clients)


class SplitHub(ingest.Hub):
    """The scale-out layout (README "Deploying at scale"): `rescuehub worker` (MQTT, the
    positions' intake, the scheduler) and one `rescuehub web` (pages, Socket.IO) as two
    processes, the worker's events reaching the web process through Redis
    (realtime.message_queue)."""

    def __init__(self, setup: Setup, log_path: Path):
        super().__init__(setup, log_path)
        self.worker: subprocess.Popen | None = None

    def start(self) -> float:
        started = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.worker = subprocess.Popen(
                [ingest.RESCUEHUB, "worker"], env=self.setup.env, cwd=self.setup.data_dir.parent,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
            self.proc = subprocess.Popen(
                [ingest.RESCUEHUB, "web", "--port", str(self.setup.web_port)],
                env=self.setup.env, cwd=self.setup.data_dir.parent, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return started

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)  # the web process
        self.proc, self.worker = self.worker, None
        super().stop(timeout)  # then the worker


def hub_pids(bench: Bench) -> list[int]:
    """The hub's processes: `rescuehub run`, or the worker and the web process."""
    worker = getattr(bench.hub, "worker", None)
    return [bench.hub.proc.pid, *([worker.pid] if worker else [])]


def start_hub(bench: Bench, layout: str) -> None:
    """Start the hub (`rescuehub run`, or worker and web) on ports free now (prepare() took
    minutes: one chosen then may be taken by another program by now)."""
    setup = bench.setup
    setup.web_port = ingest.free_port()
    setup.env["RESCUEHUB_WEB_PORT"] = str(setup.web_port)
    if layout == "split":
        metrics_port = ingest.free_port()
        setup.env.update(RESCUEHUB_REALTIME_MESSAGE_QUEUE=REDIS_URL,
                         RESCUEHUB_REALTIME_CHANNEL=f"rescuehub-bench-{os.getpid()}",
                         RESCUEHUB_WORKER_METRICS_PORT=str(metrics_port))
        setup.metrics_base = f"http://127.0.0.1:{metrics_port}"
    bench.hub.start()
    bench.hub.wait_ready()
    what = ("rescuehub run" if layout == "run" else
            f"rescuehub web + rescuehub worker (pid {bench.hub.worker.pid}) through Redis")
    log(f"{setup.label}: hub up ({what}, pid {bench.hub.proc.pid}, web port "
        f"{setup.web_port})")


def settle_hub(bench: Bench, quiet: float = 0.15, window_s: float = 2.0,
               max_s: float = 120.0) -> None:
    """Wait until the hub's start-up work is done (its processes below `quiet` of a core over
    `window_s`): the planner's first prefecture plan, the warnings' first publication."""
    started = time.monotonic()
    while time.monotonic() - started < max_s:
        watch = CpuWatch({"hub": hub_pids(bench)})
        watch.start()
        time.sleep(window_s)
        share = watch.shares()["hub"]
        if share < quiet:
            break
    log(f"{bench.setup.label}: hub idle ({share * 100:.0f} % of a core over {window_s:.0f} s) "
        f"{time.monotonic() - started:.0f} s after it was ready")


def _broker_pid() -> int:
    """The broker bench/ingest.py's prepare() started: this process's Mosquitto child."""
    for pid, (ppid, _cpu) in _proc_table().items():
        with contextlib.suppress(OSError):
            if ppid == os.getpid() and Path(f"/proc/{pid}/comm").read_text().strip() == \
                    "mosquitto":
                return pid
    raise BenchError("no Mosquitto child process found")


def _stop_children(bench: Bench) -> None:
    for q in [*bench.phone_queues.values(), *bench.client_queues.values()]:
        with contextlib.suppress(Exception):
            q.put(("stop",))
    time.sleep(0.5)


def _rows(label: str, ref: dict, got: dict | None, calm: dict | None, again: dict | None,
          stored: int, published: int, clients: int) -> list[Row]:
    rows = _steady_rows(label, calm, clients) if calm else []
    if got:
        rows += _burst_rows(label, ref, got)
    if again:
        rows.append(Row(label, "reconnect: office map current after",
                        f"{again['map_current_s']:.1f} s", "(info)", verdict(None),
                        f"all {again['published']:,} phones at once, {clients} clients: "
                        f"{again['positions']:,} positions in {again['events']:,} events; all "
                        f"stored after {again['seconds']:.1f} s "
                        f"({again['rate']:,.0f}/s)"))
    return [*rows, Row(label, "lost fixes", f"{published - stored}", "0",
                       verdict(stored == published),
                       f"published {published:,}, new rows {stored:,}")]


def _steady_rows(label: str, calm: dict, clients: int) -> list[Row]:
    lat, shares = calm["lat"], calm["shares"]
    p50 = percentile(lat, 0.5) if lat else float("inf")
    p99 = percentile(lat, 0.99) if lat else float("inf")
    all_events = calm["delivered"] == calm["expected"]
    cores = os.cpu_count() or 1
    return [
        Row(label, "publish -> position event p50", f"{p50:.0f} ms", "", verdict(None),
            f"{len(lat):,} positions at {clients} office clients, {calm['rate']:.0f} fixes/s"),
        Row(label, "publish -> position event p99", f"{p99:.0f} ms",
            f"< {TARGET_P99_MS:.0f} ms", verdict(p99 < TARGET_P99_MS),
            f"max {max(lat, default=float('inf')):.0f} ms; publish -> hub's emit p99 "
            f"{percentile(calm['hub_ms'], 0.99) if lat else float('inf'):.0f} ms, emit -> "
            f"client p99 {percentile(calm['deliver_ms'], 0.99) if lat else float('inf'):.0f} "
            f"ms"),
        Row(label, "positions delivered, steady", f"{calm['delivered']:,}",
            f"{calm['expected']:,}", verdict(all_events),
            f"{calm['fixes']:,} fixes x {clients} clients, in {calm['events']:,} `position` "
            f"events; clients closed by the hub {calm['closed']}"),
        Row(label, "hub CPU, steady", f"{shares['hub'] * 100:.0f} % of a core", "(info)",
            verdict(None), f"{shares['hub'] / cores * 100:.0f} % of the {cores} cores"
                           + (f" (worker {shares['worker'] * 100:.0f} %, web "
                              f"{shares['web'] * 100:.0f} %)" if "worker" in shares else "")
                           + "; broker "
                           f"{shares['broker'] * 100:.0f} %, bench phones "
                           f"{shares['phones'] * 100:.0f} %, bench clients "
                           f"{shares['clients'] * 100:.0f} %, whole machine "
                           f"{shares['machine'] * 100:.0f} % of a core"),
    ]


def _burst_rows(label: str, ref: dict, got: dict) -> list[Row]:
    ratio = got["rate"] / ref["rate"]
    return [
        Row(label, f"stored fixes/s, burst of {got['published']:,}", f"{got['rate']:,.0f}/s",
            "(info)", verdict(None), f"published at {got['publish_rate']:,.0f}/s; all stored "
                                     f"{got['seconds']:.1f} s after the go; no office client; "
                                     f"hub CPU {got['cpu_ms']:.1f} ms per fix "
                                     f"({got['share'] * 100:.0f} % of a core)"),
        Row(label, "ratio to bare paho 3.1.1, burst", f"{ratio:.2f}", "(info)", verdict(None),
            f"bare {ref['rate']:,.0f}/s for the same messages before the hub ran"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20 s steady, 50 clients, 3 burst rounds (a smoke run)")
    parser.add_argument("--db", choices=["spatialite", "postgis", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=None,
                        help="the steady part's length (default 60)")
    parser.add_argument("--clients", type=int, default=None,
                        help="office Socket.IO clients (default 200)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="fixes per phone in the burst (default 10)")
    parser.add_argument("--part", choices=["burst", "steady", "all"], default="all",
                        help="the burst (and its reference), the steady reports, or both")
    parser.add_argument("--layout", choices=["run", "split"], default="run",
                        help="`rescuehub run` (one process), or `rescuehub worker` and `rescuehub "
                             "web` through Redis (RESCUEHUB_TEST_REDIS_URL, default "
                             "redis://127.0.0.1:6379/0)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data directories and the hub's log (path in the log)")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(args.seconds or base.seconds, args.clients or base.clients,
                  args.rounds or base.rounds)
    if not (2 * WARMUP_S <= sizes.seconds <= 600 and 1 <= sizes.clients <= 250
            and 1 <= sizes.rounds <= 60):
        parser.error("--seconds must be 20-600, --clients 1-250, --rounds 1-60")
    # 1,248 phones are 1,248 sockets in the broker and in the bench: lift the soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, ingest._interrupt)
    started = time.monotonic()
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="rescuehub-bench-positions-"))
    tmp.chmod(0o755)  # a root hub's broker runs as `mosquitto` and must reach its directory

    def table() -> None:
        ingest.print_rows("positions.py", f"layout {args.layout}; prefecture, "
                                          f"{sizes.clients} office clients, "
                                          f"{sizes.seconds:.0f} s steady, burst of "
                                          f"{sizes.rounds} rounds; "
                                          f"{time.monotonic() - started:.0f} s", rows)

    try:
        if args.db in ("spatialite", "both"):
            rows += run_backend("SpatiaLite", "", tmp, args, sizes)
        if args.db in ("postgis", "both"):
            rows += ingest.run_postgis(tmp, args, sizes, runner=run_backend)
    except BenchError as exc:
        log(f"stopped: {exc}")
        table()
        return 1
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    finally:
        if args.keep:
            log(f"kept {tmp} (hub-*.log: the hub's output)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    table()
    # Slow figures are figures; only lost fixes make the run a failure.
    return 1 if any(r.figure == "lost fixes" and r.verdict != "pass" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
