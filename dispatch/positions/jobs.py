"""The positions' background work: the OwnTracks MQTT subscription of the process that owns MQTT
(dispatch.jobs.SUBSCRIBERS) and the track retention job (dispatch.jobs.SCHEDULE).

The paho callback only enqueues. One thread takes whatever is queued (up to BATCH messages),
stores it in one transaction (dispatch.positions.intake) and only then acknowledges the
messages (the hub's client acknowledges by hand, dispatch.core.mqtt): a message lost in a crash
is delivered again and absorbed as a duplicate. While the database is unreachable the batch is
kept, unacknowledged, and tried again. 1,248 phones every 10 s is ~125 messages/s: a batch a
few times a second.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import and_, delete, exists, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from dispatch.core.db import db, utcnow
from dispatch.core.mqtt import HubMqtt
from dispatch.positions import metrics
from dispatch.positions.devices import owntracks_devices
from dispatch.positions.fixes import Rejection, decode_owntracks
from dispatch.positions.intake import Intake, Letter, window
from dispatch.positions.models import LatestPosition, Position
from telemetry.quota import quota_of

log = logging.getLogger(__name__)

# OwnTracks' topics (DESIGN §5 MQTT table): locations, and region events on …/event.
TOPICS = ("owntracks/+/+", "owntracks/+/+/event")
BATCH = 500
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0


def device_of(topic: str) -> str | None:
    """The device login of an OwnTracks topic: its `{user}` (owntracks/{user}/{device}[/event])."""
    parts = topic.split("/")
    if len(parts) in (3, 4) and parts[0] == "owntracks" and parts[1] and parts[2]:
        return parts[1]
    return None


def take_owntracks(session: Session, messages: list, *, now) -> Intake:
    """Decode and store a batch of OwnTracks MQTT messages in the caller's transaction (call
    `after_commit()` on the answer once it held)."""
    intake = Intake(session, now, quota=quota_of(current_app))
    checks = window(session, now)
    logins = {message.topic: device_of(message.topic) for message in messages}
    reporters = owntracks_devices(session, {login for login in logins.values() if login})
    for message in messages:
        login = logins[message.topic]
        reporter = reporters.get(login) if login else None
        if reporter is None:
            # The broker should have refused it (ACL): an external broker, or a device retired
            # since it connected.
            intake.unknown("owntracks", login or message.topic)
            continue
        raw = bytes(message.payload)
        outcome = decode_owntracks(raw, checks)
        # A retained location replayed when the hub subscribes again was taken the first time:
        # counted, not dead-lettered again and again.
        keep = not (message.retain and isinstance(outcome, Rejection)
                    and outcome.reason == "too_old")
        intake.take(reporter, outcome, "owntracks",
                    Letter(message.topic, raw, f"mqtt-{uuid.uuid4().hex[:16]}"), keep_letter=keep)
    intake.finish()
    return intake


class OwnTracksSubscriber:
    """The queue and the thread between the hub's MQTT client and the database."""

    def __init__(self, app: Flask, mqtt: HubMqtt):
        self.app = app
        self.mqtt = mqtt
        self.queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="positions-owntracks",
                                        daemon=True)

    def start(self) -> None:
        for topic in TOPICS:
            self.mqtt.subscribe(topic, self.enqueue)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Finish the batch under way; what is still queued stays unacknowledged (the broker
        delivers it again)."""
        self._stop.set()
        self.queue.put(None)
        self._thread.join(timeout)

    def enqueue(self, message) -> None:
        """paho callback: never blocks, never touches the database."""
        self.queue.put(message)

    def _take_batch(self) -> list:
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
        metrics.queue_depth.set(self.queue.qsize())
        return batch

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._take_batch()
            if batch:
                self._store(batch)

    def _store(self, batch: list) -> None:
        wait = RETRY_FIRST_S
        while True:
            try:
                with self.app.app_context():
                    with db.transaction() as s:
                        intake = take_owntracks(s, batch, now=utcnow())
                    intake.after_commit()
                break
            except OperationalError:
                # The database is down or locked: keep the batch unacknowledged and retry.
                log.warning("positions: storing %d OwnTracks messages failed; retrying in "
                            "%.0f s", len(batch), wait, exc_info=True)
                if self._stop.wait(wait):
                    return
                wait = min(wait * 2, RETRY_MAX_S)
            except Exception:
                # A bug, not an outage: acknowledged anyway, or one message would stop them all.
                log.exception("positions: a batch of %d OwnTracks messages could not be stored",
                              len(batch))
                break
        self.mqtt.ack_all([m.mid for m in batch if m.qos > 0])


def attach(app: Flask, mqtt: HubMqtt) -> Callable[[], None]:
    """Subscribe to OwnTracks on the worker's MQTT client; returns the stop function."""
    subscriber = OwnTracksSubscriber(app, mqtt)
    subscriber.start()
    return subscriber.stop


# --- retention -----------------------------------------------------------------------------------

def prune_track(session: Session, *, now, retention_days: int, limit: int = 20000) -> int:
    """Delete up to `limit` fixes older than the retention, except each member's latest (the
    marker's); returns how many."""
    latest = LatestPosition.__table__
    marker = exists().where(and_(latest.c.member_id == Position.member_id,
                                 latest.c.ts == Position.ts))
    ids = session.scalars(select(Position.id).where(
        Position.ts < now - timedelta(days=retention_days), ~marker).limit(limit)).all()
    if ids:
        session.execute(delete(Position).where(Position.id.in_(ids)))
    return len(ids)


def prune_positions() -> None:
    """Fixes past positions.retention_days go, in short transactions; markers stay."""
    days = current_app.config["SETTINGS"].positions.retention_days
    while True:
        with db.transaction() as s:
            removed = prune_track(s, now=utcnow(), retention_days=days)
        if removed < 20000:
            return
