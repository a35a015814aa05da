"""The MQTT bridge: gateway messages in, stored readings out, acknowledged only after commit.

The paho callback only enqueues. One writer thread drains the queue in batches, stores each
message's readings and dead letters in one transaction, commits, and only then acknowledges the
messages (manual acks): measured here, automatic acks lost 28–209 of 30,000 readings to a
`kill -9`, acks after the commit lost none (NOTES.md). While the database is down the writer
keeps the batch, acknowledges nothing and retries, so the broker keeps the rest queued.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import queue
import threading
import uuid
from collections.abc import Callable

from flask import Flask
from sqlalchemy import update

from dispatch.core import metrics
from dispatch.core.db import db, utcnow
from dispatch.core.models import Gateway
from dispatch.core.mqtt import HubMqtt
from dispatch.core.realtime import notify
from telemetry.ingest import Ingest, IngestLimits, Message
from telemetry.live import announcer_of
from telemetry.state import state_of

log = logging.getLogger(__name__)

READINGS_TOPIC = "rescuehub/v1/readings/+"
STATUS_TOPIC = "rescuehub/v1/status/+"
# Measured: capping a batch at ~250 or ~1,000 readings (instead of 500 messages, up to 10,000
# readings of batched messages) cut stored readings/s by half or a third, since each sensor a
# batch touches costs a row in several statements, and barely changed event latency.
BATCH = 500
GC_THRESHOLDS = (100_000, 50, 100)


class IngestBridge:
    """Queue + writer thread between the hub's MQTT client and the database."""

    def __init__(self, app: Flask, mqtt: HubMqtt):
        settings = app.config["SETTINGS"]
        self.app = app
        self.mqtt = mqtt
        self.limits = IngestLimits(settings.ingest.max_payload_bytes,
                                   settings.ingest.max_future_s, settings.ingest.max_age_days)
        self.queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.state = state_of(app)
        self.announcer = announcer_of(app)
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        # Measured (the writer alone, 20,000 single-reading messages): with the default
        # thresholds (700, 10, 10) the cyclic collector took about a third of the writer's time,
        # walking the per-sensor memories of telemetry.state after every few hundred
        # allocations; collecting ~100 times less often took that to almost nothing. Ingest owns
        # this process's allocation rate, so it sets this process's thresholds.
        gc.set_threshold(*GC_THRESHOLDS)
        self.mqtt.subscribe(READINGS_TOPIC, self.enqueue)
        self.mqtt.subscribe(STATUS_TOPIC, self.enqueue)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self.queue.put(None)
        self._thread.join(timeout)

    def enqueue(self, message) -> None:
        """paho callback: never blocks, never touches the database."""
        self.queue.put(message)
        metrics.ingest_queue_depth.set(self.queue.qsize())

    def _take_batch(self) -> list:
        """The next batch: whatever is queued, up to BATCH messages, without waiting for more
        (measured: waiting 50 ms for a batch to fill tripled the publish-to-event p50, from
        140 to 420 ms at 1,000 readings/s, and stored no faster)."""
        first = self.queue.get()
        if first is None:
            return []
        batch = [first]
        while len(batch) < BATCH:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stop.set()
                break
            batch.append(item)
        metrics.ingest_batch_size.observe(len(batch))
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take_batch()
            if not batch:
                continue
            delay = 0.5
            while True:
                try:
                    stored = self._store(batch)
                    break
                except Exception:
                    log.warning("ingest: database write failed; %d message(s) kept "
                                "unacknowledged, retrying in %.1f s", len(batch), delay,
                                exc_info=True)
                    if self._stop.wait(delay):
                        return
                    delay = min(delay * 2, 30)
            for message in batch:
                if message.qos > 0:
                    self.mqtt.client.ack(message.mid, message.qos)
            metrics.ingest_queue_depth.set(self.queue.qsize())
            self._announce(stored)

    def _store(self, batch: list) -> list:
        stored = []
        with self.app.app_context():
            try:
                statuses = []
                with db.transaction() as s:
                    ingest = Ingest(s, self.limits, self.state)
                    now = utcnow()
                    readings = []
                    for message in batch:
                        gateway = message.topic.rsplit("/", 1)[-1]
                        if message.topic.startswith("rescuehub/v1/status/"):
                            statuses += _status(s, gateway, message.payload, now)
                        else:
                            readings.append(Message(
                                message.payload, message.topic, gateway,
                                f"mqtt-{message.mid}-{uuid.uuid4().hex[:8]}"))
                    for result in ingest.messages(readings, now=now):
                        stored += result.stored_readings
                    ingest.finish()
                ingest.apply()
                for event in statuses + ingest.status_events:
                    notify("sensor_status", event)
            finally:
                db.remove()
        return stored

    def _announce(self, stored: list) -> None:
        self.announcer.announce(stored)


def _status(session, gateway: str, payload: bytes, now) -> list[dict]:
    """A gateway's retained status (or its last will): online state, battery; returns the
    `sensor_status` event to send after the commit (none for an unknown gateway)."""
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
    return [{"gateway": gateway, "online": online,
             "reason": None if online else "reported"}]


def attach(app: Flask, mqtt: HubMqtt) -> Callable[[], None]:
    """Subscribe the bridge on the worker's MQTT client; returns its stop function."""
    bridge = IngestBridge(app, mqtt)
    bridge.start()
    return bridge.stop
