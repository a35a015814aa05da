"""The web server: gunicorn with one gthread worker (real websocket upgrades, NOTES.md).

The app is created in the worker after the fork (preload off), and background work starts there
in `post_worker_init`, so the MQTT client and scheduler live in the process that serves Socket.IO.
Each open websocket holds one thread: `web.threads` sizes the worker, and the gate
(dispatch.core.gate) keeps `web.http_threads` of them for plain HTTP, reads requests before a
thread serves them and limits the connections of one address. The worker (HubWorker) also
answers gunicorn's own errors (414, 431, a bad request line) in JSON like the app's.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from gunicorn import util
from gunicorn.app.base import BaseApplication

from dispatch.core.gate import WORKER_CONNECTIONS, GatedWorker, GateLimits, LiveSlots
from dispatch.core.heap import SETTLE_AGAIN_S, leave, settle_heap

log = logging.getLogger(__name__)

# What gunicorn answers itself, before the app sees a request (DESIGN §5: errors are JSON).
SERVER_ERRORS = {
    400: ("bad_request", _l("The request is malformed (its first line or a header).")),
    403: ("forbidden", _l("This request is not allowed.")),
    414: ("uri_too_long", _l("The address is too long: send long values in a request body.")),
    417: ("expectation_failed", _l("The Expect header of the request cannot be met.")),
    431: ("headers_too_large", _l("The request's headers are too large or too many.")),
    501: ("not_implemented", _l("The request uses a transfer coding the hub does not take.")),
}
INTERNAL_ERROR = ("internal_error", _l("Something went wrong on the hub. Try again; if it "
                                       "persists, see the hub's log."))


class _Captured:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # util.write_nonblock then writes without touching the blocking mode

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> tuple[int, str]:
        """The status code and reason gunicorn chose ("HTTP/1.1 414 URI Too Long")."""
        parts = self.data.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(parts) == 3 and parts[1].isdigit():
            return int(parts[1]), parts[2].decode("latin-1")
        return 500, "Internal Server Error"


class JsonErrors:
    """A gunicorn worker mixin: the worker's own error answers (414 URI too long, 431 headers
    too large, 400 bad request line or header…) are `{"error", "message"}` JSON like the app's,
    in the hub's default language (the request was not read far enough to choose another).

    gunicorn decides the status and logs; only the HTML page it writes is replaced."""

    wsgi: Any

    def handle_error(self, req, client, addr, exc) -> None:
        page = _Captured()
        super().handle_error(req, page, addr, exc)  # type: ignore[misc]
        status, reason = page.status()
        code, message = SERVER_ERRORS.get(status, INTERNAL_ERROR)
        body = json.dumps({"error": code, "message": self._translated(message)},
                          ensure_ascii=False).encode("utf-8")
        head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except OSError:
            log.debug("could not send the %s answer", status)

    def _translated(self, message: Any) -> str:
        app = getattr(self, "wsgi", None)
        if not isinstance(app, Flask):
            return str(message)
        with app.app_context(), force_locale(app.config["SETTINGS"].web.default_locale):
            return str(message)


class HubWorker(JsonErrors, GatedWorker):
    """gunicorn's gthread worker behind the connection gate, answering its own errors in
    JSON."""


class HubServer(BaseApplication):
    """gunicorn run from Python with the hub's options."""

    def __init__(self, app_factory: Callable[[], Flask], *, host: str, port: int, threads: int,
                 on_worker_start: Callable[[Flask], Any] | None = None,
                 on_worker_stop: Callable[[Flask], Any] | None = None,
                 on_exit: Callable[[], Any] | None = None):
        self.app_factory = app_factory
        self.app: Flask | None = None
        self.gate_limits: GateLimits | None = None
        self.options = {
            "bind": f"{host}:{port}",
            "workers": 1,
            "worker_class": HubWorker,
            "threads": threads,
            # Connections waiting for their request cost a socket, not a thread (the gate).
            "worker_connections": WORKER_CONNECTIONS,
            "preload_app": False,
            "timeout": 120,
            "graceful_timeout": 10,
            "keepalive": 5,
            # gunicorn 27 opens ~/.gunicorn/gunicorn.ctl by default; a second hub took it over.
            "control_socket_disable": True,
            "accesslog": None,
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
            "on_exit": lambda _arbiter: on_exit() if on_exit else None,
        }
        self.on_worker_start = on_worker_start
        self.on_worker_stop = on_worker_stop
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        if self.app is None:
            app = self.app_factory()
            self.gate_limits = GateLimits.from_settings(app.config["SETTINGS"])
            app.wsgi_app = LiveSlots(app.wsgi_app, app,  # type: ignore[method-assign]
                                     self.gate_limits.live_slots)
            self.app = app
        return self.app

    def _post_worker_init(self, _worker) -> None:
        if self.on_worker_start is not None:
            self.on_worker_start(self.load())
        settle_heap()
        # What the background loads in its own threads just after the start (the township's
        # roads, fences, sums: ~200,000 objects on a prefecture) is settled once more.
        later = threading.Timer(SETTLE_AGAIN_S, settle_heap)
        later.daemon = True
        later.start()

    def _worker_exit(self, _server, _worker) -> None:
        """The worker's last step (gunicorn calls it in a `finally`, with the `SystemExit` that
        ends the worker on its way out): stop the background, then leave at once. Left to
        propagate, that exit ran the callers the worker inherited from the fork (`rescuehub
        run`'s own `finally`, which would stop the parent's broker) and the interpreter's
        teardown (0.6 s)."""
        leaving = sys.exc_info()[1]
        if self.on_worker_stop is not None and self.app is not None:
            try:
                self.on_worker_stop(self.app)
            except Exception:  # logged here: leave() below ends the process either way
                log.exception("the background did not stop cleanly")
        if isinstance(leaving, SystemExit):
            leave(leaving.code)
