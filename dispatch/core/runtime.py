"""Background work of the one process that owns MQTT and the scheduler, and the managed broker.

`Background` is started exactly once: inside the gunicorn worker after it forks (`rescuehub run`)
or in `rescuehub worker`. Never two schedulers, never two MQTT clients with one id (DESIGN §3).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import select

from dispatch.core.broker import (
    BrokerAccount,
    ManagedBroker,
    check_username,
    hash_mqtt_password,
    reachable_broker_dir,
)
from dispatch.core.db import WalCheckpointer, db, utcnow
from dispatch.core.keys import stored_secret
from dispatch.core.models import Gateway, Heartbeat
from dispatch.core.mqtt import HubMqtt
from dispatch.core.realtime import notify
from dispatch.core.settings import CONFIG_DIR, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A periodic job: a function run inside the app context every `every`.

    `own_process`: run it in the jobs process instead of this one (a module-level function, with
    nothing to send back). For CPU-heavy work: measured, rolling up the hours of 150,000 new
    readings in the process that receives MQTT raised the publish-to-event p99 from 0.17 to
    2.3 s and slowed a backlog drain from 17.6 to 25.5 s, since a busy thread starves paho's
    receive thread of the GIL."""

    name: str
    func: Callable[[], None]
    every: timedelta
    own_process: bool = False


def log_file() -> str | None:
    """The file this process logs to, if any (a child process logs there too)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


# Libraries whose routine INFO lines drown what an operator needs (APScheduler logs every run of
# every job, Alembic every plugin it sets up): WARNING and above only, unless the hub logs DEBUG.
ROUTINE_LOGGERS = ("apscheduler", "alembic")
# A job that takes longer than this share of its interval is reported at WARNING.
SLOW_JOB_SHARE = 0.5


def quiet_routine_loggers(level: str) -> None:
    """Keep the libraries' routine lines below INFO (see ROUTINE_LOGGERS)."""
    debug = logging.getLevelName(level.upper()) == logging.DEBUG
    quiet = logging.DEBUG if debug else logging.WARNING
    for name in ROUTINE_LOGGERS:
        logging.getLogger(name).setLevel(quiet)


def child_logging(level: str, file: str | None, name: str) -> None:
    """Logging of a child process (the ingest writer, the jobs process): like its parent's,
    each line marked with the child's name."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file:
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format=f"%(asctime)s %(levelname)s %(name)s [{name}]: %(message)s")
    quiet_routine_loggers(level)


_child_app: Flask | None = None
JOBS_NICENESS = 10
# An own-process job first runs this long after the start (at most its interval), not at once:
# a hub restarting after an outage drains the broker's backlog first.
FIRST_RUN_DELAY = timedelta(minutes=1)
# How often a child process checks that its parent still lives.
CHILD_WATCH_S = 1.0
# How long stopping a child process waits for the call under way.
CHILD_STOP_S = 5.0


def _leave_with(parent: int) -> None:
    """A child's watch: leave once the process that started it is gone (a `kill -9` of the hub,
    or a stop that did not reach the pool). A ProcessPoolExecutor worker would otherwise wait
    for work for ever: measured, one test suite left 16 such processes of ~200 MB each."""
    while os.getppid() == parent:
        time.sleep(CHILD_WATCH_S)
    os._exit(0)


def _start_child(app_factory: Callable[..., Flask], settings_values: dict, level: str,
                 file: str | None, name: str, parent: int) -> None:
    global _child_app

    threading.Thread(target=_leave_with, args=(parent,), name="leave-with-parent",
                     daemon=True).start()
    child_logging(level, file, name)
    # Background work yields the CPU to receiving and storing readings: on 2 cores a roll-up
    # competing at equal priority still raised the publish-to-event p99 above a second.
    os.nice(JOBS_NICENESS)
    _child_app = app_factory(settings=Settings(settings_values))


def _run_in_child(func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    assert _child_app is not None
    with _child_app.app_context():
        return func(*args, **kwargs)


class ChildProcess:
    """A spawned process with its own app, for CPU-heavy work of the process that owns MQTT
    (the jobs process; the evacuation planner's). Started on first use, again after it died;
    at JOBS_NICENESS. One call at a time: calls queue in order."""

    def __init__(self, app: Flask, name: str):
        self.app = app
        self.name = name
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _process(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                level = logging.getLevelName(logging.getLogger().level)
                self._pool = ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_child,
                    initargs=(self.app.config["APP_FACTORY"],
                              self.app.config["SETTINGS"].as_dict(), level, log_file(),
                              self.name, os.getpid()))
            return self._pool

    @property
    def started(self) -> bool:
        return self._pool is not None

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`func(*args, **kwargs)` in the child's app context (a module-level function, its
        arguments and result picklable); its result, or its exception. BrokenProcessPool when
        the process died (the next call starts another)."""
        try:
            return self._process().submit(_run_in_child, func, args, kwargs).result()
        except BrokenProcessPool:
            with self._lock:
                self._pool = None
            raise

    def stop(self) -> None:
        """Stop the process: waits up to CHILD_STOP_S for a call under way. A stopped pool lets
        go of its queues' semaphores; left to the hub's exit without teardown, multiprocessing's
        resource tracker warned of "leaked semaphore objects" at every stop."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        stopping = threading.Thread(target=pool.shutdown, kwargs={"cancel_futures": True},
                                    name=f"stop-{self.name}", daemon=True)
        stopping.start()
        stopping.join(CHILD_STOP_S)


def hub_mqtt_password(settings: Settings) -> str:
    """The hub's MQTT password: from settings, or generated in the data directory."""
    return settings.mqtt.password or stored_secret(settings.data_dir, "mqtt_password", 24)


def hub_mqtt_client_id(settings: Settings) -> str:
    """The hub's MQTT client id: from settings, or "rescuehub-" and a random part generated in
    the data directory (never a published constant: on a broker that does not tie ids to logins,
    whoever connects with the hub's id takes its session over)."""
    return settings.mqtt.client_id or "rescuehub-" + stored_secret(settings.data_dir,
                                                                   "mqtt_client_id", 12)


def observer_names(settings: Settings) -> list[str]:
    """The read-only MQTT logins of setting mqtt.observers (BrokerError for a bad name)."""
    names = {name.strip() for name in settings.mqtt.observers.split(",") if name.strip()}
    return sorted(check_username(name) for name in names)


def observer_password(settings: Settings, name: str) -> str:
    """An observer's MQTT password, generated in the data directory."""
    return stored_secret(settings.data_dir, f"mqtt-observer-{check_username(name)}", 24)


def reserved_mqtt_names(settings: Settings) -> set[str]:
    """MQTT logins that are not gateways': the hub's own and the observers' (lower case)."""
    return {name.lower() for name in (settings.mqtt.username, *observer_names(settings))}


def broker_dir(settings: Settings) -> Path:
    """The managed broker's directory in the data directory (a link to a place the broker's
    user can reach when the data directory is closed to it: `reachable_broker_dir`)."""
    return reachable_broker_dir(settings.data_dir / "mosquitto")


AccountsProvider = Callable[[Settings], Iterable[BrokerAccount]]
_account_providers: list[AccountsProvider] = []


def add_broker_accounts(provider: AccountsProvider) -> None:
    """Let a package add MQTT logins to the managed broker's files (alerts: the village
    terminals). The provider is called in an app context, with the settings, whenever the files
    are written."""
    if provider not in _account_providers:
        _account_providers.append(provider)


def broker_accounts(settings: Settings) -> list[BrokerAccount]:
    """The hub's login, the observers', every active gateway's and those the packages add
    (add_broker_accounts), for the managed broker's passwd and ACL."""
    hub = BrokerAccount(settings.mqtt.username, hash_mqtt_password(hub_mqtt_password(settings)),
                        "hub")
    rows = db.session.execute(select(Gateway.code, Gateway.mqtt_password_hash)
                              .where(Gateway.active).order_by(Gateway.code))
    gateways = [BrokerAccount(code, digest, "gateway") for code, digest in rows]
    taken = {account.username.lower() for account in (hub, *gateways)}
    observers = []
    for name in observer_names(settings):
        if name.lower() in taken:
            # Skipped rather than refused: a clash must never keep the hub or its gateways off.
            log.warning("mqtt.observers: %s is the hub's or a gateway's MQTT login already; "
                        "no observer of that name", name)
            continue
        observers.append(BrokerAccount(
            name, hash_mqtt_password(observer_password(settings, name)), "observer"))
    taken |= {account.username.lower() for account in observers}
    added = []
    for provider in _account_providers:
        for account in provider(settings):
            if account.username.lower() in taken:
                log.warning("MQTT login %s (%s) is the hub's, an observer's or a gateway's "
                            "already; left out of the broker files", account.username,
                            account.role)
                continue
            taken.add(account.username.lower())
            added.append(account)
    return [hub, *observers, *gateways, *added]


def managed_broker(settings: Settings) -> ManagedBroker:
    endpoint = settings.mqtt_endpoint
    return ManagedBroker(host=endpoint.host, port=endpoint.port, broker_dir=broker_dir(settings),
                         template=CONFIG_DIR / "mosquitto.conf",
                         executable=settings.mqtt.mosquitto,
                         max_packet_size=settings.ingest.max_payload_bytes * 2 + 65536)


def heartbeat(app: Flask) -> None:
    """Record that this worker lives and whether MQTT is up (read by /readyz elsewhere), and tell
    the office pages (through the message queue when web processes are separate)."""
    mqtt = app.extensions.get("rescuehub.mqtt")
    connected = bool(mqtt and mqtt.connected)
    with db.transaction() as s:
        beat = s.get(Heartbeat, "worker") or Heartbeat(name="worker")
        beat.at, beat.pid = utcnow(), os.getpid()
        beat.mqtt_connected = connected
        s.add(beat)
    notify("hub_status", {"mqtt": "up" if connected else "down", "worker_pid": os.getpid()})


class Background:
    """The worker's MQTT client, scheduler and heartbeat."""

    def __init__(self, app: Flask, schedule: Sequence[Job],
                 subscribers: Sequence[Callable[[Flask, HubMqtt], Callable[[], None]]] = ()):
        self.app = app
        self.schedule = schedule
        # Packages that consume MQTT (telemetry's ingest) attach here; each returns its stop().
        self.subscribers = subscribers
        self._stops: list[Callable[[], None]] = []
        settings: Settings = app.config["SETTINGS"]
        endpoint = settings.mqtt_endpoint
        self.mqtt = HubMqtt(host=endpoint.host, port=endpoint.port, tls=endpoint.tls,
                            client_id=hub_mqtt_client_id(settings),
                            username=settings.mqtt.username,
                            password=hub_mqtt_password(settings),
                            protocol=settings.mqtt.protocol,
                            session_expiry_s=settings.mqtt.session_expiry_s,
                            keepalive_s=settings.mqtt.keepalive_s)
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        self._children: dict[str, ChildProcess] = {}
        self._children_lock = threading.Lock()
        self._checkpointer: WalCheckpointer | None = None

    def child(self, name: str) -> ChildProcess:
        """This hub's child process of that name ("jobs" runs the `own_process` jobs)."""
        with self._children_lock:
            if name not in self._children:
                self._children[name] = ChildProcess(self.app, name)
            return self._children[name]

    def _wrap(self, job: Job) -> Callable[[], None]:
        def run() -> None:
            started = time.monotonic()
            try:
                attempt()
            finally:
                took = time.monotonic() - started
                if took > job.every.total_seconds() * SLOW_JOB_SHARE:
                    log.warning("job %s took %.1f s (it runs every %s)", job.name, took,
                                job.every)

        def attempt() -> None:
            if job.own_process:
                try:
                    self.child("jobs").call(job.func)
                except BrokenProcessPool:
                    log.error("job %s: the jobs process died; it starts again next time",
                              job.name)
                except Exception:
                    log.exception("job %s failed", job.name)
                return
            with self.app.app_context():
                try:
                    job.func()
                except Exception:
                    log.exception("job %s failed", job.name)

        return run

    def start(self) -> None:
        """Connect MQTT and start the scheduler (once per process)."""
        if "rescuehub.mqtt" in self.app.extensions:
            raise RuntimeError("background work already started in this process")
        self.app.extensions["rescuehub.mqtt"] = self.mqtt
        self.app.extensions["rescuehub.background"] = self
        with self.app.app_context():
            self._checkpointer = db.checkpointer
        if self._checkpointer is not None:
            self._checkpointer.start()
        self._stops = [attach(self.app, self.mqtt) for attach in self.subscribers]
        self.mqtt.start()
        for job in self.schedule:
            delay = min(job.every, FIRST_RUN_DELAY) if job.own_process else timedelta(0)
            self.scheduler.add_job(self._wrap(job), "interval", id=job.name, name=job.name,
                                   seconds=job.every.total_seconds(),
                                   next_run_time=utcnow() + delay)
        self.scheduler.start()
        log.info("background started in pid %s: MQTT %s:%s, %d jobs", os.getpid(),
                 self.mqtt.host, self.mqtt.port, len(self.schedule))

    def stop(self) -> None:
        """Stop the scheduler and disconnect MQTT cleanly."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for stop in self._stops:
            stop()
        self.mqtt.stop()
        with self._children_lock:
            children, self._children = list(self._children.values()), {}
        for child in children:
            child.stop()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.app.extensions.pop("rescuehub.mqtt", None)
        self.app.extensions.pop("rescuehub.background", None)
