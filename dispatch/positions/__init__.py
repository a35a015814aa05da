"""Where the team is (DESIGN §5 "Roster and positions (contract)"): the phones members already
carry (OwnTracks over MQTT or HTTP, Traccar Client / OsmAnd over HTTP) and the tablet's own fix
over Socket.IO become one track per member, a marker on the live map and geofence events at
villages and shelters.

Files: `models.py`, `fixes.py` (pure: decoding each source into one fix, units normalised,
bad fixes named), `intake.py` (storing fixes, moving markers forward only, `position` events),
`geofence.py` (pure: fences with hysteresis), `views.py` (HTTP intake, tracks, the members
layer, geofence events), `jobs.py` (the MQTT subscription, track retention), `settings.py`.

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
    """Register the positions' tables, endpoints and the members layer."""
    import dispatch.positions.models  # noqa: F401  (its tables join the metadata)
    from dispatch.positions import geofence_views

    geofence_views.init_app(app)  # GET /api/v1/geofence-events
    from dispatch.positions import pages

    pages.init_app(app)  # the members layer of the live map (its module and words)
