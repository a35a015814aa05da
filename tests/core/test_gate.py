"""The connection gate (dispatch.core.gate): when a request has arrived, the per-address limit,
the live-connection slots and the sign-in deadline of Engine.IO connections. The gate inside a
running hub, under a flood, is tests/e2e/test_flood.py."""

import json
import threading

import pytest
import socketio as python_socketio

from dispatch.core.gate import (
    MAX_HEAD_BYTES,
    PREBUFFER_BYTES,
    AddressCounter,
    LiveSlots,
    SignInDeadline,
    request_arrived,
)
from dispatch.core.settings import SettingsError, load_settings

HEAD = b"POST /api/v1/villages/V1 HTTP/1.1\r\nHost: hub\r\n"


@pytest.mark.parametrize(("data", "arrived"), [
    (b"", False),
    (b"GET /healthz HTTP/1.1\r\nHost: hub\r\n", False),  # slowloris: the head never ends
    (b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: 1\r\n", False),
    (b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n", True),
    (HEAD + b"Content-Length: 10\r\n\r\n", False),  # the body has not come yet
    (HEAD + b"Content-Length: 10\r\n\r\n12345", False),
    (HEAD + b"content-length:10\r\n\r\n1234567890", True),
    (HEAD + b"Content-Length: 0\r\n\r\n", True),
    (HEAD + b"Content-Length: %d\r\n\r\n" % (PREBUFFER_BYTES + 1), True),  # the thread reads it
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", True),
    (HEAD + b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n", True),
    (HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", True),  # gunicorn refuses it
    (HEAD + b"Content-Length: ten\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * MAX_HEAD_BYTES, True),  # gunicorn answers 431
])
def test_request_arrived(data, arrived):
    assert request_arrived(data) is arrived


def test_address_limit_counts_open_connections(caplog):
    counter = AddressCounter(2, trusted=["10.0.0.9"])
    assert counter.admit("10.0.0.1") and counter.admit("10.0.0.1")
    assert not counter.admit("10.0.0.1")
    assert not counter.admit("10.0.0.1")
    assert counter.admit("10.0.0.2")  # another address has its own count
    counter.release("10.0.0.1")
    assert counter.admit("10.0.0.1")
    assert all(counter.admit("10.0.0.9") for _ in range(10))  # a trusted proxy
    assert counter.refused["10.0.0.1"] == 2
    # One warning per address and minute, not one per refused connection.
    assert sum("10.0.0.1 holds 2 connections" in r.getMessage() for r in caplog.records) == 1


def test_http_threads_must_leave_threads_for_live_connections():
    with pytest.raises(SettingsError, match="web.http_threads"):
        load_settings(environ={"RESCUEHUB_WEB_THREADS": "8", "RESCUEHUB_WEB_HTTP_THREADS": "8"})
    with pytest.raises(SettingsError, match="web.max_connections_per_address"):
        load_settings(environ={"RESCUEHUB_WEB_MAX_CONNECTIONS_PER_ADDRESS": "0"})


class HeldWebsocket:
    """A WSGI app whose Engine.IO requests stay open until released (a websocket's thread)."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"].startswith("/socket.io/"):
            self.entered.release()
            self.release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


def _environ(path="/socket.io/", query="EIO=4&transport=websocket", upgrade="websocket",
             **extra):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_NAME": "hub", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "HTTP_HOST": "hub", **extra}
    if upgrade:
        environ["HTTP_UPGRADE"] = upgrade
    return environ


def _call(wsgi, environ):
    status = {}

    def start_response(line, headers, exc_info=None):
        status["line"], status["headers"] = line, dict(headers)

    body = b"".join(wsgi(environ, start_response))
    return status["line"], status["headers"], body


def test_live_slots_keep_threads_for_http(app):
    inner = HeldWebsocket()
    gate = LiveSlots(inner, app, slots=2)
    held = [threading.Thread(target=_call, args=(gate, _environ())) for _ in range(2)]
    for thread in held:
        thread.start()
    try:
        assert inner.entered.acquire(timeout=5) and inner.entered.acquire(timeout=5)
        # A third websocket, and a long-poll, are refused at once, in the page's language.
        line, headers, body = _call(gate, _environ(HTTP_COOKIE="lang=en"))
        assert line.startswith("503") and headers["Retry-After"] == "5"
        assert json.loads(body)["error"] == "live_busy" and b"live connections" in body
        line, _headers, body = _call(gate, _environ(query="EIO=4&transport=polling&sid=abc",
                                                    upgrade=None, HTTP_COOKIE="lang=zh_Hans_CN"))
        assert line.startswith("503") and "实时连接" in json.loads(body)["message"]
        # Plain HTTP, and the Engine.IO handshake and posts, are not live connections.
        assert _call(gate, _environ(path="/healthz", upgrade=None))[0].startswith("200")
        assert not gate.holds_thread(_environ(query="EIO=4&transport=polling", upgrade=None))
        assert not gate.holds_thread(_environ(query="EIO=4&transport=polling&sid=abc",
                                              upgrade=None, REQUEST_METHOD="POST"))
    finally:
        inner.release.set()
        for thread in held:
            thread.join(5)
    assert gate.in_use == 0
    inner.release.clear()
    waiting = threading.Thread(target=_call, args=(gate, _environ()))
    waiting.start()
    assert inner.entered.acquire(timeout=5)  # a slot freed is a slot given again
    inner.release.set()
    waiting.join(5)


class FakeEngineIO:
    """The part of an Engine.IO server the deadline uses."""

    def __init__(self):
        self.handlers = {"connect": lambda sid, environ: None,
                         "disconnect": lambda sid, reason: None}
        self.sockets: dict[str, object] = {}
        self.closed: list[str] = []
        self.gone = threading.Event()

    def on(self, event, handler):
        self.handlers[event] = handler

    def disconnect(self, sid):
        self.closed.append(sid)
        self.gone.set()


def test_sign_in_deadline_closes_connections_that_never_sign_in():
    eio = FakeEngineIO()
    server = type("Server", (), {"eio": eio})()
    deadline = SignInDeadline(0.3)
    deadline.install(server)
    eio.handlers["connect"]("idle", {})
    eio.handlers["connect"]("tablet", {})
    deadline.signed_in("tablet")
    eio.handlers["connect"]("left", {})
    eio.handlers["disconnect"]("left", "client disconnect")
    assert eio.gone.wait(5)
    assert eio.closed == ["idle"]
    # A connection that leaves /live while its Engine.IO connection stays open is re-armed;
    # one that is gone is not.
    eio.sockets["tablet"] = object()
    eio.closed.clear()
    eio.gone.clear()
    deadline.rearm("tablet")
    deadline.rearm("gone")
    assert eio.gone.wait(5)
    assert eio.closed == ["tablet"]


def test_sign_in_deadline_wraps_python_socketio_handlers():
    server = python_socketio.Server(async_mode="threading")
    deadline = SignInDeadline(60)
    deadline.install(server)
    server.eio.handlers["connect"]("abc", {"REMOTE_ADDR": "127.0.0.1"})
    assert server.environ["abc"]["REMOTE_ADDR"] == "127.0.0.1"  # python-socketio's own handler
    assert deadline.expired(float("inf")) == ["abc"]
