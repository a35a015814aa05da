"""Scanning over the API on both databases (GET /api/v1/depot/scan): each kind a code names, with
what the keeper's pages need; codes in any case and with the scanner's trailing CR/LF; unknown
codes (404 `unknown_code`) and codes of the wrong kind for the step (409 `wrong_kind`); roles."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.depot import factories as f

URL = "/api/v1/depot/scan"


@pytest.fixture
def keeper(app, bearer):
    f.depot()
    return bearer("keeper")


def scan(client, headers, code, want=None, **extra):
    params = {"code": code, **({"want": want} if want else {}), **extra}
    return client.get(URL, query_string=params, headers=headers)


def test_an_item_with_its_type_bin_and_whether_it_can_go_out(client, keeper):
    answer = scan(client, keeper, "BOAT-1", "item")
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert (body["kind"], body["code"], body["name"], body["status"]) == (
        "item", "BOAT-1", "冲锋舟", "in_stock")
    assert body["type"]["code"] == "BOAT" and body["bin"] == f.BIN_A
    assert body["available"] is True and body["reason"] is None and body["holder"] is None


@pytest.mark.parametrize(("change", "reason"), [
    ({"status": "repair"}, "repair"),
    ({"status": "unserviceable"}, "unserviceable"),
    ({"status": "lost"}, "lost"),
    ({"inspection_due": f.TODAY - timedelta(days=1)}, "inspection_overdue"),
    ({"expires": f.TODAY - timedelta(days=1)}, "expired"),
])
def test_an_item_that_cannot_go_out_says_why(client, keeper, change, reason):
    f.set_item("EXT-1", **change)
    body = scan(client, keeper, "EXT-1", "item").json
    assert (body["available"], body["reason"]) == (False, reason)


def test_an_item_that_is_out_names_its_holder(client, keeper):
    out = client.post("/api/v1/depot/checkouts", json={"items": ["PUMP-1"],
                                                        "to": {"team": "ZH"}}, headers=keeper)
    assert out.status_code == 201, out.json
    body = scan(client, keeper, "pump-1", "item").json
    assert (body["available"], body["reason"]) == (False, "out")
    assert body["holder"]["to"] == {"kind": "team", "code": "ZH"}
    assert body["holder"]["checkout"] == out.json["id"]


@pytest.mark.parametrize("raw", ["boat-1", "Boat-1", "  BOAT-1  ", "BOAT-1\r\n", "BOAT-1\n",
                                 "\tboat-1\r"])
def test_codes_are_case_insensitive_and_trimmed(client, keeper, raw):
    answer = scan(client, keeper, raw)
    assert answer.status_code == 200, answer.json
    assert (answer.json["kind"], answer.json["code"]) == ("item", "BOAT-1")


def test_a_member_and_a_team_by_name_through_the_directory(client, keeper):
    member = scan(client, keeper, "m001\r\n", "member,team")
    assert member.status_code == 200, member.json
    assert (member.json["kind"], member.json["code"], member.json["name"]) == (
        "member", "M001", "李强")
    assert member.json["part_of"] == "综合应急救援队" and member.json["checkouts"] == []
    team = scan(client, keeper, "zh", "member,team").json
    assert (team["kind"], team["code"], team["name"]) == ("team", "ZH", "综合应急救援队")


def test_a_holder_brings_its_open_check_outs_for_the_check_in_page(client, keeper):
    out = client.post("/api/v1/depot/checkouts", json={
        "items": ["BOAT-2"], "stock": [{"type": "SANDBAG", "qty": 40, "bin": f.BIN_B}],
        "to": {"team": "ZH"}}, headers=keeper)
    assert out.status_code == 201, out.json
    body = scan(client, keeper, "ZH", "team").json
    assert [c["id"] for c in body["checkouts"]] == [out.json["id"]]
    lines = body["checkouts"][0]["lines"]
    assert [(line["item"], line["type"], line["name"], line["qty"]) for line in lines] == [
        ("BOAT-2", "BOAT", "冲锋舟", 1), (None, "SANDBAG", "沙袋", 40)]


def test_a_kit_with_its_lines_and_what_is_ready(client, keeper):
    f.set_item("BOAT-1", status="repair")
    answer = scan(client, keeper, "kit-boat", "item,kit,stock")
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert (body["kind"], body["code"], body["name"], body["short"]) == (
        "kit", "KIT-BOAT", "冲锋舟组套装", False)
    assert [(line["type"], line["count"], line["ready"], line["serialized"])
            for line in body["lines"]] == [("BOAT", 1, 3, True), ("JACKET", 2, 4, True),
                                           ("SANDBAG", 50, 1300, False)]
    elsewhere = scan(client, keeper, "KIT-BOAT", "kit", site="NOWHERE")
    assert elsewhere.status_code == 400 and elsewhere.json["parameter"] == "site"


def test_a_kit_short_of_serviceable_items_says_so(client, keeper):
    for n in range(1, 5):
        f.set_item(f"BOAT-{n}", inspection_due=f.TODAY - timedelta(days=2))
    body = scan(client, keeper, "KIT-BOAT", "kit").json
    assert body["short"] is True
    assert [(line["type"], line["short"]) for line in body["lines"]][0] == ("BOAT", True)


def test_bulk_stock_with_its_bins_fullest_first(client, keeper):
    body = scan(client, keeper, "sandbag", "item,kit,stock").json
    assert (body["kind"], body["code"], body["unit"], body["whole_units"]) == (
        "stock", "SANDBAG", "pcs", True)
    assert [(b["bin"], b["quantity"]) for b in body["bins"]] == [(f.BIN_A, 1000), (f.BIN_B, 300)]
    rope = scan(client, keeper, "ROPE", "stock").json
    assert rope["whole_units"] is False and rope["bins"][0]["quantity"] == 250.5


def test_an_unknown_code_is_404(client, keeper):
    answer = scan(client, keeper, "NO-SUCH-CODE\r\n", "item")
    assert answer.status_code == 404
    assert answer.json["error"] == "unknown_code" and answer.json["code"] == "NO-SUCH-CODE"
    assert "NO-SUCH-CODE" in answer.json["message"]
    # What is no code at all (a URL in someone else's QR code) is unknown too.
    assert scan(client, keeper, "https://example.com/x y").status_code == 404
    # A left member is nobody.
    assert scan(client, keeper, "M002", "member").json["error"] == "unknown_code"


@pytest.mark.parametrize(("code", "want", "kind", "words"), [
    ("BOAT-1", "member,team", "item", ("BOAT-1 是物品", "队员或队伍")),
    ("M001", "item,kit,stock", "member", ("M001 是队员", "物品")),
    ("ZH", "item", "team", ("ZH 是队伍", "物品")),
    ("KIT-BOAT", "member", "kit", ("套装", "队员")),
    ("SANDBAG", "item", "stock", ("散装物资",)),
    ("BOAT", "item,kit,stock", "type", ("装备类型",)),
    ("D1", "item", "site", ("仓库",)),
])
def test_a_code_of_the_wrong_kind_is_409_with_the_reason(client, keeper, code, want, kind,
                                                         words):
    answer = scan(client, keeper, code, want)
    assert answer.status_code == 409, answer.json
    assert answer.json["error"] == "wrong_kind" and answer.json["kind"] == kind
    assert answer.json["expected"] == want.split(",")
    for word in words:
        assert word in answer.json["message"], answer.json["message"]


def test_the_message_is_in_english_when_asked(client, keeper):
    client.set_cookie("lang", "en")
    answer = scan(client, keeper, "BOAT-1", "member")
    assert answer.json["message"] == "BOAT-1 is an item, a member is expected."
    assert scan(client, keeper, "BOAT-1").json["name"] == "Boat"


@pytest.mark.parametrize("params", [{}, {"code": ""}, {"code": "   \r\n"},
                                    {"code": "X" * 201}, {"code": "BOAT-1", "want": "boat"},
                                    {"code": "BOAT-1", "want": "item,,kit"}])
def test_bad_parameters_are_400(client, keeper, params):
    answer = client.get(URL, query_string=params, headers=keeper)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "bad_parameter"


@pytest.mark.parametrize(("role", "status"), [("keeper", 200), ("commander", 200),
                                              ("dispatcher", 200), ("team_leader", 403),
                                              ("viewer", 403), (None, 401)])
def test_roles(client, app, bearer, role, status):
    f.depot()
    headers = bearer(role) if role else {}
    assert scan(client, headers, "BOAT-1").status_code == status
