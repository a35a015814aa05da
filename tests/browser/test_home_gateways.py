"""The office home page's sensor gateways against a real `rescuehub run`: each gateway's state
from GET /api/v1/gateways (online, offline with its reason, never reported), its battery and
sensors, a change arriving live from the gateway's MQTT status, and the dead-letter quota flag."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.test_live_indicator import sign_in_first_time
from tests.browser.test_map import api_client
from tests.fixtures.broker import MqttProbe

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def add_gateway(hub, code: str, name: str) -> MqttProbe:
    """Register a gateway and connect as it over MQTT (close it when done)."""
    added = hub.command("gateway", "add", code, "--name", name)
    assert added.returncode == 0, added.stdout + added.stderr
    password = re.search(r"password (\S+)", added.stdout).group(1)
    probe = MqttProbe("127.0.0.1", hub.mqtt_port, code, password, code)
    assert not probe.connect().is_failure
    return probe


def report(probe: MqttProbe, code: str, **status) -> None:
    """The gateway's retained status message (DESIGN §5)."""
    body = json.dumps({"ts": "2026-07-27T21:05:00+08:00", **status}).encode()
    assert not probe.publish(f"rescuehub/v1/status/{code}", body, retain=True).is_failure


def wait_for_api(api, hub, code: str, online) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        items = api.get(hub.url + "/api/v1/gateways", timeout=10).json()["items"]
        if any(g["code"] == code and g["online"] is online for g in items):
            return
        time.sleep(0.2)
    raise AssertionError(f"{code} never became online={online}: {items}")


def test_home_shows_gateways_and_follows_their_state_live(hub, page, artifacts):
    assert hub.commander_password, hub.output()
    api = api_client(hub)
    river = add_gateway(hub, "GW-A", "河口站")
    ridge = add_gateway(hub, "GW-B", "岭上站")
    added = hub.command("gateway", "add", "GW-C", "--name", "新装站")
    assert added.returncode == 0, added.stdout + added.stderr
    sensor = {"code": "RG-A01", "name": "河口雨量站", "kind": "rain_gauge", "unit": "mm",
              "gateway": "GW-A", "lon": 109.05, "lat": 33.15}
    assert api.post(hub.url + "/api/v1/sensors", json=sensor, timeout=10).status_code == 201
    try:
        report(river, "GW-A", online=True, battery_v=12.6)
        report(ridge, "GW-B", online=False)
        wait_for_api(api, hub, "GW-A", True)
        wait_for_api(api, hub, "GW-B", False)

        sign_in_first_time(page, hub)
        panel = page.locator("#gateways")
        expect(panel).to_have_attribute("data-state", "ready")
        expect(panel.locator("h2")).to_have_text("传感器网关")
        a, b, c = (panel.locator(f'tr[data-code="{code}"]') for code in ("GW-A", "GW-B", "GW-C"))
        expect(a).to_have_attribute("data-state", "online")
        expect(a.locator('[data-field="state"] .pill')).to_have_text("在线")
        expect(a.locator('[data-field="battery"]')).to_have_text("12.6 V")
        expect(a.locator('[data-field="sensors"]')).to_have_text("1")
        expect(a.locator('[data-field="last-seen"] time')).to_have_count(1)
        expect(a).to_contain_text("河口站")
        expect(b).to_have_attribute("data-state", "offline")
        expect(b.locator('[data-field="state"] .pill')).to_have_attribute("data-state", "down")
        expect(b.locator('[data-field="reason"]')).to_have_text("网关报告即将离线")
        expect(c).to_have_attribute("data-state", "unknown")
        expect(c.locator('[data-field="state"] .pill')).to_have_attribute("data-state", "unknown")
        expect(c.locator('[data-field="state"] .pill')).to_have_text("从未报告")
        expect(panel.locator('[data-field="summary"]')).to_have_text("3 个中 1 个在线")
        # Danger style for offline only: the pill of a never-heard gateway is grey.
        red = b.locator(".pill").evaluate("(n) => getComputedStyle(n).color")
        grey = c.locator(".pill").evaluate("(n) => getComputedStyle(n).color")
        assert red != grey
        page.screenshot(path=str(artifacts / "home-gateways.png"), full_page=True)

        # The river gateway goes offline: the row changes without a reload.
        expect(page.locator("#live")).to_have_attribute("data-state", "online", timeout=20_000)
        page.evaluate("window.__sameDocument = true")
        report(river, "GW-A", online=False)
        expect(a).to_have_attribute("data-state", "offline", timeout=10_000)
        expect(a.locator('[data-field="reason"]')).to_have_text("网关报告即将离线")
        expect(panel.locator('[data-field="summary"]')).to_have_text("3 个中 0 个在线")
        report(river, "GW-A", online=True, battery_v=12.4)
        expect(a).to_have_attribute("data-state", "online", timeout=10_000)
        assert page.evaluate("window.__sameDocument") is True
    finally:
        river.close()
        ridge.close()

    # A gateway over its dead-letter quota says so (the flag as the API gives it).
    def over_quota(route):
        answer = route.fetch()
        body = answer.json()
        for g in body["items"]:
            if g["code"] == "GW-C":
                g["dead_letters"] = {"over_quota": True, "dropped": 37, "dropped_since": None}
        route.fulfill(response=answer, json=body)

    page.route("**/api/v1/gateways", over_quota)
    page.reload()
    quota = panel.locator('tr[data-code="GW-C"] [data-field="over-quota"]')
    expect(quota).to_have_text("超出拒收数据配额 · 37 条被拒消息未保存")
    page.get_by_role("link", name="English").click()
    expect(panel.locator('tr[data-code="GW-B"] [data-field="reason"]')).to_have_text(
        "the gateway said it is going offline")
    expect(quota).to_have_text("Over its dead-letter quota · 37 rejected messages not kept")
    assert page.errors == []
