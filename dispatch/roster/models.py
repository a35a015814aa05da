"""The composite rescue team (DESIGN §1, §5 "Roster and positions (contract)"): members merged
from several posts (多员合一), each with several skills (一专多能); teams and their squads; the
rota template, its coverage rules, leave and swaps.

A squad is a team whose `parent_id` names the team it belongs to: a member's squad must be a
squad of the member's team. The rota alternates the template's squads by code; a member counts
on a shift through their squad, minus leave, plus and minus approved swaps (dispatch.roster.rota).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow

POSTS = ("safety", "forestry", "fire", "water", "weather", "grid", "other")
EMPLOYMENTS = ("staff", "contract", "volunteer")
SQUAD_ROLES = ("rescue", "relief", "patrol", "enforcement", "service", "publicity")  # 六队一体
STATUSES = ("on_shift", "on_call", "off", "leave", "deployed")


class Skill(Base):
    """An entry of the skills catalogue (boat handling, first aid, C1 driving licence, …)."""

    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128), default="")
    # A skill that needs a certificate counts only while the member's certificate is unexpired.
    needs_certificate: Mapped[bool] = mapped_column(default=False)


class Team(Base):
    """A team (e.g. the township composite team), or a squad of one (`parent_id` set)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"),
                                                  index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Member(Base):
    """A member of the rescue team: post, employment, team and squad, the six uses they serve,
    duty status, and the user they sign in as (a team leader), if any."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    post: Mapped[str] = mapped_column(String(16), default="other")
    employment: Mapped[str] = mapped_column(String(16), default="staff")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"),
                                                index=True)
    squad_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"),
                                                 index=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="off")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                unique=True)
    # A member who left the team keeps their history (positions, audit); they are not listed.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MemberSkill(Base):
    """A member's skill: level 1–3 and, for a certified skill, the certificate's expiry."""

    __tablename__ = "member_skills"
    __table_args__ = (UniqueConstraint("member_id", "skill_id"),
                      CheckConstraint("level BETWEEN 1 AND 3", name="level_range"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="RESTRICT"),
                                          index=True)
    level: Mapped[int] = mapped_column(default=1)
    expires: Mapped[date | None] = mapped_column(Date)


class RotaSetting(Base):
    """The rota's template and coverage rules, one row per key ("template", "rules"), kept as
    the contract's JSON (GET/PUT /api/v1/rota/template and /rules)."""

    __tablename__ = "rota_settings"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class Leave(Base):
    """A member's leave: off the rota from `start` to `end` (UTC, end exclusive)."""

    __tablename__ = "rota_leave"
    __table_args__ = (CheckConstraint("end_at > start_at", name="leave_order"),
                      Index("ix_rota_leave_member_start", "member_id", "start_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Swap(Base):
    """On the shift starting at `shift_start`, `with` serves instead of `member`. A swap that
    opens a coverage gap waits (`pending`) for a commander's approval."""

    __tablename__ = "rota_swaps"
    __table_args__ = (UniqueConstraint("member_id", "shift_start"),
                      CheckConstraint("member_id <> with_id", name="swap_two_people"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    with_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                         index=True)
    shift_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), default="approved")
    gaps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
