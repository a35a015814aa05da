"""Office pages of telemetry: sensors, dead letters and one sensor's plots.

Pages are server-rendered Jinja with small ES modules (DESIGN §7); they read and change data
only through the JSON API of `telemetry.views`, so the API is the one place rules live.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from flask_babel import gettext as _

from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.errors import NotFound

bp = Blueprint("telemetry_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/telemetry")


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
