"""The office pages in a real browser against a real `rescuehub run`: first sign-in with the
one-time password, the home page going live over a websocket, reconnecting, and English."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in_first_time(page, hub) -> None:
    """From the hub's address through sign-in and the one-time password page to the home page."""
    page.goto(hub.url)
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)$"))
    page.get_by_label("用户名").fill("commander")
    page.get_by_label("密码", exact=True).fill(hub.commander_password)
    page.get_by_role("button", name="登录").click()

    expect(page).to_have_url(hub.url + "/password")
    expect(page.locator("#live")).to_have_count(0)  # no socket until the password is replaced
    new_password = "flood-watch-" + secrets.token_hex(6)
    page.get_by_label("当前密码").fill(hub.commander_password)
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
