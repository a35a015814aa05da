"""Office pages of the warnings: the alert history and one alert, plus the alert vocabulary
(kinds, levels, states, colours, rule fields in the page's language) that every page showing
alerts (the map's panel, the situation page) embeds as JSON.

Pages read and change alerts only through the JSON API of `alerts.views` (DESIGN §7).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template
from flask_babel import lazy_gettext as _l

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
from dispatch.core import auth

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


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # Any page may embed the vocabulary (`{{ alert_vocabulary() | tojson }}`): the map and the
    # home page belong to packages below alerts, which never import it (DESIGN §2).
    app.jinja_env.globals["alert_vocabulary"] = vocabulary
