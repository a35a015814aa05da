"""Who is asking, and may they? Users, gateways, tokens, the role check and CSRF.

Every view declares its access with `@public` or `@roles(...)`; a `before_request` hook enforces
it and refuses any view that declared nothing, so a new endpoint cannot forget its role check.
People sign in with a session cookie (CSRF-checked on every unsafe request); API clients, tablets
and gateways send `Authorization: Bearer <token>`. Only SHA-256 digests of tokens are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, request, session
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from dispatch.core import audit, metrics
from dispatch.core.choices import PERSON_ROLES, Role
from dispatch.core.db import db, utcnow
from dispatch.core.errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized
from dispatch.core.models import ApiToken, Gateway, LoginFailure, User

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Principal:
    """The signed-in person or gateway behind a request or socket."""

    kind: str  # "user" | "gateway"
    id: int
    name: str
    role: str
    must_change_password: bool = False
    via_token: bool = False

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"{self.kind}:{self.name}"


# --- declaring access -------------------------------------------------------------------------

def public(view: Callable) -> Callable:
    """Mark a view as open to anyone (sign-in page, health checks)."""
    view._access = ()  # type: ignore[attr-defined]
    return view


def roles(*allowed: Role | str) -> Callable[[Callable], Callable]:
    """Mark a view as open to the given roles only (401 without sign-in, 403 with another role)."""
    names = tuple(str(r) for r in allowed)
    unknown = set(names) - {str(r) for r in Role}
    if unknown or not names:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def mark(view: Callable) -> Callable:
        view._access = names  # type: ignore[attr-defined]
        return view

    return mark


def signed_in(view: Callable) -> Callable:
    """Mark a view as open to any signed-in person (not gateways)."""
    return roles(*PERSON_ROLES)(view)


def csrf_exempt(view: Callable) -> Callable:
    """The view reads no cookie credentials (it takes them in the body), so CSRF cannot apply."""
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def allow_pending_password(view: Callable) -> Callable:
    """The view stays open to a user who must still replace a one-time password."""
    view._pending_ok = True  # type: ignore[attr-defined]
    return view


def access_of(view: Callable) -> tuple[str, ...] | None:
    """The roles a view declared, () for public, None when it declared nothing."""
    target = getattr(view, "view_class", view)
    return getattr(target, "_access", getattr(view, "_access", None))


def require(principal: Principal | None, allowed: Iterable[str]) -> Principal:
    """Raise Unauthorized/Forbidden unless the principal holds one of the roles."""
    if principal is None:
        raise Unauthorized()
    if principal.role not in set(allowed):
        raise Forbidden()
    return principal


def current_principal() -> Principal | None:
    """The principal of the current request, resolved once."""
    if "principal" not in g:
        g.principal = _resolve_request_principal()
    return g.principal


# --- passwords and tokens ---------------------------------------------------------------------

def new_secret(nbytes: int = 12) -> str:
    """A random secret for one-time passwords and gateway credentials."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """SHA-256 of a bearer token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _password_version(user: User) -> str:
    # Stored in the session cookie: a password change ends every other session.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME.match(username):
        raise BadRequest(_l("A user name has 2-64 letters, digits, dots, dashes or underscores."),
                         code="bad_username")
    return username


def check_new_password(password: Any) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise BadRequest(_l("Choose a password of at least %(n)s characters.", n=MIN_PASSWORD),
                         code="weak_password")
    return password


def create_user(s: Session, username: str, role: str, *, actor: str,
                display_name: str = "") -> tuple[User, str]:
    """Create a person with a one-time password (returned once, never stored in clear)."""
    check_username(username)
    if role not in {str(r) for r in PERSON_ROLES}:
        raise BadRequest(_l("Unknown role %(role)s.", role=role), code="bad_role")
    if s.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise Conflict(_l("User %(name)s exists already.", name=username), code="user_exists")
    password = new_secret()
    user = User(username=username, role=role, display_name=display_name or username,
                password_hash=generate_password_hash(password), must_change_password=True)
    s.add(user)
    s.flush()
    audit.record(s, actor=actor, action="user.create", entity_type="user", entity_id=username,
                 after={"role": role, "display_name": user.display_name})
    return user, password


def reset_password(s: Session, username: str, *, actor: str) -> str:
    """Replace a person's password with a new one-time password (audited, not the password)."""
    user = s.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        raise BadRequest(_l("No user %(name)s.", name=username), code="no_user")
    password = new_secret()
    user.password_hash = generate_password_hash(password)
    user.must_change_password = True
    audit.record(s, actor=actor, action="user.reset_password", entity_type="user",
                 entity_id=user.username)
    return password


def ensure_first_commander(s: Session) -> tuple[str, str] | None:
    """On a hub with no users, create `commander` and return (name, one-time password)."""
    if s.scalar(select(func.count(User.id))):
        return None
    user, password = create_user(s, "commander", Role.COMMANDER, actor="system:first-run",
                                 display_name="Commander")
    return user.username, password


def _rate_key(username: str, remote: str) -> str:
    return f"{username.lower()}|{remote}"


def _check_rate(s: Session, username: str, remote: str) -> None:
    settings = current_app.config["SETTINGS"]
    since = utcnow() - timedelta(seconds=settings.web.login_window_s)
    failures = s.scalar(select(func.count(LoginFailure.id)).where(
        LoginFailure.key == _rate_key(username, remote), LoginFailure.at > since))
    if failures >= settings.web.login_max_failures:
        raise TooManyRequests(details={"retry_after_s": settings.web.login_window_s})


def authenticate(s: Session, username: Any, password: Any, remote: str) -> User:
    """Check a user name and password, with the sign-in rate limit; the user or an error."""
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise BadRequest(_l("Give a user name and a password."), code="bad_credentials_format")
    _check_rate(s, username, remote)
    user = s.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        s.add(LoginFailure(key=_rate_key(username, remote)))
        s.commit()
        metrics.login_failures.inc()
        raise Unauthorized(_l("Wrong user name or password."), code="bad_credentials")
    s.execute(delete(LoginFailure).where(LoginFailure.key == _rate_key(username, remote)))
    return user


def change_password(s: Session, user: User, new_password: Any) -> None:
    """Replace a user's password (audited, without the password)."""
    check_new_password(new_password)
    if check_password_hash(user.password_hash, new_password):
        raise BadRequest(_l("Choose a password different from the current one."),
                         code="same_password")
    user.password_hash = generate_password_hash(new_password)
    user.must_change_password = False
    user.password_changed_at = utcnow()
    audit.record(s, actor=f"user:{user.username}", action="user.password", entity_type="user",
                 entity_id=user.username)


def issue_user_token(s: Session, user: User, ttl_s: int) -> tuple[str, datetime]:
    """A new bearer token for a user, valid for ttl_s seconds."""
    if user.must_change_password:
        raise Forbidden(_l("Change the one-time password first (sign in on the web page, or "
                           "POST /api/v1/auth/password)."), code="password_change_required")
    token = "rh_" + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=ttl_s)
    s.add(ApiToken(token_hash=token_digest(token), user_id=user.id, expires_at=expires))
    return token, expires


def create_gateway(s: Session, code: str, *, actor: str, name: str = "",
                   mqtt_hash: Callable[[str], str]) -> tuple[Gateway, str, str]:
    """Register a gateway: returns it, its MQTT password and its HTTP token (shown once)."""
    check_username(code)
    if s.scalar(select(Gateway.id).where(func.lower(Gateway.code) == code.lower())):
        raise Conflict(_l("Gateway %(code)s exists already.", code=code), code="gateway_exists")
    mqtt_password, http_token = new_secret(18), "rhg_" + secrets.token_urlsafe(32)
    gateway = Gateway(code=code, name=name or code, mqtt_password_hash=mqtt_hash(mqtt_password))
    s.add(gateway)
    s.flush()
    s.add(ApiToken(token_hash=token_digest(http_token), gateway_id=gateway.id))
    audit.record(s, actor=actor, action="gateway.create", entity_type="gateway", entity_id=code,
                 after={"name": gateway.name})
    return gateway, mqtt_password, http_token


def principal_from_token(s: Session, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None if unknown, revoked or expired."""
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None or row.revoked or (row.expires_at and row.expires_at <= utcnow()):
        return None
    if row.user_id is not None:
        user = s.get(User, row.user_id)
        if user is None or not user.active:
            return None
        return Principal("user", user.id, user.username, user.role, user.must_change_password,
                         via_token=True)
    gateway = s.get(Gateway, row.gateway_id)
    if gateway is None or not gateway.active:
        return None
    return Principal("gateway", gateway.id, gateway.code, str(Role.GATEWAY), via_token=True)


def principal_from_session(s: Session) -> Principal | None:
    """The person signed in with the session cookie, if the session is still valid."""
    uid = session.get("uid")
    if uid is None:
        return None
    user = s.get(User, uid)
    if user is None or not user.active or session.get("pwv") != _password_version(user):
        session.clear()
        return None
    return Principal("user", user.id, user.username, user.role, user.must_change_password)


def sign_in_session(user: User) -> None:
    """Start a cookie session for the user (a fresh CSRF token too)."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["pwv"] = _password_version(user)
    session["csrf"] = secrets.token_urlsafe(24)


def csrf_token() -> str:
    """This session's CSRF token, created on first use (templates put it in forms)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def _resolve_request_principal() -> Principal | None:
    s = db.session
    token = _bearer()
    if token is not None:
        principal = principal_from_token(s, token)
        if principal is None:
            raise Unauthorized(_l("The token is unknown, revoked or expired. Get a new one."),
                               code="bad_token")
        return principal
    return principal_from_session(s)


def _check_csrf(view: Callable) -> None:
    if request.method not in UNSAFE_METHODS or getattr(view, "_csrf_exempt", False):
        return
    if _bearer() is not None:
        return  # bearer tokens are not sent by browsers on their own
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        raise Forbidden(_l("The form has expired. Reload the page and try again."),
                        code="csrf_failed")


def enforce_access() -> None:
    """before_request: apply the view's declared access; deny views that declared none."""
    # `g` lives as long as the app context, which may span several requests: start afresh.
    g.pop("principal", None)
    if request.endpoint is None:
        return  # 404/405: let the router answer
    view = current_app.view_functions[request.endpoint]
    if request.endpoint == "static" or request.endpoint.endswith(".static"):
        return
    allowed = access_of(view)
    if allowed is None:
        log.error("view %s declares no access; refusing", request.endpoint)
        raise Forbidden()
    if allowed == ():
        _check_csrf(view)
        return
    principal = require(current_principal(), allowed)
    _check_csrf(view)
    if principal.must_change_password and not getattr(view, "_pending_ok", False):
        raise Forbidden(_l("Change the one-time password first."),
                        code="password_change_required")


def init_app(app: Flask) -> None:
    app.before_request(enforce_access)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_principal"] = current_principal
