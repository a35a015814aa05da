"""The depot's jobs on both databases: an overdue check-out is told to the office once a day while
it stays out, an expiring or expired item once per expiry date, as the office receives them over
Socket.IO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from depot import jobs
from depot.models import Checkout
from dispatch.core.db import db
from dispatch.core.realtime import NAMESPACE
from tests.depot import factories as f


@pytest.fixture
def keeper(app, bearer):
    f.depot()
    return bearer("keeper")


@pytest.fixture
def office(login, sio):
    login("dispatcher")
    office = sio()
    office.get_received(NAMESPACE)
    return office


def notices(office) -> list[dict]:
    return [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "notice"]


def test_an_overdue_check_out_is_told_once_a_day(client, keeper, office):
    late = client.post("/api/v1/depot/checkouts", json={"items": ["BOAT-1"],
                                                        "to": {"team": "ZH"}},
                       headers=keeper).json
    other = client.post("/api/v1/depot/checkouts", json={"items": ["BOAT-2"],
                                                         "to": {"team": "ZH"}},
                        headers=keeper).json
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.get(Checkout, late["id"]).due = now - timedelta(hours=1)
        s.get(Checkout, other["id"]).due = now + timedelta(days=3)
    jobs.remind_overdue(now=now)
    [notice] = notices(office)
    assert notice["kind"] == "checkout_overdue" and notice["checkout"] == late["id"]
    assert notice["items"] == ["BOAT-1"] and notice["to"] == {"kind": "team", "code": "ZH"}
    assert "ZH" in notice["text"]["en"] and notice["text"]["zh"] != notice["text"]["en"]
    db.session.rollback()
    assert db.session.get(Checkout, late["id"]).reminded_at is not None
    jobs.remind_overdue(now=now + timedelta(hours=23))
    assert notices(office) == []
    listed = client.get("/api/v1/depot/checkouts?overdue=true", headers=keeper).json["items"]
    assert listed[0]["reminded_at"] is not None
    # Still out a day later: told again, once.
    jobs.remind_overdue(now=now + timedelta(days=1))
    jobs.remind_overdue(now=now + timedelta(days=1, hours=1))
    assert [n["checkout"] for n in notices(office)] == [late["id"]]


def test_a_returned_check_out_is_not_reminded(client, keeper, office):
    late = client.post("/api/v1/depot/checkouts", json={"items": ["BOAT-1"],
                                                        "to": {"team": "ZH"}},
                       headers=keeper).json
    client.post("/api/v1/depot/checkins", json={"items": [{"code": "BOAT-1"}]}, headers=keeper)
    jobs.remind_overdue(now=datetime.now(UTC) + timedelta(days=3))
    assert notices(office) == []
    db.session.rollback()
    assert db.session.scalar(select(Checkout.reminded_at).where(
        Checkout.id == late["id"])) is None


def test_expiring_and_expired_items_are_told_once_per_expiry_date(app, client, keeper, office):
    f.set_item("EXT-1", expires=f.TODAY + timedelta(days=10))
    f.set_item("EXT-2", expires=f.TODAY - timedelta(days=2))
    f.set_item("EXT-3", expires=f.TODAY + timedelta(days=10), status="retired")
    jobs.watch_expiry()
    told = {n["item"]: n for n in notices(office)}
    assert set(told) == {"EXT-1", "EXT-2"}  # EXT-4 expires in 400 days; EXT-3 is retired
    assert told["EXT-1"]["kind"] == "item_expiring" and told["EXT-1"]["days_left"] == 10
    assert told["EXT-2"]["kind"] == "item_expired" and "EXT-2" in told["EXT-2"]["text"]["zh"]
    jobs.watch_expiry()
    assert notices(office) == []
    # A new extinguisher date is a new expiry: told again.
    f.set_item("EXT-1", expires=f.TODAY + timedelta(days=20))
    jobs.watch_expiry()
    assert [n["item"] for n in notices(office)] == ["EXT-1"]
    # Both notices are in the item's life.
    history = client.get("/api/v1/depot/items/EXT-1", headers=keeper).json["history"]
    assert [e["action"] for e in history if e["kind"] == "audit"].count(
        "depot.expiry_notice") == 2


def test_keepers_hear_the_notices_too(client, keeper, login, sio):
    # Keepers join no `office` room: the depot's notices go to their own `depot` room as well,
    # so the keeper who must chase an overdue boat is told, not only the office.
    login("keeper")
    keeper_socket = sio()
    keeper_socket.get_received(NAMESPACE)
    late = client.post("/api/v1/depot/checkouts", json={"items": ["BOAT-1"],
                                                        "to": {"team": "ZH"}},
                       headers=keeper).json
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.get(Checkout, late["id"]).due = now - timedelta(hours=1)
    jobs.remind_overdue(now=now)
    [notice] = notices(keeper_socket)
    assert notice["kind"] == "checkout_overdue" and notice["checkout"] == late["id"]
