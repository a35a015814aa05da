"""The phones that report members' positions: registering them (`rescuehub device add`), their
MQTT logins for the managed broker, and finding the device (or, for a tablet, the member) behind
a message.

A device's `code` is its MQTT username, the `{user}` of its OwnTracks topics and its OwnTracks
HTTP Basic user. Its secrets are random and shown once: the MQTT password (kept in the broker's
"$7$" form for its password file), the OwnTracks HTTP secret and, for Traccar Client / OsmAnd,
the device identifier (both kept as SHA-256: long random secrets need no slow hash).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from alerts.models import Terminal
from dispatch.core import audit
from dispatch.core.auth import is_reserved_name
from dispatch.core.broker import BrokerAccount, BrokerError, check_username
from dispatch.core.db import db
from dispatch.core.errors import BadRequest, Conflict, NotFound
from dispatch.core.models import Gateway
from dispatch.core.settings import Settings
from dispatch.positions.models import DEVICE_KINDS, Device
from dispatch.roster.models import Member

log = logging.getLogger(__name__)

# Terminals' logins are "T-{village}-{n}" (alerts.channels): a phone may not take that form.
TERMINAL_PREFIX = "t-"


def secret_digest(secret: str) -> str:
    """SHA-256 of a device secret (HTTP secret or Traccar identifier), as stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Reporter:
    """Whom a message reports for: the member, and the device when there is one (a tablet's
    own fix comes from its signed-in user, with no device)."""

    member_id: int
    member: str
    name: str
    status: str
    device_id: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class Registered:
    """A new device and its secrets, to be shown once: the MQTT password and HTTP secret
    (OwnTracks) or the device identifier (Traccar Client / OsmAnd)."""

    code: str
    member: str
    kind: str
    mqtt_password: str | None
    http_secret: str | None
    traccar_id: str | None


_REPORTER = select(Device.id, Device.code, Member.id, Member.code, Member.name,
                   Member.status).join(Member, Member.id == Device.member_id).where(
    Device.active.is_(True), Member.active.is_(True))


def _reporter(row) -> Reporter:
    device_id, code, member_id, member, name, status = row
    return Reporter(member_id, member, name, status, device_id, code)


def owntracks_devices(session: Session, codes: Iterable[str]) -> dict[str, Reporter]:
    """The active OwnTracks devices (of active members) among these logins, by login."""
    codes = sorted(set(codes))
    found: dict[str, Reporter] = {}
    for start in range(0, len(codes), 500):
        rows = session.execute(_REPORTER.where(Device.kind == "owntracks",
                                               Device.code.in_(codes[start:start + 500])))
        found.update((row[1], _reporter(row)) for row in rows)
    return found


def owntracks_by_secret(session: Session, code: str, secret: str) -> Reporter | None:
    """The OwnTracks device whose HTTP Basic user and secret these are, or None."""
    row = session.execute(_REPORTER.add_columns(Device.http_secret_sha256).where(
        Device.kind == "owntracks", Device.code == code)).first()
    # Compared in constant time; an unknown user still costs the digest.
    digest = secret_digest(secret)
    if row is None or not hmac.compare_digest(digest, row[-1]):
        return None
    return _reporter(row[:-1])


def traccar_by_identifier(session: Session, identifier: str) -> Reporter | None:
    """The Traccar Client / OsmAnd device with this identifier, or None."""
    row = session.execute(_REPORTER.where(
        Device.kind == "traccar",
        Device.traccar_id_sha256 == secret_digest(identifier))).first()
    return None if row is None else _reporter(row)


def member_of_user(session: Session, user_id: int) -> Reporter | None:
    """The active member a signed-in person is (Member.user_id), for the tablet's own fix."""
    row = session.execute(select(Member.id, Member.code, Member.name, Member.status).where(
        Member.user_id == user_id, Member.active.is_(True))).first()
    return None if row is None else Reporter(*row)


def mark_seen(session: Session, device_ids: Iterable[int], now) -> None:
    """Note when these devices were last heard from."""
    ids = sorted(set(device_ids))
    if ids:
        session.execute(update(Device).where(Device.id.in_(ids)).values(last_seen_at=now))


# --- registering ---------------------------------------------------------------------------------

def check_device_code(session: Session, code: str, settings: Settings) -> str:
    """A login a new device can take: a valid MQTT username, none of the hub's own names, no
    gateway's, terminal's or other device's (any case), and not a terminal's form."""
    try:
        check_username(code)
    except BrokerError as exc:
        raise BadRequest(exc.args[0], code="bad_name") from None
    lower = code.lower()
    if is_reserved_name(code, settings) or lower.startswith(TERMINAL_PREFIX):
        raise BadRequest(_l("%(name)s is reserved for the hub's own MQTT logins or the village "
                            "terminals: choose another device name.", name=code),
                         code="reserved_name")
    for model in (Gateway, Terminal, Device):
        if session.scalar(select(model.id).where(func.lower(model.code) == lower)):
            raise Conflict(_l("The MQTT login %(name)s is taken already (a gateway, a terminal "
                              "or another device): choose another device name.", name=code),
                           code="name_taken")
    return code


def _free_name(session: Session, member: Member, settings: Settings) -> str:
    """The member's next device name: "{member}-{n}", the first n nobody has."""
    n = 1
    while True:
        name = f"{member.code}-{n}"
        try:
            return check_device_code(session, name, settings)
        except Conflict:
            n += 1


def register_device(session: Session, member_code: str, *, kind: str, name: str | None,
                    settings: Settings, actor: str,
                    mqtt_hash: Callable[[str], str]) -> Registered:
    """Register a phone for a member (audited, without its secrets); the secrets come back
    once, in the answer."""
    if kind not in DEVICE_KINDS:
        raise BadRequest(_l("A device is one of %(kinds)s.", kinds=", ".join(DEVICE_KINDS)),
                         code="bad_kind")
    member = session.scalar(select(Member).where(func.lower(Member.code) == member_code.lower()))
    if member is None or not member.active:
        raise NotFound(_l("No team member %(code)s: give the code of an active member.",
                          code=member_code), code="no_member")
    code = check_device_code(session, name, settings) if name else _free_name(
        session, member, settings)
    mqtt_password, http_secret = secrets.token_urlsafe(18), secrets.token_urlsafe(24)
    traccar_id = secrets.token_hex(16) if kind == "traccar" else None
    device = Device(code=code, member_id=member.id, kind=kind,
                    # A Traccar device has no MQTT login nor HTTP Basic secret: the values kept
                    # belong to secrets nobody is shown, and its login is left out of the broker.
                    mqtt_password_hash=mqtt_hash(mqtt_password),
                    http_secret_sha256=secret_digest(http_secret),
                    traccar_id_sha256=secret_digest(traccar_id) if traccar_id else None)
    session.add(device)
    session.flush()
    audit.record(session, actor=actor, action="device.create", entity_type="device",
                 entity_id=code, after={"member": member.code, "kind": kind})
    owntracks = kind == "owntracks"
    return Registered(code, member.code, kind, mqtt_password if owntracks else None,
                      http_secret if owntracks else None, traccar_id)


def disable_device(session: Session, code: str, *, actor: str) -> bool:
    """Retire a device (audited): its login leaves the broker files, its HTTP secret and
    identifier stop working; False when it was retired already."""
    device = session.scalar(select(Device).where(func.lower(Device.code) == code.lower()))
    if device is None:
        raise NotFound(_l("No device %(code)s.", code=code), code="no_device")
    if not device.active:
        return False
    device.active = False
    audit.record(session, actor=actor, action="device.disable", entity_type="device",
                 entity_id=device.code, before={"active": True}, after={"active": False})
    return True


def devices(session: Session) -> Sequence:
    """Every device with its member's code, by member and login."""
    return session.execute(select(Device.code, Member.code, Device.kind, Device.active,
                                  Device.created_at, Device.last_seen_at)
                           .join(Member, Member.id == Device.member_id)
                           .order_by(Member.code, Device.code)).all()


def device_accounts(_settings: Settings) -> list[BrokerAccount]:
    """The MQTT logins of the active OwnTracks devices of active members, each confined to its
    own OwnTracks tree (registered with dispatch.core.runtime.add_broker_accounts)."""
    accounts = []
    rows = db.session.execute(select(Device.code, Device.mqtt_password_hash)
                              .join(Member, Member.id == Device.member_id)
                              .where(Device.active.is_(True), Member.active.is_(True),
                                     Device.kind == "owntracks").order_by(Device.code))
    for code, digest in rows:
        try:
            accounts.append(BrokerAccount(code, digest, "device"))
        except (ValueError, BrokerError):
            log.warning("device %s cannot be a broker login (bad name or hash); left out", code)
    return accounts
