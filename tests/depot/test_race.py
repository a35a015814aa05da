"""Two keepers checking out the same item at the same instant: exactly one succeeds, on
SpatiaLite and on PostGIS, because the database decides (the conditional UPDATE, and the partial
UNIQUE index on open lines behind it), not a check-then-write in Python."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from depot import checkouts
from depot.models import Checkout, CheckoutLine, Item
from dispatch.core.db import db, utcnow
from tests.depot import factories as f

URL = "/api/v1/depot/checkouts"
ROUNDS = 50
FORCED_ROUNDS = 20


@pytest.fixture
def keepers(app, bearer):
    f.depot(items_per_type=ROUNDS)
    return bearer("keeper"), bearer("keeper")


def _race(app, keepers, code: str, holders=("M001", "ZH")) -> list:
    """Both keepers post at the same instant, each from its own thread, client and session."""
    start = threading.Barrier(2)

    def post(n: int):
        client = app.test_client()
        body = {"items": [code], "to": {"member": "M001"} if n == 0 else {"team": holders[1]}}
        start.wait(timeout=30)
        return client.post(URL, json=body, headers=keepers[n])

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(post, (0, 1)))


def _open_lines(code: str) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(CheckoutLine)
                             .join(Item, Item.id == CheckoutLine.item_id)
                             .where(Item.code == code, CheckoutLine.returned_at.is_(None)))


def _one_winner(answers: list, code: str) -> None:
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409], [a.json for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json["error"] == "unavailable"
    assert loser.json["items"] == [{"code": code, "reason": "out"}]
    assert _open_lines(code) == 1
    winner = next(a for a in answers if a.status_code == 201)
    assert f.item(code).checkout_id == winner.json["id"]


def test_exactly_one_of_two_racing_keepers_gets_the_item(app, keepers):
    for n in range(1, ROUNDS + 1):
        _one_winner(_race(app, keepers, f"BOAT-{n}"), f"BOAT-{n}")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Checkout)) == ROUNDS


def test_both_see_the_item_available_and_still_only_one_gets_it(app, keepers, monkeypatch):
    # Both requests pass every check before either writes: only the database can decide. In
    # one process check-outs take turns (db.turn_to_write); two web processes, or the CLI and
    # the hub, do not share that turn, and this is what they would do.
    monkeypatch.setattr(app.extensions["rescuehub.db"], "writer", None)
    checked = threading.Barrier(2)
    plan = checkouts.plan_checkout

    def plan_then_wait(*args, **kwargs):
        result = plan(*args, **kwargs)
        assert not result.unavailable  # each saw the item in stock
        checked.wait(timeout=30)
        return result

    monkeypatch.setattr(checkouts, "plan_checkout", plan_then_wait)
    for n in range(1, FORCED_ROUNDS + 1):
        _one_winner(_race(app, keepers, f"PUMP-{n}"), f"PUMP-{n}")


def test_two_keepers_emptying_one_bin_at_once_cannot_take_more_than_it_holds(
        app, keepers, monkeypatch):
    # 300 sandbags in BIN_B; each asks for 200 and both see enough before either writes (as
    # two processes would: see the test above).
    monkeypatch.setattr(app.extensions["rescuehub.db"], "writer", None)
    checked = threading.Barrier(2)
    plan = checkouts.plan_checkout

    def plan_then_wait(*args, **kwargs):
        result = plan(*args, **kwargs)
        checked.wait(timeout=30)
        return result

    monkeypatch.setattr(checkouts, "plan_checkout", plan_then_wait)
    start = threading.Barrier(2)

    def post(n: int):
        client = app.test_client()
        start.wait(timeout=30)
        return client.post(URL, json={"stock": [{"type": "SANDBAG", "qty": 200,
                                                 "bin": f.BIN_B}], "to": {"team": "ZH"}},
                           headers=keepers[n])

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(post, (0, 1)))
    assert sorted(a.status_code for a in answers) == [201, 409]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json["items"] == [{"code": "SANDBAG", "reason": "insufficient_stock",
                                    "bin": f.BIN_B}]
    assert f.stock(f.BIN_B, "SANDBAG") == 100


def test_the_unique_index_alone_stops_a_second_open_line(app, keepers):
    with db.transaction() as s:
        item = s.scalar(select(Item).where(Item.code == "BOAT-1"))
        first, second = (Checkout(to_kind="team", to_code="ZH", by="test") for _ in range(2))
        s.add_all([first, second])
        s.flush()
        s.add(CheckoutLine(checkout_id=first.id, item_id=item.id))
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(CheckoutLine(checkout_id=second.id, item_id=item.id))
    # A returned line does not count: the item may go out again.
    with db.transaction() as s:
        line = s.scalar(select(CheckoutLine).where(CheckoutLine.checkout_id == first.id))
        line.returned_at = utcnow()
        s.add(CheckoutLine(checkout_id=second.id, item_id=item.id))
    assert _open_lines("BOAT-1") == 1


def test_an_item_marked_in_stock_by_mistake_while_out_is_still_refused(client, keepers):
    # The status guard bypassed (an item set back to in_stock by hand while its line is open):
    # the index refuses the second line, the answer is 409 and nothing is written.
    first = client.post(URL, json={"items": ["BOAT-1"], "to": {"member": "M001"}},
                        headers=keepers[0])
    assert first.status_code == 201
    f.set_item("BOAT-1", status="in_stock")
    second = client.post(URL, json={"items": ["BOAT-1", "BOAT-2"], "to": {"team": "ZH"}},
                         headers=keepers[1])
    assert second.status_code == 409 and second.json["items"][0] == {"code": "BOAT-1",
                                                                     "reason": "out"}
    assert f.item("BOAT-2").status == "in_stock" and _open_lines("BOAT-1") == 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Checkout)) == 1
