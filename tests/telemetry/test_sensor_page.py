"""The sensor page: open to every person role, a 404 page for an unknown code, and the JSON
block that hands the sensor, its URLs and its labels to telemetry/static/sensor.js."""

from __future__ import annotations

import json
import re

import pytest

from dispatch.core import auth
from dispatch.core.choices import PERSON_ROLES
from dispatch.core.db import db

# Pages, sockets and translations: no backend-specific SQL (conftest: any_backend).
pytestmark = pytest.mark.any_backend


@pytest.fixture
def gateway_token(app) -> str:
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
    return token


@pytest.fixture
def gauge(app, bearer, gateway_token):
    answer = app.test_client().post("/api/v1/sensors", headers=bearer("dispatcher"), json={
        "code": "RG-001", "name": "石板沟雨量站", "kind": "rain_gauge", "unit": "mm",
        "gateway": "GW-1", "lon": 109.05, "lat": 33.15, "interval_s": 300})
    assert answer.status_code == 201, answer.json
    return answer.json


def config_of(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="sensor-config">(.*?)</script>',
                      html, re.S)
    assert match, "no #sensor-config block"
    return json.loads(match.group(1))


@pytest.mark.parametrize("role", [str(r) for r in PERSON_ROLES])
def test_every_person_role_sees_the_page(client, login, gauge, role):
    login(role)
    response = client.get("/sensors/RG-001")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "石板沟雨量站" in html and "RG-001" in html
    assert 'data-kind="rain_gauge"' in html
    # No data yet: the flag says missing, in words and as a data attribute for the colour.
    assert 'class="flag" data-flag="missing"' in html
    assert "/static/telemetry/sensor.js" in html


def test_unknown_code_is_a_404_page(client, login, gauge):
    login("viewer")
    response = client.get("/sensors/NO-SUCH", headers={"Accept": "text/html"})
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert 'data-error="not_found"' in html and "NO-SUCH" in html


def test_signed_out_goes_to_sign_in_and_gateways_are_refused(client, gauge, bearer):
    response = client.get("/sensors/RG-001")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-2", actor="test", mqtt_hash=str)
    assert client.get("/sensors/RG-001",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_the_json_config_describes_the_sensor(client, login, gauge):
    login("commander")
    config = config_of(client.get("/sensors/RG-001").get_data(as_text=True))
    assert config["sensor"] == {
        "code": "RG-001", "name": "石板沟雨量站", "kind": "rain_gauge", "unit": "mm",
        "interval_s": 300, "gateway": "GW-1", "status": gauge["status"], "last_value": None,
        "last_ts": None, "last_flag": None, "gateway_online": None,
        "gateway_offline_reason": None}
    assert config["urls"] == {"sensor": "/api/v1/sensors/RG-001",
                              "readings": "/api/v1/sensors/RG-001/readings",
                              "hourly": "/api/v1/sensors/RG-001/hourly",
                              "sums": "/api/v1/sensors/RG-001/sums"}
    assert config["ranges"] == [["6h", 6, "readings"], ["24h", 24, "readings"],
                                ["3d", 72, "hourly"], ["7d", 168, "hourly"]]
    assert config["defaultRange"] == "24h"
    labels = config["labels"]
    assert set(labels["flags"]) == {"good", "suspect", "fail", "missing"}
    assert set(labels["sums"]["windows"]) == {"1h", "3h", "6h", "24h"}
    assert "{percent}" in labels["sums"]["observed"]
    # Every label is a non-empty string (a missing translation key would be an empty one).
    def leaves(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from leaves(value)
        else:
            yield node
    assert all(isinstance(v, str) and v for v in leaves(labels))


def test_the_page_shows_the_last_value_and_its_flag(client, login, gauge, gateway_token):
    from dispatch.core.db import utcnow

    gateway = {"Authorization": f"Bearer {gateway_token}"}
    ts = utcnow().replace(microsecond=0).isoformat()
    answer = client.post("/api/v1/readings", headers=gateway,
                         json={"sensor": "RG-001", "ts": ts, "value": 3.5})
    assert answer.status_code == 200 and answer.json["stored"] == 1, answer.json
    login("viewer")
    html = client.get("/sensors/RG-001").get_data(as_text=True)
    config = config_of(html)
    assert config["sensor"]["last_value"] == 3.5 and config["sensor"]["last_flag"] == "good"
    assert 'class="flag" data-flag="good"' in html and "3.5" in html


def test_chinese_labels(client, login, gauge):
    login("dispatcher")
    client.get("/lang/zh_Hans_CN")
    html = client.get("/sensors/RG-001").get_data(as_text=True)
    assert "雨量" in html  # the kind's label


def test_an_offline_gateway_shows_after_a_reload(app, client, login, gauge):
    """The gateway's stored state reaches the page (not only live events): offline, and why."""
    from dispatch.core.models import Gateway

    login("viewer")
    html = client.get("/sensors/RG-001").get_data(as_text=True)
    assert re.search(r'id="gateway-state"\s+hidden>', html), "shown for a gateway never heard"
    with db.transaction() as s:
        s.query(Gateway).filter_by(code="GW-1").update({"online": False,
                                                         "offline_reason": "silent"})
    html = client.get("/sensors/RG-001").get_data(as_text=True)
    config = config_of(html)
    assert config["sensor"]["gateway_online"] is False
    assert config["sensor"]["gateway_offline_reason"] == "silent"
    state = re.search(r'id="gateway-state"([^>]*)>([^<]*)<', html)
    assert "hidden" not in state.group(1) and state.group(2) == config["labels"][
        "gatewayOffline"]["silent"]


def test_english_pages_show_the_village_pinyin(client, login, bearer, gateway_token):
    from tests.maps.test_layers import village

    editor = bearer("dispatcher")
    place = village("V1", 109.04, 33.14, name_zh="石板沟", name_pinyin="Shibangou")
    assert client.post("/api/v1/villages", json=place, headers=editor).status_code == 201
    answer = client.post("/api/v1/sensors", headers=editor, json={
        "code": "RG-002", "kind": "rain_gauge", "unit": "mm", "gateway": "GW-1",
        "lon": 109.045, "lat": 33.145, "village": "V1"})
    assert answer.status_code == 201, answer.json
    login("viewer")
    client.set_cookie("lang", "en")
    assert "Shibangou" in client.get("/sensors/RG-002").get_data(as_text=True)
    client.set_cookie("lang", "zh_Hans_CN")
    html = client.get("/sensors/RG-002").get_data(as_text=True)
    assert "石板沟" in html and "Shibangou" not in html
