"""Township Rescue Hub: the app factory.

`create_app` loads settings, binds the kernel and calls each package's `init_app`; it never
connects to MQTT nor starts the scheduler (the `run` and `worker` commands do, once).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

# The domain packages, upstream first (DESIGN §2). Importing them here, with the factory's module,
# adds their settings rules (dispatch.core.settings.add_check) before any settings are loaded.
import alerts
import depot
import maps
import telemetry
from dispatch import evacuation, positions, roster
from dispatch import views as office
from dispatch.core import auth, i18n, realtime, web
from dispatch.core import views as core_views
from dispatch.core.body import BODY_LIMIT
from dispatch.core.db import db
from dispatch.core.keys import stored_secret
from dispatch.core.settings import ROOT, Settings, load_settings

# Each registers its blueprints, pages, layers, metrics and body limit in its init_app(app).
# `office` is the dispatch domain's office pages (dispatch.views); `evacuation` its plans;
# `depot` the equipment; `roster` the team and its rota; `positions` where its members are.
PACKAGES = (maps, telemetry, alerts, depot, evacuation, roster, positions, office)


def create_app(overrides: dict[str, dict[str, Any]] | None = None,
               settings: Settings | None = None) -> Flask:
    """Build the hub's Flask app from settings (plus overrides, used by tests)."""
    settings = settings or load_settings(overrides)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    # Child processes (the ingest writer, the jobs process) build their own app with this: the
    # kernel and the packages are handed the factory instead of importing it (upward).
    app.config["APP_FACTORY"] = create_app
    app.config["NODE_MODULES"] = ROOT / "node_modules"
    secret = settings.web.secret_key or stored_secret(settings.data_dir, "secret_key")
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="rescuehub_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.web.session_ttl_s),
        MAX_CONTENT_LENGTH=BODY_LIMIT,
        JSON_SORT_KEYS=False,
    )
    db.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    realtime.init_app(app)
    web.init_app(app)
    core_views.init_app(app)
    for package in PACKAGES:
        package.init_app(app)
    return app
