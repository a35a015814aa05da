"""The team board and the members on the live map, in a real browser against a real
`rescuehub run` with the demo team (one hub for the module): a phone reporting as Traccar
Client / OsmAnd over HTTP moves its member's row on the board and its dot on the map while the
pages are open; the board shows who is on shift now, status, last fix, an age that ticks and the
battery; the map's dot is coloured by status, fades with age, and opens a popup with skills and
phone. A member named with an HTML payload stays text, under the page's policy.

Screenshots: tests/artifacts/roster-board-*.png, tests/artifacts/members-map.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_hostile_names import nothing_ran, watch
from tests.browser.test_live_indicator import sign_in_as, sign_in_first_time
from tests.browser.test_map import api_client, load_township
from tests.browser.test_roster_pages import (
    HOSTILE,
    XSS,
    add_member,
    add_phone,
    check_tablet,
    coverage,
    report,
    township_point,
)
from tests.fixtures.hub import start_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO_MEMBERS = 61


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One running hub for the module, with the demo township and its team."""
    data_dir = tmp_path_factory.mktemp("team-board") / "var"
    data_dir.mkdir()
    running = start_hub(data_dir)
    if running.process.poll() is not None:
        pytest.fail(f"rescuehub run exited early:\n{running.output()}")
    load_township(running)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def team(hub):
    """The squad on shift now with a hostile-named member in it, and phones: the hostile
    member's (a fresh fix) and a member's of the other squad (a fix three hours old)."""
    api = api_client(hub, "board-commander", "commander")
    shifts = coverage(hub, api)
    squad = shifts[0]["squad"]
    add_member(hub, api, HOSTILE, XSS, squad, phone="13900001234",
               skills=[{"skill": "first_aid", "level": 2, "expires": "2031-01-01"}])
    crew = api.get(hub.url + "/api/v1/rota", timeout=10, params={
        "from": shifts[0]["start"], "to": shifts[0]["end"]}).json()["shifts"][0]["members"]
    other = next(m for m in api.get(hub.url + "/api/v1/members", timeout=10).json()["items"]
                 if m["squad"] and m["squad"] != squad)
    lon, lat = township_point(hub, api)
    phones = {HOSTILE: add_phone(hub, HOSTILE), other["code"]: add_phone(hub, other["code"])}
    report(hub, phones[HOSTILE], lon, lat, ago_s=120, battery=55)
    report(hub, phones[other["code"]], lon + 0.01, lat, ago_s=3 * 3600, battery=90)
    return {"squad": squad, "crew": crew, "other": other, "phones": phones,
            "at": (lon, lat)}


def test_the_team_board_updates_live(hub, page, artifacts, team):
    assert hub.commander_password, hub.output()
    console = watch(page)
    sign_in_first_time(page, hub)
    page.goto(hub.url + "/roster/board")
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    board = page.locator("#board")
    expect(board).to_have_attribute("data-state", "ready")
    expect(board).to_have_attribute("data-count", str(len(team["crew"])))
    expect(page.locator("#board-shift")).to_contain_text(f"{team['squad']} 班组当班")
    row = board.locator(f'tr[data-code="{HOSTILE}"]')
    expect(row.locator(".member-name")).to_have_text(XSS)
    expect(row.locator(".battery")).to_have_text("55 %")
    expect(row.locator('[data-field="age"]')).to_have_text(re.compile(r"^2 分钟前$"))
    expect(row).to_have_attribute("data-age", "fresh")
    # The other squad's member is not on shift: only with the whole team.
    other = board.locator(f'tr[data-code="{team["other"]["code"]}"]')
    expect(other).to_have_count(0)
    check_tablet(page, artifacts, "board")

    # The phone reports while the board is open: the row changes at once, battery low.
    lon, lat = team["at"]
    report(hub, team["phones"][HOSTILE], lon + 0.001, lat + 0.001, ago_s=12, battery=15)
    expect(board).to_have_attribute("data-updates", "1")
    expect(row.locator(".battery")).to_have_text("15 %")
    expect(row.locator(".battery")).to_have_attribute("data-low", "true")
    age = row.locator('[data-field="age"]')
    expect(age).to_have_text(re.compile(r"^\d+ 秒前$"))
    # The age ticks on by itself (every second).
    first = age.text_content()
    expect(age).not_to_have_text(first, timeout=5_000)

    # The whole team: everyone, the old fix marked stale.
    page.get_by_role("button", name="全体队员").click()
    expect(board).to_have_attribute("data-count", str(DEMO_MEMBERS + 1))
    expect(other).to_have_attribute("data-age", "stale")
    expect(other.locator('[data-field="age"]')).to_have_text("3 小时前")
    nothing_ran(page, console)


def test_members_on_the_live_map(hub, page, artifacts, team):
    console = watch(page)
    sign_in_as(page, hub, "map-viewer", "viewer")
    page.goto(hub.url + "/map")
    expect(page.locator("#map")).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    expect(page.locator(".leaflet-control-layers")).to_contain_text("队员")
    expect(page.locator('.lg-section[data-layer="members"]')).to_contain_text("在岗备勤休息请假出勤中")
    pane = page.locator(".leaflet-members-pane")
    expect(pane).to_have_attribute("data-count", "2")
    dot = pane.locator(f'path[data-member="{HOSTILE}"]')
    expect(dot).to_have_count(1)
    stale = pane.locator(f'path[data-member="{team["other"]["code"]}"]')
    expect(stale).to_have_attribute("data-age", "stale")
    assert float(stale.get_attribute("fill-opacity")) < float(dot.get_attribute("fill-opacity"))

    # A fix moves the dot while the map is open.
    before = dot.bounding_box()
    lon, lat = team["at"]
    report(hub, team["phones"][HOSTILE], lon + 0.004, lat + 0.003, ago_s=0, battery=40)
    expect(page.locator(".map-status")).to_contain_text("位置更新")
    after = dot.bounding_box()
    assert (after["x"], after["y"]) != (before["x"], before["y"])
    expect(dot).to_have_attribute("data-age", "fresh")

    # Its popup: name, status, phone and skills, all as text.
    dot.click(force=True)
    popup = page.locator(".member-popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".fp-name")).to_have_text(XSS)
    expect(popup).to_contain_text("13900001234")
    expect(popup.locator('.mp-skill[data-skill="first_aid"]')).to_have_text("应急救护")
    expect(popup).to_contain_text("40 %")
    page.screenshot(path=str(artifacts / "members-map.png"))
    nothing_ran(page, console)
