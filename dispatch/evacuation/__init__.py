"""Evacuation plans: who moves from each village to which shelter, over which open roads
(DESIGN §5 "Evacuation (contract)", §6 "Evacuation").

Why here, in `dispatch/evacuation/`, downstream of alerts, and not in `maps/`: the plan's next
step assigns teams and kit to villages by skill, position and shift (DESIGN §6), which are the
roster's and the depot's, both downstream of maps; and the people a plan moves depend on *why*
a village is at its level (its own flash-flood alert moves its whole population, a hazard zone's
alert the zone's people: DESIGN "Alerts"), which only the alerts package knows. The pure parts
stay in maps, where the issue puts them: `maps.routing` (the road graph, shortest paths) and
`maps.solver` (the exact min-cost flow). The planner reacts to alerts, roads and shelters through
the kernel's signals (`warning_changed`, `feature_changed`) and a refresh job, never by being
called from upstream.

Files: `rules.py` (pure: demand by class, shelter availability, the diff), `service.py` (inputs,
computing, storing), `planner.py` (re-planning within seconds of a change), `views.py`,
`pages.py` (printable sheets), `jobs.py`, `settings.py`, `models.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dispatch.core.settings import add_check
from dispatch.evacuation.settings import check_settings

if TYPE_CHECKING:
    from flask import Flask

add_check(check_settings)


def init_app(app: Flask) -> None:
    """Register the plan's endpoints, sheets and the re-planning receivers."""
    import dispatch.evacuation.models  # noqa: F401  (its table joins the metadata)
    from dispatch.core.events import feature_changed, warning_changed
    from dispatch.evacuation import api_schemas, jobs, pages, views

    views.init_app(app)
    pages.init_app(app)

    api_schemas.init_app(app)  # bodies, query parameters and answers for the OpenAPI document
    # Connected once per process (the signals are global; a second connect is a no-op). They
    # act only where a planner runs (jobs.attach, in the process that owns MQTT).
    warning_changed.connect(jobs.on_warning_changed)
    feature_changed.connect(jobs.on_feature_changed)
