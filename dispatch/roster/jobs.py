"""The rota's jobs (listed in dispatch/jobs.py): duty status at shift change, and the commander's
notices of coverage gaps and expiring certificates. Each takes `now` for tests; the scheduler
calls it without."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from dispatch.core.db import db, utcnow
from dispatch.core.realtime import notify
from dispatch.roster import rota_service

# The most notices one run sends (the rest follow on the next runs): a rota without rules met
# for two weeks must not flood the office page at once.
NOTICES_PER_RUN = 50


def change_shift(now: datetime | None = None) -> None:
    """Job (every minute): at a shift change, or when a swap or leave changed the current shift,
    set duty statuses (on_shift, off, leave; never `deployed`) and tell the office (`roster`)."""
    settings = current_app.config["SETTINGS"]
    with db.transaction() as s:
        event = rota_service.apply_duty(s, settings, now or utcnow())
    if event is not None:
        notify("roster", event, rooms=("office",))


def roster_notices(now: datetime | None = None) -> None:
    """Job (every 15 minutes): announce each new coverage gap of the coming coverage_days and
    each certificate expiring within expiry_warn_days to the office (`notice`), once."""
    settings = current_app.config["SETTINGS"]
    with db.transaction() as s:
        fresh = rota_service.announce(s, settings, now or utcnow(), NOTICES_PER_RUN)
    for notice in fresh:
        notify("notice", notice, rooms=("office",))
