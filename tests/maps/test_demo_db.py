"""The demo township in the database (both backends): idempotent, reachable, valid GeoJSON."""

import json
from collections import defaultdict, deque
from pathlib import Path

import jsonschema
import pytest
from shapely.geometry import shape
from sqlalchemy import func, select

from dispatch import create_app
from dispatch.core import auth, schema
from dispatch.core.db import db, make_engine
from maps import service
from maps.models import RoadSegment, Shelter, Village
from tests.conftest import PASSWORD, demo_township, empty_tables

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "geojson.json").read_text())
LAYERS = ("villages", "shelters", "sensors", "hazards", "roads", "rivers")


@pytest.fixture(scope="module")
def township():
    return demo_township()


def _load(township) -> bool:
    with db.transaction() as s:
        return service.load_demo_township(s, township, actor="test")


def _rings_closed(geometry: dict) -> bool:
    kind, coords = geometry["type"], geometry["coordinates"]
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    return all(ring[0] == ring[-1] for polygon in polygons for ring in polygon)


def test_demo_load_is_idempotent(app, township):
    assert _load(township) is True
    assert _load(township) is False
    s = db.session
    assert s.scalar(select(func.count(Village.id))) == len(township.villages)
    assert s.scalar(select(func.count(Shelter.id))) == len(township.shelters)
    assert s.scalar(select(func.sum(Village.population))) == 69_000


def test_every_layer_is_valid_geojson(app, client, bearer, township):
    _load(township)
    headers = bearer("viewer")
    for name in LAYERS:
        doc = json.loads(client.get(f"/api/v1/layers/{name}", headers=headers).data)
        jsonschema.validate(doc, SCHEMA)
        for feature in doc["features"]:
            assert _rings_closed(feature["geometry"]), (name, feature["id"])
            assert shape(feature["geometry"]).is_valid, (name, feature["id"])
        if name != "sensors":
            assert doc["features"], name


def test_every_village_is_reachable_by_road_from_the_database(app, township):
    _load(township)
    s = db.session
    graph = defaultdict(set)
    for a, b in s.execute(select(RoadSegment.source, RoadSegment.target)):
        graph[a].add(b)
        graph[b].add(a)
    compound = next(x for x in township.shelters if x.kind == "township_compound")
    node_at = {}
    for road in township.roads:
        node_at[road.geometry.coords[0]] = road.source
        node_at[road.geometry.coords[-1]] = road.target
    start = min(node_at.items(), key=lambda kv: compound.location.distance(
        shape({"type": "Point", "coordinates": kv[0]})))[1]
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in graph[queue.popleft()] - seen:
            seen.add(nxt)
            queue.append(nxt)
    for village in township.villages:
        node = node_at.get(village.centre.coords[0])
        assert node in seen, village.code


def test_same_layers_on_both_databases(spatialite_url, postgis_url, tmp_path, township):
    """Deterministic across databases: the villages and roads layers carry the same data."""
    results = []
    for i, url in enumerate((spatialite_url, postgis_url)):
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        app = create_app({"database": {"url": url}, "data": {"dir": str(tmp_path / str(i))}})
        with app.app_context():
            empty_tables(db.engine)
            _load(township)
            s = db.session
            user, _ = auth.create_user(s, f"cmp{i}", "viewer", actor="test")
            auth.change_password(s, user, PASSWORD)
            token, _ = auth.issue_user_token(s, user, 600)
            s.commit()
            docs = {}
            for name in ("villages", "roads", "hazards"):
                response = app.test_client().get(
                    f"/api/v1/layers/{name}?bbox=108.9,33.0,109.2,33.3",
                    headers={"Authorization": f"Bearer {token}"})
                docs[name] = {f["id"]: (f["properties"], shape(f["geometry"]).wkt)
                              for f in json.loads(response.data)["features"]}
            results.append(docs)
            db.remove()
            db.engine.dispose()
    for name in results[0]:
        assert results[0][name].keys() == results[1][name].keys(), name
        for code, (props, wkt) in results[0][name].items():
            other_props, other_wkt = results[1][name][code]
            assert props == other_props, (name, code)
            assert shape_equal(wkt, other_wkt), (name, code)


def shape_equal(a: str, b: str) -> bool:
    from shapely import wkt

    return wkt.loads(a).equals_exact(wkt.loads(b), 1e-6)
