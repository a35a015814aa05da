"""The hazard zone's page in a real browser against a real `rescuehub run`: a zone with a rain gauge
in a 10-hour event (DESIGN §6 worked example: 30 mm, above Guzzetti 2008, below Caine 1980) and a
crack meter accelerating towards failure; the I–D chart shows both curves and the event point at
prepare, the inverse-velocity plot its forecast line labelled as a forecast with r² and points,
the velocity thresholds as lines, and the alerts the hub raised."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.test_live_indicator import sign_in_first_time
from tests.browser.test_map import api_client
from tests.browser.test_sensor_page import add_gateway, labels, post, stamp
from tests.maps.test_layers import square

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ZONE = "HZ-T1"
# Fukuzono: 1/v = A·τ (τ days before failure), so displacement x = X0 − ln(τ)/A.
A = 0.2
X0 = 10.0


def test_hazard_zone_page(hub, page, artifacts):
    assert hub.commander_password, hub.output()
    api = api_client(hub)
    zone = {"type": "Feature", "geometry": square(109.05, 33.15, 0.02),
            "properties": {"code": ZONE, "kind": "landslide", "name_zh": "后山滑坡",
                           "people": 120, "households": 35}}
    answer = api.post(hub.url + "/api/v1/hazards", json=zone, timeout=10)
    assert answer.status_code == 201, answer.text
    token = add_gateway(hub, "GW-HZ")
    for code, kind in (("RG-HZ", "rain_gauge"), ("CM-HZ", "crack_meter")):
        answer = api.post(hub.url + "/api/v1/sensors", timeout=10, json={
            "code": code, "kind": kind, "unit": "mm", "gateway": "GW-HZ", "lon": 109.06,
            "lat": 33.16, "hazard": ZONE, "interval_s": 300, "name": f"后山{code}"})
        assert answer.status_code == 201, answer.text
    table = {"prepare": {"alpha": 2.20, "beta": 0.44}, "evacuate": {"alpha": 14.82, "beta": 0.39},
             "min_duration_h": 1, "velocity_mm_d": {"attention": 5, "warning": 20, "alarm": 50},
             "agree": 1}
    answer = api.put(hub.url + f"/api/v1/hazards/{ZONE}/thresholds", json=table, timeout=10)
    assert answer.status_code == 200, answer.text

    # 30 mm over the last 10 hours; two days of a slope whose 1/v falls to zero in 12 hours.
    now = datetime.now(UTC).replace(microsecond=0)
    post(hub, token, {"readings": [{"sensor": "RG-HZ", "ts": stamp(now - timedelta(minutes=5 * k)),
                                    "value": 0.25} for k in range(119, -1, -1)]})
    failure = now + timedelta(hours=12)
    slope = []
    for k in range(96, -1, -1):
        ts = now - timedelta(minutes=30 * k)
        slope.append({"sensor": "CM-HZ", "ts": stamp(ts),
                      "value": round(X0 - math.log((failure - ts) / timedelta(days=1)) / A, 4)})
    post(hub, token, {"readings": slope})

    sign_in_first_time(page, hub)
    page.goto(hub.url + f"/hazards/{ZONE}")
    expect(page).to_have_title(re.compile("后山滑坡"))
    root = page.locator("#hazard")
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)
    words = labels(page, "hazard-config")

    # The I–D chart: both curves, the event point above Guzzetti's and below Caine's.
    chart = page.locator('svg[data-chart="id"]')
    expect(chart.locator("path.threshold-curve")).to_have_count(2)
    expect(chart.locator('path.threshold-curve[data-level="prepare"]')).to_have_attribute(
        "data-alpha", "2.2")
    expect(chart.locator('path.threshold-curve[data-level="evacuate"]')).to_have_attribute(
        "data-beta", "0.39")
    point = chart.locator('.event-point[data-gauge="RG-HZ"]')
    expect(point).to_have_count(1)
    expect(point).to_have_attribute("data-level", "prepare")
    expect(point).to_have_attribute("data-inside", "true")
    assert 10 <= float(point.get_attribute("data-duration")) < 10.2
    assert 2.9 < float(point.get_attribute("data-intensity")) <= 3.0
    expect(root).to_have_attribute("data-rain-level", "prepare")
    expect(page.locator("#rain-level")).to_have_text(words["level"]["prepare"])
    expect(page.locator('#gauges tr[data-gauge="RG-HZ"]')).to_contain_text("30.0 mm")
    expect(page.locator("#table-note")).to_be_hidden()

    # The inverse-velocity plot: measured 1/v, three threshold lines, the forecast line and its
    # label, which says it is a forecast and gives its fit.
    plot = page.locator('svg[data-chart="inverse-velocity"][data-sensor="CM-HZ"]')
    expect(plot.locator("path.inverse-line")).to_have_count(1)
    expect(plot.locator(".velocity-threshold")).to_have_count(3)
    expect(plot.locator("line.forecast-line")).to_have_count(1)
    label = plot.locator("text.forecast-label")
    expect(label).to_contain_text(words["slope"]["forecastLabel"])
    expect(label).to_contain_text(re.compile(r"r² = (0\.99|1\.00) · n = 12"))
    forecast_at = datetime.fromisoformat(
        plot.locator("line.forecast-line").get_attribute("data-failure"))
    assert abs(forecast_at - failure) < timedelta(hours=1)
    figure = page.locator('.slope-figure[data-sensor="CM-HZ"]')
    expect(figure.locator('.forecast-words[data-forecast="yes"]')).to_contain_text("r² = ")

    # The hub raised the zone's alerts from the same readings; the page lists them.
    alerts = page.locator("#alert-list .alert-item")
    expect(alerts).to_have_count(2, timeout=30_000)
    expect(page.locator('#alert-list [data-kind="landslide_rain"]')).to_have_attribute(
        "data-level", "prepare")
    expect(page.locator('#alert-list [data-kind="slope_movement"]')).to_have_attribute(
        "data-level", "attention")
    assert page.errors == []
    page.screenshot(path=str(artifacts / "hazard-page.png"), full_page=True)

    # A zone with no table, far from every gauge and with no sensor: the page says so.
    far = {"type": "Feature", "geometry": square(109.6, 33.6, 0.01),
           "properties": {"code": "HZ-T2", "kind": "debris_flow", "name_zh": "远沟"}}
    assert api.post(hub.url + "/api/v1/hazards", json=far, timeout=10).status_code == 201
    page.goto(hub.url + "/hazards/HZ-T2")
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(page.locator("#table-note")).to_be_visible()
    expect(page.locator('svg[data-chart="id"] path.threshold-curve')).to_have_count(2)
    expect(page.locator('svg[data-chart="id"] .event-point')).to_have_count(0)
    expect(page.locator("#rain-rule")).to_have_text(words["rule"]["noGauges"])
    expect(page.locator("#slope-note")).to_have_text(words["slope"]["noSensors"])
    expect(page.locator("#slope-level")).to_have_text(words["level"]["noThresholds"])
    expect(page.locator('#alert-list [data-empty="true"]')).to_have_text(words["alerts"]["none"])
    assert page.errors == []
    page.screenshot(path=str(artifacts / "hazard-page-empty.png"), full_page=True)

    # The map's hazard popup links here.
    page.goto(hub.url + "/map")
    urls = page.evaluate("JSON.parse(document.getElementById('map-config').textContent).urls")
    assert urls["hazardPage"].replace("CODE", ZONE) == f"/hazards/{ZONE}"
