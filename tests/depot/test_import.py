"""The depot's CSV imports on both databases: all rows or none, every bad row named with its
line and why (the 422 `import_rejected` of dispatch.core.tabular)."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from depot.models import Item, Repair, Stock, StockMove
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from tests.depot.conftest import add_item

ITEMS = ("code,type,serial,status,condition,bin,home_site,purchased,expires,inspection_due\n"
         "b-101,boat,HX-101,,,D1/A/1/1,,2023-04-01,,2026-08-01\n"
         "B-102,BOAT,HX-102,repair,发动机待修,d1/a/1/1,,,,\n"
         "E-201,EXT,MFZ-8,,,D1/B/1,,2024-01-01,2029-01-01,\n")
STOCK = ("type,bin,qty,kind,reason\n"
         "SANDBAG,D1/A/1/2,800,,期初\n"
         "sandbag,d1/b/1,200,receipt,\n"
         "ROPE,D1/B/1,150.5,,\n"
         "SANDBAG,D1/A/1/2,50,issue,演练\n")


@pytest.fixture(autouse=True)
def english(client):
    """Reasons in English, so the tests read them whatever the hub's default language."""
    client.set_cookie("lang", "en")


def post(client, headers, kind: str, text: str):
    return client.post(f"/api/v1/depot/{kind}/import", data=text.encode(),
                       content_type="text/csv", headers=headers)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_good_item_file_is_imported_whole(client, depot):
    answer = post(client, depot, "items", ITEMS)
    assert (answer.status_code, answer.json) == (200, {"created": 3}), answer.json
    first = client.get("/api/v1/depot/items/B-101", headers=depot).json
    assert (first["serial"], first["purchased"], first["inspection_due"], first["home_site"]) \
        == ("HX-101", "2023-04-01", "2026-08-01", "D1")
    second = client.get("/api/v1/depot/items/b-102", headers=depot).json
    assert (second["status"], second["bin"]) == ("repair", "D1/A/1/1")
    assert count(Repair) == 1
    created = db.session.scalars(select(AuditEntry.entity_id).where(
        AuditEntry.action == "depot_item.create").order_by(AuditEntry.seq)).all()
    assert created == ["B-101", "B-102", "E-201"]


def test_a_file_upload_is_taken_too(client, depot):
    answer = client.post("/api/v1/depot/items/import", headers=depot, data={
        "file": (io.BytesIO(("\ufeff" + ITEMS).encode()), "items.csv")},
        content_type="multipart/form-data")
    assert answer.json == {"created": 3}


def test_bad_item_rows_are_all_named_and_nothing_is_written(client, depot):
    add_item(client, depot, code="OLD-1")
    text = ITEMS + "\n".join([
        "B-103,NOPE,,,,,,,,",               # 5: unknown type
        "B-104,SANDBAG,,,,,,,,",            # 6: a bulk type
        "B-105,BOAT,,out,,,,,,",            # 7: out is no status to register
        "B-106,BOAT,,,,D1/Z,,,,",           # 8: unknown bin
        "B-107,BOAT,,,,,,2024-02-30,,",     # 9: no such date
        "b-101,BOAT,,,,,,,,",               # 10: repeats line 2
        "old-1,BOAT,,,,,,,,",               # 11: exists
        "B 108,BOAT,,,,,,,,",               # 12: not a code
        "B-109,BOAT,,,,,,,,,extra",         # 13: too many cells
    ]) + "\n"
    answer = post(client, depot, "items", text)
    assert (answer.status_code, answer.json["error"]) == (422, "import_rejected")
    rows = answer.json["rows"]
    assert [r["line"] for r in rows] == [5, 6, 7, 8, 9, 10, 11, 12, 13]
    reasons = {r["line"]: r["reason"] for r in rows}
    assert reasons[5].startswith("type:") and "NOPE" in reasons[5]
    assert "stock" in reasons[6]
    assert reasons[7].startswith("status:")
    assert reasons[8].startswith("bin:")
    assert reasons[9].startswith("purchased:")
    assert "line 2" in reasons[10]
    assert "exists" in reasons[11]
    assert reasons[12].startswith("code:")
    assert rows[0]["code"] == "B-103"
    assert count(Item) == 1 and count(Repair) == 0


@pytest.mark.any_backend
def test_a_file_that_is_no_csv_is_refused_whole(client, depot):
    for text, error in (("", "bad_csv"), ("code,type\n", "empty"),
                        ("code,kind\nB-1,BOAT\n", "bad_csv"),
                        ("code,type,colour\nB-1,BOAT,red\n", "bad_csv")):
        answer = post(client, depot, "items", text)
        assert (answer.status_code, answer.json["error"]) == (400, error), text
    latin = client.post("/api/v1/depot/items/import", data="code,type\nB-é,BOAT\n".encode(
        "latin-1"), content_type="text/csv", headers=depot)
    assert latin.json["error"] == "bad_encoding"
    too_many = "code,type\n" + "".join(f"B-{n},BOAT\n" for n in range(5001))
    assert post(client, depot, "items", too_many).json["error"] == "too_many_rows"


def test_a_good_stock_file_moves_every_bin(client, depot):
    answer = post(client, depot, "stock", STOCK)
    assert (answer.status_code, answer.json) == (200, {"moves": 4}), answer.json
    lines = {(line["type"]["code"], line["bin"]): line["quantity"] for line in client.get(
        "/api/v1/depot/stock", headers=depot).json["items"]}
    assert lines == {("SANDBAG", "D1/A/1/2"): 750, ("SANDBAG", "D1/B/1"): 200,
                     ("ROPE", "D1/B/1"): 150.5}
    assert count(StockMove) == 4
    # One audit entry per stock line the file changed, with its quantity before and after.
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "depot_stock.import").order_by(AuditEntry.seq)).all()
    assert [(e.entity_id, json.loads(e.before), json.loads(e.after)["quantity"])
            for e in entries] == [("SANDBAG@D1/A/1/2", {"quantity": 0}, 750),
                                  ("SANDBAG@D1/B/1", {"quantity": 0}, 200),
                                  ("ROPE@D1/B/1", {"quantity": 0}, 150.5)]


def test_bad_stock_rows_are_all_named_and_nothing_is_written(client, depot):
    text = STOCK + "\n".join([
        "SANDBAG,D1/A/1/2,2.5,,",           # 6: sandbags are whole
        "SANDBAG,D1/A/1/2,0,,",             # 7: zero
        "SANDBAG,D1/A/1/2,-4,,",            # 8: negative
        "SANDBAG,D1/A/1/2,lots,,",          # 9: not a number
        "SANDBAG,D1/A/1/2,5,adjust,",       # 10: an adjustment needs a reason
        "BOAT,D1/A/1/1,1,,",                # 11: serialized
        "SANDBAG,D9/X,5,,",                 # 12: unknown bin
        "SANDBAG,D1/B/1,1e3,,",             # 13: no exponents
    ]) + "\n"
    answer = post(client, depot, "stock", text)
    assert answer.status_code == 422
    rows = answer.json["rows"]
    assert [r["line"] for r in rows] == list(range(6, 14))
    assert [r["reason"].split(":")[0] for r in rows] == [
        "qty", "qty", "qty", "qty", "reason", "type", "bin", "qty"]
    assert count(StockMove) == 0 and count(Stock) == 0


def test_a_stock_row_taking_more_than_its_bin_holds_then_undoes_the_file(client, depot):
    text = "type,bin,qty,kind,reason\nSANDBAG,D1/A/1/2,10,,\nSANDBAG,D1/A/1/2,11,issue,\n"
    answer = post(client, depot, "stock", text)
    assert (answer.status_code, [r["line"] for r in answer.json["rows"]]) == (422, [3])
    assert "holds 10" in answer.json["rows"][0]["reason"]
    db.session.expire_all()
    assert count(StockMove) == 0 and count(Stock) == 0


@pytest.mark.any_backend
def test_only_writers_import(client, bearer):
    for role in ("dispatcher", "viewer"):
        for kind in ("items", "stock"):
            assert post(client, bearer(role), kind, ITEMS).status_code == 403
