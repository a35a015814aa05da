"""A real `rescuehub run` keeps answering while other addresses flood it (issue #18): idle TCP
connections, slowloris heads and bodies, and websockets that never sign in to /live. Before the
gate, 64 websockets or 70 slowloris connections took every thread and /healthz timed out.

Loopback only: the attackers use other loopback addresses (127.0.0.2-5) than the probe."""

import socket
import threading
import time

import pytest
import requests
import websocket

from tests.fixtures.hub import start_hub

pytestmark = pytest.mark.slow

PER_ADDRESS = 150
REQUEST_TIMEOUT_S = 4
SIGN_IN_S = 2


def _connect(port: int, source: str, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                        source_address=(source, 0))
        sock.setblocking(False)
        socks.append(sock)
    return socks


def _open(socks: list[socket.socket]) -> int:
    """How many of these connections the hub has not closed."""
    count = 0
    for sock in socks:
        try:
            while sock.recv(65536):  # an answer (a 413) may come before the end
                pass
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


class Websockets:
    """Engine.IO websockets that answer pings and never send a Socket.IO CONNECT."""

    def __init__(self, port: int, source: str, count: int):
        self.url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        self.port = port
        self.source = source
        self.opened = self.refused = self.closed = 0
        self.lock = threading.Lock()
        self.sockets: list[websocket.WebSocket] = []
        self.threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _hold(self) -> None:
        ws = websocket.WebSocket()
        try:
            ws.connect(self.url, timeout=10, socket=socket.create_connection(
                ("127.0.0.1", self.port), timeout=10, source_address=(self.source, 0)))
        except websocket.WebSocketBadStatusException as exc:
            with self.lock:
                self.refused += exc.status_code == 503
            return
        with self.lock:
            self.opened += 1
            self.sockets.append(ws)
        try:
            while (message := ws.recv()) not in ("", "1"):  # "1": Engine.IO close
                if message == "2":
                    ws.send("3")
        except (websocket.WebSocketException, OSError):
            pass
        with self.lock:
            self.closed += 1

    def close(self) -> None:
        for ws in self.sockets:
            ws.close(timeout=1)


def _healthy(hub) -> bool:
    return requests.get(hub.url + "/healthz", timeout=5).status_code == 200


def test_hub_answers_through_a_flood(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    hub = start_hub(data, RESCUEHUB_WEB_MAX_CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS),
                    RESCUEHUB_WEB_REQUEST_TIMEOUT_S=str(REQUEST_TIMEOUT_S),
                    RESCUEHUB_WEB_LIVE_AUTH_TIMEOUT_S=str(SIGN_IN_S))
    socks: list[socket.socket] = []
    sockets = None
    try:
        assert _healthy(hub), hub.output()
        idle = _connect(hub.port, "127.0.0.2", 300)
        slow = _connect(hub.port, "127.0.0.3", 100)
        # A chunked body (a thread reads it, under the request's deadline), sent slowly.
        bodies = _connect(hub.port, "127.0.0.5", 3)
        socks = idle + slow + bodies
        for i, sock in enumerate(slow):
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-%d: a\r\n" % i)
        for sock in bodies:
            sock.send(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
        sockets = Websockets(hub.port, "127.0.0.4", 80)
        stop = threading.Event()

        def dribble() -> None:  # a header line every second, never the end of the head
            while not stop.wait(1):
                for sock, more in [(s, b"X-More: a\r\n") for s in slow] + [
                        (s, b"1\r\n \r\n") for s in bodies]:
                    try:
                        sock.send(more)
                    except OSError:
                        pass

        dribbler = threading.Thread(target=dribble, daemon=True)
        dribbler.start()
        try:
            # The probe's address keeps being served while all of that is open.
            for _ in range(5):
                assert _healthy(hub)
                time.sleep(0.3)
            # One address holds at most its share; the rest were closed at once.
            assert _wait(lambda: _open(idle) <= PER_ADDRESS, 5)
            assert _open(slow) > 0  # the head still arriving: held without a thread
            # Websockets past the live slots (16 threads - 4 for HTTP) were answered 503.
            assert _wait(lambda: sockets.opened + sockets.refused == 80, 10)
            assert 0 < sockets.opened <= 12 and sockets.refused == 80 - sockets.opened
            # Never signed in: closed by the hub.
            assert _wait(lambda: sockets.closed == sockets.opened, SIGN_IN_S + 5)
            # Heads that never end, bodies that never end and idle connections are dropped after
            # the request timeout.
            assert _wait(lambda: _open(socks) == 0, REQUEST_TIMEOUT_S + 5), (
                _open(idle), _open(slow), _open(bodies), hub.output()[-3000:])
            assert _healthy(hub)
        finally:
            stop.set()
            dribbler.join(5)
    finally:
        for sock in socks:
            sock.close()
        if sockets is not None:
            sockets.close()
        hub.stop()
    assert "Traceback" not in hub.output()
