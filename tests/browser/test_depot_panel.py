"""The depot's readiness as the office sees it, in a real browser against a real `rescuehub run`
with the demo township and its depot (one hub for the module): the readiness panel on the office
home page (per site and category, boats first, problems marked) and the depots layer of the live
map with its popup; a keeper's check-out through the API (POST /api/v1/depot/checkouts) changes
both while they are open, without a reload. A depot site named with an HTML payload stays text,
under the page's policy.

Screenshots: tests/artifacts/depot-home-{landscape,portrait}.png,
tests/artifacts/depot-map-{landscape,portrait}.png.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_hostile_names import nothing_ran, watch
from tests.browser.test_live_indicator import sign_in_as
from tests.browser.test_map import api_client, load_township
from tests.browser.test_roster_pages import LANDSCAPE, PORTRAIT, XSS
from tests.fixtures.hub import start_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MAIN = "T000-D1"  # the demo township's main depot (depot/demo.py)
FORWARD = "T000-D2"  # its riverside forward store
HOSTILE = "X1"
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One running hub for the module, with the demo township and its depot."""
    data_dir = tmp_path_factory.mktemp("depot-panel") / "var"
    data_dir.mkdir()
    running = start_hub(data_dir)
    if running.process.poll() is not None:
        pytest.fail(f"rescuehub run exited early:\n{running.output()}")
    load_township(running)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keeper(hub):
    """A keeper signed in to the API, and a hostile-named site with a boat near the main depot."""
    api = api_client(hub, "depot-keeper", "keeper")
    site = api.get(hub.url + "/api/v1/depot/sites", timeout=10).json()["items"]
    main = next(s for s in site if s["code"] == MAIN)
    for path, body in (
            ("/api/v1/depot/sites", {"code": HOSTILE, "name": XSS, "lon": main["lon"] + 0.02,
                                     "lat": main["lat"] + 0.01, "keeper": XSS, "phone": ""}),
            ("/api/v1/depot/bins", {"path": f"{HOSTILE}/A/1"})):
        answer = api.post(hub.url + path, json=body, timeout=10)
        assert answer.status_code == 201, answer.text
    return api


def boats(hub, api, site: str) -> dict[str, int]:
    """The site's boats as the readiness endpoint counts them."""
    items = api.get(hub.url + "/api/v1/depot/readiness", params={"site": site,
                    "category": "boat"}, timeout=10).json()["items"]
    assert items, f"the demo depot {site} has no boats"
    return {k: sum(i[k] for i in items) for k in ("serviceable", "out", "repair", "total")}


def serviceable_boat(hub, api, site: str, skip: set[str]) -> str:
    """A boat at the site that may go out now (in stock, inspection and expiry not passed)."""
    today = datetime.now(ZONE).date()
    found = api.get(hub.url + "/api/v1/depot/items", params={
        "site": site, "category": "boat", "status": "in_stock", "limit": 500},
        timeout=10).json()["items"]
    for item in found:
        due, expires = item.get("inspection_due"), item.get("expires")
        if item["code"] in skip or (due and date.fromisoformat(due) < today) or (
                expires and date.fromisoformat(expires) < today):
            continue
        return item["code"]
    raise AssertionError(f"no serviceable boat at {site}")


def check_out(hub, api, code: str) -> None:
    answer = api.post(hub.url + "/api/v1/depot/checkouts", json={
        "items": [code], "to": {"incident": "INC-FLOOD-1"}}, timeout=10)
    assert answer.status_code == 201, answer.text


def screenshots(page, artifacts, name: str) -> None:
    for label, size in (("landscape", LANDSCAPE), ("portrait", PORTRAIT)):
        page.set_viewport_size(size)
        page.wait_for_timeout(200)  # one layout after the resize
        sideways = page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert sideways <= 0, f"{name} {label}: scrolls sideways by {sideways}"
        page.screenshot(path=str(artifacts / f"{name}-{label}.png"), full_page=label ==
                        "portrait")
    page.set_viewport_size(LANDSCAPE)


def test_the_panel_and_the_map_follow_a_check_out(hub, browser, artifacts, keeper):
    context = browser.new_context(viewport=LANDSCAPE, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    home = context.new_page()
    home.errors = []
    home.on("pageerror", lambda exc: home.errors.append(str(exc)))
    asked = []
    home.on("request", lambda r: "/api/v1/depot/readiness" in r.url and asked.append(r.url))
    console = watch(home)
    sign_in_as(home, hub, "depot-viewer", "viewer")
    expect(home.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)

    # The panel: every site, boats first, the numbers of the readiness endpoint.
    panel = home.locator("#readiness")
    expect(panel).to_have_attribute("data-state", "ready")
    expect(panel).to_have_attribute("data-sites", "3")
    # Every site came in one answer, not a request per site.
    assert asked and all(url.endswith("?by=site") for url in asked), asked
    assert len(asked) == int(panel.get_attribute("data-loads"))
    main = panel.locator(f'tbody[data-site="{MAIN}"]')
    expect(main.locator("tr[data-category]").first).to_have_attribute("data-category", "boat")
    before = boats(hub, keeper, MAIN)
    boat_row = main.locator('tr[data-category="boat"]')
    expect(boat_row.locator('[data-field="serviceable"]')).to_have_text(
        str(before["serviceable"]))
    expect(boat_row.locator('[data-field="out"]')).to_have_text(str(before["out"]))
    expect(boat_row.locator("th")).to_contain_text("舟艇")
    expect(panel.locator('[data-field="boats"]')).to_contain_text("现可出动舟艇")
    # Problems are marked (the demo has overdue inspections and expired extinguishers).
    assert int(panel.get_attribute("data-problems")) > 0
    expect(panel.locator('td[data-problem="true"]').first).to_be_visible()
    # The hostile site's name is text.
    hostile = panel.locator(f'tbody[data-site="{HOSTILE}"] .rd-site-name')
    expect(hostile).to_have_text(XSS)
    expect(panel.locator(f'tbody[data-site="{HOSTILE}"] .rd-badge')).to_have_text("尚无物资")
    panel.screenshot(path=str(artifacts / "depot-panel-all.png"))
    # The category filter narrows the table to one category.
    panel.locator("#rd-category").select_option("boat")
    expect(panel.locator("tr[data-category]:not([data-category=boat])")).to_have_count(0)
    expect(boat_row).to_be_visible()
    panel.scroll_into_view_if_needed()
    screenshots(home, artifacts, "depot-home")

    # The map in a second tab: the depots layer, and the main depot's popup open.
    board = context.new_page()
    board.errors = []
    board.on("pageerror", lambda exc: board.errors.append(str(exc)))
    board_console = watch(board)
    board.goto(hub.url + "/map")
    expect(board.locator("#map")).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(board.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    expect(board.locator(".leaflet-control-layers")).to_contain_text("物资库")
    pane = board.locator(".leaflet-depots-pane")
    expect(pane).to_have_attribute("data-count", "3")
    mark = pane.locator(f'.depot-mark[data-site="{MAIN}"]')
    expect(mark).to_have_attribute("data-ready", str(before["serviceable"]))
    board.locator(f'.depot-mark[data-site="{HOSTILE}"]').click()
    popup = board.locator(f'.depot-popup[data-site="{HOSTILE}"]')
    expect(popup.locator(".fp-name")).to_have_text(XSS)
    expect(popup).to_contain_text("该物资库尚无物资")
    mark.click()
    popup = board.locator(f'.depot-popup[data-site="{MAIN}"]')
    expect(popup).to_be_visible()
    popup_boats = popup.locator('tr[data-category="boat"]')
    expect(popup.locator("tr[data-category]").first).to_have_attribute("data-category", "boat")
    expect(popup_boats.locator('[data-field="serviceable"]')).to_have_text(
        str(before["serviceable"]))
    screenshots(board, artifacts, "depot-map")
    loads = {"panel": panel.get_attribute("data-loads"), "map": pane.get_attribute("data-loads")}
    for tab in (home, board):
        tab.evaluate("window.__sameDocument = true")

    # A keeper checks a boat out through the API: both pages follow, no reload.
    check_out(hub, keeper, serviceable_boat(hub, keeper, MAIN, set()))
    after = boats(hub, keeper, MAIN)
    assert (after["serviceable"], after["out"]) == (before["serviceable"] - 1,
                                                    before["out"] + 1)
    expect(boat_row.locator('[data-field="serviceable"]')).to_have_text(
        str(after["serviceable"]))
    expect(boat_row.locator('[data-field="out"]')).to_have_text(str(after["out"]))
    expect(popup_boats.locator('[data-field="serviceable"]')).to_have_text(
        str(after["serviceable"]))
    expect(popup_boats.locator('[data-field="out"]')).to_have_text(str(after["out"]))
    expect(mark).to_have_attribute("data-ready", str(after["serviceable"]))
    expect(board.locator(".map-status")).to_contain_text("物资库更新")
    # Live, not reloaded: the same documents fetched again.
    assert int(panel.get_attribute("data-loads")) > int(loads["panel"])
    assert int(pane.get_attribute("data-loads")) > int(loads["map"])
    assert home.evaluate("window.__sameDocument") and board.evaluate("window.__sameDocument")
    board.screenshot(path=str(artifacts / "depot-map-after.png"))
    nothing_ran(home, console)
    nothing_ran(board, board_console)
    context.close()
