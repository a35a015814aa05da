"""Members through the API (DESIGN §5 "Roster and positions (contract)"), on both databases:
the contract's JSON round trip, every bad field named, conflicts, leaving the team, filters,
role checks and the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.roster.models import Member, MemberSkill
from dispatch.roster.views import today
from tests.roster.bodies import add, member


def test_the_contract_round_trip(client, catalogue, make_user):
    leader = make_user("team_leader", "leader-wang")
    body = member(user=leader.username)
    created = client.post("/api/v1/members", json=body, headers=catalogue)
    assert created.status_code == 201, created.json
    assert created.json == body
    assert client.get("/api/v1/members/M-01", headers=catalogue).json == body
    assert client.get("/api/v1/members", headers=catalogue).json == {"items": [body]}
    change = {"squad": "B", "status": "leave", "roles": ["patrol"],
              "skills": [{"skill": "first_aid", "level": 3, "expires": "2028-01-31"}]}
    changed = client.patch("/api/v1/members/M-01", json=change, headers=catalogue)
    assert changed.status_code == 200, changed.json
    assert changed.json == {**body, **change}
    assert client.get("/api/v1/members/M-01", headers=catalogue).json == {**body, **change}


def test_a_member_with_only_code_and_name_takes_the_defaults(client, catalogue):
    answer = add(client, catalogue, {"code": "V-1", "name": "李梅", "phone": None})
    assert answer == {"code": "V-1", "name": "李梅", "phone": "", "post": "other",
                      "employment": "staff", "team": None, "squad": None, "roles": [],
                      "skills": [], "status": "off", "user": None}


BAD_FIELDS = [
    ({"post": "pilot"}, "post"),
    ({"employment": "intern"}, "employment"),
    ({"roles": ["rescue", "flying"]}, "roles[1]"),
    ({"status": "asleep"}, "status"),
    ({"skills": [{"skill": "flying", "level": 1}]}, "skills[0].skill"),
    ({"team": "NOPE"}, "team"),
    ({"squad": "NOPE"}, "squad"),
    ({"team": "ZH", "squad": "A"}, "squad"),  # A is a squad of FT
    ({"squad": ["A", "B"]}, "squad"),  # a member in two squads
    ({"user": "nobody"}, "user"),
    ({"skills": [{"skill": "boat", "level": 4, "expires": "2027-05-01"}]}, "skills[0].level"),
    ({"skills": [{"skill": "boat", "level": 0, "expires": "2027-05-01"}]}, "skills[0].level"),
    ({"skills": [{"skill": "boat", "level": 1, "expires": "next May"}]}, "skills[0].expires"),
    ({"skills": [{"skill": "boat", "level": 1, "expires": "2027-02-29"}]}, "skills[0].expires"),
    ({"skills": [{"skill": "boat", "level": 1, "expires": None}]}, "skills[0].expires"),
    ({"skills": [{"skill": "chainsaw", "level": 1}, {"skill": "chainsaw", "level": 2}]},
     "skills[1].skill"),
    ({"code": "M 01"}, "code"),
    ({"name": ""}, "name"),
]


def test_each_bad_field_is_named(client, catalogue):
    # One app for all the cases (the pure checks have a test each: test_member_checks.py).
    for change, field in BAD_FIELDS:
        answer = client.post("/api/v1/members", json=member(**change), headers=catalogue)
        assert answer.status_code == 400, (change, answer.json)
        assert (answer.json["error"], answer.json["field"]) == ("bad_field", field), change
        assert answer.json["message"].startswith(field)
    assert db.session.scalar(select(Member.id)) is None


def test_several_bad_fields_are_a_422_naming_each(client, catalogue):
    answer = client.post("/api/v1/members", headers=catalogue, json=member(
        post="pilot", squad=["A", "B"], skills=[{"skill": "boat", "level": 5}]))
    assert answer.status_code == 422
    assert answer.json["error"] == "bad_fields"
    assert [f["field"] for f in answer.json["fields"]] == ["post", "squad", "skills[0].level"]
    assert all(f["why"] and f["code"] for f in answer.json["fields"])


def test_messages_are_in_the_requests_language(client, catalogue):
    answer = client.post("/api/v1/members", json=member(post="pilot"), headers=catalogue)
    assert answer.json["message"].startswith("post：必须是以下之一")
    client.set_cookie("lang", "en")
    answer = client.post("/api/v1/members", json=member(squad="X"), headers=catalogue)
    assert answer.json["message"] == "squad: names no squad (X)"


@pytest.mark.parametrize("body", [[], "member", 3])
def test_a_body_that_is_no_object_is_refused(client, catalogue, body):
    answer = client.post("/api/v1/members", json=body, headers=catalogue)
    assert answer.status_code == 400
    assert answer.json["error"] == "bad_json"


def test_a_code_that_is_taken_is_a_conflict(client, catalogue):
    add(client, catalogue, member())
    answer = client.post("/api/v1/members", json=member(name="另一个人"), headers=catalogue)
    assert answer.status_code == 409
    assert answer.json["error"] == "exists"


def test_a_user_signs_in_as_one_member_only(client, catalogue, make_user):
    leader = make_user("team_leader")
    add(client, catalogue, member(user=leader.username))
    second = client.post("/api/v1/members", json=member("M-02", user=leader.username),
                         headers=catalogue)
    assert second.status_code == 409
    assert (second.json["error"], second.json["member"]) == ("user_linked", "M-01")
    add(client, catalogue, member("M-02"))
    changed = client.patch("/api/v1/members/M-02", json={"user": leader.username},
                           headers=catalogue)
    assert changed.status_code == 409


def test_a_change_names_its_bad_fields_and_changes_nothing(client, catalogue):
    add(client, catalogue, member())
    for change, field in [({"team": "ZH"}, "squad"), ({"name": None}, "name"),
                          ({"code": "M-02"}, "code"), ({"status": "gone"}, "status")]:
        answer = client.patch("/api/v1/members/M-01", json=change, headers=catalogue)
        assert (answer.status_code, answer.json["field"]) == (400, field)
    assert client.get("/api/v1/members/M-01", headers=catalogue).json == member()
    moved = client.patch("/api/v1/members/M-01", json={"team": "ZH", "squad": None},
                         headers=catalogue)
    assert (moved.json["team"], moved.json["squad"]) == ("ZH", None)


def test_unknown_members_are_404(client, catalogue):
    for method in ("get", "patch", "delete"):
        answer = getattr(client, method)("/api/v1/members/NOPE", headers=catalogue,
                                          **({"json": {}} if method == "patch" else {}))
        assert answer.status_code == 404
    assert client.get("/api/v1/members/" + "9" * 400, headers=catalogue).status_code == 404


def test_a_member_who_leaves_keeps_their_history_and_frees_their_user(client, catalogue,
                                                                      make_user):
    leader = make_user("team_leader")
    add(client, catalogue, member(user=leader.username))
    assert client.delete("/api/v1/members/M-01", headers=catalogue).status_code == 204
    assert client.get("/api/v1/members/M-01", headers=catalogue).status_code == 404
    assert client.get("/api/v1/members", headers=catalogue).json == {"items": []}
    row = db.session.scalar(select(Member).where(Member.code == "M-01"))
    assert (row.active, row.user_id, row.status) == (False, None, "off")
    assert db.session.scalar(select(MemberSkill.id).where(MemberSkill.member_id == row.id))
    # The user may now be another member; the code brings the one who left back.
    add(client, catalogue, member("M-02", user=leader.username))
    back = client.post("/api/v1/members", json=member(squad="B"), headers=catalogue)
    assert back.status_code == 201
    assert db.session.scalar(select(Member.id).where(Member.code == "M-01")) == row.id
    assert client.get("/api/v1/teams/FT", headers=catalogue).json["members"] == 2


def test_every_change_is_audited_with_before_and_after(client, catalogue):
    import json

    add(client, catalogue, member())
    client.patch("/api/v1/members/M-01", json={"status": "deployed"}, headers=catalogue)
    client.patch("/api/v1/members/M-01", json={"status": "deployed"}, headers=catalogue)
    client.delete("/api/v1/members/M-01", headers=catalogue)
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "member").order_by(AuditEntry.seq)).all()
    assert [(e.action, e.entity_id) for e in entries] == [
        ("member.create", "M-01"), ("member.update", "M-01"), ("member.delete", "M-01")]
    assert all(e.actor.startswith("user:dispatcher-") for e in entries)
    create, update, delete = entries
    assert json.loads(create.before) is None and json.loads(create.after) == member()
    assert json.loads(update.before)["status"] == "on_shift"
    assert json.loads(update.after)["status"] == "deployed"
    assert json.loads(delete.after)["active"] is False


@pytest.fixture
def team(client, catalogue):
    """Four members: certificates valid, expiring in 10 days, and expired."""
    soon = (today() + timedelta(days=10)).isoformat()
    gone = (today() - timedelta(days=1)).isoformat()
    add(client, catalogue, member("M-01", name="王建国"))
    add(client, catalogue, member("M-02", name="李梅", squad="B", status="off", phone="139",
                                  skills=[{"skill": "first_aid", "level": 2,
                                           "expires": soon}]))
    add(client, catalogue, member("M-03", name="张伟", status="off",
                                  skills=[{"skill": "boat", "level": 1, "expires": gone}]))
    add(client, catalogue, member("Z-01", name="刘芳", team="ZH", squad=None, status="on_call",
                                  skills=[]))
    return catalogue


FILTERS = [
    ("", ["M-01", "M-02", "M-03", "Z-01"]),
    ("team=FT", ["M-01", "M-02", "M-03"]),
    ("team=A", ["M-01", "M-03"]),
    ("squad=B", ["M-02"]),
    ("team=ZH", ["Z-01"]),
    ("skill=boat", ["M-01", "M-03"]),
    ("skill=first_aid", ["M-02"]),
    ("skill=chainsaw&team=A", ["M-01"]),
    ("status=off", ["M-02", "M-03"]),
    ("q=李", ["M-02"]),
    ("q=m-0", ["M-01", "M-02", "M-03"]),
    ("q=139", ["M-02"]),
    ("q=%25", []),
    ("expiring=30", ["M-02", "M-03"]),
    ("expiring=0", ["M-03"]),
    ("expiring=30&skill=boat", ["M-03"]),
    ("expiring=3000", ["M-01", "M-02", "M-03"]),
]
BAD_FILTERS = [
    ("expiring=-1", "expiring"), ("expiring=soon", "expiring"),
    ("expiring=99999999999999999999", "expiring"), ("status=asleep", "status"),
    ("team=NOPE", "team"), ("squad=NOPE", "squad"), ("skill=flying", "skill"),
    ("q=" + "x" * 65, "q"),
]


def test_filters(client, team):
    for query, codes in FILTERS:
        answer = client.get("/api/v1/members?" + query, headers=team)
        assert answer.status_code == 200, (query, answer.json)
        assert [m["code"] for m in answer.json["items"]] == codes, query
    for query, parameter in BAD_FILTERS:
        answer = client.get("/api/v1/members?" + query, headers=team)
        assert answer.status_code == 400, query
        assert (answer.json["error"], answer.json["parameter"]) == ("bad_parameter", parameter)


@pytest.mark.any_backend
@pytest.mark.parametrize("role", ["viewer", "keeper", "team_leader"])
def test_every_person_reads_and_only_the_office_writes(client, catalogue, bearer, role):
    add(client, catalogue, member())
    reader = bearer(role)
    for path in ("/api/v1/members", "/api/v1/members/M-01", "/api/v1/skills", "/api/v1/teams",
                 "/api/v1/teams/FT"):
        assert client.get(path, headers=reader).status_code == 200, path
    writes = [("post", "/api/v1/members", member("M-02")),
              ("patch", "/api/v1/members/M-01", {"status": "off"}),
              ("delete", "/api/v1/members/M-01", None),
              ("post", "/api/v1/skills", {"code": "rope", "name_zh": "绳索救援"}),
              ("patch", "/api/v1/skills/boat", {"name_en": "Boats"}),
              ("post", "/api/v1/teams", {"code": "C", "name": "C班", "parent": "FT"})]
    for method, path, body in writes:
        answer = getattr(client, method)(path, json=body, headers=reader)
        assert answer.status_code == 403, (method, path)
    answer = client.post("/api/v1/members/import", data="code,name\nM-09,x\n",
                         content_type="text/csv", headers=reader)
    assert answer.status_code == 403


@pytest.mark.any_backend
def test_the_commander_writes_and_gateways_and_strangers_do_not_read(client, catalogue, bearer):
    assert client.post("/api/v1/members", json=member(),
                       headers=bearer("commander")).status_code == 201
    with db.transaction() as s:
        _gateway, _password, token = auth.create_gateway(s, "GW-R", actor="test", mqtt_hash=str)
    gateway = {"Authorization": f"Bearer {token}"}
    for path in ("/api/v1/members", "/api/v1/skills", "/api/v1/teams"):
        assert client.get(path, headers=gateway).status_code == 403
        assert client.get(path).status_code == 401


ROSTER_JSON_ENDPOINTS = [("POST", "/api/v1/members"), ("PATCH", "/api/v1/members/M-01"),
                         ("POST", "/api/v1/skills"), ("PATCH", "/api/v1/skills/boat"),
                         ("POST", "/api/v1/teams")]


def test_bodies_are_read_strictly_and_codes_by_the_kernels_rule(client, catalogue):
    from tests.core.test_api_input import BAD_BODIES, BAD_CODES, send

    add(client, catalogue, member())
    for method, url in ROSTER_JSON_ENDPOINTS:
        for name, raw in BAD_BODIES.items():
            answer = send(client, method, url, raw, catalogue)
            assert (answer.status_code, answer.json["error"]) == (400, "bad_json"), (url, name)
    for name, code in ((n, c) for n, c in BAD_CODES.items() if n != "NUL"):
        for url, body in (("/api/v1/members", member(code)),
                          ("/api/v1/skills", {"code": code, "name_zh": "技能"}),
                          ("/api/v1/teams", {"code": code, "name": "队伍"})):
            answer = client.post(url, json=body, headers=catalogue)
            assert (answer.status_code, answer.json.get("field")) == (400, "code"), (url, name)
    assert client.get("/api/v1/members", headers=catalogue).json["items"] == [member()]
