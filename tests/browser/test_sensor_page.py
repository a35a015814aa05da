"""The sensor page and the map's station popup in a real browser against a real `rescuehub run`:
a rain gauge's reports (one suspect, one gap) as bars with a cumulative line, the 1 h sum with its
completeness, a new reading arriving live, and the map popup's sparkline and Details link."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.test_live_indicator import sign_in_first_time
from tests.browser.test_map import api_client
from tests.maps.test_layers import square

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CODE = "RG-T01"
INTERVAL_S = 300
SKIPPED = {11, 12, 13}  # reports never sent: 15 minutes of missing time, 55-70 min ago
SUSPECT_AT = 5  # 45 mm in one report is beyond the gauge's plausible 40 mm: suspect


def add_gateway(hub, code: str) -> str:
    added = hub.command("gateway", "add", code)
    assert added.returncode == 0, added.stdout + added.stderr
    return re.search(r"Authorization: Bearer (\S+)", added.stdout).group(1)


def post(hub, token: str, body: dict) -> dict:
    answer = requests.post(hub.url + "/api/v1/readings", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def stamp(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def labels(page, block: str) -> dict:
    """The words the page's module shows (its JSON block), in the page's language."""
    return page.evaluate(f"JSON.parse(document.getElementById('{block}').textContent).labels")


def test_rain_gauge_page_and_map_popup(hub, page):
    assert hub.commander_password, hub.output()
    api = api_client(hub)
    village = {"type": "Feature", "geometry": square(109.05, 33.15, 0.02),
               "properties": {"code": "TV01", "name_zh": "石板沟", "population": 900}}
    assert api.post(hub.url + "/api/v1/villages", json=village, timeout=10).status_code == 201
    token = add_gateway(hub, "GW-T1")
    sensor = {"code": CODE, "name": "石板沟雨量站", "kind": "rain_gauge", "unit": "mm",
              "gateway": "GW-T1", "lon": 109.05, "lat": 33.15, "village": "TV01",
              "interval_s": INTERVAL_S}
    answer = api.post(hub.url + "/api/v1/sensors", json=sensor, timeout=10)
    assert answer.status_code == 201, answer.text

    # Two hours of 5-minute reports, oldest first, with a gap and one suspect report.
    now = datetime.now(UTC).replace(microsecond=0)
    values = {k: (45.0 if k == SUSPECT_AT else round(0.5 + 0.3 * (k % 6), 1))
              for k in range(24, 0, -1) if k not in SKIPPED}
    readings = [{"sensor": CODE, "ts": stamp(now - timedelta(seconds=k * INTERVAL_S)),
                 "value": v} for k, v in values.items()]
    stored = post(hub, token, {"readings": readings})
    assert stored["stored"] == len(values) and not stored["rejected"], stored
    hour_mm = sum(v for k, v in values.items() if k <= 10)

    sign_in_first_time(page, hub)
    page.goto(hub.url + f"/sensors/{CODE}")
    expect(page).to_have_title(re.compile("石板沟雨量站"))
    root = page.locator("#sensor")
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)
    words = labels(page, "sensor-config")
    expect(root).to_have_attribute("data-points", str(len(values)))
    plot = page.locator('svg.plot[data-plot="rain"]')
    expect(plot.locator("rect.bar")).to_have_count(len(values))
    expect(plot.locator("path.cumulative")).to_have_count(1)
    # The gap is drawn as a gap and breaks the cumulative line; no bar stands in it.
    expect(plot.locator('rect.gap[data-edge="inner"]')).to_have_count(1)
    expect(plot.locator("path.cumulative")).to_have_attribute("data-runs", "2")
    gap = plot.locator('rect.gap[data-edge="inner"]')
    gap_from = datetime.fromisoformat(gap.get_attribute("data-from").replace("Z", "+00:00"))
    gap_to = datetime.fromisoformat(gap.get_attribute("data-to").replace("Z", "+00:00"))
    assert gap_from == now - timedelta(seconds=14 * INTERVAL_S)
    assert gap_to == now - timedelta(seconds=11 * INTERVAL_S)
    # The suspect report: its bar and a marker say so.
    expect(plot.locator('rect.bar[data-flag="suspect"]')).to_have_count(1)
    expect(plot.locator('.flag-marker[data-flag="suspect"]')).to_have_count(1)
    expect(page.locator('#plot-legend [data-legend="suspect"]')).to_have_text(
        words["legend"]["suspect"])
    expect(page.locator('#plot-legend [data-legend="gap"]')).to_be_visible()

    # With no range chosen, the page opens on the rain event (2 h of rain, with a margin), not on
    # 24 h where it would fill an eighth of the chart.
    expect(root).to_have_attribute("data-range", "event")
    expect(page.locator('button.range[data-range="event"]')).to_have_attribute(
        "aria-pressed", "true")
    # The value axis reaches above the highest bar (the suspect 45 mm report).
    ticks = plot.locator('text.tick[text-anchor="end"]').all_text_contents()
    assert max(float(t.replace(",", "")) for t in ticks) >= 45, ticks

    # The 1 h sum: ten reports of five minutes, so 50 of 60 minutes observed (83 %).
    one_hour = page.locator('#sums [data-window="1h"]')
    expect(one_hour.locator(".mm")).to_have_text(f"{hour_mm:.1f} mm")
    expect(one_hour.locator(".observed")).to_contain_text("83%")
    expect(one_hour).to_have_class(re.compile("incomplete"))
    # Incomplete is said in grey words, not in a warning colour.
    assert one_hour.locator(".observed").evaluate("n => getComputedStyle(n).color") == \
        "rgb(90, 106, 126)"
    expect(page.locator("#last-value .flag")).to_have_attribute("data-flag", "good")
    expect(page.locator("#last-value .flag")).to_have_text(words["flags"]["good"])
    expect(page.locator("#sensor-status")).to_have_text(words["sensorStatus"]["reporting"])
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    page.screenshot(path="/tmp/sensordetail-zh.png", full_page=True)

    # A new report arrives: the plot grows and the sums follow, without reloading the page.
    page.evaluate("window.__sameDocument = true")
    latest = stamp(datetime.now(UTC).replace(microsecond=0))
    post(hub, token, {"sensor": CODE, "ts": latest, "value": 1.5})
    expect(root).to_have_attribute("data-last-reading", latest, timeout=15_000)
    expect(plot.locator("rect.bar")).to_have_count(len(values) + 1)
    expect(page.locator("#last-value .lv-number")).to_have_text("1.5")
    expect(one_hour.locator(".mm")).to_have_text(f"{hour_mm + 1.5:.1f} mm", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True

    # The 7-day range reads the hourly roll-ups; the choice is kept for the next page.
    week = page.locator('button.range[data-range="7d"]')
    week.click()
    expect(root).to_have_attribute("data-range", "7d")
    expect(week).to_have_attribute("aria-pressed", "true")
    expect(page.locator('svg.plot[data-plot="rain"]')).to_be_visible()

    # A gauge with no data: unknown ("—", "no data" in grey), never 0.0 mm or "no rain event".
    answer = api.post(hub.url + "/api/v1/sensors", timeout=10, json={
        **sensor, "code": "RG-T02", "name": "空站", "lon": 109.065, "lat": 33.165})
    assert answer.status_code == 201, answer.text
    page.goto(hub.url + "/sensors/RG-T02")
    expect(page.locator("#sums")).to_have_attribute("data-state", "ready", timeout=15_000)
    expect(root).to_have_attribute("data-range", "7d")  # the choice made above
    for key in ("1h", "3h", "6h", "24h"):
        window = page.locator(f'#sums [data-window="{key}"]')
        expect(window.locator(".mm")).to_have_text("—")
        expect(window.locator(".observed")).to_have_text(words["sums"]["noData"])
    expect(page.locator('#sums [data-field="event"] .mm')).to_have_text("—")
    expect(page.locator('#sums [data-field="event"]')).to_contain_text(
        words["sums"]["eventUnknown"])
    expect(page.locator("#sums")).not_to_contain_text("0.0 mm")
    expect(page.locator("#sums")).not_to_contain_text(words["sums"]["noEvent"])
    page.screenshot(path="/tmp/sensordetail-nodata.png", full_page=True)
    page.goto(hub.url + f"/sensors/{CODE}")
    expect(root).to_have_attribute("data-range", "7d")
    page.locator('button.range[data-range="24h"]').click()
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)

    # English.
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(page.locator('#sums [data-window="1h"] .observed')).to_contain_text(
        "of the window observed")
    expect(page.locator("#last-value .flag")).to_have_text("Good")
    page.screenshot(path="/tmp/sensordetail-en.png", full_page=True)

    # The map: the station's popup with its last value, flag, 6-hour sparkline and a link.
    page.get_by_role("link", name="中文").click()
    page.goto(hub.url + "/map")
    the_map = page.locator("#map")
    expect(the_map).to_have_attribute("data-state", "ready", timeout=30_000)
    words = labels(page, "map-config")["sensors"]
    marker = page.locator(f'path[data-layer="sensors"][data-code="{CODE}"]')
    expect(marker).to_have_attribute("data-flag", "good")
    marker.click()
    popup = page.locator(".leaflet-popup-content .fp-sensors")
    expect(popup.locator(".fp-name")).to_have_text("石板沟雨量站")
    expect(popup.locator('[data-field="value"] .fp-badge')).to_have_text(words["flags"]["good"])
    spark = popup.locator(".fp-spark svg.sparkline")
    expect(spark).to_have_attribute("data-points", str(len(values) + 1), timeout=15_000)
    expect(spark.locator('rect.spark-gap[data-edge="inner"]')).to_have_count(1)
    details = popup.locator("a.fp-details")
    expect(details).to_have_text(words["details"])
    expect(details).to_have_attribute("href", f"/sensors/{CODE}")
    page.screenshot(path="/tmp/sensordetail-map.png")

    # A suspect report arrives live: the marker and the open popup change their flag.
    suspect = stamp(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1))
    post(hub, token, {"sensor": CODE, "ts": suspect, "value": 48.0})
    expect(marker).to_have_attribute("data-flag", "suspect", timeout=15_000)
    expect(popup.locator('[data-field="value"] .fp-badge')).to_have_text(
        words["flags"]["suspect"])
    expect(spark).to_have_attribute("data-points", str(len(values) + 2))
    details.click()
    expect(page).to_have_url(hub.url + f"/sensors/{CODE}")
    expect(page.locator("#last-value .flag")).to_have_attribute("data-flag", "suspect")
    assert page.errors == []


def test_displacement_forecast_and_a_water_level_line(hub, page):
    """A crack meter opening faster and faster: displacement and velocity plots, and the
    inverse-velocity failure forecast labelled as a forecast; a water level as a line."""
    assert hub.commander_password, hub.output()
    api = api_client(hub)
    token = add_gateway(hub, "GW-T2")
    for code, kind, unit, interval in (("CM-T01", "crack_meter", "mm", 600),
                                       ("WL-T01", "water_level", "m", 600)):
        answer = api.post(hub.url + "/api/v1/sensors", timeout=10, json={
            "code": code, "name": f"{code} 测站", "kind": kind, "unit": unit,
            "gateway": "GW-T2", "lon": 109.06, "lat": 33.16, "interval_s": interval})
        assert answer.status_code == 201, answer.text

    # Fukuzono's creep: 1/v falls linearly towards a failure 12 h after the last report, so
    # d(t) = d0 − (1/a)·ln((tf − t)/(tf − t0)) with a = 0.1 d/mm per day.
    now = datetime.now(UTC).replace(microsecond=0)
    failure = now + timedelta(hours=12)
    times = [now - timedelta(minutes=10 * k) for k in range(72, 0, -1) if k not in (30, 31, 32)]
    first = (failure - times[0]).total_seconds() / 86400
    crack = [{"sensor": "CM-T01", "ts": stamp(t), "value": round(
        100 - 10 * math.log((failure - t).total_seconds() / 86400 / first), 4)} for t in times]
    level = [{"sensor": "WL-T01", "ts": stamp(t), "value": round(2 + 0.4 * math.sin(i / 8), 3)}
             for i, t in enumerate(times)]
    stored = post(hub, token, {"readings": crack + level})
    assert stored["stored"] == 2 * len(times) and not stored["rejected"], stored

    sign_in_first_time(page, hub)
    page.goto(hub.url + "/sensors/CM-T01")
    root = page.locator("#sensor")
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)
    words = labels(page, "sensor-config")
    expect(root).to_have_attribute("data-points", str(len(times)))
    displacement = page.locator('svg.plot[data-plot="displacement"]')
    expect(displacement.locator("path.line")).to_have_attribute("data-runs", "2")
    expect(displacement.locator('rect.gap[data-edge="inner"]')).to_have_count(1)
    expect(page.locator('svg.plot[data-plot="velocity"] path.line')).to_have_count(1)
    forecast = page.locator("#sums .forecast")
    expect(forecast).to_have_attribute("data-forecast", "yes", timeout=15_000)
    expect(forecast.locator(".forecast-tag")).to_have_text(words["legend"]["forecast"])
    expect(forecast.locator(".forecast-time time")).not_to_be_empty()
    predicted = datetime.fromisoformat(
        forecast.locator(".forecast-time time").get_attribute("datetime"))
    assert abs((predicted - failure).total_seconds()) < 3 * 3600, (predicted, failure)
    expect(forecast.locator(".forecast-fit")).to_contain_text("r² = ")
    expect(page.locator('#sums [data-field="velocity"] dd')).to_contain_text("mm/d")
    # A forecast of failure is danger: red, with its time left and its trend; nothing green.
    expect(forecast).to_have_class(re.compile("forecast-danger"))
    assert forecast.evaluate("n => getComputedStyle(n).borderTopColor") == "rgb(198, 40, 40)"
    expect(forecast.locator(".forecast-left")).to_contain_text("小时")
    expect(forecast.locator(".forecast-trend")).to_contain_text("1/v")
    greens = page.evaluate("""[...document.querySelectorAll('#sensor *')].filter(n => {
        const s = getComputedStyle(n);
        return [s.color, s.backgroundColor].some(c => c === 'rgb(26, 127, 55)'
            || c === 'rgb(227, 244, 232)'); }).length""")
    assert greens == 0
    # 1/v with significant digits (~20 mm/d at the end: about 0.05 d/mm), never "0 d/mm".
    inverse = page.locator('#sums [data-field="inverse"] dd').inner_text()
    assert re.fullmatch(r"0\.0*[1-9]\d{0,2} d/mm", inverse), inverse
    page.screenshot(path="/tmp/sensordetail-crack.png", full_page=True)

    page.goto(hub.url + "/sensors/WL-T01")
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)
    value = page.locator('svg.plot[data-plot="value"]')
    expect(value.locator("path.line")).to_have_attribute("data-runs", "2")
    expect(page.locator('svg.plot[data-plot="velocity"]')).to_have_count(0)
    page.locator('button.range[data-range="6h"]').click()
    expect(root).to_have_attribute("data-range", "6h")
    expect(root).to_have_attribute("data-points", str(len([t for t in times
                                                            if t > now - timedelta(hours=6)])))
    page.screenshot(path="/tmp/sensordetail-level.png", full_page=True)
    assert page.errors == []
