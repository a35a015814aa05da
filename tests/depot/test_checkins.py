"""Check-in over the API on both databases: partial returns, a check-out closing when all is
back, damaged → repair with a repair record, lost → lost, stock back into its bin on the ledger,
and returning what is not out (409, nothing written)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from depot.models import Checkout, Repair, StockMove
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.core.realtime import NAMESPACE
from tests.depot import factories as f

OUT = "/api/v1/depot/checkouts"
IN = "/api/v1/depot/checkins"


@pytest.fixture
def keeper(app, bearer):
    f.depot()
    return bearer("keeper")


@pytest.fixture
def out(client, keeper):
    """BOAT-1, PUMP-1, PUMP-2 and 100 sandbags out to the team."""
    answer = client.post(OUT, json={"items": ["BOAT-1", "PUMP-1", "PUMP-2"],
                                    "stock": [{"type": "SANDBAG", "qty": 100, "bin": f.BIN_A}],
                                    "to": {"team": "ZH"}}, headers=keeper)
    assert answer.status_code == 201, answer.json
    return answer.json


def closed_at(checkout_id: int):
    db.session.rollback()
    return db.session.get(Checkout, checkout_id).closed_at


def test_a_partial_return_leaves_the_check_out_open_until_all_is_back(client, keeper, out):
    first = client.post(IN, json={"items": [{"code": "boat-1", "condition": "ok"}]},
                        headers=keeper)
    assert first.status_code == 200, first.json
    assert first.json["items"] == [{"code": "BOAT-1", "condition": "ok", "status": "in_stock",
                                    "repair": None}]
    [checkout] = first.json["checkouts"]
    assert checkout["id"] == out["id"] and checkout["open"]
    assert f.item("BOAT-1").status == "in_stock" and f.item("BOAT-1").checkout_id is None
    assert closed_at(out["id"]) is None
    rest = client.post(IN, json={"items": [{"code": "PUMP-1"}, {"code": "PUMP-2"}],
                                 "stock": [{"type": "SANDBAG", "qty": 60}]}, headers=keeper)
    assert rest.status_code == 200 and rest.json["checkouts"][0]["open"]
    last = client.post(IN, json={"stock": [{"type": "SANDBAG", "qty": 40, "bin": f.BIN_B}]},
                       headers=keeper)
    assert last.status_code == 200
    assert not last.json["checkouts"][0]["open"] and closed_at(out["id"]) is not None
    assert f.stock(f.BIN_A, "SANDBAG") == Decimal(960)
    assert f.stock(f.BIN_B, "SANDBAG") == Decimal(340)
    moves = db.session.scalars(select(StockMove).where(StockMove.kind == "return")
                               .order_by(StockMove.id)).all()
    assert [(m.qty, m.checkout_id) for m in moves] == [(Decimal(60), out["id"]),
                                                      (Decimal(40), out["id"])]
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "depot.checkin")
                                 .order_by(AuditEntry.seq)).all()
    assert len(entries) == 3 and json.loads(entries[-1].after)["closed"] is True


def test_damaged_goes_to_repair_with_a_record_and_lost_is_lost(client, keeper, out):
    answer = client.post(IN, json={"items": [
        {"code": "PUMP-1", "condition": "damaged", "note": "impeller cracked"},
        {"code": "PUMP-2", "condition": "lost", "note": "washed away"}]}, headers=keeper)
    assert answer.status_code == 200, answer.json
    by_code = {i["code"]: i for i in answer.json["items"]}
    assert by_code["PUMP-1"]["status"] == "repair" and by_code["PUMP-1"]["repair"]
    assert by_code["PUMP-2"]["status"] == "lost" and by_code["PUMP-2"]["repair"] is None
    assert f.item("PUMP-1").status == "repair" and f.item("PUMP-2").status == "lost"
    repair = db.session.scalar(select(Repair))
    assert repair.reason == "impeller cracked" and repair.closed_at is None
    lines = {line["item"]: line for line in answer.json["checkouts"][0]["lines"]}
    assert lines["PUMP-1"]["condition"] == "damaged" and lines["PUMP-2"]["note"] == "washed away"
    again = client.post(OUT, json={"items": ["PUMP-1"], "to": {"team": "ZH"}}, headers=keeper)
    assert again.status_code == 409 and again.json["items"][0]["reason"] == "repair"


def test_returning_an_item_that_is_not_out_is_409_with_nothing_written(client, keeper, out):
    answer = client.post(IN, json={"items": [{"code": "BOAT-1"}, {"code": "BOAT-2"}]},
                         headers=keeper)
    assert answer.status_code == 409 and answer.json["error"] == "not_out"
    assert answer.json["items"] == [{"code": "BOAT-2", "status": "in_stock"}]
    assert f.item("BOAT-1").status == "out"
    twice = client.post(IN, json={"items": [{"code": "BOAT-1"}]}, headers=keeper)
    assert twice.status_code == 200
    assert client.post(IN, json={"items": [{"code": "BOAT-1"}]},
                       headers=keeper).status_code == 409


def test_returning_more_stock_than_is_out_is_409(client, keeper, out):
    more = client.post(IN, json={"stock": [{"type": "SANDBAG", "qty": 101}]}, headers=keeper)
    assert more.status_code == 409
    assert more.json["items"] == [{"code": "SANDBAG", "status": "more_than_out", "out": 100}]
    none_out = client.post(IN, json={"stock": [{"type": "ROPE", "qty": 1}]}, headers=keeper)
    assert none_out.status_code == 409 and none_out.json["items"][0]["status"] == "not_out"
    assert f.stock(f.BIN_A, "SANDBAG") == Decimal(900)


def test_stock_out_on_two_check_outs_names_which(client, keeper, out):
    second = client.post(OUT, json={"stock": [{"type": "SANDBAG", "qty": 10, "bin": f.BIN_B}],
                                    "to": {"member": "M001"}}, headers=keeper).json
    ambiguous = client.post(IN, json={"stock": [{"type": "SANDBAG", "qty": 5}]},
                            headers=keeper)
    assert ambiguous.status_code == 400 and ambiguous.json["field"] == "stock[0].checkout"
    named = client.post(IN, json={"stock": [{"type": "SANDBAG", "qty": 10,
                                             "checkout": second["id"]}]}, headers=keeper)
    assert named.status_code == 200 and not named.json["checkouts"][0]["open"]
    assert f.stock(f.BIN_B, "SANDBAG") == Decimal(300)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"items": [{"code": "NOPE"}]}, 422, None),
    ({"items": [{"code": "M001"}]}, 422, None),
    ({"stock": [{"type": "BOAT", "qty": 1}]}, 422, None),
    ({"stock": [{"type": "SANDBAG", "qty": 1, "bin": "X/Y"}]}, 422, None),
    ({"items": [{"code": "BOAT-1", "condition": "broken"}]}, 400, "items[0].condition"),
    ({"items": [{"code": "BOAT-1"}, {"code": "boat-1"}]}, 400, "items[1].code"),
    ({"items": ["BOAT-1"]}, 400, "items[0]"),
    ({"items": [{"code": "BOAT-1", "note": "x" * 201}]}, 400, "items[0].note"),
    ({"stock": [{"type": "SANDBAG", "qty": 0.5}]}, 400, "stock[0].qty"),
    ({"stock": [{"type": "SANDBAG", "qty": 1, "checkout": 2**40}]}, 400, "stock[0].checkout"),
    ({"items": [], "stock": []}, 400, None),
    ({"things": []}, 400, "things"),
])
def test_bad_check_ins(client, keeper, out, body, status, field):
    answer = client.post(IN, json=body, headers=keeper)
    assert answer.status_code == status, answer.json
    if field is not None:
        assert answer.json["field"] == field
    if status == 422:
        assert answer.json["error"] == "bad_codes"
    assert f.item("BOAT-1").status == "out"


@pytest.mark.any_backend
def test_roles_and_the_live_event(client, keeper, out, bearer, login, sio):
    assert client.post(IN, json={"items": [{"code": "BOAT-1"}]},
                       headers=bearer("dispatcher")).status_code == 403
    login("viewer")
    office = sio()
    office.get_received(NAMESPACE)
    assert client.post(IN, json={"items": [{"code": "BOAT-1"}]},
                       headers=bearer("commander")).status_code == 200
    [event] = [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "depot"]
    assert (event["kind"], event["action"], event["codes"], event["count"]) == (
        "checkout", "in", ["BOAT-1"], 1)
    assert event["sites"] == ["D1"] and event["types"] == ["BOAT"]
    assert event["checkouts"] == [out["id"]]
