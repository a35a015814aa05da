"""The demo rescue teams (dispatch.roster.demo): the township's full-time team of 43 in squads
A and B and its composite team of 18, a skill mix that covers each squad, certificates expiring
soon and one expired, the prefecture's 1,248 members; deterministic, valid by the contract's own
checks, and loaded idempotently (both databases), also by `rescuehub demo`."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.roster import demo
from dispatch.roster.members import Known, check_member
from dispatch.roster.models import Member, MemberSkill, Skill, Team
from dispatch.roster.service import load_demo_roster
from dispatch.roster.views import today

TODAY = date(2026, 7, 20)
TOWN = SimpleNamespace(code="T000", name_zh="铁关镇")
PREFECTURE = [SimpleNamespace(code=f"T{i:03d}", name_zh=f"第{i}镇") for i in range(1, 104)]


@pytest.fixture(scope="module")
def roster():
    return demo.township_roster(TOWN, today=TODAY)


def _valid(member, day: date) -> set[str]:
    return {s.skill for s in member.skills if s.expires is None or s.expires >= day}


def test_two_teams_the_full_time_one_in_squads_a_and_b(roster):
    assert [(t.code, t.parent) for t in roster.teams] == [
        ("T000-FT", None), ("A", "T000-FT"), ("B", "T000-FT"), ("T000-ZH", None)]
    assert Counter((m.team, m.squad) for m in roster.members) == {
        ("T000-FT", "A"): 22, ("T000-FT", "B"): 21, ("T000-ZH", None): 18}
    composite = [m for m in roster.members if m.team == "T000-ZH"]
    assert Counter(m.post for m in composite) == {p: 3 for p in (
        "safety", "forestry", "fire", "water", "weather", "grid")}  # 多员合一
    assert all(len(m.roles) >= 2 for m in composite)  # 六队一体
    assert all(len(m.skills) >= 2 for m in roster.members)  # 一专多能


def test_names_codes_and_phones(roster):
    assert len({m.code for m in roster.members}) == 61
    assert len({m.name for m in roster.members}) == 61
    assert all(2 <= len(m.name) <= 3 and all("\u4e00" <= c <= "\u9fff" for c in m.name)
               for m in roster.members)
    assert all(len(m.phone) == 11 and m.phone.startswith("139") for m in roster.members)


def test_it_is_deterministic_for_a_seed(roster):
    assert demo.township_roster(TOWN, today=TODAY) == roster
    assert demo.township_roster(TOWN, today=TODAY, seed=7) != roster


def test_certificates_expiring_soon_and_one_expired(roster):
    expiries = [(m.code, s.skill, s.expires) for m in roster.members for s in m.skills
                if s.expires is not None]
    expired = [e for e in expiries if e[2] < TODAY]
    soon = [e for e in expiries if TODAY <= e[2] <= TODAY + timedelta(days=30)]
    assert len(expired) == 1 and expired[0][1] == "first_aid"
    assert len(soon) == 4
    certified = {s.code for s in demo.SKILLS if s.needs_certificate}
    assert all((s.expires is not None) == (s.skill in certified)
               for m in roster.members for s in m.skills)


@pytest.mark.parametrize("squad", ["A", "B"])
def test_each_squad_covers_boats_first_aid_and_a_c1_driver_on_most_days(roster, squad):
    people = [m for m in roster.members if m.squad == squad]
    covered = []
    for day in range(14):
        valid = Counter(s for m in people for s in _valid(m, TODAY + timedelta(days=day)))
        covered.append(valid["boat"] >= 2 and valid["first_aid"] >= 2
                       and valid["licence_c1"] >= 1)
    assert sum(covered) >= 8
    # Squad B's second boat handler's certificate runs out inside the 14-day view: a gap.
    assert all(covered) is (squad == "A")


def test_every_member_passes_the_contracts_checks(roster):
    known = Known(skills={s.code: s.needs_certificate for s in roster.skills},
                  teams={t.code: t.parent for t in roster.teams}, users=set())
    for m in roster.members:
        body = {"code": m.code, "name": m.name, "phone": m.phone, "post": m.post,
                "employment": m.employment, "team": m.team, "squad": m.squad,
                "roles": list(m.roles), "skills": [s.as_json() for s in m.skills],
                "status": m.status}
        assert check_member(body, known).as_json() == {**body, "user": None}


def test_the_prefecture_has_1248_members():
    roster = demo.prefecture_roster(PREFECTURE, today=TODAY)
    assert len(roster.members) == 1248
    assert len({m.code for m in roster.members}) == 1248
    per_town = Counter(m.team for m in roster.members)
    assert len(per_town) == 103 and set(per_town.values()) == {12, 13}
    assert [t.code for t in roster.teams][:2] == ["T001-ZH", "T002-ZH"]
    assert min(s.expires for m in roster.members for s in m.skills if s.expires) > TODAY


def _load(roster) -> dict[str, int]:
    with db.transaction() as s:
        return load_demo_roster(s, roster, actor="test")


def test_loading_is_idempotent_and_audited(app, client, bearer):
    roster = demo.township_roster(TOWN, today=today())
    assert _load(roster) == {"skills": 16, "teams": 4, "members": 61}
    assert _load(roster) == {"skills": 0, "teams": 0, "members": 0}
    headers = bearer("viewer")
    teams = {t["code"]: t for t in client.get("/api/v1/teams", headers=headers).json["items"]}
    assert {code: t["members"] for code, t in teams.items()} == {
        "T000-FT": 43, "A": 22, "B": 21, "T000-ZH": 18}
    assert teams["T000-FT"]["squads"] == ["A", "B"]
    expiring = client.get("/api/v1/members?expiring=30", headers=headers).json["items"]
    assert len(expiring) == 5
    expired = client.get("/api/v1/members?expiring=0", headers=headers).json["items"]
    assert [m["squad"] for m in expired] == ["A"]
    boats = client.get("/api/v1/members?squad=B&skill=boat", headers=headers).json["items"]
    assert len(boats) == 2
    loads = db.session.execute(select(AuditEntry.entity_type, AuditEntry.entity_id,
                                      AuditEntry.after).where(
        AuditEntry.action == "demo.load").order_by(AuditEntry.seq)).all()
    assert [(t, e) for t, e, _ in loads] == [("skills", "catalogue"), ("team", "T000-FT"),
                                             ("team", "A"), ("team", "B"), ("team", "T000-ZH")]
    assert json.loads(loads[1][2])["members"] == 43


def test_a_person_s_changes_survive_a_second_load(app):
    roster = demo.township_roster(TOWN, today=today())
    _load(roster)
    with db.transaction() as s:
        s.scalar(select(Skill).where(Skill.code == "boat")).name_zh = "冲锋舟"
        s.scalar(select(Member).where(Member.code == "T000-F01")).status = "deployed"
    _load(roster)
    assert db.session.scalar(select(Skill.name_zh).where(Skill.code == "boat")) == "冲锋舟"
    assert db.session.scalar(select(Member.status).where(Member.code == "T000-F01")) == \
        "deployed"


def test_the_prefecture_loads_in_bulk(app):
    roster = demo.prefecture_roster(PREFECTURE, today=today())
    assert _load(roster)["members"] == 1248
    assert _load(roster)["members"] == 0
    s = db.session
    assert s.scalar(select(func.count(Member.id))) == 1248
    assert s.scalar(select(func.count(Team.id))) == 103
    assert s.scalar(select(func.count(MemberSkill.id))) == sum(
        len(m.skills) for m in roster.members)


def test_rescuehub_demo_loads_the_teams(app, runner, client, bearer):
    first = runner.invoke("demo")
    assert first.exit_code == 0, first.output
    assert "rescue teams: 61 members in 4 teams and squads added" in first.output
    again = runner.invoke("demo")
    assert "rescue teams: 0 members in 0 teams and squads added" in again.output
    assert db.session.scalar(select(func.count(Member.id))) == 61
    # The demo's rota: A and B alternate, each shift needs 2 boat handlers, 2 first-aiders and
    # a C1 driver, so squad B's expiring boat certificate is a red gap in the coming 14 days.
    headers = bearer("viewer")
    template = client.get("/api/v1/rota/template", headers=headers).json
    assert (template["squads"], template["saved"]) == (["A", "B"], True)
    coverage = client.get("/api/v1/rota/coverage?days=14", headers=headers).json["shifts"]
    assert {s["squad"] for s in coverage} == {"A", "B"}
    gaps = [(s["squad"], g["skill"]) for s in coverage for g in s["gaps"]]
    assert gaps and set(gaps) == {("B", "boat")}
