"""What the office sees of the depot (issue #22 "Readiness"): the readiness panel on the office
home page (dispatch/templates/home.html #readiness, filled by ./static/readiness.js from
`GET /api/v1/depot/readiness?by=site`, every site in one answer) and the depots layer of the
live map (./static/depots_layer.js over `GET /api/v1/layers/depots`, depot.layer). Both refresh
on `depot` events (depot.live).

This module serves their scripts and gives each its words in the page's language as JSON (the
CSP allows no inline script); every name from the data becomes a DOM text node, never HTML.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from depot.choices import COLOURS, LABELS, Category
from depot.layer import CATEGORY_ORDER
from depot.models import Site
from dispatch.core.db import db

bp = Blueprint("depot_panel", __name__, static_folder="static",
               static_url_path="/static/depot-panel")

# The panel lists at most this many sites (a prefecture has one or two per township).
MAX_SITES = 500


def _common() -> dict[str, Any]:
    """The words the panel and the popup share."""
    return {
        "categories": {str(c): {"label": str(LABELS[Category(c)]),
                                "colour": COLOURS[Category(c)]} for c in CATEGORY_ORDER},
        "order": list(CATEGORY_ORDER),
        "columns": {"category": _("Category"), "serviceable": _("Ready now"),
                    "out": _("Out"), "repair": _("Repair / unserviceable"),
                    "inspection_overdue": _("Inspection overdue"), "expired": _("Expired"),
                    "below_min": _("Below minimum")},
        "problems": {"none_ready": _("None can go out"),
                     "inspection_overdue": _("Inspection overdue"), "expired": _("Expired"),
                     "below_min": _("Stock below minimum")},
        "ok": _("Ready"),
        "problemCount": _("%(n)s categories need attention", n="{n}"),
        "noProblems": _("Nothing needs attention"),
        "readiness": url_for("depot_checkouts.readiness"),
    }


def panel_words() -> dict[str, Any]:
    """The home page's readiness panel: its words, the readiness URL and the sites (by code,
    shown at once; a site added later joins with the next answer)."""
    sites = db.session.execute(select(Site.code, Site.name).order_by(Site.code)
                               .limit(MAX_SITES)).all()
    return {
        **_common(),
        "sites": [{"code": code, "name": name} for code, name in sites],
        "all": _("All categories"),
        "summary": _("%(sites)s sites · %(problems)s need attention", sites="{sites}",
                     problems="{problems}"),
        "boats": _("Boats ready now: %(n)s", n="{n}"),
        "boatsAt": _("%(n)s at %(site)s", site="{site}", n="{n}"),
        "boatsMore": _("%(n)s more depots", n="{n}"),
        "boatsNone": _("No boat can go out now."),
        "boatsUnknown": _("The depots keep no boats."),
        "boatsAway": _("%(out)s out, %(repair)s in repair", out="{out}", repair="{repair}"),
        "empty": _("This site keeps nothing of this category."),
        "nothing": _("Keeps nothing yet"),
        "emptySite": _("This depot keeps nothing yet."),
        "failed": _("Could not load the depot's readiness; trying again."),
        "updated": _("Updated %(time)s", time="{time}"),
        "stockOf": _("%(qty)s %(unit)s", qty="{qty}", unit="{unit}"),
    }


def map_words() -> dict[str, Any]:
    """The depots layer of the live map: its words and its layer URL."""
    return {
        **_common(),
        "title": _("Depots"),
        "note": _("Red: something needs attention (none ready, inspection overdue, expired "
                  "or stock below minimum)."),
        "legendOk": _("Depot, ready"),
        "legendProblem": _("Depot, needs attention"),
        "popupTitle": _("Readiness by category"),
        "nothing": _("This depot keeps nothing yet."),
        "moved": _("Depot update:"),
        "layer": url_for("maps.layer", name="depots"),
    }


def init_app(app: Flask) -> None:
    """Serve the panel's and the layer's modules; the home page reads the panel's words."""
    app.register_blueprint(bp)
    app.jinja_env.globals["depot_panel_words"] = panel_words
