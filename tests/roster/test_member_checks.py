"""The pure checks of members, skills and teams (dispatch.roster.members), table-driven: every
bad field named, with its path and code, and the CSV cells read as the JSON body writes them."""

from __future__ import annotations

from datetime import date

import pytest

from dispatch.roster import models
from dispatch.roster.choices import DutyStatus, Employment, Post, SquadRole
from dispatch.roster.members import (
    Known,
    MemberFields,
    Refused,
    SkillFields,
    SkillHeld,
    check_member,
    check_row,
    check_skill,
    check_team,
    csv_body,
    skills_cell,
)

KNOWN = Known(skills={"boat": True, "first_aid": True, "chainsaw": False},
              teams={"FT": None, "A": "FT", "B": "FT", "ZH": None, "X1": "ZH"},
              users={"wang", "li"})
GOOD = {"code": "M-01", "name": "王建国", "phone": "+86 138 0000 1234", "post": "water",
        "employment": "contract", "team": "FT", "squad": "A", "roles": ["rescue", "relief"],
        "skills": [{"skill": "boat", "level": 2, "expires": "2027-05-01"},
                   {"skill": "chainsaw", "level": 1, "expires": None}],
        "status": "on_shift", "user": "wang"}


def problems(body, current=None, known=KNOWN):
    with pytest.raises(Refused) as refused:
        check_member(body, known, current=current)
    return {(p.field, p.code) for p in refused.value.problems}


def test_the_choices_are_the_contracts_and_the_models():
    assert tuple(Post) == models.POSTS
    assert tuple(Employment) == models.EMPLOYMENTS
    assert tuple(SquadRole) == models.SQUAD_ROLES
    assert tuple(DutyStatus) == models.STATUSES


def test_a_good_body_round_trips():
    member = check_member(GOOD, KNOWN)
    assert member.as_json() == GOOD
    assert member.skills[0] == SkillHeld("boat", 2, date(2027, 5, 1))


def test_defaults_and_nulls_of_a_new_member():
    member = check_member({"code": "M-02", "name": " 李梅 ", "phone": None, "team": None,
                           "post": None}, KNOWN)
    assert member == MemberFields(code="M-02", name="李梅")
    assert member.as_json() == {"code": "M-02", "name": "李梅", "phone": "", "post": "other",
                                "employment": "staff", "team": None, "squad": None,
                                "roles": [], "skills": [], "status": "off", "user": None}


@pytest.mark.parametrize(("change", "expected"), [
    ({"code": None}, {("code", "required")}),
    ({"code": "a/b"}, {("code", "bad_code")}),
    ({"code": "x" * 33}, {("code", "bad_code")}),
    ({"code": 7}, {("code", "not_text")}),
    ({"name": "  "}, {("name", "required")}),
    ({"name": "x" * 65}, {("name", "too_long")}),
    ({"name": "王\x00"}, {("name", "control_character")}),
    ({"phone": "138-abc"}, {("phone", "bad_phone")}),
    ({"phone": 13800001234}, {("phone", "not_text")}),
    ({"post": "pilot"}, {("post", "not_a_choice")}),
    ({"employment": "intern"}, {("employment", "not_a_choice")}),
    ({"status": "asleep"}, {("status", "not_a_choice")}),
    ({"team": "NOPE"}, {("team", "unknown_team")}),
    ({"team": "A", "squad": None}, {("team", "is_a_squad")}),
    ({"squad": "NOPE"}, {("squad", "unknown_squad")}),
    ({"squad": "ZH"}, {("squad", "not_a_squad")}),
    ({"squad": "X1"}, {("squad", "squad_of_other_team")}),
    ({"team": None}, {("squad", "squad_without_team")}),
    ({"squad": ["A", "B"]}, {("squad", "two_squads")}),
    ({"roles": "rescue"}, {("roles", "not_a_list")}),
    ({"roles": ["rescue", "pilot"]}, {("roles[1]", "unknown_role")}),
    ({"roles": ["rescue", "rescue"]}, {("roles[1]", "duplicate")}),
    ({"skills": {"boat": 2}}, {("skills", "not_a_list")}),
    ({"skills": ["boat"]}, {("skills[0]", "not_an_object")}),
    ({"skills": [{"level": 1}]}, {("skills[0].skill", "required")}),
    ({"skills": [{"skill": "flying"}]}, {("skills[0].skill", "unknown_skill")}),
    ({"skills": [{"skill": "chainsaw", "level": 0}]}, {("skills[0].level", "bad_level")}),
    ({"skills": [{"skill": "chainsaw", "level": 4}]}, {("skills[0].level", "bad_level")}),
    ({"skills": [{"skill": "chainsaw", "level": True}]}, {("skills[0].level", "bad_level")}),
    ({"skills": [{"skill": "chainsaw", "level": 2.0}]}, {("skills[0].level", "bad_level")}),
    ({"skills": [{"skill": "boat", "expires": "2027-02-30"}]},
     {("skills[0].expires", "not_a_date")}),
    ({"skills": [{"skill": "boat", "expires": "01/05/2027"}]},
     {("skills[0].expires", "not_a_date")}),
    ({"skills": [{"skill": "boat", "expires": 20270501}]},
     {("skills[0].expires", "not_a_date")}),
    ({"skills": [{"skill": "boat", "level": 2}]}, {("skills[0].expires", "needs_expiry")}),
    ({"skills": [{"skill": "chainsaw"}, {"skill": "chainsaw", "level": 2}]},
     {("skills[1].skill", "duplicate")}),
    ({"user": "nobody"}, {("user", "unknown_user")}),
])
def test_each_bad_field_is_named(change, expected):
    assert problems({**GOOD, **change}) == expected


def test_every_bad_field_is_named_at_once():
    found = problems({"code": "M 1", "name": "", "post": "pilot", "squad": ["A", "B"],
                      "skills": [{"skill": "boat", "level": 9, "expires": "soon"}],
                      "user": "nobody"})
    assert found == {("code", "bad_code"), ("name", "required"), ("post", "not_a_choice"),
                     ("squad", "two_squads"), ("skills[0].level", "bad_level"),
                     ("skills[0].expires", "not_a_date"), ("user", "unknown_user")}


def test_problems_say_why_in_english():
    with pytest.raises(Refused) as refused:
        check_member({**GOOD, "squad": "X1"}, KNOWN)
    assert refused.value.problems[0].why == ("X1 is a squad of ZH, not of the member's team FT")


def test_a_change_keeps_what_it_does_not_name():
    current = check_member(GOOD, KNOWN)
    changed = check_member({"status": "leave", "phone": None, "skills": []}, KNOWN,
                           current=current)
    assert changed == MemberFields(**{**vars(current), "status": "leave", "phone": "",
                                      "skills": ()})


@pytest.mark.parametrize(("change", "expected"), [
    ({"name": None}, {("name", "not_null")}),
    ({"skills": None}, {("skills", "not_null")}),
    ({"code": "M-99"}, {("code", "code_changed")}),
    # The new team's squads do not hold the current squad: say it, do not drop the squad.
    ({"team": "ZH"}, {("squad", "squad_of_other_team")}),
])
def test_a_change_is_checked_whole(change, expected):
    assert problems(change, current=check_member(GOOD, KNOWN)) == expected


def test_a_change_may_clear_team_squad_user_and_phone():
    current = check_member(GOOD, KNOWN)
    changed = check_member({"team": None, "squad": None, "user": None, "phone": None}, KNOWN,
                           current=current)
    assert (changed.team, changed.squad, changed.user, changed.phone) == (None, None, None, "")


@pytest.mark.parametrize(("cell", "skills", "bad"), [
    ("boat:2:2027-05-01;first_aid:1:", [
        {"skill": "boat", "level": 2, "expires": "2027-05-01"},
        {"skill": "first_aid", "level": 1, "expires": None}], []),
    ("chainsaw", [{"skill": "chainsaw", "level": 1, "expires": None}], []),
    ("chainsaw:3", [{"skill": "chainsaw", "level": 3, "expires": None}], []),
    (" boat : 2 : 2027/5/1 ；chainsaw::", [
        {"skill": "boat", "level": 2, "expires": "2027-05-01"},
        {"skill": "chainsaw", "level": 1, "expires": None}], []),
    ("boat:x:2027-05-01", [{"skill": "boat", "level": "x", "expires": "2027-05-01"}], []),
    ("boat:2:2027-05-01:x;chainsaw", [{}, {"skill": "chainsaw", "level": 1, "expires": None}],
     [("skills[0]", "bad_skill_cell")]),
    (":2:", [{}], [("skills[0]", "bad_skill_cell")]),
    ("", [], []),
])
def test_the_skills_cell(cell, skills, bad):
    read, problems_found = skills_cell(cell)
    assert read == skills
    assert [(p.field, p.code) for p in problems_found] == bad


def test_a_csv_row_is_the_json_body():
    row = {"code": "M-01", "name": "王建国", "phone": "+86 138 0000 1234", "post": "water",
           "employment": "contract", "team": "FT", "squad": "A", "roles": "rescue;relief",
           "skills": "boat:2:2027-05-01;chainsaw:1:", "status": "on_shift", "user": "wang"}
    body, bad = csv_body(row)
    assert not bad
    assert check_member(body, KNOWN).as_json() == GOOD
    assert check_row(row, KNOWN).as_json() == GOOD


@pytest.mark.parametrize(("cells", "expected"), [
    ({"squad": "A;B"}, {("squad", "two_squads")}),
    ({"skills": "boat:4:2027-05-01"}, {("skills[0].level", "bad_level")}),
    ({"skills": "boat:2:"}, {("skills[0].expires", "needs_expiry")}),
    ({"skills": "boat:2:next year"}, {("skills[0].expires", "not_a_date")}),
    ({"skills": "boat:2:2027-05-01;boat:1:2028-01-01"}, {("skills[1].skill", "duplicate")}),
    ({"skills": "a:b:c:d;flying"}, {("skills[0]", "bad_skill_cell"),
                                    ("skills[1].skill", "unknown_skill")}),
    ({"roles": "rescue;pilot"}, {("roles[1]", "unknown_role")}),
])
def test_bad_csv_cells_are_named(cells, expected):
    row = {"code": "M-01", "name": "王建国", "team": "FT", **cells}
    with pytest.raises(Refused) as refused:
        check_row(row, KNOWN)
    assert {(p.field, p.code) for p in refused.value.problems} == expected


def test_an_empty_cell_keeps_the_current_value_of_a_member_updated_from_csv():
    current = check_member(GOOD, KNOWN)
    assert check_row({"code": "M-01", "name": "", "status": "leave"}, KNOWN,
                     current=current).status == "leave"
    assert check_row({"code": "M-01"}, KNOWN, current=current) == current


@pytest.mark.parametrize(("body", "expected"), [
    ({"code": "boat", "name_zh": "冲锋舟驾驶"}, SkillFields("boat", "冲锋舟驾驶")),
    ({"code": "c1", "name_zh": "C1驾驶证", "name_en": "Licence C1", "needs_certificate": True},
     SkillFields("c1", "C1驾驶证", "Licence C1", True)),
])
def test_a_good_skill(body, expected):
    assert check_skill(body) == expected


@pytest.mark.parametrize(("body", "expected"), [
    ({"name_zh": "x"}, {("code", "required")}),
    ({"code": "b oat", "name_zh": "x"}, {("code", "bad_code")}),
    ({"code": "boat"}, {("name_zh", "required")}),
    ({"code": "boat", "name_zh": "x", "needs_certificate": "yes"},
     {("needs_certificate", "not_a_boolean")}),
    ({"code": "boat", "name_zh": "x", "name_en": "y" * 129}, {("name_en", "too_long")}),
])
def test_bad_skills(body, expected):
    with pytest.raises(Refused) as refused:
        check_skill(body)
    assert {(p.field, p.code) for p in refused.value.problems} == expected


def test_a_skill_change():
    current = SkillFields("boat", "冲锋舟驾驶")
    assert check_skill({"needs_certificate": True, "name_en": None}, current=current) == \
        SkillFields("boat", "冲锋舟驾驶", "", True)
    with pytest.raises(Refused) as refused:
        check_skill({"code": "ship", "name_zh": None}, current=current)
    assert {(p.field, p.code) for p in refused.value.problems} == {
        ("code", "code_changed"), ("name_zh", "not_null")}


@pytest.mark.parametrize(("body", "expected"), [
    ({"code": "C", "name": "C班", "parent": "FT"}, None),
    ({"code": "T1", "name": "队", "parent": None}, None),
    ({"code": "C", "name": "C班", "parent": "NOPE"}, {("parent", "unknown_parent")}),
    ({"code": "C", "name": "C班", "parent": "A"}, {("parent", "parent_is_squad")}),
    ({"code": "", "name": ""}, {("code", "bad_code"), ("name", "required")}),
])
def test_teams_and_squads(body, expected):
    if expected is None:
        assert check_team(body, KNOWN.teams).code == body["code"]
        return
    with pytest.raises(Refused) as refused:
        check_team(body, KNOWN.teams)
    assert {(p.field, p.code) for p in refused.value.problems} == expected
