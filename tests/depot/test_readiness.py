"""Readiness per type on both databases: serviceable in stock, out, in repair or unserviceable,
inspection overdue, expired, lost, bulk stock below its minimum; by site and category."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from depot.models import Bin, Item, Site, Stock
from dispatch.core.db import db
from tests.depot import factories as f

URL = "/api/v1/depot/readiness"


@pytest.fixture
def depot(app):
    ids = f.depot()
    f.set_item("BOAT-1", status="out")
    f.set_item("BOAT-2", status="repair")
    f.set_item("BOAT-3", inspection_due=f.TODAY - timedelta(days=1))
    f.set_item("EXT-1", expires=f.TODAY - timedelta(days=1))
    f.set_item("EXT-2", status="unserviceable")
    f.set_item("EXT-3", status="lost")
    with db.transaction() as s:
        # A second site with one pump and a few sandbags.
        site = Site(code="D2", name="二号库")
        s.add(site)
        s.flush()
        shelf = Bin(path="D2/A/1/1", site_id=site.id)
        s.add(shelf)
        s.flush()
        s.execute(update(Item).where(Item.code == "PUMP-4")
                  .values(bin_id=shelf.id, home_site_id=site.id))
        s.add(Stock(type_id=ids["SANDBAG"], bin_id=shelf.id, quantity=Decimal(20)))
    return ids


def by_type(answer) -> dict[str, dict]:
    return {row["type"]: row for row in answer.json["items"]}


def test_readiness_counts_per_type(client, depot, bearer):
    answer = client.get(URL, headers=bearer("viewer"))
    assert answer.status_code == 200, answer.json
    rows = by_type(answer)
    assert [rows["BOAT"][k] for k in ("serviceable", "out", "repair", "inspection_overdue",
                                      "expired", "lost", "total")] == [1, 1, 1, 1, 0, 0, 4]
    assert [rows["EXT"][k] for k in ("serviceable", "out", "repair", "inspection_overdue",
                                     "expired", "lost", "total")] == [1, 0, 1, 0, 1, 1, 3]
    assert rows["PUMP"]["serviceable"] == 4
    assert rows["SANDBAG"]["stock"] == 1320 and rows["SANDBAG"]["below_min"] is False
    assert rows["ROPE"]["stock"] == 250.5 and rows["ROPE"]["below_min"] is False
    assert rows["BOAT"]["stock"] is None and answer.json["site"] is None
    # One boat could go now, two are the minimum.
    assert rows["BOAT"]["reorder_min"] == 2 and rows["BOAT"]["below_min"] is True
    assert rows["PUMP"]["below_min"] is False


def test_readiness_of_one_site_and_one_category(client, depot, bearer):
    reader = bearer("team_leader")
    second = by_type(client.get(URL + "?site=d2", headers=reader))
    assert set(second) == {"PUMP", "SANDBAG"}
    assert second["PUMP"]["serviceable"] == 1
    assert second["SANDBAG"]["stock"] == 20 and second["SANDBAG"]["below_min"] is True
    first = by_type(client.get(URL + "?site=D1", headers=reader))
    assert first["PUMP"]["serviceable"] == 3 and first["SANDBAG"]["stock"] == 1300
    fire = client.get(URL + "?category=fire", headers=reader).json
    assert [row["type"] for row in fire["items"]] == ["EXT"] and fire["category"] == "fire"


@pytest.mark.any_backend
def test_bad_readiness_queries(client, depot, bearer):
    reader = bearer("keeper")
    assert client.get(URL + "?site=NOPE", headers=reader).status_code == 404
    assert client.get(URL + "?site=a/b", headers=reader).status_code == 400
    assert client.get(URL + "?category=toys", headers=reader).status_code == 400
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=bearer("dispatcher")).status_code == 200
