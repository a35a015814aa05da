"""The demo rescue team (pure): a skills catalogue, the demo township's full-time team of 43 in
squads A and B (DESIGN §1: two squads on 24-hour rotation; "A" and "B" are the rota template's
default squads) and its composite team of 18 merged from six posts (多员合一, 一专多能, 六队一体),
and for the prefecture 1,248 members across its townships (DESIGN §1), for `rescuehub demo`.

Deterministic for a seed and a day: names, skills and levels come from the seed; certificates
expire relative to `today`, so that whenever the demo is loaded some expire within 30 days and
exactly one has expired. The skill mix is chosen for the rota: each squad has at least 2 boat
handlers, 2 first-aiders and 1 C1 driver with valid certificates on most days. Squad B's second
boat handler's certificate runs out in 9 days, which opens a gap on B's shifts inside the
14-day coverage view, and squad A's third first-aider's certificate has expired (A still has
two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from dispatch.roster.choices import DutyStatus, Employment, Post, SquadRole
from dispatch.roster.members import SkillHeld
from maps.demo import GIVEN, SEED, SURNAMES

# The prefecture's figure (DESIGN §1).
PREFECTURE_MEMBERS = 1248
FULL_TIME_SQUADS = (("A", 22), ("B", 21))  # 43 members
COMPOSITE_PER_POST = 3  # 6 posts: 18 members


@dataclass(frozen=True)
class DemoSkill:
    """An entry of the skills catalogue."""

    code: str
    name_zh: str
    name_en: str
    needs_certificate: bool


@dataclass(frozen=True)
class DemoTeam:
    """A team, or a squad of the team `parent`."""

    code: str
    name: str
    parent: str | None = None


@dataclass(frozen=True)
class DemoMember:
    """A member with their skills."""

    code: str
    name: str
    phone: str
    post: str
    employment: str
    team: str
    squad: str | None
    roles: tuple[str, ...]
    skills: tuple[SkillHeld, ...]
    status: str


@dataclass(frozen=True)
class DemoRoster:
    """Skills, teams (each before its squads) and members to load."""

    skills: tuple[DemoSkill, ...]
    teams: tuple[DemoTeam, ...]
    members: tuple[DemoMember, ...]


# Certificates: boat and water rescue (内河船舶 and 水域救援 courses), first aid (红十字救护员证,
# valid 3 years), drone (CAAC 无人机驾驶员执照), driving licences, enforcement (行政执法证),
# electrician and excavator operation (特种作业操作证). Chainsaw, pump, radio, swimming and
# forest firefighting are taught in the team's own drills, without a certificate.
SKILLS = (
    DemoSkill("boat", "冲锋舟驾驶", "Boat handling", True),
    DemoSkill("swift_water", "激流水域救援", "Swift-water rescue", True),
    DemoSkill("rope", "绳索救援", "Rope rescue", True),
    DemoSkill("first_aid", "应急救护", "First aid", True),
    DemoSkill("chainsaw", "油锯操作", "Chainsaw", False),
    DemoSkill("pump", "排涝泵操作", "Pump operation", False),
    DemoSkill("drone", "无人机驾驶", "Drone pilot", True),
    DemoSkill("licence_c1", "C1驾驶证", "Driving licence C1", True),
    DemoSkill("licence_b2", "B2驾驶证", "Driving licence B2", True),
    DemoSkill("licence_a2", "A2驾驶证", "Driving licence A2", True),
    DemoSkill("enforcement", "行政执法证", "Enforcement licence", True),
    DemoSkill("radio", "应急通信电台", "Radio operation", False),
    DemoSkill("swimming", "游泳", "Swimming", False),
    DemoSkill("forest_fire", "森林扑火", "Forest firefighting", False),
    DemoSkill("electrician", "电工作业", "Electrician", True),
    DemoSkill("excavator", "挖掘机操作", "Excavator operation", True),
)
CERTIFIED = {s.code for s in SKILLS if s.needs_certificate}

# Holders of each skill in squads A and B of the full-time team.
FULL_TIME_SKILLS = (
    ("boat", 3, 2), ("swift_water", 5, 5), ("rope", 5, 4), ("first_aid", 3, 3),
    ("licence_c1", 2, 2), ("licence_b2", 2, 2), ("licence_a2", 1, 1), ("chainsaw", 4, 4),
    ("pump", 5, 5), ("drone", 1, 1), ("radio", 3, 3), ("swimming", 12, 11),
    ("electrician", 1, 0), ("excavator", 0, 1),
)
# Skills of the team's own drills, without a certificate: what a member with only one skill
# learns next.
DRILLED = ("pump", "chainsaw", "radio", "swimming")

# The composite team by post: the skills every holder of the post has, those some have, the
# uses the post serves first (六队一体), and how the post's three members are employed.
COMPOSITE_POSTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...],
                                 tuple[str, ...]]] = {
    Post.SAFETY: (("enforcement", "first_aid"), ("licence_c1", "radio"),
                  ("enforcement", "patrol", "rescue"), ("staff", "staff", "contract")),
    Post.FORESTRY: (("chainsaw", "forest_fire"), ("enforcement", "drone", "radio"),
                    ("patrol", "rescue", "enforcement"), ("staff", "contract", "contract")),
    Post.FIRE: (("swift_water", "rope", "pump"), ("first_aid", "licence_b2"),
                ("rescue", "relief"), ("contract", "contract", "staff")),
    Post.WATER: (("boat", "pump"), ("swimming", "licence_c1"),
                 ("rescue", "patrol", "relief"), ("staff", "volunteer", "contract")),
    Post.WEATHER: (("radio",), ("drone", "first_aid"),
                   ("publicity", "service"), ("staff", "volunteer", "volunteer")),
    Post.GRID: (("first_aid",), ("licence_c1", "radio"),
                ("service", "publicity", "relief"), ("contract", "contract", "volunteer")),
}

# Certificates that run out soon (days from today; negative: expired), by (team or squad,
# skill, which holder in code order). Squad B keeps 2 boat handlers for 9 more days only.
SPECIAL_EXPIRY = {
    ("B", "boat", 1): 9,
    ("A", "first_aid", 2): -16,
    ("A", "licence_c1", 0): 21,
    ("ZH", "enforcement", 0): 12,
    ("ZH", "first_aid", 1): 27,
}
# Every other certificate expires between these many days from today (none within 30 days).
EXPIRY_DAYS = (75, 1460)
LEVEL_WEIGHTS = (0.3, 0.45, 0.25)  # levels 1, 2, 3


def _index(town) -> int:
    return int(town.code.lstrip("T") or 0)


def _name(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        surname = SURNAMES[rng.integers(len(SURNAMES))][0]
        given = "".join(GIVEN[i] for i in rng.integers(len(GIVEN),
                                                       size=1 + int(rng.random() < 0.7)))
        if surname + given not in taken:
            taken.add(surname + given)
            return surname + given


def _phone(index: int, serial: int) -> str:
    # 139-iiii-ssss: fictitious numbers, one block per township (maps.demo uses 138 for villages).
    return f"139{index % 10000:04d}{serial % 10000:04d}"


def _level(rng: np.random.Generator) -> int:
    return int(rng.choice((1, 2, 3), p=LEVEL_WEIGHTS))


def _expiry(rng: np.random.Generator, skill: str, today: date) -> date | None:
    if skill not in CERTIFIED:
        return None
    return today + timedelta(days=int(rng.integers(*EXPIRY_DAYS)))


@dataclass
class _Person:
    """A member being generated: skills still open to the special expiries."""

    code: str
    name: str
    phone: str
    post: str
    employment: str
    roles: tuple[str, ...]
    skills: dict[str, SkillHeld]


def _special(people: Sequence[_Person], group: str, today: date) -> None:
    for (where, skill, nth), days in SPECIAL_EXPIRY.items():
        if where != group:
            continue
        holders = [p for p in people if skill in p.skills]
        held = holders[nth].skills[skill]
        holders[nth].skills[skill] = SkillHeld(skill, held.level, today + timedelta(days=days))


def _full_time(rng: np.random.Generator, index: int, today: date,
               taken: set[str]) -> dict[str, list[_Person]]:
    squads: dict[str, list[_Person]] = {}
    serial = 0
    for s, (squad, size) in enumerate(FULL_TIME_SQUADS):
        people = []
        for _ in range(size):
            serial += 1
            roles = [SquadRole.RESCUE.value]
            roles += [r.value for r, p in ((SquadRole.RELIEF, 0.4), (SquadRole.SERVICE, 0.15))
                      if rng.random() < p]
            people.append(_Person(
                f"T{index:03d}-F{serial:02d}", _name(rng, taken), _phone(index, serial),
                Post.FIRE.value,
                (Employment.STAFF if rng.random() < 0.7 else Employment.CONTRACT).value,
                tuple(roles), {}))
        for skill, *counts in FULL_TIME_SKILLS:
            for i in sorted(rng.choice(size, counts[s], replace=False)):
                people[i].skills[skill] = SkillHeld(skill, _level(rng),
                                                    _expiry(rng, skill, today))
        for person in people:  # 一专多能: nobody with one skill only
            spare = [f for f in DRILLED if f not in person.skills]
            while len(person.skills) < 2:
                skill = spare.pop(int(rng.integers(len(spare))))
                person.skills[skill] = SkillHeld(skill, _level(rng), None)
        _special(people, squad, today)
        squads[squad] = people
    return squads


def _composite_member(rng: np.random.Generator, code: str, name: str, phone: str, post: str,
                      k: int, today: date) -> _Person:
    must, some, uses, employed = COMPOSITE_POSTS[post]
    skills = [*must, *(s for s in some if rng.random() < 0.5)]
    if len(skills) < 2:  # 一专多能
        spare = [s for s in (*some, *DRILLED) if s not in skills]
        skills.append(spare[int(rng.integers(len(spare)))])
    roles = [uses[0], *(u for u in uses[1:] if rng.random() < 0.6)]
    if len(roles) < 2:
        roles.append(uses[1])
    return _Person(code, name, phone, str(post), employed[k % len(employed)], tuple(roles),
                   {s: SkillHeld(s, _level(rng), _expiry(rng, s, today)) for s in skills})


def _composite(rng: np.random.Generator, index: int, today: date,
               taken: set[str]) -> list[_Person]:
    people = []
    for p, post in enumerate(COMPOSITE_POSTS):
        for k in range(COMPOSITE_PER_POST):
            n = p * COMPOSITE_PER_POST + k + 1
            people.append(_composite_member(rng, f"T{index:03d}-Z{n:02d}", _name(rng, taken),
                                            _phone(index, 100 + n), post, k, today))
    return people


def _member(person: _Person, team: str, squad: str | None, status: str) -> DemoMember:
    return DemoMember(person.code, person.name, person.phone, person.post, person.employment,
                      team, squad, person.roles,
                      tuple(person.skills[s.code] for s in SKILLS if s.code in person.skills),
                      status)


def township_roster(town, *, today: date, seed: int = SEED) -> DemoRoster:
    """The demo township's teams: the skills catalogue, the full-time team (`T000-FT`) in
    squads A and B, and the composite team (`T000-ZH`)."""
    index = _index(town)
    rng = np.random.default_rng([seed, index, 21])
    taken: set[str] = set()
    full_time = f"T{index:03d}-FT"
    composite = f"T{index:03d}-ZH"
    squads = _full_time(rng, index, today, taken)
    mixed = _composite(rng, index, today, taken)
    _special(mixed, "ZH", today)
    teams = (DemoTeam(full_time, f"{town.name_zh}专职救援队"),
             *(DemoTeam(squad, f"{town.name_zh}专职救援队{squad}班", full_time)
               for squad, _size in FULL_TIME_SQUADS),
             DemoTeam(composite, f"{town.name_zh}综合应急救援队"))
    members = [_member(p, full_time, squad, DutyStatus.OFF.value)
               for squad, people in squads.items() for p in people]
    members += [_member(p, composite, None, DutyStatus.ON_CALL.value) for p in mixed]
    return DemoRoster(SKILLS, teams, tuple(members))


def prefecture_roster(towns: Sequence, *, today: date, seed: int = SEED,
                      total: int = PREFECTURE_MEMBERS) -> DemoRoster:
    """A composite team in each of the prefecture's townships (`T001-ZH`, …), `total` members
    in all, spread as evenly as whole people allow (the first townships take one more)."""
    teams: list[DemoTeam] = []
    members: list[DemoMember] = []
    base, extra = divmod(total, max(len(towns), 1))
    posts = list(COMPOSITE_POSTS)
    for t, town in enumerate(towns):
        index = _index(town)
        rng = np.random.default_rng([seed, index, 21])
        code = f"T{index:03d}-ZH"
        teams.append(DemoTeam(code, f"{town.name_zh}综合应急救援队"))
        taken: set[str] = set()
        for n in range(1, base + (t < extra) + 1):
            post = posts[(n - 1) % len(posts)]
            person = _composite_member(rng, f"T{index:03d}-{n:02d}", _name(rng, taken),
                                       _phone(index, n), post, (n - 1) // len(posts), today)
            members.append(_member(person, code, None, DutyStatus.ON_CALL.value))
    return DemoRoster(SKILLS, tuple(teams), tuple(members))
