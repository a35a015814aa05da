"""Office pages of the warnings: the alert history, one alert, a village's threshold editor,
plus the alert vocabulary (kinds, levels, states, colours, rule fields in the page's language)
that every page showing alerts (the map's panel, the situation page) embeds as JSON.

Pages read and change alerts only through the JSON API of `alerts.views` (DESIGN §7).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from alerts.choices import (
    COLOURS,
    LABELS,
    LEVEL_LABELS,
    LEVELS,
    SUBJECTS,
    WARNING_LABELS,
    AlertKind,
    AlertState,
    CapStatus,
)
from alerts.thresholds import MAX_WINDOWS
from dispatch.core import auth
from dispatch.core.choices import EDITORS
from dispatch.core.db import db
from dispatch.core.errors import NotFound
from maps.models import Village
from telemetry.pages import local_name

bp = Blueprint("alerts_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/alerts")

# The numbers a rule decided with (alerts.rules, alerts.evaluate), in the office's words, with
# their unit ("%" for a fraction shown as a percentage).
RULE_FIELDS: dict[str, tuple[Any, str]] = {
    "window_h": (_l("Window"), "h"),
    "observed_mm": (_l("Observed rain"), "mm"),
    "threshold_mm": (_l("Threshold"), "mm"),
    "complete": (_l("Data completeness"), "%"),
    "soil": (_l("Soil state"), ""),
    "antecedent_mm": (_l("Antecedent rain index"), "mm"),
    "gauge": (_l("Rain gauge"), ""),
    "event_mm": (_l("Rain event total"), "mm"),
    "duration_h": (_l("Event duration"), "h"),
    "intensity_mm_h": (_l("Mean intensity"), "mm/h"),
    "threshold_mm_h": (_l("Threshold intensity"), "mm/h"),
    "alpha": (_l("Curve α"), ""),
    "beta": (_l("Curve β"), ""),
    "velocity_mm_d": (_l("Velocity"), "mm/d"),
    "threshold_mm_d": (_l("Threshold velocity"), "mm/d"),
    "agreeing": (_l("Sensors agreeing"), ""),
    "of": (_l("Sensors with data"), ""),
    "agree": (_l("Sensors that must agree (k)"), ""),
    "windows": (_l("Incomplete windows"), ""),
    "min_completeness": (_l("Completeness needed"), "%"),
    "gauges": (_l("Rain gauges"), ""),
}

# The rule's `source` (alerts.rules writes the standard's English name) in the page's language.
RULE_SOURCES = {
    "CMA rainstorm signal": _l("CMA rainstorm warning signal"),
    "SL 675-2014 critical rainfall": _l("SL 675-2014 critical rainfall"),
    "rainfall intensity-duration (Guzzetti 2008 / Caine 1980)":
        _l("Rainfall intensity–duration curves (Guzzetti 2008 / Caine 1980)"),
    "slope velocity, k of n": _l("Slope velocity, k of n sensors"),
    "data completeness": _l("Data completeness of the rain windows"),
}

SOIL_LABELS = {"dry": _l("Dry"), "normal": _l("Normal"), "wet": _l("Wet")}

# Why a threshold cell is bad (alerts.thresholds.MESSAGES, answered in English with its code), in
# the page's language: the editor shows these beside each cell.
THRESHOLD_PROBLEMS = {
    "not_an_object": _l("must be an object"),
    "not_a_list": _l("must be a list"),
    "unknown_key": _l("is not a field of this table"),
    "missing": _l("is missing"),
    "not_a_number": _l("must be a number"),
    "not_positive": _l("must be greater than zero"),
    "negative": _l("must not be negative"),
    "empty": _l("must have at least one window"),
    "too_many": _l("must have at most %(n)s windows", n=MAX_WINDOWS),
    "too_long": _l("must be at most 24 h: the hub keeps 24 h of rain per gauge"),
    "not_increasing": _l("must be longer than the window before it"),
    "wrong_length": _l("must have exactly one value per window"),
    "decreasing": _l("must not be less than the value for the shorter window before it"),
    "below_prepare": _l("must not be less than the prepare value for the same soil and window"),
    "wet_above_dry": _l("must not be more than the value for drier soil: wetter soil floods "
                        "sooner"),
    "not_above_dry_below": _l("must be greater than the dry-soil limit"),
    "unknown_gauge": _l("is not a registered rain gauge"),
    "duplicate": _l("is listed twice"),
}


def vocabulary() -> dict[str, Any]:
    """The alert words and colours of alerts.choices in the page's language (JSON for pages)."""
    return {
        "kinds": {str(k): str(LABELS[k]) for k in AlertKind},
        "levels": {f"{k}:{level}": str(LEVEL_LABELS[(k, level)])
                   for k in AlertKind for level in LEVELS[k]},
        "order": {str(k): list(LEVELS[k]) for k in AlertKind},
        "subjects": {str(k): str(v) for k, v in SUBJECTS.items()},
        "states": {str(s): str(LABELS[s]) for s in AlertState},
        "cap": {str(c): str(LABELS[c]) for c in CapStatus},
        "warning": {k: str(v) for k, v in WARNING_LABELS.items()},
        "colours": dict(COLOURS),
        # A list: JSON objects lose their order on the way (tojson sorts keys).
        "rule": [{"key": k, "label": str(label), "unit": unit} for k, (label, unit) in
                 RULE_FIELDS.items()],
        "sources": {k: str(v) for k, v in RULE_SOURCES.items()},
        "soil": {k: str(v) for k, v in SOIL_LABELS.items()},
    }


@bp.get("/alerts")
@auth.signed_in
def history():
    """Every alert, newest first, filtered by kind, state and village."""
    kinds = {str(k): str(LABELS[k]) for k in AlertKind}
    return render_template("alerts.html", kinds=kinds)


@bp.get("/alerts/<int:alert_id>")
@auth.signed_in
def alert_page(alert_id: int):
    """One alert: its rule numbers, evidence, history, CAP messages and forecast."""
    return render_template("alert.html", alert_id=alert_id)


@bp.get("/villages/<code>/thresholds")
@auth.signed_in
def village_thresholds(code: str):
    """A village's critical-rainfall table against the rain now; editors change it."""
    village = db.session.scalar(select(Village).where(Village.code == code))
    if village is None:
        raise NotFound(_("There is no village with the code %(code)s.", code=code))
    return render_template("thresholds.html",
                           village={"code": village.code, "name": local_name(village)},
                           can_edit=auth.current_principal().role in EDITORS,
                           problems={k: str(v) for k, v in THRESHOLD_PROBLEMS.items()})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # Any page may embed the vocabulary (`{{ alert_vocabulary() | tojson }}`): the map and the
    # home page belong to packages below alerts, which never import it (DESIGN §2).
    app.jinja_env.globals["alert_vocabulary"] = vocabulary
