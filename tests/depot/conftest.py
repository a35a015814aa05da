"""A small depot for the depot's API tests: a site with bins, a catalogue of serialized and bulk
types, registered through the API they test by a keeper."""

from __future__ import annotations

import pytest

SITE = {"code": "D1", "name": "铁关镇应急物资库", "lon": 109.05, "lat": 33.15,
        "keeper": "王库管", "phone": "13800000001"}
BINS = ["D1/A/1/1", "D1/A/1/2", "D1/B/1"]
TYPES = [
    {"code": "BOAT", "name_zh": "冲锋舟", "name_en": "Assault boat", "category": "boat",
     "serialized": True, "unit": "艘",
     "inspection": {"every_days": 30, "checklist": ["hull", "engine"]},
     "expiry_watch": False, "reorder_min": 0},
    {"code": "EXT", "name_zh": "灭火器", "name_en": "Extinguisher", "category": "fire",
     "serialized": True, "unit": "具", "inspection": {"every_days": 30, "checklist": []},
     "expiry_watch": True, "reorder_min": 0},
    {"code": "SANDBAG", "name_zh": "编织袋", "name_en": "Sandbag", "category": "flood",
     "serialized": False, "unit": "条", "inspection": None, "expiry_watch": False,
     "reorder_min": 500},
    {"code": "ROPE", "name_zh": "救援绳", "name_en": "Rescue rope", "category": "rescue",
     "serialized": False, "unit": "m", "whole_units": False, "expiry_watch": False,
     "reorder_min": 100},
]


@pytest.fixture
def keeper(bearer):
    return bearer("keeper")


@pytest.fixture
def depot(client, keeper):
    """The site, bins and types above, through the API; the keeper's headers."""
    for path, body in ([("/api/v1/depot/sites", SITE)]
                       + [("/api/v1/depot/bins", {"path": p}) for p in BINS]
                       + [("/api/v1/depot/types", t) for t in TYPES]):
        answer = client.post(path, json=body, headers=keeper)
        assert answer.status_code == 201, answer.json
    return keeper


def add_item(client, headers, **fields):
    body = {"code": "B-001", "type": "BOAT", "serial": "SN-1", "bin": "D1/A/1/1", **fields}
    answer = client.post("/api/v1/depot/items", json=body, headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json


def move(client, headers, **fields):
    body = {"type": "SANDBAG", "bin": "D1/A/1/2", "kind": "receipt", "qty": 100, **fields}
    return client.post("/api/v1/depot/stock/moves", json=body, headers=headers)
