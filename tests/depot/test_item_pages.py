"""The depot's item pages on the server: who may open them, an unknown code, the page's words and
URLs for its module (the browser test, tests/browser/test_depot_items.py, drives them)."""

from __future__ import annotations

import json
import re

import pytest

from tests.depot.conftest import add_item


def config(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="depot-items-config">(.*?)</script>',
                      page, re.S)
    assert found, page[:500]
    return json.loads(found.group(1))


@pytest.mark.parametrize("role", ["keeper", "commander", "dispatcher"])
def test_readers_of_items_open_both_pages(client, depot, login, role):
    add_item(client, depot, code="B-001")
    login(role)
    listing = client.get("/depot/items")
    assert listing.status_code == 200
    words = config(listing.get_data(as_text=True))
    assert words["urls"]["items"] == "/api/v1/depot/items"
    assert words["words"]["status"]["repair"] == {"label": "维修中", "problem": True}
    assert words["words"]["status"]["out"]["problem"] is False
    assert "查找物资" in listing.get_data(as_text=True)
    one = client.get("/depot/items/b-001")
    assert one.status_code == 200
    page = one.get_data(as_text=True)
    assert config(page)["code"] == "B-001" and "冲锋舟" in page
    assert client.get("/depot/items/NOPE-1").status_code == 404
    client.get("/lang/en")
    english = config(client.get("/depot/items").get_data(as_text=True))["words"]
    assert english["status"]["repair"]["label"] == "In repair"
    assert english["where"]["held"] == "With {holder}"


@pytest.mark.parametrize("role", ["viewer", "team_leader"])
def test_others_may_not(client, depot, login, role):
    add_item(client, depot, code="B-001")
    login(role)
    assert client.get("/depot/items").status_code == 403
    assert client.get("/depot/items/B-001").status_code == 403


def test_signed_out_goes_to_sign_in(client, depot):
    answer = client.get("/depot/items")
    assert answer.status_code in (302, 401)
