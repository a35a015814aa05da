"""The demo depots (depot.demo): the township's two depots with ~600 items of the brief's kinds,
a year of history that adds up, a few items overdue, in repair, unserviceable, expiring; the
boat-team kit; the prefecture's 11,292 items, one depot per township; deterministic, valid by
the API's own rules, loaded idempotently on both databases and by `rescuehub demo`."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from depot import demo, fields
from depot.models import (
    Bin,
    Checkout,
    CheckoutLine,
    Inspection,
    Item,
    ItemType,
    Kit,
    Repair,
    Site,
    Stock,
    StockMove,
)
from dispatch.core.db import db
from dispatch.core.models import AuditEntry

TODAY = date(2026, 7, 20)
TOWN = demo.DemoTown("T000", "铁关镇", ((109.05, 33.15), (109.07, 33.17)),
                     teams=("T000-FT", "T000-ZH"),
                     members=tuple(f"T000-F{n:02d}" for n in range(1, 44)))
PREFECTURE = [demo.DemoTown(f"T{i:03d}", f"第{i}镇", ((106.8 + i / 100, 33.0),),
                            teams=(f"T{i:03d}-ZH",),
                            members=tuple(f"T{i:03d}-{n:02d}" for n in range(1, 13)))
              for i in range(1, 104)]


@pytest.fixture(scope="module")
def township():
    return demo.township_depot(TOWN, today=TODAY)


def test_the_township_has_two_depots_and_600_items_of_every_kind(township):
    assert [s["code"] for s in township.sites] == ["T000-D1", "T000-D2"]
    assert len(township.items) == 600
    kinds = Counter(i["type"] for i in township.items)
    for code in ("BOAT", "LIFEJACKET", "PUMP", "GENSET", "CHAINSAW", "ROPE", "FIRSTAID", "EXT",
                 "RADIO"):
        assert kinds[code] >= 6, code
    assert {i["home_site"] for i in township.items} == {"T000-D1", "T000-D2"}
    assert all(i["bin"].split("/")[0] == i["home_site"] for i in township.items)
    # Sandbags by the hundred, on the ledger.
    sandbags = [m for m in township.moves if m["type"] == "SANDBAG"]
    assert all(m["qty"] % 100 == 0 for m in sandbags if m["kind"] in ("receipt", "issue"))
    assert max(m["qty"] for m in sandbags) >= 1000


def test_codes_and_paths_pass_the_apis_own_rules(township):
    for item in township.items:
        assert fields.code("code", item["code"]) == item["code"]
    for row in township.bins:
        assert fields.path("path", row["path"]) == row["path"]
    assert len({i["code"] for i in township.items}) == 600
    assert len({b["path"] for b in township.bins}) == len(township.bins)
    assert all(len(i["serial"]) <= fields.SERIAL_MAX for i in township.items)


def test_a_few_items_need_attention(township):
    statuses = Counter(i["status"] for i in township.items)
    assert statuses["repair"] >= 2 and statuses["unserviceable"] >= 2 and statuses["lost"] == 1
    assert statuses["in_stock"] > 560
    overdue = [i for i in township.items if i["inspection_due"] and i["inspection_due"] < TODAY]
    assert 3 <= len(overdue) <= 30
    soon = [i for i in township.items if i["expires"] and TODAY <= i["expires"]
            <= TODAY + timedelta(days=30)]
    assert 3 <= len(soon) <= 30
    expired = [i for i in township.items if i["expires"] and i["expires"] < TODAY]
    assert [i["type"] for i in expired] == ["EXT"]
    watched = {t.code for t in demo.CATALOGUE if t.expiry_watch}
    assert {i["type"] for i in township.items if i["expires"]} == watched
    # Every item out of service has its repair open (its way back).
    open_repairs = {r["item"] for r in township.repairs if r["closed_at"] is None}
    assert open_repairs == {i["code"] for i in township.items
                            if i["status"] in ("repair", "unserviceable")}


def test_a_year_of_history_that_adds_up(township):
    start = TODAY - timedelta(days=demo.HISTORY_DAYS)
    assert len(township.inspections) > 2000
    by_item = defaultdict(list)
    for inspection in township.inspections:
        assert start <= inspection["at"].date() <= TODAY
        by_item[inspection["item"]].append(inspection["at"].date())
    # The latest operational inspection is one interval before the due date.
    for item in township.items:
        kind = demo.BY_CODE[item["type"]]
        if item["code"] in by_item and item["status"] == "in_stock" and item["inspection_due"]:
            assert max(by_item[item["code"]]) == item["inspection_due"] - timedelta(
                days=kind.every_days)
    closed = [c for c in township.checkouts if c["closed_at"] is not None]
    assert len(closed) >= 30
    summer = sum(1 for c in closed if c["at"].month in (6, 7, 8, 9))
    assert summer > len(closed) / 2                      # the flood season
    assert any(c["kit_code"] == "BOAT-TEAM" for c in closed)
    assert {c["to_kind"] for c in closed} == {"team", "member"}
    # No item is in two check-outs at once.
    spans = defaultdict(list)
    for c in township.checkouts:
        for line in c["lines"]:
            spans[line["item"]].append((c["at"], line["returned_at"] or c["due"]))
    for periods in spans.values():
        periods.sort()
        assert all(a[1] <= b[0] for a, b in zip(periods, periods[1:], strict=False))
    # The ledger never takes a bin below zero.
    running = defaultdict(Decimal)
    for m in sorted(township.moves, key=lambda m: m["at"]):
        running[(m["type"], m["bin"])] += m["qty"]
        assert running[(m["type"], m["bin"])] >= 0
        if m["kind"] in ("adjust", "write_off"):
            assert m["reason"]
    tarp = sum(m["qty"] for m in township.moves if m["type"] == "TARP")
    assert tarp < demo.BY_CODE["TARP"].reorder_min     # one line below its minimum


def test_two_checkouts_are_open_and_one_is_overdue(township):
    open_ones = [c for c in township.checkouts if c["closed_at"] is None]
    assert len(open_ones) == 2
    assert sorted(c["due"].date() < TODAY for c in open_ones) == [False, True]
    out = {i["code"] for i in township.items if i["status"] == "out"}
    assert out == {line["item"] for c in open_ones for line in c["lines"]}


def test_it_is_deterministic_for_a_seed_and_a_day(township):
    assert demo.township_depot(TOWN, today=TODAY) == township
    assert demo.township_depot(TOWN, today=TODAY, seed=7) != township


def test_the_prefecture_holds_11292_items_one_depot_per_township():
    depots = demo.prefecture_depots(PREFECTURE, today=TODAY)
    assert sum(len(d.items) for d in depots) == 11292 == demo.PREFECTURE_ITEMS
    assert [len(d.sites) for d in depots] == [1] * 103
    assert {len(d.items) for d in depots} == {109, 110}
    assert all(d.moves and d.inspections and d.checkouts for d in depots)
    codes = [i["code"] for d in depots for i in d.items]
    assert len(set(codes)) == len(codes)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_loading_is_bulk_idempotent_and_adds_up(app, client, bearer, township):
    with db.transaction() as s:
        added = demo.load_demo_depots(s, [township], actor="test")
    assert added == {"types": len(demo.CATALOGUE), "sites": 2, "items": 600,
                     "moves": len(township.moves)}
    with db.transaction() as s:
        again = demo.load_demo_depots(s, [township], actor="test")
    assert again == {"types": 0, "sites": 0, "items": 0, "moves": 0}
    assert (_count(Site), _count(Item), _count(Kit), _count(ItemType)) == (
        2, 600, 1, len(demo.CATALOGUE))
    assert _count(Bin) == len(township.bins)
    assert _count(Inspection) == len(township.inspections)
    assert _count(Repair) == len(township.repairs)
    assert _count(Checkout) == len(township.checkouts)
    assert _count(CheckoutLine) == sum(len(c["lines"]) for c in township.checkouts)
    ledger = dict(db.session.execute(select(StockMove.bin_id, func.sum(StockMove.qty))
                                     .group_by(StockMove.bin_id, StockMove.type_id)).all())
    stock = dict(db.session.execute(select(Stock.bin_id, Stock.quantity)).all())
    assert {b: Decimal(q) for b, q in stock.items()} == {
        b: Decimal(q).quantize(Decimal("0.001")) for b, q in ledger.items()}
    assert db.session.scalars(select(AuditEntry.entity_id).where(
        AuditEntry.action == "demo.load", AuditEntry.entity_type == "depot_site").order_by(
        AuditEntry.seq)).all() == ["T000-D1", "T000-D2"]

    keeper = bearer("keeper")
    page = client.get("/api/v1/depot/items?site=t000-d1&type=BOAT", headers=keeper).json
    assert page["total"] == 4
    held = client.get("/api/v1/depot/items?status=out", headers=keeper).json["items"]
    assert len(held) == 4 and all(i["holder"]["to"]["code"] for i in held)
    boat = client.get(f"/api/v1/depot/items/{page['items'][0]['code'].lower()}",
                      headers=keeper).json
    kinds = Counter(e["kind"] for e in boat["history"])
    assert kinds["inspection"] >= 10
    assert [e["at"] for e in boat["history"]] == sorted((e["at"] for e in boat["history"]),
                                                        reverse=True)
    low = client.get("/api/v1/depot/stock?below_min=true", headers=keeper).json["items"]
    assert "TARP" in {line["type"]["code"] for line in low}
    kits = client.get("/api/v1/depot/kits", headers=keeper).json["items"]
    assert kits[0]["lines"] == [
        {"type": t, "count": c, "name_zh": demo.BY_CODE[t].name_zh,
         "name_en": demo.BY_CODE[t].name_en} for t, c in demo.BOAT_KIT[2]]
    # The demo's bins and types take the API's moves like any other.
    sandbags = next(line for line in client.get("/api/v1/depot/stock?type=SANDBAG",
                                                headers=keeper).json["items"])
    issued = client.post("/api/v1/depot/stock/moves", headers=keeper, json={
        "type": "sandbag", "bin": sandbags["bin"].lower(), "kind": "issue", "qty": 100})
    assert issued.json["quantity"] == sandbags["quantity"] - 100


def test_the_prefecture_loads_on_both_databases(app):
    depots = demo.prefecture_depots(PREFECTURE, today=TODAY)
    with db.transaction() as s:
        added = demo.load_demo_depots(s, depots, actor="test")
    assert (added["sites"], added["items"]) == (103, 11292)
    assert (_count(Item), _count(Site)) == (11292, 103)


@pytest.mark.any_backend
def test_rescuehub_demo_loads_the_depot(app, runner, client, bearer):
    first = runner.invoke("demo")
    assert first.exit_code == 0, first.output
    assert "600" in first.output.splitlines()[-2]
    again = runner.invoke("demo")
    assert again.exit_code == 0 and _count(Item) == 600
    keeper = bearer("keeper")
    sites = client.get("/api/v1/depot/sites", headers=keeper).json["items"]
    assert [(s["code"], s["township"]) for s in sites] == [("T000-D1", "T000"),
                                                           ("T000-D2", "T000")]
    assert all(s["lon"] and s["lat"] for s in sites)
    # The check-outs went to the roster's own teams and members.
    recipients = set(db.session.scalars(select(Checkout.to_code)))
    members = {m["code"] for m in client.get("/api/v1/members",
                                             headers=bearer("dispatcher")).json["items"]}
    teams = {t["code"] for t in client.get("/api/v1/teams",
                                           headers=bearer("dispatcher")).json["items"]}
    assert recipients and recipients <= members | teams
