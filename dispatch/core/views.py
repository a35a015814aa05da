"""Kernel endpoints: sign-in (pages and API), language switch, health, metrics, OpenAPI, vendor
assets from npm, and the error handlers that turn every error into JSON or a page."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from dispatch.core import auth, metrics, openapi
from dispatch.core.body import json_object, refuse_nul
from dispatch.core.choices import OFFICE_ROLES, Role
from dispatch.core.db import db, utcnow
from dispatch.core.errors import BadRequest, HubError, NotFound, Unauthorized
from dispatch.core.i18n import LOCALES
from dispatch.core.models import Heartbeat

log = logging.getLogger(__name__)

bp = Blueprint("core", __name__)

# npm packages served to the pages (installed by the set-up step; never a CDN: DESIGN §7).
# jsqr: the depot pages' camera reads QR labels in the browser (depot/static/scanfield.js).
VENDOR = {"leaflet": "leaflet/dist", "socket.io-client": "socket.io-client/dist",
          "jsqr": "jsqr/dist"}
HEARTBEAT_STALE = timedelta(seconds=45)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never redirect to another host after sign-in.
    if not target or urlsplit(target).netloc or not target.startswith("/") or target[:2] == "//":
        return url_for("office.home")
    return target


# --- pages ------------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
@auth.public
def login():
    """Sign-in page for people."""
    error = None
    status = 200
    if request.method == "POST":
        try:
            user = auth.authenticate(db.session, request.form.get("username", ""),
                                     request.form.get("password", ""), request.remote_addr or "")
            auth.sign_in_session(user)
            db.session.commit()
            if user.must_change_password:
                return redirect(url_for("core.password"))
            return redirect(_safe_next(request.args.get("next")))
        except HubError as exc:
            error, status = str(exc.message), exc.status
    return render_template("login.html", error=error), status


@bp.post("/logout")
@auth.signed_in
@auth.allow_pending_password
def logout():
    """End the session on the server: this cookie and every copy of it stop working."""
    auth.sign_out(db.session, auth.current_principal().id)
    db.session.commit()
    return redirect(url_for("core.login"))


@bp.route("/password", methods=["GET", "POST"])
@auth.signed_in
@auth.allow_pending_password
def password():
    """Choose a new password, given the current one (required after a one-time password)."""
    error = None
    if request.method == "POST":
        new, again = request.form.get("new_password", ""), request.form.get("new_password2", "")
        try:
            if new != again:
                raise BadRequest(_("The two passwords differ."), code="password_mismatch")
            user = _current_password_checked(request.form.get("current_password", ""))
            auth.change_password(db.session, user, new)
            auth.sign_in_session(user)
            db.session.commit()
            return redirect(url_for("office.home"))
        except HubError as exc:
            db.session.rollback()
            error = str(exc.message)
    return render_template("password.html", error=error)


def _current_password_checked(current: str):
    # A cookie alone must not replace the password (a stolen cookie would take the account):
    # the current password is checked as a sign-in is, rate limit included.
    try:
        return auth.authenticate(db.session, auth.current_principal().name, current,
                                 request.remote_addr or "")
    except Unauthorized:
        raise BadRequest(_("The current password is wrong."), code="wrong_password") from None


@bp.get("/lang/<code>")
@auth.public
def switch_language(code: str):
    """Switch the page language (cookie) and go back."""
    if code not in LOCALES:
        raise NotFound()
    response = redirect(_safe_next(request.args.get("next")))
    response.set_cookie("lang", code, max_age=365 * 86400, samesite="Lax")
    return response


@bp.get("/vendor/<package>/<path:filename>")
@auth.public
def vendor(package: str, filename: str):
    """Front-end packages from node_modules."""
    if package not in VENDOR:
        raise NotFound()
    folder = Path(current_app.config["NODE_MODULES"]) / VENDOR[package]
    return send_from_directory(folder, filename, max_age=3600)


# --- API: sign-in -----------------------------------------------------------------------------

@bp.post("/api/v1/auth/token")
@auth.public
@auth.csrf_exempt
def issue_token():
    """Exchange a user name and password for a bearer token with an expiry."""
    body = json_object()
    s = db.session
    user = auth.authenticate(s, body.get("username"), body.get("password"),
                             request.remote_addr or "")
    ttl = current_app.config["SETTINGS"].web.token_ttl_s
    token, expires = auth.issue_user_token(s, user, ttl)
    s.commit()
    return jsonify(token=token, token_type="Bearer", expires_at=expires.isoformat(),
                   expires_in=ttl, role=user.role)


@bp.post("/api/v1/auth/password")
@auth.public
@auth.csrf_exempt
def api_change_password():
    """Replace a password (the one-time one too), given the current one."""
    body = json_object()
    s = db.session
    user = auth.authenticate(s, body.get("username"), body.get("password"),
                             request.remote_addr or "")
    auth.change_password(s, user, body.get("new_password"))
    s.commit()
    return jsonify(ok=True)


@bp.get("/api/v1/me")
@auth.roles(*Role)
@auth.allow_pending_password
def me():
    """Who the caller is."""
    p = auth.current_principal()
    return jsonify(kind=p.kind, name=p.name, role=p.role,
                   must_change_password=p.must_change_password)


# --- operations -------------------------------------------------------------------------------

@bp.get("/healthz")
@auth.public
def healthz():
    """Liveness: the process answers."""
    return jsonify(status="ok")


def _mqtt_state() -> bool:
    owner = current_app.extensions.get("rescuehub.mqtt")
    if owner is not None:
        return owner.connected
    beat = db.session.get(Heartbeat, "worker")
    return bool(beat and beat.mqtt_connected and utcnow() - beat.at < HEARTBEAT_STALE)


@bp.get("/readyz")
@auth.public
def readyz():
    """Readiness: the database answers and the hub's MQTT connection is up."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "up"
        checks["mqtt"] = "up" if _mqtt_state() else "down"
    except Exception as exc:  # any driver error means "down", with its first line
        log.warning("readiness: database down: %s", str(exc).splitlines()[0])
        db.session.rollback()
        checks["database"] = "down"
        checks["mqtt"] = "unknown"
    ready = all(v == "up" for v in checks.values())
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503


@bp.get("/metrics")
@auth.roles(*OFFICE_ROLES)
def metrics_view():
    """Prometheus text exposition (send a bearer token from the scraper)."""
    return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/api/v1/openapi.json")
@auth.public
def openapi_json():
    """The OpenAPI 3.1 description, generated from the routes."""
    return jsonify(openapi.describe(current_app))


# --- errors -----------------------------------------------------------------------------------

def _wants_json() -> bool:
    path = request.path
    if "Authorization" in request.headers:
        return True  # API clients and tablets, never a browser page
    if path.startswith(("/api/", "/healthz", "/readyz", "/metrics")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _render_error(code: str, message: str, status: int, extra: dict | None = None):
    if _wants_json():
        body = {"error": code, "message": message, **(extra or {})}
        response = jsonify(body)
        response.status_code = status
        if status == 429 and extra and "retry_after_s" in extra:
            response.headers["Retry-After"] = str(extra["retry_after_s"])
        return response
    if status == 401 and request.method == "GET":
        return redirect(url_for("core.login", next=request.full_path.rstrip("?")))
    return render_template("error.html", code=code, message=message, status=status), status


def handle_hub_error(exc: HubError):
    if exc.status >= 500:
        log.error("%s on %s %s: %s", exc.code, request.method, request.path, exc)
    db.session.rollback()
    return _render_error(exc.code, str(exc.message), exc.status, exc.details)


def handle_http_error(exc: HTTPException):
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large",
            400: "bad_request"}.get(exc.code or 500, "http_error")
    messages = {
        "not_found": _("Not found. Check the address."),
        "method_not_allowed": _("This address does not take that method."),
        "too_large": _("The request body is too large."),
        "bad_request": _("The request is not valid."),
    }
    response = make_response(_render_error(code, messages.get(code, exc.description or ""),
                                           exc.code or 500))
    # Keep what the exception says beyond its page: 405's Allow (RFC 9110 §15.5.6), 401's
    # WWW-Authenticate, 416's Content-Range.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def handle_unexpected(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return _render_error("internal_error",
                         _("Something went wrong on the hub. Try again; if it persists, "
                           "see the hub's log."), 500)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(refuse_nul)
    app.register_error_handler(HubError, handle_hub_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)

