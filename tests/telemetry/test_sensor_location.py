"""Registration checks of telemetry.service: a location far outside the township is refused
unless confirmed (with the distance, in the request's language), and errors name records in
words, not by the API's field names."""

import pytest

from dispatch.core import auth
from dispatch.core.db import db
from tests.maps.test_layers import village


@pytest.fixture
def gateway(app):
    with db.transaction() as s:
        auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
    return "GW-1"


@pytest.fixture
def editor(bearer):
    return bearer("dispatcher")


@pytest.fixture
def township(client, editor):
    """Two villages around (109.05, 33.15): the township's extent."""
    for code, lon, lat in (("V1", 109.00, 33.10), ("V2", 109.10, 33.20)):
        answer = client.post("/api/v1/villages", json=village(code, lon, lat), headers=editor)
        assert answer.status_code == 201, answer.json


def gauge(**extra):
    return {"code": "RG-001", "kind": "rain_gauge", "unit": "mm", "gateway": "GW-1",
            "lon": 109.05, "lat": 33.15, **extra}


def test_a_location_far_outside_the_township_needs_a_confirmation(client, editor, gateway,
                                                                  township):
    # About 1,000 km east of the villages (a digit off in the longitude).
    client.set_cookie("lang", "en")
    far = gauge(lon=119.05)
    answer = client.post("/api/v1/sensors", json=far, headers=editor)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "outside_township" and answer.json["field"] == "lon"
    assert answer.json["confirm"] == "confirm_outside"
    assert 890 < answer.json["distance_km"] < 920, answer.json  # ~926 km, less the margin
    assert f"{answer.json['distance_km']:,.0f} km" in answer.json["message"]
    assert client.get("/api/v1/sensors/RG-001", headers=editor).status_code == 404

    client.set_cookie("lang", "zh_Hans_CN")
    chinese = client.post("/api/v1/sensors", json=far, headers=editor)
    assert "乡镇范围" in chinese.json["message"], chinese.json
    client.set_cookie("lang", "en")

    answer = client.post("/api/v1/sensors", json={**far, "confirm_outside": True},
                         headers=editor)
    assert answer.status_code == 201, answer.json
    assert answer.json["lon"] == pytest.approx(119.05)

    # Moving it (PATCH) is checked the same way; within the margin is fine without a word.
    moved = client.patch("/api/v1/sensors/RG-001", json={"lon": 125.0, "lat": 33.15},
                         headers=editor)
    assert moved.status_code == 400 and moved.json["error"] == "outside_township"
    near = client.patch("/api/v1/sensors/RG-001", json={"lon": 109.25, "lat": 33.15},
                        headers=editor)
    assert near.status_code == 200, near.json
    bad = client.post("/api/v1/sensors", json={**gauge(code="RG-002"),
                                               "confirm_outside": "yes"}, headers=editor)
    assert bad.status_code == 400 and bad.json["field"] == "confirm_outside"


def test_without_villages_any_location_is_accepted(client, editor, gateway):
    answer = client.post("/api/v1/sensors", json=gauge(lon=119.05), headers=editor)
    assert answer.status_code == 201, answer.json


def test_errors_name_records_in_words(client, editor, gateway):
    client.set_cookie("lang", "en")
    answer = client.post("/api/v1/sensors", json=gauge(village="NO-SUCH", hazard=None),
                         headers=editor)
    assert answer.json["field"] == "village"
    assert "no village has the code NO-SUCH" in answer.json["message"]
    answer = client.post("/api/v1/sensors", json=gauge(hazard="NO-SUCH"), headers=editor)
    assert "no hazard zone has the code NO-SUCH" in answer.json["message"]
    answer = client.post("/api/v1/sensors", json=gauge(unit="m"), headers=editor)
    assert "rain_gauge" not in answer.json["message"], answer.json
