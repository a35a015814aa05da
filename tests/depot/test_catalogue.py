"""Places, the catalogue and kits on both databases: round trips, codes in any case, bad input
named field by field, roles, the audit trail and the live event."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from depot import choices, models
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from tests.depot.conftest import SITE, TYPES


def test_sites_bins_and_types_round_trip(client, depot):
    sites = client.get("/api/v1/depot/sites", headers=depot).json["items"]
    assert sites == [{**SITE, "township": None}]
    bins = client.get("/api/v1/depot/bins?site=d1", headers=depot).json["items"]
    assert bins == [{"path": "D1/A/1/1", "site": "D1"}, {"path": "D1/A/1/2", "site": "D1"},
                    {"path": "D1/B/1", "site": "D1"}]
    catalogue = {t["code"]: t for t in client.get("/api/v1/depot/types",
                                                  headers=depot).json["items"]}
    assert catalogue["BOAT"] == {**TYPES[0], "whole_units": True, "specs": {}}
    assert catalogue["ROPE"]["whole_units"] is False
    assert catalogue["SANDBAG"]["inspection"] == {"every_days": None, "checklist": []}
    flood = client.get("/api/v1/depot/types?category=flood", headers=depot).json["items"]
    assert [t["code"] for t in flood] == ["SANDBAG"]


def test_codes_are_stored_upper_case_and_taken_once_whatever_the_case(client, depot):
    answer = client.post("/api/v1/depot/sites", json={"code": "d2", "name": "二号库"},
                         headers=depot)
    assert answer.status_code == 201 and answer.json["code"] == "D2"
    assert answer.json["lon"] is None
    again = client.post("/api/v1/depot/sites", json={"code": "D2", "name": "x"}, headers=depot)
    assert (again.status_code, again.json["error"]) == (409, "exists")
    made = client.post("/api/v1/depot/bins", json={"path": "d2/room-1/r.2"}, headers=depot)
    assert made.json == {"path": "D2/ROOM-1/R.2", "site": "D2"}
    twice = client.post("/api/v1/depot/bins", json={"path": "D2/Room-1/R.2"}, headers=depot)
    assert twice.status_code == 409
    kind = client.post("/api/v1/depot/types", json={**TYPES[0], "code": "boat"}, headers=depot)
    assert kind.status_code == 409


BAD_SITES = [
    ({"name": "x"}, "code"),
    ({"code": "A/B", "name": "x"}, "code"),
    ({"code": "Ｄ3", "name": "x"}, "code"),
    ({"code": "D3"}, "name"),
    ({"code": "D3", "name": "  "}, "name"),
    ({"code": "D3", "name": "x\u0007"}, "name"),
    ({"code": "D3", "name": "x", "lon": 109}, "lat"),
    ({"code": "D3", "name": "x", "lon": 190, "lat": 33}, "lon"),
    ({"code": "D3", "name": "x", "lon": True, "lat": 33}, "lon"),
    ({"code": "D3", "name": "x", "lon": "109", "lat": 33}, "lon"),
    ({"code": "D3", "name": "x", "phone": 138}, "phone"),
    ({"code": "D3", "name": "x", "township": "T999"}, "township"),
    ({"code": "D" * 33, "name": "x"}, "code"),
]
BAD_PATHS = ["D1", "NOPE/A", "D1//A", "D1/A/B/C/E", "D1/A B", "/D1/A", "D1/A/", 7, None,
             "D1/" + "A" * 130]


def test_a_bad_site_or_bin_is_refused_naming_its_field(client, depot):
    for body, field in BAD_SITES:
        answer = client.post("/api/v1/depot/sites", json=body, headers=depot)
        assert (answer.status_code, answer.json["error"], answer.json["field"]) == (
            400, "bad_field", field), body
    for path in BAD_PATHS:
        answer = client.post("/api/v1/depot/bins", json={"path": path}, headers=depot)
        assert (answer.status_code, answer.json.get("field")) == (400, "path"), path
    assert len(client.get("/api/v1/depot/sites", headers=depot).json["items"]) == 1


BAD_TYPES = [
    ({"category": "food"}, "category"),
    ({"serialized": "yes"}, "serialized"),
    ({"serialized": True, "whole_units": False}, "whole_units"),
    ({"inspection": {"every_days": 0}}, "inspection.every_days"),
    ({"inspection": {"every_days": 1.5}}, "inspection.every_days"),
    ({"inspection": {"every_days": 2**40}}, "inspection.every_days"),
    ({"inspection": {"checklist": "hull"}}, "inspection.checklist"),
    ({"inspection": {"checklist": ["hull", "hull"]}}, "inspection.checklist"),
    ({"inspection": []}, "inspection"),
    ({"reorder_min": -1}, "reorder_min"),
    ({"reorder_min": 2.5}, "reorder_min"),
    ({"reorder_min": "5"}, "reorder_min"),
    ({"name_zh": ""}, "name_zh"),
    ({"unit": "x" * 17}, "unit"),
    ({"specs": {"len": [1]}}, "specs.len"),
    ({"expiry_watch": 1}, "expiry_watch"),
]


def test_a_bad_type_is_refused_naming_its_field(client, depot):
    for change, field in BAD_TYPES:
        body = {**TYPES[0], "code": "NEW", **change}
        answer = client.post("/api/v1/depot/types", json=body, headers=depot)
        assert (answer.status_code, answer.json.get("field")) == (400, field), answer.json


def test_a_kit_names_types_and_counts(client, depot):
    body = {"code": "kit-boat", "name": "水上救援组套装",
            "lines": [{"type": "boat", "count": 1}, {"type": "SANDBAG", "count": 20}]}
    answer = client.post("/api/v1/depot/kits", json=body, headers=depot)
    assert answer.status_code == 201, answer.json
    assert answer.json == {"code": "KIT-BOAT", "name": "水上救援组套装", "lines": [
        {"type": "BOAT", "count": 1, "name_zh": "冲锋舟", "name_en": "Assault boat"},
        {"type": "SANDBAG", "count": 20, "name_zh": "编织袋", "name_en": "Sandbag"}]}
    assert client.get("/api/v1/depot/kits", headers=depot).json["items"] == [answer.json]
    again = client.post("/api/v1/depot/kits", json=body, headers=depot)
    assert again.status_code == 409


BAD_KITS = [
    ([], "lines"), (None, "lines"), ("BOAT", "lines"), ([7], "lines[0]"),
    ([{"type": "NOPE", "count": 1}], "lines[0].type"),
    ([{"type": "BOAT", "count": 0}], "lines[0].count"),
    ([{"type": "BOAT", "count": -2}], "lines[0].count"),
    ([{"type": "BOAT", "count": 1.5}], "lines[0].count"),
    ([{"type": "BOAT", "count": True}], "lines[0].count"),
    ([{"type": "BOAT", "count": 1}, {"type": "boat", "count": 2}], "lines[1].type"),
]


def test_a_bad_kit_is_refused_naming_its_line(client, depot):
    for lines, field in BAD_KITS:
        answer = client.post("/api/v1/depot/kits", json={"code": "K", "name": "k",
                                                         "lines": lines}, headers=depot)
        assert (answer.status_code, answer.json.get("field")) == (400, field), answer.json
    assert client.get("/api/v1/depot/kits", headers=depot).json["items"] == []


@pytest.mark.any_backend
@pytest.mark.parametrize("role", ["dispatcher", "viewer", "team_leader"])
def test_only_keepers_and_commanders_write(client, bearer, role):
    headers = bearer(role)
    for path, body in (("/api/v1/depot/sites", SITE), ("/api/v1/depot/bins", {"path": "D1/A"}),
                       ("/api/v1/depot/types", TYPES[0]),
                       ("/api/v1/depot/kits", {"code": "K", "name": "k", "lines": []})):
        assert client.post(path, json=body, headers=headers).status_code == 403
    reads = client.get("/api/v1/depot/sites", headers=headers).status_code
    assert reads == (200 if role == "dispatcher" else 403)


@pytest.mark.any_backend
def test_a_commander_writes_and_a_gateway_never_reads(client, bearer, app):
    assert client.post("/api/v1/depot/sites", json=SITE,
                       headers=bearer("commander")).status_code == 201
    from dispatch.core import auth
    with db.transaction() as s:
        _gateway, _password, token = auth.create_gateway(s, "GW-T", actor="test", mqtt_hash=str)
    answer = client.get("/api/v1/depot/sites", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403


def test_every_change_is_audited(client, depot):
    client.post("/api/v1/depot/kits", json={"code": "K1", "name": "k",
                                            "lines": [{"type": "BOAT", "count": 1}]},
                headers=depot)
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type.like("depot_%")).order_by(AuditEntry.seq)).all()
    assert [(e.action, e.entity_id) for e in entries] == [
        ("depot_site.create", "D1"), ("depot_bin.create", "D1/A/1/1"),
        ("depot_bin.create", "D1/A/1/2"), ("depot_bin.create", "D1/B/1"),
        ("depot_type.create", "BOAT"), ("depot_type.create", "EXT"),
        ("depot_type.create", "SANDBAG"), ("depot_type.create", "ROPE"),
        ("depot_kit.create", "K1")]
    assert json.loads(entries[0].after)["name"] == SITE["name"]
    assert entries[0].actor.startswith("user:keeper")


@pytest.mark.any_backend
def test_a_change_is_announced_to_the_office(client, login, sio, bearer):
    login("commander")
    socket = sio()
    socket.get_received("/live")
    client.post("/api/v1/depot/sites", json=SITE, headers=bearer("keeper"))
    events = [e for e in socket.get_received("/live") if e["name"] == "depot"]
    assert [e["args"][0]["kind"] for e in events] == ["site"]
    assert events[0]["args"][0]["codes"] == ["D1"] and events[0]["args"][0]["sites"] == ["D1"]


def test_the_choices_are_the_models():
    assert tuple(choices.Category) == models.CATEGORIES
    assert tuple(choices.ItemStatus) == models.ITEM_STATUSES
    assert tuple(choices.MoveKind) == models.MOVE_KINDS
    assert set(choices.LABELS) >= {*choices.Category, *choices.ItemStatus, *choices.MoveKind}
