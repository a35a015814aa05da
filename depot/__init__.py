"""Depot: the equipment catalogue, serialized items and bulk stock, bins, check-out and check-in,
inspections and repairs, readiness (DESIGN §2, §5 "Depot (contract)"). Its modules follow
STYLE.md "A domain package's room": `models.py`; pure rules (availability, inspection and expiry
dates) in `rules.py`; `service.py`, `views.py`, `pages.py`, `jobs.py`, `settings.py`; `live.py`
(the `depot` event), `layer.py` (readiness per site and category, the depots map layer) and
`panel.py` (the office's readiness panel and the layer's map module).

Upstream of the dispatch domain (DESIGN §2: `depot ← dispatch (domain)`): a check-out names its
member, team or incident by code, checked through the kernel's code directory that the roster
fills, never by importing the roster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from depot.settings import check_settings
from dispatch.core.settings import add_check

if TYPE_CHECKING:
    from flask import Flask

add_check(check_settings)


def init_app(app: Flask) -> None:
    """Register the depot's tables, endpoints and pages."""
    import depot.models  # noqa: F401  (its tables join the metadata)
    from depot import api_schemas, checkout_views, item_pages, pages, panel, scan_views, views

    views.init_app(app)  # places, catalogue, items, stock, kits
    api_schemas.init_app(app)
    checkout_views.init_app(app)  # check-out/in, inspections, repairs, readiness
    # The readiness panel's and the depots layer's modules and words. The layer itself
    # (depot.layer) joins the map in dispatch.views: the depot may not import maps (DESIGN §2).
    panel.init_app(app)
    item_pages.init_app(app)  # find an item, an item's page (issue #22 "History")
    scan_views.init_app(app)  # what a scanned code names (depot.scan)
    pages.init_app(app)  # the keepers' scan-first check-out and check-in pages
