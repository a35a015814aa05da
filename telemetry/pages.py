"""Office pages of telemetry: sensors, dead letters and one sensor's plots.

Pages are server-rendered Jinja with small ES modules (DESIGN §7); they read and change data
only through the JSON API of `telemetry.views`, so the API is the one place rules live.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.db import db
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


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
