"""The MQTT bridge: gateway messages in, stored readings out, acknowledged only after commit.

The paho callback only enqueues. A sender thread takes whatever is queued (up to BATCH messages)
and hands it to the writer process (telemetry.writer_process), which stores each batch in one
transaction; a receiver thread gets each batch's result after its commit and only then
acknowledges the batch's messages (manual acks): measured here, automatic acks lost 28–209 of
30,000 readings to a `kill -9`, acks after the commit lost none (NOTES.md). While the database is
down the writer keeps its batch and retries, nothing is acknowledged, and the broker keeps the
rest queued. A writer process that dies is replaced and gets every unacknowledged batch again,
in order (the UNIQUE (sensor, ts) key absorbs what it had stored).

At most IN_FLIGHT batches are with the writer at once, so it always has the next one ready
without the process that owns MQTT holding more than that unacknowledged.

The cyclic garbage collector of the process that owns MQTT runs less often while the bridge is
attached, and the objects that process holds at attach time (the app, its modules) are frozen
out of its collections (`gc.freeze`): the MQTT client builds objects per message (over MQTT 5
paho's message, its MQTTMessageInfo with a Condition and a lock), so at the default thresholds
(700, 10, 10) a young collection ran every ~100 messages and a full one, walking the whole app
and the gauges' memories, every few thousand. Measured (bench/alerts.py, rules on, py-spy
--native): the collector was 55 % of that process's CPU; the writer child does the same
(GC_THRESHOLDS there).
"""

from __future__ import annotations

import collections
import gc
import logging
import queue
import threading
from collections.abc import Callable

from flask import Flask

from dispatch.core.events import ReadingsStored, readings_stored
from dispatch.core.heap import settle_heap
from dispatch.core.mqtt import HubMqtt
from dispatch.core.runtime import log_file
from telemetry import metrics
from telemetry.ingest import counted
from telemetry.live import announcer_of, send_status
from telemetry.sensor_memory import state_of
from telemetry.writer_process import Item, WriterProcess, Written

log = logging.getLogger(__name__)

READINGS_TOPIC = "rescuehub/v1/readings/+"
STATUS_TOPIC = "rescuehub/v1/status/+"
# Messages per batch, at most: a batch forms only from what is queued, so a quiet hub writes
# small batches at once and a busy one large ones. Each sensor a batch touches costs a row in
# several statements, once per batch: measured (bench/ingest.py, 1,000 sensors, SpatiaLite),
# raising this from 500 to 1,500 messages took single readings from ~3,900 to 5,866/s and the
# 60,000-reading backlog drain from 20-22 s to 14.1 s, with the event p99 under load no worse
# (242 ms); capping a batch at ~250 or ~1,000 readings had cut stored readings/s by half or a
# third. IN_FLIGHT × BATCH must stay under the broker's max_inflight_messages (4000 in
# config/mosquitto.conf), or the broker holds back what would fill the next batch.
BATCH = 1500
IN_FLIGHT = 2
# The collector's thresholds in the process that owns MQTT while the bridge is attached (a young
# collection every 50,000 new objects; module docstring).
GC_THRESHOLDS = (50_000, 20, 10)


class IngestBridge:
    """Queue, sender and receiver threads between the hub's MQTT client and the writer."""

    def __init__(self, app: Flask, mqtt: HubMqtt):
        self.app = app
        self.mqtt = mqtt
        # A SimpleQueue (C, no Condition): paho's thread puts every message and the sender
        # takes each one: measured, 2.7 µs per message with queue.Queue, 0.12 µs with this.
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.writer = WriterProcess(app.config["APP_FACTORY"], app.config["SETTINGS"].as_dict(),
                                    logging.getLevelName(logging.getLogger().level), log_file())
        self.announcer = announcer_of(app)
        self.state = state_of(app)
        self._stop = threading.Event()
        # Batches with the writer, oldest first; replies come in the same order.
        self._inflight: collections.deque[list] = collections.deque()
        self._slots = threading.Semaphore(IN_FLIGHT)
        # Held while a batch is added and sent, and while a dead writer is replaced and the
        # batches in flight are sent again: each batch reaches each writer exactly once.
        self._send_lock = threading.Lock()
        self._sender = threading.Thread(target=self._send_loop, name="ingest-sender",
                                        daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, name="ingest-receiver",
                                          daemon=True)

    def start(self) -> None:
        self.writer.start()
        self.mqtt.subscribe(READINGS_TOPIC, self.enqueue)
        self.mqtt.subscribe(STATUS_TOPIC, self.enqueue)
        self._sender.start()
        self._receiver.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop taking batches, let the writer finish those it has (they are acknowledged),
        stop it."""
        self._stop.set()
        self.queue.put(None)
        self._sender.join(timeout)
        with self._send_lock:
            self.writer.stop(timeout)
        self._receiver.join(timeout)

    def enqueue(self, message) -> None:
        """paho callback: never blocks, never touches the database."""
        self.queue.put(message)

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
        metrics.ingest_queue_depth.set(self.queue.qsize())
        return batch

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._take_batch()
            if not batch:
                continue
            self._slots.acquire()
            with self._send_lock:
                self._inflight.append(batch)
                try:
                    self.writer.send(_items(batch))
                except OSError:
                    pass  # a dead writer: the receiver replaces it and sends this batch again

    def _receive_loop(self) -> None:
        while True:
            try:
                written = self.writer.receive()
            except (EOFError, OSError):
                if self._stop.is_set():
                    return
                self._replace_writer()
                continue
            batch = self._inflight.popleft()
            self._slots.release()
            self.mqtt.ack_all([m.mid for m in batch if m.qos > 0])
            self._written(written)

    def _replace_writer(self) -> None:
        with self._send_lock:
            log.error("ingest: the writer process died; starting another and sending it the "
                      "%d unacknowledged batch(es) again", len(self._inflight))
            while True:
                try:
                    self.writer.restart()
                    for batch in list(self._inflight):
                        self.writer.send(_items(batch))
                    return
                except (OSError, RuntimeError):
                    log.exception("ingest: the writer process could not be restarted; "
                                  "trying again in 5 s")
                    if self._stop.wait(5):
                        return

    def _written(self, written: Written) -> None:
        """After a batch's commit: metrics, this process's memory of the sensors, the signal
        for the warning rules, `reading` and `sensor_status` events."""
        counted(written.counts)
        if written.revisions:
            self.state.follow(written.readings, written.revisions)
            with self.app.app_context():
                readings_stored.send(ReadingsStored(
                    frozenset(written.revisions),
                    frozenset(sid for sid, readings in written.readings.items()
                              if any(value != 0 for _ts, value, _flag in readings))))
        self.announcer.announce(written.newest)
        if written.status_events:
            with self.app.app_context():
                send_status(written.status_events)


def _items(batch: list) -> list[Item]:
    return [(m.topic, m.payload, m.mid) for m in batch]


def attach(app: Flask, mqtt: HubMqtt) -> Callable[[], None]:
    """Subscribe the bridge on the worker's MQTT client; returns its stop function."""
    restore = _collect_less_often()
    bridge = IngestBridge(app, mqtt)
    bridge.start()

    def stop(timeout: float = 10) -> None:
        bridge.stop(timeout)
        restore()

    return stop


def _collect_less_often() -> Callable[[], None]:
    """Freeze what the process holds now out of the cyclic collector and raise its thresholds
    (module docstring); returns the function that undoes both (a test's process goes on)."""
    before = gc.get_threshold()
    settle_heap()
    gc.set_threshold(*GC_THRESHOLDS)

    def restore() -> None:
        gc.set_threshold(*before)
        gc.unfreeze()

    return restore
