"""The scan endpoint (DESIGN §5 "Depot (contract)"): a thin adapter over depot.scan. Keepers
and commanders scan to check out and in; dispatchers read."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import lazy_gettext as _l

from depot import scan
from depot.choices import READERS
from dispatch.core import auth
from dispatch.core.db import db, utcnow
from dispatch.core.errors import parameter_error

bp = Blueprint("depot_scan", __name__)


@bp.get("/api/v1/depot/scan")
@auth.roles(*READERS)
def resolve_scan():
    """What a scanned or typed code names (`?code=`), among the kinds the step wants
    (`?want=item,kit`; all when absent): 404 `unknown_code`, 409 `wrong_kind`."""
    raw = request.args.get("code")
    if raw is None or raw.strip() == "":
        raise parameter_error("code", _l("is required: the code scanned or typed"))
    if len(raw) > scan.MAX_SCAN:
        raise parameter_error("code", _l("must be at most %(max)d characters",
                                         max=scan.MAX_SCAN))
    want = scan.wanted_kinds(request.args.get("want"))
    s = db.session
    site = scan.find_site(s, request.args.get("site"))
    return jsonify(scan.resolve(s, raw, want, settings=current_app.config["SETTINGS"],
                                now=utcnow(), site=site))


def init_app(app: Flask) -> None:
    """Register the endpoint (its OpenAPI declaration is in depot.api_schemas)."""
    app.register_blueprint(bp)
