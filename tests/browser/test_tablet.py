"""The office home and the map on a 10-inch tablet, landscape (1280x800) and portrait (800 px
wide), in both languages: nothing overlaps or scrolls sideways, the legend leaves the map to the
map, station dots take a finger, English pages use the pinyin names, Chinese has a real font."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_live_indicator import sign_in_first_time
from tests.browser.test_map import api_client, load_township, square

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LANDSCAPE = {"width": 1280, "height": 800}
PORTRAIT = {"width": 800, "height": 1280}
# The top bar's parts, none of which may overlap another or leave the screen.
TOPBAR_PARTS = [".brand-text", ".mainnav a", "#live", ".who", ".langs", ".signout button"]
CJK_FONTS = re.compile(r"CJK|Source Han|PingFang|YaHei|WenQuanYi|Hiragino", re.I)
# Minimum touch target (WCAG 2.5.5 asks 44 CSS px; the issue 40).
TOUCH_PX = 40


def boxes(page, selector: str) -> list[dict]:
    return [b for b in (node.bounding_box() for node in page.locator(selector).all()) if b]


def overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] - 0.5 and b["x"] < a["x"] + a["width"] - 0.5
            and a["y"] < b["y"] + b["height"] - 0.5 and b["y"] < a["y"] + a["height"] - 0.5)


def check_topbar(page, where: str) -> None:
    """No sideways scrolling; the brand, menu and status never overlap; all inside the screen."""
    # The badge's longest words ("connected, no events") must fit as well as "Live".
    # (The words of "Live" are swapped too, as the next event would put them back.)
    page.evaluate("""() => { const live = document.getElementById('live');
        live.dataset.labelOnline = live.dataset.labelQuiet;
        live.querySelector('.live-text').textContent = live.dataset.labelQuiet; }""")
    width = page.viewport_size["width"]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{where}: the page scrolls sideways ({scroll} > {width} px)"
    parts = [(selector, box) for selector in TOPBAR_PARTS for box in boxes(page, selector)]
    assert len(parts) >= len(TOPBAR_PARTS), (where, parts)
    for i, (name_a, a) in enumerate(parts):
        assert a["x"] >= 0 and a["x"] + a["width"] <= width + 0.5, f"{where}: {name_a} off {a}"
        for name_b, b in parts[i + 1:]:
            assert not overlap(a, b), f"{where}: {name_a} {a} overlaps {name_b} {b}"
    for link in boxes(page, ".mainnav a"):
        assert link["height"] >= TOUCH_PX, f"{where}: a menu link is {link['height']} px tall"


def platform_fonts(page, selector: str) -> list[str]:
    """The fonts the browser really drew an element's text with (DevTools protocol)."""
    # Chromium re-sends the document (new node ids) at DOMContentLoaded: ask after it, or a
    # page still loading its modules answers "could not find node".
    page.wait_for_load_state("load")
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return [f["familyName"] for f in fonts]


def test_home_and_map_fit_a_tablet_both_ways_in_both_languages(hub, page, artifacts):
    assert hub.commander_password, hub.output()
    load_township(hub)
    sign_in_first_time(page, hub)

    # Chinese text drawn with a CJK font, not boxes or a fallback that lacks the glyphs.
    fonts = platform_fonts(page, ".page-head h1")
    assert any(CJK_FONTS.search(f) for f in fonts), fonts

    for lang in ("zh", "en"):
        if lang == "en":
            page.get_by_role("link", name="English").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
        for size in (LANDSCAPE, PORTRAIT):
            where = f"{lang} {size['width']}x{size['height']}"
            page.set_viewport_size(size)
            page.goto(hub.url + "/")
            expect(page.locator("#gateways")).to_have_attribute("data-state", "ready")
            check_topbar(page, f"home {where}")
            page.screenshot(path=str(artifacts / f"tablet-home-{lang}-{size['width']}.png"),
                            full_page=True)

            page.evaluate("window.localStorage.clear()")
            page.goto(hub.url + "/map")
            expect(page.locator("#map")).to_have_attribute("data-state", "ready",
                                                           timeout=30_000)
            # The legend starts folded on a tablet: the map is what the tablet is for.
            legend = page.locator("#map-legend")
            toggle = legend.locator(".lg-toggle")
            expect(toggle).to_have_attribute("aria-expanded", "false")
            folded = legend.bounding_box()
            map_box = page.locator("#map").bounding_box()
            share = folded["width"] * folded["height"] / (map_box["width"] * map_box["height"])
            assert share < 0.02, f"map {where}: the folded legend covers {share:.1%}"
            assert folded["height"] >= TOUCH_PX
            page.screenshot(path=str(artifacts / f"tablet-map-{lang}-{size['width']}.png"))
            check_topbar(page, f"map {where}")
            toggle.click()
            expect(toggle).to_have_attribute("aria-expanded", "true")
            expect(legend.locator(".lg-body")).to_be_visible()
    # A person's choice is kept on this device.
    page.reload()
    expect(page.locator("#map-legend .lg-toggle")).to_have_attribute("aria-expanded", "true")
    assert page.errors == []


@pytest.fixture
def touch_page(browser):
    """A tablet with a touch screen, portrait, Chinese locale."""
    context = browser.new_context(viewport=PORTRAIT, locale="zh-CN", has_touch=True,
                                  is_mobile=False, timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()


def test_station_dots_take_a_finger_and_english_names_are_pinyin(hub, touch_page, artifacts):
    page = touch_page
    api = api_client(hub)
    village = {"type": "Feature", "geometry": square(109.05, 33.15, 0.02),
               "properties": {"code": "TV01", "name_zh": "石板沟", "name_pinyin": "Shibangou",
                              "population": 900}}
    assert api.post(hub.url + "/api/v1/villages", json=village, timeout=10).status_code == 201
    shelter = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.04, 33.14]},
               "properties": {"code": "TS01", "name_zh": "石板沟小学", "name_pinyin":
                              "Shibangou Xiaoxue", "kind": "school", "capacity_day": 300}}
    assert api.post(hub.url + "/api/v1/shelters", json=shelter, timeout=10).status_code == 201
    added = hub.command("gateway", "add", "GW-T1")
    assert added.returncode == 0, added.stdout + added.stderr
    sensor = {"code": "RG-T01", "name": "石板沟雨量站", "kind": "rain_gauge", "unit": "mm",
              "gateway": "GW-T1", "lon": 109.055, "lat": 33.155, "village": "TV01"}
    assert api.post(hub.url + "/api/v1/sensors", json=sensor, timeout=10).status_code == 201

    sign_in_first_time(page, hub)
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(hub.url + "/map")
    expect(page.locator("#map")).to_have_attribute("data-state", "ready", timeout=30_000)

    # A station dot is 12 px; an invisible circle of at least 40 px around it takes the tap.
    dot = page.locator('path[data-layer="sensors"][data-code="RG-T01"]')
    target = page.locator('path[data-hit-for="sensors"][data-hit-code="RG-T01"]')
    box, hit = dot.bounding_box(), target.bounding_box()
    assert box["width"] < TOUCH_PX  # the finding: the dot itself is small
    assert hit["width"] >= TOUCH_PX and hit["height"] >= TOUCH_PX, hit
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.touchscreen.tap(cx + 15, cy + 6)  # a finger beside the dot, not on it
    station = page.locator(".leaflet-popup-content .fp-sensors")
    expect(station).to_be_visible()
    expect(station).to_have_attribute("data-code", "RG-T01")
    page.screenshot(path=str(artifacts / "tablet-station-tap.png"))
    page.locator(".leaflet-popup-close-button").tap()
    expect(station).to_have_count(0)

    # English pages name villages and shelters in pinyin; the Chinese name stays beside it.
    page.get_by_role("button", name="Whole township").tap()
    m = page.locator("#map").bounding_box()
    page.touchscreen.tap(m["x"] + m["width"] / 2 - 60, m["y"] + m["height"] / 2 - 80)
    popup = page.locator(".leaflet-popup-content .fp-villages")
    expect(popup.locator(".fp-name")).to_have_text("Shibangou")
    expect(popup.locator(".fp-sub")).to_contain_text("石板沟")
    page.locator(".leaflet-popup-close-button").tap()
    page.get_by_role("button", name="Whole township").tap()  # back from the popup's panning
    circle = page.locator('path[data-layer="shelters"][data-code="TS01"]')
    expect(circle).to_have_attribute("aria-label", re.compile(r"^Shibangou Xiaoxue"))
    circle.tap()
    shelter_popup = page.locator(".leaflet-popup-content .fp-shelters")
    expect(shelter_popup.locator(".fp-name")).to_have_text("Shibangou Xiaoxue")
    expect(shelter_popup.locator(".fp-sub")).to_contain_text("石板沟小学")
    assert page.errors == []
