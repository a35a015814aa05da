"""The roster's entries in the kernel's code directory (dispatch.core.directory): a member or a
team named by code, as a depot check-out names its holder. Codes are compared without case:
they are scanned from labels (DESIGN §5 "Depot")."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from dispatch.core import directory
from dispatch.roster.models import Member, Team


def member_exists(session: Session, code: str) -> bool:
    """Whether an active member has this code."""
    return session.scalar(select(Member.id).where(
        func.upper(Member.code) == code.upper(), Member.active.is_(True)).limit(1)) is not None


def team_exists(session: Session, code: str) -> bool:
    """Whether a team or squad has this code."""
    return session.scalar(select(Team.id).where(
        func.upper(Team.code) == code.upper()).limit(1)) is not None


def describe_member(session: Session, code: str) -> directory.Entry | None:
    """An active member's code, name and team (None: no such active member)."""
    row = session.execute(
        select(Member.code, Member.name, Team.name).outerjoin(Team, Team.id == Member.team_id)
        .where(func.upper(Member.code) == code.upper(), Member.active.is_(True)).limit(1)).first()
    return None if row is None else directory.Entry(row[0], row[1], row[2] or "")


def describe_team(session: Session, code: str) -> directory.Entry | None:
    """A team's (or squad's) code and name, and the team a squad belongs to."""
    parent = aliased(Team)
    row = session.execute(
        select(Team.code, Team.name, parent.name).outerjoin(parent, parent.id == Team.parent_id)
        .where(func.upper(Team.code) == code.upper()).limit(1)).first()
    return None if row is None else directory.Entry(row[0], row[1], row[2] or "")


def register() -> None:
    """Add members and teams to the directory."""
    directory.register("member", member_exists, describe_member)
    directory.register("team", team_exists, describe_team)
