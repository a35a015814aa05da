"""Members, skills and teams as the contract writes them, pure (DESIGN §5 "Roster and positions
(contract)"): checking a member's JSON body, or a CSV row read into one, against what is
registered (skills, teams and squads, users), with every bad field named; reading the CSV cells
for roles (`rescue;relief`) and skills (`boat:2:2027-05-01;first_aid:1:`); checking a skill and a
team.

A body is taken whole or refused whole: `Refused.problems` names every bad field, each with a
path (`post`, `skills[1].level`), a code the views translate by (`MESSAGES` lists every code, in
English) and the values its message needs. A field given as null counts as absent when a member
is created (DESIGN §5 "Decoding"); in a change, null clears the fields that may be empty (phone,
team, squad, user) and is refused for the others. Unknown fields are ignored (forward
compatibility).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dispatch.roster.choices import DutyStatus, Employment, Post, SquadRole

# dispatch.core.codes' rule for codes, here without its translated errors (this module is pure).
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)
CODE_MAX = 32
NAME_MAX = 64
NAME_EN_MAX = 128
# Digits with an optional leading "+", and spaces or hyphens between groups: 0915-1234567,
# +86 138 0000 1234. Letters or other signs are a typo.
PHONE = re.compile(r"\+?[0-9](?:[0-9 -]*[0-9])?", re.ASCII)
PHONE_MAX = 32
LEVELS = (1, 2, 3)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
# The column names of a member CSV, which are the contract's field names.
FIELDS = ("code", "name", "phone", "post", "employment", "team", "squad", "roles", "skills",
          "status", "user")
# Fields a change may clear with null (the others always hold a value).
CLEARABLE = ("phone", "team", "squad", "user")
# Separators of several values in one CSV cell (a Chinese keyboard types the full-width one).
CELL_SEPARATORS = re.compile("[;；]")

# Every code a problem can carry, with its English reason (the views translate by code).
MESSAGES: dict[str, str] = {
    "required": "is required",
    "not_text": "must be text",
    "not_a_list": "must be a list",
    "not_an_object": "must be an object",
    "not_a_boolean": "must be true or false",
    "bad_code": "must be a code of 1-%(max)d characters: ASCII letters, digits, “-”, “_” and "
                "“.”, starting with a letter or digit",
    "too_long": "is longer than %(max)d characters",
    "control_character": "must not hold control characters",
    "bad_phone": "must be a phone number: digits, with an optional leading + and spaces or "
                 "hyphens between groups",
    "not_a_choice": "must be one of %(choices)s",
    "not_null": "cannot be cleared: leave it out to keep it",
    "code_changed": "cannot change (it is %(code)s): add a new one instead",
    "unknown_team": "names no team (%(code)s)",
    "is_a_squad": "%(code)s is a squad: give its team here and the squad in squad",
    "unknown_squad": "names no squad (%(code)s)",
    "not_a_squad": "%(code)s is a team, not a squad",
    "two_squads": "must be one squad: a member is in one squad only",
    "squad_without_team": "needs the member's team: squad %(code)s is a squad of %(team)s",
    "squad_of_other_team": "%(code)s is a squad of %(parent)s, not of the member's team "
                           "%(team)s",
    "unknown_role": "must be one of %(choices)s",
    "duplicate": "is listed twice",
    "unknown_skill": "names no skill of the catalogue (%(code)s)",
    "bad_level": "must be 1, 2 or 3",
    "not_a_date": "must be a date as YYYY-MM-DD",
    "needs_expiry": "is required: %(skill)s needs a certificate, and a certificate has an "
                    "expiry date",
    "unknown_user": "names no user (%(name)s)",
    "bad_skill_cell": "must be skill:level:expires, e.g. boat:2:2027-05-01",
    "unknown_parent": "names no team (%(code)s)",
    "parent_is_squad": "%(code)s is a squad itself: a squad belongs to a team",
}


@dataclass(frozen=True)
class Problem:
    """One bad field: where it is, a code to translate by and the values its message needs."""

    field: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def why(self) -> str:
        """The reason in English (logs, tests)."""
        return MESSAGES[self.code] % dict(self.params) if self.params else MESSAGES[self.code]


class Refused(ValueError):
    """A body refused whole; `problems` names every bad field."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        shown = "; ".join(f"{p.field}: {p.why}" for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"refused: {shown}{more}")


@dataclass(frozen=True)
class Known:
    """What is registered, as plain values: each skill's code and whether it needs a
    certificate, each team's code and the team it is a squad of (None: a team), usernames."""

    skills: Mapping[str, bool]
    teams: Mapping[str, str | None]
    users: Collection[str]


@dataclass(frozen=True)
class SkillHeld:
    """A member's skill: level 1-3 and, for a certified skill, the certificate's expiry."""

    skill: str
    level: int
    expires: date | None

    def as_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "level": self.level,
                "expires": self.expires.isoformat() if self.expires else None}


@dataclass(frozen=True)
class MemberFields:
    """A member as the contract writes it (without its duty history)."""

    code: str
    name: str
    phone: str = ""
    post: str = Post.OTHER.value
    employment: str = Employment.STAFF.value
    team: str | None = None
    squad: str | None = None
    roles: tuple[str, ...] = ()
    skills: tuple[SkillHeld, ...] = ()
    status: str = DutyStatus.OFF.value
    user: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The contract's JSON object."""
        return {"code": self.code, "name": self.name, "phone": self.phone, "post": self.post,
                "employment": self.employment, "team": self.team, "squad": self.squad,
                "roles": list(self.roles), "skills": [s.as_json() for s in self.skills],
                "status": self.status, "user": self.user}


class _Checker:
    """Collects problems while reading one body."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, where: str, reason: str, /, **params: Any) -> None:
        self.problems.append(Problem(where, reason, params))

    def code(self, where: str, value: Any) -> str | None:
        if not isinstance(value, str):
            self.bad(where, "not_text")
            return None
        if len(value) > CODE_MAX or not CODE.fullmatch(value):
            self.bad(where, "bad_code", max=CODE_MAX)
            return None
        return value

    def text(self, where: str, value: Any, max_len: int, *, required: bool = True) -> str | None:
        if not isinstance(value, str):
            self.bad(where, "not_text")
            return None
        value = value.strip()
        if not value and required:
            self.bad(where, "required")
            return None
        if len(value) > max_len:
            self.bad(where, "too_long", max=max_len)
            return None
        if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
            self.bad(where, "control_character")
            return None
        return value

    def required(self, doc: Mapping[str, Any], key: str, read, *args: Any) -> Any:
        """`read(key, doc[key], *args)`, or a `required` problem when the key is absent."""
        if key not in doc:
            self.bad(key, "required")
            return None
        return read(key, doc[key], *args)

    def choice(self, where: str, value: Any, choices: Iterable[str]) -> str | None:
        options = tuple(choices)
        if not isinstance(value, str) or value not in options:
            self.bad(where, "not_a_choice", choices=", ".join(options))
            return None
        return value


def _merged(body: Mapping[str, Any], current: MemberFields | None,
            check: _Checker) -> dict[str, Any]:
    """The document to check: the current member changed by the body (a change), or the body
    with its nulls left out (a new member)."""
    if current is None:
        return {k: v for k, v in body.items() if k in FIELDS and v is not None}
    doc = current.as_json()
    for key in FIELDS:
        if key not in body:
            continue
        value = body[key]
        if value is None and key not in CLEARABLE:
            check.bad(key, "not_null")
        elif key == "code" and value != current.code:
            check.bad("code", "code_changed", code=current.code)
        else:
            doc[key] = "" if value is None and key == "phone" else value
    return doc


def _phone(check: _Checker, value: Any) -> str:
    text = check.text("phone", value, PHONE_MAX, required=False)
    if text and not PHONE.fullmatch(text):
        check.bad("phone", "bad_phone")
        return ""
    return text or ""


def _team_and_squad(check: _Checker, doc: Mapping[str, Any],
                    known: Known) -> tuple[str | None, str | None]:
    team = doc.get("team")
    if team is not None:
        team = check.code("team", team)
        if team is not None and team not in known.teams:
            check.bad("team", "unknown_team", code=team)
            team = None
        elif team is not None and known.teams[team] is not None:
            check.bad("team", "is_a_squad", code=team)
            team = None
    squad = doc.get("squad")
    if squad is None:
        return team, None
    if isinstance(squad, list):
        # A member in two squads would count on both sides of the rota.
        check.bad("squad", "two_squads")
        return team, None
    squad = check.code("squad", squad)
    if squad is None:
        return team, None
    parent = known.teams.get(squad)
    if squad not in known.teams:
        check.bad("squad", "unknown_squad", code=squad)
    elif parent is None:
        check.bad("squad", "not_a_squad", code=squad)
    elif doc.get("team") is None:
        check.bad("squad", "squad_without_team", code=squad, team=parent)
    elif team is not None and parent != team:
        check.bad("squad", "squad_of_other_team", code=squad, parent=parent, team=team)
    else:
        return team, squad
    return team, None


def _roles(check: _Checker, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        check.bad("roles", "not_a_list")
        return ()
    roles: list[str] = []
    for i, role in enumerate(value):
        where = f"roles[{i}]"
        if not isinstance(role, str) or role not in tuple(SquadRole):
            check.bad(where, "unknown_role", choices=", ".join(SquadRole))
        elif role in roles:
            check.bad(where, "duplicate")
        else:
            roles.append(role)
    return tuple(roles)


def _expiry(check: _Checker, where: str, value: Any) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not DATE.fullmatch(value):
        check.bad(where, "not_a_date")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:  # 2027-02-30
        check.bad(where, "not_a_date")
        return None


def _skill(check: _Checker, i: int, entry: Any, known: Known) -> SkillHeld | None:
    where = f"skills[{i}]"
    if not isinstance(entry, dict):
        check.bad(where, "not_an_object")
        return None
    before = len(check.problems)
    code = entry.get("skill")
    if code is None:
        check.bad(f"{where}.skill", "required")
    elif check.code(f"{where}.skill", code) is not None and code not in known.skills:
        check.bad(f"{where}.skill", "unknown_skill", code=code)
    level = 1 if entry.get("level") is None else entry["level"]
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        check.bad(f"{where}.level", "bad_level")
    expires = _expiry(check, f"{where}.expires", entry.get("expires"))
    if len(check.problems) > before:
        return None
    if known.skills[code] and expires is None:
        check.bad(f"{where}.expires", "needs_expiry", skill=code)
        return None
    return SkillHeld(code, level, expires)


def _skills(check: _Checker, value: Any, known: Known) -> tuple[SkillHeld, ...]:
    if not isinstance(value, list):
        check.bad("skills", "not_a_list")
        return ()
    held: list[SkillHeld] = []
    seen: set[str] = set()
    for i, entry in enumerate(value):
        code = entry.get("skill") if isinstance(entry, dict) else None
        if isinstance(code, str):
            if code in seen:  # named once, even when the first entry has other problems
                check.bad(f"skills[{i}].skill", "duplicate")
                continue
            seen.add(code)
        skill = _skill(check, i, entry, known)
        if skill is not None:
            held.append(skill)
    return tuple(held)


def check_member(body: Mapping[str, Any], known: Known, *,
                 current: MemberFields | None = None) -> MemberFields:
    """A new member (`current` None) or `current` changed by `body`, checked whole; Refused
    naming every bad field."""
    check = _Checker()
    doc = _merged(body, current, check)
    code = check.required(doc, "code", check.code)
    name = check.required(doc, "name", check.text, NAME_MAX)
    phone = _phone(check, doc.get("phone", ""))
    post = check.choice("post", doc.get("post", Post.OTHER.value), Post)
    employment = check.choice("employment", doc.get("employment", Employment.STAFF.value),
                              Employment)
    team, squad = _team_and_squad(check, doc, known)
    roles = _roles(check, doc.get("roles", []))
    skills = _skills(check, doc.get("skills", []), known)
    status = check.choice("status", doc.get("status", DutyStatus.OFF.value), DutyStatus)
    user = doc.get("user")
    if user is not None:
        user = check.text("user", user, NAME_MAX)
        if user is not None and user not in known.users:
            check.bad("user", "unknown_user", name=user)
    if check.problems:
        raise Refused(check.problems)
    return MemberFields(code=code, name=name, phone=phone, post=post, employment=employment,
                        team=team, squad=squad, roles=roles, skills=skills, status=status,
                        user=user)


# --- CSV cells ------------------------------------------------------------------------------------

# A date as spreadsheets write it once they took the cell for a date: 2027/5/1.
SLASHED_DATE = re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})", re.ASCII)


def _cell_values(cell: str) -> list[str]:
    return [part.strip() for part in CELL_SEPARATORS.split(cell) if part.strip()]


def _cell_date(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    slashed = SLASHED_DATE.fullmatch(text)
    if slashed:
        year, month, day = slashed.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return text


def skills_cell(cell: str) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The skills of a CSV cell, `skill:level:expires` entries separated by ";" (level and
    expiry may be left empty: `first_aid:1:`, `chainsaw`), as the JSON body writes them, and a
    problem for each entry that is not of that form."""
    skills: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, entry in enumerate(_cell_values(cell)):
        parts = [p.strip() for p in entry.split(":")]
        if len(parts) > 3 or not parts[0]:
            problems.append(Problem(f"skills[{i}]", "bad_skill_cell"))
            skills.append({})
            continue
        parts += [""] * (3 - len(parts))
        level: Any = parts[1]
        if not level:
            level = 1
        elif level.isdigit() and len(level) < 3:
            level = int(level)
        skills.append({"skill": parts[0], "level": level, "expires": _cell_date(parts[2])})
    return skills, problems


def csv_body(row: Mapping[str, str | None]) -> tuple[dict[str, Any], list[Problem]]:
    """A CSV row as a member's JSON body: an empty cell is absent, roles and squads separated
    by ";" (two squads are refused by check_member), skills as `skills_cell` reads them; and
    the problems found in its cells."""
    body: dict[str, Any] = {}
    problems: list[Problem] = []
    for key in FIELDS:
        cell = (row.get(key) or "").strip()
        if not cell:
            continue
        if key == "roles":
            body[key] = _cell_values(cell)
        elif key == "skills":
            body[key], problems = skills_cell(cell)
        elif key == "squad" and len(_cell_values(cell)) > 1:
            body[key] = _cell_values(cell)
        else:
            body[key] = cell
    return body, problems


def check_row(row: Mapping[str, str | None], known: Known, *,
              current: MemberFields | None = None) -> MemberFields:
    """A CSV row checked as a member's body (a change of `current` when it is given: an empty
    cell then keeps the current value); Refused naming every bad cell."""
    body, problems = csv_body(row)
    try:
        member = check_member(body, known, current=current)
    except Refused as refused:
        # An entry the cell could not read is named once, by the cell's own problem.
        problems += [p for p in refused.problems if not any(
            p.field == q.field or p.field.startswith(q.field + ".") for q in problems)]
        raise Refused(problems) from None
    if problems:
        raise Refused(problems)
    return member


# --- skills and teams -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SkillFields:
    """An entry of the skills catalogue as the contract writes it."""

    code: str
    name_zh: str
    name_en: str = ""
    needs_certificate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "name_zh": self.name_zh, "name_en": self.name_en,
                "needs_certificate": self.needs_certificate}


def check_skill(body: Mapping[str, Any], *, current: SkillFields | None = None) -> SkillFields:
    """A new skill, or `current` changed by `body`; Refused naming every bad field."""
    check = _Checker()
    names = ("code", "name_zh", "name_en", "needs_certificate")
    if current is None:
        doc = {k: v for k, v in body.items() if k in names and v is not None}
    else:
        doc = current.as_json()
        for key in names:
            if key not in body:
                continue
            if body[key] is None and key != "name_en":
                check.bad(key, "not_null")
            elif key == "code" and body[key] != current.code:
                check.bad("code", "code_changed", code=current.code)
            else:
                doc[key] = body[key] if body[key] is not None else ""
    code = check.required(doc, "code", check.code)
    name_zh = check.required(doc, "name_zh", check.text, NAME_MAX)
    name_en = check.text("name_en", doc.get("name_en", ""), NAME_EN_MAX, required=False)
    certified = doc.get("needs_certificate", False)
    if not isinstance(certified, bool):
        check.bad("needs_certificate", "not_a_boolean")
    if check.problems:
        raise Refused(check.problems)
    return SkillFields(code, name_zh, name_en or "", certified)


@dataclass(frozen=True)
class TeamFields:
    """A team, or a squad of the team `parent`."""

    code: str
    name: str
    parent: str | None = None


def check_team(body: Mapping[str, Any], teams: Mapping[str, str | None]) -> TeamFields:
    """A new team or squad; `teams` maps each registered team's code to the team it is a squad
    of (None: a team). Refused naming every bad field."""
    check = _Checker()
    doc = {k: v for k, v in body.items() if v is not None}
    code = check.required(doc, "code", check.code)
    name = check.required(doc, "name", check.text, NAME_MAX)
    parent = doc.get("parent")
    if parent is not None and check.code("parent", parent) is not None:
        if parent not in teams:
            check.bad("parent", "unknown_parent", code=parent)
        elif teams[parent] is not None:
            # One level only: the rota counts a member through their squad of their team.
            check.bad("parent", "parent_is_squad", code=parent)
    if check.problems:
        raise Refused(check.problems)
    return TeamFields(code, name, parent)
