"""The rota, pure (DESIGN §5 "Roster and positions (contract)"): the shifts a template lays out,
who serves each one (its squad, minus leave, with approved swaps applied), its coverage against
the rules counting only certificates valid at the shift's end, who could fill a gap, what a
proposed swap would open, and certificates expiring soon. No Flask, no database: dataclasses in,
dataclasses out (dispatch.roster.rota_service reads the tables and writes the answers).

Time. Shifts are laid out on the township's local clock and returned as UTC instants:
- Shift n (any integer; 0 is the anchor's) starts at the local wall-clock time
  `anchor + n // per_day days, change_at + (n % per_day) × shift_h hours`, per_day = 24 / shift_h,
  and ends where shift n + 1 starts. So 24-hour shifts change at 08:00 local every day, also
  across a daylight-saving change (that shift lasts 23 or 25 hours). A wall time that does not
  exist (inside a spring-forward gap) is read with the offset before the change (02:30 becomes
  03:30 summer time); one that happens twice (autumn) means its first occurrence. A day a zone
  skipped whole (Samoa, 30 December 2011) is not supported.
- Every instant belongs to exactly one shift: shifts are [start, end) and end where the next
  starts.
- shift_h is 8, 12 or 24 (SHIFT_HOURS): three, two or one shift a day, the same change times
  every day. Other divisors of 24 would work the same but are no duty shifts; 48 hours and more
  are 24-hour shifts with more squads.
- The squad of shift n is squads[n mod len(squads)]: squads[0] serves the shift that starts at
  change_at on the anchor date, the others follow in order (two squads on 24-hour shifts
  alternate day by day). The anchor is a local date kept in the template, so saving the template
  again never shifts the alternation by itself.

People. A member serves a shift when their squad does, minus any leave overlapping the shift
(an hour of leave takes the whole shift), with the approved swaps of that shift applied in the
order they took effect (each: `member` out, `stand_in` in). Leave wins over a swap.

Cover. For a rule {skill, min}, `have` counts the members on the shift holding the skill validly
at the shift's end: a skill with an expiry date counts only while the date has not passed at the
end of the shift. A date is a local calendar day and a certificate is valid through it, up to the
next local midnight; so one expiring during a shift does not count for that shift. A skill
without an expiry date (no certificate needed, or a long-term certificate, 长期有效) always counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cached_property

SHIFT_HOURS = (8, 12, 24)
# The most candidates suggested for one gap (rested ones first).
FILL_LIMIT = 10
HOUR = timedelta(hours=1)


# --- shifts --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """How shifts are laid out: their length, the local change time, the squads in turn, the
    anchor date (squads[0] serves its first shift) and the local time zone."""

    shift_h: int
    change_at: time
    squads: tuple[str, ...]
    anchor: date
    zone: tzinfo

    def __post_init__(self) -> None:
        if self.shift_h not in SHIFT_HOURS:
            raise ValueError(f"shift_h must be one of {SHIFT_HOURS}")

    @property
    def per_day(self) -> int:
        """Shifts per local day."""
        return 24 // self.shift_h


@dataclass(frozen=True)
class Shift:
    """One shift: its number since the anchor, [start, end) in UTC, and the squad on duty."""

    index: int
    start: datetime
    end: datetime
    squad: str | None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) and this shift share an instant."""
        return start < self.end and self.start < end


def _wall_start(template: Template, n: int) -> datetime:
    day, slot = divmod(n, template.per_day)
    return (datetime.combine(template.anchor + timedelta(days=day), template.change_at)
            + slot * template.shift_h * HOUR)


def _utc(template: Template, wall: datetime) -> datetime:
    # fold=0: a wall time in a gap takes the offset before the change, a repeated one its first.
    return wall.replace(tzinfo=template.zone, fold=0).astimezone(UTC)


def shift(template: Template, n: int) -> Shift:
    """Shift number n."""
    squads = template.squads
    return Shift(n, _utc(template, _wall_start(template, n)),
                 _utc(template, _wall_start(template, n + 1)),
                 squads[n % len(squads)] if squads else None)


def shift_at(template: Template, instant: datetime) -> Shift:
    """The shift an instant belongs to."""
    local = instant.astimezone(template.zone).replace(tzinfo=None)
    origin = datetime.combine(template.anchor, template.change_at)
    n = math.floor((local - origin) / (template.shift_h * HOUR))
    found = shift(template, n)
    # The wall clock and the UTC instant differ by at most a DST change: a step either way.
    while found.start > instant:
        found = shift(template, found.index - 1)
    while found.end <= instant:
        found = shift(template, found.index + 1)
    return found


def shifts_between(template: Template, start: datetime, end: datetime) -> list[Shift]:
    """Every shift overlapping [start, end), in order."""
    if end <= start:
        return []
    found = [shift_at(template, start)]
    while found[-1].end < end:
        found.append(shift(template, found[-1].index + 1))
    return found


def local_midnight_after(day: date, zone: tzinfo) -> datetime:
    """The UTC instant a local calendar day ends (the next local midnight)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


# --- people ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Held:
    """A skill a member holds; `expires` is the last local day it is valid (None: no end);
    `certificate`: the skill needs a certificate (its expiry is announced)."""

    skill: str
    expires: date | None = None
    certificate: bool = False


@dataclass(frozen=True)
class Person:
    """An active member: code, name, squad code (None: outside the rota) and skills."""

    code: str
    squad: str | None
    skills: tuple[Held, ...] = ()
    name: str = ""

    def held(self, skill: str) -> Held | None:
        """The member's holding of a skill, if any."""
        return next((h for h in self.skills if h.skill == skill), None)


@dataclass(frozen=True)
class Absence:
    """A member's leave, [start, end) in UTC."""

    member: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Substitution:
    """On the shift starting at `shift_start`, `stand_in` serves instead of `member`."""

    member: str
    stand_in: str
    shift_start: datetime


@dataclass(frozen=True)
class Rule:
    """At least `min` members holding `skill` on every shift."""

    skill: str
    min: int


@dataclass(frozen=True)
class Rota:
    """Everything the rota decides from: the template, the active members, their leave, the
    approved swaps in the order they took effect, and the coverage rules."""

    template: Template
    people: tuple[Person, ...]
    leave: tuple[Absence, ...] = ()
    swaps: tuple[Substitution, ...] = ()
    rules: tuple[Rule, ...] = ()

    @cached_property
    def by_code(self) -> dict[str, Person]:
        """The members by code."""
        return {p.code: p for p in self.people}

    @cached_property
    def by_squad(self) -> dict[str | None, list[str]]:
        """Member codes by squad, in code order."""
        squads: dict[str | None, list[str]] = {}
        for person in sorted(self.people, key=lambda p: p.code):
            squads.setdefault(person.squad, []).append(person.code)
        return squads

    @cached_property
    def leave_of(self) -> dict[str, list[Absence]]:
        """Each member's leave."""
        leave: dict[str, list[Absence]] = {}
        for absence in self.leave:
            leave.setdefault(absence.member, []).append(absence)
        return leave

    @cached_property
    def swaps_at(self) -> dict[datetime, list[Substitution]]:
        """The approved swaps of each shift, by the shift's start, in effect order."""
        swaps: dict[datetime, list[Substitution]] = {}
        for sub in self.swaps:
            swaps.setdefault(sub.shift_start, []).append(sub)
        return swaps


def on_leave(rota: Rota, member: str, start: datetime, end: datetime) -> bool:
    """Whether the member has leave overlapping [start, end)."""
    return any(a.start < end and start < a.end for a in rota.leave_of.get(member, ()))


@dataclass(frozen=True)
class Crew:
    """Who serves a shift (squad members by code, then stand-ins in swap order) and who of those
    the rota would have put there is absent, with why ("leave" or "swap")."""

    shift: Shift
    members: tuple[str, ...]
    absent: tuple[tuple[str, str], ...] = ()
    stand_ins: frozenset[str] = field(default_factory=frozenset)


def crew(rota: Rota, shift_: Shift) -> Crew:
    """Who serves the shift: its squad, swaps applied in order, then leave taken out."""
    squad = list(rota.by_squad.get(shift_.squad, ())) if shift_.squad is not None else []
    members = list(squad)
    swapped_out: list[str] = []
    for sub in rota.swaps_at.get(shift_.start, ()):
        if sub.member in members:
            members.remove(sub.member)
            swapped_out.append(sub.member)
        # A stand-in who has left the team since (not among the people) cannot serve.
        if sub.stand_in not in members and sub.stand_in in rota.by_code:
            members.append(sub.stand_in)
    away = [m for m in members if on_leave(rota, m, shift_.start, shift_.end)]
    absent = [(m, "swap") for m in swapped_out if m not in members]
    absent += [(m, "leave") for m in away]
    serving = tuple(m for m in members if m not in away)
    return Crew(shift_, serving, tuple(absent), frozenset(serving) - set(squad))


# --- cover ----------------------------------------------------------------------------------------

def holds(person: Person, skill: str, shift_end: datetime, zone: tzinfo) -> bool:
    """Whether the person holds the skill validly for a shift ending at `shift_end`: an expiry
    date counts through that local day, so it must not end before the shift does."""
    held = person.held(skill)
    if held is None:
        return False
    return held.expires is None or shift_end <= local_midnight_after(held.expires, zone)


@dataclass(frozen=True)
class RuleCover:
    """One rule on one shift: how many are wanted, how many hold the skill, and who."""

    skill: str
    min: int
    have: int
    members: tuple[str, ...]

    @property
    def missing(self) -> int:
        """How many more are needed (0: covered)."""
        return max(self.min - self.have, 0)


@dataclass(frozen=True)
class Gap:
    """A rule not met on a shift: the skill and how many are missing."""

    skill: str
    missing: int


@dataclass(frozen=True)
class Coverage:
    """A shift's crew, each rule's cover, and its gaps."""

    crew: Crew
    rules: tuple[RuleCover, ...]

    @property
    def shift(self) -> Shift:
        """The shift covered."""
        return self.crew.shift

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """The rules not met, in rule order."""
        return tuple(Gap(r.skill, r.missing) for r in self.rules if r.missing)


def coverage(rota: Rota, shift_: Shift) -> Coverage:
    """The shift's cover against every rule."""
    served = crew(rota, shift_)
    zone = rota.template.zone
    covers = []
    for rule in rota.rules:
        members = tuple(m for m in served.members
                        if holds(rota.by_code[m], rule.skill, shift_.end, zone))
        covers.append(RuleCover(rule.skill, rule.min, len(members), members))
    return Coverage(served, tuple(covers))


@dataclass(frozen=True)
class Candidate:
    """Someone who could fill a gap; `rested`: not serving the shift before or after."""

    member: str
    rested: bool


def fill(rota: Rota, shift_: Shift, skill: str, limit: int = FILL_LIMIT) -> tuple[Candidate, ...]:
    """Off-duty members who could fill a gap in `skill`: not on the shift, not on leave then,
    holding the skill validly at its end; rested ones (off the adjacent shifts) first."""
    template = rota.template
    serving = set(crew(rota, shift_).members)
    neighbours = (set(crew(rota, shift(template, shift_.index - 1)).members)
                  | set(crew(rota, shift(template, shift_.index + 1)).members))
    found = [Candidate(p.code, p.code not in neighbours) for p in rota.people
             if p.code not in serving
             and not on_leave(rota, p.code, shift_.start, shift_.end)
             and holds(p, skill, shift_.end, template.zone)]
    found.sort(key=lambda c: (not c.rested, c.member))
    return tuple(found[:limit])


# --- swaps and leave ------------------------------------------------------------------------------

def swap_problem(rota: Rota, sub: Substitution) -> str | None:
    """Why a swap cannot be made on the rota as it stands, or None: `same_person`,
    `not_on_shift` (the member does not serve that shift), `already_on_shift` (the stand-in
    does), `stand_in_on_leave`. The caller checks `shift_start` is a shift's start."""
    if sub.member == sub.stand_in:
        return "same_person"
    shift_ = shift_at(rota.template, sub.shift_start)
    members = crew(rota, shift_).members
    if sub.member not in members:
        return "not_on_shift"
    if sub.stand_in in members:
        return "already_on_shift"
    if on_leave(rota, sub.stand_in, shift_.start, shift_.end):
        return "stand_in_on_leave"
    return None


def with_swap(rota: Rota, sub: Substitution) -> Rota:
    """The rota with one more approved swap (taking effect last)."""
    return replace(rota, swaps=(*rota.swaps, sub))


def with_leave(rota: Rota, absence: Absence) -> Rota:
    """The rota with one more leave."""
    return replace(rota, leave=(*rota.leave, absence))


def worse(before: Coverage, after: Coverage) -> tuple[Gap, ...]:
    """The gaps `after` opens or widens compared with `before` (same shift, same rules)."""
    missing = {r.skill: r.missing for r in before.rules}
    return tuple(Gap(r.skill, r.missing) for r in after.rules
                 if r.missing > missing.get(r.skill, 0))


def opened_gaps(rota: Rota, sub: Substitution) -> tuple[Gap, ...]:
    """The gaps a swap would open or widen on its shift (empty: it keeps the cover)."""
    shift_ = shift_at(rota.template, sub.shift_start)
    return worse(coverage(rota, shift_), coverage(with_swap(rota, sub), shift_))


def leave_clashes(rota: Rota, absence: Absence) -> tuple[Absence, ...]:
    """The member's leave that overlaps a new one."""
    return tuple(a for a in rota.leave_of.get(absence.member, ())
                 if a.start < absence.end and absence.start < a.end)


def leave_gaps(rota: Rota, absence: Absence,
               shifts: Iterable[Shift]) -> list[tuple[Shift, tuple[Gap, ...]]]:
    """For the given shifts, the gaps a new leave would open or widen (shifts without any are
    left out)."""
    after = with_leave(rota, absence)
    found = []
    for shift_ in shifts:
        if not shift_.overlaps(absence.start, absence.end):
            continue
        opened = worse(coverage(rota, shift_), coverage(after, shift_))
        if opened:
            found.append((shift_, opened))
    return found


# --- certificates ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expiry:
    """A certificate expiring soon (days_left ≥ 0) or expired already (< 0)."""

    member: str
    skill: str
    expires: date
    days_left: int


def expiring(people: Sequence[Person], today: date, within_days: int) -> tuple[Expiry, ...]:
    """Certificates (skills that need one) that expire within `within_days` of `today` (local)
    or have expired, soonest first."""
    last = today + timedelta(days=within_days)
    found = [Expiry(p.code, h.skill, h.expires, (h.expires - today).days)
             for p in people for h in p.skills
             if h.certificate and h.expires is not None and h.expires <= last]
    found.sort(key=lambda e: (e.expires, e.member, e.skill))
    return tuple(found)
