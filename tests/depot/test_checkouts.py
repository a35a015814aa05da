"""Check-out over the API on both databases: items, stock and kits to a member, a team or an
incident; every reason an item cannot go out, with nothing written; unknown codes and codes of
the wrong kind; roles; the audit entry and the `depot` live event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from depot.models import Checkout, CheckoutLine, StockMove
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.core.realtime import NAMESPACE
from tests.depot import factories as f

URL = "/api/v1/depot/checkouts"


@pytest.fixture
def keeper(app, bearer):
    f.depot()
    return bearer("keeper")


def due(hours: int = 24) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def counts() -> tuple[int, int, int]:
    db.session.rollback()
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (Checkout, CheckoutLine, StockMove))


def test_items_and_stock_go_out_to_a_member(client, keeper):
    answer = client.post(URL, json={"items": ["boat-1", "PUMP-2"], "to": {"member": "m001"},
                                    "stock": [{"type": "SANDBAG", "qty": 100, "bin": f.BIN_A}],
                                    "due": due(), "note": "堤防加固"}, headers=keeper)
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["to"] == {"kind": "member", "code": "M001"} and body["open"]
    assert not body["overdue"] and body["picked"] is False
    assert [(line["item"], line["type"], line["qty"]) for line in body["lines"]] == [
        ("BOAT-1", "BOAT", 1), ("PUMP-2", "PUMP", 1), (None, "SANDBAG", 100)]
    assert f.item("BOAT-1").status == "out" and f.item("BOAT-1").checkout_id == body["id"]
    assert f.stock(f.BIN_A, "SANDBAG") == Decimal(900)
    move = db.session.scalar(select(StockMove))
    assert (move.kind, move.qty, move.to_kind, move.to_code, move.checkout_id) == (
        "issue", Decimal(-100), "member", "M001", body["id"])
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "depot.checkout"))
    assert entry.entity_id == str(body["id"]) and entry.actor.startswith("user:keeper")
    assert json.loads(entry.after)["lines"][0]["item"] == "BOAT-1"


def test_a_team_and_an_incident_hold_check_outs_and_due_defaults(client, keeper, app):
    team = client.post(URL, json={"items": ["JACKET-1"], "to": {"team": "zh"}}, headers=keeper)
    assert team.status_code == 201, team.json
    expected = datetime.now(UTC) + timedelta(hours=app.config["SETTINGS"].depot.default_due_h)
    assert abs(datetime.fromisoformat(team.json["due"]) - expected) < timedelta(minutes=1)
    incident = client.post(URL, json={"items": ["JACKET-2"], "to": {"incident": "INC-2026-7"}},
                           headers=keeper)
    assert incident.status_code == 201 and incident.json["to"]["code"] == "INC-2026-7"


@pytest.mark.parametrize(("change", "reason"), [
    ({"status": "out"}, "out"),
    ({"status": "unserviceable"}, "unserviceable"),
    ({"status": "repair"}, "repair"),
    ({"status": "lost"}, "lost"),
    ({"status": "retired"}, "retired"),
    ({"expires": f.TODAY - timedelta(days=1)}, "expired"),
    ({"inspection_due": f.TODAY - timedelta(days=1)}, "inspection_overdue"),
])
def test_an_item_that_cannot_go_out_is_refused_with_its_reason_and_nothing_written(
        client, keeper, change, reason):
    f.set_item("EXT-1", **change)
    before = counts()
    answer = client.post(URL, json={"items": ["BOAT-1", "EXT-1"], "to": {"member": "M001"},
                                    "stock": [{"type": "SANDBAG", "qty": 10, "bin": f.BIN_A}]},
                         headers=keeper)
    assert answer.status_code == 409
    assert answer.json["error"] == "unavailable" and answer.json["message"]
    assert answer.json["items"] == [{"code": "EXT-1", "reason": reason}]
    assert counts() == before
    assert f.item("BOAT-1").status == "in_stock"
    assert f.stock(f.BIN_A, "SANDBAG") == Decimal(1000)


def test_due_today_and_expiring_today_still_go_out(client, keeper):
    f.set_item("EXT-1", expires=f.TODAY, inspection_due=f.TODAY)
    answer = client.post(URL, json={"items": ["EXT-1"], "to": {"member": "M001"}},
                         headers=keeper)
    assert answer.status_code == 201, answer.json


def test_issuing_more_than_the_bin_holds_is_insufficient_stock(client, keeper):
    answer = client.post(URL, json={"to": {"member": "M001"}, "stock": [
        {"type": "SANDBAG", "qty": 250, "bin": f.BIN_B},
        {"type": "SANDBAG", "qty": 100, "bin": f.BIN_B}]}, headers=keeper)
    assert answer.status_code == 409
    assert answer.json["items"] == [{"code": "SANDBAG", "reason": "insufficient_stock",
                                     "bin": f.BIN_B, "available": 300}]
    assert f.stock(f.BIN_B, "SANDBAG") == Decimal(300)


@pytest.mark.parametrize(("qty", "field"), [
    (0, "stock[0].qty"), (-5, "stock[0].qty"), (1.5, "stock[0].qty"), ("3", "stock[0].qty"),
    (True, "stock[0].qty"), (1e13, "stock[0].qty")])
def test_bad_counts_of_whole_unit_stock_are_400(client, keeper, qty, field):
    answer = client.post(URL, json={"to": {"member": "M001"}, "stock": [
        {"type": "SANDBAG", "qty": qty, "bin": f.BIN_A}]}, headers=keeper)
    assert answer.status_code == 400 and answer.json["field"] == field


def test_divisible_stock_takes_fractions(client, keeper):
    answer = client.post(URL, json={"to": {"team": "ZH"}, "stock": [
        {"type": "ROPE", "qty": 50.25, "bin": f.BIN_A}]}, headers=keeper)
    assert answer.status_code == 201, answer.json
    assert answer.json["lines"][0]["qty"] == 50.25
    assert f.stock(f.BIN_A, "ROPE") == Decimal("200.250")


def test_unknown_codes_are_422_naming_each(client, keeper):
    before = counts()
    answer = client.post(URL, json={"items": ["BOAT-1", "NOPE-1", "NOPE-2"],
                                    "to": {"member": "M001"}}, headers=keeper)
    assert answer.status_code == 422 and answer.json["error"] == "bad_codes"
    assert answer.json["codes"] == [
        {"field": "items[1]", "code": "NOPE-1", "problem": "unknown", "kind": None},
        {"field": "items[2]", "code": "NOPE-2", "problem": "unknown", "kind": None}]
    assert "NOPE-1" in answer.json["message"]
    for body in ({"items": ["BOAT-1"], "to": {"member": "M999"}},
                 {"items": ["BOAT-1"], "to": {"member": "M002"}},  # left the team
                 {"items": ["BOAT-1"], "to": {"team": "NOTEAM"}},
                 {"kit": "NOKIT", "to": {"team": "ZH"}},
                 {"to": {"team": "ZH"}, "stock": [{"type": "NOTYPE", "qty": 1, "bin": f.BIN_A}]},
                 {"to": {"team": "ZH"}, "stock": [{"type": "SANDBAG", "qty": 1,
                                                   "bin": "D1/Z/9/9"}]}):
        answer = client.post(URL, json=body, headers=keeper)
        assert answer.status_code == 422, body
        assert answer.json["codes"][0]["problem"] == "unknown"
    assert counts() == before


@pytest.mark.parametrize(("body", "field", "kind"), [
    ({"items": ["M001"], "to": {"team": "ZH"}}, "items[0]", "member"),
    ({"items": ["ZH"], "to": {"team": "ZH"}}, "items[0]", "team"),
    ({"items": ["KIT-BOAT"], "to": {"team": "ZH"}}, "items[0]", "kit"),
    ({"items": ["BOAT-1"], "to": {"member": "BOAT-2"}}, "to.member", "item"),
    ({"items": ["BOAT-1"], "to": {"member": "ZH"}}, "to.member", "team"),
    ({"items": ["BOAT-1"], "to": {"incident": "M001"}}, "to.incident", "member"),
    ({"kit": "BOAT-1", "to": {"team": "ZH"}}, "kit", "item"),
    ({"to": {"team": "ZH"}, "stock": [{"type": "BOAT", "qty": 1, "bin": f.BIN_A}]},
     "stock[0].type", "serialized_type"),
])
def test_a_code_of_the_wrong_kind_is_422_with_the_reason(client, keeper, body, field, kind):
    answer = client.post(URL, json=body, headers=keeper)
    assert answer.status_code == 422, answer.json
    assert answer.json["codes"] == [{"field": field, "code": answer.json["codes"][0]["code"],
                                     "problem": "wrong_kind", "kind": kind}]


@pytest.mark.parametrize(("body", "field"), [
    ({"items": ["BOAT-1"]}, "to"),
    ({"items": ["BOAT-1"], "to": {"member": "M001", "team": "ZH"}}, "to"),
    ({"items": ["BOAT-1"], "to": {"person": "M001"}}, "to"),
    ({"items": ["BOAT-1"], "to": "M001"}, "to"),
    ({"items": ["BOAT 1"], "to": {"member": "M001"}}, "items[0]"),
    ({"items": ["BOAT-1", "boat-1"], "to": {"member": "M001"}}, "items[1]"),
    ({"items": "BOAT-1", "to": {"member": "M001"}}, "items"),
    ({"items": ["BOAT-1"] * 501, "to": {"member": "M001"}}, "items"),
    ({"items": ["BOAT-1"], "to": {"member": "M001"}, "due": "tomorrow"}, "due"),
    ({"items": ["BOAT-1"], "to": {"member": "M001"}, "due": "2026-07-01T18:00:00"}, "due"),
    ({"items": ["BOAT-1"], "to": {"member": "M001"}, "due": "2001-07-01T18:00:00Z"}, "due"),
    ({"items": ["BOAT-1"], "to": {"member": "M001"}, "due": "2999-07-01T18:00:00Z"}, "due"),
    ({"items": ["BOAT-1"], "to": {"member": "M001"}, "colour": "red"}, "colour"),
    ({"items": ["BOAT-1"], "to": {"member": "M001"}, "note": "x" * 201}, "note"),
    ({"to": {"member": "M001"}, "stock": [{"type": "SANDBAG", "qty": 1}]}, "stock[0].bin"),
])
def test_malformed_bodies_are_400_naming_the_field(client, keeper, body, field):
    answer = client.post(URL, json=body, headers=keeper)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "bad_field" and answer.json["field"] == field


def test_nothing_to_check_out_is_400(client, keeper):
    answer = client.post(URL, json={"to": {"member": "M001"}, "items": []}, headers=keeper)
    assert answer.status_code == 400 and answer.json["error"] == "nothing_out"
    assert client.post(URL, data="[1]", content_type="application/json",
                       headers=keeper).status_code == 400


def test_a_kit_alone_is_picked_from_serviceable_items_and_stock(client, keeper):
    f.set_item("BOAT-1", status="repair")
    f.set_item("JACKET-1", inspection_due=f.TODAY - timedelta(days=3))
    answer = client.post(URL, json={"kit": "kit-boat", "to": {"team": "ZH"}}, headers=keeper)
    assert answer.status_code == 201, answer.json
    assert answer.json["picked"] is True and answer.json["kit"] == "KIT-BOAT"
    lines = [(line["item"], line["type"], line["bin"], line["qty"])
             for line in answer.json["lines"]]
    assert lines == [("BOAT-2", "BOAT", f.BIN_A, 1), ("JACKET-2", "JACKET", f.BIN_A, 1),
                     ("JACKET-3", "JACKET", f.BIN_A, 1), (None, "SANDBAG", f.BIN_A, 50)]


def test_a_kit_the_depot_cannot_fill_is_409_naming_the_type(client, keeper):
    for n in (1, 2, 3, 4):
        f.set_item(f"BOAT-{n}", status="out" if n < 3 else "unserviceable")
    before = counts()
    answer = client.post(URL, json={"kit": "KIT-BOAT", "to": {"team": "ZH"}}, headers=keeper)
    assert answer.status_code == 409
    assert answer.json["items"] == [{"code": "BOAT", "reason": "insufficient_stock",
                                     "needed": 1, "available": 0}]
    assert counts() == before


def test_a_kit_alone_picks_from_one_site_when_asked(client, keeper):
    elsewhere = client.post(URL, json={"kit": "KIT-BOAT", "to": {"team": "ZH"}, "site": "D2"},
                            headers=keeper)
    assert elsewhere.status_code == 422 and elsewhere.json["codes"][0]["field"] == "site"
    here = client.post(URL, json={"kit": "KIT-BOAT", "to": {"team": "ZH"}, "site": "d1"},
                       headers=keeper)
    assert here.status_code == 201 and here.json["picked"]
    scanned = client.post(URL, json={"items": ["BOAT-4"], "to": {"team": "ZH"}, "site": "D1"},
                          headers=keeper)
    assert scanned.status_code == 400 and scanned.json["field"] == "site"


def test_a_kit_with_scanned_items_must_be_covered(client, keeper):
    short = client.post(URL, json={"kit": "KIT-BOAT", "to": {"team": "ZH"},
                                   "items": ["BOAT-1", "JACKET-1"]}, headers=keeper)
    assert short.status_code == 422 and short.json["error"] == "kit_short"
    assert short.json["short"] == [{"type": "JACKET", "needed": 2, "given": 1},
                                   {"type": "SANDBAG", "needed": 50, "given": 0}]
    whole = client.post(URL, json={"kit": "KIT-BOAT", "to": {"team": "ZH"},
                                   "items": ["BOAT-1", "JACKET-1", "JACKET-2"],
                                   "stock": [{"type": "SANDBAG", "qty": 60, "bin": f.BIN_B}]},
                        headers=keeper)
    assert whole.status_code == 201, whole.json
    assert whole.json["picked"] is False and len(whole.json["lines"]) == 4


@pytest.mark.any_backend
@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("dispatcher", 403),
                                              ("team_leader", 403), ("commander", 201)])
def test_only_keepers_and_commanders_check_out(client, keeper, bearer, role, status):
    answer = client.post(URL, json={"items": ["BOAT-1"], "to": {"member": "M001"}},
                         headers=bearer(role))
    assert answer.status_code == status
    assert client.post(URL, json={"items": ["BOAT-1"], "to": {"member": "M001"}}
                       ).status_code == 401


def test_the_office_hears_a_depot_event_after_the_commit(client, keeper, login, sio):
    login("dispatcher")
    office = sio()
    office.get_received(NAMESPACE)
    answer = client.post(URL, json={"items": ["BOAT-3"], "to": {"member": "M001"}},
                         headers=keeper)
    assert answer.status_code == 201
    [event] = [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "depot"]
    assert event == {**event, "kind": "checkout", "action": "out", "codes": ["BOAT-3"],
                     "count": 1, "sites": ["D1"], "types": ["BOAT"],
                     "checkouts": [answer.json["id"]]}
    assert event["id"] and event["ts"]


def test_open_and_overdue_lists(client, keeper, bearer):
    first = client.post(URL, json={"items": ["BOAT-1"], "to": {"member": "M001"}},
                        headers=keeper).json
    client.post(URL, json={"items": ["BOAT-2"], "to": {"team": "ZH"}}, headers=keeper)
    with db.transaction() as s:
        s.get(Checkout, first["id"]).due = datetime.now(UTC) - timedelta(hours=2)
    reader = bearer("dispatcher")
    listed = client.get(URL + "?open=true", headers=reader)
    assert listed.status_code == 200 and len(listed.json["items"]) == 2
    overdue = client.get(URL + "?overdue=true", headers=reader).json["items"]
    assert [c["id"] for c in overdue] == [first["id"]] and overdue[0]["overdue"]
    assert overdue[0]["lines"][0]["item"] == "BOAT-1"
    assert overdue[0]["to"] == {"kind": "member", "code": "M001"}
    assert client.get(URL + "?open=false", headers=reader).json["items"] == []
    assert client.get(URL + "?open=yes", headers=reader).status_code == 400
    assert client.get(URL, headers=bearer("viewer")).status_code == 403
