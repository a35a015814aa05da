"""The sensors page as the server renders it: who sees it and who gets the edit controls."""

import json
import re

import pytest

from dispatch.core import auth
from dispatch.core.db import db

# Pages, sockets and translations: no backend-specific SQL (conftest: any_backend).
pytestmark = pytest.mark.any_backend


@pytest.fixture
def gateways(app):
    with db.transaction() as s:
        auth.create_gateway(s, "GW-2", actor="test", mqtt_hash=str)
        auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)


def config_of(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="sensors-config">(.*?)</script>',
                      html, re.S)
    return json.loads(block.group(1))


@pytest.mark.parametrize("role", ["commander", "dispatcher"])
def test_editors_get_the_forms(client, login, gateways, role):
    login(role)
    page = client.get("/sensors")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="sensor-dialog"' in html and 'id="import-dialog"' in html
    assert '<option value="GW-1">GW-1</option>' in html  # the register form's gateways
    config = config_of(html)
    assert config["canEdit"] is True
    assert config["kinds"]["rain_gauge"]["units"] == ["mm"]
    assert config["urls"]["import"] == "/api/v1/sensors/import"
    assert re.search(r'href="/sensors"\s+aria-current="page"', html)  # nav link, marked current


@pytest.mark.parametrize("role", ["viewer", "team_leader", "keeper"])
def test_other_people_only_read(client, login, gateways, role):
    login(role)
    html = client.get("/sensors").get_data(as_text=True)
    assert "sensor-dialog" not in html and "import-open" not in html
    assert config_of(html)["canEdit"] is False
    assert '<html lang="zh-CN">' in html  # Chinese first
    assert "雨量计" in html  # the kinds' labels, translated (filter choices)


def test_signed_out_goes_to_the_login(client):
    answer = client.get("/sensors")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
