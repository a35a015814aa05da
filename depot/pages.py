"""The keepers' scan-first pages (issue #22 "Check-out and check-in"; DESIGN §7): check-out
(scan who, scan items, a kit or bulk stock, due time, confirm) and check-in (scan items, or pick
an open check-out of the member or team; ok, damaged or lost per line; confirm).

Server-rendered Jinja with small ES modules (./static/checkout.js, checkin.js, and the scan field
they share, scanfield.js: typing, a USB wedge scanner that types the code and Enter, or the
tablet's camera decoding a label's QR code in the browser with jsQR from npm). The pages read and
change data only through the JSON API (GET /api/v1/depot/scan, POST /api/v1/depot/checkouts and
/checkins), so the rules live in one place; their words reach the modules as a JSON block (the
CSP allows no inline script), and every value from the data becomes a DOM text node.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from depot import scan
from depot.choices import LABELS, WRITERS, ItemStatus
from depot.models import Site
from dispatch.core import auth, directory
from dispatch.core.db import db

bp = Blueprint("depot_pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/depot")

# A site picker lists at most this many (a township has one or two depots).
MAX_SITES = 200


def _settings():
    return current_app.config["SETTINGS"].depot


def reasons() -> dict[str, str]:
    """Why an item or a stock line cannot go out, in words (each of depot.rules.REASONS)."""
    return {
        "out": _("Already checked out"),
        "unserviceable": _("Unserviceable"),
        "repair": _("In repair"),
        "inspection_overdue": _("Inspection overdue"),
        "expired": _("Expired"),
        "lost": _("Lost"),
        "retired": _("Retired"),
        "insufficient_stock": _("Not enough in the depot"),
    }


def vocabulary() -> dict[str, Any]:
    """The words both pages share."""
    return {
        "status": {str(s): str(LABELS[s]) for s in ItemStatus},
        "reasons": reasons(),
        "reasonOn": _("%(reason)s (%(date)s)", reason="{reason}", date="{date}"),
        "kinds": {"member": _("Member"), "team": _("Team"), "incident": _("Incident"),
                  "item": _("Item"), "kit": _("Kit"), "stock": _("Bulk stock")},
        "scanning": _("Looking up %(code)s…", code="{code}"),
        "unreachable": _("The hub cannot be reached; nothing was changed. Try again."),
        "remove": _("Remove"),
        "removeLabel": _("Remove %(code)s from the list", code="{code}"),
        "twice": _("%(code)s is in the list already.", code="{code}"),
        "bin": _("Bin %(bin)s", bin="{bin}"),
        "due": _("due %(time)s", time="{time}"),
        "overdue": _("overdue"),
        "holderOf": _("%(kind)s %(code)s", kind="{kind}", code="{code}"),
        "checkoutNo": _("Check-out #%(id)s", id="{id}"),
        "change": _("Change"),
        "camera": {
            "open": _("Camera"),
            "close": _("Close camera"),
            "starting": _("Starting the camera…"),
            "aim": _("Hold the label's QR code in the frame."),
            "read": _("Read %(code)s", code="{code}"),
            "denied": _("The camera was not allowed. Allow it in the browser's site settings, "
                        "or type the code or use the scanner."),
            "insecure": _("The camera works only over https (or on this computer): type the "
                          "code or use the scanner."),
            "missing": _("This device has no camera: type the code or use the scanner."),
            "busy": _("The camera is in use by another app: close it, or type the code."),
            "failed": _("The camera could not start (%(why)s): type the code or use the "
                        "scanner.", why="{why}"),
            "noReader": _("The QR reader could not be loaded: type the code or use the "
                          "scanner."),
        },
    }


def _config(**extra: Any) -> dict[str, Any]:
    """What both pages' modules read: role, clock, sites, words and URLs."""
    zone = _settings().timezone
    sites = db.session.execute(select(Site.code, Site.name).order_by(Site.code)
                               .limit(MAX_SITES)).all()
    return {"role": auth.current_principal().role, "timezone": zone,
            "today": datetime.now(ZoneInfo(zone)).date().isoformat(),
            "defaultDueH": _settings().default_due_h,
            # Incidents are scanned only once a package keeps them (dispatch.core.directory).
            "incidents": "incident" in directory.kinds(),
            "sites": [{"code": code, "name": name} for code, name in sites],
            "words": vocabulary(),
            "urls": {"scan": url_for("depot_scan.resolve_scan"),
                     "checkouts": url_for("depot_checkouts.create_checkout"),
                     "checkins": url_for("depot_checkouts.create_checkin"),
                     "checkoutPage": url_for("depot_pages.checkout_page"),
                     "checkinPage": url_for("depot_pages.checkin_page"),
                     "reader": url_for("core.vendor", package="jsqr", filename="jsQR.js")},
            "maxScan": scan.MAX_SCAN, **extra}


@bp.get("/depot/checkout")
@auth.roles(*WRITERS)
def checkout_page():
    """Check-out: scan who (member or team), scan items, a kit or bulk stock, set the due time,
    confirm; what cannot go out says why, item by item."""
    return render_template("depot/checkout.html", config=_config())


@bp.get("/depot/checkin")
@auth.roles(*WRITERS)
def checkin_page():
    """Check-in: scan items (or a member or team, to pick from their open check-outs), ok,
    damaged or lost per line with a note, confirm; damaged items go to repair."""
    return render_template("depot/checkin.html", config=_config())


def init_app(app: Flask) -> None:
    """Register the pages."""
    app.register_blueprint(bp)
