"""The roster's office pages (DESIGN §7, issue #21 "Pages"): the roster list, a member's page,
the rota calendar with its coverage, and the team board; and the commander's notices panel on
the office home page (its module lives here, dispatch/roster/static/notices.js).

Pages are server-rendered Jinja with small ES modules, usable on a 10-inch tablet either way
round. They read and change data only through the JSON API (dispatch.roster.views,
rota_views, dispatch.positions.views), so the API is the one place rules live; the page's
words reach its module as a JSON block (the CSP allows no inline script), and every value from
the data becomes a DOM text node, never HTML.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, render_template, url_for
from flask_babel import gettext as _

from dispatch.core import auth
from dispatch.core.choices import EDITORS, PERSON_ROLES, Role
from dispatch.core.db import db
from dispatch.roster import service
from dispatch.roster.choices import COLOURS, LABELS, DutyStatus, Employment, Post, SquadRole

bp = Blueprint("roster_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/roster")


def _settings():
    return current_app.config["SETTINGS"].roster


def local_today() -> str:
    """Today in the roster's time zone (certificates expire by the local calendar)."""
    return datetime.now(ZoneInfo(_settings().timezone)).date().isoformat()


def vocabulary() -> dict[str, Any]:
    """The roster's words every page shares: statuses with their colours, posts, employment,
    the six uses, and how a certificate's expiry and a fix's age are written."""
    return {
        "status": {str(s): {"label": str(LABELS[s]), "colour": COLOURS[s]} for s in DutyStatus},
        # The statuses in duty order (JSON objects reach the page with their keys sorted).
        "statusOrder": [str(s) for s in DutyStatus],
        "posts": {str(p): str(LABELS[p]) for p in Post},
        "employment": {str(e): str(LABELS[e]) for e in Employment},
        "uses": {str(r): str(LABELS[r]) for r in SquadRole},
        "expiry": {
            "expired": _("expired %(date)s", date="{date}"),
            "soon": _("expires %(date)s", date="{date}"),
            "valid": _("valid until %(date)s", date="{date}"),
            "none": _("no certificate needed"),
        },
        "age": {
            "now": _("just now"),
            "seconds": _("%(n)s s ago", n="{n}"),
            "minutes": _("%(n)s min ago", n="{n}"),
            "hours": _("%(n)s h ago", n="{n}"),
            "days": _("%(n)s days ago", n="{n}"),
            "never": _("no fix yet"),
        },
        "level": _("Level %(n)s", n="{n}"),
        "count": _("%(n)s members", n="{n}"),
        "squad": _("Squad %(squad)s", squad="{squad}"),
        "why": {"leave": _("on leave"), "swap_out": _("swapped out"),
                "swap_in": _("serves by a swap")},
        "failed": _("Could not load; trying again:"),
        "loading": _("Loading…"),
    }


def _config(**extra: Any) -> dict[str, Any]:
    """What every roster page's module reads: role, today, the rota's time zone, words."""
    principal = auth.current_principal()
    return {"role": principal.role, "canEdit": principal.role in EDITORS,
            "canApprove": principal.role == Role.COMMANDER, "today": local_today(),
            "timezone": _settings().timezone, "warnDays": _settings().expiry_warn_days,
            "words": vocabulary(),
            "urls": {"members": url_for("roster.list_members"),
                     "member": url_for("roster.get_member", code="CODE"),
                     "memberPage": url_for("roster_pages.member_page", code="CODE"),
                     "skills": url_for("roster.list_skills"),
                     "teams": url_for("roster.list_teams"),
                     "rota": url_for("rota.get_rota"),
                     "layer": url_for("maps.layer", name="members"),
                     "villages": url_for("maps.layer", name="villages")}, **extra}


@bp.get("/roster")
@auth.roles(*PERSON_ROLES)
def roster_page():
    """The roster: every member with skills, certificates and status; search and filters."""
    return render_template("roster/roster.html", config=_config())


@bp.get("/roster/members/<code>")
@auth.roles(*PERSON_ROLES)
def member_page(code: str):
    """One member: skills and certificates, their coming shifts, last position and the track of
    the last 24 hours."""
    s = db.session
    member = service.describe(s, service.find(s, code))
    config = _config(code=member["code"])
    config["urls"]["track"] = url_for("positions.track")
    return render_template("roster/member.html", member=member, config=config)


@bp.get("/roster/rota")
@auth.roles(*PERSON_ROLES)
def rota_page():
    """The rota of the coming days: each shift's squad and cover per rule, gaps in red with who
    could fill them, leave and swaps; editors record leave and ask for swaps, the commander
    decides pending swaps."""
    config = _config(days=_settings().coverage_days)
    config["urls"].update(coverage=url_for("rota.get_coverage"),
                          rules=url_for("rota.get_rules"),
                          swaps=url_for("rota.list_swaps"),
                          approve=url_for("rota.approve_swap", swap_id=0),
                          reject=url_for("rota.reject_swap", swap_id=0),
                          leave=url_for("rota.list_leave"))
    return render_template("roster/rota.html", config=config)


@bp.get("/roster/board")
@auth.roles(*PERSON_ROLES)
def board_page():
    """The team board: who is on shift now, their status, last fix and its age, battery; live."""
    return render_template("roster/board.html", config=_config())


def notice_words() -> dict[str, Any]:
    """The office home page's notices panel (dispatch/templates/home.html, ./static/notices.js)."""
    return {"gap": _("Coverage gap"), "expiry": _("Certificate"),
            "none": _("No coverage gaps or expiring certificates."),
            "failed": _("Could not load the notices; trying again."),
            "count": _("%(n)s notices", n="{n}"),
            "fill": _("Could fill it: %(names)s", names="{names}"),
            "rota": url_for("roster_pages.rota_page"),
            "memberPage": url_for("roster_pages.member_page", code="CODE"),
            "url": url_for("rota.list_notices")}


def init_app(app: Flask) -> None:
    """The pages, and the notices panel's words for the office home page."""
    app.register_blueprint(bp)
    app.jinja_env.globals["roster_notice_words"] = notice_words
