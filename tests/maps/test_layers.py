"""Map layers and feature APIs on both databases: GeoJSON, bbox, CRUD with audit, imports."""

import json

import pytest
from sqlalchemy import select

from dispatch.core import audit, auth
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from dispatch.core.realtime import NAMESPACE
from maps.models import Village
from tests.conftest import csrf_of

LAYERS = ("villages", "shelters", "sensors", "hazards", "roads", "rivers")


def square(lon, lat, d=0.01):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d],
                                                [lon, lat + d], [lon, lat]]]}


def village(code, lon, lat, **props):
    return {"type": "Feature", "geometry": square(lon, lat),
            "properties": {"code": code, "name_zh": f"{code}村", "population": 500, **props}}


def shelter(code, lon, lat, **props):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"code": code, "name_zh": "中心小学", "kind": "school",
                           "capacity_day": 300, "capacity_night": 200, **props}}


@pytest.fixture
def editor(bearer):
    return bearer("dispatcher")


@pytest.fixture
def viewer(bearer):
    return bearer("viewer")


def _layer(client, headers, name, bbox=None):
    url = f"/api/v1/layers/{name}" + (f"?bbox={bbox}" if bbox else "")
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/geo+json"
    return json.loads(response.data)


def test_layers_are_feature_collections(client, editor):
    assert client.post("/api/v1/villages", json=village("V1", 109.0, 33.0),
                       headers=editor).status_code == 201
    assert client.post("/api/v1/shelters", json=shelter("S1", 109.005, 33.005),
                       headers=editor).status_code == 201
    for name in LAYERS:
        doc = _layer(client, editor, name)
        assert doc["type"] == "FeatureCollection"
        assert isinstance(doc["features"], list)
    villages = _layer(client, editor, "villages")["features"]
    assert villages[0]["geometry"]["type"] == "MultiPolygon"
    assert villages[0]["properties"]["name"] == "V1村"
    assert villages[0]["properties"]["population"] == 500
    shelters = _layer(client, editor, "shelters")["features"]
    assert shelters[0]["geometry"] == {"type": "Point", "coordinates": [109.005, 33.005]}
    assert shelters[0]["properties"]["status"] == "open"


def test_bbox_filters(client, editor):
    for i in range(5):
        client.post("/api/v1/villages", json=village(f"V{i}", 109.0 + i * 0.1, 33.0),
                    headers=editor)
    codes = [f["id"] for f in _layer(client, editor, "villages",
                                     "109.05,32.9,109.25,33.1")["features"]]
    assert codes == ["V1", "V2"]
    assert _layer(client, editor, "villages", "100,10,100.1,10.1")["features"] == []


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "10,10,5,5", "0,0,200,1", "nan,0,1,1"])
def test_bad_bbox(client, editor, bbox):
    response = client.get(f"/api/v1/layers/villages?bbox={bbox}", headers=editor)
    assert response.status_code == 400 and response.json["error"] == "bad_bbox"


def test_unknown_layer(client, editor):
    assert client.get("/api/v1/layers/volcanoes", headers=editor).status_code == 404


def test_crud_is_audited_and_role_checked(client, editor, viewer):
    assert client.post("/api/v1/shelters", json=shelter("S9", 109, 33),
                       headers=viewer).status_code == 403
    created = client.post("/api/v1/shelters", json=shelter("S9", 109, 33), headers=editor)
    assert created.status_code == 201
    changed = client.patch("/api/v1/shelters/S9", json={"status": "full", "occupancy": 200},
                           headers=editor)
    assert changed.status_code == 200 and changed.json["properties"]["status"] == "full"
    assert client.get("/api/v1/shelters/S9", headers=viewer).json["properties"]["fill"] == 0.667
    assert client.delete("/api/v1/shelters/S9", headers=editor).status_code == 204
    assert client.get("/api/v1/shelters/S9", headers=viewer).status_code == 404
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    actions = [e.action for e in entries if e.entity_type == "shelter"]
    assert actions == ["shelter.create", "shelter.update", "shelter.delete"]
    update = next(e for e in entries if e.action == "shelter.update")
    assert json.loads(update.before)["status"] == "open"
    assert json.loads(update.after)["status"] == "full"
    assert audit.verify(db.session).ok


@pytest.mark.parametrize(("body", "code"), [
    (None, "bad_feature"),
    ({"type": "Feature", "properties": {"code": "X"}}, "bad_field"),
    (village("V1", 109, 33, population=-1), "bad_field"),
    (village("V1", 109, 33, population="many"), "bad_field"),
    ({**village("V1", 109, 33), "geometry": {"type": "Point", "coordinates": [1, 2]}},
     "bad_geometry"),
    ({**village("V1", 109, 33), "geometry": {"type": "Polygon", "coordinates": "x"}},
     "bad_geometry"),
    ({**village("V1", 109, 33), "geometry": square(33, 109)}, "geometry_swapped_axes"),
    ({**village("V1", 109, 33), "geometry": square(200, 33)}, "geometry_out_of_range"),
])
def test_bad_features_are_refused(client, editor, body, code):
    response = client.post("/api/v1/villages", json=body, headers=editor)
    assert response.status_code == 400, response.json
    assert response.json["error"] == code


def test_map_errors_speak_the_language_of_the_request(client, editor):
    swapped = client.post("/api/v1/villages", json={**village("V1", 109, 33),
                                                    "geometry": square(33, 109)}, headers=editor)
    assert swapped.json["message"] == \
        "坐标看起来是“纬度,经度”：请按“经度,纬度”（GeoJSON 顺序）发送。"
    assert client.get("/api/v1/villages/NOPE", headers=editor).json["message"] == \
        "没有代码为 NOPE 的村庄。"
    client.get("/lang/en")
    bad = client.post("/api/v1/villages", json=village("V1", 109, 33, population=-1),
                      headers=editor).json
    assert (bad["field"], bad["message"]) == ("population",
                                              "population: must be between 0 and 10000000")
    assert client.get("/api/v1/layers/villages?bbox=1,2,3", headers=editor).json["message"] \
        .startswith("bbox must be minlon,minlat,maxlon,maxlat")


def test_duplicate_code_conflicts(client, editor):
    client.post("/api/v1/villages", json=village("V1", 109, 33), headers=editor)
    response = client.post("/api/v1/villages", json=village("V1", 109, 33), headers=editor)
    assert response.status_code == 409


def test_self_intersecting_polygon_is_repaired(client, editor):
    bowtie = {"type": "Polygon", "coordinates": [[[109, 33], [109.01, 33.01], [109.01, 33],
                                                  [109, 33.01], [109, 33]]]}
    response = client.post("/api/v1/villages", json={**village("V1", 109, 33),
                                                     "geometry": bowtie}, headers=editor)
    assert response.status_code == 201
    assert response.json["geometry"]["type"] == "MultiPolygon"
    assert len(response.json["geometry"]["coordinates"]) == 2


def test_geojson_import_all_or_nothing(client, editor):
    good = {"type": "FeatureCollection",
            "features": [village("V1", 109, 33), village("V2", 109.1, 33)]}
    bad = {"type": "FeatureCollection", "features": [
        village("V3", 109, 33), village("V4", 109, 33, population=-5), village("V3", 109, 33)]}
    refused = client.post("/api/v1/villages/import", json=bad, headers=editor)
    assert refused.status_code == 422
    rows = refused.json["rows"]
    assert [(r["line"], r["code"]) for r in rows] == [(2, "V4"), (3, "V3")]
    assert db.session.scalar(select(Village.id)) is None  # nothing half-written
    done = client.post("/api/v1/villages/import", json=good, headers=editor)
    assert done.status_code == 200 and done.json == {"created": 2, "updated": 0}
    again = client.post("/api/v1/villages/import", json=good, headers=editor)
    assert again.status_code == 422 and "mode=upsert" in again.json["rows"][0]["reason"]
    upsert = client.post("/api/v1/villages/import?mode=upsert", json=good, headers=editor)
    assert upsert.json == {"created": 0, "updated": 2}


def test_csv_import_reports_lines(client, editor):
    csv_text = (
        "code,name_zh,kind,lon,lat,capacity_day,capacity_night\n"
        "S1,中心小学,school,109.0,33.0,400,300\n"
        "S2,村委会,village_hall,abc,33.0,100,80\n"
        "S3,卫生院,spaceship,109.0,33.0,50,50\n"
        "S4,体育馆,gymnasium,109.1,33.0,-1,50\n"
    )
    response = client.post("/api/v1/shelters/import", data=csv_text.encode(),
                           headers={**editor, "Content-Type": "text/csv"})
    assert response.status_code == 422
    assert [r["line"] for r in response.json["rows"]] == [3, 4, 5]
    good = ("code,name_zh,kind,lon,lat,capacity_day,capacity_night\n"
            "S1,中心小学,school,109,33,400,300\n")
    ok = client.post("/api/v1/shelters/import", data=good.encode("utf-8"),
                     headers={**editor, "Content-Type": "text/csv"})
    assert ok.status_code == 200 and ok.json["created"] == 1


def test_import_bad_encoding_and_format(client, editor):
    assert client.post("/api/v1/villages/import", data=b"\xff\xfe", headers=editor
                       ).json["error"] == "bad_encoding"
    assert client.post("/api/v1/villages/import", json={"type": "Feature"}, headers=editor
                       ).json["error"] == "bad_geojson"


def test_layer_change_reaches_open_maps(app, client, login, sio):
    login("dispatcher")
    socket = sio()
    created = client.post("/api/v1/shelters", json=shelter("S1", 109, 33),
                          headers={"X-CSRF-Token": csrf_of(client)})
    assert created.status_code == 201
    client.patch("/api/v1/shelters/S1", json={"status": "closed"},
                 headers={"X-CSRF-Token": csrf_of(client)})
    events = [e["args"][0] for e in socket.get_received(NAMESPACE) if e["name"] == "layer"]
    assert [(e["action"], e["code"]) for e in events] == [("create", "S1"), ("update", "S1")]
    assert events[-1]["feature"]["properties"]["status"] == "closed"


def test_road_can_be_closed(client, editor):
    with db.transaction() as s:
        from geoalchemy2.shape import from_shape
        from shapely.geometry import LineString

        from maps.models import RoadSegment

        s.add(RoadSegment(code="R1", geometry=from_shape(LineString([(109, 33), (109.01, 33)]),
                                                        srid=4326),
                          road_class="village", length_m=930.0, speed_kmh=25, source=1,
                          target=2))
    response = client.patch("/api/v1/roads/R1", json={"is_open": False,
                                                      "closed_reason": "塌方"}, headers=editor)
    assert response.status_code == 200
    props = _layer(client, editor, "roads")["features"][0]["properties"]
    assert props["open"] is False and props["closed_reason"] == "塌方"


def test_people_and_tokens_only(client, make_user):
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
    response = client.get("/api/v1/layers/villages", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert client.get("/api/v1/layers/villages").status_code == 401


def test_bbox_query_uses_the_spatial_index(app):
    """SpatiaLite's planner ignores the R*Tree unless asked through SpatialIndex (NOTES.md);
    PostGIS uses GiST by itself once the table is not tiny."""
    from sqlalchemy import text as sql

    from maps import service

    s = db.session
    query = select(Village.id).where(service.bbox_clause(s, service.VILLAGES,
                                                        (109.0, 33.0, 109.1, 33.1)))
    compiled = query.compile(s.bind, compile_kwargs={"literal_binds": True})
    if s.bind.dialect.name == "sqlite":
        plan = " ".join(str(r[-1]) for r in s.execute(sql(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "VIRTUAL TABLE INDEX" in plan and "SpatialIndex" in plan, plan
    else:
        s.execute(sql("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in s.execute(sql(f"EXPLAIN {compiled}")))
        assert "idx_villages_boundary" in plan, plan


def test_truncated_only_when_rows_were_left_out(app, client, editor):
    from maps import service

    for i in range(3):
        client.post("/api/v1/villages", json=village(f"V{i}", 109.0 + i * 0.1, 33.0),
                    headers=editor)
    exact = json.loads("".join(service.layer_features(db.session, service.VILLAGES, limit=3)))
    cut = json.loads("".join(service.layer_features(db.session, service.VILLAGES, limit=2)))
    assert (exact["numberReturned"], exact["truncated"]) == (3, False)
    assert (cut["numberReturned"], cut["truncated"]) == (2, True)


def test_imports_take_no_nan_infinity_or_deep_json(client, editor):
    wkt = "POLYGON((109 33, 109.01 33, 109.01 33.01, 109 33.01, 109 33))"
    csv_text = ("code,name_zh,population,elevation_m,wkt\n"
                f'V1,东村,nan,100,"{wkt}"\n'
                f'V2,西村,100,inf,"{wkt}"\n'
                f'V3,南村,100,1e400,"{wkt}"\n'
                f'V4,北村,-NaN,100,"{wkt}"\n'
                f'V5,中村,100,100,"{wkt}"\n')
    rows = client.post("/api/v1/villages/import", data=csv_text.encode("utf-8"),
                       headers={**editor, "Content-Type": "text/csv"})
    assert rows.status_code == 422, rows.json
    assert [r["line"] for r in rows.json["rows"]] == [2, 3, 4, 5]
    feature = json.dumps(village("V1", 109, 33, elevation_m=1.5)).replace("1.5", "NaN")
    nan = client.post("/api/v1/villages/import", headers={
        **editor, "Content-Type": "application/geo+json"},
        data=f'{{"type": "FeatureCollection", "features": [{feature}]}}'.encode())
    assert nan.status_code == 400 and nan.json["error"] == "bad_json"
    deep = client.post("/api/v1/villages/import", headers={
        **editor, "Content-Type": "application/geo+json"},
        data=b'{"type": "FeatureCollection", "features": ' + b"[" * 1000 + b"]" * 1000 + b"}")
    assert deep.status_code == 400 and deep.json["error"] == "bad_json"
    assert db.session.scalar(select(Village.id)) is None


def test_positions_with_an_altitude_are_kept_as_lon_lat(client, editor):
    # RFC 7946 lets a position carry an altitude; SpatiaLite refused it with a 500.
    body = shelter("S3D", 109.05, 33.15)
    body["geometry"]["coordinates"] = [109.05, 33.15, 812.5]
    created = client.post("/api/v1/shelters", json=body, headers=editor)
    assert created.status_code == 201, created.json
    assert created.json["geometry"]["coordinates"] == [109.05, 33.15]
    moved = client.patch("/api/v1/shelters/S3D", headers=editor, json={
        "geometry": {"type": "Point", "coordinates": [109.06, 33.16, 800]}})
    assert moved.status_code == 200, moved.json
    assert moved.json["geometry"]["coordinates"] == [109.06, 33.16]


def test_unreadable_csv_and_non_object_features_are_refused_not_crashed(client, editor):
    # Both answered 500 (found by the API fuzzer): csv.Error, and TypeError on a null feature.
    broken = client.post("/api/v1/villages/import", data=b"code\rname_zh\nV1\r,x\n",
                         headers={**editor, "Content-Type": "text/csv"})
    assert broken.status_code == 400 and broken.json["error"] == "bad_csv", broken.json
    odd = client.post("/api/v1/villages/import", headers=editor, json={
        "type": "FeatureCollection", "features": [None, 5, {"type": "Feature"}]})
    assert odd.status_code == 422, odd.json
    assert [r["line"] for r in odd.json["rows"]] == [1, 2, 3]


def test_a_village_boundary_longer_than_csvs_field_limit_imports(client, editor):
    """csv refuses fields over 128 KiB by default: a detailed boundary as WKT answered 500."""
    import math

    ring = [(109.05 + 0.01 * math.cos(2 * math.pi * i / 5000),
             33.15 + 0.01 * math.sin(2 * math.pi * i / 5000)) for i in range(5000)]
    wkt = "POLYGON ((" + ", ".join(f"{x:.9f} {y:.9f}" for x, y in [*ring, ring[0]]) + "))"
    assert len(wkt) > 131072
    text = f'code,name_zh,population,wkt\nV1,大村,500,"{wkt}"\n'
    response = client.post("/api/v1/villages/import", data=text.encode(),
                           headers={**editor, "Content-Type": "text/csv"})
    assert response.status_code == 200 and response.json["created"] == 1


def test_a_refused_import_speaks_the_request_language(client, editor):
    """The villages' import_rejected message and row reasons were English on Chinese pages."""
    good = {"type": "FeatureCollection", "features": [village("V1", 109, 33)]}
    assert client.post("/api/v1/villages/import", json=good, headers=editor).status_code == 200
    again = {"type": "FeatureCollection", "features": [village("V1", 109, 33),
                                                       village("V2", 109, 33),
                                                       village("V2", 109, 33)]}
    refused = client.post("/api/v1/villages/import", json=again, headers=editor).json
    assert refused["error"] == "import_rejected"
    assert refused["message"].startswith("有 2 行未通过")
    reasons = [row["reason"] for row in refused["rows"]]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in reason) for reason in reasons), reasons
    client.set_cookie("lang", "en")
    english = client.post("/api/v1/villages/import", json=again, headers=editor).json
    assert english["message"].startswith("2 row(s) refused")
    assert [row["reason"] for row in english["rows"]] == [
        "V1 exists already (import with mode=upsert to update it)",
        "code V2 repeats line 2 of this file"]


def test_warning_levels_are_on_the_layers_and_reach_open_maps(app, client, login, sio):
    """alerts writes a level onto the rows and sends `warning_changed`; the layers carry it and
    open maps get each changed village and zone as a `layer` update (DESIGN §5)."""
    from sqlalchemy import update

    from dispatch.core.events import WarningChanged, warning_changed
    from maps.models import HazardZone

    login("dispatcher")
    headers = {"X-CSRF-Token": csrf_of(client)}
    assert client.post("/api/v1/villages", json=village("V1", 109.0, 33.0),
                       headers=headers).status_code == 201
    zone = {"type": "Feature", "geometry": square(109.0, 33.0),
            "properties": {"code": "H1", "kind": "landslide", "name_zh": "后山", "people": 40}}
    assert client.post("/api/v1/hazards", json=zone, headers=headers).status_code == 201
    assert [f["properties"]["warning_level"] for f in _layer(client, headers, "villages")[
        "features"]] == ["none"]
    socket = sio()
    with db.transaction() as s:
        s.execute(update(Village).where(Village.code == "V1").values(warning_level="evacuate"))
        s.execute(update(HazardZone).where(HazardZone.code == "H1").values(
            warning_level="prepare"))
    warning_changed.send(WarningChanged(("V1", "V-UNKNOWN"), ("H1",)))
    layers = {name: {f["id"]: f["properties"]["warning_level"]
                     for f in _layer(client, headers, name)["features"]}
              for name in ("villages", "hazards")}
    assert layers == {"villages": {"V1": "evacuate"}, "hazards": {"H1": "prepare"}}
    events = [e["args"][0] for e in socket.get_received(NAMESPACE) if e["name"] == "layer"]
    assert [(e["layer"], e["action"], e["code"], e["feature"]["properties"]["warning_level"])
            for e in events] == [("villages", "update", "V1", "evacuate"),
                                 ("hazards", "update", "H1", "prepare")]
