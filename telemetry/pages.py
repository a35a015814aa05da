"""Office pages of telemetry: sensors, dead letters and one sensor's plots.

Pages are server-rendered Jinja with small ES modules (DESIGN §7); they read and change data
only through the JSON API of `telemetry.views`, so the API is the one place rules live.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.choices import OFFICE_ROLES, Role
from dispatch.core.db import db
from dispatch.core.errors import NotFound
from dispatch.core.models import Gateway
from telemetry.choices import DEFAULT_RANGES, LABELS, UNITS, SensorKind

bp = Blueprint("telemetry_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/telemetry")


@bp.get("/sensors")
@auth.signed_in
def sensors_page():
    """The sensor registry: every sensor with its last value; editors register, edit, retire
    and import here."""
    from telemetry.views import EDITORS

    kinds = {str(k): {"label": str(LABELS[k]), "units": list(UNITS[k]),
                      "range": list(DEFAULT_RANGES[k])} for k in SensorKind}
    # There is no gateways API yet: the register form's choices are rendered with the page.
    gateways = db.session.scalars(select(Gateway.code).where(Gateway.active.is_(True))
                                  .order_by(Gateway.code)).all()
    return render_template("sensors.html", kinds=kinds, gateways=gateways,
                           can_edit=auth.current_principal().role in EDITORS)


# --- dead letters ------------------------------------------------------------------------------

# The ingest reasons of DESIGN §5 in the office's words (the page shows the code beside them).
DEAD_LETTER_REASONS = {
    "bad_json": _l("Not valid JSON"),
    "bad_encoding": _l("Not UTF-8 text"),
    "schema": _l("Wrong fields or types"),
    "bad_timestamp": _l("Bad timestamp"),
    "not_finite": _l("Value is not a finite number"),
    "unknown_sensor": _l("Unknown sensor"),
    "foreign_sensor": _l("Sensor of another gateway"),
    "retired_sensor": _l("Retired sensor"),
    "unit_mismatch": _l("Wrong unit"),
    "out_of_range": _l("Outside the instrument's range"),
    "too_old": _l("Too old"),
    "future": _l("Time in the future"),
    "too_large": _l("Too large"),
    "conflict": _l("Conflicts with a stored value"),
}


@bp.get("/dead-letters")
@auth.roles(*OFFICE_ROLES)
def dead_letters_page():
    """The dead-letter office: rejected messages listed, filtered, shown safely and resolved."""
    role = auth.current_principal().role
    return render_template("dead_letters.html", reasons=DEAD_LETTER_REASONS,
                           can_act=role in {Role.COMMANDER, Role.DISPATCHER})


# --- one sensor: header, plots over a chosen range, sums, live ------------------------------

# Time range buttons: key, hours, and the series they read (raw reports or hourly roll-ups).
SENSOR_RANGES = (("6h", 6, "readings"), ("24h", 24, "readings"), ("3d", 72, "hourly"),
                 ("7d", 168, "hourly"))


def _place(model, row_id: int | None) -> dict | None:
    """Code and name of the village or hazard zone a sensor watches."""
    if row_id is None:
        return None
    row = db.session.get(model, row_id)
    return None if row is None else {"code": row.code, "name": row.name_zh or row.code}


@bp.get("/sensors/<code>")
@auth.signed_in
def sensor_page(code: str):
    """One sensor: its last value and QC flag, plots of a time range, rolling sums, live."""
    from maps.models import HazardZone, Village
    from telemetry import service
    from telemetry.choices import LABELS

    s = db.session
    try:
        sensor = service.find(s, code)
    except NotFound:
        raise NotFound(_("There is no sensor with the code %(code)s.", code=code)) from None
    described = service.describe(s, sensor)
    return render_template(
        "sensor.html", sensor=described, kind_label=LABELS.get(sensor.kind, sensor.kind),
        village=_place(Village, sensor.village_id), hazard=_place(HazardZone, sensor.hazard_id),
        ranges=SENSOR_RANGES)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
