"""The office pages in a real browser against a real `rescuehub run`: first sign-in with the
one-time password, the home page going live over a websocket, reconnecting, and English."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.fixtures.hub import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the module's tests: each signs in as a commander of its own
    (`new_commander`) and adds data under codes of its own."""
    yield from serve(tmp_path_factory.mktemp("live") / "var")


def new_commander(hub) -> tuple[str, str]:
    """A commander who has never signed in, and the one-time password: the hub's first
    commander the first time, then (on a hub a module shares) one made by `rescuehub user add`."""
    before = hub.extra.get("commanders", 0)
    hub.extra["commanders"] = before + 1
    if before == 0:
        return "commander", hub.commander_password
    name = f"commander-{before + 1}"
    added = hub.command("user", "add", name, "--role", "commander")
    assert added.returncode == 0, added.stdout + added.stderr
    return name, re.search(r"one-time password: (\S+)", added.stdout).group(1)


def sign_in_first_time(page, hub) -> None:
    """From the hub's address through sign-in and the one-time password page to the home page."""
    name, one_time = new_commander(hub)
    page.goto(hub.url)
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)$"))
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码", exact=True).fill(one_time)
    page.get_by_role("button", name="登录", exact=True).click()

    expect(page).to_have_url(hub.url + "/password")
    expect(page.locator("#live")).to_have_count(0)  # no socket until the password is replaced
    new_password = "flood-watch-" + secrets.token_hex(6)
    page.get_by_label("当前密码").fill(one_time)
    page.get_by_label("新密码", exact=True).fill(new_password)
    page.get_by_label("再次输入新密码").fill(new_password)
    page.get_by_role("button", name="保存并继续").click()
    expect(page).to_have_url(hub.url + "/")


def test_office_home_goes_live_over_a_websocket(hub, page, artifacts):
    assert hub.commander_password, hub.output()
    websockets = []
    page.on("websocket", lambda ws: websockets.append(ws.url))

    sign_in_first_time(page, hub)

    live = page.locator("#live")
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    expect(live).to_have_text("实时")
    assert any("/socket.io/" in url and "transport=websocket" in url for url in websockets), (
        websockets)
    channel = page.locator("#live-channel")
    expect(channel.locator('[data-field="transport"]')).to_have_text("WebSocket")
    expect(channel.locator('[data-field="rooms"]')).to_have_text("应急办、乡镇")

    # The system status panel, filled from GET /readyz.
    status = page.locator("#system-status")
    for check in ("database", "mqtt", "live"):
        expect(status.locator(f'[data-check="{check}"] .pill')).to_have_attribute(
            "data-state", "up")
    expect(status.locator(".overall")).to_have_text("系统运行正常")
    expect(page.locator(".who-role")).to_have_text("指挥长")

    page.screenshot(path=str(artifacts / "office-home.png"), full_page=True)

    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#live[data-state=online]")).to_have_text("Live", timeout=20_000)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert page.errors == []


def test_indicator_follows_a_dropped_connection_and_the_reconnect(hub, page):
    sign_in_first_time(page, hub)
    live = page.locator("#live")
    expect(live).to_have_attribute("data-state", "online", timeout=20_000)
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url))

    page.context.set_offline(True)
    expect(live).to_have_attribute("data-state", "offline")
    expect(live).to_have_text("离线")
    expect(page.locator('#system-status [data-check="live"] .pill')).to_have_attribute(
        "data-state", "down")

    page.context.set_offline(False)
    expect(live).to_have_attribute("data-state", "online", timeout=20_000)
    expect(live).to_have_text("实时")
    expect(page.locator('#live-channel [data-field="reconnects"]')).to_have_text("1")
    assert any("transport=websocket" in url for url in opened), opened
    assert page.errors == []


def sign_in_as(page, hub, name: str, role: str) -> None:
    """A new user of `role` (made with `rescuehub user add`) signs in and replaces the one-time
    password; ends on the home page."""
    added = hub.command("user", "add", name, "--role", role)
    assert added.returncode == 0, added.stdout + added.stderr
    one_time = re.search(r"one-time password: (\S+)", added.stdout).group(1)
    page.goto(hub.url + "/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码", exact=True).fill(one_time)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(hub.url + "/password")
    new_password = "flood-watch-" + secrets.token_hex(6)
    page.get_by_label("当前密码").fill(one_time)
    page.get_by_label("新密码", exact=True).fill(new_password)
    page.get_by_label("再次输入新密码").fill(new_password)
    page.get_by_role("button", name="保存并继续").click()
    expect(page).to_have_url(hub.url + "/")


# Records every state the badge (and the home page's own live pill) shows, so a state that lasts
# only until the next heartbeat is seen however briefly it lasted.
RECORD_BADGE = """() => {
  window.__badge = [];
  const badge = document.getElementById("live");
  const pill = document.querySelector('#system-status [data-check="live"] .pill');
  const note = () => window.__badge.push({state: badge.dataset.state,
    text: badge.textContent.trim(), title: badge.title, pill: pill && pill.dataset.state,
    pillText: pill && pill.textContent.trim(), colour: getComputedStyle(badge).color});
  new MutationObserver(note).observe(badge, {attributes: true, childList: true, subtree: true,
                                             characterData: true});
}"""


def test_badge_is_grey_while_connected_without_events_and_live_when_they_arrive(hub, page):
    """Connected but silent for longer than the hub's 10 s heartbeat: grey "connected, no
    events", never green; the next hub_status makes it "Live" again."""
    page.clock.install()  # the page's timers: 30 s of silence pass at once below
    sign_in_first_time(page, hub)
    live = page.locator("#live")
    expect(live).to_have_attribute("data-state", "online", timeout=20_000)
    page.evaluate(RECORD_BADGE)

    page.clock.fast_forward("00:30")  # no event reaches the page in those 30 s (its clock)
    page.wait_for_function("() => window.__badge.some((s) => s.state === 'quiet')")
    quiet = page.evaluate("window.__badge.find((s) => s.state === 'quiet')")
    assert quiet["text"] == "已连接，无消息", quiet
    assert "后台" in quiet["title"], quiet
    assert quiet["pill"] == "unknown" and quiet["pillText"] == "已连接，无消息", quiet
    # The next heartbeat (every 10 s of real time) brings "Live" back, in another colour (both
    # colours as noted at each change: the heartbeat may come right after "quiet").
    page.wait_for_function(
        "() => { const i = window.__badge.findIndex((s) => s.state === 'quiet');"
        " return window.__badge.slice(i).some((s) => s.state === 'online'); }",
        timeout=25_000)
    expect(live).to_have_text("实时")
    back = page.evaluate("(() => { const i = window.__badge.findIndex((s) => s.state === 'quiet');"
                         " return window.__badge.slice(i).find((s) => s.state === 'online'); })()")
    assert back["colour"] != quiet["colour"], (quiet, back)
    assert page.errors == []


@pytest.mark.parametrize(("role", "n"), [("team_leader", 1), ("keeper", 2)])
def test_field_roles_map_gets_readings_and_sensor_status(hub, page, role, n):
    """A team leader's and a depot keeper's map receive `reading` and `sensor_status` events
    (they once joined no room and sat under a green badge receiving nothing)."""
    from tests.browser.test_map import api_client, square
    from tests.browser.test_sensor_page import add_gateway, post, stamp

    api = api_client(hub, f"duty-dispatcher-{n}")
    lon = 109.05 + 0.05 * n  # each test's village beside the one before (the hub is shared)
    village = {"type": "Feature", "geometry": square(lon, 33.15, 0.02),
               "properties": {"code": f"TV0{n}", "name_zh": "石板沟", "population": 900}}
    assert api.post(hub.url + "/api/v1/villages", json=village, timeout=10).status_code == 201
    token = add_gateway(hub, f"GW-F{n}")
    sensor = {"code": f"RG-F0{n}", "name": "石板沟雨量站", "kind": "rain_gauge", "unit": "mm",
              "gateway": f"GW-F{n}", "lon": lon, "lat": 33.15, "village": f"TV0{n}"}
    assert api.post(hub.url + "/api/v1/sensors", json=sensor, timeout=10).status_code == 201

    sign_in_as(page, hub, f"field-{role.replace('_', '-')}", role)
    page.goto(hub.url + "/map")
    the_map = page.locator("#map")
    expect(the_map).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#live")).to_have_attribute("data-state", "online", timeout=20_000)
    station = page.locator(f'path[data-layer="sensors"][data-code="RG-F0{n}"]')
    expect(station).to_have_attribute("data-flag", "missing")

    from datetime import UTC, datetime
    ts = stamp(datetime.now(UTC).replace(microsecond=0))
    assert post(hub, token, {"sensor": f"RG-F0{n}", "ts": ts, "value": 2.5})["stored"] == 1
    expect(the_map).to_have_attribute("data-last-reading", re.compile(rf"^RG-F0{n}:"),
                                      timeout=15_000)
    expect(station).to_have_attribute("data-flag", "good")

    # `sensor_status`: the office retires the station; it leaves the field's map.
    assert api.delete(hub.url + f"/api/v1/sensors/RG-F0{n}", timeout=10).status_code in (200, 204)
    expect(station).to_have_count(0, timeout=15_000)
    expect(page.locator("#live")).to_have_attribute("data-state", "online")
    assert page.errors == []
