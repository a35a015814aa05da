"""Notification channels (DESIGN §5 "Alerts (contract)"): the retained village warning topics that
broadcast terminals (大喇叭) read, the webhooks (alerts.webhooks) and the county's (乡呼县应), and
the terminals' MQTT logins.

Both channels work from durable marks written in the caller's transaction, so any process may
cause a notification and a restarted worker finishes what was pending (STYLE.md "durable mark"):
- a village is to be published while `warning_sent_at` is NULL or older than `warning_at`; the
  mark is set to the `warning_at` that was published, only once the broker acknowledged it
  (QoS 1 PUBACK), and only if the village still says what was published (compare and set);
- a webhook notification is a `Delivery` row, pending until sent or given up.

`Channels` runs in the one process that owns MQTT (attached like telemetry's bridge): one thread
publishes the warnings, one picks due deliveries and hands each to a small pool, at most one per
URL at a time, so a webhook that hangs holds one worker for at most alerts.webhook_timeout_s and
never delays another webhook, the warnings or the rules. `nudge(app)` wakes them after a commit;
in a process without them (a web process) it does nothing and the worker's sweep, every
SWEEP_S, catches up.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from alerts import metrics
from alerts.models import Alert, AlertHistory, Delivery, Terminal
from alerts.settings import webhooks
from dispatch.core import audit
from dispatch.core.broker import BrokerAccount, BrokerError, check_username
from dispatch.core.db import db, utcnow
from dispatch.core.errors import NotFound
from dispatch.core.models import Gateway
from dispatch.core.mqtt import HubMqtt
from dispatch.core.settings import Settings
from maps.models import Village

log = logging.getLogger(__name__)

WARNINGS_TOPIC = "rescuehub/v1/warnings/{code}"
# Beijing time: the offset people read on the terminal's timestamps (RFC 3339, "+08:00").
BEIJING = timezone(timedelta(hours=8))
# The mark of a village never warned whose retained "none" was published: older than any
# `warning_at`, so its first warning is still to publish.
NEVER_WARNED = datetime(1970, 1, 1, tzinfo=UTC)

SWEEP_S = 5.0  # both threads look at their marks at least this often
PUBLISH_TIMEOUT_S = 5.0  # how long one pass waits for the broker's PUBACKs
WORKERS = 4  # webhook POSTs at once (each URL at most one)
DUE_BATCH = 100
JSON_TYPE = "application/json; charset=utf-8"
CAP_TYPE = "application/cap+xml"  # CAP 1.2 §3.1 (IANA registration)
CHANNEL_WEBHOOK, CHANNEL_COUNTY = "webhook", "county"

# What a loudspeaker reads out, in both languages whatever the office's: plain tables, not the
# catalog, so a terminal never depends on the locale of whoever caused the change.
# ("lifted" is the `none` after a warning; a village never warned is told it has none.)
SPOKEN = {
    "evacuate": ("{zh}：立即转移。", "{en}: evacuate now."),
    "prepare": ("{zh}：准备转移。", "{en}: prepare to evacuate."),
    "lifted": ("{zh}：预警解除。", "{en}: warning lifted."),
    "none": ("{zh}：目前没有预警。", "{en}: no warning."),
}


# --- the retained village warnings -----------------------------------------------------------

def village_topic(code: str) -> str:
    """The retained warning topic of a village (DESIGN §5 MQTT table)."""
    return WARNINGS_TOPIC.format(code=code)


def warning_payload(village_code: str, name_zh: str, name_pinyin: str, level: str,
                    alert_id: int | None, at: datetime, *, lifted: bool = True) -> bytes:
    """The retained message of a village's warning level (`lifted`: a `none` that ends a
    warning, else a village never warned)."""
    key = "lifted" if level == "none" and lifted else level
    if key not in SPOKEN:
        raise ValueError(f"unknown warning level {level!r} for village {village_code}")
    zh, en = SPOKEN[key]
    names = {"zh": name_zh or village_code, "en": name_pinyin or village_code}
    body = {"level": level, "alert": alert_id,
            "text": {"zh": zh.format(**names), "en": en.format(**names)},
            "ts": at.astimezone(BEIJING).isoformat(timespec="seconds")}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class _Published:
    """A village as read for publishing: what the retained message said, and the mark."""

    id: int
    level: str
    alert_id: int | None
    at: datetime | None
    mark: datetime | None


def _compare_and_mark(s: Session, village: _Published) -> None:
    """Mark the village published, if it still says what was published."""
    same = [Village.id == village.id, Village.warning_level == village.level,
            Village.warning_alert_id.is_(None) if village.alert_id is None
            else Village.warning_alert_id == village.alert_id,
            Village.warning_at.is_(None) if village.at is None
            else Village.warning_at == village.at]
    # updated_at stays: publishing changes nothing a map shows.
    s.execute(update(Village).where(*same).values(warning_sent_at=village.at or NEVER_WARNED,
                                                  updated_at=Village.updated_at))


def publish_warnings(mqtt: HubMqtt, *, everything: bool = False,
                     timeout: float = PUBLISH_TIMEOUT_S) -> bool:
    """Publish the villages whose warning is not on the broker yet (`everything`: every
    village, after a reconnect) and mark those acknowledged; True if all were."""
    query = select(Village.id, Village.code, Village.name_zh, Village.name_pinyin,
                   Village.warning_level, Village.warning_alert_id, Village.warning_at,
                   Village.warning_sent_at).order_by(Village.code)
    if not everything:
        query = query.where(or_(Village.warning_sent_at.is_(None),
                                Village.warning_sent_at < Village.warning_at))
    rows = db.session.execute(query).all()
    db.session.rollback()  # no transaction held open while waiting for the broker
    now, sent = utcnow(), []
    for row in rows:
        try:
            payload = warning_payload(row.code, row.name_zh, row.name_pinyin, row.warning_level,
                                      row.warning_alert_id, row.warning_at or now,
                                      lifted=row.warning_at is not None)
        except ValueError:
            log.exception("village %s: its warning cannot be published", row.code)
            continue
        info = mqtt.publish(village_topic(row.code), payload, qos=1, retain=True)
        sent.append((_Published(row.id, row.warning_level, row.warning_alert_id, row.warning_at,
                                row.warning_sent_at), info))
    deadline, acked = time.monotonic() + timeout, []
    for village, info in sent:
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if info.is_published():
                acked.append(village)
        except (RuntimeError, ValueError):  # not queued: disconnected, or paho's queue full
            continue
    with db.transaction() as s:
        for village in acked:
            if village.mark != (village.at or NEVER_WARNED):
                _compare_and_mark(s, village)
    if len(acked) < len(rows):
        log.warning("village warnings: %d of %d acknowledged by the broker; the rest next time",
                    len(acked), len(rows))
    return len(acked) == len(rows)


# --- webhook deliveries ----------------------------------------------------------------------

def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _json_body(event: str, alert_json: dict) -> str:
    return json.dumps({"event": event, "alert": alert_json}, ensure_ascii=False,
                      default=_json_default)


def queue_deliveries(session: Session, alert_json: dict, event: str, *, settings: Settings,
                     cap_xml: bytes | None = None) -> int:
    """Queue, in the caller's transaction, one delivery per configured webhook that wants this
    alert's kind and level; returns how many. A CAP webhook gets only events that come with a
    CAP message (cap_xml)."""
    now, queued = utcnow(), 0
    for hook in webhooks(settings.alerts.webhooks):
        if not hook.wants(alert_json["kind"], alert_json["level"]):
            continue
        if hook.body == "cap":
            if cap_xml is None:
                continue
            body = cap_xml.decode("utf-8")
        else:
            body = _json_body(event, alert_json)
        session.add(Delivery(alert_id=alert_json["id"], channel=CHANNEL_WEBHOOK, url=hook.url,
                             body_format=hook.body, body=body, state="pending", next_at=now))
        queued += 1
    return queued


def queue_county(session: Session, alert_json: dict, *, settings: Settings,
                 cap_xml: bytes | None = None) -> bool:
    """Queue the escalation's county step (乡呼县应) to alerts.county_webhook: the CAP message
    if given, else JSON; False (nothing queued) when no county webhook is configured."""
    url = settings.alerts.county_webhook
    if not url:
        return False
    body_format = "cap" if cap_xml is not None else "json"
    body = cap_xml.decode("utf-8") if cap_xml is not None else _json_body("escalated",
                                                                          alert_json)
    session.add(Delivery(alert_id=alert_json["id"], channel=CHANNEL_COUNTY, url=url,
                         body_format=body_format, body=body, state="pending", next_at=utcnow()))
    return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: urllib would repeat a POST as a GET."""

    def redirect_request(self, *_args, **_kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def shown_url(url: str) -> str:
    """A webhook's address as history and logs show it: without credentials or query (a token
    often travels there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def post(url: str, body: bytes, content_type: str, timeout: float,
         delivery_id: int) -> tuple[bool, str]:
    """POST one delivery: (whether it answered 2xx, what happened in a few words)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": content_type, "User-Agent": "rescuehub",
        # The same id on every try: a receiver can drop a repeat (delivery is at least once).
        "X-Rescuehub-Delivery": str(delivery_id)})
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(4096)
            return True, f"answered {response.status}"
    except urllib.error.HTTPError as exc:
        exc.close()
        return False, f"answered {exc.code}"
    except TimeoutError:
        return False, f"did not answer within {timeout:g} s"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return False, f"did not answer within {timeout:g} s"
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        return False, f"could not be reached ({reason})"
    except OSError as exc:  # the connection broke during the answer, a bad certificate, …
        return False, f"failed ({exc})"


@dataclass(frozen=True)
class _Due:
    """A pending delivery as picked for sending."""

    id: int
    channel: str
    url: str
    body_format: str
    body: str


def record_outcome(due: _Due, ok: bool, what: str, *, attempts: int, backoff_s: float) -> str:
    """Write one try's outcome on the delivery and the alert's history; returns the outcome
    (sent, retry or failed), or "" when the delivery was no longer pending."""
    now = utcnow()
    with db.transaction() as s:
        delivery = s.get(Delivery, due.id)
        if delivery is None or delivery.state != "pending":
            return ""
        delivery.attempts += 1
        tried = f"attempt {delivery.attempts} of {attempts}"
        if ok:
            outcome, delivery.state, delivery.sent_at, delivery.next_at = "sent", "sent", now, None
            delivery.last_error = ""
            note = f"{what} ({tried}): sent"
        elif delivery.attempts >= attempts:
            outcome, delivery.state, delivery.next_at = "failed", "failed", None
            delivery.last_error = what
            note = f"{what} ({tried}); given up"
        else:
            wait = backoff_s * 2 ** (delivery.attempts - 1)
            outcome, delivery.next_at, delivery.last_error = "retry", now + timedelta(
                seconds=wait), what
            note = f"{what} ({tried}); next try {wait:g} s"
        label = "county webhook" if due.channel == CHANNEL_COUNTY else "webhook"
        note = f"{label} {shown_url(due.url)} {note}"
        alert = s.get(Alert, delivery.alert_id)
        if alert is not None:
            s.add(AlertHistory(alert_id=alert.id, at=now, state=alert.state, level=alert.level,
                               by="hub", note=note))
    metrics.alert_deliveries.labels(channel=due.channel, outcome=outcome).inc()
    (log.info if ok else log.warning)("alert delivery %s: %s", due.id, note)
    return outcome


# --- the worker's threads --------------------------------------------------------------------

class Channels:
    """The warning publisher and the webhook sender of the process that owns MQTT."""

    def __init__(self, app: Flask, mqtt: HubMqtt, *, workers: int = WORKERS,
                 sweep_s: float = SWEEP_S):
        self.app, self.mqtt, self.sweep_s = app, mqtt, sweep_s
        alerts = app.config["SETTINGS"].alerts
        self.attempts, self.backoff_s = alerts.webhook_attempts, alerts.webhook_backoff_s
        self.timeout_s = alerts.webhook_timeout_s
        self._stop = threading.Event()
        self._wake_warnings = threading.Event()
        self._wake_deliveries = threading.Event()
        # Everything is published once connected: a restarted broker may have lost its
        # retained messages (a crash loses what came since its last autosave, NOTES.md).
        self._republish = threading.Event()
        self._republish.set()
        self._wake_warnings.set()
        self._wake_deliveries.set()
        self._lock = threading.Lock()
        self._in_flight: dict[int, str] = {}  # delivery id -> URL
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="alerts-webhook")
        self._threads = [
            threading.Thread(target=self._warnings_loop, name="alerts-warnings", daemon=True),
            threading.Thread(target=self._deliveries_loop, name="alerts-deliveries",
                             daemon=True)]

    def start(self) -> None:
        """Start both threads; every MQTT (re)connect republishes every village."""
        self.mqtt.on_connected(self._connected)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the threads; POSTs under way finish (each within alerts.webhook_timeout_s)."""
        self._stop.set()
        self.nudge()
        for thread in self._threads:
            thread.join(self.sweep_s + PUBLISH_TIMEOUT_S)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def nudge(self) -> None:
        """Something was committed: publish pending warnings and send due deliveries now."""
        self._wake_warnings.set()
        self._wake_deliveries.set()

    def _connected(self) -> None:
        # paho's network thread: only wake the publisher.
        self._republish.set()
        self._wake_warnings.set()

    def _warnings_loop(self) -> None:
        while not self._stop.is_set():
            self._wake_warnings.wait(self.sweep_s)
            self._wake_warnings.clear()
            if self._stop.is_set() or not self.mqtt.connected:
                continue
            everything = self._republish.is_set()
            self._republish.clear()
            done = False
            try:
                with self.app.app_context():
                    done = publish_warnings(self.mqtt, everything=everything)
            except Exception:
                log.exception("publishing the village warnings failed; trying again")
            if everything and not done:
                self._republish.set()

    def _deliveries_loop(self) -> None:
        while not self._stop.is_set():
            wait = self.sweep_s
            try:
                with self.app.app_context():
                    wait = self._send_due()
            except Exception:
                log.exception("picking the due alert deliveries failed; trying again")
            self._wake_deliveries.wait(wait)
            self._wake_deliveries.clear()

    def _send_due(self) -> float:
        """Hand every due delivery whose URL is free to the pool; seconds until the next is
        due (at most the sweep)."""
        now = utcnow()
        pending = Delivery.state == "pending"
        rows = db.session.execute(
            select(Delivery.id, Delivery.channel, Delivery.url, Delivery.body_format,
                   Delivery.body)
            .where(pending, or_(Delivery.next_at.is_(None), Delivery.next_at <= now))
            .order_by(Delivery.next_at, Delivery.id).limit(DUE_BATCH)).all()
        next_at = db.session.scalar(select(func.min(Delivery.next_at))
                                    .where(pending, Delivery.next_at > now))
        db.session.rollback()
        with self._lock:
            busy = set(self._in_flight.values())
            for row in rows:
                if row.id in self._in_flight or row.url in busy or self._stop.is_set():
                    continue
                busy.add(row.url)
                self._in_flight[row.id] = row.url
                self._pool.submit(self._deliver, _Due(*row))
        if next_at is None:
            return self.sweep_s
        return min(self.sweep_s, max(0.01, (next_at - utcnow()).total_seconds()))

    def _deliver(self, due: _Due) -> None:
        try:
            content_type = CAP_TYPE if due.body_format == "cap" else JSON_TYPE
            ok, what = post(due.url, due.body.encode("utf-8"), content_type, self.timeout_s,
                            due.id)
            with self.app.app_context():
                record_outcome(due, ok, what, attempts=self.attempts, backoff_s=self.backoff_s)
        except Exception:
            log.exception("alert delivery %s to %s failed", due.id, shown_url(due.url))
        finally:
            with self._lock:
                self._in_flight.pop(due.id, None)
            self._wake_deliveries.set()  # its URL is free again


EXTENSION = "alerts.channels"


def attach(app: Flask, mqtt: HubMqtt) -> Callable[[], None]:
    """Start the channels on the worker's MQTT client (dispatch.jobs.SUBSCRIBERS); returns their
    stop function."""
    channels = Channels(app, mqtt)
    app.extensions[EXTENSION] = channels
    channels.start()

    def stop() -> None:
        app.extensions.pop(EXTENSION, None)
        channels.stop()

    return stop


def nudge(app: Flask) -> None:
    """Wake this process's channels after a commit; nothing in a process without them (the
    worker's sweep catches up: the marks are durable)."""
    channels = app.extensions.get(EXTENSION)
    if channels is not None:
        channels.nudge()


# --- village broadcast terminals ---------------------------------------------------------------

def register_terminal(s: Session, village_code: str, *, actor: str, name: str = "",
                      mqtt_hash: Callable[[str], str]) -> tuple[Terminal, str]:
    """Register a terminal for a village (audited): returns it and its MQTT password (shown
    once). Its login is "T-{village}-{n}", the first n no login has."""
    village = s.scalar(select(Village).where(Village.code == village_code))
    if village is None:
        raise NotFound(_l("No village %(code)s: give the code of a village on the map.",
                          code=village_code), code="no_village")
    taken = {code.lower() for code in s.scalars(select(Terminal.code))}
    taken |= {code.lower() for code in s.scalars(select(Gateway.code))}
    n = 1
    while f"t-{village.code}-{n}".lower() in taken:
        n += 1
    code = check_username(f"T-{village.code}-{n}")
    password = secrets.token_urlsafe(18)
    terminal = Terminal(code=code, village_code=village.code,
                        mqtt_password_hash=mqtt_hash(password))
    s.add(terminal)
    s.flush()
    audit.record(s, actor=actor, action="terminal.create", entity_type="terminal",
                 entity_id=code, after={"village": village.code, "name": name})
    return terminal, password


def disable_terminal(s: Session, code: str, *, actor: str) -> bool:
    """Retire a terminal (audited): its login goes with the next broker files; False when it
    was already retired."""
    terminal = s.scalar(select(Terminal).where(func.lower(Terminal.code) == code.lower()))
    if terminal is None:
        raise NotFound(_l("No terminal %(code)s.", code=code), code="no_terminal")
    if not terminal.active:
        return False
    terminal.active = False
    audit.record(s, actor=actor, action="terminal.disable", entity_type="terminal",
                 entity_id=terminal.code, before={"active": True}, after={"active": False})
    return True


def terminals(s: Session) -> Sequence[Terminal]:
    """Every terminal, by village and code."""
    return s.scalars(select(Terminal).order_by(Terminal.village_code, Terminal.code)).all()


def terminal_accounts(_settings: Settings) -> list[BrokerAccount]:
    """The active terminals' MQTT logins, each reading its village's topic only (registered
    with dispatch.core.runtime.add_broker_accounts)."""
    accounts = []
    rows = db.session.execute(select(Terminal.code, Terminal.mqtt_password_hash,
                                     Terminal.village_code)
                              .where(Terminal.active).order_by(Terminal.code))
    for code, digest, village_code in rows:
        try:
            accounts.append(BrokerAccount(code, digest, "terminal",
                                          topics=(village_topic(village_code),)))
        except (ValueError, BrokerError):
            log.warning("terminal %s cannot be a broker login (bad name, hash or village code); "
                        "left out", code)
    return accounts
