"""Realtime: the Socket.IO server, `notify()` and the authenticated `/live` namespace.

Every event carries an `id` (sortable) and a `ts`; the last events are kept in a ring buffer so a
client that reconnects sends `auth: {"since": id}` (or emits `resume`) and gets what it missed in
the rooms it may see. Rooms (DESIGN §5): `office`, `team:{id}`, `village:{code}`.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import Flask, current_app, request, session
from flask_socketio import SocketIO, join_room
from sqlalchemy import select

from dispatch.core.choices import OFFICE_ROLES, PERSON_ROLES, Role
from dispatch.core.db import db
from dispatch.core.errors import Forbidden
from dispatch.core.gate import SignInDeadline
from dispatch.core.models import ApiToken, User

log = logging.getLogger(__name__)

NAMESPACE = "/live"
# Every signed-in person's room: the township's picture, shown on pages open to every role (the
# map, sensors, readings). `office` carries what only office roles see.
TOWNSHIP = "township"
REPLAY_BUFFER = 2000

socketio = SocketIO()


@dataclass(frozen=True)
class LiveEvent:
    """One event as sent: kept for replay."""

    id: str
    room: str
    name: str
    payload: dict[str, Any]


_counter = itertools.count(1)
_recent: deque[LiveEvent] = deque(maxlen=REPLAY_BUFFER)
_recent_lock = threading.Lock()
_principals: dict[str, Any] = {}
# How each socket signed in, to check again: its app and ("token", digest) or ("session", user
# id, generation). The app too: tests run several apps (databases) in one process.
_credentials: dict[str, tuple[Flask, tuple]] = {}
# Open sockets are checked against their sign-in this often: a sign-out, a password change or
# reset, a disabled person or a revoked token ends them within this time.
REVALIDATE_S = 15.0
_sweeper: dict[str, Any] = {}
_sweeper_lock = threading.Lock()
# Engine.IO connections that have not signed in to /live yet, closed when late (the gate).
_sign_in: SignInDeadline | None = None


def _event_id() -> str:
    # Milliseconds first so ids sort by time across processes; pid and counter make them unique.
    # Fixed widths: ids compare as strings, and "10" sorts before "f" (a replay after the 16th
    # event of one millisecond lost events when the counter was unpadded).
    return f"{time.time_ns() // 1_000_000:013d}-{os.getpid():08x}-{next(_counter):012x}"


def notify(event: str, data: dict[str, Any], rooms: Iterable[str] = (TOWNSHIP,)) -> str:
    """Send an event to rooms of `/live`, stamped with an id and a timestamp; returns the id."""
    event_id = _event_id()
    payload = {"id": event_id, "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
               **data}
    for room in rooms:
        with _recent_lock:
            _recent.append(LiveEvent(event_id, room, event, payload))
        socketio.emit(event, payload, to=room, namespace=NAMESPACE)
    return event_id


def missed_since(since: str, rooms: set[str]) -> list[LiveEvent]:
    """Events after `since` in the given rooms, oldest first, each once."""
    with _recent_lock:
        events = [e for e in _recent if e.id > since and e.room in rooms]
    seen: set[str] = set()
    result = []
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            result.append(event)
    return result


def rooms_for(principal) -> set[str]:
    """The rooms a principal joins on connect: every signed-in person the township's picture
    (the map, sensors, readings: what every role's pages show), office roles also `office`,
    depot keepers `depot` (the depot's notices: overdue check-outs, expiring items)."""
    rooms = {TOWNSHIP}
    if principal.role in {str(r) for r in OFFICE_ROLES}:
        rooms.add("office")
    if principal.role == Role.KEEPER:
        rooms.add("depot")
    return rooms


def socket_principal():
    """The principal of the current socket (set at connect)."""
    return _principals.get(request.sid)


def live_event(name: str, *allowed: str) -> Callable[[Callable], Callable]:
    """Register a client event on `/live` open only to the given roles."""
    def register(handler: Callable) -> Callable:
        @wraps(handler)
        def guarded(*args):
            principal = socket_principal()
            if principal is None or principal.role not in allowed:
                return {"error": "forbidden", "message": str(Forbidden.message)}
            return handler(principal, *args)

        guarded._access = tuple(allowed)  # type: ignore[attr-defined]
        socketio.on_event(name, guarded, namespace=NAMESPACE)
        return guarded

    return register


def _authenticate(auth: Any) -> tuple[Any, tuple | None]:
    """The principal of a connecting socket and how it signed in (None, None: refused)."""
    from dispatch.core.auth import principal_from_session, principal_from_token, token_digest

    s = db.session
    try:
        token = auth.get("token") if isinstance(auth, dict) else None
        if isinstance(token, str) and token:
            return principal_from_token(s, token), ("token", token_digest(token))
        principal = principal_from_session(s)
        gen = session.get("gen") if principal is not None else None
        return principal, ("session", principal.id if principal else None, gen)
    finally:
        s.close()


def revoked_sockets(s, credentials: dict[str, tuple]) -> set[str]:
    """The sockets whose sign-in no longer holds: the person signed out, changed or was given
    a new password, was disabled, or the token was revoked or expired."""
    now = datetime.now(UTC)
    digests = {c[1] for c in credentials.values() if c[0] == "token"}
    token_user = {digest: user_id for digest, user_id, revoked, expires in s.execute(
        select(ApiToken.token_hash, ApiToken.user_id, ApiToken.revoked, ApiToken.expires_at)
        .where(ApiToken.token_hash.in_(digests)))
        if not revoked and (expires is None or expires > now)} if digests else {}
    ids = {c[1] for c in credentials.values() if c[0] == "session"} | set(token_user.values())
    people = {uid: (active, gen) for uid, active, gen in s.execute(
        select(User.id, User.active, User.session_generation).where(User.id.in_(ids)))}
    revoked = set()
    for sid, credential in credentials.items():
        if credential[0] == "token":
            person = people.get(token_user.get(credential[1]))
            ok = person is not None and person[0]
        else:
            person = people.get(credential[1])
            ok = person is not None and person[0] and person[1] == credential[2]
        if not ok:
            revoked.add(sid)
    return revoked


def sweep(app: Flask) -> int:
    """Disconnect the app's sockets whose sign-in no longer holds; returns how many."""
    credentials = {sid: c for sid, (owner, c) in list(_credentials.items()) if owner is app}
    if not credentials:
        return 0
    with app.app_context():
        try:
            revoked = revoked_sockets(db.session, credentials)
        finally:
            db.session.close()
    for sid in revoked:
        log.info("live: closing a socket of %s: its sign-in no longer holds",
                 getattr(_principals.get(sid), "name", "?"))
        socketio.server.disconnect(sid, namespace=NAMESPACE)
    return len(revoked)


def _sweep_forever() -> None:
    while True:
        socketio.sleep(REVALIDATE_S)
        for app in {owner for owner, _ in list(_credentials.values())}:
            try:
                sweep(app)
            except Exception:
                log.exception("live: checking open sockets failed; trying again")


def _start_sweeper() -> None:
    """Once per process, on the first connection (the factory starts no threads)."""
    with _sweeper_lock:
        if "task" not in _sweeper:
            _sweeper["task"] = socketio.start_background_task(_sweep_forever)


def _replay(principal, since: Any) -> None:
    if not isinstance(since, str):
        return
    for event in missed_since(since, rooms_for(principal)):
        socketio.emit(event.name, event.payload, to=request.sid, namespace=NAMESPACE)


def _on_connect(auth=None):
    principal, credential = _authenticate(auth)
    if principal is None or principal.must_change_password or principal.role == "gateway":
        raise ConnectionRefusedError("unauthorized")
    _principals[request.sid] = principal
    _credentials[request.sid] = (current_app._get_current_object(), credential)
    _start_sweeper()
    if _sign_in is not None:
        _sign_in.signed_in(_eio_sid())
    for room in rooms_for(principal):
        join_room(room)
    socketio.emit("hello", {"user": principal.name, "role": principal.role,
                            "rooms": sorted(rooms_for(principal))},
                  to=request.sid, namespace=NAMESPACE)
    if isinstance(auth, dict):
        _replay(principal, auth.get("since"))
    return True


def _on_disconnect(*_args):
    _principals.pop(request.sid, None)
    _credentials.pop(request.sid, None)
    if _sign_in is not None:  # leaving /live on a connection that stays open: sign in again
        _sign_in.rearm(_eio_sid())


def _eio_sid() -> str | None:
    return socketio.server.manager.eio_sid_from_sid(request.sid, NAMESPACE)


def _own_origin_and(extra: list[str]) -> Callable[[str, dict], bool]:
    """Engine.IO's origin check: the request's own origin and the configured extra ones."""
    def allowed(origin: str, environ: dict) -> bool:
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin in (own, *extra)

    return allowed


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    queue = settings.realtime.message_queue or None
    # Engine.IO checks the Origin of browser connections against this list; None means the
    # hub's own origin only (an empty list would switch the check off and let any site's page
    # use a signed-in cookie). Clients that send no Origin (tablet apps, tools) use a token.
    extra = [o.strip().rstrip("/") for o in settings.web.allowed_origins.split(",") if o.strip()]
    socketio.init_app(app, async_mode="threading", message_queue=queue,
                      channel=settings.realtime.channel,
                      cors_allowed_origins=_own_origin_and(extra) if extra else None,
                      logger=False, engineio_logger=False)
    global _sign_in
    _sign_in = SignInDeadline(float(settings.web.live_auth_timeout_s))
    _sign_in.install(socketio.server)
    socketio.on_event("connect", _on_connect, namespace=NAMESPACE)
    socketio.on_event("disconnect", _on_disconnect, namespace=NAMESPACE)

    @live_event("resume", *PERSON_ROLES)
    def _resume(principal, data=None):
        _replay(principal, (data or {}).get("since") if isinstance(data, dict) else None)
        return {"ok": True}
