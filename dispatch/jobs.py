"""Every periodic job of the hub, in one place (DESIGN §3). Later packages add theirs here."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from dispatch.core.db import db, utcnow
from dispatch.core.models import ApiToken, LoginFailure
from dispatch.core.runtime import Job, heartbeat
from telemetry import bridge


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


# What consumes the worker's MQTT connection (each returns its stop function).
SUBSCRIBERS = [bridge.attach]

SCHEDULE = [
    Job("heartbeat", beat, timedelta(seconds=10)),
    Job("prune_sign_in_records", prune_sign_in_records, timedelta(minutes=30)),
]
