"""Serialized items on both databases: registering, finding by any case, searching and paging,
editing, history newest first, bad input named, roles and the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select

from depot.models import Checkout, CheckoutLine, Inspection, Item, Repair
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from tests.depot.conftest import add_item


def test_an_item_round_trips_and_is_found_in_any_case(client, depot):
    made = add_item(client, depot, code="b-001", purchased="2024-05-01", expires=None,
                    condition="新")
    assert made == {
        "code": "B-001", "type": {"code": "BOAT", "name_zh": "冲锋舟",
                                  "name_en": "Assault boat", "category": "boat"},
        "serial": "SN-1", "status": "in_stock", "condition": "新", "bin": "D1/A/1/1",
        "home_site": "D1", "purchased": "2024-05-01", "expires": None,
        "inspection_due": made["inspection_due"], "holder": None}
    # Registered today: inspected one interval (30 days) from now.
    due = date.fromisoformat(made["inspection_due"])
    assert timedelta(days=29) <= due - date.today() <= timedelta(days=31)
    for code in ("B-001", "b-001", "B-001".lower().capitalize()):
        found = client.get(f"/api/v1/depot/items/{code}", headers=depot)
        assert found.status_code == 200 and found.json["code"] == "B-001"
    assert client.get("/api/v1/depot/items/B-002", headers=depot).status_code == 404
    assert client.get("/api/v1/depot/items/%E2%80%AE", headers=depot).status_code == 404
    again = client.post("/api/v1/depot/items", json={"code": "B-001", "type": "boat"},
                        headers=depot)
    assert (again.status_code, again.json["error"]) == (409, "exists")


BAD_ITEMS = [
    ({"code": None}, "code"),
    ({"code": "B 1"}, "code"),
    ({"type": "NOPE"}, "type"),
    ({"type": "SANDBAG"}, "type"),
    ({"type": 5}, "type"),
    ({"status": "out"}, "status"),
    ({"status": "broken"}, "status"),
    ({"bin": "D1/Z/9"}, "bin"),
    ({"bin": "D1"}, "bin"),
    ({"home_site": "D9"}, "home_site"),
    ({"purchased": "2024-13-01"}, "purchased"),
    ({"purchased": "01/05/2024"}, "purchased"),
    ({"expires": "0001-01-01"}, "expires"),
    ({"inspection_due": 20250101}, "inspection_due"),
    ({"serial": "x" * 65}, "serial"),
    ({"condition": ["ok"]}, "condition"),
]


def test_a_bad_item_is_refused_naming_its_field(client, depot):
    for change, field in BAD_ITEMS:
        body = {"code": "B-9", "type": "BOAT", **change}
        answer = client.post("/api/v1/depot/items", json=body, headers=depot)
        assert (answer.status_code, answer.json.get("field")) == (400, field), (change,
                                                                              answer.json)
    assert db.session.scalars(select(Item)).all() == []


def test_search_filters_and_pages(client, depot):
    for n in range(1, 6):
        add_item(client, depot, code=f"B-{n:03d}", serial=f"HX-{n}",
                 bin="D1/A/1/1" if n <= 3 else "D1/B/1")
    add_item(client, depot, code="E-001", type="EXT", serial="ext-77", bin="D1/A/1/2",
             status="unserviceable")

    def codes(query: str) -> list[str]:
        answer = client.get(f"/api/v1/depot/items?{query}", headers=depot)
        assert answer.status_code == 200, answer.json
        return [i["code"] for i in answer.json["items"]]

    assert codes("q=b-00") == ["B-001", "B-002", "B-003", "B-004", "B-005"]
    assert codes("q=EXT-7") == ["E-001"]                   # serial, any case
    assert codes("q=灭火") == ["E-001"]                      # type name
    assert codes("q=assault") == codes("type=boat")         # English name
    assert codes("q=d1/b") == ["B-004", "B-005"]            # bin
    assert codes("status=unserviceable") == ["E-001"]
    assert codes("category=fire") == ["E-001"]
    assert codes("site=d1&type=BOAT&limit=2") == ["B-001", "B-002"]
    page = client.get("/api/v1/depot/items?type=BOAT&limit=2&offset=4", headers=depot).json
    assert ([i["code"] for i in page["items"]], page["total"], page["limit"], page["offset"]) \
        == (["B-005"], 5, 2, 4)
    assert codes("q=100%25") == []
    for query, parameter in (("limit=0", "limit"), ("limit=501", "limit"),
                             ("offset=-1", "offset"), (f"offset={2**31}", "offset"),
                             ("limit=1e3", "limit"), ("status=out-ish", "status"),
                             ("category=food", "category"), ("q=" + "x" * 129, "q")):
        answer = client.get(f"/api/v1/depot/items?{query}", headers=depot)
        assert (answer.status_code, answer.json.get("parameter")) == (400, parameter), query
    assert client.get("/api/v1/depot/items?type=NOPE", headers=depot).status_code == 400
    assert client.get("/api/v1/depot/items?site=NOPE", headers=depot).status_code == 404


def test_an_edit_changes_the_fields_given_and_is_audited(client, depot):
    add_item(client, depot)
    answer = client.patch("/api/v1/depot/items/b-001", json={
        "serial": "SN-2", "bin": "d1/b/1", "expires": "2030-01-31", "condition": "船底划痕"},
        headers=depot)
    assert answer.status_code == 200, answer.json
    assert (answer.json["serial"], answer.json["bin"], answer.json["expires"],
            answer.json["home_site"]) == ("SN-2", "D1/B/1", "2030-01-31", "D1")
    cleared = client.patch("/api/v1/depot/items/B-001", json={"bin": None, "expires": None},
                           headers=depot).json
    assert (cleared["bin"], cleared["expires"], cleared["home_site"]) == (None, None, "D1")
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "depot_item").order_by(AuditEntry.seq)).all()
    assert [e.action for e in entries] == ["depot_item.create", "depot_item.update",
                                           "depot_item.update"]
    assert json.loads(entries[1].before)["serial"] == "SN-1"
    assert json.loads(entries[1].after)["serial"] == "SN-2"
    # Nothing changed: nothing audited.
    client.patch("/api/v1/depot/items/B-001", json={"serial": "SN-2"}, headers=depot)
    assert db.session.query(AuditEntry).filter(
        AuditEntry.entity_type == "depot_item").count() == 3


def test_an_edit_changes_status_only_as_far_as_an_edit_may(client, depot):
    add_item(client, depot)
    for change, status, error in (
            ({"status": "repair"}, 409, "status_change"),
            ({"status": "out"}, 409, "status_change"),
            ({"code": "B-002"}, 400, "bad_field"),
            ({"type": "EXT"}, 400, "bad_field"),
            ({"bin": "D1/NOPE"}, 400, "bad_field"),
            ({"status": 3}, 400, "bad_field")):
        answer = client.patch("/api/v1/depot/items/B-001", json=change, headers=depot)
        assert (answer.status_code, answer.json["error"]) == (status, error), change
    assert client.patch("/api/v1/depot/items/B-001", json={"code": "b-001", "type": "boat"},
                        headers=depot).status_code == 200
    lost = client.patch("/api/v1/depot/items/B-001", json={"status": "lost"}, headers=depot)
    assert lost.json["status"] == "lost"
    found = client.patch("/api/v1/depot/items/B-001", json={"status": "in_stock"},
                         headers=depot)
    assert found.json["status"] == "in_stock"
    retired = client.patch("/api/v1/depot/items/B-001", json={"status": "retired"},
                           headers=depot)
    assert retired.json["status"] == "retired"
    back = client.patch("/api/v1/depot/items/B-001", json={"status": "in_stock"},
                        headers=depot)
    assert (back.status_code, back.json["error"]) == (409, "status_change")


def test_an_item_registered_out_of_service_gets_an_open_repair(client, depot):
    add_item(client, depot, status="repair", condition="发动机异响")
    repair = db.session.scalars(select(Repair)).one()
    assert (repair.reason, repair.closed_at) == ("发动机异响", None)
    client.patch("/api/v1/depot/items/B-001", json={"status": "retired"}, headers=depot)
    db.session.expire_all()
    assert db.session.scalars(select(Repair)).one().outcome == "written_off"


def test_the_holder_and_the_history_newest_first(client, depot):
    add_item(client, depot)
    item = db.session.scalars(select(Item)).one()
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    with db.transaction() as s:
        out = Checkout(to_kind="team", to_code="T000-FT", due=start + timedelta(days=1),
                       by="user:k", at=start)
        s.add(out)
        s.flush()
        s.add(CheckoutLine(checkout_id=out.id, item_id=item.id, qty=1,
                           returned_at=start + timedelta(hours=5), condition="damaged",
                           note="船底破"))
        s.add(Repair(item_id=item.id, opened_at=start + timedelta(hours=5), opened_by="user:k",
                     reason="船底破", closed_at=start + timedelta(days=3), closed_by="user:k",
                     outcome="repaired"))
        s.add(Inspection(item_id=item.id, at=start + timedelta(days=4), by="user:k",
                         result="operational", checklist={"hull": True}))
        again = Checkout(to_kind="member", to_code="T000-01", due=datetime(2099, 1, 1,
                                                                             tzinfo=UTC),
                         by="user:k", at=start + timedelta(days=5))
        s.add(again)
        s.flush()
        s.add(CheckoutLine(checkout_id=again.id, item_id=item.id, qty=1))
        s.get(Item, item.id).checkout_id, s.get(Item, item.id).status = again.id, "out"
    answer = client.get("/api/v1/depot/items/B-001", headers=depot).json
    assert answer["holder"] == {"to": {"kind": "member", "code": "T000-01"},
                                "since": "2026-03-06T08:00:00+00:00",
                                "due": "2099-01-01T00:00:00+00:00", "checkout": again.id}
    kinds = [e["kind"] for e in answer["history"]]
    # The registration (audit) is the newest: it happened now, the rest in March.
    assert kinds == ["audit", "checkout", "inspection", "repair_closed", "checkin",
                     "repair_opened", "checkout"]
    assert answer["history"][-1]["to"] == {"kind": "team", "code": "T000-FT"}
    assert answer["history"][0]["action"] == "depot_item.create"
    out_again = client.patch("/api/v1/depot/items/B-001", json={"status": "lost"},
                             headers=depot)
    assert (out_again.status_code, out_again.json["error"]) == (409, "item_out")


@pytest.mark.any_backend
def test_dispatchers_read_items_and_others_do_not(client, depot, bearer):
    add_item(client, depot)
    dispatcher = bearer("dispatcher")
    assert client.get("/api/v1/depot/items", headers=dispatcher).status_code == 200
    assert client.get("/api/v1/depot/items/B-001", headers=dispatcher).status_code == 200
    assert client.patch("/api/v1/depot/items/B-001", json={"serial": "x"},
                        headers=dispatcher).status_code == 403
    assert client.post("/api/v1/depot/items", json={"code": "B-2", "type": "BOAT"},
                       headers=dispatcher).status_code == 403
    for role in ("viewer", "team_leader"):
        assert client.get("/api/v1/depot/items", headers=bearer(role)).status_code == 403
    assert client.get("/api/v1/depot/items").status_code == 401


def _statements(action) -> int:
    """How many SQL statements `action()` sends."""
    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen)


def test_a_list_says_who_has_each_item_out_since_when_until_when(client, depot):
    for n in range(1, 9):
        add_item(client, depot, code=f"B-{n:03d}", serial=f"HX-{n}")
    due = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    for n, to in ((2, {"incident": "INC-7"}), (5, {"incident": "INC-9"})):
        answer = client.post("/api/v1/depot/checkouts", json={
            "items": [f"B-{n:03d}"], "to": to, "due": due.isoformat()}, headers=depot)
        assert answer.status_code == 201, answer.json

    def page() -> list[dict]:
        answer = client.get("/api/v1/depot/items?limit=4", headers=depot)
        assert answer.status_code == 200, answer.json
        return answer.json["items"]

    first, *_ = items = page()
    held = {i["code"]: i["holder"] for i in items if i["holder"]}
    assert list(held) == ["B-002"] and first["holder"] is None
    holder = held["B-002"]
    assert (holder["to"], datetime.fromisoformat(holder["due"])) == (
        {"kind": "incident", "code": "INC-7"}, due)
    assert abs(datetime.fromisoformat(holder["since"]) - datetime.now(UTC)) < timedelta(
        minutes=5)
    whole = client.get("/api/v1/depot/items?limit=8", headers=depot).json["items"]
    assert [i["holder"]["to"]["code"] for i in whole if i["holder"]] == ["INC-7", "INC-9"]
    assert client.get("/api/v1/depot/items/b-005", headers=depot).json["holder"]["to"] == {
        "kind": "incident", "code": "INC-9"}
    # The holders of a page come in the same few queries, however many are out.
    few = _statements(page)
    for n in (1, 3, 4):
        client.post("/api/v1/depot/checkouts", json={"items": [f"B-{n:03d}"],
                    "to": {"incident": "INC-9"}, "due": due.isoformat()}, headers=depot)
    assert sum(1 for i in page() if i["holder"]) == 4
    assert _statements(page) == few
