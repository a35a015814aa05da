"""Members, the skills catalogue, teams and squads as services (DESIGN §5 "Roster and positions
(contract)"): plain functions taking a session, every change audited (before and after) in the
caller's transaction; the CSV import of members (all rows or none); the demo roster's loader.

The checks themselves are pure (dispatch.roster.members); this module gives them what is
registered, turns their problems into the request's language and stores what passed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatch.core import audit, tabular
from dispatch.core.db import utcnow
from dispatch.core.errors import BadRequest, Conflict, HubError, NotFound, parameter_error
from dispatch.core.models import User
from dispatch.core.tabular import ImportRejected, RowError, RowProblem
from dispatch.roster import members as checks
from dispatch.roster.choices import DutyStatus
from dispatch.roster.members import (
    Known,
    MemberFields,
    Problem,
    Refused,
    SkillFields,
    SkillHeld,
)
from dispatch.roster.models import Member, MemberSkill, Skill, Team

# The most rows one member import takes (a prefecture has 1,248 members).
MAX_ROWS = 5000
# How far ahead `?expiring=` looks at the most (days).
MAX_EXPIRING_DAYS = 3660

# Each problem's reason in the reader's language (dispatch.roster.members.MESSAGES: English).
WHY = {
    "required": _l("is required"),
    "not_text": _l("must be text"),
    "not_a_list": _l("must be a list"),
    "not_an_object": _l("must be an object"),
    "not_a_boolean": _l("must be true or false"),
    "bad_code": _l("must be a code of 1-%(max)d characters: ASCII letters, digits, “-”, “_” "
                   "and “.”, starting with a letter or digit"),
    "too_long": _l("is longer than %(max)d characters"),
    "control_character": _l("must not hold control characters"),
    "bad_phone": _l("must be a phone number: digits, with an optional leading + and spaces or "
                    "hyphens between groups"),
    "not_a_choice": _l("must be one of %(choices)s"),
    "not_null": _l("cannot be cleared: leave it out to keep it"),
    "code_changed": _l("cannot change (it is %(code)s): add a new one instead"),
    "unknown_team": _l("names no team (%(code)s)"),
    "is_a_squad": _l("%(code)s is a squad: give its team here and the squad in squad"),
    "unknown_squad": _l("names no squad (%(code)s)"),
    "not_a_squad": _l("%(code)s is a team, not a squad"),
    "two_squads": _l("must be one squad: a member is in one squad only"),
    "squad_without_team": _l("needs the member's team: squad %(code)s is a squad of %(team)s"),
    "squad_of_other_team": _l("%(code)s is a squad of %(parent)s, not of the member's team "
                              "%(team)s"),
    "unknown_role": _l("must be one of %(choices)s"),
    "duplicate": _l("is listed twice"),
    "unknown_skill": _l("names no skill of the catalogue (%(code)s)"),
    "bad_level": _l("must be 1, 2 or 3"),
    "not_a_date": _l("must be a date as YYYY-MM-DD"),
    "needs_expiry": _l("is required: %(skill)s needs a certificate, and a certificate has an "
                       "expiry date"),
    "unknown_user": _l("names no user (%(name)s)"),
    "bad_skill_cell": _l("must be skill:level:expires, e.g. boat:2:2027-05-01"),
    "unknown_parent": _l("names no team (%(code)s)"),
    "parent_is_squad": _l("%(code)s is a squad itself: a squad belongs to a team"),
}


class BadFields(HubError):
    """A body with several bad fields: 422 naming each (`fields`)."""

    status = 422
    code = "bad_fields"
    message = _l("Several fields are not valid: fix each one listed.")


def why(problem: Problem) -> str:
    """A problem's reason in the request's language."""
    text = str(WHY[problem.code])
    return text % dict(problem.params) if problem.params else text


def _listed(problems: Iterable[Problem]) -> list[dict[str, str]]:
    return [{"field": p.field, "code": p.code, "why": why(p)} for p in problems]


def refusal(refused: Refused) -> HubError:
    """One bad field: 400 `bad_field` naming it; several: 422 `bad_fields` naming each."""
    listed = _listed(refused.problems)
    if len(listed) == 1:
        only = listed[0]
        return BadRequest(_l("%(field)s: %(problem)s", field=only["field"], problem=only["why"]),
                          code="bad_field", details={"field": only["field"], "fields": listed})
    return BadFields(_l("%(count)d fields are not valid: fix each one listed.",
                        count=len(listed)), details={"fields": listed})


def _checked(check, *args, **kwargs):
    try:
        return check(*args, **kwargs)
    except Refused as refused:
        raise refusal(refused) from None


# --- what is registered ---------------------------------------------------------------------------

def known(session: Session) -> Known:
    """The skills, teams and users a member's body may name."""
    teams = session.execute(select(Team.id, Team.code, Team.parent_id)).all()
    codes = {tid: code for tid, code, _parent in teams}
    return Known(
        skills=dict(session.execute(select(Skill.code, Skill.needs_certificate)).all()),
        teams={code: codes.get(parent) if parent else None for _tid, code, parent in teams},
        users=set(session.scalars(select(User.username))))


@dataclass(frozen=True)
class _Names:
    """Codes and usernames by id, to describe many members in a few queries."""

    skills: dict[int, str]
    teams: dict[int, str]
    users: dict[int, str]


def _names(session: Session, rows: Sequence[Member]) -> _Names:
    user_ids = {m.user_id for m in rows if m.user_id}
    users = dict(session.execute(select(User.id, User.username).where(
        User.id.in_(user_ids))).all()) if user_ids else {}
    return _Names(skills=dict(session.execute(select(Skill.id, Skill.code)).all()),
                  teams=dict(session.execute(select(Team.id, Team.code)).all()), users=users)


def _held(session: Session, member_ids: Sequence[int]) -> dict[int, list[MemberSkill]]:
    held: dict[int, list[MemberSkill]] = defaultdict(list)
    # In chunks: a bound parameter list has limits (SQLite: 32,766 variables).
    for start in range(0, len(member_ids), 1000):
        chunk = member_ids[start:start + 1000]
        for row in session.scalars(select(MemberSkill).where(
                MemberSkill.member_id.in_(chunk)).order_by(MemberSkill.id)):
            held[row.member_id].append(row)
    return held


def _fields(member: Member, held: Sequence[MemberSkill], names: _Names) -> MemberFields:
    return MemberFields(
        code=member.code, name=member.name, phone=member.phone or "", post=member.post,
        employment=member.employment,
        team=names.teams.get(member.team_id) if member.team_id else None,
        squad=names.teams.get(member.squad_id) if member.squad_id else None,
        roles=tuple(member.roles or ()),
        skills=tuple(SkillHeld(names.skills[h.skill_id], h.level, h.expires) for h in held),
        status=member.status, user=names.users.get(member.user_id) if member.user_id else None)


def describe_all(session: Session, rows: Sequence[Member]) -> list[dict[str, Any]]:
    """Members as the contract writes them."""
    names = _names(session, rows)
    held = _held(session, [m.id for m in rows])
    return [_fields(m, held.get(m.id, ()), names).as_json() for m in rows]


def describe(session: Session, member: Member) -> dict[str, Any]:
    """One member as the contract writes it."""
    return describe_all(session, [member])[0]


def _current(session: Session, member: Member) -> MemberFields:
    return _fields(member, _held(session, [member.id]).get(member.id, ()),
                   _names(session, [member]))


# --- members ----------------------------------------------------------------------------------

def find(session: Session, code: str) -> Member:
    """An active member by code (404 otherwise: a member who left is not listed)."""
    member = session.scalar(select(Member).where(Member.code == code, Member.active.is_(True)))
    if member is None:
        raise NotFound(_l("There is no member with the code %(code)s.", code=code),
                       code="not_found")
    return member


def _team_or_squad(session: Session, code: str, parameter: str) -> Team:
    team = session.scalar(select(Team).where(Team.code == code))
    if team is None:
        raise parameter_error(parameter, _l("names no team (%(code)s)", code=code))
    return team


def _skill_filter(session: Session, code: str) -> Skill:
    skill = session.scalar(select(Skill).where(Skill.code == code))
    if skill is None:
        raise parameter_error("skill", _l("names no skill of the catalogue (%(code)s)",
                                          code=code))
    return skill


@dataclass(frozen=True)
class MemberFilter:
    """What GET /api/v1/members narrows the list to (None: no filter)."""

    team: str | None = None
    squad: str | None = None
    skill: str | None = None
    status: str | None = None
    q: str | None = None
    expiring: int | None = None


def listing(session: Session, wanted: MemberFilter, *, today: date) -> list[dict[str, Any]]:
    """Active members, by code, narrowed by `wanted`; `expiring` keeps members holding a
    certificate that expires within that many days of `today`, or has expired."""
    query = select(Member).where(Member.active.is_(True)).order_by(Member.code)
    if wanted.team:
        team = _team_or_squad(session, wanted.team, "team")
        query = query.where((Member.squad_id if team.parent_id else Member.team_id) == team.id)
    if wanted.squad:
        query = query.where(Member.squad_id == _team_or_squad(session, wanted.squad,
                                                              "squad").id)
    held = select(MemberSkill.id).where(MemberSkill.member_id == Member.id)
    if wanted.skill:
        held = held.where(MemberSkill.skill_id == _skill_filter(session, wanted.skill).id)
    if wanted.expiring is not None:
        held = held.where(MemberSkill.expires.is_not(None),
                          MemberSkill.expires <= today + timedelta(days=wanted.expiring))
    if wanted.skill or wanted.expiring is not None:
        query = query.where(exists(held))
    if wanted.status:
        query = query.where(Member.status == wanted.status)
    if wanted.q:
        text = wanted.q.strip().lower()
        query = query.where(or_(func.lower(Member.code).contains(text, autoescape=True),
                                Member.name.contains(wanted.q.strip(), autoescape=True),
                                Member.phone.contains(text, autoescape=True)))
    return describe_all(session, session.scalars(query).all())


def _user_id(session: Session, member: Member, username: str | None) -> int | None:
    if username is None:
        return None
    user_id = session.scalar(select(User.id).where(User.username == username))
    others = select(Member.code).where(Member.user_id == user_id)
    if member.id is not None:
        others = others.where(Member.id != member.id)
    holder = session.scalar(others)
    if holder is not None:
        raise Conflict(_l("User %(name)s is linked to member %(code)s already: a user signs in "
                          "as one member.", name=username, code=holder),
                       code="user_linked", details={"field": "user", "member": holder})
    return user_id


def _write(session: Session, member: Member, fields: MemberFields) -> None:
    """Store checked fields on `member` (skills replaced), active."""
    team_ids = dict(session.execute(select(Team.code, Team.id)).all())
    user_id = _user_id(session, member, fields.user)
    if member.status != fields.status:
        member.status_at = utcnow()
    member.name, member.phone, member.post = fields.name, fields.phone, fields.post
    member.employment, member.roles, member.status = (fields.employment, list(fields.roles),
                                                      fields.status)
    member.team_id = team_ids[fields.team] if fields.team else None
    member.squad_id = team_ids[fields.squad] if fields.squad else None
    member.user_id, member.active = user_id, True
    session.add(member)
    try:
        session.flush()
    except IntegrityError:  # the same code or user taken at the same moment by another request
        raise Conflict() from None
    skill_ids = dict(session.execute(select(Skill.code, Skill.id)).all())
    session.execute(delete(MemberSkill).where(MemberSkill.member_id == member.id))
    if fields.skills:
        session.execute(insert(MemberSkill), [
            {"member_id": member.id, "skill_id": skill_ids[s.skill], "level": s.level,
             "expires": s.expires} for s in fields.skills])


def create_member(session: Session, body: dict[str, Any], *, actor: str) -> Member:
    """A new member (DESIGN §5 body); audited. The code of a member who left makes them rejoin
    (their history stays theirs); an active member's code is 409 `exists`."""
    fields = _checked(checks.check_member, body, known(session))
    member = session.scalar(select(Member).where(Member.code == fields.code))
    if member is not None and member.active:
        raise Conflict(_l("Member %(code)s exists already.", code=fields.code), code="exists",
                       details={"field": "code"})
    before = None if member is None else {**describe(session, member), "active": False}
    member = member or Member(code=fields.code)
    _write(session, member, fields)
    audit.record(session, actor=actor, action="member.create", entity_type="member",
                 entity_id=fields.code, before=before, after=describe(session, member))
    return member


def update_member(session: Session, code: str, body: dict[str, Any], *, actor: str) -> Member:
    """Change a member (the fields given; `skills` replaces the list); audited."""
    member = find(session, code)
    current = _current(session, member)
    fields = _checked(checks.check_member, body, known(session), current=current)
    if fields != current:
        _write(session, member, fields)
        audit.record(session, actor=actor, action="member.update", entity_type="member",
                     entity_id=code, before=current.as_json(), after=describe(session, member))
    return member


def remove_member(session: Session, code: str, *, actor: str) -> None:
    """A member leaves: marked inactive, their user link freed, their history kept; audited."""
    member = find(session, code)
    before = describe(session, member)
    member.active, member.user_id = False, None
    if member.status != DutyStatus.OFF:
        member.status, member.status_at = DutyStatus.OFF.value, utcnow()
    session.flush()
    audit.record(session, actor=actor, action="member.delete", entity_type="member",
                 entity_id=code, before=before,
                 after={**describe(session, member), "active": False})


# --- the CSV import ---------------------------------------------------------------------------

@dataclass
class _ImportState:
    """What the rows seen so far claim: codes (line, squad) and users (line)."""

    codes: dict[str, tuple[int, str | None]]
    users: dict[str, int]


def _row_error(line: int, code: str | None, problems: Iterable[Problem]) -> RowError:
    return RowError(line, code, "; ".join(f"{p.field}: {why(p)}" for p in problems))


def _claims(line: int, fields: MemberFields, state: _ImportState,
            holders: dict[str, str]) -> str | None:
    """Why a row that checked may not be taken with the rows before it, if it may not."""
    seen = state.codes.get(fields.code)
    if seen is not None:
        earlier, squad = seen
        if squad != fields.squad:
            return _("member %(code)s is on line %(line)d too, in another squad: a member is "
                     "in one squad only", code=fields.code, line=earlier)
        return tabular.repeated(fields.code, earlier)
    if fields.user is not None:
        if fields.user in state.users:
            return _("user %(name)s is linked on line %(line)d too: a user signs in as one "
                     "member", name=fields.user, line=state.users[fields.user])
        holder = holders.get(fields.user)
        if holder is not None and holder != fields.code:
            return _("user %(name)s is linked to member %(code)s already", name=fields.user,
                     code=holder)
        state.users[fields.user] = line
    state.codes[fields.code] = (line, fields.squad)
    return None


def _check_rows(session: Session, rows, *, upsert: bool) -> tuple[list, list[RowError]]:
    registered = known(session)
    everyone = {m.code: m for m in session.scalars(select(Member))}
    holders = dict(session.execute(select(User.username, Member.code).join(
        Member, Member.user_id == User.id)).all())
    state = _ImportState({}, {})
    errors: list[RowError] = []
    good: list[tuple[Member | None, MemberFields]] = []
    for line, row in rows:
        if isinstance(row, RowProblem):
            errors.append(RowError(line, row.code, str(row)))
            continue
        code = (row.get("code") or "").strip() or None
        member = everyone.get(code) if code else None
        active = member is not None and member.active
        if active and not upsert:
            errors.append(RowError(line, code, _("%(code)s exists already (import with "
                                                 "mode=upsert to update it)", code=code)))
            continue
        try:
            fields = checks.check_row(row, registered,
                                      current=_current(session, member) if active else None)
        except Refused as refused:
            errors.append(_row_error(line, code, refused.problems))
            # A later row with this code is named too, even though this one was refused.
            if code:
                state.codes.setdefault(code, (line, (row.get("squad") or "").strip() or None))
            continue
        claim = _claims(line, fields, state, holders)
        if claim is not None:
            errors.append(RowError(line, code, claim))
            continue
        good.append((member, fields))
    return good, errors


def import_members(session: Session, text: str, *, actor: str,
                   upsert: bool = False) -> dict[str, int]:
    """Members from a CSV file (columns: the contract's fields; roles and skills as
    dispatch.roster.members reads them): every row checked first, then all written (each
    audited) or none (422 naming every bad row with its line)."""
    rows = tabular.csv_rows(text, required=("code", "name"), columns=checks.FIELDS,
                            max_rows=MAX_ROWS)
    tabular.check_row_count(rows, max_rows=MAX_ROWS, empty=_("The file has no rows."),
                            too_many=_("At most %(count)d rows per import: split the file.",
                                       count=MAX_ROWS))
    good, errors = _check_rows(session, rows, upsert=upsert)
    if errors:
        raise ImportRejected(errors)
    counts = {"created": 0, "updated": 0}
    # A member who left rejoins: their record before says so.
    befores = {f.code: describe(session, m) | ({} if m.active else {"active": False})
               for m, f in good if m is not None}
    # Users move between members of the file only once every old link is undone (unique).
    for member in [m for m, _f in good if m is not None and m.user_id is not None]:
        member.user_id = None
    session.flush()
    for member, fields in good:
        updating = member is not None and member.active
        member = member or Member(code=fields.code)
        before = befores.get(fields.code)
        _write(session, member, fields)
        after = describe(session, member)
        counts["updated" if updating else "created"] += 1
        if after != before:
            audit.record(session, actor=actor,
                         action="member.update" if updating else "member.create",
                         entity_type="member", entity_id=fields.code, before=before,
                         after=after)
    return counts


# --- skills -----------------------------------------------------------------------------------

def _skill_fields(skill: Skill) -> SkillFields:
    return SkillFields(skill.code, skill.name_zh, skill.name_en or "", skill.needs_certificate)


def skills(session: Session) -> list[dict[str, Any]]:
    """The skills catalogue, by code."""
    return [_skill_fields(s).as_json() for s in session.scalars(select(Skill).order_by(
        Skill.code))]


def create_skill(session: Session, body: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """A new entry of the catalogue; audited (409 `exists` for a code taken)."""
    fields = _checked(checks.check_skill, body)
    if session.scalar(select(Skill.id).where(Skill.code == fields.code)):
        raise Conflict(_l("Skill %(code)s exists already.", code=fields.code), code="exists",
                       details={"field": "code"})
    session.add(Skill(code=fields.code, name_zh=fields.name_zh, name_en=fields.name_en,
                      needs_certificate=fields.needs_certificate))
    session.flush()
    audit.record(session, actor=actor, action="skill.create", entity_type="skill",
                 entity_id=fields.code, after=fields.as_json())
    return fields.as_json()


def update_skill(session: Session, code: str, body: dict[str, Any], *,
                 actor: str) -> dict[str, Any]:
    """Change a skill's names or whether it needs a certificate; audited. A skill cannot come
    to need a certificate while members hold it without an expiry (409, naming them)."""
    skill = session.scalar(select(Skill).where(Skill.code == code))
    if skill is None:
        raise NotFound(_l("There is no skill with the code %(code)s.", code=code),
                       code="not_found")
    current = _skill_fields(skill)
    fields = _checked(checks.check_skill, body, current=current)
    if fields.needs_certificate and not current.needs_certificate:
        lacking = session.scalars(select(Member.code).join(
            MemberSkill, MemberSkill.member_id == Member.id).where(
            MemberSkill.skill_id == skill.id, MemberSkill.expires.is_(None),
            Member.active.is_(True)).order_by(Member.code)).all()
        if lacking:
            raise Conflict(_l("%(count)d member(s) hold %(code)s without a certificate expiry "
                              "(%(members)s): give each one first.", count=len(lacking),
                              code=code, members=", ".join(lacking[:10])),
                           code="expiry_missing", details={"members": list(lacking)})
    if fields != current:
        skill.name_zh, skill.name_en = fields.name_zh, fields.name_en
        skill.needs_certificate = fields.needs_certificate
        session.flush()
        audit.record(session, actor=actor, action="skill.update", entity_type="skill",
                     entity_id=code, before=current.as_json(), after=fields.as_json())
    return fields.as_json()


# --- teams and squads -------------------------------------------------------------------------

def _team_json(team: Team, codes: dict[int, str], squads: dict[int, list[str]],
               counts: dict[int, int]) -> dict[str, Any]:
    return {"code": team.code, "name": team.name,
            "parent": codes.get(team.parent_id) if team.parent_id else None,
            "squads": squads.get(team.id, []), "members": counts.get(team.id, 0)}


def _team_context(session: Session):
    rows = session.scalars(select(Team).order_by(Team.code)).all()
    codes = {t.id: t.code for t in rows}
    squads: dict[int, list[str]] = defaultdict(list)
    for t in rows:
        if t.parent_id:
            squads[t.parent_id].append(t.code)
    active = Member.active.is_(True)
    counts = dict(session.execute(select(Member.team_id, func.count()).where(
        active, Member.team_id.is_not(None)).group_by(Member.team_id)).all())
    # A squad counts its own members (a team, all of its members, squads or not).
    counts |= dict(session.execute(select(Member.squad_id, func.count()).where(
        active, Member.squad_id.is_not(None)).group_by(Member.squad_id)).all())
    return rows, codes, squads, counts


def teams(session: Session) -> list[dict[str, Any]]:
    """Teams and squads, by code, each with its squads and how many members it has."""
    rows, codes, squads, counts = _team_context(session)
    return [_team_json(t, codes, squads, counts) for t in rows]


def team(session: Session, code: str) -> dict[str, Any]:
    """A team or squad with its members (`roster`, the contract's member objects)."""
    rows, codes, squads, counts = _team_context(session)
    found = next((t for t in rows if t.code == code), None)
    if found is None:
        raise NotFound(_l("There is no team or squad with the code %(code)s.", code=code),
                       code="not_found")
    column = Member.squad_id if found.parent_id else Member.team_id
    members = session.scalars(select(Member).where(
        column == found.id, Member.active.is_(True)).order_by(Member.code)).all()
    return {**_team_json(found, codes, squads, counts), "roster": describe_all(session, members)}


def create_team(session: Session, body: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """A new team, or a squad of one (`parent`); audited (409 `exists` for a code taken)."""
    parents = known(session).teams
    fields = _checked(checks.check_team, body, parents)
    if fields.code in parents:
        raise Conflict(_l("Team %(code)s exists already.", code=fields.code), code="exists",
                       details={"field": "code"})
    parent_id = session.scalar(select(Team.id).where(Team.code == fields.parent)) \
        if fields.parent else None
    session.add(Team(code=fields.code, name=fields.name, parent_id=parent_id))
    session.flush()
    after = team(session, fields.code)
    after.pop("roster")
    audit.record(session, actor=actor, action="team.create", entity_type="team",
                 entity_id=fields.code, after=after)
    return after


# --- the demo -----------------------------------------------------------------------------------

def load_demo_roster(session: Session, roster, *, actor: str) -> dict[str, int]:
    """Store a generated roster (dispatch.roster.demo): skills, teams and members whose codes
    are not there yet, in bulk; audited once per team loaded. Returns what was added."""
    conn = session.connection()
    have = set(session.scalars(select(Skill.code)))
    new_skills = [s for s in roster.skills if s.code not in have]
    if new_skills:
        conn.execute(insert(Skill), [{"code": s.code, "name_zh": s.name_zh,
                                      "name_en": s.name_en,
                                      "needs_certificate": s.needs_certificate}
                                     for s in new_skills])
        audit.record(session, actor=actor, action="demo.load", entity_type="skills",
                     entity_id="catalogue", after={"skills": [s.code for s in new_skills]})
    have_teams = set(session.scalars(select(Team.code)))
    new_teams = [t for t in roster.teams if t.code not in have_teams]
    for t in new_teams:  # parents first: the roster lists a team before its squads
        parent = session.scalar(select(Team.id).where(Team.code == t.parent)) \
            if t.parent else None
        conn.execute(insert(Team).values(code=t.code, name=t.name, parent_id=parent,
                                         created_at=utcnow()))
    added, per_team = _load_demo_members(session, roster.members)
    for t in new_teams:
        audit.record(session, actor=actor, action="demo.load", entity_type="team",
                     entity_id=t.code, after={"name": t.name, "parent": t.parent,
                                              "members": per_team.get(t.code, 0)})
    return {"skills": len(new_skills), "teams": len(new_teams), "members": added}


def _load_demo_members(session: Session, people) -> tuple[int, dict[str, int]]:
    """Insert the members whose codes are new: how many, and how many each team and squad
    got."""
    conn = session.connection()
    have = set(session.scalars(select(Member.code)))
    new = [p for p in people if p.code not in have]
    per_team: dict[str, int] = defaultdict(int)
    if not new:
        return 0, per_team
    team_ids = dict(session.execute(select(Team.code, Team.id)).all())
    now = utcnow()
    conn.execute(insert(Member), [{
        "code": p.code, "name": p.name, "phone": p.phone, "post": p.post,
        "employment": p.employment, "team_id": team_ids[p.team],
        "squad_id": team_ids[p.squad] if p.squad else None, "roles": list(p.roles),
        "status": p.status, "status_at": now, "user_id": None, "active": True,
        "created_at": now, "updated_at": now} for p in new])
    member_ids = dict(session.execute(select(Member.code, Member.id)).all())
    skill_ids = dict(session.execute(select(Skill.code, Skill.id)).all())
    held = [{"member_id": member_ids[p.code], "skill_id": skill_ids[s.skill], "level": s.level,
             "expires": s.expires} for p in new for s in p.skills]
    if held:
        conn.execute(insert(MemberSkill), held)
    for p in new:
        per_team[p.team] += 1
        if p.squad:
            per_team[p.squad] += 1
    return len(new), per_team
