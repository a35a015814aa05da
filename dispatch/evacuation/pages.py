"""Printable per-village evacuation sheets and the plan words pages embed (DESIGN §5
"Evacuation (contract)": `GET /api/v1/evacuation/plans/{version}/sheets`).

A sheet is one A4 page per village with people to move: who (by class, the vulnerable first),
to which shelters, by which roads (consecutive segments of one road class make one step, with
their length, time, bridges and fords), how long, whom to call, and who has no place and why.

Why Chinese and English on the same sheet, whatever the reader's language: a sheet is printed in
the office and handed on (to a village head, a county team, volunteers from elsewhere), so it
cannot depend on the language of whoever printed it. Labels carry both; names both (Chinese and
pinyin). The words come from the catalog like every other string, read in each language with
`force_locale`.

`plan_vocabulary()` is the plan's words in the page's language for the map's plan panel
(maps/static/plan_layer.js), embedded as JSON like the alert vocabulary: the map belongs to a
package below this one, which never imports it (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.choices import PERSON_ROLES
from dispatch.core.db import db
from dispatch.core.errors import NotFound
from dispatch.evacuation.models import EvacuationPlan
from maps.choices import LABELS, RoadClass
from maps.models import RoadSegment

bp = Blueprint("evacuation_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/evacuation")

SHEETS_RULE = "/api/v1/evacuation/plans/<int:version>/sheets"
LANGUAGES = ("zh_Hans_CN", "en")
# Beyond these many lines a sheet is set smaller (sheets.css .compact, .tight) to stay on one A4
# page. Measured in Chromium's print layout (190 mm wide): a step line takes 23 px roomy, 22
# compact, 15 tight, a shelter's head 87, 67 and 63 px, of 1,047 px; `tight` holds about 46
# lines, and a sheet beyond that runs on to a second page rather than hide anything.
COMPACT_LINES = 26
TIGHT_LINES = 32
# Codes per IN (...) query: far below SQLite's and PostgreSQL's bind-parameter limits.
CHUNK = 500

# The sheet's labels, each printed in both languages.
SHEET_WORDS = {
    "title": _l("Evacuation sheet"),
    "drill": _l("Drill"),
    "drill_note": _l("This is a drill, not a real evacuation order."),
    "plan": _l("Plan version"),
    "made": _l("Made at"),
    "trigger": _l("Trigger"),
    "page": _l("Page"),
    "level": _l("Warning level"),
    "village_contact": _l("Village contact"),
    "people_to_move": _l("People to move"),
    "priority": _l("Priority"),
    "vulnerable": _l("Vulnerable people"),
    "people": _l("People"),
    "total": _l("Total"),
    "placed": _l("Placed"),
    "not_placed": _l("Not placed"),
    "shelters": _l("Shelters and routes"),
    "shelter_contact": _l("Shelter contact"),
    "travel": _l("Travel time"),
    "minutes": _l("min"),
    "route": _l("Route, road by road"),
    "step": _l("Step"),
    "road": _l("Road"),
    "segments": _l("Segment codes"),
    "length": _l("Length (km)"),
    "time": _l("Time (min)"),
    "crossings": _l("Bridges and fords"),
    "bridges": _l("Bridges"),
    "fords": _l("Fords"),
    "walk_out": _l("Walk from the village to the road"),
    "walk_in": _l("Walk from the road to the shelter"),
    "closed_now": _l("Closed since this plan was made: check before leaving"),
    "unknown_road": _l("Road no longer in the network"),
    "no_contact": _l("none recorded"),
    "unplaced": _l("People without a place"),
    "nobody": _l("Nobody is to move in this plan."),
}

# Priority classes of the contract, the vulnerable first within each level.
CLASS_LABELS = (
    _l("Vulnerable people, evacuate now"),
    _l("Everyone else, evacuate now"),
    _l("Vulnerable people, prepare to evacuate"),
    _l("Everyone else, prepare to evacuate"),
)
LEVEL_LABELS = {"none": _l("No warning"), "prepare": _l("Prepare to evacuate"),
                "evacuate": _l("Evacuate now")}
REASONS = {
    "no_route": _l("No usable shelter can be reached within the travel limit"),
    "no_capacity": _l("No place left in the shelters within reach"),
}
TRIGGERS = {"alert": _l("A warning changed"), "road": _l("A road opened or closed"),
            "shelter": _l("A shelter changed"), "manual": _l("Request")}


@dataclass(frozen=True)
class Both:
    """One text in Chinese and in English."""

    zh: str
    en: str


def both(message: Any) -> Both:
    """A lazy string read in Chinese and in English."""
    texts = []
    for locale in LANGUAGES:
        with force_locale(locale):
            texts.append(str(message))
    return Both(*texts)


@dataclass(frozen=True)
class Road:
    """A road segment as the road table holds it now."""

    road_class: str
    length_m: float
    speed_kmh: float
    structure: str
    is_open: bool


@dataclass
class Step:
    """Consecutive segments of one road class on a route."""

    road_class: str  # "" for segments no longer in the network
    codes: list[str] = field(default_factory=list)
    length_m: float = 0.0
    seconds: float = 0.0
    bridges: int = 0
    fords: int = 0
    closed_now: int = 0


def route_steps(codes: Iterable[str], roads: Mapping[str, Road]) -> list[Step]:
    """A route's segments in travel order, grouped: consecutive segments of one road class make
    one step (bridges and fords counted in it, segments closed since counted too)."""
    steps: list[Step] = []
    for code in codes:
        road = roads.get(code)
        kind = road.road_class if road is not None else ""
        if not steps or steps[-1].road_class != kind:
            steps.append(Step(kind))
        step = steps[-1]
        step.codes.append(code)
        if road is None:
            continue
        step.length_m += road.length_m
        if road.speed_kmh > 0:
            step.seconds += road.length_m / (road.speed_kmh / 3.6)
        step.bridges += road.structure == "bridge"
        step.fords += road.structure == "ford"
        step.closed_now += not road.is_open
    return steps


@dataclass
class Trip:
    """People of a village going to one shelter, and the way there."""

    shelter: dict[str, Any]
    people: int
    by_class: list[int]
    travel_s: int
    steps: list[Step]


@dataclass
class Sheet:
    """One village's page."""

    village: dict[str, Any]
    to_move: list[int]
    placed: int
    unplaced: int
    reason: str | None
    trips: list[Trip]

    @property
    def total(self) -> int:
        return sum(self.to_move)

    @property
    def density(self) -> str:
        """How tightly the sheet is set so that it stays one A4 page, from its lines as the print
        style lays them out: a shelter's head takes about four step lines."""
        classes = sum(1 for n in self.to_move if n)
        lines = (4 * len(self.trips) + sum(len(t.steps) for t in self.trips)
                 + max(0, classes - 2) + (1 if self.unplaced else 0))
        if lines > TIGHT_LINES:
            return "tight"
        return "compact" if lines > COMPACT_LINES else "roomy"


def build_sheets(body: Mapping[str, Any], roads: Mapping[str, Road]) -> list[Sheet]:
    """One sheet per village with people to move (by code), its trips nearest first."""
    shelters = {s["code"]: s for s in body.get("shelters", ())}
    trips: dict[str, list[Trip]] = {}
    for a in body.get("assignments", ()):
        shelter = shelters.get(a["shelter"], {"code": a["shelter"]})
        trips.setdefault(a["village"], []).append(Trip(
            shelter, a["people"], list(a["by_class"]), a["travel_s"],
            route_steps(a["roads"], roads)))
    sheets = []
    for v in sorted(body.get("villages", ()), key=lambda v: v["code"]):
        if sum(v["to_move"]) <= 0:
            continue
        mine = sorted(trips.get(v["code"], []), key=lambda t: (t.travel_s, t.shelter["code"]))
        sheets.append(Sheet(v, list(v["to_move"]), v["placed"], v["unplaced"], v["reason"],
                            mine))
    return sheets


def _roads(codes: set[str]) -> dict[str, Road]:
    out: dict[str, Road] = {}
    ordered = sorted(codes)
    for start in range(0, len(ordered), CHUNK):
        rows = db.session.execute(select(
            RoadSegment.code, RoadSegment.road_class, RoadSegment.length_m,
            RoadSegment.speed_kmh, RoadSegment.structure, RoadSegment.is_open)
            .where(RoadSegment.code.in_(ordered[start:start + CHUNK]))).all()
        for r in rows:
            out[r.code] = Road(r.road_class, float(r.length_m), float(r.speed_kmh),
                               r.structure or "none", bool(r.is_open))
    return out


def _local(text: str | None) -> str:
    """An ISO timestamp in the plan's time zone, the same on a Chinese and an English sheet."""
    if not text:
        return ""
    zone = ZoneInfo(current_app.config["SETTINGS"].evacuation.timezone)
    moment = datetime.fromisoformat(text).astimezone(zone)
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"


def minutes(seconds: float, digits: int = 0) -> str:
    """Seconds as minutes for a sheet: whole minutes (at least 1 for any trip), or tenths."""
    if digits:
        return f"{seconds / 60:.{digits}f}"
    return str(max(1, round(seconds / 60))) if seconds > 0 else "0"


def sheet_words() -> dict[str, Any]:
    """Every label a sheet prints, each as Both(zh, en)."""
    words: dict[str, Any] = {key: both(text) for key, text in SHEET_WORDS.items()}
    words["classes"] = [both(text) for text in CLASS_LABELS]
    words["levels"] = {key: both(text) for key, text in LEVEL_LABELS.items()}
    words["reasons"] = {key: both(text) for key, text in REASONS.items()}
    words["triggers"] = {key: both(text) for key, text in TRIGGERS.items()}
    words["road_classes"] = {str(c): both(LABELS[c]) for c in RoadClass}
    return words


@auth.roles(*PERSON_ROLES)
def plan_sheets(version: int):
    """Printable sheets of a version: one A4 page per village with people to move, in Chinese
    and English."""
    plan = db.session.scalar(select(EvacuationPlan).where(
        EvacuationPlan.version == version)) if 0 < version <= 2**31 - 1 else None
    if plan is None:
        raise NotFound(_l("There is no evacuation plan version %(version)s.", version=version),
                       code="no_plan")
    body = plan.body
    codes = {code for a in body.get("assignments", ()) for code in a["roads"]}
    sheets = build_sheets(body, _roads(codes))
    trigger = body.get("trigger") or {}
    screen = {"title": _("Evacuation sheets of plan version %(version)s", version=version),
              "drill": _("Drill"), "map": _("Map"),
              "hint": _("One A4 page per village: print this page (Ctrl+P).")}
    return render_template(
        "evacuation/sheets.html", sheets=sheets, W=sheet_words(), minutes=minutes, screen=screen,
        plan={"version": plan.version, "drill": plan.drill, "made": _local(body.get("created_at")),
              "trigger": trigger.get("kind") or "manual", "ref": trigger.get("ref") or ""})


# --- the words of the map's plan panel (maps/static/plan_layer.js) -------------------------------

def plan_vocabulary() -> dict[str, Any]:
    """The plan's words in the page's language (JSON for the map's plan layer and panel);
    `{name}` marks where the page puts a value."""
    return {
        "title": _("Evacuation plan"),
        "drill": _("Drill"),
        "drillBanner": _("Drill plan: not a real evacuation order."),
        "fold": _("Hide the plan"),
        "unfold": _("Show the plan"),
        "showDrills": _("Show drill plans"),
        "loading": _("Loading the plan…"),
        "none": _("There is no evacuation plan yet. One is made when a village is warned; a "
                  "dispatcher can also ask for one."),
        "failed": _("Could not load the plan; trying again:"),
        "drillMade": _("Drill plan version %(version)s was made: tick “Show drill plans” to see "
                       "it.", version="{version}"),
        "version": _("Version %(version)s", version="{version}"),
        "sheets": _("Print the village sheets"),
        "metrics": {
            "toMove": _("To move"), "placed": _("Placed"), "noRoute": _("No route"),
            "noCapacity": _("No place"), "longest": _("Longest trip"),
            "computed": _("Computed in"), "made": _("Made at"), "trigger": _("Trigger"),
            "mode": _("Mode"),
        },
        "people": _("%(n)s people", n="{n}"),
        "minutes": _("%(n)s min", n="{n}"),
        "ms": _("%(n)s ms", n="{n}"),
        "triggers": {key: str(text) for key, text in TRIGGERS.items()},
        "modes": {"split": _("Exact (a village may go to several shelters)"),
                  "together": _("Each village to one shelter")},
        "reasons": {"no_route": _("no usable shelter within reach"),
                    "no_capacity": _("no place left in the shelters within reach")},
        "whyNot": {"closed": _("closed"), "full": _("full"), "in_danger": _("in danger: inside "
                                                                            "an area to evacuate")},
        "levels": {key: str(text) for key, text in LEVEL_LABELS.items()},
        "closure": {"closed": _("closed to traffic"),
                    "because": _("closed to traffic: %(reason)s", reason="{reason}"),
                    "hazard": _("inside hazard zone %(zone)s at evacuate", zone="{zone}")},
        "classes": [str(text) for text in CLASS_LABELS],
        "route": {"people": _("People"), "travel": _("Travel time"),
                  "segments": _("Road segments"),
                  "unplaced": _("%(n)s people without a place", n="{n}"),
                  "shelterUnusable": _("Shelter not used"), "closedRoad": _("Road closed"),
                  "reason": _("Reason")},
        "diff": {
            "title": _("Changes from version %(version)s", version="{version}"),
            "first": _("The first version: there is nothing to compare."),
            "same": _("Nobody goes elsewhere than in the version before."),
            "before": _("Before"), "after": _("Now"),
            "nowhere": _("no shelter"),
            "unplaced": _("%(n)s without a place", n="{n}"),
            "why": {
                "level": _("Warning level changed from %(from)s to %(to)s.", **{
                    "from": "{from}", "to": "{to}"}),
                "people": _("People to move changed from %(from)s to %(to)s.", **{
                    "from": "{from}", "to": "{to}"}),
                "road_closed": _("Road %(road)s on the way to %(shelter)s is %(reason)s.",
                                 road="{road}", shelter="{shelter}", reason="{reason}"),
                "shelter_unusable": _("Shelter %(shelter)s can no longer take people: "
                                      "%(reason)s.", shelter="{shelter}", reason="{reason}"),
                "shelter_gone": _("Shelter %(shelter)s is no longer in the plan.",
                                  shelter="{shelter}"),
                "capacity": _("Others of higher priority or with a shorter trip took the "
                              "places."),
            },
        },
        "legend": {"title": _("Legend"), "width": _("Line width: people on the route"),
                   "colour": _("Colour: share of vulnerable people (light: none, dark: all)"),
                   "closed": _("Road closed for the plan"),
                   "unusable": _("Shelter not used"),
                   "unplaced": _("People without a place")},
    }


def init_app(app: Flask) -> None:
    """The sheets (an endpoint of the `evacuation` API, whose templates and print style live
    here) and the vocabulary the map embeds."""
    app.register_blueprint(bp)
    app.add_url_rule(SHEETS_RULE, endpoint="evacuation.plan_sheets", view_func=plan_sheets,
                     methods=["GET"])
    app.jinja_env.globals["plan_vocabulary"] = plan_vocabulary
