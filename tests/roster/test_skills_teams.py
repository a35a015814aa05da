"""The skills catalogue and teams with their squads through the API, on both databases."""

from __future__ import annotations

import json

from sqlalchemy import select

from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from tests.roster.bodies import add, member
from tests.roster.conftest import SKILLS


def test_the_catalogue_round_trip(client, catalogue):
    assert client.get("/api/v1/skills", headers=catalogue).json == {
        "items": sorted(SKILLS, key=lambda s: s["code"])}
    changed = client.patch("/api/v1/skills/chainsaw", json={"name_en": "Chainsaw operation"},
                           headers=catalogue)
    assert changed.status_code == 200
    assert changed.json == {**SKILLS[2], "name_en": "Chainsaw operation"}
    added = client.post("/api/v1/skills", json={"code": "rope", "name_zh": "绳索救援"},
                        headers=catalogue)
    assert added.json == {"code": "rope", "name_zh": "绳索救援", "name_en": "",
                          "needs_certificate": False}
    actions = db.session.execute(select(AuditEntry.action, AuditEntry.entity_id).where(
        AuditEntry.entity_type == "skill").order_by(AuditEntry.seq)).all()
    assert actions[-2:] == [("skill.update", "chainsaw"), ("skill.create", "rope")]


def test_bad_skills_are_named(client, catalogue):
    cases = [({"code": "boat", "name_zh": "x"}, 409, "exists"),
             ({"code": "a b", "name_zh": "x"}, 400, "bad_field"),
             ({"code": "rope"}, 400, "bad_field"),
             ({"code": "rope", "name_zh": "x", "needs_certificate": "yes"}, 400, "bad_field"),
             ({"name_zh": "", "needs_certificate": 1}, 422, "bad_fields")]
    for body, status, error in cases:
        answer = client.post("/api/v1/skills", json=body, headers=catalogue)
        assert (answer.status_code, answer.json["error"]) == (status, error), body
    assert client.patch("/api/v1/skills/NOPE", json={},
                        headers=catalogue).status_code == 404
    renamed = client.patch("/api/v1/skills/boat", json={"code": "ship"}, headers=catalogue)
    assert (renamed.status_code, renamed.json["field"]) == (400, "code")


def test_a_skill_needs_a_certificate_only_once_its_holders_have_one(client, catalogue):
    add(client, catalogue, member(skills=[{"skill": "chainsaw", "level": 2}]))
    refused = client.patch("/api/v1/skills/chainsaw", json={"needs_certificate": True},
                           headers=catalogue)
    assert refused.status_code == 409
    assert (refused.json["error"], refused.json["members"]) == ("expiry_missing", ["M-01"])
    client.patch("/api/v1/members/M-01", headers=catalogue, json={
        "skills": [{"skill": "chainsaw", "level": 2, "expires": "2027-01-01"}]})
    assert client.patch("/api/v1/skills/chainsaw", json={"needs_certificate": True},
                        headers=catalogue).json["needs_certificate"] is True


def test_teams_with_their_squads_and_members(client, catalogue):
    add(client, catalogue, member("M-01"))
    add(client, catalogue, member("M-02", squad="B"))
    add(client, catalogue, member("M-03", squad=None))
    add(client, catalogue, member("Z-01", team="ZH", squad=None))
    teams = client.get("/api/v1/teams", headers=catalogue).json["items"]
    assert teams == [
        {"code": "A", "name": "A班", "parent": "FT", "squads": [], "members": 1},
        {"code": "B", "name": "B班", "parent": "FT", "squads": [], "members": 1},
        {"code": "FT", "name": "专职救援队", "parent": None, "squads": ["A", "B"],
         "members": 3},
        {"code": "ZH", "name": "综合应急救援队", "parent": None, "squads": [], "members": 1}]
    team = client.get("/api/v1/teams/FT", headers=catalogue).json
    assert [m["code"] for m in team.pop("roster")] == ["M-01", "M-02", "M-03"]
    assert team == teams[2]
    squad = client.get("/api/v1/teams/B", headers=catalogue).json
    assert squad["roster"] == [member("M-02", squad="B")]
    assert client.get("/api/v1/teams/NOPE", headers=catalogue).status_code == 404


def test_a_new_squad_is_audited(client, catalogue):
    answer = client.post("/api/v1/teams", json={"code": "C", "name": "C班", "parent": "FT"},
                         headers=catalogue)
    assert answer.status_code == 201
    assert answer.json == {"code": "C", "name": "C班", "parent": "FT", "squads": [],
                           "members": 0}
    assert client.get("/api/v1/teams/FT", headers=catalogue).json["squads"] == ["A", "B", "C"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "team.create",
                                                       AuditEntry.entity_id == "C"))
    assert json.loads(entry.after) == answer.json


def test_bad_teams_are_named(client, catalogue):
    cases = [({"code": "FT", "name": "x"}, 409, None),
             ({"code": "C", "name": "x", "parent": "NOPE"}, 400, "parent"),
             ({"code": "C", "name": "x", "parent": "A"}, 400, "parent"),  # no squad of a squad
             ({"code": "C/1", "name": "x"}, 400, "code"),
             ({"code": "C", "name": "x" * 65}, 400, "name")]
    for body, status, field in cases:
        answer = client.post("/api/v1/teams", json=body, headers=catalogue)
        assert answer.status_code == status, body
        assert answer.json.get("field") == (field or "code"), body
