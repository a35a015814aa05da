"""The sensor registry: registration rules, changes with audit, retirement, the sensors layer."""

import json

import pytest
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from telemetry import demo as sensor_demo
from tests.conftest import demo_township


@pytest.fixture
def gateway(app):
    with db.transaction() as s:
        auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
        auth.create_gateway(s, "GW-2", actor="test", mqtt_hash=str)
    return "GW-1"


@pytest.fixture
def editor(bearer):
    return bearer("dispatcher")


def gauge(**extra):
    return {"code": "RG-001", "kind": "rain_gauge", "unit": "mm", "gateway": "GW-1",
            "lon": 109.05, "lat": 33.15, **extra}


def test_register_and_read(client, editor, gateway):
    response = client.post("/api/v1/sensors", json=gauge(interval_s=60), headers=editor)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["range"] == [0.0, 200.0] and body["interval_s"] == 60
    assert body["gateway"] == "GW-1" and body["last_flag"] is None
    items = client.get("/api/v1/sensors", headers=editor).json["items"]
    assert [i["code"] for i in items] == ["RG-001"]
    assert client.get("/api/v1/sensors?gateway=GW-2", headers=editor).json["items"] == []
    assert client.get("/api/v1/sensors/RG-001", headers=editor).json["kind"] == "rain_gauge"


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "thermometer"}, "kind"),
    ({"unit": "cm"}, "unit"),
    ({"gateway": "GW-NOPE"}, "gateway"),
    ({"lon": 200}, "lon"),
    ({"lat": "33"}, "lat"),
    ({"lat": True}, "lat"),
    ({"range": [10, 5]}, "range"),
    ({"range": [0]}, "range"),
    ({"code": "RG/001"}, "code"),
    ({"code": ""}, "code"),
    ({"interval_s": 0}, "interval_s"),
    ({"village": "NO-SUCH"}, "village"),
])
def test_bad_registrations_name_the_field(client, editor, gateway, change, field):
    body = gauge(**change)
    response = client.post("/api/v1/sensors", data=json.dumps(body, allow_nan=True),
                           headers={**editor, "Content-Type": "application/json"})
    assert response.status_code == 400, response.json
    assert response.json.get("field") == field or field in response.json["message"]


def test_registry_errors_speak_the_language_of_the_request(client, editor, gateway):
    bad = client.post("/api/v1/sensors", json=gauge(lon=200), headers=editor).json
    assert bad == {"error": "bad_field", "field": "lon", "message": "lon：必须在 -180 到 180 之间"}
    client.get("/lang/en")
    bad = client.post("/api/v1/sensors", json=gauge(unit="cm"), headers=editor).json
    assert bad["message"] == "unit: must be mm for this kind of sensor (Rain gauge)"
    missing = client.get("/api/v1/sensors/NOPE", headers=editor).json
    assert missing["message"] == "There is no sensor with the code NOPE."
    letters = client.get("/api/v1/dead-letters?resolved=2", headers=editor).json
    assert (letters["error"], letters["parameter"]) == ("bad_parameter", "resolved")
    assert letters["message"] == "query parameter resolved: must be 0 or 1"


def test_duplicate_and_missing(client, editor, gateway):
    assert client.post("/api/v1/sensors", json=gauge(), headers=editor).status_code == 201
    assert client.post("/api/v1/sensors", json=gauge(), headers=editor).status_code == 409
    assert client.get("/api/v1/sensors/NOPE", headers=editor).status_code == 404
    assert client.post("/api/v1/sensors", data=b"[1,", headers={
        **editor, "Content-Type": "application/json"}).status_code == 400


def test_roles(client, bearer, gateway):
    viewer = bearer("viewer")
    assert client.post("/api/v1/sensors", json=gauge(), headers=viewer).status_code == 403
    assert client.get("/api/v1/sensors", headers=viewer).status_code == 200
    assert client.get("/api/v1/sensors").status_code == 401


def test_change_and_retire_are_audited_and_shown_on_the_layer(client, editor, gateway):
    client.post("/api/v1/sensors", json=gauge(), headers=editor)
    moved = client.patch("/api/v1/sensors/RG-001", json={"lon": 109.06, "lat": 33.16,
                                                         "name": "沟口雨量站"}, headers=editor)
    assert moved.status_code == 200 and moved.json["lon"] == 109.06
    layer = json.loads(client.get("/api/v1/layers/sensors", headers=editor).data)
    assert layer["features"][0]["properties"]["name"] == "沟口雨量站"
    assert layer["features"][0]["properties"]["last_flag"] == "missing"  # never heard from
    assert client.delete("/api/v1/sensors/RG-001", headers=editor).json["retired"] is True
    assert json.loads(client.get("/api/v1/layers/sensors", headers=editor).data)["features"] == []
    assert client.get("/api/v1/sensors", headers=editor).json["items"] == []
    assert len(client.get("/api/v1/sensors?retired=1", headers=editor).json["items"]) == 1
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_type == "sensor").order_by(AuditEntry.seq)).all()
    assert actions == ["sensor.create", "sensor.update", "sensor.update"]


def test_demo_sensors_sit_in_the_township():
    town = demo_township()
    sensors = sensor_demo.build_sensors(town)
    kinds = [s.kind for s in sensors]
    assert kinds.count("rain_gauge") == 30 and kinds.count("water_level") == 4
    assert 18 <= sum(k in {"crack_meter", "gnss", "tilt"} for k in kinds) <= 25
    assert len({s.code for s in sensors}) == len(sensors)
    assert {s.gateway for s in sensors} == set(sensor_demo.gateway_codes(town))
    from shapely.geometry import Point

    area = town.boundary.buffer(0.002)
    assert all(area.contains(Point(s.lon, s.lat)) for s in sensors)
    hazards = {h.code: h for h in town.hazards}
    for s in sensors:
        if s.hazard:
            assert hazards[s.hazard].geometry.buffer(0.001).contains(Point(s.lon, s.lat))
    assert sensor_demo.build_sensors(town) == sensors  # deterministic


def test_a_sensor_carries_its_gateways_state_so_a_reloaded_page_still_says_offline(
        client, editor, gateway):
    from dispatch.core.models import Gateway

    client.post("/api/v1/sensors", json=gauge(), headers=editor)
    assert client.get("/api/v1/sensors/RG-001", headers=editor).json["gateway_online"] is None
    with db.transaction() as s:
        row = s.scalar(select(Gateway).where(Gateway.code == "GW-1"))
        row.online, row.offline_reason = False, "reported"  # its last will arrived
    one = client.get("/api/v1/sensors/RG-001", headers=editor).json
    listed = client.get("/api/v1/sensors", headers=editor).json["items"][0]
    for body in (one, listed):
        assert body["gateway_online"] is False and body["gateway_offline_reason"] == "reported"
