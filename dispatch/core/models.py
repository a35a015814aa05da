"""Kernel models: people, gateways, tokens, sign-in attempts, the audit chain, worker heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow


class User(Base):
    """A person who signs in: office staff, team leaders, keepers."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    # A password printed by the CLI is one-time: the holder must choose a new one first.
    must_change_password: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The cookie is signed, not stored: a cookie counts only while it carries the current
    # generation, which sign-out, a password change or reset and disabling bump (auth.py).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")


class Gateway(Base):
    """A sensor gateway: an MQTT login confined to its own topics, and an HTTP token."""

    __tablename__ = "gateways"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    # Mosquitto password-file format ($7$ PBKDF2-SHA512), written into the broker's passwd file.
    mqtt_password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Online state from the retained status topic and the gateway's last will; the silence job
    # sets it false when nothing arrived for telemetry.gateway_silence_s. None: never reported.
    online: Mapped[bool | None] = mapped_column()
    # Why it is offline: reported (status online false, e.g. its last will) or silent.
    offline_reason: Mapped[str | None] = mapped_column(String(16))
    battery_v: Mapped[float | None] = mapped_column()


class ApiToken(Base):
    """A bearer token (only its SHA-256 is kept) for a user or a gateway."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    gateway_id: Mapped[int | None] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Gateway tokens do not expire (a field device cannot sign in again); user tokens do.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(default=False)


class LoginFailure(Base):
    """A failed sign-in, for the rate limit (kept in the database so every web process sees it)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One link of the append-only, hash-chained audit log (who, when, what, before/after)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(128))
    # Canonical JSON text, hashed exactly as stored.
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


Index("ix_audit_log_entity", AuditEntry.entity_type, AuditEntry.entity_id)


class AuditHead(Base):
    """The chain's single head row: last sequence number and hash; appends lock it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class Heartbeat(Base):
    """A background service's last sign of life, for /readyz in other processes."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    mqtt_connected: Mapped[bool] = mapped_column(default=False)
    pid: Mapped[int] = mapped_column(default=0)
