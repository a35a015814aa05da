"""The connection gate: what one client may hold of the web process's threads and sockets.

gunicorn's gthread worker gives each connection a thread of `web.threads` as soon as its first
byte arrives, and the thread then reads the request head and body with a blocking socket: 70
connections that dribbled their headers (slowloris) held every thread, and 64 websockets that
never signed in did the same (measured, bench/connections.py). The gate changes four things:

- `GatedWorker` reads each request in the worker's event loop, without a thread, until it has
  fully arrived (its head, and a body up to `PREBUFFER_BYTES`); a request that has not arrived
  within `web.request_timeout_s` is dropped. A larger or chunked body is read by the thread with
  the same deadline for the whole body, so a slow sender cannot hold a thread for longer.
- it limits the connections one address may hold (`web.max_connections_per_address`), except for
  the addresses in `web.trusted_proxies`: behind a reverse proxy every client has the proxy's
  address, so the proxy must be trusted here and limit per client itself (nginx `limit_conn`).
  The address is the TCP peer's: X-Forwarded-For is not read (it would let anyone pick theirs).
- `LiveSlots` keeps live connections that hold a thread for long (websockets, Engine.IO
  long-polls) to `web.threads - web.http_threads`, so `web.http_threads` always serve plain HTTP;
  a live connection over the limit is answered 503 at once (an Engine.IO client stays on
  long-polling, or reconnects after its back-off).
- `SignInDeadline` closes an Engine.IO connection that has not completed an authenticated connect
  to `/live` within `web.live_auth_timeout_s`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import resource
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from gunicorn.workers.gthread import TConn, ThreadWorker

log = logging.getLogger(__name__)

# Request heads are a few hundred bytes; gunicorn's own limits (request line 4094, 100 fields of
# 8190) are far above what a browser sends. A longer head goes to gunicorn's parser, which
# answers its 414/431 errors.
MAX_HEAD_BYTES = 64 * 1024
# Bodies up to this size are read before a thread is given (the API's JSON bodies); a larger one
# (an import) is read by the thread under the request's deadline.
PREBUFFER_BYTES = 1024 * 1024
# Open files: each connection is one. Debian's default soft limit (1,024) is below what the
# gate lets the worker hold; the hard limit (usually 524,288 under systemd) is not.
WANTED_OPEN_FILES = 65536
WORKER_CONNECTIONS = 10000
REFUSAL_LOG_EVERY_S = 60.0

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([^\r]*)", re.IGNORECASE)
# A chunked body, or a client waiting for "100 Continue", is handed to the thread at once.
_STREAMED = re.compile(rb"\r\n(transfer-encoding|expect)[ \t]*:", re.IGNORECASE)

LIVE_BUSY = _l("The hub has as many live connections as it can serve. The page keeps trying.")


@dataclass(frozen=True)
class GateLimits:
    """The gate's limits, from the `web.*` settings."""

    per_address: int
    trusted: frozenset[str]
    request_timeout_s: float
    live_slots: int
    live_auth_timeout_s: float

    @classmethod
    def from_settings(cls, settings) -> GateLimits:
        web = settings.web
        trusted = frozenset(a.strip() for a in web.trusted_proxies.split(",") if a.strip())
        return cls(per_address=web.max_connections_per_address, trusted=trusted,
                   request_timeout_s=float(web.request_timeout_s),
                   live_slots=web.threads - web.http_threads,
                   live_auth_timeout_s=float(web.live_auth_timeout_s))


def request_arrived(data: bytes | bytearray) -> bool:
    """Whether `data` holds a whole request a thread can serve without waiting: its head and its
    body (if that is small and of known length), or more head than any client should send."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) > MAX_HEAD_BYTES
    head = bytes(data[:end + 2])
    if _STREAMED.search(head):
        return True
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) != 1:
        return True  # none: no body; several: gunicorn's parser refuses it
    try:
        length = int(lengths[0].strip())
    except ValueError:
        return True  # gunicorn's parser refuses it
    return length > PREBUFFER_BYTES or length < 0 or len(data) >= end + 4 + length


class AddressCounter:
    """Open connections per client address, limited except for trusted ones (one thread)."""

    def __init__(self, limit: int, trusted: Iterable[str] = ()):
        self.limit = limit
        self.trusted = frozenset(trusted)
        self.open: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._logged: dict[str, float] = {}

    def admit(self, address: str) -> bool:
        """Count a new connection from `address`; False (and nothing counted) if over the limit."""
        if address not in self.trusted and self.open[address] >= self.limit:
            self.refused[address] += 1
            now = time.monotonic()
            if now - self._logged.get(address, -REFUSAL_LOG_EVERY_S) >= REFUSAL_LOG_EVERY_S:
                self._logged[address] = now
                log.warning("%s holds %s connections (web.max_connections_per_address): "
                            "refusing more (%s so far)", address, self.limit,
                            self.refused[address])
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class GatedConn(TConn):
    """A gthread connection that collects its request before a thread serves it."""

    def __init__(self, cfg, sock, client, server, release: Callable[[str], None]):
        super().__init__(cfg, sock, client, server)
        self.address = client[0] if isinstance(client, tuple) else ""
        self.received = bytearray()
        self.deadline = 0.0
        self._release: Callable[[str], None] | None = release
        self._timed = False

    def init(self) -> None:
        super().init()  # creates the parser once per connection
        if not self._timed:
            self._timed = True
            unreader = self.parser.unreader
            unreader.chunk = self._deadline_reader(unreader.chunk)
        if self.received:
            self.parser.unreader.unread(bytes(self.received))
            self.received = bytearray()

    def _deadline_reader(self, chunk: Callable[..., bytes]) -> Callable[..., bytes]:
        # The socket stays blocking without a timeout (websockets read it after the upgrade);
        # only gunicorn's reads of the request go through here, bounded by the deadline. Late
        # data reads as the end of the stream: the parser then drops the connection quietly,
        # and a body read in a view fails as a client disconnect (400), not a 500.
        def read(size_hint=None) -> bytes:
            remaining = self.deadline - time.monotonic()
            if remaining > 0:
                self.sock.settimeout(remaining)
                try:
                    return chunk(size_hint)
                except TimeoutError:
                    pass
                finally:
                    self.sock.settimeout(None)
            log.debug("%s: request not received within web.request_timeout_s", self.address)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RD)
            return b""

        return read

    def close(self, graceful: bool = False) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(self.address)
        super().close(graceful)


class GatedWorker(ThreadWorker):
    """gunicorn's gthread worker with the gate (the module's docstring says what it does)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.limits = GateLimits(per_address=1, trusted=frozenset(), request_timeout_s=1.0,
                                 live_slots=0, live_auth_timeout_s=1.0)
        self.addresses = AddressCounter(1)
        self.arriving: dict[GatedConn, None] = {}  # in deadline order (insertion order)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # The limits come from the app's settings, and the app is made here, in the worker.
        self.limits = self.app.gate_limits
        self.addresses = AddressCounter(self.limits.per_address, self.limits.trusted)

    def init_process(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(
            hard, WANTED_OPEN_FILES)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        super().init_process()

    def accept(self, listener) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        address = client[0] if isinstance(client, tuple) else ""
        if not self.addresses.admit(address):
            sock.close()
            return
        self.nr_conns += 1
        conn = GatedConn(self.cfg, sock, client, listener.getsockname(), self.addresses.release)
        self._await_request(conn)

    def _await_request(self, conn: GatedConn) -> None:
        conn.deadline = time.monotonic() + self.limits.request_timeout_s
        self.arriving[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             lambda _sock: self._on_arriving(conn))

    def _on_arriving(self, conn: GatedConn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client left
            self._stop_waiting(conn)
            self.nr_conns -= 1
            conn.close()
            return
        conn.received += data
        if request_arrived(conn.received):
            self._stop_waiting(conn)
            conn.data_ready = True  # gthread's handle() must not wait for data again
            self.enqueue_req(conn)

    def _stop_waiting(self, conn: GatedConn) -> None:
        self.arriving.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def enqueue_req(self, conn) -> None:
        # From here the thread's reads of this request share one deadline (a large body, or the
        # rest of a pipelined request).
        conn.deadline = time.monotonic() + self.limits.request_timeout_s
        super().enqueue_req(conn)

    def on_client_socket_readable(self, conn, client) -> None:
        """A kept-alive connection sends its next request: collect it like the first."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.data_ready = False
        self._await_request(conn)
        self._on_arriving(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.arriving:
            conn = next(iter(self.arriving))
            # A stopping worker starts no request: it does not wait for those still arriving.
            if conn.deadline > now and self.alive:
                break
            self._stop_waiting(conn)
            self.nr_conns -= 1
            conn.close()


class LiveSlots:
    """WSGI middleware: at most `slots` live connections that hold a thread (websockets,
    Engine.IO long-polls) at once; more are answered 503 with Retry-After."""

    def __init__(self, wsgi_app: Callable, app: Flask, slots: int, path: str = "/socket.io/"):
        self.wsgi_app = wsgi_app
        self.app = app
        self.slots = slots
        self.path = path
        self.in_use = 0
        self._lock = threading.Lock()
        self._logged = -REFUSAL_LOG_EVERY_S

    def holds_thread(self, environ: dict) -> bool:
        """Whether the request is a websocket or a long-poll of Engine.IO."""
        if not environ.get("PATH_INFO", "").startswith(self.path):
            return False
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            return True
        query = environ.get("QUERY_STRING", "")
        return environ.get("REQUEST_METHOD") == "GET" and "sid=" in query

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if not self.holds_thread(environ):
            return self.wsgi_app(environ, start_response)
        with self._lock:
            admitted = self.in_use < self.slots
            if admitted:
                self.in_use += 1
        if not admitted:
            return self._refuse(environ, start_response)
        try:
            # Threading mode: the call returns when the websocket closes or the poll answers.
            return self.wsgi_app(environ, start_response)
        finally:
            with self._lock:
                self.in_use -= 1

    def _refuse(self, environ: dict, start_response: Callable) -> Any:
        now = time.monotonic()
        if now - self._logged >= REFUSAL_LOG_EVERY_S:
            self._logged = now
            log.warning("%s live connections (web.threads - web.http_threads) in use: refusing "
                        "more until some close", self.slots)
        with self.app.request_context(environ):
            refresh()  # the locale of this request, not one cached in a shared app context
            response = self.app.json.response(error="live_busy", message=str(LIVE_BUSY),
                                              retry_after_s=5)
            response.status_code = 503
            response.headers["Retry-After"] = "5"
            return response(environ, start_response)


class SignInDeadline:
    """Closes Engine.IO connections that have not signed in to /live within `timeout_s`."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._pending: dict[str, float] = {}  # Engine.IO sid -> deadline
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._eio: Any = None

    def install(self, server) -> None:
        """Wrap the Engine.IO connect/disconnect handlers of a python-socketio server."""
        eio = server.eio
        self._eio = eio
        on_connect, on_disconnect = eio.handlers["connect"], eio.handlers["disconnect"]

        def connected(eio_sid, environ, *args):
            self.arm(eio_sid)
            return on_connect(eio_sid, environ, *args)

        def disconnected(eio_sid, *args):
            try:
                return on_disconnect(eio_sid, *args)
            finally:
                self.forget(eio_sid)

        eio.on("connect", connected)
        eio.on("disconnect", disconnected)

    def arm(self, eio_sid: str) -> None:
        """Start (or restart) the time an Engine.IO connection has to sign in."""
        with self._lock:
            self._pending[eio_sid] = time.monotonic() + self.timeout_s
            if self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep, name="live-sign-in",
                                                 daemon=True)
                self._sweeper.start()

    def rearm(self, eio_sid: str | None) -> None:
        """Restart the time of a connection still open at the Engine.IO level."""
        if eio_sid is not None and self._eio is not None and eio_sid in self._eio.sockets:
            self.arm(eio_sid)

    def signed_in(self, eio_sid: str | None) -> None:
        with self._lock:
            self._pending.pop(eio_sid, None)  # type: ignore[arg-type]

    def forget(self, eio_sid: str) -> None:
        with self._lock:
            self._pending.pop(eio_sid, None)

    def expired(self, now: float) -> list[str]:
        """Connections past their deadline (taken off the list)."""
        with self._lock:
            late = [sid for sid, deadline in self._pending.items() if deadline <= now]
            for sid in late:
                del self._pending[sid]
        return late

    def _sweep(self) -> None:
        while True:
            time.sleep(min(1.0, self.timeout_s / 2))
            for eio_sid in self.expired(time.monotonic()):
                try:
                    self._eio.disconnect(eio_sid)
                except Exception:  # already gone, or closing: the sweeper must keep going
                    log.debug("closing unsigned Engine.IO connection %s failed", eio_sid,
                              exc_info=True)
