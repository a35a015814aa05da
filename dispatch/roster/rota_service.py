"""Reading and changing the rota (DESIGN §5 "Roster and positions (contract)"): the template and
coverage rules (RotaSetting rows), shifts with their crews, coverage with who could fill each
gap, swaps (one that opens a gap waits for a commander), leave, duty status at shift change and
the commander's notices. Plain functions taking a session; every change is audited in the
caller's transaction; the decisions are dispatch.roster.rota's.

Stored values:
- `template`: {"shift_h", "change_at", "squads", "anchor"} (rota.py says what each means). Until
  one is saved, the template is [roster] shift_h and change_at with every squad in code order,
  anchored on ANCHOR_UNSAVED; saving without an anchor keeps the stored one, or takes the
  local date of the first save.
- `rules`: [{"skill", "min"}], checked on every shift.
- `announced` (roster_notices): the keys of the notices sent, so each goes out once; `duty`
  (change_shift): the shift whose duty statuses were set, with its crew and leave.

A swap is a row per (member, shift): a rejected one is replaced by the member's next request for
that shift (the audit log keeps the rejected one). Changing the template moves shifts: swaps of
shift starts that no longer exist stay stored and no longer apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from dispatch.core import audit
from dispatch.core.codes import check_code
from dispatch.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    field_error,
    parameter_error,
)
from dispatch.core.settings import Settings
from dispatch.evacuation.settings import CLOCK
from dispatch.roster import rota
from dispatch.roster.models import Leave, Member, MemberSkill, RotaSetting, Skill, Swap, Team
from telemetry.decode import parse_timestamp

TEMPLATE, RULES, ANNOUNCED, DUTY = "template", "rules", "announced", "duty"
# The anchor of a template never saved: any fixed date keeps the alternation stable.
ANCHOR_UNSAVED = date(2026, 1, 1)
# Every time the rota takes lies in these years (shifts far outside are no one's rota).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_RANGE = timedelta(days=62)
DEFAULT_RANGE = timedelta(days=7)
MAX_LEAVE = timedelta(days=366)
SWAP_AHEAD = timedelta(days=366)
MAX_SQUADS = 12
MAX_RULES = 100
MAX_MIN = 1000
MAX_REASON = 200
MAX_ITEMS = 1000
# Leave and swaps are read this far around a range: shifts overlapping it and their neighbours
# (for rest) reach at most two 25-hour shifts beyond it.
MARGIN = timedelta(days=3)
MAX_SWAP_ID = 2**31 - 1
DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
SWAP_STATUSES = ("approved", "pending", "rejected")
TEMPLATE_FIELDS = {"shift_h", "change_at", "squads", "anchor"}
# What GET answers beyond the template's own fields: sent back by a client, they are ignored.
TEMPLATE_READ_ONLY = {"timezone", "saved"}


def iso(instant: datetime) -> str:
    """An instant as RFC 3339 in UTC."""
    return instant.astimezone(UTC).isoformat()


def zone_of(settings: Settings) -> ZoneInfo:
    """The township's local time zone ([roster] timezone)."""
    return ZoneInfo(settings.roster.timezone)


# --- stored settings ------------------------------------------------------------------------------

def _stored(session: Session, key: str, *, lock: bool = False) -> RotaSetting | None:
    if lock:
        return session.scalar(select(RotaSetting).where(RotaSetting.key == key)
                              .with_for_update())
    return session.get(RotaSetting, key)


def _store(session: Session, key: str, value: Any, actor: str) -> None:
    row = _stored(session, key, lock=True)
    if row is None:
        session.add(RotaSetting(key=key, value=value, updated_by=actor))
    else:
        row.value = value
        row.updated_by = actor
    try:
        session.flush()
    except IntegrityError:  # saved at the same moment by another request
        raise Conflict(code="conflict") from None


def _squad_codes(session: Session) -> list[str]:
    return list(session.scalars(select(Team.code).where(Team.parent_id.is_not(None))
                                .order_by(Team.code)))


def template_value(session: Session, settings: Settings) -> dict[str, Any]:
    """The template as stored, or the default one ("saved": false)."""
    row = _stored(session, TEMPLATE)
    if row is not None:
        return {**row.value, "saved": True}
    return {"shift_h": settings.roster.shift_h, "change_at": settings.roster.change_at,
            "squads": _squad_codes(session), "anchor": ANCHOR_UNSAVED.isoformat(),
            "saved": False}


def template(session: Session, settings: Settings) -> rota.Template:
    """The rota's template."""
    value = template_value(session, settings)
    hours, minutes = (int(part) for part in value["change_at"].split(":"))
    return rota.Template(value["shift_h"], time(hours, minutes), tuple(value["squads"]),
                         date.fromisoformat(value["anchor"]), zone_of(settings))


def template_body(session: Session, settings: Settings) -> dict[str, Any]:
    """GET /api/v1/rota/template."""
    value = template_value(session, settings)
    return {"shift_h": value["shift_h"], "change_at": value["change_at"],
            "squads": value["squads"], "anchor": value["anchor"],
            "timezone": settings.roster.timezone, "saved": value["saved"]}


def _refuse_unknown(body: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(_l("Unknown fields: %(names)s. Send %(known)s.",
                            names=", ".join(unknown), known=", ".join(sorted(known))),
                         code="bad_request")


def _shift_hours(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in rota.SHIFT_HOURS:
        raise field_error("shift_h", _l("must be 8, 12 or 24 (hours a shift lasts: three, two "
                                        "or one shift a day)"))
    return value


def _clock(value: Any) -> str:
    if not isinstance(value, str) or not CLOCK.match(value):
        raise field_error("change_at", _l("must be a time of day as HH:MM, such as 08:00"))
    return value


def _squads(session: Session, value: Any) -> list[str]:
    if (not isinstance(value, list) or not 1 <= len(value) <= MAX_SQUADS
            or not all(isinstance(v, str) for v in value)):
        raise field_error("squads", _l("must be a list of 1 to %(max)d squad codes",
                                       max=MAX_SQUADS))
    if len(set(value)) != len(value):
        raise field_error("squads", _l("names a squad twice"))
    known = set(_squad_codes(session))
    unknown = [code for code in value if code not in known]
    if unknown:
        raise field_error("squads", _l("%(codes)s: no squad has this code (a squad is a team "
                                       "that belongs to a team)", codes=", ".join(unknown)))
    return value


def _anchor(value: Any) -> str:
    try:
        if not isinstance(value, str) or not DATE.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
        if not EARLIEST.date() <= day < LATEST.date():
            raise ValueError(value)
    except ValueError:
        raise field_error("anchor", _l("must be a date YYYY-MM-DD between 2000 and 2099")) from None
    return value


def save_template(session: Session, settings: Settings, body: Any, *, actor: str,
                  now: datetime) -> dict[str, Any]:
    """PUT /api/v1/rota/template: check, store, audit; returns the new template body."""
    if not isinstance(body, dict):
        raise BadRequest(_l("Send a JSON object."), code="bad_json")
    _refuse_unknown(body, TEMPLATE_FIELDS | TEMPLATE_READ_ONLY)
    before = template_value(session, settings)
    row = _stored(session, TEMPLATE)
    if "anchor" in body:
        anchor = _anchor(body["anchor"])
    elif row is not None:
        anchor = row.value["anchor"]
    else:
        anchor = now.astimezone(zone_of(settings)).date().isoformat()
    if "squads" not in body:
        raise field_error("squads", _l("is required"))
    value = {"shift_h": _shift_hours(body.get("shift_h", settings.roster.shift_h)),
             "change_at": _clock(body.get("change_at", settings.roster.change_at)),
             "squads": _squads(session, body["squads"]), "anchor": anchor}
    _store(session, TEMPLATE, value, actor)
    audit.record(session, actor=actor, action="rota.template", entity_type="rota",
                 entity_id=TEMPLATE, before=before if row is not None else None, after=value)
    return template_body(session, settings)


def rules_value(session: Session) -> list[dict[str, Any]]:
    """The coverage rules as stored ([] until saved)."""
    row = _stored(session, RULES)
    return list(row.value) if row is not None else []


def _skill_codes(session: Session) -> dict[str, Skill]:
    return {s.code: s for s in session.scalars(select(Skill))}


def _rule(index: int, item: Any, skills: Mapping[str, Skill]) -> dict[str, Any]:
    where = f"[{index}]"
    if not isinstance(item, dict):
        raise field_error(where, _l("must be an object {\"skill\", \"min\"}"))
    _refuse_unknown(item, {"skill", "min"})
    skill = item.get("skill")
    if not isinstance(skill, str) or skill not in skills:
        raise field_error(f"{where}.skill", _l("no skill has the code %(code)s",
                                               code=str(skill)[:64]))
    least = item.get("min")
    if isinstance(least, bool) or not isinstance(least, int) or not 0 <= least <= MAX_MIN:
        raise field_error(f"{where}.min", _l("must be a whole number from 0 to %(max)d",
                                             max=MAX_MIN))
    return {"skill": skill, "min": least}


def save_rules(session: Session, body: Any, *, actor: str) -> list[dict[str, Any]]:
    """PUT /api/v1/rota/rules: a list of {skill, min}, each skill once; stored and audited."""
    if not isinstance(body, list) or len(body) > MAX_RULES:
        raise BadRequest(_l("Send a JSON list of at most %(max)d rules "
                            "[{\"skill\": code, \"min\": number}].", max=MAX_RULES),
                         code="bad_json")
    skills = _skill_codes(session)
    rules = [_rule(i, item, skills) for i, item in enumerate(body)]
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule["skill"] in seen:
            raise field_error(f"[{i}].skill", _l("has a rule already"))
        seen.add(rule["skill"])
    before = rules_value(session)
    _store(session, RULES, rules, actor)
    audit.record(session, actor=actor, action="rota.rules", entity_type="rota",
                 entity_id=RULES, before=before, after=rules)
    return rules


# --- the rota as the tables hold it ---------------------------------------------------------------

@dataclass(frozen=True)
class Loaded:
    """The rota around a time range, with what the answers name: member names and ids, skill
    names, and the swap and leave rows (every status) of the range."""

    rota: rota.Rota
    ids: dict[str, int]
    skill_names: dict[str, tuple[str, str]]
    swaps: list[dict[str, Any]]
    leave: list[dict[str, Any]]


def _people(session: Session) -> tuple[list[rota.Person], dict[str, int]]:
    squad = aliased(Team)
    rows = session.execute(select(Member.id, Member.code, Member.name, squad.code)
                           .outerjoin(squad, squad.id == Member.squad_id)
                           .where(Member.active.is_(True)).order_by(Member.code)).all()
    held: dict[int, list[rota.Held]] = {}
    for member_id, code, certificate, expires in session.execute(
            select(MemberSkill.member_id, Skill.code, Skill.needs_certificate,
                   MemberSkill.expires).join(Skill, Skill.id == MemberSkill.skill_id)
            .order_by(Skill.code)):
        held.setdefault(member_id, []).append(rota.Held(code, expires, bool(certificate)))
    people = [rota.Person(code, squad_code, tuple(held.get(member_id, ())), name)
              for member_id, code, name, squad_code in rows]
    return people, {code: member_id for member_id, code, _n, _s in rows}


def load(session: Session, settings: Settings, start: datetime, end: datetime) -> Loaded:
    """The rota for shifts overlapping [start, end) and their neighbours."""
    people, ids = _people(session)
    lo, hi = start - MARGIN, end + MARGIN
    member, stand_in = aliased(Member), aliased(Member)
    swap_rows = session.execute(
        select(Swap, member.code, stand_in.code)
        .join(member, member.id == Swap.member_id).join(stand_in, stand_in.id == Swap.with_id)
        .where(Swap.shift_start >= lo, Swap.shift_start < hi).order_by(Swap.id)).all()
    # Approved swaps apply in the order they took effect.
    effective = sorted((r for r in swap_rows if r[0].status == "approved"),
                       key=lambda r: (r[0].decided_at or r[0].created_at, r[0].id))
    leave_rows = session.execute(
        select(Leave, Member.code).join(Member, Member.id == Leave.member_id)
        .where(Leave.start_at < hi, Leave.end_at > lo).order_by(Leave.start_at, Leave.id)).all()
    state = rota.Rota(
        template(session, settings), tuple(people),
        leave=tuple(rota.Absence(code, row.start_at, row.end_at) for row, code in leave_rows),
        swaps=tuple(rota.Substitution(m, w, row.shift_start) for row, m, w in effective),
        rules=tuple(rota.Rule(r["skill"], r["min"]) for r in rules_value(session)))
    skills = {s.code: (s.name_zh, s.name_en or s.name_zh) for s in _skill_codes(session).values()}
    return Loaded(state, ids, skills, [swap_body(row, m, w) for row, m, w in swap_rows],
                  [leave_body(row, code) for row, code in leave_rows])


def swap_body(row: Swap, member: str, stand_in: str) -> dict[str, Any]:
    """A swap as the API gives it."""
    return {"id": row.id, "member": member, "with": stand_in, "shift": iso(row.shift_start),
            "status": row.status, "gaps": row.gaps or [], "created_by": row.created_by,
            "created_at": iso(row.created_at) if row.created_at else None,
            "decided_by": row.decided_by,
            "decided_at": iso(row.decided_at) if row.decided_at else None}


def leave_body(row: Leave, member: str) -> dict[str, Any]:
    """A leave as the API gives it."""
    return {"id": row.id, "member": member, "start": iso(row.start_at), "end": iso(row.end_at),
            "reason": row.reason, "created_by": row.created_by}


def _person(loaded: Loaded, code: str) -> dict[str, str]:
    person = loaded.rota.by_code.get(code)
    return {"code": code, "name": person.name if person else ""}


def shift_head(shift: rota.Shift) -> dict[str, Any]:
    """A shift's start, end and squad."""
    return {"start": iso(shift.start), "end": iso(shift.end), "squad": shift.squad}


def shift_body(loaded: Loaded, shift: rota.Shift) -> dict[str, Any]:
    """One shift of GET /api/v1/rota: its crew (squad members and stand-ins), who is absent and
    why, its swaps (every status) and the leave overlapping it of those it concerns."""
    crew = rota.crew(loaded.rota, shift)
    start = iso(shift.start)
    swaps = [s for s in loaded.swaps if s["shift"] == start]
    concerned = set(crew.members) | {m for m, _why in crew.absent}
    leave = [item for item in loaded.leave if item["member"] in concerned
             and shift.overlaps(datetime.fromisoformat(item["start"]),
                                datetime.fromisoformat(item["end"]))]
    return {**shift_head(shift),
            "members": [{**_person(loaded, m), "via": "swap" if m in crew.stand_ins else "squad"}
                        for m in crew.members],
            "absent": [{**_person(loaded, m), "why": why} for m, why in crew.absent],
            "swaps": swaps, "leave": leave}


def shifts(session: Session, settings: Settings, start: datetime,
           end: datetime) -> dict[str, Any]:
    """GET /api/v1/rota: the shifts overlapping [start, end)."""
    loaded = load(session, settings, start, end)
    found = rota.shifts_between(loaded.rota.template, start, end)
    return {"from": iso(start), "to": iso(end), "timezone": settings.roster.timezone,
            "shifts": [shift_body(loaded, s) for s in found]}


def _fill_body(loaded: Loaded, shift: rota.Shift, skill: str) -> dict[str, Any]:
    return {"skill": skill, "members": [
        {**_person(loaded, c.member), "rested": c.rested}
        for c in rota.fill(loaded.rota, shift, skill)]}


def coverage_body(loaded: Loaded, shift: rota.Shift) -> dict[str, Any]:
    """One shift of GET /api/v1/rota/coverage."""
    cover = rota.coverage(loaded.rota, shift)
    return {**shift_head(shift),
            "rules": [{"skill": r.skill, "min": r.min, "have": r.have, "members": list(r.members)}
                      for r in cover.rules],
            "gaps": [{"skill": g.skill, "missing": g.missing} for g in cover.gaps],
            "fill": [_fill_body(loaded, shift, g.skill) for g in cover.gaps]}


def coverage(session: Session, settings: Settings, now: datetime, days: int) -> dict[str, Any]:
    """GET /api/v1/rota/coverage: every shift from the current one to `days` ahead."""
    end = now + timedelta(days=days)
    loaded = load(session, settings, now, end)
    found = rota.shifts_between(loaded.rota.template, now, end)
    return {"from": iso(found[0].start), "to": iso(found[-1].end),
            "timezone": settings.roster.timezone,
            "shifts": [coverage_body(loaded, s) for s in found]}


# --- parsing times --------------------------------------------------------------------------------

def _instant(text: Any) -> datetime:
    """An RFC 3339 time with an offset in the rota's years (ValueError if not)."""
    if not isinstance(text, str):
        raise ValueError(text)
    instant = parse_timestamp(text)
    if not EARLIEST <= instant < LATEST:
        raise ValueError(text)
    return instant


TIME_PROBLEM = _l("must be a time like 2026-07-27T08:00:00+08:00 (RFC 3339 with an offset) "
                  "between 2000 and 2099")


def body_instant(body: Mapping[str, Any], name: str) -> datetime:
    """A required time field of a body; 400 naming it."""
    if name not in body:
        raise field_error(name, _l("is required"))
    try:
        return _instant(body[name])
    except ValueError:
        raise field_error(name, TIME_PROBLEM) from None


def parameter_instant(args: Mapping[str, str], name: str) -> datetime | None:
    """An optional time query parameter ("+" may arrive as a space)."""
    text = args.get(name)
    if text is None or text == "":
        return None
    try:
        return _instant(text.replace(" ", "+"))
    except ValueError:
        raise parameter_error(name, TIME_PROBLEM) from None


def time_range(args: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    """`from` and `to` of GET /api/v1/rota: default from now, a week; at most MAX_RANGE."""
    start = parameter_instant(args, "from") or now
    end = parameter_instant(args, "to") or start + DEFAULT_RANGE
    if end <= start:
        raise parameter_error("to", _l("must be after from"))
    if end - start > MAX_RANGE:
        raise parameter_error("to", _l("must be at most %(days)d days after from",
                                       days=MAX_RANGE.days))
    return start, end


# --- members --------------------------------------------------------------------------------------

def _member(session: Session, body: Mapping[str, Any], field: str) -> Member:
    if field not in body:
        raise field_error(field, _l("is required"))
    code = check_code(field, body[field], 32)
    row = session.scalar(select(Member).where(Member.code == code, Member.active.is_(True))
                         .with_for_update())
    if row is None:
        raise field_error(field, _l("no member has the code %(code)s", code=code))
    return row


# --- swaps ----------------------------------------------------------------------------------------

SWAP_PROBLEMS = {
    "not_on_shift": _l("%(member)s does not serve the shift starting %(shift)s (another squad's "
                       "shift, on leave, or swapped out already)."),
    "already_on_shift": _l("%(with)s serves the shift starting %(shift)s already."),
    "stand_in_on_leave": _l("%(with)s is on leave during the shift starting %(shift)s."),
}


def _shift_of(template_: rota.Template, instant: datetime, now: datetime) -> rota.Shift:
    found = rota.shift_at(template_, instant)
    if found.start != instant:
        raise field_error("shift", _l("must be the start of a shift: the shift around it starts "
                                      "at %(start)s", start=iso(found.start)))
    if found.end <= now:
        raise Conflict(_l("The shift starting %(start)s is over: swaps are for shifts to come "
                          "or under way.", start=iso(found.start)), code="shift_over")
    if found.start > now + SWAP_AHEAD:
        raise field_error("shift", _l("must start within %(days)d days", days=SWAP_AHEAD.days))
    return found


def _check_swap(loaded: Loaded, sub: rota.Substitution) -> None:
    problem = rota.swap_problem(loaded.rota, sub)
    if problem == "same_person":
        raise field_error("with", _l("must be someone else than member"))
    if problem is not None:
        raise Conflict(SWAP_PROBLEMS[problem] % {
            "member": sub.member, "with": sub.stand_in, "shift": iso(sub.shift_start)},
            code=problem)


def request_swap(session: Session, settings: Settings, body: Any, *, actor: str, role: str,
                 now: datetime) -> tuple[Swap, dict[str, Any]]:
    """POST /api/v1/rota/swaps: approved at once when it keeps the cover, else pending with the
    gaps it would open (a commander may approve their own at once with "approve": true)."""
    if not isinstance(body, dict):
        raise BadRequest(_l("Send a JSON object."), code="bad_json")
    _refuse_unknown(body, {"member", "with", "shift", "approve"})
    approve = body.get("approve", False)
    if not isinstance(approve, bool):
        raise field_error("approve", _l("must be true or false"))
    for field in ("member", "with"):
        if field not in body:
            raise field_error(field, _l("is required"))
        check_code(field, body[field], 32)
    if body["member"] == body["with"]:
        raise field_error("with", _l("must be someone else than member"))
    instant = body_instant(body, "shift")
    member, stand_in = _member(session, body, "member"), _member(session, body, "with")
    shift = _shift_of(template(session, settings), instant, now)
    existing = session.scalar(select(Swap).where(Swap.member_id == member.id,
                                                 Swap.shift_start == shift.start)
                              .with_for_update())
    if existing is not None and existing.status != "rejected":
        raise Conflict(_l("%(member)s has a swap for the shift starting %(shift)s already "
                          "(%(status)s).", member=member.code, shift=iso(shift.start),
                          status=existing.status), code="swap_exists")
    loaded = load(session, settings, shift.start, shift.end)
    sub = rota.Substitution(member.code, stand_in.code, shift.start)
    _check_swap(loaded, sub)
    gaps = [{"skill": g.skill, "missing": g.missing} for g in rota.opened_gaps(loaded.rota, sub)]
    if gaps and approve and role != "commander":
        raise Forbidden(_l("Only a commander approves a swap that opens a coverage gap."))
    before = None
    if existing is not None:  # rejected: this request replaces it
        before = swap_body(existing, member.code, session.get(Member, existing.with_id).code)
    row = existing or Swap(member_id=member.id, shift_start=shift.start)
    row.with_id, row.gaps, row.created_by, row.created_at = stand_in.id, gaps, actor, now
    row.status = "approved" if not gaps or approve else "pending"
    approved = row.status == "approved"
    row.decided_at = now if approved else None
    # Approved at once for keeping the cover: no one decided; a commander's own: they did.
    row.decided_by = actor if approved and gaps else None
    if existing is None:
        session.add(row)
    try:
        session.flush()
    except IntegrityError:  # the same swap asked for at the same moment
        raise Conflict(code="swap_exists") from None
    after = swap_body(row, member.code, stand_in.code)
    audit.record(session, actor=actor, action="rota.swap", entity_type="rota_swap",
                 entity_id=row.id, before=before, after=after)
    return row, after


def _swap(session: Session, swap_id: int) -> tuple[Swap, str, str]:
    row = session.scalar(select(Swap).where(Swap.id == swap_id).with_for_update()) \
        if 0 < swap_id <= MAX_SWAP_ID else None
    if row is None:
        raise NotFound(_l("There is no swap %(id)s.", id=swap_id), code="no_swap")
    member, stand_in = session.get(Member, row.member_id), session.get(Member, row.with_id)
    return row, member.code, stand_in.code


def decide_swap(session: Session, settings: Settings, swap_id: int, *, approve: bool,
                actor: str, now: datetime) -> dict[str, Any]:
    """POST …/swaps/{id}/approve or /reject (commander): a pending swap is decided, audited."""
    row, member, stand_in = _swap(session, swap_id)
    if row.status != "pending":
        raise Conflict(_l("Swap %(id)s is %(status)s already: only a pending swap is decided.",
                          id=swap_id, status=row.status), code="not_pending")
    before = swap_body(row, member, stand_in)
    if approve:
        shift = rota.shift_at(template(session, settings), row.shift_start)
        if shift.start != row.shift_start:
            raise Conflict(_l("The template changed: no shift starts at %(start)s any more.",
                              start=iso(row.shift_start)), code="no_such_shift")
        if shift.end <= now:
            raise Conflict(_l("The shift starting %(start)s is over: swaps are for shifts to "
                              "come or under way.", start=iso(shift.start)), code="shift_over")
        loaded = load(session, settings, shift.start, shift.end)
        _check_swap(loaded, rota.Substitution(member, stand_in, row.shift_start))
    row.status = "approved" if approve else "rejected"
    row.decided_by, row.decided_at = actor, now
    session.flush()
    after = swap_body(row, member, stand_in)
    audit.record(session, actor=actor, action="rota.swap." + ("approve" if approve else "reject"),
                 entity_type="rota_swap", entity_id=row.id, before=before, after=after)
    return after


def _filter_codes(session: Session, args: Mapping[str, str]) -> int | None:
    code = args.get("member")
    if not code:
        return None
    member_id = session.scalar(select(Member.id).where(Member.code == code))
    if member_id is None:
        raise parameter_error("member", _l("no member has the code %(code)s", code=code[:64]))
    return member_id


def list_swaps(session: Session, settings: Settings, args: Mapping[str, str],
               now: datetime) -> dict[str, Any]:
    """GET /api/v1/rota/swaps: by shift start (`from`, default the current shift's; `to`),
    `status`, `member` (who swaps out or in)."""
    status = args.get("status")
    if status and status not in SWAP_STATUSES:
        raise parameter_error("status", _l("must be approved, pending or rejected"))
    start = parameter_instant(args, "from") or rota.shift_at(template(session, settings),
                                                              now).start
    end = parameter_instant(args, "to")
    member, stand_in = aliased(Member), aliased(Member)
    query = (select(Swap, member.code, stand_in.code)
             .join(member, member.id == Swap.member_id).join(stand_in, stand_in.id == Swap.with_id)
             .where(Swap.shift_start >= start))
    if end is not None:
        query = query.where(Swap.shift_start < end)
    if status:
        query = query.where(Swap.status == status)
    member_id = _filter_codes(session, args)
    if member_id is not None:
        query = query.where((Swap.member_id == member_id) | (Swap.with_id == member_id))
    rows = session.execute(query.order_by(Swap.shift_start, Swap.id).limit(MAX_ITEMS)).all()
    return {"items": [swap_body(row, m, w) for row, m, w in rows]}


# --- leave ----------------------------------------------------------------------------------------

def add_leave(session: Session, settings: Settings, body: Any, *, actor: str,
              now: datetime) -> dict[str, Any]:
    """POST /api/v1/rota/leave: one member's leave, never overlapping their other leave;
    answers with the coverage gaps it opens in the coming coverage_days."""
    if not isinstance(body, dict):
        raise BadRequest(_l("Send a JSON object."), code="bad_json")
    _refuse_unknown(body, {"member", "start", "end", "reason"})
    start, end = body_instant(body, "start"), body_instant(body, "end")
    if end <= start:
        raise field_error("end", _l("must be after start"))
    if end - start > MAX_LEAVE:
        raise field_error("end", _l("must be at most %(days)d days after start",
                                    days=MAX_LEAVE.days))
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise field_error("reason", _l("must be text of at most %(max)d characters",
                                       max=MAX_REASON))
    member = _member(session, body, "member")
    clash = session.scalar(select(Leave).where(Leave.member_id == member.id,
                                               Leave.start_at < end, Leave.end_at > start)
                           .order_by(Leave.start_at).limit(1))
    if clash is not None:
        raise Conflict(_l("%(member)s is on leave from %(start)s to %(end)s already.",
                          member=member.code, start=iso(clash.start_at), end=iso(clash.end_at)),
                       code="leave_overlaps")
    window_end = now + timedelta(days=settings.roster.coverage_days)
    opened: list[dict[str, Any]] = []
    if start < window_end and end > now:
        loaded = load(session, settings, max(start, now), min(end, window_end))
        near = rota.shifts_between(loaded.rota.template, max(start, now), min(end, window_end))
        absence = rota.Absence(member.code, start, end)
        opened = [{**shift_head(s), "gaps": [{"skill": g.skill, "missing": g.missing}
                                             for g in gaps]}
                  for s, gaps in rota.leave_gaps(loaded.rota, absence, near)]
    row = Leave(member_id=member.id, start_at=start, end_at=end, reason=reason,
                created_by=actor, created_at=now)
    session.add(row)
    session.flush()
    after = leave_body(row, member.code)
    audit.record(session, actor=actor, action="rota.leave", entity_type="rota_leave",
                 entity_id=row.id, after=after)
    return {**after, "gaps": opened}


def list_leave(session: Session, args: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """GET /api/v1/rota/leave: leave overlapping [from, to) (default: not yet over), `member`."""
    start = parameter_instant(args, "from") or now
    end = parameter_instant(args, "to")
    query = select(Leave, Member.code).join(Member, Member.id == Leave.member_id).where(
        Leave.end_at > start)
    if end is not None:
        if end <= start:
            raise parameter_error("to", _l("must be after from"))
        query = query.where(Leave.start_at < end)
    member_id = _filter_codes(session, args)
    if member_id is not None:
        query = query.where(Leave.member_id == member_id)
    rows = session.execute(query.order_by(Leave.start_at, Leave.id).limit(MAX_ITEMS)).all()
    return {"items": [leave_body(row, code) for row, code in rows]}


# --- notices --------------------------------------------------------------------------------------

LANGUAGES = {"zh": "zh_Hans_CN", "en": "en"}
GAP_TEXT = _l("Shift from %(start)s (squad %(squad)s) lacks %(missing)d × %(skill)s. "
              "Could fill: %(fill)s.")
EXPIRING_TEXT = _l("%(name)s (%(member)s): the %(skill)s certificate expires on %(expires)s, "
                   "in %(days)d days.")
EXPIRED_TEXT = _l("%(name)s (%(member)s): the %(skill)s certificate expired on %(expires)s; "
                  "it no longer counts as cover.")
NOBODY = _l("nobody")


def _both(message, **variables: Any) -> dict[str, str]:
    """A message in Chinese and English: each variable is one value for both languages or a
    {"zh": …, "en": …} pair (lazy phrases among them are translated too)."""
    text = {}
    for short, locale in LANGUAGES.items():
        with force_locale(locale):
            values = {}
            for name, value in variables.items():
                value = value[short] if isinstance(value, dict) else value
                values[name] = value if isinstance(value, int | str) else str(value)
            text[short] = str(message) % values
    return text


def _local(instant: datetime, settings: Settings) -> str:
    return instant.astimezone(zone_of(settings)).strftime("%Y-%m-%d %H:%M")


def _skill_name(loaded: Loaded, skill: str) -> dict[str, str]:
    zh, en = loaded.skill_names.get(skill, (skill, skill))
    return {"zh": zh, "en": en}


def _gap_notice(loaded: Loaded, settings: Settings, shift: rota.Shift,
                gap: rota.Gap) -> dict[str, Any]:
    fill = [c.member for c in rota.fill(loaded.rota, shift, gap.skill)]
    names = ", ".join(f"{_person(loaded, m)['name']} ({m})" for m in fill)
    text = _both(GAP_TEXT, start=_local(shift.start, settings), squad=shift.squad or "-",
                 missing=gap.missing, skill=_skill_name(loaded, gap.skill),
                 fill=names or NOBODY)
    return {"kind": "coverage_gap", "key": f"gap:{iso(shift.start)}:{gap.skill}",
            "text": text, "shift": shift_head(shift), "skill": gap.skill,
            "missing": gap.missing, "fill": fill}


def _expiry_notice(loaded: Loaded, expiry: rota.Expiry) -> dict[str, Any]:
    message = EXPIRING_TEXT if expiry.days_left >= 0 else EXPIRED_TEXT
    text = _both(message, name=_person(loaded, expiry.member)["name"], member=expiry.member,
                 skill=_skill_name(loaded, expiry.skill), expires=expiry.expires.isoformat(),
                 days=expiry.days_left)
    return {"kind": "certificate_expiring",
            "key": f"cert:{expiry.member}:{expiry.skill}:{expiry.expires.isoformat()}",
            "text": text, "member": expiry.member, "skill": expiry.skill,
            "expires": expiry.expires.isoformat(), "days_left": expiry.days_left}


def notices(session: Session, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """The commander's notices now: every coverage gap of the coming coverage_days, and every
    certificate expiring within expiry_warn_days (or expired)."""
    end = now + timedelta(days=settings.roster.coverage_days)
    loaded = load(session, settings, now, end)
    found = []
    for shift in rota.shifts_between(loaded.rota.template, now, end):
        for gap in rota.coverage(loaded.rota, shift).gaps:
            found.append(_gap_notice(loaded, settings, shift, gap))
    today = now.astimezone(zone_of(settings)).date()
    for expiry in rota.expiring(loaded.rota.people, today, settings.roster.expiry_warn_days):
        found.append(_expiry_notice(loaded, expiry))
    return found


def announce(session: Session, settings: Settings, now: datetime,
             most: int) -> list[dict[str, Any]]:
    """The notices not announced yet (at most `most`), marked announced; keys of notices that
    no longer hold are forgotten (a gap that closes and opens again is announced again)."""
    current = notices(session, settings, now)
    row = _stored(session, ANNOUNCED, lock=True)
    before = set(row.value.get("keys", [])) if row is not None else set()
    fresh = [n for n in current if n["key"] not in before][:most]
    keys = sorted({n["key"] for n in current} & before | {n["key"] for n in fresh})
    if row is None or sorted(before) != keys:
        _store(session, ANNOUNCED, {"keys": keys}, "hub")
    return fresh


# --- duty status at shift change ------------------------------------------------------------------

HUB = "hub"


def apply_duty(session: Session, settings: Settings, now: datetime) -> dict[str, Any] | None:
    """Set duty statuses for the current shift: on_shift for its crew, leave for those on leave
    then, off for the rest of the rota's people (squads of the template, and whoever the hub set
    on shift or on leave before). `deployed` members are never touched. At a new shift every
    status is set; within a shift only those whose place changed (a swap, leave) are. Returns
    the `roster` event, or None when nothing changed."""
    loaded = load(session, settings, now, now)
    template_ = loaded.rota.template
    shift = rota.shift_at(template_, now)
    crew = rota.crew(loaded.rota, shift)
    away = {p.code for p in loaded.rota.people
            if rota.on_leave(loaded.rota, p.code, shift.start, shift.end)}
    state = {"shift": iso(shift.start), "crew": sorted(crew.members), "leave": sorted(away)}
    stored = _stored(session, DUTY, lock=True)
    previous = stored.value if stored is not None else {}
    if previous == state:
        return None
    new_shift = previous.get("shift") != state["shift"]
    moved = (set(previous.get("crew", [])) ^ set(crew.members)) | (
        set(previous.get("leave", [])) ^ away)
    wanted = {**{m: "leave" for m in away}, **{m: "on_shift" for m in crew.members}}
    squads = set(template_.squads)
    members = session.scalars(select(Member).where(Member.active.is_(True))).all()
    before, after = {}, {}
    for member in members:
        person = loaded.rota.by_code.get(member.code)
        squad = person.squad if person is not None else None
        in_rota = (squad in squads or member.code in wanted
                   or member.status in ("on_shift", "leave"))
        if not in_rota or member.status == "deployed":
            continue
        if not new_shift and member.code not in moved:
            continue
        status = wanted.get(member.code, "off")
        if member.status != status:
            before[member.code], after[member.code] = member.status, status
            member.status, member.status_at = status, now
    _store(session, DUTY, state, HUB)
    if before:
        audit.record(session, actor=HUB, action="rota.duty", entity_type="rota_shift",
                     entity_id=iso(shift.start), before=before, after=after)
    # A new shift is announced even when no status changed; a rota without squads never.
    if not before and (not new_shift or shift.squad is None):
        return None
    return {"action": "shift_change" if new_shift else "duty", **shift_head(shift),
            "on_shift": list(crew.members), "leave": sorted(away), "changed": after}
