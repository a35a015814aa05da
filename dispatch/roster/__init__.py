"""The composite rescue team (DESIGN §1, §5 "Roster and positions (contract)"): members with
several skills and certificates, teams and squads, a 24-hour rota that guarantees cover.

Files: `models.py`, `rota.py` (pure: shifts from the template, leave and swaps applied, coverage
with certificates valid at each shift's end, who could fill a gap), `service.py` (members,
skills, teams, CSV import), `views.py` (members, skills, teams), `rota_views.py` (template,
rules, shifts, coverage, swaps, leave), `pages.py`, `jobs.py` (duty status at shift change,
gap and expiry notices), `settings.py`.

Downstream of the kernel and maps only; positions (dispatch.positions) and the depot read members
and teams by code from here, never the reverse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dispatch.core.settings import add_check
from dispatch.roster.settings import check_settings

if TYPE_CHECKING:
    from flask import Flask

add_check(check_settings)


def init_app(app: Flask) -> None:
    """Register the roster's tables, endpoints and pages."""
    import dispatch.roster.models  # noqa: F401  (its tables join the metadata)
    from dispatch.roster import api_schemas, directory, pages, rota_views, views

    views.init_app(app)
    api_schemas.init_app(app)  # bodies, query parameters and answers for the OpenAPI document
    rota_views.init_app(app)  # the rota's endpoints and their OpenAPI declarations
    pages.init_app(app)  # the roster, member, rota and team-board pages; the notices panel
    directory.register()  # members and teams by code, for the depot (dispatch.core.directory)
