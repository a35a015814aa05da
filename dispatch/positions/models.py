"""Where the team is (DESIGN §5 "Roster and positions (contract)"): the phones and tablets that
report for a member, every fix they sent (the tracks), each member's latest fix (the marker), and
geofence events at villages and shelters.

A fix older than the member's latest joins the track without moving the marker: `latest_positions`
holds the newest fix per member and is only ever moved forward (one conditional UPDATE).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow

DEVICE_KINDS = ("owntracks", "traccar")
SOURCES = ("owntracks", "owntracks_http", "osmand", "tablet")
GEOFENCE_EVENTS = ("enter", "leave")


class Device(Base):
    """A phone or tablet that reports one member's position.

    `code` is also its MQTT username (OwnTracks topics `owntracks/{code}/{device}`, ACL
    `owntracks/{code}/#`) and its OwnTracks HTTP Basic user. Secrets are random and long, so
    only their SHA-256 is kept (checked per request without a slow hash), except the MQTT
    password, kept in the broker's own "$7$" format for its password file.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           index=True)
    kind: Mapped[str] = mapped_column(String(16), default="owntracks")
    mqtt_password_hash: Mapped[str] = mapped_column(String(255))
    http_secret_sha256: Mapped[str] = mapped_column(String(64))
    # Traccar Client / OsmAnd send only an identifier: a long random one, kept as its SHA-256.
    traccar_id_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Position(Base):
    """One fix of a member's track. The same member and time twice is a repeat (a phone retries
    until it gets a 2xx): stored once."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("member_id", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lon: Mapped[float] = mapped_column()
    lat: Mapped[float] = mapped_column()
    accuracy_m: Mapped[float | None] = mapped_column()
    speed_mps: Mapped[float | None] = mapped_column()
    battery_pct: Mapped[float | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LatestPosition(Base):
    """Each member's newest fix: the marker on the map and the team board."""

    __tablename__ = "latest_positions"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           primary_key=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float] = mapped_column()
    lat: Mapped[float] = mapped_column()
    accuracy_m: Mapped[float | None] = mapped_column()
    speed_mps: Mapped[float | None] = mapped_column()
    battery_pct: Mapped[float | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(16))


class GeofenceEvent(Base):
    """A member entered or left a village or a shelter (from an OwnTracks transition, or from
    fixes crossing the place's fence)."""

    __tablename__ = "geofence_events"
    __table_args__ = (Index("ix_geofence_events_member_ts", "member_id", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    place: Mapped[str] = mapped_column(String(32))
    place_type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))


class Presence(Base):
    """Which fences a member is inside now (the state that geofence hysteresis needs)."""

    __tablename__ = "geofence_presence"
    __table_args__ = (UniqueConstraint("member_id", "place_type", "place"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    place: Mapped[str] = mapped_column(String(32))
    place_type: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
