"""Maps: villages, shelters, roads, hazard zones, projections and the live map page."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

# The largest request body of the map's endpoints: a village's boundary, or an import file of a
# township's villages with theirs (what the hub took before packages set their own limits).
MAX_BODY = 576 * 1024


def init_app(app: Flask) -> None:
    """Register the map's endpoints, page, API description and body limit."""
    from dispatch.core.body import raise_body_limit
    from dispatch.core.events import warning_changed
    from maps import api_schemas, views

    raise_body_limit(app, MAX_BODY)
    views.init_app(app)
    # Connected once per process (the signal is global; a second connect is a no-op).
    warning_changed.connect(views.on_warning_changed)
    api_schemas.init_app(app)  # bodies, query parameters and answers for /api/v1/openapi.json
