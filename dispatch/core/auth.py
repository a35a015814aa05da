"""Who is asking, and may they? Users, gateways, tokens, the role check and CSRF.

Every view declares its access with `@public` or `@roles(...)`; a `before_request` hook enforces
it and refuses any view that declared nothing, so a new endpoint cannot forget its role check.
People sign in with a session cookie (CSRF-checked on every unsafe request); API clients, tablets
and gateways send `Authorization: Bearer <token>`. Only SHA-256 digests of tokens are stored.

What ends access at once: sign-out ends every cookie session of that person (the cookie is signed,
not stored, so each carries the user's session generation, which sign-out bumps: a stolen copy
stops working too); a password change or reset and disabling the person also revoke their tokens;
disabling a gateway revokes its token (the CLI removes its broker login).
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
from functools import lru_cache
from typing import Any

from flask import Flask, current_app, g, request, session
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from dispatch.core import audit, metrics
from dispatch.core.choices import PERSON_ROLES, Role
from dispatch.core.db import db, utcnow
from dispatch.core.errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized
from dispatch.core.models import ApiToken, Gateway, LoginFailure, User
from dispatch.core.settings import Settings

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
# The hub's own MQTT names start with this (its login `rescuehub`, its client ids): a gateway
# called so would collide with them in the broker's password file or sessions.
HUB_NAME_PREFIX = "rescuehub"
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


def hash_password(password: str) -> str:
    """Hash a password with the configured method (web.password_hash)."""
    return generate_password_hash(password, method=current_app.config["SETTINGS"].web.password_hash)


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def _password_matches(user: User | None, password: str) -> bool:
    """Check a password; for no user, check a dummy hash of the same method, so an unknown
    name takes as long to refuse as a known one (the time tells nothing)."""
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["SETTINGS"].web.password_hash),
                            password)
        return False
    return check_password_hash(user.password_hash, password)


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


def find_user(s: Session, username: str) -> User | None:
    """The person with this user name (any case), or None."""
    return s.scalar(select(User).where(func.lower(User.username) == username.lower()))


def _known_user(s: Session, username: str) -> User:
    user = find_user(s, username)
    if user is None:
        raise BadRequest(_l("No user %(name)s.", name=username), code="no_user")
    return user


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
                password_hash=hash_password(password), must_change_password=True)
    s.add(user)
    s.flush()
    audit.record(s, actor=actor, action="user.create", entity_type="user", entity_id=username,
                 after={"role": role, "display_name": user.display_name})
    return user, password


def reset_password(s: Session, username: str, *, actor: str) -> str:
    """Replace a person's password with a new one-time password (audited, not the password);
    their sessions end and their tokens are revoked."""
    user = _known_user(s, username)
    password = new_secret()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    revoked = end_access(s, user)
    audit.record(s, actor=actor, action="user.reset_password", entity_type="user",
                 entity_id=user.username, after={"tokens_revoked": revoked})
    return password


def end_access(s: Session, user: User) -> int:
    """End every cookie session of a person and revoke their tokens; how many were revoked."""
    user.session_generation += 1
    return s.execute(update(ApiToken).where(ApiToken.user_id == user.id,
                                            ApiToken.revoked.is_(False))
                     .values(revoked=True)).rowcount


def set_user_active(s: Session, username: str, active: bool, *, actor: str) -> bool:
    """Disable a person (sessions and tokens end at once, sign-in refused) or enable them again;
    False when they already were so. Audited."""
    user = _known_user(s, username)
    if user.active == active:
        return False
    user.active = active
    after: dict[str, Any] = {"active": active}
    if not active:
        after["tokens_revoked"] = end_access(s, user)
    audit.record(s, actor=actor, action="user.enable" if active else "user.disable",
                 entity_type="user", entity_id=user.username, before={"active": not active},
                 after=after)
    return True


def ensure_first_commander(s: Session) -> tuple[str, str] | None:
    """On a hub with no users, create `commander` and return (name, one-time password)."""
    if s.scalar(select(func.count(User.id))):
        return None
    user, password = create_user(s, "commander", Role.COMMANDER, actor="system:first-run",
                                 display_name="Commander")
    return user.username, password


def _rate_key(username: str, remote: str) -> str:
    return f"{username.lower()}|{remote}"


def _reserve_attempt(s: Session, key: str) -> LoginFailure:
    """Count this attempt as a failure before checking anything, or raise TooManyRequests.

    The row is committed before the count, so of any number of concurrent attempts (threads or
    processes) at most login_max_failures see a count within the limit and reach the hash:
    counting first and recording afterwards let 19 of 40 parallel guesses through."""
    settings = current_app.config["SETTINGS"]
    attempt = LoginFailure(key=key)
    s.add(attempt)
    s.commit()
    since = utcnow() - timedelta(seconds=settings.web.login_window_s)
    attempts = s.scalar(select(func.count(LoginFailure.id)).where(
        LoginFailure.key == key, LoginFailure.at > since))
    if attempts > settings.web.login_max_failures:
        # A refused attempt reached no hash: it leaves no row, so hammering grows no table.
        s.delete(attempt)
        s.commit()
        raise TooManyRequests(details={"retry_after_s": settings.web.login_window_s})
    return attempt


def authenticate(s: Session, username: Any, password: Any, remote: str) -> User:
    """Check a user name and password, with the sign-in rate limit; the user or an error.
    Commits (the attempt is recorded before the check, cleared after a success)."""
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise BadRequest(_l("Give a user name and a password."), code="bad_credentials_format")
    key = _rate_key(username, remote)
    _reserve_attempt(s, key)
    user = find_user(s, username)
    # The hash is checked for unknown and disabled people too: the answer's time tells nothing.
    matches = _password_matches(user, password)
    if user is None or not user.active or not matches:
        s.commit()  # the attempt's row stays; nothing else was read for writing
        metrics.login_failures.inc()
        raise Unauthorized(_l("Wrong user name or password."), code="bad_credentials")
    s.execute(delete(LoginFailure).where(LoginFailure.key == key))
    s.commit()
    return user


def change_password(s: Session, user: User, new_password: Any) -> None:
    """Replace a user's password (audited, without the password): every session of theirs ends
    and their tokens are revoked (sign this browser in again with sign_in_session)."""
    check_new_password(new_password)
    if check_password_hash(user.password_hash, new_password):
        raise BadRequest(_l("Choose a password different from the current one."),
                         code="same_password")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.password_changed_at = utcnow()
    revoked = end_access(s, user)
    audit.record(s, actor=f"user:{user.username}", action="user.password", entity_type="user",
                 entity_id=user.username, after={"tokens_revoked": revoked})


def issue_user_token(s: Session, user: User, ttl_s: int) -> tuple[str, datetime]:
    """A new bearer token for a user, valid for ttl_s seconds."""
    if user.must_change_password:
        raise Forbidden(_l("Change the one-time password first (sign in on the web page, or "
                           "POST /api/v1/auth/password)."), code="password_change_required")
    token = "rh_" + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=ttl_s)
    s.add(ApiToken(token_hash=token_digest(token), user_id=user.id, expires_at=expires))
    return token, expires


def is_reserved_name(name: str, settings: Settings) -> bool:
    """Whether an MQTT name is the hub's own (any case): its login, its client id, an observer
    login (mqtt.observers), or any name starting with `rescuehub`."""
    own = {settings.mqtt.username.lower(), settings.mqtt.client_id.lower()}
    own |= {n.strip().lower() for n in settings.mqtt.observers.split(",") if n.strip()}
    return name.lower() in own - {""} or name.lower().startswith(HUB_NAME_PREFIX)


def check_gateway_code(code: str, settings: Settings) -> str:
    """A gateway id the broker can take: a valid name, and none of the hub's own."""
    check_username(code)
    if is_reserved_name(code, settings):
        raise BadRequest(_l("%(code)s is reserved for the hub's own MQTT login: choose another "
                            "gateway id.", code=code), code="reserved_name")
    return code


def create_gateway(s: Session, code: str, *, actor: str, name: str = "",
                   mqtt_hash: Callable[[str], str]) -> tuple[Gateway, str, str]:
    """Register a gateway: returns it, its MQTT password and its HTTP token (shown once)."""
    check_gateway_code(code, current_app.config["SETTINGS"])
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


def disable_gateway(s: Session, code: str, *, actor: str) -> bool:
    """Mark a gateway inactive and revoke its HTTP token (audited); False when it already was.
    Its broker login goes with the next broker files, which list active gateways only."""
    gateway = s.scalar(select(Gateway).where(func.lower(Gateway.code) == code.lower()))
    if gateway is None:
        raise BadRequest(_l("No gateway %(code)s.", code=code), code="no_gateway")
    revoked = s.execute(update(ApiToken).where(ApiToken.gateway_id == gateway.id,
                                               ApiToken.revoked.is_(False))
                        .values(revoked=True)).rowcount
    if not gateway.active and not revoked:
        return False
    before, gateway.active = gateway.active, False
    audit.record(s, actor=actor, action="gateway.disable", entity_type="gateway",
                 entity_id=gateway.code, before={"active": before},
                 after={"active": False, "tokens_revoked": revoked})
    return True


def enable_gateway(s: Session, code: str, *, actor: str,
                   mqtt_hash: Callable[[str], str]) -> tuple[Gateway, str, str]:
    """Bring a disabled gateway back with new credentials (its old ones stay revoked):
    returns it, its new MQTT password and HTTP token (shown once; audited without them)."""
    gateway = s.scalar(select(Gateway).where(func.lower(Gateway.code) == code.lower()))
    if gateway is None:
        raise BadRequest(_l("No gateway %(code)s.", code=code), code="no_gateway")
    if gateway.active:
        raise Conflict(_l("Gateway %(code)s is active already: disable it first to give it new "
                          "credentials.", code=gateway.code), code="gateway_active")
    mqtt_password, http_token = new_secret(18), "rhg_" + secrets.token_urlsafe(32)
    gateway.active, gateway.mqtt_password_hash = True, mqtt_hash(mqtt_password)
    s.add(ApiToken(token_hash=token_digest(http_token), gateway_id=gateway.id))
    audit.record(s, actor=actor, action="gateway.enable", entity_type="gateway",
                 entity_id=gateway.code, before={"active": False}, after={"active": True})
    return gateway, mqtt_password, http_token


_TOKENS, _USERS, _GATEWAYS = ApiToken.__table__, User.__table__, Gateway.__table__
# A bearer token with its user or gateway in one query: every API request runs it.
_TOKEN_PRINCIPAL = select(
    _TOKENS.c.revoked, _TOKENS.c.expires_at, _TOKENS.c.user_id, _TOKENS.c.gateway_id,
    _USERS.c.username, _USERS.c.role, _USERS.c.must_change_password,
    _USERS.c.active.label("user_active"), _GATEWAYS.c.code,
    _GATEWAYS.c.active.label("gateway_active"),
).select_from(
    _TOKENS.outerjoin(_USERS, _USERS.c.id == _TOKENS.c.user_id)
    .outerjoin(_GATEWAYS, _GATEWAYS.c.id == _TOKENS.c.gateway_id)
).where(_TOKENS.c.token_hash == bindparam("digest"))


def principal_from_token(s: Session, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None if unknown, revoked or expired."""
    row = s.execute(_TOKEN_PRINCIPAL, {"digest": token_digest(token)}).one_or_none()
    if row is None or row.revoked or (row.expires_at and row.expires_at <= utcnow()):
        return None
    if row.user_id is not None:
        if row.username is None or not row.user_active:
            return None
        return Principal("user", row.user_id, row.username, row.role,
                         row.must_change_password, via_token=True)
    if row.code is None or not row.gateway_active:
        return None
    return Principal("gateway", row.gateway_id, row.code, str(Role.GATEWAY), via_token=True)


def principal_from_session(s: Session) -> Principal | None:
    """The person signed in with the session cookie, if the session is still valid."""
    uid = session.get("uid")
    if uid is None:
        return None
    user = s.get(User, uid)
    if user is None or not user.active or session.get("gen") != user.session_generation:
        session.clear()
        return None
    return Principal("user", user.id, user.username, user.role, user.must_change_password)


def sign_in_session(user: User) -> None:
    """Start a cookie session for the user (a fresh CSRF token too)."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["gen"] = user.session_generation
    session["csrf"] = secrets.token_urlsafe(24)


def sign_out(s: Session, user_id: int) -> None:
    """End this person's cookie sessions on the server (every copy of the cookie) and clear
    this one; their tokens stay valid."""
    user = s.get(User, user_id)
    if user is not None:
        user.session_generation += 1
    session.clear()


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
