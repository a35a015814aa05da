"""The web server: gunicorn with one gthread worker (real websocket upgrades, NOTES.md).

The app is created in the worker after the fork (preload off), and background work starts there
in `post_worker_init`, so the MQTT client and scheduler live in the process that serves Socket.IO.
Each open websocket holds one thread: `web.threads` sizes the worker, and the gate
(dispatch.core.gate) keeps `web.http_threads` of them for plain HTTP, reads requests before a
thread serves them and limits the connections of one address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from dispatch.core.gate import WORKER_CONNECTIONS, GatedWorker, GateLimits, LiveSlots

log = logging.getLogger(__name__)


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
            "worker_class": GatedWorker,
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

    def _worker_exit(self, _server, _worker) -> None:
        if self.on_worker_stop is not None and self.app is not None:
            self.on_worker_stop(self.app)
