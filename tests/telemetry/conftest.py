"""Fixtures shared by the telemetry tests."""

import pytest

from dispatch.core import auth
from dispatch.core.db import db
from telemetry import service


@pytest.fixture
def gateways(app):
    """Two gateways with a rain gauge each; returns their bearer headers."""
    headers = {}
    with db.transaction() as s:
        for code in ("GW-A", "GW-B"):
            _, _, token = auth.create_gateway(s, code, actor="test", mqtt_hash=str)
            headers[code] = {"Authorization": f"Bearer {token}"}
        for code, gw in (("RG-A", "GW-A"), ("RG-B", "GW-B")):
            service.register(s, {"code": code, "kind": "rain_gauge", "unit": "mm",
                                 "gateway": gw, "lon": 109.05, "lat": 33.15}, actor="test")
        service.register(s, {"code": "RG-OLD", "kind": "rain_gauge", "unit": "mm",
                             "gateway": "GW-A", "lon": 109.05, "lat": 33.15}, actor="test")
        service.retire(s, "RG-OLD", actor="test")
    return headers
