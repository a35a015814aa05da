"""The depots layer of the live map (depot.layer, GET /api/v1/layers/depots): each located depot
site with its readiness per category, boats first, the same numbers as the readiness endpoint;
problems named; bbox; roles; and the readiness panel's words on the office home page."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from geoalchemy2 import WKTElement
from sqlalchemy import select

from depot import layer
from depot.models import Bin, Site
from dispatch.core.db import db
from tests.depot import factories as f

URL = "/api/v1/layers/depots"


def locate(code: str, lon: float, lat: float) -> None:
    with db.transaction() as s:
        s.scalar(select(Site).where(Site.code == code)).location = WKTElement(
            f"POINT({lon} {lat})", srid=4326)


def entry(category: str, serialized: bool = True, **counts) -> dict:
    base = {"category": category, "serialized": serialized, "below_min": False,
            **dict.fromkeys(layer.COUNTS, 0)}
    return {**base, **counts}


def test_by_category_sums_types_boats_first_and_names_problems():
    rows = layer.by_category([
        entry("flood", serviceable=3, total=4, out=1),
        entry("flood", serviceable=0, total=2, repair=2, inspection_overdue=1),
        entry("consumable", serialized=False, below_min=True),
        entry("boat", serviceable=0, total=2, out=1, expired=1),
    ])
    assert [r["category"] for r in rows] == ["boat", "flood", "consumable"]
    boat, flood, bags = rows
    assert boat["problems"] == ["none_ready", "expired"]
    assert (flood["types"], flood["serviceable"], flood["total"], flood["repair"]) == (2, 3, 6, 2)
    assert flood["problems"] == ["inspection_overdue"]
    # A bulk type has no items: "none ready" is about items; its shortage is below_min.
    assert bags["problems"] == ["below_min"] and bags["stock_types"] == 1


def test_the_layer_has_each_located_site_with_its_readiness(client, bearer):
    f.depot()
    f.set_item("BOAT-1", status="repair")
    f.set_item("BOAT-2", inspection_due=f.TODAY - timedelta(days=1))
    with db.transaction() as s:
        s.add(Site(code="D9", name="未定位的库"))  # no location: not on the map
    locate("D1", 109.05, 33.15)
    viewer = bearer("viewer")
    answer = client.get(URL, headers=viewer)
    assert answer.status_code == 200 and answer.mimetype == "application/geo+json"
    doc = json.loads(answer.data)
    assert doc["numberReturned"] == 1 and doc["truncated"] is False
    [feature] = doc["features"]
    assert feature["id"] == "D1" and feature["geometry"] == {
        "type": "Point", "coordinates": [109.05, 33.15]}
    props = feature["properties"]
    assert props["name"] == "镇应急物资库"
    categories = {c["category"]: c for c in props["categories"]}
    assert [c["category"] for c in props["categories"]][0] == "boat"
    boat = categories["boat"]
    assert (boat["serviceable"], boat["repair"], boat["inspection_overdue"], boat["total"]) == (
        2, 1, 1, 4)
    # BOAT's minimum is 2 and two can go: not below; the overdue one is a problem.
    assert boat["problems"] == ["inspection_overdue"]
    assert categories["consumable"]["problems"] == []  # 1,300 sandbags over 500
    assert categories["rescue"]["problems"] == []  # 250.5 m of rope over 100
    assert props["problems"] == 1
    # The same numbers as the readiness endpoint, summed per type.
    ready = client.get("/api/v1/depot/readiness?site=D1", headers=viewer).json["items"]
    assert props["categories"] == layer.by_category(ready)


def boat_away_from_home() -> None:
    """The depot, a forward site D2 with a bin, and BOAT-4 (home D1) on D2's shelf."""
    f.depot()
    with db.transaction() as s:
        forward = Site(code="D2", name="前置点")
        s.add(forward)
        s.flush()
        s.add(Bin(path="D2/A", site_id=forward.id))
    f.set_item("BOAT-4", bin_id=db.session.scalar(select(Bin.id).where(Bin.path == "D2/A")))


def test_an_item_away_from_home_counts_at_both_sites_as_readiness_says(client, bearer):
    boat_away_from_home()
    locate("D1", 109.05, 33.15)
    locate("D2", 109.06, 33.16)
    viewer = bearer("viewer")
    features = {x["id"]: x["properties"] for x in client.get(URL, headers=viewer).json[
        "features"]}
    for code, boats in (("D1", 4), ("D2", 1)):
        ready = client.get(f"/api/v1/depot/readiness?site={code}", headers=viewer).json
        assert features[code]["categories"] == layer.by_category(ready["items"]), code
        assert features[code]["categories"][0]["total"] == boats


def test_readiness_by_site_gives_every_site_as_asking_each_does(client, bearer):
    boat_away_from_home()
    with db.transaction() as s:
        s.add(Site(code="D3", name="空库"))
    viewer = bearer("viewer")
    for category in (None, "boat"):
        extra = f"&category={category}" if category else ""
        answer = client.get(f"/api/v1/depot/readiness?by=site{extra}", headers=viewer)
        assert answer.status_code == 200, answer.json
        assert answer.json["category"] == category and answer.json["date"]
        sites = answer.json["sites"]
        assert [x["code"] for x in sites] == ["D1", "D2", "D3"]
        assert sites[0]["name"] == "镇应急物资库" and sites[2]["items"] == []
        for site in sites:
            alone = client.get(f"/api/v1/depot/readiness?site={site['code']}{extra}",
                               headers=viewer).json
            assert site["items"] == alone["items"], site["code"]
        assert sites[1]["items"][0]["type"] == "BOAT" and sites[1]["items"][0]["total"] == 1


@pytest.mark.any_backend
def test_readiness_by_site_refuses_what_it_cannot_do(client, bearer):
    viewer = bearer("viewer")
    for query, field in (("by=type", "by"), ("by=site&site=D1", "site")):
        answer = client.get(f"/api/v1/depot/readiness?{query}", headers=viewer)
        assert answer.status_code == 400, query
        assert answer.json["error"] == "bad_parameter" and answer.json["parameter"] == field


def test_a_check_out_shows_in_the_layer_and_bbox_filters(client, bearer):
    f.depot()
    locate("D1", 109.05, 33.15)
    keeper = bearer("keeper")
    for n in (1, 2, 3):
        assert client.post("/api/v1/depot/checkouts", json={
            "items": [f"BOAT-{n}"], "to": {"team": "ZH"}}, headers=keeper).status_code == 201
    assert client.post("/api/v1/depot/checkouts", json={
        "stock": [{"type": "ROPE", "qty": 200, "bin": f.BIN_A}], "to": {"team": "ZH"}},
        headers=keeper).status_code == 201
    props = client.get(URL, headers=keeper).json["features"][0]["properties"]
    boat = props["categories"][0]
    assert (boat["category"], boat["serviceable"], boat["out"]) == ("boat", 1, 3)
    assert boat["problems"] == ["below_min"]  # 1 left of a minimum of 2
    rescue = next(c for c in props["categories"] if c["category"] == "rescue")
    assert rescue["problems"] == ["below_min"] and rescue["below_min"] == 1
    assert client.get(URL + "?bbox=109,33.1,109.1,33.2", headers=keeper).json[
        "numberReturned"] == 1
    assert client.get(URL + "?bbox=110,33.1,110.1,33.2", headers=keeper).json[
        "features"] == []
    assert client.get(URL + "?bbox=1,2,3", headers=keeper).status_code == 400


@pytest.mark.any_backend
def test_roles(client, bearer, make_user):
    assert client.get(URL).status_code == 401
    for role in ("commander", "dispatcher", "keeper", "team_leader", "viewer"):
        assert client.get(URL, headers=bearer(role)).status_code == 200, role


@pytest.mark.any_backend
def test_the_layer_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").json
    [parameter] = [p for p in doc["paths"]["/api/v1/layers/{name}"]["get"]["parameters"]
                   if p["name"] == "name"]
    assert "depots" in parameter["schema"]["enum"]


def test_the_home_page_carries_the_panel_and_the_map_the_layer(client, login):
    f.depot()
    with db.transaction() as s:
        s.add(Site(code="X1", name='<img src=x onerror="alert(1)">'))
    login("viewer")
    page = client.get("/").get_data(as_text=True)
    assert 'id="readiness"' in page and "readiness.js" in page
    words = json.loads(page.split('id="readiness-words">', 1)[1].split("</script>", 1)[0])
    assert words["sites"] == [{"code": "D1", "name": "镇应急物资库"},
                              {"code": "X1", "name": '<img src=x onerror="alert(1)">'}]
    assert words["categories"]["boat"]["label"] == "舟艇"
    assert "<img src=x" not in page  # escaped in the JSON block
    map_page = client.get("/map").get_data(as_text=True)
    assert "depots_layer.js" in map_page and "/api/v1/layers/depots" in map_page
