"""Rows for the rota tests, written straight through the models (the members API is built
beside the rota): a team with squads, members with skills and certificates, template and rules.

The township used by the rota tests (Asia/Shanghai, 24-hour shifts changing at 08:00, squads A
and B alternating from the anchor 2026-07-01, so A serves 1 July 08:00 to 2 July 08:00 local):

    squad A: A1 boat, first aid · A2 boat · A3 first aid (certificate expired 2026-06-30)
             A4 C1 driving licence (expires 2026-07-01: valid until 2 July 00:00 local, the
             middle of A's shift from 1 July: it does not count for it)
    squad B: B1 boat, first aid, C1 · B2 boat, first aid · B3 C1
    no squad: C1 first aid (the township composite team's member, off the rota)

Rules: 2 × boat, 2 × first aid, 1 × C1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from dispatch.core.db import db
from dispatch.roster.models import (
    Leave,
    Member,
    MemberSkill,
    RotaSetting,
    Skill,
    Swap,
    Team,
)

ANCHOR = "2026-07-01"
# 1 July 2026, 10:00 Beijing time: in squad A's shift of 1 July 08:00 to 2 July 08:00.
NOW = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


def shift_start(day: int) -> datetime:
    """The start of the shift that begins at 08:00 Beijing time on `day` July 2026."""
    return datetime(2026, 7, day, 0, 0, tzinfo=UTC)


SKILLS = {"boat": ("舟艇操作", "Boat handling", True), "first_aid": ("急救", "First aid", True),
          "c1": ("C1驾照", "C1 driving licence", True), "rope": ("绳索救援", "Rope rescue", False)}
MEMBERS = {
    "A1": ("A", {"boat": date(2027, 1, 1), "first_aid": date(2027, 1, 1)}),
    "A2": ("A", {"boat": date(2027, 1, 1)}),
    "A3": ("A", {"first_aid": date(2026, 6, 30)}),
    "A4": ("A", {"c1": date(2026, 7, 1)}),
    "B1": ("B", {"boat": date(2027, 1, 1), "first_aid": date(2027, 1, 1),
                 "c1": date(2027, 1, 1)}),
    "B2": ("B", {"boat": date(2027, 1, 1), "first_aid": date(2027, 1, 1)}),
    "B3": ("B", {"c1": date(2027, 1, 1)}),
    "C1": (None, {"first_aid": date(2027, 1, 1)}),
}
RULES = [{"skill": "boat", "min": 2}, {"skill": "first_aid", "min": 2}, {"skill": "c1", "min": 1}]


def add_skill(s, code: str, name_zh: str = "", name_en: str = "",
              needs_certificate: bool = False) -> Skill:
    row = Skill(code=code, name_zh=name_zh or code, name_en=name_en or code,
                needs_certificate=needs_certificate)
    s.add(row)
    s.flush()
    return row


def add_team(s, code: str, parent: Team | None = None) -> Team:
    row = Team(code=code, name=f"{code}队", parent_id=parent.id if parent else None)
    s.add(row)
    s.flush()
    return row


def add_member(s, code: str, squad: Team | None = None, skills: dict | None = None,
               status: str = "off", team: Team | None = None, active: bool = True) -> Member:
    row = Member(code=code, name=f"队员{code}", team_id=team.id if team else None,
                 squad_id=squad.id if squad else None, status=status, active=active)
    s.add(row)
    s.flush()
    for skill_code, expires in (skills or {}).items():
        skill = s.query(Skill).filter_by(code=skill_code).one()
        s.add(MemberSkill(member_id=row.id, skill_id=skill.id, level=2, expires=expires))
    s.flush()
    return row


def set_value(s, key: str, value) -> None:
    row = s.get(RotaSetting, key)
    if row is None:
        s.add(RotaSetting(key=key, value=value, updated_by="test"))
    else:
        row.value = value
    s.flush()


def add_leave(s, member: str, start: datetime, end: datetime, reason: str = "") -> Leave:
    row = Leave(member_id=_id(s, member), start_at=start, end_at=end, reason=reason)
    s.add(row)
    s.flush()
    return row


def add_swap(s, member: str, stand_in: str, start: datetime, status: str = "approved",
             decided_at: datetime | None = None) -> Swap:
    row = Swap(member_id=_id(s, member), with_id=_id(s, stand_in), shift_start=start,
               status=status, decided_at=decided_at or NOW)
    s.add(row)
    s.flush()
    return row


def _id(s, code: str) -> int:
    return s.query(Member).filter_by(code=code).one().id


def township(*, template: bool = True, rules: bool = True) -> None:
    """The township of the module docstring."""
    with db.transaction() as s:
        for code, (zh, en, certificate) in SKILLS.items():
            add_skill(s, code, zh, en, certificate)
        team = add_team(s, "FIRE")
        squads = {"A": add_team(s, "A", team), "B": add_team(s, "B", team)}
        composite = add_team(s, "COMP")
        for code, (squad, skills) in MEMBERS.items():
            add_member(s, code, squads.get(squad), skills,
                       team=team if squad else composite)
        if template:
            set_value(s, "template", {"shift_h": 24, "change_at": "08:00",
                                      "squads": ["A", "B"], "anchor": ANCHOR})
        if rules:
            set_value(s, "rules", RULES)
