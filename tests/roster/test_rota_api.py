"""The rota through the API on both databases: template, rules, shifts, coverage, swaps (one
that opens a gap waits for a commander), leave, notices; roles, audit and bad input.

The township is tests/roster/rota_factories.py's; the hub's clock is fixed at NOW (1 July 2026,
10:00 Beijing time, in squad A's shift)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.roster import rota_views
from dispatch.roster.models import Swap
from tests.roster import rota_factories as f
from tests.roster.rota_factories import NOW, shift_start


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(rota_views, "utcnow", lambda: NOW)


@pytest.fixture
def township(app):
    f.township()


@pytest.fixture
def commander(bearer):
    return bearer("commander")


def audits(action: str) -> list[AuditEntry]:
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.seq)).all()


def iso(instant) -> str:
    return instant.isoformat()


def swap(client, headers, member, stand_in, day, **extra):
    return client.post("/api/v1/rota/swaps", headers=headers, json={
        "member": member, "with": stand_in, "shift": iso(shift_start(day)), **extra})


# --- template ----------------------------------------------------------------------------------

def test_the_default_template_alternates_every_squad(app, client, bearer):
    f.township(template=False)
    answer = client.get("/api/v1/rota/template", headers=bearer("viewer"))
    assert answer.status_code == 200
    assert answer.json == {"shift_h": 24, "change_at": "08:00", "squads": ["A", "B"],
                           "anchor": "2026-01-01", "timezone": "Asia/Shanghai",
                           "saved": False}


def test_put_template_keeps_the_anchor_and_is_audited(app, client, township, editor):
    answer = client.put("/api/v1/rota/template", headers=editor,
                        json={"shift_h": 12, "change_at": "07:30", "squads": ["B", "A"]})
    assert answer.status_code == 200, answer.json
    assert answer.json == {"shift_h": 12, "change_at": "07:30", "squads": ["B", "A"],
                           "anchor": f.ANCHOR, "timezone": "Asia/Shanghai", "saved": True}
    entry = audits("rota.template")[-1]
    assert entry.actor.startswith("user:dispatcher")
    assert json.loads(entry.before)["shift_h"] == 24 and json.loads(entry.after)["shift_h"] == 12
    # What GET answers may be sent back as it is.
    again = client.put("/api/v1/rota/template", headers=editor,
                       json={**answer.json, "anchor": "2026-07-02"})
    assert again.status_code == 200 and again.json["anchor"] == "2026-07-02"


def test_the_first_save_anchors_on_its_local_date(app, client, editor):
    f.township(template=False)
    # NOW is 1 July 10:00 in Beijing.
    answer = client.put("/api/v1/rota/template", headers=editor, json={"squads": ["A", "B"]})
    assert answer.json["anchor"] == "2026-07-01" and answer.json["shift_h"] == 24


@pytest.mark.any_backend
@pytest.mark.parametrize(("body", "field"), [
    ({"squads": ["A", "X"]}, "squads"),                      # unknown squad
    ({"squads": ["FIRE"]}, "squads"),                        # a team, not a squad
    ({"squads": []}, "squads"),
    ({"squads": ["A", "A"]}, "squads"),
    ({"squads": "A"}, "squads"),
    ({}, "squads"),
    ({"squads": ["A"], "shift_h": 10}, "shift_h"),           # 8, 12 or 24 only
    ({"squads": ["A"], "shift_h": 48}, "shift_h"),
    ({"squads": ["A"], "shift_h": "24"}, "shift_h"),
    ({"squads": ["A"], "shift_h": True}, "shift_h"),
    ({"squads": ["A"], "change_at": "8:00"}, "change_at"),
    ({"squads": ["A"], "change_at": "24:00"}, "change_at"),
    ({"squads": ["A"], "change_at": "08:00:00"}, "change_at"),
    ({"squads": ["A"], "anchor": "2026-02-30"}, "anchor"),
    ({"squads": ["A"], "anchor": "20260701"}, "anchor"),
    ({"squads": ["A"], "anchor": "1999-12-31"}, "anchor"),
])
def test_bad_templates_are_refused(app, client, township, editor, body, field):
    answer = client.put("/api/v1/rota/template", headers=editor, json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "bad_field" and answer.json["field"] == field


@pytest.mark.any_backend
def test_template_refuses_unknown_fields_and_non_objects(app, client, township, editor):
    answer = client.put("/api/v1/rota/template", headers=editor,
                        json={"squads": ["A"], "shift_hours": 12})
    assert answer.status_code == 400 and "shift_hours" in answer.json["message"]
    assert client.put("/api/v1/rota/template", headers=editor, json=["A"]).status_code == 400


@pytest.mark.any_backend
def test_roles(app, client, township, bearer):
    viewer, leader = bearer("viewer"), bearer("team_leader")
    for path in ("/api/v1/rota/template", "/api/v1/rota", "/api/v1/rota/rules",
                 "/api/v1/rota/coverage", "/api/v1/rota/swaps", "/api/v1/rota/leave",
                 "/api/v1/rota/notices"):
        assert client.get(path, headers=leader).status_code == 200, path
        assert client.get(path).status_code == 401
    assert client.put("/api/v1/rota/template", headers=viewer,
                      json={"squads": ["A"]}).status_code == 403
    assert client.put("/api/v1/rota/rules", headers=leader, json=[]).status_code == 403
    assert swap(client, viewer, "A1", "C1", 3).status_code == 403
    assert client.post("/api/v1/rota/leave", headers=leader, json={}).status_code == 403
    dispatcher = bearer("dispatcher")
    assert client.post("/api/v1/rota/swaps/1/approve", headers=dispatcher).status_code == 403
    assert client.post("/api/v1/rota/swaps/1/reject", headers=dispatcher).status_code == 403


# --- rules ------------------------------------------------------------------------------------

def test_rules_round_trip_and_audit(app, client, township, editor):
    assert client.get("/api/v1/rota/rules", headers=editor).json == f.RULES
    new = [{"skill": "boat", "min": 3}, {"skill": "rope", "min": 0}]
    answer = client.put("/api/v1/rota/rules", headers=editor, json=new)
    assert answer.status_code == 200 and answer.json == new
    assert client.get("/api/v1/rota/rules", headers=editor).json == new
    assert json.loads(audits("rota.rules")[-1].after) == new


@pytest.mark.any_backend
@pytest.mark.parametrize(("body", "field"), [
    ([{"skill": "boat", "min": -1}], "[0].min"),
    ([{"skill": "boat", "min": 1.5}], "[0].min"),
    ([{"skill": "boat", "min": True}], "[0].min"),
    ([{"skill": "boat", "min": 1001}], "[0].min"),
    ([{"skill": "boat"}], "[0].min"),
    ([{"skill": "boat", "min": 1}, {"skill": "swim", "min": 1}], "[1].skill"),
    ([{"skill": "boat", "min": 1}, {"skill": "boat", "min": 2}], "[1].skill"),
    ([{"skill": 7, "min": 1}], "[0].skill"),
    (["boat"], "[0]"),
])
def test_bad_rules_are_refused(app, client, township, editor, body, field):
    answer = client.put("/api/v1/rota/rules", headers=editor, json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["field"] == field
    assert client.get("/api/v1/rota/rules", headers=editor).json == f.RULES


@pytest.mark.any_backend
def test_rules_must_be_a_list(app, client, township, editor):
    for body in ({"skill": "boat", "min": 1}, None):
        answer = client.put("/api/v1/rota/rules", headers=editor, json=body)
        assert answer.status_code == 400


# --- shifts -------------------------------------------------------------------------------------

def test_the_rota_lists_shifts_with_crews_swaps_and_leave(app, client, township, editor):
    with db.transaction() as s:
        f.add_swap(s, "A1", "C1", shift_start(3))
        f.add_swap(s, "A2", "B2", shift_start(3), status="pending", decided_at=None)
        f.add_leave(s, "A3", shift_start(3) + timedelta(hours=3),
                    shift_start(3) + timedelta(hours=5), "体检")
    answer = client.get("/api/v1/rota", headers=editor, query_string={
        "from": "2026-07-01T08:00:00+08:00", "to": "2026-07-04T08:00:00+08:00"})
    assert answer.status_code == 200, answer.json
    shifts = answer.json["shifts"]
    assert [(s["start"], s["end"], s["squad"]) for s in shifts] == [
        ("2026-07-01T00:00:00+00:00", "2026-07-02T00:00:00+00:00", "A"),
        ("2026-07-02T00:00:00+00:00", "2026-07-03T00:00:00+00:00", "B"),
        ("2026-07-03T00:00:00+00:00", "2026-07-04T00:00:00+00:00", "A")]
    third = shifts[2]
    assert [(m["code"], m["via"]) for m in third["members"]] == [
        ("A2", "squad"), ("A4", "squad"), ("C1", "swap")]
    assert third["members"][0]["name"] == "队员A2"
    assert [(a["code"], a["why"]) for a in third["absent"]] == [("A1", "swap"), ("A3", "leave")]
    assert [(w["member"], w["with"], w["status"]) for w in third["swaps"]] == [
        ("A1", "C1", "approved"), ("A2", "B2", "pending")]
    assert [(item["member"], item["reason"]) for item in third["leave"]] == [("A3", "体检")]
    assert [m["code"] for m in shifts[0]["members"]] == ["A1", "A2", "A3", "A4"]


def test_the_rota_defaults_to_a_week_from_now(app, client, township, editor):
    answer = client.get("/api/v1/rota", headers=editor)
    assert answer.json["from"] == "2026-07-01T02:00:00+00:00"
    assert answer.json["to"] == "2026-07-08T02:00:00+00:00"
    assert len(answer.json["shifts"]) == 8  # the one under way, then seven more


@pytest.mark.any_backend
@pytest.mark.parametrize("query", [
    {"from": "2026-07-01T08:00:00+08:00", "to": "2026-09-02T08:00:00+08:00"},  # 63 days
    {"from": "2026-07-02T08:00:00+08:00", "to": "2026-07-01T08:00:00+08:00"},
    {"from": "2026-07-01T08:00:00+08:00", "to": "2026-07-01T08:00:00+08:00"},
    {"from": "2026-07-01 08:00"},
    {"from": "2026-07-01T08:00:00"},
    {"from": "1720000000"},
    {"to": "2026-07-01T24:00:00+08:00"},
    {"from": "0001-01-01T00:00:00+08:00"},
    {"from": "9999-12-31T23:59:59-08:00"},
])
def test_bad_rota_ranges(app, client, township, editor, query):
    answer = client.get("/api/v1/rota", headers=editor, query_string=query)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "bad_parameter"


# --- coverage ------------------------------------------------------------------------------------

def test_coverage_with_gaps_and_who_could_fill_them(app, client, township, editor):
    answer = client.get("/api/v1/rota/coverage?days=2", headers=editor)
    assert answer.status_code == 200, answer.json
    first, second, third = answer.json["shifts"]
    assert (first["start"], first["squad"]) == ("2026-07-01T00:00:00+00:00", "A")
    assert first["rules"] == [
        {"skill": "boat", "min": 2, "have": 2, "members": ["A1", "A2"]},
        # A3's first aid expired on 30 June; A4's C1 expires in the middle of the shift.
        {"skill": "first_aid", "min": 2, "have": 1, "members": ["A1"]},
        {"skill": "c1", "min": 1, "have": 0, "members": []}]
    assert first["gaps"] == [{"skill": "first_aid", "missing": 1},
                             {"skill": "c1", "missing": 1}]
    assert first["fill"] == [
        {"skill": "first_aid", "members": [
            {"code": "C1", "name": "队员C1", "rested": True},
            {"code": "B1", "name": "队员B1", "rested": False},
            {"code": "B2", "name": "队员B2", "rested": False}]},
        {"skill": "c1", "members": [
            {"code": "B1", "name": "队员B1", "rested": False},
            {"code": "B3", "name": "队员B3", "rested": False}]}]
    assert second["squad"] == "B" and second["gaps"] == []
    assert third["squad"] == "A" and third["gaps"][0] == {"skill": "first_aid", "missing": 1}


@pytest.mark.any_backend
@pytest.mark.parametrize("days", ["0", "63", "-1", "1.5", "x", "99999999999999999999"])
def test_bad_coverage_days(app, client, township, editor, days):
    answer = client.get(f"/api/v1/rota/coverage?days={days}", headers=editor)
    assert answer.status_code == 400 and answer.json["error"] == "bad_parameter"


def test_coverage_defaults_to_the_coverage_days(app, client, township, editor):
    shifts = client.get("/api/v1/rota/coverage", headers=editor).json["shifts"]
    assert len(shifts) == 15  # the one under way and 14 more


# --- swaps ----------------------------------------------------------------------------------------

def test_a_swap_that_keeps_the_cover_is_approved_at_once(app, client, township, editor):
    # A1 (boat, first aid) out, B2 (boat, first aid) in: nothing changes on 3 July's shift.
    answer = swap(client, editor, "A1", "B2", 3)
    assert answer.status_code == 201, answer.json
    assert answer.json["status"] == "approved" and answer.json["gaps"] == []
    assert answer.json["decided_by"] is None and answer.json["decided_at"]
    crew = client.get("/api/v1/rota", headers=editor, query_string={
        "from": iso(shift_start(3)), "to": iso(shift_start(4))}).json["shifts"][0]["members"]
    assert [m["code"] for m in crew] == ["A2", "A3", "A4", "B2"]
    entry = audits("rota.swap")[-1]
    assert entry.entity_type == "rota_swap" and json.loads(entry.after)["with"] == "B2"


def test_a_swap_that_opens_a_gap_waits_for_a_commander(app, client, township, editor,
                                                      commander):
    # A2 (boat) out, C1 (first aid) in: boat 2 → 1 on 3 July's shift.
    answer = swap(client, editor, "A2", "C1", 3)
    assert answer.status_code == 202, answer.json
    assert answer.json["status"] == "pending"
    assert answer.json["gaps"] == [{"skill": "boat", "missing": 1}]
    window = {"from": iso(shift_start(3)), "to": iso(shift_start(4))}
    crew = client.get("/api/v1/rota", headers=editor, query_string=window).json["shifts"][0]
    assert "A2" in [m["code"] for m in crew["members"]]  # not applied while pending
    swap_id = answer.json["id"]
    approved = client.post(f"/api/v1/rota/swaps/{swap_id}/approve", headers=commander)
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "approved"
    assert approved.json["decided_by"].startswith("user:commander")
    crew = client.get("/api/v1/rota", headers=editor, query_string=window).json["shifts"][0]
    assert [m["code"] for m in crew["members"]] == ["A1", "A3", "A4", "C1"]
    cover = client.get("/api/v1/rota/coverage?days=3", headers=editor).json["shifts"][2]
    assert {"skill": "boat", "missing": 1} in cover["gaps"]
    assert [e.action for e in audits("rota.swap.approve")] == ["rota.swap.approve"]
    # Decided once.
    again = client.post(f"/api/v1/rota/swaps/{swap_id}/reject", headers=commander)
    assert again.status_code == 409 and again.json["error"] == "not_pending"


def test_a_rejected_swap_never_applies_and_may_be_asked_again(app, client, township, editor,
                                                             commander):
    first = swap(client, editor, "A2", "C1", 3).json
    rejected = client.post(f"/api/v1/rota/swaps/{first['id']}/reject", headers=commander)
    assert rejected.status_code == 200 and rejected.json["status"] == "rejected"
    listed = client.get("/api/v1/rota/swaps?status=rejected", headers=editor).json["items"]
    assert [s["id"] for s in listed] == [first["id"]]
    # Asked again with someone who keeps the cover: the request replaces the rejected one.
    again = swap(client, editor, "A2", "B2", 3)
    assert again.status_code == 201 and again.json["status"] == "approved"
    assert db.session.scalars(select(Swap)).all()[0].status == "approved"
    assert json.loads(audits("rota.swap")[-1].before)["status"] == "rejected"


def test_a_commander_may_approve_their_own_swap_at_once(app, client, township, editor,
                                                       commander):
    answer = swap(client, commander, "A2", "C1", 3, approve=True)
    assert answer.status_code == 201, answer.json
    assert answer.json["status"] == "approved" and answer.json["gaps"] == [
        {"skill": "boat", "missing": 1}]
    assert answer.json["decided_by"].startswith("user:commander")
    # A dispatcher may not.
    refused = swap(client, editor, "A1", "C1", 5, approve=True)
    assert refused.status_code == 403
    # Without a gap, approve changes nothing.
    assert swap(client, editor, "A1", "B2", 5, approve=True).status_code == 201


@pytest.mark.parametrize(("member", "stand_in", "day", "status", "error"), [
    ("A1", "A1", 3, 400, "bad_field"),            # a swap with oneself
    ("A1", "A2", 3, 409, "already_on_shift"),     # A2 serves that shift already
    ("B1", "C1", 3, 409, "not_on_shift"),         # 3 July is A's shift
    ("A1", "NOBODY", 3, 400, "bad_field"),
    ("NOBODY", "A1", 3, 400, "bad_field"),
    ("A 1", "C1", 3, 400, "bad_field"),
])
def test_bad_swaps(app, client, township, editor, member, stand_in, day, status, error):
    answer = swap(client, editor, member, stand_in, day)
    assert answer.status_code == status, answer.json
    assert answer.json["error"] == error
    assert db.session.scalars(select(Swap)).all() == []


def test_swaps_clash_with_leave_and_each_other(app, client, township, editor):
    with db.transaction() as s:
        f.add_leave(s, "C1", shift_start(3) + timedelta(hours=20), shift_start(4) + timedelta(
            hours=1))
        f.add_leave(s, "A3", shift_start(5), shift_start(6))
    assert swap(client, editor, "A1", "C1", 3).json["error"] == "stand_in_on_leave"
    assert swap(client, editor, "A3", "B2", 5).json["error"] == "not_on_shift"
    assert swap(client, editor, "A1", "B2", 5).status_code == 201
    twice = swap(client, editor, "A1", "B1", 5)
    assert twice.status_code == 409 and twice.json["error"] == "swap_exists"
    # The stand-in is on the shift now: bringing them in again is a clash.
    assert swap(client, editor, "A2", "B2", 5).json["error"] == "already_on_shift"


@pytest.mark.parametrize(("shift", "status", "error"), [
    ("2026-07-03T09:00:00+08:00", 400, "bad_field"),   # not a shift's start
    ("2026-07-03T08:00:00", 400, "bad_field"),         # no offset
    ("3 July", 400, "bad_field"),
    (1783036800, 400, "bad_field"),
    ("2026-06-30T08:00:00+08:00", 409, "shift_over"),
    ("2028-07-03T08:00:00+08:00", 400, "bad_field"),   # more than a year ahead
])
def test_swaps_need_a_shift_to_come(app, client, township, editor, shift, status, error):
    answer = client.post("/api/v1/rota/swaps", headers=editor,
                         json={"member": "A1", "with": "C1", "shift": shift})
    assert answer.status_code == status, answer.json
    assert answer.json["error"] == error


def test_the_shift_under_way_may_be_swapped(app, client, township, editor):
    answer = swap(client, editor, "A1", "B2", 1)
    assert answer.status_code == 201, answer.json


@pytest.mark.any_backend
def test_swap_bodies_are_checked(app, client, township, editor):
    for body in ({"member": "A1", "with": "C1"}, {"with": "C1", "shift": iso(shift_start(3))},
                 {"member": "A1", "with": "C1", "shift": iso(shift_start(3)), "approve": "yes"},
                 {"member": "A1", "with": "C1", "shift": iso(shift_start(3)), "note": "x"}):
        answer = client.post("/api/v1/rota/swaps", headers=editor, json=body)
        assert answer.status_code == 400, (body, answer.json)
    assert client.post("/api/v1/rota/swaps", headers=editor, json=[1]).status_code == 400


def test_approving_checks_the_rota_again(app, client, township, editor, commander):
    pending = swap(client, editor, "A2", "C1", 3).json
    # Meanwhile C1 took leave over that shift.
    with db.transaction() as s:
        f.add_leave(s, "C1", shift_start(3), shift_start(4))
    answer = client.post(f"/api/v1/rota/swaps/{pending['id']}/approve", headers=commander)
    assert answer.status_code == 409 and answer.json["error"] == "stand_in_on_leave"


@pytest.mark.parametrize("swap_id", ["999", str(2**31), str(2**63 - 1), "99999999999999999999"])
def test_unknown_swaps(app, client, township, commander, swap_id):
    answer = client.post(f"/api/v1/rota/swaps/{swap_id}/approve", headers=commander)
    assert answer.status_code == 404


def test_list_swaps_filters(app, client, township, editor):
    with db.transaction() as s:
        f.add_swap(s, "A1", "C1", shift_start(3))
        f.add_swap(s, "B1", "C1", shift_start(4), status="pending", decided_at=None)
        f.add_swap(s, "A2", "B3", shift_start(1))
        f.add_swap(s, "A2", "B3", shift_start(1) - timedelta(days=2))  # over
    items = client.get("/api/v1/rota/swaps", headers=editor).json["items"]
    assert [(s["member"], s["shift"]) for s in items] == [
        ("A2", "2026-07-01T00:00:00+00:00"), ("A1", "2026-07-03T00:00:00+00:00"),
        ("B1", "2026-07-04T00:00:00+00:00")]
    assert len(client.get("/api/v1/rota/swaps?status=pending", headers=editor).json["items"]) == 1
    assert len(client.get("/api/v1/rota/swaps?member=C1", headers=editor).json["items"]) == 2
    old = client.get("/api/v1/rota/swaps?from=2026-06-01T00:00:00Z&to=2026-07-01T00:00:00Z",
                     headers=editor).json["items"]
    assert [s["shift"] for s in old] == ["2026-06-29T00:00:00+00:00"]
    for query in ("status=done", "member=NOBODY", "from=yesterday"):
        assert client.get(f"/api/v1/rota/swaps?{query}", headers=editor).status_code == 400


# --- leave ----------------------------------------------------------------------------------------

def test_leave_is_recorded_with_the_gaps_it_opens(app, client, township, editor):
    answer = client.post("/api/v1/rota/leave", headers=editor, json={
        "member": "A2", "start": "2026-07-03T09:00:00+08:00", "end": "2026-07-03T12:00:00+08:00",
        "reason": "病假"})
    assert answer.status_code == 201, answer.json
    assert answer.json["member"] == "A2" and answer.json["reason"] == "病假"
    assert answer.json["start"] == "2026-07-03T01:00:00+00:00"
    assert answer.json["gaps"] == [{"start": "2026-07-03T00:00:00+00:00",
                                    "end": "2026-07-04T00:00:00+00:00", "squad": "A",
                                    "gaps": [{"skill": "boat", "missing": 1}]}]
    entry = audits("rota.leave")[-1]
    assert entry.entity_type == "rota_leave" and json.loads(entry.after)["member"] == "A2"
    items = client.get("/api/v1/rota/leave", headers=editor).json["items"]
    assert [(i["member"], i["start"]) for i in items] == [("A2", "2026-07-03T01:00:00+00:00")]
    crew = client.get("/api/v1/rota", headers=editor, query_string={
        "from": iso(shift_start(3)), "to": iso(shift_start(4))}).json["shifts"][0]
    assert "A2" not in [m["code"] for m in crew["members"]]


def test_leave_may_not_overlap_the_members_other_leave(app, client, township, editor):
    body = {"member": "A2", "start": "2026-07-03T09:00:00+08:00",
            "end": "2026-07-05T09:00:00+08:00"}
    assert client.post("/api/v1/rota/leave", headers=editor, json=body).status_code == 201
    # The same hours again, and a stretch overlapping its end: 409.
    for start, end in (("2026-07-03T09:00:00+08:00", "2026-07-05T09:00:00+08:00"),
                       ("2026-07-05T08:00:00+08:00", "2026-07-06T09:00:00+08:00"),
                       ("2026-07-01T09:00:00+08:00", "2026-07-10T09:00:00+08:00")):
        answer = client.post("/api/v1/rota/leave", headers=editor,
                             json={**body, "start": start, "end": end})
        assert answer.status_code == 409 and answer.json["error"] == "leave_overlaps"
    # Back to back is no overlap; someone else's leave neither.
    after = {**body, "start": "2026-07-05T09:00:00+08:00", "end": "2026-07-06T09:00:00+08:00"}
    assert client.post("/api/v1/rota/leave", headers=editor, json=after).status_code == 201
    other = {**body, "member": "A1"}
    assert client.post("/api/v1/rota/leave", headers=editor, json=other).status_code == 201


@pytest.mark.any_backend
@pytest.mark.parametrize(("change", "field"), [
    ({"end": "2026-07-03T08:00:00+08:00"}, "end"),                  # before start
    ({"end": "2026-07-03T09:00:00+08:00"}, "end"),                  # empty
    ({"start": "2026-07-03 09:00"}, "start"),
    ({"start": "2026-07-03T09:00:00+0800"}, "start"),
    ({"end": "2026-07-03T25:00:00+08:00"}, "end"),
    ({"start": 1783040400}, "start"),
    ({"end": "2027-08-03T09:00:00+08:00"}, "end"),                  # over a year
    ({"member": "NOBODY"}, "member"),
    ({"member": None}, "member"),
    ({"reason": 5}, "reason"),
    ({"reason": "x" * 201}, "reason"),
])
def test_bad_leave(app, client, township, editor, change, field):
    body = {"member": "A2", "start": "2026-07-03T09:00:00+08:00",
            "end": "2026-07-04T09:00:00+08:00", **change}
    answer = client.post("/api/v1/rota/leave", headers=editor, json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["field"] == field
    assert client.get("/api/v1/rota/leave", headers=editor).json["items"] == []


def test_leave_list_filters(app, client, township, editor):
    with db.transaction() as s:
        f.add_leave(s, "A1", shift_start(1) - timedelta(days=5), shift_start(1) - timedelta(
            days=4))
        f.add_leave(s, "A2", shift_start(3), shift_start(4))
        f.add_leave(s, "B1", shift_start(8), shift_start(9))
    listed = client.get("/api/v1/rota/leave", headers=editor).json["items"]
    assert [i["member"] for i in listed] == ["A2", "B1"]
    week = client.get("/api/v1/rota/leave?from=2026-06-20T00:00:00Z&to=2026-07-05T00:00:00Z",
                      headers=editor).json["items"]
    assert [i["member"] for i in week] == ["A1", "A2"]
    assert [i["member"] for i in client.get("/api/v1/rota/leave?member=B1",
                                            headers=editor).json["items"]] == ["B1"]
    assert client.get("/api/v1/rota/leave?member=X", headers=editor).status_code == 400
    assert client.get("/api/v1/rota/leave?from=2026-07-05T00:00:00Z&to=2026-07-01T00:00:00Z",
                      headers=editor).status_code == 400


# --- notices --------------------------------------------------------------------------------------

def test_notices_name_gaps_with_fill_and_certificates(app, client, township, editor):
    items = client.get("/api/v1/rota/notices", headers=editor).json["items"]
    gaps = [n for n in items if n["kind"] == "coverage_gap"]
    certificates = [n for n in items if n["kind"] == "certificate_expiring"]
    first = gaps[0]
    assert first["shift"]["start"] == "2026-07-01T00:00:00+00:00"
    assert (first["skill"], first["missing"], first["fill"]) == ("first_aid", 1,
                                                                 ["C1", "B1", "B2"])
    assert first["text"]["en"] == ("Shift from 2026-07-01 08:00 (squad A) lacks 1 × First aid. "
                                   "Could fill: 队员C1 (C1), 队员B1 (B1), 队员B2 (B2).")
    assert first["text"]["zh"] == ("2026-07-01 08:00 起的班次（A 班组）缺少急救 1 人。"
                                   "可补位：队员C1 (C1), 队员B1 (B1), 队员B2 (B2)。")
    assert [(n["member"], n["skill"], n["days_left"]) for n in certificates] == [
        ("A3", "first_aid", -1), ("A4", "c1", 0)]
    assert "expired on 2026-06-30" in certificates[0]["text"]["en"]
    assert "C1驾照" in certificates[1]["text"]["zh"]
