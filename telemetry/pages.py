"""Office pages of telemetry: sensors, dead letters and one sensor's plots.

Pages are server-rendered Jinja with small ES modules (DESIGN §7); they read and change data
only through the JSON API of `telemetry.views`, so the API is the one place rules live.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("telemetry_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/telemetry")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
