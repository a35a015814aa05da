"""Alerts, their history and CAP messages, threshold tables, webhook deliveries and village
broadcast terminals (DESIGN §5 "Alerts (contract)").

One active alert per (kind, subject) is the database's rule, not the service's: `active_key` is
"kind:subject" while the alert is active and NULL once it is closed, under a UNIQUE constraint
(both SQLite and PostgreSQL allow many NULLs), so two processes racing to raise the same alert
cannot both succeed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow


class Alert(Base):
    """One warning about one subject (a gauge, a village or a hazard zone), from raise to close."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    level: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_code: Mapped[str] = mapped_column(String(40), index=True)
    subject_name: Mapped[str] = mapped_column(String(128), default="")
    # "kind:subject_code" while active, NULL once closed (module docstring).
    active_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    villages: Mapped[list[str]] = mapped_column(JSON, default=list)
    people: Mapped[int] = mapped_column(default=0)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the level last rose (escalation timers count from here).
    level_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence: Mapped[list[dict]] = mapped_column(JSON, default=list)
    forecast: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Since when the condition has stayed below the kind's lowest level (hold-time clearing).
    below_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")
    escalation_step: Mapped[int] = mapped_column(default=0)
    # When the next escalation step is due (stored: timers survive a restart).
    escalation_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    cap_status: Mapped[str] = mapped_column(String(16), default="none")
    close_reason: Mapped[str] = mapped_column(Text, default="")
    # A person cleared or cancelled it while its rule still saw the condition: no new alert of
    # this kind and subject at this level or below until the rule sees it below (re-armed).
    holds_off: Mapped[bool] = mapped_column(default=False, index=True)


class AlertHistory(Base):
    """One step of an alert's life: a state or level change, an escalation, a delivery."""

    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class AlertMessage(Base):
    """One CAP 1.2 message of an alert (Alert, Update, AllClear Update, Cancel) as sent."""

    __tablename__ = "alert_messages"
    __table_args__ = (UniqueConstraint("alert_id", "n"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    n: Mapped[int] = mapped_column()
    identifier: Mapped[str] = mapped_column(String(200), unique=True)
    msg_type: Mapped[str] = mapped_column(String(16))
    response: Mapped[str] = mapped_column(String(16), default="")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    approved_by: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    xml: Mapped[str] = mapped_column(Text)


class VillageThreshold(Base):
    """A village's critical-rainfall table (DESIGN §5 thresholds JSON, validated)."""

    __tablename__ = "village_thresholds"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id", ondelete="CASCADE"),
                                            unique=True)
    table: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class HazardThreshold(Base):
    """A hazard zone's intensity-duration curves and slope-velocity thresholds."""

    __tablename__ = "hazard_thresholds"

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard_zones.id", ondelete="CASCADE"),
                                           unique=True)
    table: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class Delivery(Base):
    """One alert notification to one webhook (or the county), retried with backoff until sent
    or given up; kept for the alert's history and /metrics."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(500))
    body_format: Mapped[str] = mapped_column(String(8), default="json")
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Terminal(Base):
    """A village broadcast terminal (大喇叭): an MQTT login that may only read its village's
    warning topic."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    village_code: Mapped[str] = mapped_column(String(32), index=True)
    mqtt_password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


Index("ix_alert_deliveries_due", Delivery.state, Delivery.next_at)
