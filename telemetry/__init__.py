"""Telemetry: the MQTT bridge, sensor registry, reading ingest, quality control, rolling sums."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dispatch.core.settings import add_check
from telemetry.settings import check_settings

if TYPE_CHECKING:
    from flask import Flask

add_check(check_settings)

# Room around an HTTP ingest body of ingest.max_payload_bytes (headers of a multipart upload).
BODY_ENVELOPE = 65536


def init_app(app: Flask) -> None:
    """Register telemetry's endpoints, pages, sensors layer, metrics and body limit."""
    import telemetry.metrics  # noqa: F401  (its counters join the process's registry)
    from dispatch.core.body import raise_body_limit
    from telemetry import api_schemas, pages, views

    raise_body_limit(app, app.config["SETTINGS"].ingest.max_payload_bytes + BODY_ENVELOPE)
    views.init_app(app)
    pages.init_app(app)
    api_schemas.init_app(app)  # bodies, query parameters and answers for /api/v1/openapi.json
