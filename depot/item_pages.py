"""Finding an item and reading its whole life (issue #22: a keeper or the office "always says
where an item is, who has it and whether it works"; "an item's page shows its whole life").

- `/depot/items`: one search box (code, serial, name or bin) and filters for site, category and
  status over `GET /api/v1/depot/items`; each result says what the item is, whether it works
  (in words; coloured only for a problem: out of service, in repair, lost, inspection overdue,
  expired, overdue back) and where it is: its bin, or who has it, since when and when it is
  due back. Filled by ./static/items.js.
- `/depot/items/<code>`: the item's header (status, condition, type, bin, home site, holder,
  inspection and expiry dates) and its history from `GET /api/v1/depot/items/<code>`, each
  entry a line in words at its local time, newest first; live on `depot` events naming the
  item. Filled by ./static/item.js.

Like the roster's pages (dispatch.roster.pages): server-rendered frames whose modules read the
JSON API only, the words reaching them as a JSON block (the CSP allows no inline script), every
value from the data a DOM text node. Whoever may read items may open them (depot.choices
READERS).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, render_template, url_for
from flask_babel import gettext as _
from werkzeug.routing import BuildError

from depot import service, views
from depot.choices import LABELS, READERS, Category, ItemStatus
from dispatch.core import auth
from dispatch.core.db import db

bp = Blueprint("depot_items", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/depot-items")

# Statuses that say the item does not work (coloured; the rest are plain words).
PROBLEM_STATUSES = (ItemStatus.REPAIR, ItemStatus.UNSERVICEABLE, ItemStatus.LOST)
# A page of results (a 10-inch tablet shows a screenful or two).
PAGE_SIZE = 50


def vocabulary() -> dict[str, Any]:
    """The words both pages' modules use: statuses, categories, holders, dates, history."""
    return {
        "status": {str(s): {"label": str(LABELS[s]), "problem": s in PROBLEM_STATUSES}
                   for s in ItemStatus},
        "statusOrder": [str(s) for s in ItemStatus],
        "categories": {str(c): str(LABELS[c]) for c in Category},
        "categoryOrder": [str(c) for c in Category],
        "kinds": {"member": _("Member %(code)s", code="{code}"),
                  "team": _("Team %(code)s", code="{code}"),
                  "incident": _("Incident %(code)s", code="{code}")},
        "named": {"member": _("Member %(name)s (%(code)s)", name="{name}", code="{code}"),
                  "team": _("Team %(name)s (%(code)s)", name="{name}", code="{code}")},
        "flags": {
            "inspection_overdue": _("Inspection overdue (due %(date)s)", date="{date}"),
            "expired": _("Expired %(date)s", date="{date}"),
            "overdue": _("Overdue back (due %(time)s)", time="{time}"),
        },
        "where": {
            "home": _("Home site %(site)s", site="{site}"),
            "nowhere": _("No bin"),
            "held": _("With %(holder)s", holder="{holder}"),
            "since": _("since %(time)s", time="{time}"),
            "due": _("due back %(time)s", time="{time}"),
            "noDue": _("no due time"),
            "none": _("none"),
        },
        "history": {
            "checkout": _("Checked out to %(holder)s", holder="{holder}"),
            "due": _("due back %(time)s", time="{time}"),
            "kit": _("in kit %(kit)s", kit="{kit}"),
            "checkin": _("Returned by %(holder)s: %(condition)s", holder="{holder}",
                         condition="{condition}"),
            "conditions": {"ok": _("in good order"), "damaged": _("damaged"),
                           "lost": _("lost")},
            "inspection": _("Inspected: %(result)s", result="{result}"),
            "results": {"operational": _("operational"), "monitor": _("to be watched"),
                        "repair_required": _("repair required"),
                        "unserviceable": _("unserviceable"), "lost": _("lost")},
            "checks": {"pass": _("passed"), "fail": _("failed"), "skip": _("not checked")},
            "repair_opened": _("Repair opened: %(reason)s", reason="{reason}"),
            "repair_closed": _("Repair closed: %(outcome)s", outcome="{outcome}"),
            "outcomes": {"repaired": _("repaired"), "written_off": _("written off")},
            "created": _("Registered"),
            "expiryNotice": _("Expiry notice sent to the office"),
            "updated": _("Edited: %(fields)s", fields="{fields}"),
            "audit": _("Recorded: %(action)s", action="{action}"),
            "fields": {"serial": _("Serial"), "condition": _("Condition"), "bin": _("Bin"),
                       "home_site": _("Home site"), "purchased": _("Purchased"),
                       "expires": _("Expires"), "inspection_due": _("Inspection due"),
                       "status": _("Status")},
            "by": _("by %(who)s", who="{who}"),
            "note": _("Note: %(note)s", note="{note}"),
            "count": _("%(n)s entries", n="{n}"),
            "more": _("The newest %(n)s entries.", n="{n}"),
        },
        "count": _("%(n)s items", n="{n}"),
        "range": _("%(first)s–%(last)s of %(n)s items", first="{first}", last="{last}",
                   n="{n}"),
        "failed": _("Could not load; trying again:"),
        "gone": _("There is no item with this code."),
    }


def _optional_url(endpoint: str, **values: Any) -> str | None:
    """The URL of another package's endpoint, None when that package is not in the app (the
    depot names holders by code; the roster, where it is, gives their names)."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def _config(**extra: Any) -> dict[str, Any]:
    """What both pages' modules read: today and the clock of the depot, the words, the URLs."""
    return {"today": views.today().isoformat(),
            "timezone": current_app.config["SETTINGS"].depot.timezone,
            "pageSize": PAGE_SIZE, "words": vocabulary(),
            "urls": {"items": url_for("depot.list_items"),
                     "item": url_for("depot.get_item", code="CODE"),
                     "itemPage": url_for("depot_items.item_page", code="CODE"),
                     "listPage": url_for("depot_items.items_page"),
                     "sites": url_for("depot.list_sites"),
                     "member": _optional_url("roster.get_member", code="CODE"),
                     "teams": _optional_url("roster.list_teams")}, **extra}


@bp.get("/depot/items")
@auth.roles(*READERS)
def items_page():
    """Find an item: search, filters, where each one is and whether it works."""
    return render_template("depot/items.html", config=_config())


@bp.get("/depot/items/<code>")
@auth.roles(*READERS)
def item_page(code: str):
    """One item: where it is, who has it, whether it works, and its whole life (404 for an
    unknown code, any case)."""
    s = db.session
    item = service.describe_item(s, service.find_item(s, code))
    return render_template("depot/item.html", item=item, config=_config(code=item["code"]))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
