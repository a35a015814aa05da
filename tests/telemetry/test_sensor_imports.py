"""Sensor import from CSV and GeoJSON on both databases: all or none, every bad row named."""

import io
import json

import pytest
from sqlalchemy import func, select

from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from telemetry.imports import MAX_BYTES
from telemetry.models import Sensor

HEADER = "code,name,kind,unit,gateway,lon,lat,village,hazard,range_min,range_max,interval_s\n"


@pytest.fixture
def gateway(app):
    with db.transaction() as s:
        auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
    return "GW-1"


@pytest.fixture
def village(client, bearer, gateway):
    ring = [[109.0, 33.1], [109.1, 33.1], [109.1, 33.2], [109.0, 33.2], [109.0, 33.1]]
    answer = client.post("/api/v1/villages", headers=bearer("commander"), json={
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"code": "V01", "name_zh": "石板沟", "population": 600}})
    assert answer.status_code == 201, answer.json
    return "V01"


@pytest.fixture
def editor(bearer, client):
    client.set_cookie("lang", "en")  # the reasons below are checked in English
    return bearer("dispatcher")


def post_csv(client, headers, text: str):
    return client.post("/api/v1/sensors/import", data=text.encode("utf-8"),
                       headers={**headers, "Content-Type": "text/csv"})


def sensor_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Sensor.id)))


def point(code, lon=109.05, lat=33.15, **props):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"code": code, "kind": "rain_gauge", "unit": "mm", "gateway": "GW-1",
                           **props}}


def test_good_csv_registers_every_row_with_audit(client, editor, village):
    text = (HEADER
            + "RG-001,沟口雨量站,rain_gauge,mm,GW-1,109.05,33.15,V01,,0,150,60\n"
            + "WL-001,,water_level,m,GW-1,109.06,33.16,,,,,\n")
    answer = post_csv(client, editor, text)
    assert answer.status_code == 201, answer.json
    assert answer.json["created"] == 2 and answer.json["codes"] == ["RG-001", "WL-001"]
    rg = client.get("/api/v1/sensors/RG-001", headers=editor).json
    assert (rg["name"], rg["village"], rg["range"], rg["interval_s"]) == (
        "沟口雨量站", "V01", [0.0, 150.0], 60)
    wl = client.get("/api/v1/sensors/WL-001", headers=editor).json
    assert wl["range"] == [-5.0, 50.0] and wl["interval_s"] == 300 and wl["village"] is None
    audited = db.session.scalars(select(AuditEntry.entity_id).where(
        AuditEntry.action == "sensor.create").order_by(AuditEntry.seq)).all()
    assert audited == ["RG-001", "WL-001"]


def test_good_geojson_as_upload_and_as_body(client, editor, village):
    collection = {"type": "FeatureCollection", "features": [
        point("RG-001", village="V01", range=[0, 120]),
        point("CM-001", kind="crack_meter", range_min=0, range_max=500, interval_s=600)]}
    upload = client.post("/api/v1/sensors/import", headers=editor, data={
        "file": (io.BytesIO(json.dumps(collection).encode()), "sensors.geojson")})
    assert upload.status_code == 201, upload.json
    assert client.get("/api/v1/sensors/CM-001", headers=editor).json["range"] == [0.0, 500.0]
    more = {"type": "FeatureCollection", "features": [point("RG-002", lon=109.07)]}
    body = client.post("/api/v1/sensors/import", data=json.dumps(more),
                       headers={**editor, "Content-Type": "application/geo+json"})
    assert body.status_code == 201 and body.json["created"] == 1
    assert sensor_count() == 3


def test_bad_rows_are_each_listed_and_nothing_is_written(client, editor, village):
    text = (HEADER
            + "RG-001,ok,rain_gauge,mm,GW-1,109.05,33.15,,,,,\n"      # line 2: good
            + "RG-002,,rain_gauge,cm,GW-1,109.05,33.15,,,,,\n"        # 3: wrong unit
            + "RG-003,,rain_gauge,mm,GW-1,east,33.15,,,,,\n"          # 4: lon not a number
            + "RG-004,,rain_gauge,mm,GW-1,109.05,33.15,,,200,10,\n"   # 5: range min > max
            + "RG-005,,thermometer,mm,GW-1,109.05,33.15,,,,,\n"       # 6: unknown kind
            + "RG-006,,rain_gauge,mm,GW-1,109.05,33.15,,,5,,\n"       # 7: half a range
            + ",,rain_gauge,mm,GW-1,109.05,33.15,,,,,\n"              # 8: no code
            + "RG-007,,rain_gauge,mm,GW-1,109.05,33.15,,,,,5\n")      # 9: interval too short
    answer = post_csv(client, editor, text)
    assert answer.status_code == 422, answer.json
    assert answer.json["error"] == "import_rejected"
    rows = answer.json["rows"]
    assert [(r["line"], r["code"]) for r in rows] == [
        (3, "RG-002"), (4, "RG-003"), (5, "RG-004"), (6, "RG-005"), (7, "RG-006"), (8, None),
        (9, "RG-007")]
    reasons = [r["reason"] for r in rows]
    assert "unit" in reasons[0] and "mm" in reasons[0]
    assert "lon" in reasons[1] and "east" in reasons[1]
    assert "range" in reasons[2]
    assert "rain_gauge" in reasons[3]  # names the kinds to choose from
    assert "range_max" in reasons[4]
    assert "code" in reasons[5]
    assert "interval_s" in reasons[6]
    assert sensor_count() == 0  # the good first row was not kept either
    assert db.session.scalar(select(func.count(AuditEntry.seq)).where(
        AuditEntry.action == "sensor.create")) == 0


def test_bad_features_are_listed_by_number(client, editor, gateway):
    collection = {"type": "FeatureCollection", "features": [
        point("RG-001"),
        {"type": "Feature", "geometry": None, "properties": {"code": "RG-002"}},
        point("RG-003", lon=200),
        "not a feature",
    ]}
    answer = client.post("/api/v1/sensors/import", json=collection, headers=editor)
    assert answer.status_code == 422
    assert [(r["line"], r["code"]) for r in answer.json["rows"]] == [
        (2, "RG-002"), (3, "RG-003"), (4, None)]
    assert "Point" in answer.json["rows"][0]["reason"]
    assert sensor_count() == 0


def test_duplicate_codes_in_the_file_and_in_the_registry(client, editor, gateway):
    assert post_csv(client, editor, HEADER + "RG-001,,rain_gauge,mm,GW-1,109,33.1,,,,,\n"
                    ).status_code == 201
    text = (HEADER
            + "RG-002,,rain_gauge,mm,GW-1,109,33.1,,,,,\n"
            + "RG-001,,rain_gauge,mm,GW-1,109,33.1,,,,,\n"
            + "RG-002,,rain_gauge,mm,GW-1,109,33.1,,,,,\n")
    answer = post_csv(client, editor, text)
    assert answer.status_code == 422
    rows = answer.json["rows"]
    assert [(r["line"], r["code"]) for r in rows] == [(3, "RG-001"), (4, "RG-002")]
    assert "registered already" in rows[0]["reason"]
    assert "repeats line 2" in rows[1]["reason"]
    assert sensor_count() == 1


def test_unknown_gateway_village_and_hazard(client, editor, village):
    text = (HEADER
            + "RG-001,,rain_gauge,mm,GW-9,109,33.1,,,,,\n"
            + "RG-002,,rain_gauge,mm,GW-1,109,33.1,V99,,,,\n"
            + "RG-003,,rain_gauge,mm,GW-1,109,33.1,,HZ-9,,,\n")
    rows = post_csv(client, editor, text).json["rows"]
    assert [r["line"] for r in rows] == [2, 3, 4]
    assert "GW-9" in rows[0]["reason"] and "gateway add" in rows[0]["reason"]
    assert "V99" in rows[1]["reason"]
    assert "HZ-9" in rows[2]["reason"]
    assert sensor_count() == 0


def test_whole_file_problems(client, editor, gateway):
    missing = post_csv(client, editor, "code,kind,unit\nRG-1,rain_gauge,mm\n")
    assert missing.status_code == 400 and missing.json["error"] == "bad_csv"
    assert "gateway" in missing.json["message"] and "lon" in missing.json["message"]
    typo = post_csv(client, editor, HEADER.replace("village", "vilage") + "")
    assert typo.status_code == 400 and "vilage" in typo.json["message"]
    assert post_csv(client, editor, HEADER).json["error"] == "empty"
    assert client.post("/api/v1/sensors/import", data=b"\xff\xfe,", headers={
        **editor, "Content-Type": "text/csv"}).json["error"] == "bad_encoding"
    assert client.post("/api/v1/sensors/import", json={"type": "Feature"},
                       headers=editor).json["error"] == "bad_geojson"
    assert client.post("/api/v1/sensors/import", data=b"{", headers={
        **editor, "Content-Type": "application/json"}).json["error"] == "bad_json"


def test_oversized_file(client, editor, gateway):
    row = "RG-001,,rain_gauge,mm,GW-1,109,33.1,,,,,\n"
    text = HEADER + row * (MAX_BYTES // len(row) + 1)
    raw = post_csv(client, editor, text)
    assert raw.status_code == 413 and raw.json["error"] == "too_large"
    assert "KiB" in raw.json["message"]
    upload = client.post("/api/v1/sensors/import", headers=editor, data={
        "file": (io.BytesIO(text.encode()), "sensors.csv")})
    assert upload.status_code == 413 and upload.json["error"] == "too_large"
    assert sensor_count() == 0


def test_wrong_content_type_or_no_file(client, editor, gateway):
    xml = client.post("/api/v1/sensors/import", data=b"<sensors/>",
                      headers={**editor, "Content-Type": "application/xml"})
    assert xml.status_code == 415 and xml.json["error"] == "unsupported_type"
    sheet = client.post("/api/v1/sensors/import", headers=editor, data={
        "file": (io.BytesIO(b"PK\x03\x04"), "sensors.xlsx",
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")})
    assert sheet.status_code == 415
    empty_form = client.post("/api/v1/sensors/import", headers=editor, data={"note": "x"})
    assert empty_form.status_code == 400 and empty_form.json["error"] == "no_file"


@pytest.mark.parametrize(("role", "status"), [
    ("commander", 201), ("dispatcher", 201), ("viewer", 403), ("team_leader", 403),
    ("keeper", 403)])
def test_roles(client, bearer, gateway, role, status):
    answer = post_csv(client, bearer(role), HEADER + "RG-001,,rain_gauge,mm,GW-1,109,33.1,,,,,\n")
    assert answer.status_code == status, answer.json


def test_signed_out_and_csrf(client, login, gateway):
    text = HEADER + "RG-001,,rain_gauge,mm,GW-1,109,33.1,,,,,\n"
    assert client.post("/api/v1/sensors/import", data=text,
                       content_type="text/csv").status_code == 401
    login("dispatcher")
    no_token = client.post("/api/v1/sensors/import", data=text, content_type="text/csv")
    assert no_token.status_code == 403 and no_token.json["error"] == "csrf_failed"
    assert sensor_count() == 0
