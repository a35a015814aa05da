"""The kernel's own periodic jobs: the worker's heartbeat, forgetting old sign-in records, and
anchoring the audit chain (listed with every package's in dispatch.jobs)."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from dispatch.core import audit
from dispatch.core.db import db, utcnow
from dispatch.core.models import ApiToken, LoginFailure
from dispatch.core.runtime import heartbeat

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
