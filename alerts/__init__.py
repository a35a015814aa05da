"""Alerts: warning rules, the alert lifecycle, CAP 1.2, notification channels and escalation
(DESIGN §2, §5 "Alerts"). Its modules follow STYLE.md "A domain package's room":
`rules.py` (pure decisions), `lifecycle.py` (pure state machine), `cap.py` (pure CAP 1.2),
`thresholds.py` (pure validation), `service.py` (transitions in the caller's transaction),
`evaluate.py` (feeding the rules from telemetry's memory), `channels.py` (Socket.IO, the retained
village topics, webhooks), `views.py`, `pages.py`, `jobs.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts.settings import check_settings
from dispatch.core.settings import add_check

if TYPE_CHECKING:
    from flask import Flask

add_check(check_settings)


def init_app(app: Flask) -> None:
    """Register alerts' models, endpoints, pages and signal receivers."""
    import alerts.metrics  # noqa: F401  (its counters join the process's registry)
    import alerts.models  # noqa: F401  (its tables join the metadata)
    from alerts import api_schemas, channels, hazard_pages, jobs, pages, views
    from dispatch.core.events import readings_stored
    from dispatch.core.runtime import add_broker_accounts

    views.init_app(app)
    pages.init_app(app)  # alert history, one alert, threshold editor; the alert vocabulary
    hazard_pages.init_app(app)  # the hazard zone's page and its chart data
    api_schemas.init_app(app)  # bodies, query parameters and answers for the OpenAPI document
    readings_stored.connect(jobs.on_readings_stored)
    # The village terminals' MQTT logins join the managed broker's files.
    add_broker_accounts(channels.terminal_accounts)
