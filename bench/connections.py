"""Benchmark: live clients one web process serves, and floods it survives (issue #18).

Starts a real `rescuehub run` (tests/fixtures/hub.py), loopback only, and prints:

- clients: for N authenticated Socket.IO clients on /live (python-socketio, websocket transport,
  bearer token; spread over a few client processes so the bench's own GIL does not hold the
  events up), while a dispatcher PATCHes a village every 0.5 s so a `layer` event goes to the
  township room: how many connected, how many events arrived, the delivery latency p50/p99 (the
  PATCH sent to the event received), /healthz latency meanwhile, and the web worker's threads and
  memory;
- attacks: /healthz latency (one request every 0.25 s from 127.0.0.1, 5 s timeout) while one
  other address (127.0.0.2) holds 1,000 idle TCP connections, 1,000 slowloris connections (a
  header line every 2 s, never the end of the head) or 200 websockets that never join /live, and
  how many of the attacker's connections the hub had closed by the end.

The attacks run against the settings a user gets (config/default.toml); the clients against a hub
with enough threads for the largest N (one per websocket), with 127.0.0.1 trusted as a proxy
(web.trusted_proxies) so one address may open them all.

Run: .venv/bin/python bench/connections.py [--part clients|attacks|all] [--clients 50,200,400]
     [--threads N] [--hold 15] [--env RESCUEHUB_WEB_X=value ...]
Progress goes to stderr, figures to stdout. Every part stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.hub import RESCUEHUB, start_hub  # noqa: E402

PASSWORD = "bench storm night 2026"
ATTACKER = "127.0.0.2"  # another loopback address: the probe (127.0.0.1) is not the attacker
EVENTS = 20
EVENT_EVERY_S = 0.5
CLIENTS_PER_PROCESS = 100


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- the hub ----------------------------------------------------------------------------------

def _worker_pid(hub) -> int | None:
    booted = re.findall(r"Booting worker with pid: (\d+)", hub.output())
    return int(booted[-1]) if booted else None


def worker_stats(hub) -> str:
    """Threads and resident memory of the gunicorn worker (the process that serves)."""
    pid = _worker_pid(hub)
    if pid is None:
        return "worker ?"
    status = Path(f"/proc/{pid}/status").read_text()
    threads = re.search(r"Threads:\s+(\d+)", status).group(1)
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024
    return f"worker {threads} threads, {rss} MB RSS"


def sign_in(hub, name: str, role: str) -> str:
    """A user with a chosen password; returns a bearer token."""
    added = hub.cli("user", "add", name, "--role", role)
    one_time = re.search(r"one-time password: (\S+)", added.stdout).group(1)
    requests.post(hub.url + "/api/v1/auth/password", timeout=10, json={
        "username": name, "password": one_time, "new_password": PASSWORD}).raise_for_status()
    answer = requests.post(hub.url + "/api/v1/auth/token", timeout=10,
                           json={"username": name, "password": PASSWORD})
    answer.raise_for_status()
    return answer.json()["token"]


class HealthProbe:
    """GET /healthz every 0.25 s on a new connection until stopped; keeps latencies."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url, self.timeout = url + "/healthz", timeout
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                ok = requests.get(self.url, timeout=self.timeout).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - started)
            else:
                self.failures += 1
            self._stop.wait(0.25)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)

    def summary(self) -> str:
        ms = [v * 1000 for v in self.latencies]
        return (f"/healthz p50 {percentile(ms, 0.5):7.1f} ms  p99 {percentile(ms, 0.99):7.1f} ms"
                f"  max {max(ms, default=float('nan')):7.1f} ms  failed/timed out "
                f"{self.failures}/{self.failures + len(ms)}")


# --- clients ----------------------------------------------------------------------------------

def client_group(url: str, token: str, count: int, marker_base: int, ready, results,
                 done) -> None:
    """Open `count` clients, report how many connected, then the receive times per marker."""
    import socketio

    received: list[tuple[int, float]] = []
    lock = threading.Lock()

    def on_layer(data):
        now = time.time()
        population = (data.get("feature") or {}).get("properties", {}).get("population")
        if isinstance(population, int) and population >= marker_base:
            with lock:
                received.append((population - marker_base, now))

    clients, failed = [], 0
    for _ in range(count):
        client = socketio.Client(reconnection=False)
        client.on("layer", on_layer, namespace="/live")
        try:
            client.connect(url, namespaces=["/live"], auth={"token": token},
                           transports=["websocket"], wait_timeout=10)
            clients.append(client)
        except Exception:  # refused or timed out: counted, the bench goes on
            failed += 1
    ready.put((len(clients), failed))
    done.wait(120)
    with lock:
        results.put(list(received))
    for client in clients:
        try:
            client.disconnect()
        except Exception:  # already gone
            pass


def measure_clients(hub, n: int, editor_token: str, viewer_token: str, village: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, results, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    marker_base = 1_000_000
    groups = [min(CLIENTS_PER_PROCESS, n - i) for i in range(0, n, CLIENTS_PER_PROCESS)]
    started = time.monotonic()
    procs = [ctx.Process(target=client_group, args=(hub.url, viewer_token, size, marker_base,
                                                    ready, results, done), daemon=True)
             for size in groups]
    for proc in procs:
        proc.start()
    connected = failed = 0
    for _ in procs:
        ok, bad = ready.get(timeout=300)
        connected, failed = connected + ok, failed + bad
    log(f"  {connected} clients connected ({failed} failed) in "
        f"{time.monotonic() - started:.1f} s")
    sent: dict[int, float] = {}
    patch_ms = []
    headers = {"Authorization": f"Bearer {editor_token}"}
    with HealthProbe(hub.url) as probe:
        for k in range(EVENTS):
            sent[k] = time.time()
            requests.patch(f"{hub.url}/api/v1/villages/{village}", headers=headers, timeout=10,
                           json={"properties": {"population": marker_base + k}}
                           ).raise_for_status()
            patch_ms.append((time.time() - sent[k]) * 1000)
            time.sleep(EVENT_EVERY_S)
        time.sleep(3)  # the last events on their way
        stats = worker_stats(hub)
    done.set()
    latencies = []
    for _ in procs:
        for k, at in results.get(timeout=60):
            latencies.append((at - sent[k]) * 1000)
    for proc in procs:
        proc.join(30)
    expected = connected * EVENTS
    print(f"N={n:4d}: connected {connected:4d} (failed {failed:3d})  events delivered "
          f"{len(latencies)}/{expected}  latency p50 {percentile(latencies, 0.5):7.1f} ms  "
          f"p99 {percentile(latencies, 0.99):7.1f} ms (the PATCH's own answer p50 "
          f"{percentile(patch_ms, 0.5):5.1f} ms)  {probe.summary()}  {stats}", flush=True)


def _village(hub, token: str) -> str:
    subprocess.run([RESCUEHUB, "demo"], env=hub.env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    items = requests.get(hub.url + "/api/v1/villages", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).json()["items"]
    return items[0]["code"]


# --- attacks ----------------------------------------------------------------------------------

def _open(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((ATTACKER, 0))
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        socks.append(sock)
    return socks


def _still_open(socks: list[socket.socket]) -> int:
    """Connections the hub has not closed (no EOF or reset waiting on them)."""
    alive = 0
    for sock in socks:
        try:
            alive += sock.recv(1 << 16, socket.MSG_PEEK) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def attack_idle(hub, hold: float) -> None:
    socks = _open(hub.port, 1000)
    try:
        with HealthProbe(hub.url) as probe:
            time.sleep(hold)
        print(f"1,000 idle TCP        : {probe.summary()}  attacker's connections still open "
              f"{_still_open(socks)}/{len(socks)}", flush=True)
    finally:
        for sock in socks:
            sock.close()


def attack_slowloris(hub, hold: float) -> None:
    socks = _open(hub.port, 1000)
    for sock in socks:
        try:
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            pass
    try:
        with HealthProbe(hub.url) as probe:
            deadline = time.monotonic() + hold
            while time.monotonic() < deadline:
                for i, sock in enumerate(socks):
                    try:
                        sock.send(b"X-Slow-%d: a\r\n" % i)
                    except OSError:
                        pass
                time.sleep(2)
        print(f"1,000 slowloris       : {probe.summary()}  attacker's connections still open "
              f"{_still_open(socks)}/{len(socks)}", flush=True)
    finally:
        for sock in socks:
            sock.close()


def attack_unauthenticated_ws(hub, hold: float) -> None:
    import websocket

    sockets: list = []
    stop = threading.Event()
    closed = [0]

    def hold_one() -> None:
        # An Engine.IO client that answers pings but never sends a Socket.IO CONNECT.
        try:
            ws = websocket.WebSocket()
            ws.connect(f"ws://127.0.0.1:{hub.port}/socket.io/?EIO=4&transport=websocket",
                       timeout=10, socket=socket.create_connection(
                           ("127.0.0.1", hub.port), timeout=10, source_address=(ATTACKER, 0)))
            ws.settimeout(None)  # wait for pings (25 s apart) without giving up
        except Exception:  # refused: counted as not open
            return
        sockets.append(ws)
        try:
            while not stop.is_set():
                message = ws.recv()
                if message == "2":
                    ws.send("3")
                elif not message or message == "1":  # Engine.IO close
                    break
        except Exception:  # the hub closed it, or we did
            pass
        if not stop.is_set():
            closed[0] += 1

    threads = [threading.Thread(target=hold_one, daemon=True) for _ in range(200)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    try:
        with HealthProbe(hub.url) as probe:
            time.sleep(hold)
        opened = len(sockets)
        print(f"200 unauth websockets : {probe.summary()}  opened {opened}, closed by the hub "
              f"{closed[0]}", flush=True)
    finally:
        stop.set()
        for ws in list(sockets):
            try:
                ws.close(timeout=1)
            except Exception:  # already closed
                pass


def settle(hub, seconds: float = 30) -> None:
    """Wait until the hub answers promptly again after an attack."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(hub.url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)


# --- main -------------------------------------------------------------------------------------

def run_attacks(extra: dict, hold: float) -> None:
    with running_hub(extra) as hub:
        print(f"attacks (web.threads {hub.env['RESCUEHUB_WEB_THREADS']}, from {ATTACKER}, "
              f"{hold:.0f} s each):", flush=True)
        with HealthProbe(hub.url) as probe:
            time.sleep(3)
        print(f"no attack             : {probe.summary()}", flush=True)
        for attack in (attack_idle, attack_slowloris, attack_unauthenticated_ws):
            attack(hub, hold)
            settle(hub)


def run_clients(extra: dict, counts: list[int]) -> None:
    with running_hub(extra) as hub:
        requests.post(hub.url + "/api/v1/auth/password", timeout=10, json={
            "username": "commander", "password": hub.commander_password,
            "new_password": PASSWORD}).raise_for_status()
        editor = requests.post(hub.url + "/api/v1/auth/token", timeout=10, json={
            "username": "commander", "password": PASSWORD}).json()["token"]
        viewer = sign_in(hub, "benchviewer", "dispatcher")
        village = _village(hub, editor)
        print(f"clients (web.threads {hub.env['RESCUEHUB_WEB_THREADS']}; a `layer` event every "
              f"{EVENT_EVERY_S} s, {EVENTS} events):", flush=True)
        for n in counts:
            measure_clients(hub, n, editor, viewer, village)
            settle(hub)


@contextlib.contextmanager
def running_hub(extra: dict):
    with tempfile.TemporaryDirectory(prefix="rescuehub-bench-") as tmp:
        data = Path(tmp) / "var"
        data.mkdir()
        hub = start_hub(data, **extra)
        try:
            if hub.process.poll() is not None:
                sys.exit(f"hub did not start:\n{hub.output()}")
            log(f"hub on {hub.url}, {extra}")
            yield hub
        finally:
            hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["clients", "attacks", "all"], default="all")
    parser.add_argument("--clients", default="50,200,400")
    parser.add_argument("--threads", type=int, default=0,
                        help="web.threads (default: config/default.toml for the attacks, the "
                             "largest client count + 16 for the clients)")
    parser.add_argument("--hold", type=float, default=15.0, help="seconds each attack is held")
    parser.add_argument("--env", action="append", default=[],
                        help="extra RESCUEHUB_X=value for the hub (repeatable)")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    counts = [int(v) for v in args.clients.split(",")]
    defaults = tomllib.loads((ROOT / "config" / "default.toml").read_text())
    if args.part in ("attacks", "all"):
        threads = args.threads or defaults["web"]["threads"]
        run_attacks({"RESCUEHUB_WEB_THREADS": str(threads), **extra}, args.hold)
    if args.part in ("clients", "all"):
        # The clients come from 127.0.0.1, as many as the test wants: trusted like a proxy.
        threads = args.threads or max(counts) + 16
        run_clients({"RESCUEHUB_WEB_THREADS": str(threads),
                     "RESCUEHUB_WEB_TRUSTED_PROXIES": "127.0.0.1", **extra}, counts)


if __name__ == "__main__":
    main()
