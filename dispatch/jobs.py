"""Every periodic job of the hub, in one place (DESIGN §3). Later packages add theirs here."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from dispatch.core import audit
from dispatch.core.db import db, utcnow
from dispatch.core.models import ApiToken, LoginFailure
from dispatch.core.realtime import notify
from dispatch.core.runtime import Job, heartbeat
from telemetry import bridge
from telemetry import jobs as telemetry_jobs
from telemetry.state import state_of

log = logging.getLogger(__name__)


def beat() -> None:
    """Tell other processes this worker and its MQTT link are alive."""
    heartbeat(current_app._get_current_object())


def prune_sign_in_records() -> None:
    """Forget old sign-in failures and expired user tokens."""
    settings = current_app.config["SETTINGS"]
    now = utcnow()
    with db.transaction() as s:
        s.execute(delete(LoginFailure).where(
            LoginFailure.at < now - timedelta(seconds=settings.web.login_window_s)))
        s.execute(delete(ApiToken).where(ApiToken.expires_at < now - timedelta(days=1)))


def roll_up_hours() -> None:
    """Hourly roll-ups of the hours whose readings changed (telemetry.jobs.roll_up), every mark
    once per run, in short transactions (ingest waits while one holds the write lock)."""
    after, chunk = None, telemetry_jobs.ROLL_UP_CHUNK
    while True:
        with db.transaction() as s:
            done, _settled, after = telemetry_jobs.roll_up(s, now=utcnow(), limit=chunk,
                                                           after=after)
        if done < chunk:
            return


def prune_raw_readings() -> None:
    """Raw readings past telemetry.raw_retention_days go; hourly roll-ups stay for ever."""
    settings = current_app.config["SETTINGS"]
    roll_up_hours()
    while True:
        with db.transaction() as s:
            removed = telemetry_jobs.prune_raw(
                s, now=utcnow(), retention_days=settings.telemetry.raw_retention_days)
        if removed < 20000:
            return


def prune_dead_letters() -> None:
    """Resolved dead letters past ingest.dead_letter_retention_days go, in short transactions."""
    settings = current_app.config["SETTINGS"]
    while True:
        with db.transaction() as s:
            removed = telemetry_jobs.prune_dead_letters(
                s, now=utcnow(), retention_days=settings.ingest.dead_letter_retention_days)
        if removed < 1000:
            return


def mark_silent() -> None:
    """Sensors and gateways silent too long become missing / offline (`sensor_status`)."""
    settings = current_app.config["SETTINGS"]
    with db.transaction() as s:
        events = telemetry_jobs.mark_silent(
            s, now=utcnow(), gateway_silence_s=settings.telemetry.gateway_silence_s)
    state_of(current_app).forget_sensor_rows(e["sensor"] for e in events if "sensor" in e)
    for event in events:
        notify("sensor_status", event)


def audit_checkpoint() -> None:
    """Anchor the audit chain outside the database: append its head to the data directory's
    checkpoint file and send it to the county (audit.anchor_url) until the county has it."""
    settings = current_app.config["SETTINGS"]
    with db.transaction() as s:
        try:
            checkpoint, written = audit.take_checkpoint(s, settings.data_dir, utcnow())
        except audit.ChainBroken as exc:
            log.error("audit chain: no checkpoint taken, the chain no longer extends the last "
                      "one (%s): run `rescuehub audit verify`", exc)
            return
    if written:
        log.info("audit checkpoint: entry %s", checkpoint.seq)
    url = settings.audit.anchor_url
    sent = current_app.extensions.setdefault("rescuehub.audit_anchored", {})
    if checkpoint is None or not url or sent.get(url) == checkpoint.seq:
        return
    if audit.send_to_anchor(url, checkpoint):
        sent[url] = checkpoint.seq


# What consumes the worker's MQTT connection (each returns its stop function).
SUBSCRIBERS = [bridge.attach]

SCHEDULE = [
    Job("heartbeat", beat, timedelta(seconds=10)),
    Job("prune_sign_in_records", prune_sign_in_records, timedelta(minutes=30)),
    Job("roll_up_hours", roll_up_hours, timedelta(minutes=1), own_process=True),
    Job("mark_silent", mark_silent, timedelta(minutes=1)),
    Job("prune_raw_readings", prune_raw_readings, timedelta(hours=1), own_process=True),
    Job("prune_dead_letters", prune_dead_letters, timedelta(hours=1), own_process=True),
    # Its own process: the first checkpoint of a hub hashes the whole chain.
    Job("audit_checkpoint", audit_checkpoint, audit.CHECKPOINT_EVERY, own_process=True),
]
