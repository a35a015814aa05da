"""The member CSV import, on both databases: all rows or none, every bad row named with its
line and why."""

from __future__ import annotations

import io
import json

from sqlalchemy import func, select

from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.roster.models import Member
from tests.roster.bodies import add, member

HEADER = "code,name,phone,post,employment,team,squad,roles,skills,status,user\n"
GOOD = (HEADER
        + "M-01,王建国,13800001234,water,contract,FT,A,rescue;relief,"
          "boat:2:2027-05-01;chainsaw:1:,on_shift,\n"
        + "M-02,李梅,,fire,,FT,B,rescue,first_aid:3:2028/1/31,,\n"
        + "Z-01,刘芳,,grid,volunteer,ZH,,service；publicity,,on_call,\n")


def post(client, headers, text: str, query: str = ""):
    return client.post("/api/v1/members/import" + query, data=text.encode(),
                       content_type="text/csv", headers=headers)


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(Member))


def test_a_good_file_is_imported_whole(client, catalogue):
    answer = post(client, catalogue, GOOD)
    assert answer.status_code == 200, answer.json
    assert answer.json == {"created": 3, "updated": 0}
    assert client.get("/api/v1/members/M-01", headers=catalogue).json == member(
        phone="13800001234", status="on_shift")
    second = client.get("/api/v1/members/M-02", headers=catalogue).json
    assert (second["employment"], second["skills"]) == (
        "staff", [{"skill": "first_aid", "level": 3, "expires": "2028-01-31"}])
    assert client.get("/api/v1/members/Z-01", headers=catalogue).json["roles"] == [
        "service", "publicity"]
    created = db.session.scalars(select(AuditEntry.entity_id).where(
        AuditEntry.action == "member.create").order_by(AuditEntry.seq)).all()
    assert created == ["M-01", "M-02", "Z-01"]


def test_a_file_upload_is_taken_too(client, catalogue):
    answer = client.post("/api/v1/members/import", headers=catalogue, data={
        "file": (io.BytesIO(("\ufeff" + GOOD).encode()), "members.csv")},
        content_type="multipart/form-data")
    assert answer.json == {"created": 3, "updated": 0}


def test_bad_rows_are_all_named_and_nothing_is_written(client, catalogue, make_user):
    leader = make_user("team_leader", "leader-li")
    add(client, catalogue, member("OLD", user=leader.username))
    rows = [
        "M-01,王建国,,pilot,,FT,A,,,,",                       # 2: unknown post
        "M-02,李梅,,,,FT,A;B,,,,",                            # 3: in two squads
        "M-03,张伟,,,,ZH,A,,,,",                              # 4: A is not a squad of ZH
        "M-04,刘芳,,,,FT,,,boat:4:2027-05-01,,",              # 5: level outside 1-3
        "M-05,陈军,,,,FT,,,boat:2:,,",                        # 6: certificate without expiry
        "M-06,杨平,,,,FT,,,boat:2:soon;boat:1:2027-01-01,,",  # 7: no date, listed twice
        "M-07,赵强,,,,FT,,,a:b:c:d,,",                        # 8: not skill:level:expires
        "M-08,黄伟,,,,NOPE,,flying,,asleep,nobody",          # 9: four bad cells
        "M-09,周秀,,,,FT,A,,,,",                              # 10: good
        "M-09,周秀,,,,FT,B,,,,",                              # 11: M-09 again, other squad
        "M-10,吴英,,,,FT,A,,,,",                              # 12: good
        "M-10,吴英,,,,FT,A,,,,",                              # 13: M-10 again
        f"M-11,徐兰,,,,FT,,,,,{leader.username}",             # 14: user linked to OLD
        "OLD,孙芳,,,,FT,,,,,",                                # 15: exists (no upsert)
        "M-12,胡明,,,,FT,,,,,,extra",                         # 16: more cells than columns
    ]
    answer = post(client, catalogue, HEADER + "\n".join(rows) + "\n")
    assert answer.status_code == 422
    assert answer.json["error"] == "import_rejected"
    listed = {r["line"]: (r["code"], r["reason"]) for r in answer.json["rows"]}
    assert sorted(listed) == [2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 16]
    assert listed[2][0] == "M-01" and listed[2][1].startswith("post")
    assert listed[3][1].startswith("squad")
    assert "ZH" in listed[4][1]
    assert listed[5][1].startswith("skills[0].level")
    assert listed[6][1].startswith("skills[0].expires")
    assert "skills[0].expires" in listed[7][1] and "skills[1].skill" in listed[7][1]
    assert listed[8][1].startswith("skills[0]")
    assert [part.split("：")[0].split(":")[0] for part in listed[9][1].split("; ")] == [
        "team", "roles[0]", "status", "user"]
    assert "10" in listed[11][1] and "M-09" in listed[11][1]
    assert "12" in listed[13][1]
    assert "OLD" in listed[14][1]
    assert listed[15][0] == "OLD"
    assert listed[16][0] == "M-12"
    assert count() == 1


def test_messages_of_bad_rows_are_in_the_requests_language(client, catalogue):
    client.set_cookie("lang", "en")
    answer = post(client, catalogue, HEADER + "M-01,王建国,,,,FT,A;B,,,,\n"
                  + "M-01,王建国,,,,FT,B,,,,\n")
    assert [r["reason"] for r in answer.json["rows"]] == [
        "squad: must be one squad: a member is in one squad only",
        "member M-01 is on line 2 too, in another squad: a member is in one squad only"]


def test_the_same_user_on_two_rows_is_refused(client, catalogue, make_user):
    leader = make_user("team_leader", "leader-zhao")
    text = HEADER + f"M-01,王建国,,,,,,,,,{leader.username}\nM-02,李梅,,,,,,,,,{leader.username}\n"
    answer = post(client, catalogue, text)
    assert [r["line"] for r in answer.json["rows"]] == [3]


def test_upsert_updates_members_and_keeps_empty_cells(client, catalogue, make_user):
    leader = make_user("team_leader", "leader-sun")
    add(client, catalogue, member("M-01", user=leader.username))
    add(client, catalogue, member("M-02"))
    client.delete("/api/v1/members/M-02", headers=catalogue)
    text = (HEADER + "M-01,,,,,,B,,,leave,\n" + "M-02,李梅,,,,FT,,,,,\n"
            + f"M-03,张伟,,,,FT,A,,,,{leader.username}\n")
    assert post(client, catalogue, text).status_code == 422  # M-01 exists, leader is linked
    text = (HEADER + "M-01,,,,,,B,,,leave,\n" + "M-02,李梅,,,,FT,,,,,\n"
            + "M-03,张伟,,,,FT,A,,,,\n")
    answer = post(client, catalogue, text, "?mode=upsert")
    assert answer.json == {"created": 2, "updated": 1}
    first = client.get("/api/v1/members/M-01", headers=catalogue).json
    assert first == member("M-01", squad="B", status="leave", user=leader.username)
    assert client.get("/api/v1/members/M-02", headers=catalogue).json["squad"] is None
    entries = db.session.execute(select(AuditEntry.action, AuditEntry.before).where(
        AuditEntry.entity_id == "M-02").order_by(AuditEntry.seq)).all()
    assert [a for a, _ in entries] == ["member.create", "member.delete", "member.create"]
    assert json.loads(entries[-1][1])["active"] is False  # rejoined


def test_a_user_moves_between_members_of_one_file(client, catalogue, make_user):
    leader = make_user("team_leader", "leader-he")
    add(client, catalogue, member("M-01", user=leader.username))
    add(client, catalogue, member("M-02"))
    # Clearing a cell is not possible in CSV (empty keeps): move the user by naming both.
    other = make_user("team_leader", "leader-ma")
    text = (HEADER + f"M-01,,,,,,,,,,{other.username}\n"
            + f"M-02,,,,,,,,,,{leader.username}\n")
    answer = post(client, catalogue, text, "?mode=upsert")
    assert answer.status_code == 422  # leader is linked to M-01 in the database
    assert "M-01" in answer.json["rows"][0]["reason"]


def test_bad_files(client, catalogue):
    cases = [
        ("code,name,skill\nM-01,x,boat\n", 400, "bad_csv"),        # unknown column
        ("name,post\nx,fire\n", 400, "bad_csv"),                  # no code column
        (HEADER, 400, "empty"),
        ("", 400, "bad_csv"),
    ]
    for text, status, error in cases:
        answer = post(client, catalogue, text)
        assert (answer.status_code, answer.json["error"]) == (status, error), text
    latin = client.post("/api/v1/members/import", data="code,name\nM-01,Jos\xe9\n".encode(
        "latin-1"), content_type="text/csv", headers=catalogue)
    assert (latin.status_code, latin.json["error"]) == (400, "bad_encoding")
    too_many = HEADER + "".join(f"M-{i},x,,,,,,,,,\n" for i in range(5001))
    assert post(client, catalogue, too_many).json["error"] == "too_many_rows"
    assert count() == 0
