"""The rota's pure decisions (dispatch.roster.rota): shifts on the local clock across DST, who
serves, coverage with certificates valid at the shift's end, fill suggestions, swaps, leave and
expiring certificates. Numbers by hand; properties with hypothesis."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.roster import rota
from dispatch.roster.rota import Absence, Gap, Held, Person, Rule, Substitution, Template
from tests.roster.rota_factories import MEMBERS, RULES, SKILLS

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def template(shift_h=24, change_at=time(8), squads=("A", "B"), anchor=date(2026, 7, 1),
             zone=SHANGHAI) -> Template:
    return Template(shift_h, change_at, tuple(squads), anchor, zone)


def people() -> tuple[Person, ...]:
    """The township of tests/roster/rota_factories.py."""
    return tuple(Person(code, squad, tuple(Held(s, d, SKILLS[s][2]) for s, d in skills.items()),
                        f"队员{code}")
                 for code, (squad, skills) in MEMBERS.items())


def township(**changes) -> rota.Rota:
    return rota.Rota(template(), people(), rules=tuple(Rule(r["skill"], r["min"]) for r in RULES),
                     **changes)


def day_shift(day: int) -> rota.Shift:
    """The 24-hour shift from 08:00 Beijing time on `day` July 2026."""
    return rota.shift_at(template(), utc(2026, 7, day, 0, 0))


# --- shifts ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("instant", "start", "end", "squad"), [
    # 1 July 10:00 Beijing: squads[0] serves the anchor date's shift from 08:00.
    (utc(2026, 7, 1, 2), utc(2026, 7, 1, 0), utc(2026, 7, 2, 0), "A"),
    # A change instant belongs to the shift it starts.
    (utc(2026, 7, 1, 0), utc(2026, 7, 1, 0), utc(2026, 7, 2, 0), "A"),
    (utc(2026, 7, 1, 23, 59, 59), utc(2026, 7, 1, 0), utc(2026, 7, 2, 0), "A"),
    (utc(2026, 7, 2, 0), utc(2026, 7, 2, 0), utc(2026, 7, 3, 0), "B"),
    (utc(2026, 7, 3, 12), utc(2026, 7, 3, 0), utc(2026, 7, 4, 0), "A"),
    # Before the anchor: 30 June 07:59 Beijing is still 29 June's shift (n = -2: A).
    (utc(2026, 6, 29, 23, 59), utc(2026, 6, 29, 0), utc(2026, 6, 30, 0), "A"),
    (utc(2026, 6, 30, 0), utc(2026, 6, 30, 0), utc(2026, 7, 1, 0), "B"),
])
def test_24_hour_shifts_alternate_from_the_anchor(instant, start, end, squad):
    found = rota.shift_at(template(), instant)
    assert (found.start, found.end, found.squad) == (start, end, squad)


@pytest.mark.parametrize(("shift_h", "change_at", "squads", "local_starts"), [
    # Two squads on 12-hour shifts: A days, B nights.
    (12, time(8), ("A", "B"), [("07-01 08:00", "A"), ("07-01 20:00", "B"),
                                ("07-02 08:00", "A")]),
    # Three squads on 8-hour shifts from 07:00: 07-15, 15-23, 23-07, then round again.
    (8, time(7), ("A", "B", "C"), [("07-01 07:00", "A"), ("07-01 15:00", "B"),
                                    ("07-01 23:00", "C"), ("07-02 07:00", "A")]),
    # Three squads on 24-hour shifts (24 on, 48 off).
    (24, time(8, 30), ("A", "B", "C"), [("07-01 08:30", "A"), ("07-02 08:30", "B"),
                                         ("07-03 08:30", "C"), ("07-04 08:30", "A")]),
])
def test_shift_patterns(shift_h, change_at, squads, local_starts):
    t = template(shift_h, change_at, squads)
    start = datetime.combine(date(2026, 7, 1), change_at, tzinfo=SHANGHAI)
    found = rota.shifts_between(t, start, start + timedelta(hours=shift_h * len(local_starts)))
    assert [(s.start.astimezone(SHANGHAI).strftime("%m-%d %H:%M"), s.squad)
            for s in found] == local_starts


@pytest.mark.parametrize(("change_at", "instant", "start", "hours"), [
    # Europe/Berlin springs forward on 29 March 2026 at 02:00 (to 03:00): the 24-hour shift
    # from 28 March 08:00 CET (07:00Z) ends 29 March 08:00 CEST (06:00Z), 23 hours.
    (time(8), utc(2026, 3, 28, 12), utc(2026, 3, 28, 7), 23),
    (time(8), utc(2026, 3, 29, 12), utc(2026, 3, 29, 6), 24),
    # And falls back on 25 October 2026 at 03:00 (to 02:00): 25 hours.
    (time(8), utc(2026, 10, 24, 12), utc(2026, 10, 24, 6), 25),
    # A change time inside the spring gap is read with the winter offset: 02:30 is 03:30 CEST.
    (time(2, 30), utc(2026, 3, 29, 12), utc(2026, 3, 29, 1, 30), 23),
    # One that happens twice means its first occurrence (02:30 CEST = 00:30Z).
    (time(2, 30), utc(2026, 10, 25, 12), utc(2026, 10, 25, 0, 30), 25),
])
def test_shifts_keep_the_local_change_time_across_daylight_saving(change_at, instant, start,
                                                                   hours):
    found = rota.shift_at(template(change_at=change_at, zone=BERLIN), instant)
    assert found.start == start
    assert found.end - found.start == timedelta(hours=hours)


def test_a_template_refuses_other_shift_lengths():
    with pytest.raises(ValueError, match="shift_h"):
        template(shift_h=10)


ZONES = st.sampled_from([SHANGHAI, BERLIN, ZoneInfo("America/New_York"),
                         ZoneInfo("Australia/Lord_Howe"), ZoneInfo("America/Santiago"),
                         UTC_ZONE])
TEMPLATES = st.builds(
    Template, st.sampled_from(rota.SHIFT_HOURS),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
    st.lists(st.sampled_from("ABCD"), min_size=1, max_size=4, unique=True).map(tuple),
    st.dates(date(2000, 1, 1), date(2099, 1, 1)), ZONES)
INSTANTS = st.datetimes(datetime(2000, 2, 1), datetime(2099, 11, 1)).map(
    lambda d: d.replace(tzinfo=UTC))


@given(TEMPLATES, INSTANTS)
@settings(max_examples=300, deadline=None)
def test_every_instant_belongs_to_exactly_one_shift(t, instant):
    found = rota.shift_at(t, instant)
    assert found.start <= instant < found.end
    # The neighbours end and start where it does: no gap, no overlap.
    assert rota.shift(t, found.index - 1).end == found.start
    assert rota.shift(t, found.index + 1).start == found.end
    # Never shorter than the shift less a DST step, never longer than it plus one.
    assert timedelta(hours=t.shift_h - 2) <= found.end - found.start <= timedelta(
        hours=t.shift_h + 2)
    assert found.squad == t.squads[found.index % len(t.squads)]


@given(TEMPLATES, INSTANTS, st.integers(1, 24 * 20))
@settings(max_examples=150, deadline=None)
def test_shifts_between_tile_the_range_and_squads_take_turns(t, start, hours):
    end = start + timedelta(hours=hours)
    found = rota.shifts_between(t, start, end)
    assert found[0].start <= start and found[-1].end >= end
    for before, after in zip(found, found[1:], strict=False):
        assert before.end == after.start
        assert t.squads.index(after.squad) == (t.squads.index(before.squad) + 1) % len(t.squads)


@given(TEMPLATES)
@settings(max_examples=100, deadline=None)
def test_the_first_squad_serves_the_anchor_dates_first_shift(t):
    first = datetime.combine(t.anchor, t.change_at).replace(tzinfo=t.zone, fold=0)
    assert rota.shift_at(t, first.astimezone(UTC)).squad == t.squads[0]


# --- who serves ------------------------------------------------------------------------------

def test_the_crew_is_the_squad():
    assert rota.crew(township(), day_shift(1)).members == ("A1", "A2", "A3", "A4")
    assert rota.crew(township(), day_shift(2)).members == ("B1", "B2", "B3")


def test_leave_overlapping_the_shift_takes_the_whole_shift():
    # One hour of leave on 1 July, 20:00-21:00 Beijing time.
    one_hour = Absence("A2", utc(2026, 7, 1, 12), utc(2026, 7, 1, 13))
    crew = rota.crew(township(leave=(one_hour,)), day_shift(1))
    assert crew.members == ("A1", "A3", "A4")
    assert crew.absent == (("A2", "leave"),)
    # Leave ending as the shift starts touches nothing.
    before = Absence("A2", utc(2026, 6, 30), utc(2026, 7, 1, 0))
    assert "A2" in rota.crew(township(leave=(before,)), day_shift(1)).members


def test_swaps_apply_in_order():
    start = day_shift(1).start
    swapped = township(swaps=(Substitution("A1", "B1", start),))
    crew = rota.crew(swapped, day_shift(1))
    assert crew.members == ("A2", "A3", "A4", "B1")
    assert crew.absent == (("A1", "swap"),) and crew.stand_ins == {"B1"}
    # Swapped back: the crew is the squad again.
    back = township(swaps=(Substitution("A1", "B1", start), Substitution("B1", "A1", start)))
    assert set(rota.crew(back, day_shift(1)).members) == {"A1", "A2", "A3", "A4"}
    # A swap applies to its own shift only.
    assert rota.crew(swapped, day_shift(3)).members == ("A1", "A2", "A3", "A4")


def test_leave_wins_over_a_swap():
    start = day_shift(1).start
    state = township(swaps=(Substitution("A1", "B1", start),),
                     leave=(Absence("B1", start, start + timedelta(hours=2)),))
    crew = rota.crew(state, day_shift(1))
    assert "B1" not in crew.members and ("B1", "leave") in crew.absent


# --- cover -----------------------------------------------------------------------------------

def test_coverage_counts_only_certificates_valid_at_the_shift_end():
    cover = rota.coverage(township(), day_shift(1))
    assert [(r.skill, r.min, r.have, r.members) for r in cover.rules] == [
        ("boat", 2, 2, ("A1", "A2")),
        # A3's first-aid certificate expired on 30 June: never counted.
        ("first_aid", 2, 1, ("A1",)),
        # A4's C1 licence expires on 1 July: valid until 2 July 00:00 Beijing time, the middle
        # of this shift (to 2 July 08:00): it does not count for it.
        ("c1", 1, 0, ())]
    assert cover.gaps == (Gap("first_aid", 1), Gap("c1", 1))


@pytest.mark.parametrize(("expires", "shift_end", "counts"), [
    (date(2026, 7, 1), utc(2026, 7, 1, 0), True),     # ends 1 July 08:00 Beijing
    (date(2026, 7, 1), utc(2026, 7, 1, 16), True),    # ends at the day's last instant
    (date(2026, 7, 1), utc(2026, 7, 1, 16, 0, 1), False),
    (date(2026, 7, 1), utc(2026, 7, 2, 0), False),    # expires in the middle of the shift
    (date(2026, 6, 30), utc(2026, 6, 20), True),
    (None, utc(2099, 1, 1), True),                    # no expiry: long-term (长期有效)
])
def test_a_certificate_is_valid_through_its_expiry_date(expires, shift_end, counts):
    person = Person("X", None, (Held("boat", expires, True),))
    assert rota.holds(person, "boat", shift_end, SHANGHAI) is counts
    assert rota.holds(person, "rope", shift_end, SHANGHAI) is False


def test_who_could_fill_a_gap_rested_first():
    # First aid on A's shift of 1 July: C1 (no squad) is rested; B1 and B2 serve the shifts
    # before and after it (B's), so they come after; A3's certificate has expired.
    found = rota.fill(township(), day_shift(1), "first_aid")
    assert found == (rota.Candidate("C1", True), rota.Candidate("B1", False),
                     rota.Candidate("B2", False))
    # Someone on leave during the shift is no candidate.
    away = Absence("C1", utc(2026, 7, 1, 5), utc(2026, 7, 1, 6))
    assert [c.member for c in rota.fill(township(leave=(away,)), day_shift(1), "first_aid")] \
        == ["B1", "B2"]
    # Nobody holds a valid C1 off B's shifts but B1 and B3, who serve both neighbours.
    assert [c.rested for c in rota.fill(township(), day_shift(1), "c1")] == [False, False]


# --- swaps and leave -------------------------------------------------------------------------

@pytest.mark.parametrize(("member", "stand_in", "leave", "problem"), [
    ("A1", "A1", (), "same_person"),
    ("B1", "C1", (), "not_on_shift"),        # B1 serves B's shifts, not A's
    ("A1", "A2", (), "already_on_shift"),
    ("A1", "C1", (Absence("C1", utc(2026, 7, 1, 22), utc(2026, 7, 3)),), "stand_in_on_leave"),
    ("A2", "B2", (Absence("A2", utc(2026, 7, 1, 22), utc(2026, 7, 3)),), "not_on_shift"),
    ("A1", "C1", (), None),
])
def test_swap_problems(member, stand_in, leave, problem):
    sub = Substitution(member, stand_in, day_shift(1).start)
    assert rota.swap_problem(township(leave=leave), sub) == problem


@pytest.mark.parametrize(("member", "stand_in", "opened"), [
    # B2 has boat and first aid: swapping out A1 (the same skills) keeps the cover as it is.
    ("A1", "B2", ()),
    # B3 has only C1: A1's boat goes (2 → 1); first aid is short already and gets shorter
    # (1 → 2 missing); B3's C1 closes that gap.
    ("A1", "B3", (Gap("boat", 1), Gap("first_aid", 2))),
    # C1 brings first aid for A2's boat.
    ("A2", "C1", (Gap("boat", 1),)),
])
def test_what_a_swap_opens(member, stand_in, opened):
    assert rota.opened_gaps(township(), Substitution(member, stand_in, day_shift(1).start)) \
        == opened


def test_leave_clashes_and_the_gaps_it_opens():
    taken = Absence("A1", utc(2026, 7, 1), utc(2026, 7, 3))
    state = township(leave=(taken,))
    assert rota.leave_clashes(state, Absence("A1", utc(2026, 7, 2), utc(2026, 7, 4))) == (taken,)
    assert rota.leave_clashes(state, Absence("A1", utc(2026, 7, 3), utc(2026, 7, 4))) == ()
    assert rota.leave_clashes(state, Absence("A2", utc(2026, 7, 2), utc(2026, 7, 4))) == ()
    # A2 away on 3 July (A's shift): boat 2 → 1.
    away = Absence("A2", utc(2026, 7, 3, 1), utc(2026, 7, 3, 2))
    shifts = rota.shifts_between(state.template, utc(2026, 7, 1), utc(2026, 7, 5))
    found = rota.leave_gaps(township(), away, shifts)
    assert [(s.start, gaps) for s, gaps in found] == [(utc(2026, 7, 3), (Gap("boat", 1),))]


PEOPLE = st.lists(st.tuples(st.sampled_from(["A", "B", None]), st.booleans()), min_size=2,
                  max_size=12)


@given(PEOPLE, st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=8))
@settings(max_examples=200, deadline=None)
def test_swaps_preserve_the_headcount(members, attempts):
    team = tuple(Person(f"M{i}", squad, (Held("boat"),) if boat else ())
                 for i, (squad, boat) in enumerate(members))
    state = rota.Rota(template(), team)
    shift = day_shift(1)
    size = len(rota.crew(state, shift).members)
    for a, b in attempts:
        sub = Substitution(f"M{a % len(team)}", f"M{b % len(team)}", shift.start)
        if rota.swap_problem(state, sub) is None:
            state = rota.with_swap(state, sub)
            crew = rota.crew(state, shift)
            assert len(crew.members) == size
            assert sub.stand_in in crew.members and sub.member not in crew.members


# --- certificates ----------------------------------------------------------------------------

def test_certificates_expiring_soon_or_expired():
    today = date(2026, 7, 1)
    found = rota.expiring(people(), today, 30)
    assert [(e.member, e.skill, e.expires, e.days_left) for e in found] == [
        ("A3", "first_aid", date(2026, 6, 30), -1), ("A4", "c1", date(2026, 7, 1), 0)]
    assert rota.expiring(people(), date(2026, 12, 10), 30)[-1].days_left == 22
    # A skill that needs no certificate is never announced.
    rope = Person("R", None, (Held("rope", date(2026, 7, 2), False),))
    assert rota.expiring((rope,), today, 30) == ()
