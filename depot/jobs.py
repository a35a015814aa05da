"""The depot's jobs (listed in dispatch/jobs.py): overdue check-outs and expiring items told to
the office and the keepers once each. Each takes `now` for tests; the scheduler calls it without."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from depot import checkouts
from dispatch.core.db import db, utcnow
from dispatch.core.realtime import notify

# The most notices one run sends (the rest follow on the next runs): a depot back from a long
# outage must not flood the office page at once.
NOTICES_PER_RUN = 50
# The office (commander, dispatchers) and the keepers who act on them.
NOTICE_ROOMS = ("office", "depot")


def remind_overdue(now: datetime | None = None) -> None:
    """Job (hourly): each open check-out past its due time, once a day while it stays out
    (Checkout.reminded_at, checkouts.REMIND_EVERY), as a `notice` to the office."""
    settings = current_app.config["SETTINGS"]
    with db.transaction() as s:
        fresh = checkouts.overdue_notices(s, settings, now or utcnow(), NOTICES_PER_RUN)
    for notice in fresh:
        notify("notice", notice, rooms=NOTICE_ROOMS)


def watch_expiry(now: datetime | None = None) -> None:
    """Job (hourly): each item of an expiry-watched type (extinguishers, medical supplies)
    expiring within [depot] expiry_warn_days, or expired, once per expiry date, as a `notice`."""
    settings = current_app.config["SETTINGS"]
    with db.transaction() as s:
        fresh = checkouts.expiry_notices(s, settings, now or utcnow(), NOTICES_PER_RUN)
    for notice in fresh:
        notify("notice", notice, rooms=NOTICE_ROOMS)
