"""Names and payloads that are HTML stay text, and the pages keep their Content-Security-Policy,
in a real browser against a real `rescuehub run`: a dispatcher renames a village and a sensor to
an <img onerror> payload and a gateway sends it in a reading; the map (village name on hover, in
its label and popup, the station's popup), the sensor list, the sensor page and the dead-letter
office all show the characters and run nothing, with no CSP violation and everything working."""

from __future__ import annotations

import json
import math
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_dead_letters_page import add_gateway, send, ts
from tests.browser.test_live_indicator import sign_in_first_time
from tests.browser.test_map import Screen, api_client, load_township, village_to_click

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = '<img src=x onerror="window.__xss=1">'
SENSOR = "RG-X1"
# Collects CSP violations from the first script on every page (Playwright's init scripts are
# not subject to the page's policy).
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`));
"""


def watch(page) -> list[str]:
    """Console lines about the Content-Security-Policy (Chromium also logs every violation)."""
    page.add_init_script(WATCH_CSP)
    console = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text
            else None)
    return console


def lonlat(screen: Screen, x: float, y: float) -> tuple[float, float]:
    """The point under a page pixel (the inverse of Screen.pixel)."""
    b = screen.box
    lon = screen.west + (x - b["x"]) / b["width"] * (screen.east - screen.west)
    top, bottom = (math.log(math.tan(math.pi / 4 + math.radians(v) / 2))
                   for v in (screen.north, screen.south))
    merc = top - (y - b["y"]) / b["height"] * (top - bottom)
    return lon, math.degrees(2 * math.atan(math.exp(merc)) - math.pi / 2)


def nothing_ran(page, console: list[str]) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__csp") == []
    assert console == []
    assert page.errors == []


def test_hostile_names_stay_text_under_the_policy(hub, page, artifacts):
    assert hub.commander_password, hub.output()
    console = watch(page)
    api = api_client(hub)
    load_township(hub)
    gateway = add_gateway(hub, "GW-X")
    sign_in_first_time(page, hub)
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    nothing_ran(page, console)

    page.goto(hub.url + "/map")
    the_map = page.locator("#map")
    expect(the_map).to_have_attribute("data-state", "ready", timeout=30_000)
    screen = Screen(page)
    village, (x, y) = village_to_click(hub, api, screen)
    code = village["id"]

    # Renamed while the map is open: the live `layer` event brings the name in.
    answer = api.patch(hub.url + f"/api/v1/villages/{code}", json={"name_zh": XSS}, timeout=10)
    assert answer.status_code == 200, answer.text
    expect(the_map).to_have_attribute("data-last-change", f"villages:{code}:update")
    # The demo township fits at a zoom that draws village names on the map (permanent tooltips).
    label = page.locator(".leaflet-tooltip.village-label", has_text=XSS)
    expect(label).to_have_text(XSS)
    expect(label.locator("img")).to_have_count(0)
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content .fp-villages")
    expect(popup.locator(".fp-name")).to_have_text(XSS)
    nothing_ran(page, console)

    # A sensor with that name beside the spot clicked, and a reading that names it.
    lon, lat = lonlat(screen, x + 60, y)
    sensor = {"code": SENSOR, "name": XSS, "kind": "rain_gauge", "unit": "mm", "gateway": "GW-X",
              "lon": lon, "lat": lat, "village": code}
    answer = api.post(hub.url + "/api/v1/sensors", json=sensor, timeout=10)
    assert answer.status_code == 201, answer.text
    assert send(hub, gateway, {"sensor": SENSOR, "ts": ts(5), "value": 1.5}).status_code == 200
    assert send(hub, gateway, {"sensor": XSS, "ts": ts(5), "value": 1}).json()["rejected"]

    # From a fresh load: the names arrive in the layers, not in events.
    page.reload()
    expect(the_map).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    expect(label).to_have_text(XSS)
    switcher = page.locator(".leaflet-control-layers")

    def hide(*names: str) -> None:
        for name in names:
            switcher.locator("label", has_text=name).locator("input").uncheck()

    hide("避难场所", "道路", "河流", "灾害隐患区")  # nothing above the station or the village
    station = page.locator(f'path[data-layer="sensors"][data-code="{SENSOR}"]')
    expect(station).to_have_attribute("aria-label", re.compile(re.escape(XSS)))
    station.click()
    station_popup = page.locator(".leaflet-popup-content .fp-sensors")
    expect(station_popup.locator(".fp-name")).to_have_text(XSS)
    expect(station_popup.locator(".fp-spark")).to_have_attribute("data-state", "ready")
    expect(page.locator(".leaflet-popup")).to_have_css("opacity", "1")  # faded in
    page.screenshot(path=str(artifacts / "map-hostile-names.png"))
    page.keyboard.press("Escape")
    expect(station_popup).to_have_count(0)

    # Zoomed out, names are no longer drawn: they show on hover instead.
    spot = lonlat(screen, x, y)
    hide("监测站点")
    while float(the_map.get_attribute("data-zoom")) >= 12.5:
        zoom = the_map.get_attribute("data-zoom")
        page.get_by_role("button", name="缩小").click()
        expect(the_map).not_to_have_attribute("data-zoom", zoom)
    expect(page.locator(".leaflet-tooltip.village-label")).to_have_count(0)
    page.mouse.move(*Screen(page).pixel(*spot))
    hover = page.locator(".leaflet-tooltip.village-hover")
    expect(hover).to_have_text(XSS)
    expect(hover.locator("img")).to_have_count(0)
    nothing_ran(page, console)

    page.goto(hub.url + "/sensors")
    row = page.locator(f'#sensors tr[data-code="{SENSOR}"]')
    expect(row).to_contain_text(XSS)
    expect(row.locator("img")).to_have_count(0)
    nothing_ran(page, console)

    page.goto(hub.url + f"/sensors/{SENSOR}")
    expect(page.locator("#sensor")).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(page.locator(".sensor-name")).to_have_text(XSS)
    expect(page.locator("main img")).to_have_count(0)
    nothing_ran(page, console)

    page.goto(hub.url + "/dead-letters")
    expect(page.locator("#dl-list")).to_have_attribute("data-state", "ready")
    letter = page.locator("#dl-list > li", has_text="unknown_sensor")
    expect(letter.locator('[data-field="sensor"] dd')).to_have_text(XSS)
    expect(letter.locator(".dl-payload")).to_contain_text(json.dumps(XSS))  # JSON, as sent
    expect(letter.locator("img")).to_have_count(0)
    nothing_ran(page, console)

    # Defence in depth: markup that some future code did put in with innerHTML cannot run.
    page.evaluate(f"document.body.insertAdjacentHTML('beforeend', {json.dumps(XSS)})")
    expect(page.locator("body > img[src=x]")).to_have_count(1)
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__xss") is None
    assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))
