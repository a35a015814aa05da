"""Inspections and repairs over the API on both databases: a pass sets the next due date, a
failure takes the item out of service with a repair record until the repair closes, the due
list, and the bad inputs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from depot.models import Inspection, Repair
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.core.realtime import NAMESPACE
from tests.depot import factories as f


def url(code: str, what: str = "inspections") -> str:
    return f"/api/v1/depot/items/{code}/{what}"


@pytest.fixture
def keeper(app, bearer):
    f.depot()
    return bearer("keeper")


@pytest.mark.parametrize("result", ["operational", "monitor"])
def test_a_pass_sets_the_next_due_date(client, keeper, result):
    f.set_item("BOAT-1", inspection_due=f.TODAY - timedelta(days=5))
    answer = client.post(url("boat-1"), json={"result": result, "note": "ok",
                                              "checklist": {"hull": True, "engine": "starts"}},
                         headers=keeper)
    assert answer.status_code == 201, answer.json
    due = (f.TODAY + timedelta(days=90)).isoformat()
    assert answer.json["inspection_due"] == due and answer.json["item_status"] == "in_stock"
    assert answer.json["repair"] is None and answer.json["checklist"]["engine"] == "starts"
    assert f.item("BOAT-1").inspection_due.isoformat() == due
    stored = db.session.scalar(select(Inspection))
    assert stored.result == result and stored.checklist == {"hull": True, "engine": "starts"}
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "depot.inspect"))
    assert entry.entity_id == "BOAT-1" and json.loads(entry.before)["status"] == "in_stock"


@pytest.mark.parametrize(("result", "status"), [("repair_required", "repair"),
                                                ("unserviceable", "unserviceable")])
def test_a_failure_takes_the_item_out_of_service_until_a_repair_closes_it(
        client, keeper, result, status):
    failed = client.post(url("PUMP-1"), json={"result": result, "note": "seal leaks"},
                         headers=keeper)
    assert failed.status_code == 201, failed.json
    assert failed.json["item_status"] == status and failed.json["repair"]
    assert f.item("PUMP-1").status == status
    refused = client.post("/api/v1/depot/checkouts", json={"items": ["PUMP-1"],
                                                           "to": {"team": "ZH"}}, headers=keeper)
    assert refused.status_code == 409 and refused.json["items"][0]["reason"] == status
    # A later pass does not put it back: only the repair does.
    passed = client.post(url("PUMP-1"), json={"result": "operational"}, headers=keeper)
    assert passed.json["item_status"] == status
    closed = client.post(url("PUMP-1", "repairs"), json={"outcome": "repaired",
                                                         "note": "new seal"}, headers=keeper)
    assert closed.status_code == 200, closed.json
    assert closed.json["id"] == failed.json["repair"] and closed.json["item_status"] == "in_stock"
    assert closed.json["outcome"] == "repaired" and closed.json["closed_by"]
    assert f.item("PUMP-1").status == "in_stock"


def test_a_second_failure_keeps_the_one_open_repair(client, keeper):
    first = client.post(url("PUMP-1"), json={"result": "repair_required"}, headers=keeper).json
    second = client.post(url("PUMP-1"), json={"result": "unserviceable"}, headers=keeper).json
    assert second["repair"] == first["repair"] and second["item_status"] == "unserviceable"
    assert len(db.session.scalars(select(Repair)).all()) == 1


def test_lost_in_an_inspection_marks_it_lost(client, keeper):
    answer = client.post(url("JACKET-1"), json={"result": "lost"}, headers=keeper)
    assert answer.status_code == 201 and answer.json["item_status"] == "lost"
    assert f.item("JACKET-1").status == "lost"


def test_an_item_out_or_retired_is_not_inspected(client, keeper):
    client.post("/api/v1/depot/checkouts", json={"items": ["BOAT-1"], "to": {"team": "ZH"}},
                headers=keeper)
    out = client.post(url("BOAT-1"), json={"result": "operational"}, headers=keeper)
    assert out.status_code == 409 and out.json["error"] == "item_out"
    f.set_item("BOAT-2", status="retired")
    retired = client.post(url("BOAT-2"), json={"result": "operational"}, headers=keeper)
    assert retired.status_code == 409 and retired.json["error"] == "item_retired"


def test_repairs_open_and_write_off(client, keeper):
    opened = client.post(url("PUMP-3", "repairs"), json={"reason": "noisy bearing"},
                         headers=keeper)
    assert opened.status_code == 201 and opened.json["item_status"] == "repair"
    assert opened.json["reason"] == "noisy bearing" and opened.json["closed_at"] is None
    twice = client.post(url("PUMP-3", "repairs"), json={"reason": "again"}, headers=keeper)
    assert twice.status_code == 409 and twice.json["error"] == "repair_open"
    gone = client.post(url("PUMP-3", "repairs"), json={"outcome": "written_off"},
                       headers=keeper)
    assert gone.status_code == 200 and gone.json["item_status"] == "retired"
    none_open = client.post(url("PUMP-3", "repairs"), json={"outcome": "repaired"},
                            headers=keeper)
    assert none_open.status_code == 409 and none_open.json["error"] == "no_open_repair"
    assert client.post(url("PUMP-3", "repairs"), headers=keeper).status_code == 409
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_id == "PUMP-3").order_by(AuditEntry.seq)).all()
    assert actions == ["depot.repair_open", "depot.repair_close"]


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    (url("NOPE-1"), {"result": "operational"}, 404, None),
    (url("a" * 40), {"result": "operational"}, 404, None),
    (url("BOAT-1"), {"result": "fine"}, 400, "result"),
    (url("BOAT-1"), {}, 400, "result"),
    (url("BOAT-1"), {"result": "operational", "checklist": [1]}, 400, "checklist"),
    (url("BOAT-1"), {"result": "operational", "checklist": {"hull": 3}}, 400, "checklist"),
    (url("BOAT-1"), {"result": "operational", "note": "x" * 501}, 400, "note"),
    (url("BOAT-1"), {"result": "operational", "by": "me"}, 400, "by"),
    (url("NOPE-1", "repairs"), {"reason": "x"}, 404, None),
    (url("BOAT-1", "repairs"), {"outcome": "fixed"}, 400, "outcome"),
    (url("BOAT-1", "repairs"), {"reason": 5}, 400, "reason"),
])
def test_bad_inspections_and_repairs(client, keeper, path, body, status, field):
    answer = client.post(path, json=body, headers=keeper)
    assert answer.status_code == status, answer.json
    if field is not None:
        assert answer.json["field"] == field
    assert f.item("BOAT-1").status == "in_stock"


def test_lost_items_take_no_repair(client, keeper):
    f.set_item("BOAT-4", status="lost")
    answer = client.post(url("BOAT-4", "repairs"), json={"reason": "x"}, headers=keeper)
    assert answer.status_code == 409 and answer.json["error"] == "item_lost"


def test_the_due_list(client, keeper, bearer):
    f.set_item("BOAT-1", inspection_due=f.TODAY - timedelta(days=2))
    f.set_item("PUMP-1", inspection_due=f.TODAY + timedelta(days=3))
    f.set_item("PUMP-2", inspection_due=f.TODAY - timedelta(days=9), status="lost")
    reader = bearer("dispatcher")
    soon = client.get("/api/v1/depot/inspections/due?days=5", headers=reader)
    assert soon.status_code == 200
    assert [(i["code"], i["overdue"], i["days_left"]) for i in soon.json["items"]] == [
        ("BOAT-1", True, -2), ("PUMP-1", False, 3)]
    assert soon.json["items"][0]["bin"] == f.BIN_A and soon.json["items"][0]["type"] == "BOAT"
    default = client.get("/api/v1/depot/inspections/due", headers=reader).json["items"]
    assert len(default) == 2  # the others are due in 20 days, beyond inspection_warn_days (14)
    assert len(client.get("/api/v1/depot/inspections/due?days=30",
                          headers=reader).json["items"]) == 4 * 4 - 1
    for bad in ("-1", "x", "3651", "99999999999"):
        assert client.get(f"/api/v1/depot/inspections/due?days={bad}",
                          headers=reader).status_code == 400
    assert client.get("/api/v1/depot/inspections/due",
                      headers=bearer("viewer")).status_code == 403


@pytest.mark.any_backend
def test_roles_and_the_live_event(client, keeper, bearer, login, sio):
    assert client.post(url("BOAT-1"), json={"result": "operational"},
                       headers=bearer("dispatcher")).status_code == 403
    login("commander")
    office = sio()
    office.get_received(NAMESPACE)
    assert client.post(url("BOAT-1"), json={"result": "repair_required"},
                       headers=keeper).status_code == 201
    [event] = [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "depot"]
    assert event == {**event, "kind": "inspection", "action": "create", "codes": ["BOAT-1"],
                     "count": 1, "sites": ["D1"], "types": ["BOAT"], "checkouts": []}
