"""The members on the live map (issue #21 "Pages"): the layer's module, ./static/members_layer.js,
joins the map page through maps.views.register_map_extension (maps never imports this package:
DESIGN §2), with its words in the page's language. Its data is the members layer
(GET /api/v1/layers/members, ./views.py) and the `position` events (./live.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, url_for
from flask_babel import gettext as _

from dispatch.roster.pages import local_today, vocabulary
from maps.views import register_map_extension

bp = Blueprint("positions_pages", __name__, static_folder="static",
               static_url_path="/static/positions")


def map_words() -> dict[str, Any]:
    """The members layer's words and links (JSON for the map page)."""
    roster = vocabulary()
    return {
        "title": _("Team members"),
        "status": roster["status"],
        "statusOrder": roster["statusOrder"],
        "age": roster["age"],
        "expiry": roster["expiry"],
        "fade": _("Faded: no fix for over 30 minutes, fainter after 2 hours."),
        "fields": {"status": _("Status"), "squad": _("Squad"), "team": _("Team"),
                   "phone": _("Phone"), "skills": _("Skills"), "fix": _("Last fix"),
                   "battery": _("Battery"), "accuracy": _("Accuracy"),
                   "source": _("Reported by")},
        "sources": {"owntracks": "OwnTracks", "owntracks_http": "OwnTracks HTTP",
                    "osmand": "Traccar / OsmAnd", "tablet": _("Tablet")},
        "details": _("Member page"),
        "moved": _("Position update:"),
        "more": _("and %(n)s more", n="{n}"),
        "today": local_today(),
        "warnDays": current_app.config["SETTINGS"].roster.expiry_warn_days,
        "layer": url_for("maps.layer", name="members"),
        "memberPage": url_for("roster_pages.member_page", code="CODE"),
    }


def init_app(app: Flask) -> None:
    """Serve the layer's module and add it to the live map."""
    app.register_blueprint(bp)
    register_map_extension(app, "members", script=("positions_pages.static", "members_layer.js"),
                           words=map_words)
