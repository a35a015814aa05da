"""The live map in a real browser against a real `rescuehub run`: the demo township drawn from the
layer API, a village's popup, and a shelter closed through the API arriving live on the page."""

from __future__ import annotations

import math
import re

import pytest
import requests
from playwright.sync_api import expect
from shapely.geometry import Point, shape
from shapely.ops import unary_union

from tests.browser.test_live_indicator import sign_in_first_time

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Screen areas the map's controls cover (layer switcher top right, legend bottom left, zoom and
# buttons top left), in CSS pixels from the map's edges: never click a feature there.
CLEAR_LEFT, CLEAR_RIGHT, CLEAR_TOP, CLEAR_BOTTOM = 310, 230, 40, 40


def api_client(hub, name: str = "duty-dispatcher", role: str = "dispatcher") -> requests.Session:
    """Another person in the office, signed in to the API with a bearer token."""
    added = hub.command("user", "add", name, "--role", role)
    assert added.returncode == 0, added.stdout + added.stderr
    one_time = re.search(r"one-time password: (\S+)", added.stdout).group(1)
    password = "river-watch-2026-" + name
    changed = requests.post(hub.url + "/api/v1/auth/password", timeout=10, json={
        "username": name, "password": one_time, "new_password": password})
    assert changed.status_code == 200, changed.text
    token = requests.post(hub.url + "/api/v1/auth/token", timeout=10, json={
        "username": name, "password": password})
    assert token.status_code == 200, token.text
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + token.json()["token"]
    return session


def square(lon: float, lat: float, half: float) -> dict:
    """A GeoJSON square polygon around (lon, lat) (used by the other page tests too)."""
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def load_township(hub) -> None:
    """The demo township, as `make run` loads it (a failing generator fails the test)."""
    demo = hub.command("demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr


def features(hub, api: requests.Session, layer: str) -> list[dict]:
    answer = api.get(hub.url + f"/api/v1/layers/{layer}", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["features"]


def _mercator(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


class Screen:
    """Lon/lat to page pixels from the view the page reports (#map data-view) and its box."""

    def __init__(self, page):
        self.box = page.locator("#map").bounding_box()
        self.west, self.south, self.east, self.north = (
            float(v) for v in page.locator("#map").get_attribute("data-view").split(","))

    def pixel(self, lon: float, lat: float) -> tuple[float, float]:
        x = (lon - self.west) / (self.east - self.west) * self.box["width"]
        y = ((_mercator(self.north) - _mercator(lat))
             / (_mercator(self.north) - _mercator(self.south)) * self.box["height"])
        return self.box["x"] + x, self.box["y"] + y

    def clear(self, x: float, y: float) -> bool:
        b = self.box
        return (b["x"] + CLEAR_LEFT < x < b["x"] + b["width"] - CLEAR_RIGHT
                and b["y"] + CLEAR_TOP < y < b["y"] + b["height"] - CLEAR_BOTTOM)


def village_to_click(hub, api, screen: Screen) -> tuple[dict, tuple[float, float]]:
    """A village and a point inside it away from everything drawn above villages."""
    above = [shape(f["geometry"]).buffer(0.0008) for f in features(hub, api, "roads")]
    above += [shape(f["geometry"]).buffer(0.0008) for f in features(hub, api, "rivers")]
    above += [shape(f["geometry"]).buffer(0.0004) for f in features(hub, api, "hazards")]
    above += [shape(f["geometry"]).buffer(0.006) for f in features(hub, api, "shelters")]
    # Depot markers (the depots layer) are drawn above the stations a test places beside it.
    above += [shape(f["geometry"]).buffer(0.01) for f in features(hub, api, "depots")]
    covered = unary_union(above) if above else None
    centre = Point((screen.west + screen.east) / 2, (screen.south + screen.north) / 2)
    best = None
    for village in features(hub, api, "villages"):
        area = shape(village["geometry"]).buffer(-0.0008)
        if covered is not None:
            area = area.difference(covered)
        if area.is_empty or area.area < 1e-6:
            continue
        largest = max(getattr(area, "geoms", [area]), key=lambda g: g.area)
        spot = largest.representative_point()
        xy = screen.pixel(spot.x, spot.y)
        if not screen.clear(*xy):
            continue
        distance = spot.distance(centre)
        if best is None or distance < best[0]:
            best = (distance, village, xy)
    assert best, "no village has a clear spot to click on the screen"
    return best[1], best[2]


def shelter_to_click(hub, api, screen: Screen) -> dict:
    """An open shelter on screen whose circle no other shelter overlaps."""
    shelters = features(hub, api, "shelters")
    points = {s["id"]: shape(s["geometry"]) for s in shelters}
    candidates = []
    for s in shelters:
        if s["properties"]["status"] != "open":
            continue
        xy = screen.pixel(points[s["id"]].x, points[s["id"]].y)
        if not screen.clear(*xy):
            continue
        nearest = min((points[s["id"]].distance(p) for code, p in points.items()
                       if code != s["id"]), default=1.0)
        candidates.append((nearest, s))
    assert candidates, "no open shelter on the screen"
    return max(candidates, key=lambda c: c[0])[1]


def test_map_draws_the_township_and_follows_changes_live(hub, page, artifacts):
    assert hub.commander_password, hub.output()
    api = api_client(hub)
    load_township(hub)
    villages = features(hub, api, "villages")
    assert villages

    sign_in_first_time(page, hub)
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)  # home's own
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(hub.url + "/map")
    expect(page).to_have_title(re.compile("地图"))
    the_map = page.locator("#map")
    expect(the_map).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(the_map).to_have_attribute("data-count-villages", str(len(villages)))
    assert int(the_map.get_attribute("data-features-loaded")) >= len(villages)
    # The live channel is up, and the map shares the top bar's socket rather than opening another.
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    assert len([url for url in sockets if "/socket.io/" in url]) == 1, sockets

    # Layer switcher and legend, in Chinese; colours and kinds from the legend API.
    switcher = page.locator(".leaflet-control-layers")
    for name in ("村庄", "避难场所", "道路", "河流", "灾害隐患区"):
        expect(switcher).to_contain_text(name)
    legend = page.locator("#map-legend")
    expect(legend).to_contain_text("图例")
    for words in ("村庄人口", "开放", "已满", "关闭", "县道", "道路中断", "滑坡", "准备转移"):
        expect(legend).to_contain_text(words)

    # A village: click inside it, see its name and population.
    screen = Screen(page)
    village, (x, y) = village_to_click(hub, api, screen)
    page.mouse.click(x, y)
    village_popup = page.locator(".leaflet-popup-content .fp-villages")
    expect(village_popup).to_be_visible()
    props = village["properties"]
    expect(village_popup.locator(".fp-name")).to_have_text(props["name"])
    expect(village_popup.locator('[data-field="population"]')).to_contain_text("人口")
    expect(village_popup.locator('[data-field="population"] dd')).to_have_text(
        f"{props['population']:,}")
    page.keyboard.press("Escape")
    expect(village_popup).to_have_count(0)

    # A shelter: its circle carries its state; open its popup.
    shelter = shelter_to_click(hub, api, screen)
    code = shelter["id"]
    circle = page.locator(f'path[data-layer="shelters"][data-code="{code}"]')
    expect(circle).to_have_attribute("data-status", "open")
    open_fill = circle.get_attribute("fill")
    circle.click()
    shelter_popup = page.locator(".leaflet-popup-content .fp-shelters")
    expect(shelter_popup.locator(".fp-name")).to_have_text(shelter["properties"]["name"])
    expect(shelter_popup.locator('[data-field="status"] dd')).to_have_text("开放")
    expect(shelter_popup).to_contain_text("容量（日/夜）")

    # Someone else closes the shelter and a road: the page changes without reloading.
    page.evaluate("window.__sameDocument = true")
    answer = api.patch(hub.url + f"/api/v1/shelters/{code}", json={"status": "closed"},
                       timeout=10)
    assert answer.status_code == 200, answer.text
    expect(circle).to_have_attribute("data-status", "closed", timeout=10_000)
    closed_fill = circle.get_attribute("fill")
    assert closed_fill.lower() == "#c62828" and closed_fill != open_fill
    expect(shelter_popup.locator('[data-field="status"] dd')).to_have_text("关闭")
    expect(the_map).to_have_attribute("data-last-change", f"shelters:{code}:update")
    expect(page.locator(".map-status")).to_contain_text("实时更新")

    roads = [r for r in features(hub, api, "roads") if r["properties"]["road_class"] == "county"]
    if roads:
        road = roads[len(roads) // 2]["id"]
        answer = api.patch(hub.url + f"/api/v1/roads/{road}",
                           json={"is_open": False, "closed_reason": "塌方"}, timeout=10)
        assert answer.status_code == 200, answer.text
        expect(the_map).to_have_attribute("data-last-change", f"roads:{road}:update")
    assert page.evaluate("window.__sameDocument") is True

    page.screenshot(path=str(artifacts / "map.png"))

    # English: the same map with English words.
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(the_map).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#map-legend")).to_contain_text("Village population")
    expect(page.locator(".leaflet-control-layers")).to_contain_text("Shelters")
    expect(page.locator(f'path[data-code="{code}"]')).to_have_attribute("data-status", "closed")
    assert page.errors == []
