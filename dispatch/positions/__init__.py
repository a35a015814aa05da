"""Where the team is (DESIGN §5 "Roster and positions (contract)"): the phones members already
carry (OwnTracks over MQTT or HTTP, Traccar Client / OsmAnd over HTTP) and the tablet's own fix
over Socket.IO become one track per member, a marker on the live map and geofence events at
villages and shelters.

Files: `models.py`, `fixes.py` (pure: decoding each source into one fix, units normalised,
bad fixes named), `devices.py` (registering phones, their broker logins, finding the device
behind a message), `intake.py` (storing fixes, moving markers forward only), `live.py` (the
`position` event), `geofence.py` (pure: fences with hysteresis), `views.py` (HTTP intake, the
tablet's own fix, tracks, the members layer), `api_schemas.py`, `metrics.py`, `jobs.py` (the
MQTT subscription, track retention), `settings.py`.

Downstream of the roster (a device belongs to a member) and of maps (village and shelter fences).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dispatch.core.settings import add_check
from dispatch.positions.settings import check_settings

if TYPE_CHECKING:
    from flask import Flask

add_check(check_settings)


def init_app(app: Flask) -> None:
    """Register the positions' tables, endpoints, the members layer, the tablet's `position`
    event, the metrics and the phones' MQTT logins."""
    import dispatch.positions.metrics  # noqa: F401  (its counters join the process's registry)
    import dispatch.positions.models  # noqa: F401  (its tables join the metadata)
    from dispatch.core.runtime import add_broker_accounts
    from dispatch.positions import (
        api_schemas,
        devices,
        geofence_views,
        letter_words,
        pages,
        views,
    )

    geofence_views.init_app(app)  # GET /api/v1/geofence-events
    views.init_app(app)  # OwnTracks HTTP, OsmAnd, tracks, the members layer, the tablet's fix
    api_schemas.init_app(app)  # bodies, query parameters and answers for the OpenAPI document
    # The phones' MQTT logins join the managed broker's files.
    add_broker_accounts(devices.device_accounts)
    pages.init_app(app)  # the members layer of the live map (its module and words)
    letter_words.init_app(app)  # its dead letters' details in words on the dead-letter page
