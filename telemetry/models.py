"""Telemetry: the sensor registry (readings, sums and dead letters follow with ingest)."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow
from maps.models import SRID


class Sensor(Base):
    """A field instrument owned by one gateway, watching a village or a hazard zone."""

    __tablename__ = "sensors"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(16))
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id", ondelete="SET NULL"))
    hazard_id: Mapped[int | None] = mapped_column(
        ForeignKey("hazard_zones.id", ondelete="SET NULL"))
    location = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)
    # The instrument's hard limits: a reading outside is refused as out_of_range (DESIGN §5).
    range_min: Mapped[float] = mapped_column()
    range_max: Mapped[float] = mapped_column()
    interval_s: Mapped[int] = mapped_column(default=300)
    # QARTOD-style parameters for quality control (telemetry.qc).
    qc: Mapped[dict] = mapped_column(JSON, default=dict)
    retired: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_ts: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_value: Mapped[float | None] = mapped_column()
    last_flag: Mapped[str | None] = mapped_column(String(16))
    # Raised by every change to its stored readings, so a process caching them (quality-control
    # history, rolling sums: telemetry.sensor_memory) knows when another process changed them.
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    # new (never reported), reporting, missing (silent longer than the QC silence limit).
    status: Mapped[str] = mapped_column(String(16), default="new")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reading(Base):
    """One stored reading; (sensor, ts) is unique so a repeated delivery is a no-op."""

    __tablename__ = "readings"
    __table_args__ = (UniqueConstraint("sensor_id", "ts", name="uq_readings_sensor_ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[float] = mapped_column()
    # QARTOD-style flag: good, suspect, fail (telemetry.qc); `missing` is never stored.
    flag: Mapped[str] = mapped_column(String(8), default="good")
    qc_reasons: Mapped[str] = mapped_column(String(200), default="")
    seq: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReadingHour(Base):
    """One sensor's readings over one hour (hour, hour + 1 h], kept for ever (raw rows are pruned
    after telemetry.raw_retention_days). For a rain gauge `total` is its rain and `covered_s` the
    time its usable reports stand for (telemetry.rain); fail readings are counted, not summed."""

    __tablename__ = "reading_hours"

    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column()
    usable: Mapped[int] = mapped_column()
    total: Mapped[float] = mapped_column()
    minimum: Mapped[float | None] = mapped_column()
    maximum: Mapped[float | None] = mapped_column()
    last: Mapped[float | None] = mapped_column()
    covered_s: Mapped[float] = mapped_column(default=0.0)


class ReadingHourDirty(Base):
    """An hour whose readings changed since it was last rolled up (written in the same
    transaction as the readings, so a crash never loses a roll-up)."""

    __tablename__ = "reading_hours_dirty"

    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeadLetter(Base):
    """A rejected message or reading, kept with its raw payload and a machine-readable reason
    (or, reason `over_quota`, a count of one gateway's rejections whose payloads were not kept)."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    topic: Mapped[str] = mapped_column(String(200))
    gateway: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(String(500), default="")
    sensor_code: Mapped[str | None] = mapped_column(String(64))
    # Position in a batch; None when the whole message was refused.
    item: Mapped[int | None] = mapped_column()
    # The raw payload, cut at the ingest limit (a too_large one keeps its first bytes).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(160))
    resolution: Mapped[str | None] = mapped_column(String(32))
    # over_quota only: how many rejections (and payload bytes) of its gateway and minute this
    # row stands for; their payloads were not kept (telemetry.quota).
    dropped_count: Mapped[int | None] = mapped_column()
    dropped_bytes: Mapped[int | None] = mapped_column(BigInteger)
