"""The rota's jobs with a fixed clock, on both databases: duty statuses at shift change (never a
deployed member, never one outside the rota), and the commander's notices sent once each, as
the office receives them over Socket.IO."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.core.realtime import NAMESPACE
from dispatch.roster import jobs
from dispatch.roster.models import Member, MemberSkill, RotaSetting, Skill
from tests.roster import rota_factories as f
from tests.roster.rota_factories import NOW, shift_start


@pytest.fixture
def township(app):
    f.township()
    with db.transaction() as s:
        s.execute(update(Member).where(Member.code == "A2").values(status="deployed"))
        s.execute(update(Member).where(Member.code == "C1").values(status="on_call"))


@pytest.fixture
def office(login, sio):
    login("dispatcher")
    return sio()


def received(client, name: str) -> list[dict]:
    return [e["args"][0] for e in client.get_received(NAMESPACE) if e["name"] == name]


def statuses() -> dict[str, str]:
    db.session.rollback()
    return dict(db.session.execute(select(Member.code, Member.status)).all())


def duty_audits() -> list[AuditEntry]:
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == "rota.duty")
                              .order_by(AuditEntry.seq)).all()


def test_shift_change_sets_duty_statuses(app, township, office):
    jobs.change_shift(now=NOW)
    assert statuses() == {"A1": "on_shift", "A2": "deployed", "A3": "on_shift",
                          "A4": "on_shift", "B1": "off", "B2": "off", "B3": "off",
                          "C1": "on_call"}
    entry = duty_audits()[-1]
    assert entry.actor == "hub" and entry.entity_id == "2026-07-01T00:00:00+00:00"
    assert json.loads(entry.after) == {"A1": "on_shift", "A3": "on_shift", "A4": "on_shift"}
    assert json.loads(entry.before) == {"A1": "off", "A3": "off", "A4": "off"}
    [event] = received(office, "roster")
    assert event["action"] == "shift_change" and event["squad"] == "A"
    assert event["on_shift"] == ["A1", "A2", "A3", "A4"]
    assert event["changed"] == {"A1": "on_shift", "A3": "on_shift", "A4": "on_shift"}

    # A minute later nothing has changed: no audit, no event.
    jobs.change_shift(now=NOW + timedelta(minutes=1))
    assert len(duty_audits()) == 1 and received(office, "roster") == []

    # The next morning squad B takes over; A2 stays deployed.
    jobs.change_shift(now=shift_start(2) + timedelta(seconds=30))
    assert statuses() == {"A1": "off", "A2": "deployed", "A3": "off", "A4": "off",
                          "B1": "on_shift", "B2": "on_shift", "B3": "on_shift",
                          "C1": "on_call"}
    assert received(office, "roster")[0]["squad"] == "B"


def test_leave_and_swaps_within_a_shift_move_only_those_concerned(app, township, office):
    jobs.change_shift(now=NOW)
    received(office, "roster")
    # By hand, B1 went on call; then A3 takes leave and C1 stands in for A1 on this shift.
    with db.transaction() as s:
        s.execute(update(Member).where(Member.code == "B1").values(status="on_call"))
        f.add_leave(s, "A3", NOW + timedelta(hours=1), NOW + timedelta(hours=30))
        f.add_swap(s, "A1", "C1", shift_start(1))
    jobs.change_shift(now=NOW + timedelta(minutes=1))
    assert statuses() == {"A1": "off", "A2": "deployed", "A3": "leave", "A4": "on_shift",
                          "B1": "on_call", "B2": "off", "B3": "off", "C1": "on_shift"}
    [event] = received(office, "roster")
    assert event["action"] == "duty"
    assert event["changed"] == {"A1": "off", "A3": "leave", "C1": "on_shift"}

    # At the next shift: A3 still on leave; C1 (no squad) was put on shift by the hub, so the
    # hub takes them off again; B1 was on call by hand, and B serves now.
    jobs.change_shift(now=shift_start(2))
    assert statuses() == {"A1": "off", "A2": "deployed", "A3": "leave", "A4": "off",
                          "B1": "on_shift", "B2": "on_shift", "B3": "on_shift", "C1": "off"}


def test_change_shift_follows_the_template(app, township):
    # 12-hour shifts: at 20:00 Beijing time squad B takes the night.
    with db.transaction() as s:
        f.set_value(s, "template", {"shift_h": 12, "change_at": "08:00", "squads": ["A", "B"],
                                    "anchor": f.ANCHOR})
    jobs.change_shift(now=shift_start(1) + timedelta(hours=12))
    assert statuses()["B1"] == "on_shift" and statuses()["A1"] == "off"


def test_roster_notices_are_sent_once(app, township, office):
    with db.transaction() as s:
        f.set_value(s, "rules", [{"skill": "c1", "min": 1}])
    jobs.roster_notices(now=NOW)
    notices = received(office, "notice")
    gaps = [n for n in notices if n["kind"] == "coverage_gap"]
    certificates = [n for n in notices if n["kind"] == "certificate_expiring"]
    # Only A's first shift lacks C1 (A4's licence expires in the middle of it); from 3 July
    # on A4 holds no valid licence at all: every A shift of the 14 days ahead.
    assert [n["shift"]["start"] for n in gaps] == [
        shift_start(day).isoformat() for day in range(1, 16, 2)]
    assert gaps[0]["fill"] == ["B1", "B3"] and gaps[0]["missing"] == 1
    assert {"zh", "en"} == set(gaps[0]["text"])
    assert [(n["member"], n["skill"]) for n in certificates] == [("A3", "first_aid"),
                                                                 ("A4", "c1")]
    assert certificates[1]["text"]["en"] == (
        "队员A4 (A4): the C1 driving licence certificate expires on 2026-07-01, in 0 days.")

    # Fifteen minutes later: nothing new.
    jobs.roster_notices(now=NOW + timedelta(minutes=15))
    assert received(office, "notice") == []

    # B3's licence turns out to expire on 9 July, and B1 takes an hour of leave on 10 July:
    # B's shift of 10 July lacks C1 (new), and B3's certificate is announced.
    with db.transaction() as s:
        b3 = s.scalar(select(Member).where(Member.code == "B3"))
        c1 = s.scalar(select(Skill).where(Skill.code == "c1"))
        s.execute(update(MemberSkill).where(MemberSkill.member_id == b3.id,
                                            MemberSkill.skill_id == c1.id)
                  .values(expires=date(2026, 7, 9)))
        f.add_leave(s, "B1", shift_start(10) + timedelta(hours=2),
                    shift_start(10) + timedelta(hours=3))
    jobs.roster_notices(now=NOW + timedelta(minutes=30))
    fresh = received(office, "notice")
    assert [(n["kind"], n.get("member"), n.get("shift", {}).get("start")) for n in fresh] == [
        ("coverage_gap", None, shift_start(10).isoformat()),
        ("certificate_expiring", "B3", None)]
    # Nobody can fill it: B1 is on leave, B3's and A4's licences have expired.
    assert fresh[0]["fill"] == [] and fresh[0]["text"]["en"].endswith("Could fill: nobody.")
    assert fresh[0]["text"]["zh"].endswith("可补位：无人。")
    announced = db.session.get(RotaSetting, "announced").value["keys"]
    assert len(announced) == len(gaps) + len(certificates) + 2


def test_a_gap_that_closes_and_opens_again_is_announced_again(app, township, office):
    with db.transaction() as s:
        f.set_value(s, "rules", [{"skill": "boat", "min": 2}])
        f.add_leave(s, "A2", shift_start(3), shift_start(3) + timedelta(hours=1))
    jobs.roster_notices(now=NOW)
    gaps = [n for n in received(office, "notice") if n["kind"] == "coverage_gap"]
    assert [n["shift"]["start"] for n in gaps] == [shift_start(3).isoformat()]
    # The leave is cancelled (by hand in the database): the gap closes and is forgotten…
    with db.transaction() as s:
        s.execute(update(Member).where(Member.code == "A2").values(status="off"))
        from dispatch.roster.models import Leave
        s.execute(Leave.__table__.delete())
    jobs.roster_notices(now=NOW + timedelta(minutes=15))
    assert received(office, "notice") == []
    # …and told again when it opens again.
    with db.transaction() as s:
        f.add_leave(s, "A1", shift_start(3), shift_start(3) + timedelta(hours=1))
    jobs.roster_notices(now=NOW + timedelta(minutes=30))
    assert [n["shift"]["start"] for n in received(office, "notice")
            if n["kind"] == "coverage_gap"] == [shift_start(3).isoformat()]


def test_notices_per_run_are_bounded(app, township, office, monkeypatch):
    monkeypatch.setattr(jobs, "NOTICES_PER_RUN", 3)
    with db.transaction() as s:
        f.set_value(s, "rules", [{"skill": "rope", "min": 1}])  # nobody: every shift
    jobs.roster_notices(now=NOW)
    assert len(received(office, "notice")) == 3
    jobs.roster_notices(now=NOW + timedelta(minutes=15))
    assert len(received(office, "notice")) == 3


def test_the_jobs_do_nothing_without_a_rota(app, office):
    jobs.change_shift(now=NOW)
    jobs.roster_notices(now=NOW)
    assert received(office, "roster") == [] and received(office, "notice") == []
    assert duty_audits() == []
