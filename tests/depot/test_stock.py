"""Bulk stock on its ledger, on both databases: receipts, issues, returns, adjustments and
write-offs; the quantity never below zero (also with two keepers at once); whole units; a reason
for adjustments and write-offs; the listing with reorder minimums; the audit trail."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from depot import service
from depot.models import Bin, ItemType, Stock, StockMove
from dispatch.core.db import db
from dispatch.core.errors import Conflict
from dispatch.core.models import AuditEntry
from tests.depot.conftest import move


def quantity(type_code: str = "SANDBAG", path: str = "D1/A/1/2") -> Decimal | None:
    db.session.expire_all()
    return db.session.scalar(select(Stock.quantity).join(ItemType, ItemType.id == Stock.type_id)
                             .join(Bin, Bin.id == Stock.bin_id)
                             .where(ItemType.code == type_code, Bin.path == path))


def test_the_ledger_moves_the_bin(client, depot):
    first = move(client, depot, qty=500, reason="县局调拨")
    assert first.status_code == 201, first.json
    assert {k: first.json[k] for k in ("type", "bin", "kind", "qty", "quantity", "to")} == {
        "type": "SANDBAG", "bin": "D1/A/1/2", "kind": "receipt", "qty": 500, "quantity": 500,
        "to": None}
    issued = move(client, depot, kind="issue", qty=120, to={"team": "T000-FT"},
                  type="sandbag", bin="d1/a/1/2")
    assert (issued.json["qty"], issued.json["quantity"], issued.json["to"]) == (
        -120, 380, {"kind": "team", "code": "T000-FT"})
    back = move(client, depot, kind="return", qty=20)
    assert back.json["quantity"] == 400
    fixed = move(client, depot, kind="adjust", qty=-3, reason="盘点破损")
    assert (fixed.json["qty"], fixed.json["quantity"]) == (-3, 397)
    up = move(client, depot, kind="adjust", qty=3, reason="盘点找回")
    assert up.json["quantity"] == 400
    gone = move(client, depot, kind="write_off", qty=50, reason="霉变")
    assert gone.json["quantity"] == 350
    assert quantity() == 350
    ledger = client.get("/api/v1/depot/stock/moves?type=sandbag", headers=depot).json["items"]
    assert [m["qty"] for m in ledger] == [-50, 3, -3, 20, -120, 500]
    assert sum(m.qty for m in db.session.scalars(select(StockMove))) == 350


def test_a_bin_never_goes_below_zero(client, depot):
    move(client, depot, qty=10)
    for kind, qty, reason in (("issue", 11, ""), ("write_off", 12, "x"),
                              ("adjust", -11, "盘点")):
        answer = move(client, depot, kind=kind, qty=qty, reason=reason)
        assert (answer.status_code, answer.json["error"]) == (409, "insufficient_stock"), kind
        assert answer.json["available"] == 10
    empty = move(client, depot, kind="issue", qty=1, bin="D1/B/1")
    assert (empty.status_code, empty.json["available"]) == (409, 0)
    assert move(client, depot, kind="issue", qty=10).json["quantity"] == 0
    assert quantity() == 0
    assert len(db.session.scalars(select(StockMove)).all()) == 2


BAD_MOVES = [
    ({"qty": 0}, "qty"),
    ({"qty": -5}, "qty"),
    ({"qty": 2.5}, "qty"),
    ({"qty": "5"}, "qty"),
    ({"qty": True}, "qty"),
    ({"qty": None}, "qty"),
    ({"qty": 1e12}, "qty"),
    ({"qty": 1.0001, "type": "ROPE"}, "qty"),
    ({"kind": "adjust", "qty": 0, "reason": "x"}, "qty"),
    ({"kind": "adjust", "qty": 5}, "reason"),
    ({"kind": "adjust", "qty": 5, "reason": "   "}, "reason"),
    ({"kind": "write_off", "qty": 5}, "reason"),
    ({"kind": "steal"}, "kind"),
    ({"type": "BOAT"}, "type"),
    ({"type": "NOPE"}, "type"),
    ({"bin": "D1/NOPE"}, "bin"),
    ({"bin": "D9/A"}, "bin"),
    ({"to": "T000-FT"}, "to"),
    ({"to": {"village": "V1"}}, "to"),
    ({"to": {"team": "A", "member": "B"}}, "to"),
    ({"reason": "x" * 201}, "reason"),
]


def test_bad_moves_are_refused_naming_the_field(client, depot):
    for change, field in BAD_MOVES:
        answer = move(client, depot, **change)
        assert (answer.status_code, answer.json.get("field")) == (400, field), (change,
                                                                              answer.json)
    answer = client.post("/api/v1/depot/stock/moves", json={"type": "SANDBAG",
                                                            "bin": "D1/A/1/2",
                                                            "kind": "receipt"}, headers=depot)
    assert answer.json["field"] == "qty"
    assert db.session.scalars(select(StockMove)).all() == []


def test_divisible_stock_takes_decimals(client, depot):
    assert move(client, depot, type="ROPE", qty=100.5).json["quantity"] == 100.5
    assert move(client, depot, type="ROPE", kind="issue", qty=0.3).json["quantity"] == 100.2
    assert move(client, depot, type="ROPE", kind="issue", qty=0.1).json["quantity"] == 100.1
    assert move(client, depot, type="ROPE", kind="issue", qty=100.1).json["quantity"] == 0


def test_the_listing_says_which_lines_are_below_the_minimum(client, depot):
    move(client, depot, qty=300)
    move(client, depot, qty=150, bin="D1/B/1")
    move(client, depot, type="ROPE", qty=200, bin="D1/B/1")
    lines = client.get("/api/v1/depot/stock", headers=depot).json["items"]
    assert [(line["type"]["code"], line["bin"], line["quantity"], line["site_quantity"],
             line["reorder_min"], line["below_min"]) for line in lines] == [
        ("ROPE", "D1/B/1", 200, 200, 100, False),
        ("SANDBAG", "D1/A/1/2", 300, 450, 500, True),
        ("SANDBAG", "D1/B/1", 150, 450, 500, True)]
    low = client.get("/api/v1/depot/stock?below_min=true&site=d1", headers=depot).json["items"]
    assert [line["type"]["code"] for line in low] == ["SANDBAG", "SANDBAG"]
    assert len(client.get("/api/v1/depot/stock?bin=d1/b/1&category=rescue",
                          headers=depot).json["items"]) == 1
    for query, status in (("below_min=yes", 400), ("type=NOPE", 400), ("site=NOPE", 404),
                          ("category=x", 400), ("bin=D1", 400)):
        assert client.get(f"/api/v1/depot/stock?{query}", headers=depot).status_code == status


def test_each_move_is_audited_with_the_quantity_before_and_after(client, depot):
    move(client, depot, qty=40)
    move(client, depot, kind="write_off", qty=15, reason="水泡")
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "depot_stock").order_by(AuditEntry.seq)).all()
    assert [(e.action, e.entity_id) for e in entries] == [
        ("depot_stock.receipt", "SANDBAG@D1/A/1/2"), ("depot_stock.write_off",
                                                       "SANDBAG@D1/A/1/2")]
    assert json.loads(entries[1].before) == {"quantity": 40}
    assert json.loads(entries[1].after)["quantity"] == 25
    assert json.loads(entries[1].after)["reason"] == "水泡"


@pytest.mark.any_backend
def test_dispatchers_read_stock_and_do_not_move_it(client, depot, bearer):
    dispatcher = bearer("dispatcher")
    assert client.get("/api/v1/depot/stock", headers=dispatcher).status_code == 200
    assert move(client, dispatcher).status_code == 403
    assert client.get("/api/v1/depot/stock", headers=bearer("viewer")).status_code == 403


def test_two_keepers_issuing_at_once_never_take_more_than_the_bin_holds(app, client, depot):
    move(client, depot, qty=100)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def issue() -> None:
        with app.app_context():
            barrier.wait()
            try:
                with db.transaction() as s:
                    fields = service.read_move(s, {"type": "SANDBAG", "bin": "D1/A/1/2",
                                                   "kind": "issue", "qty": 30})
                    service.move_stock(s, fields, actor="test")
                results.append("ok")
            except Conflict:
                results.append("refused")
            finally:
                db.remove()

    threads = [threading.Thread(target=issue) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "ok", "ok", "refused"]
    assert quantity() == 10


@pytest.mark.any_backend
def test_a_move_is_announced_to_the_office_after_its_commit(client, depot, login, sio):
    login("commander")
    socket = sio()
    socket.get_received("/live")
    move(client, depot, qty=10)
    assert move(client, depot, kind="issue", qty=11).status_code == 409
    events = [e["args"][0] for e in socket.get_received("/live") if e["name"] == "depot"]
    assert [(e["kind"], e["action"], e["codes"], e["sites"], e["types"]) for e in events] == [
        ("stock", "receipt", ["SANDBAG@D1/A/1/2"], ["D1"], ["SANDBAG"])]
    assert all(e["id"] and e["ts"] for e in events)
