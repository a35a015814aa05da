"""The one shape of the `depot` live event (depot.live): the catalogue's changes and the keepers'
check-outs, check-ins, inspections and repairs carry the same keys, name the sites and types
concerned, and reach every signed-in role (everyone reads readiness), keepers included."""

from __future__ import annotations

import pytest

from depot import live
from dispatch.core.realtime import NAMESPACE
from tests.depot import factories as f

KEYS = {"id", "ts", "kind", "action", "codes", "count", "sites", "types", "checkouts"}
OUT = "/api/v1/depot/checkouts"
IN = "/api/v1/depot/checkins"


def depot_events(socket) -> list[dict]:
    return [e["args"][0] for e in socket.get_received(NAMESPACE) if e["name"] == "depot"]


def test_change_sorts_dedupes_and_caps_the_codes():
    payload = live.change("item", "import", codes=[f"I-{n:04d}" for n in range(300)] * 2,
                          sites=["D2", "D1", "D2"], types=["BOAT"], checkouts=[3, 1, 3])
    assert set(payload) == KEYS - {"id", "ts"}
    assert payload["count"] == 300 and len(payload["codes"]) == live.LISTED
    assert payload["codes"][0] == "I-0000"
    assert payload["sites"] == ["D1", "D2"] and payload["checkouts"] == [1, 3]
    assert live.change("site", "create")["checkouts"] == []


def test_item_change_finds_sites_and_types(app):
    f.depot()
    from dispatch.core.db import db

    payload = live.item_change(db.session, "checkout", "out", ["BOAT-1", "PUMP-2", "NOPE"],
                               stock=[("SANDBAG", f.BIN_B)], checkouts=[7])
    assert payload == {"kind": "checkout", "action": "out",
                       "codes": ["BOAT-1", "NOPE", "PUMP-2", f"SANDBAG@{f.BIN_B}"],
                       "count": 4, "sites": ["D1"], "types": ["BOAT", "PUMP", "SANDBAG"],
                       "checkouts": [7]}


@pytest.mark.parametrize("role", ["keeper", "viewer", "team_leader"])
def test_every_role_hears_a_check_out_with_its_stock(client, bearer, login, sio, role):
    f.depot()
    login(role)
    socket = sio()
    socket.get_received(NAMESPACE)
    answer = client.post(OUT, json={"items": ["BOAT-1"], "to": {"team": "ZH"},
                                    "stock": [{"type": "SANDBAG", "qty": 10, "bin": f.BIN_A}]},
                         headers=bearer("keeper"))
    assert answer.status_code == 201, answer.json
    [event] = depot_events(socket)
    assert set(event) == KEYS
    assert event == {**event, "kind": "checkout", "action": "out",
                     "codes": ["BOAT-1", f"SANDBAG@{f.BIN_A}"], "count": 2, "sites": ["D1"],
                     "types": ["BOAT", "SANDBAG"], "checkouts": [answer.json["id"]]}
    # Who holds what stays off the event (a viewer reads readiness, not the check-outs).
    assert "ZH" not in str(event)


def test_check_in_repair_and_catalogue_share_the_shape(client, bearer, login, sio):
    f.depot()
    keeper = bearer("keeper")
    out = client.post(OUT, json={"items": ["PUMP-1", "PUMP-2"], "to": {"member": "M001"},
                                 "stock": [{"type": "SANDBAG", "qty": 20, "bin": f.BIN_B}]},
                      headers=keeper).json
    login("commander")
    socket = sio()
    socket.get_received(NAMESPACE)
    back = client.post(IN, json={"items": [{"code": "PUMP-1", "condition": "damaged"}],
                                 "stock": [{"type": "SANDBAG", "qty": 20}]}, headers=keeper)
    assert back.status_code == 200, back.json
    closed = client.post("/api/v1/depot/items/PUMP-1/repairs", json={"outcome": "repaired"},
                         headers=keeper)
    assert closed.status_code == 200, closed.json
    opened = client.post("/api/v1/depot/items/BOAT-2/repairs", json={"reason": "leak"},
                         headers=keeper)
    assert opened.status_code == 201, opened.json
    made = client.post("/api/v1/depot/types", json={
        "code": "RADIO", "name_zh": "对讲机", "category": "comms", "serialized": True,
        "unit": "台", "inspection": None, "expiry_watch": False, "reorder_min": 0},
        headers=keeper)
    assert made.status_code == 201, made.json
    events = depot_events(socket)
    assert all(set(e) == KEYS for e in events)
    assert [(e["kind"], e["action"], e["codes"], e["sites"], e["types"], e["checkouts"])
            for e in events] == [
        ("checkout", "in", ["PUMP-1", f"SANDBAG@{f.BIN_B}"], ["D1"], ["PUMP", "SANDBAG"],
         [out["id"]]),
        ("repair", "close", ["PUMP-1"], ["D1"], ["PUMP"], []),
        ("repair", "open", ["BOAT-2"], ["D1"], ["BOAT"], []),
        ("type", "create", ["RADIO"], [], ["RADIO"], [])]


def test_a_refused_check_out_sends_nothing(client, bearer, login, sio):
    f.depot()
    f.set_item("BOAT-1", status="repair")
    login("viewer")
    socket = sio()
    socket.get_received(NAMESPACE)
    answer = client.post(OUT, json={"items": ["BOAT-1"], "to": {"team": "ZH"}},
                         headers=bearer("keeper"))
    assert answer.status_code == 409
    assert depot_events(socket) == []
