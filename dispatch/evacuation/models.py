"""Evacuation plans, one row per version (DESIGN §5 "Evacuation (contract)").

A version is immutable once stored: its whole plan document (the contract's JSON) is kept as it
was computed, so a diff, a sheet or an audit months later shows what the office saw. `version`
is UNIQUE: two processes that plan at once both try max + 1 and one retries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow


class EvacuationPlan(Base):
    """One version of the evacuation plan: its trigger, its inputs' key and the plan itself."""

    __tablename__ = "evacuation_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="hub")
    trigger_kind: Mapped[str] = mapped_column(String(16))
    trigger_ref: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(16), default="split")
    # A what-if for levels given by hand: never the live plan, marked as a drill everywhere.
    drill: Mapped[bool] = mapped_column(default=False)
    objective_person_s: Mapped[int] = mapped_column(BigInteger, default=0)
    to_move: Mapped[int] = mapped_column(default=0)
    placed: Mapped[int] = mapped_column(default=0)
    # What the live inputs looked like (levels, roads, shelters): the refresh job plans again
    # when they differ from the latest live version's.
    inputs_key: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
