"""The ingest writer: a child process of the process that owns MQTT, storing batches of messages.

Why a process: paho's receive path and the writer share one GIL in one process. Measured with a
bench of single-reading messages (bench/ingest.py): paho took about half of the hub process's CPU,
so the writer got half a core whatever it cost. In its own process the writer has a core of its
own and the MQTT process only receives, forwards and acknowledges.

The protocol over a `multiprocessing` pipe, in order:
- parent → child: a batch, a list of `Item` (the MQTT message id is the parent's business);
  `None` asks the child to stop;
- child → parent: a `Written` per batch, in the order the batches came, sent only after the
  batch's transaction committed. The parent acknowledges a batch's messages only then, so a
  crash of either process loses nothing: the broker redelivers what was not acknowledged and the
  UNIQUE (sensor, ts) key absorbs what was stored already.

While the database is down the child retries its batch with backoff and answers nothing; the
parent stops acknowledging, and the broker keeps the rest queued.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import update

from dispatch.core.heap import leave
from telemetry.live import Stored, gateway_status_event

log = logging.getLogger(__name__)

STATUS_PREFIX = "rescuehub/v1/status/"
# Measured (the writer alone, 20,000 single-reading messages): with the default thresholds
# (700, 10, 10) the cyclic collector took about a third of the writer's time, walking the
# per-sensor memories of telemetry.sensor_memory; collecting ~100 times less often cost almost
# nothing.
GC_THRESHOLDS = (100_000, 50, 100)
# How long the parent waits for a new child to be ready (imports, app, database).
START_TIMEOUT_S = 60.0


# One MQTT message as the writer needs it: (topic, payload, MQTT message id). A plain tuple:
# measured, pickling a batch of frozen dataclasses cost the parent ~2 µs and the child ~1.7 µs
# per message, a named tuple half that, a tuple a tenth.
Item = tuple[str, bytes, int]


@dataclass
class Written:
    """What a committed batch did: each sensor's newest stored reading (for `reading` events),
    `sensor_status` events, and the counts for /metrics."""

    newest: list[Stored] = field(default_factory=list)
    status_events: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # What the parent's telemetry memory follows (TelemetryState.follow): the stored readings
    # per sensor id, and each sensor's revision before and after the commit.
    readings: dict[int, list] = field(default_factory=dict)
    revisions: dict[int, tuple[int, int]] = field(default_factory=dict)


class Store:
    """Stores batches of MQTT messages in one transaction each (used inside the child)."""

    def __init__(self, app):
        from telemetry.ingest import IngestLimits
        from telemetry.quota import quota_of
        from telemetry.sensor_memory import state_of

        self.app = app
        self.limits = IngestLimits.of(app.config["SETTINGS"])
        self.state = state_of(app)
        # MQTT ingest's dead-letter quota: counted here, in the one process that writes it.
        self.quota = quota_of(app)

    def write(self, batch: list[Item]) -> Written:
        """One transaction for the batch; raises when the database fails (nothing committed)."""
        from dispatch.core.db import db, utcnow
        from telemetry.ingest import Ingest, Message

        with self.app.app_context():
            try:
                statuses: list[dict] = []
                with db.transaction() as s:
                    ingest = Ingest(s, self.limits, self.state, self.quota)
                    now = utcnow()
                    messages = []
                    # A message's id in its dead letters: its MQTT id, a tag of the batch and
                    # its place in it (QoS 0 messages all have MQTT id 0).
                    tag = uuid.uuid4().hex[:8]
                    for place, (topic, payload, mid) in enumerate(batch):
                        gateway = topic.rsplit("/", 1)[-1]
                        if topic.startswith(STATUS_PREFIX):
                            statuses += gateway_status(s, gateway, payload, now)
                        else:
                            messages.append(Message(payload, topic, gateway,
                                                    f"mqtt-{mid}-{tag}-{place}"))
                    newest: dict[str, Stored] = {}
                    for result in ingest.messages(messages, now=now):
                        for code, reading, flag in result.stored_readings:
                            if code not in newest or reading.ts > newest[code][1]:
                                newest[code] = (code, reading.ts, reading.value, flag)
                    ingest.finish()
                counts = ingest.apply(count=False)
                return Written(list(newest.values()), statuses + ingest.status_events,
                               dict(counts), ingest.pending.readings, ingest.revision_steps())
            finally:
                db.remove()


def gateway_status(session, gateway: str, payload: bytes, now) -> list[dict]:
    """A gateway's retained status (or its last will): online state, battery; returns the
    `sensor_status` event to send after the commit (none for an unknown gateway)."""
    from dispatch.core.models import Gateway

    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        log.info("status of %s is not JSON; ignored", gateway)
        return []
    if not isinstance(body, dict) or not isinstance(body.get("online"), bool):
        log.info("status of %s has no boolean `online`; ignored", gateway)
        return []
    online = body["online"]
    battery = body.get("battery_v")
    values = {"last_seen_at": now, "online": online,
              "offline_reason": None if online else "reported"}
    if isinstance(battery, int | float) and not isinstance(battery, bool) \
            and math.isfinite(battery):
        values["battery_v"] = float(battery)
    changed = session.execute(update(Gateway).where(Gateway.code == gateway).values(**values))
    if not changed.rowcount:
        return []
    return [gateway_status_event(gateway, online=online, reason="reported", since=now)]


def serve(conn, app_factory: Callable[..., Flask], settings_values: dict, log_level: str,
          log_file: str | None) -> None:
    """The child's main loop: build the app, say ready, then store batch after batch."""
    from dispatch.core.db import db
    from dispatch.core.runtime import child_logging
    from dispatch.core.settings import Settings

    child_logging(log_level, log_file, "writer")
    gc.set_threshold(*GC_THRESHOLDS)
    store = Store(app_factory(settings=Settings(settings_values)))
    with store.app.app_context():
        checkpointer = db.checkpointer
    if checkpointer is not None:
        # The parent's background (dispatch.core.runtime) runs the WAL checkpointer from
        # before it starts this child until after it stopped it.
        checkpointer.leave_to_parent()
    conn.send(("ready", os.getpid()))
    _store_batches(conn, store)
    # Every batch it was sent is committed and acknowledged: close the database's connections
    # and leave without the interpreter's teardown (dispatch.core.heap.leave).
    with store.app.app_context():
        db.engine.dispose()
    leave(0)


def _store_batches(conn, store: Store) -> None:
    """Store each batch from the parent and answer it, until told to stop or the parent is
    gone."""
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):  # the parent is gone: what is unacknowledged comes again
            return
        if batch is None:
            return
        delay = 0.5
        while True:
            try:
                written = store.write(batch)
                break
            except Exception:
                log.warning("ingest: database write failed; %d message(s) kept "
                            "unacknowledged, retrying in %.1f s", len(batch), delay,
                            exc_info=True)
                time.sleep(delay)
                delay = min(delay * 2, 30)
        try:
            conn.send(written)
        except (BrokenPipeError, OSError):
            return


class WriterProcess:
    """The parent's handle on the writer child: start, send batches, receive `Written`."""

    def __init__(self, app_factory: Callable[..., Flask], settings_values: dict, log_level: str,
                 log_file: str | None = None):
        self.app_factory = app_factory
        self.settings_values = settings_values
        self.log_level = log_level
        self.log_file = log_file
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start a child and wait until it is ready (raises if it is not)."""
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=serve, args=(child, self.app_factory, self.settings_values, self.log_level,
                                self.log_file),
            name="rescuehub-ingest-writer", daemon=True)
        process.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S):
            process.kill()
            raise RuntimeError("the ingest writer process did not start within "
                               f"{START_TIMEOUT_S:.0f} s")
        hello = parent.recv()
        log.info("ingest writer process %s ready", hello[1])
        with self._lock:
            self._process, self._conn = process, parent

    def send(self, batch: list[Item]) -> None:
        with self._lock:
            conn = self._conn
        conn.send(batch)

    def receive(self) -> Written:
        """The next batch's result (EOFError when the child died)."""
        with self._lock:
            conn = self._conn
        return conn.recv()

    def restart(self) -> None:
        """Replace a child that died (or hangs): kill what is left, start a new one."""
        with self._lock:
            process, conn = self._process, self._conn
        if process is not None:
            process.kill()
            process.join(5)
        if conn is not None:
            conn.close()
        self.start()

    def stop(self, timeout: float = 10) -> None:
        """Ask the child to finish its batch and stop; kill it if it does not."""
        with self._lock:
            process, conn = self._process, self._conn
        if process is None:
            return
        try:
            conn.send(None)
        except OSError:
            pass
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(5)
        conn.close()
