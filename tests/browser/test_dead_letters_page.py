"""The dead-letter office in a real browser against a real `rescuehub run`: dead letters made by
real HTTP ingest (including hostile payloads that must stay text), reason chips, reprocessing after
the sensor is registered, settling a conflict by replacing the stored value (audited), a new dead
letter arriving while the page is open, English, and a viewer who gets no action buttons."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select

from dispatch.core.db import make_engine
from dispatch.core.models import AuditEntry
from telemetry.models import Reading, Sensor
from tests.browser.conftest import TABLET
from tests.browser.test_live_indicator import sign_in_first_time
from tests.browser.test_map import api_client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(document.cookie)>"


def ts(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def add_gateway(hub, code: str) -> requests.Session:
    added = hub.command("gateway", "add", code)
    assert added.returncode == 0, added.stdout + added.stderr
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + re.search(r"Bearer (\S+)",
                                                             added.stdout).group(1)
    return session


def send(hub, gateway: requests.Session, body) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return gateway.post(hub.url + "/api/v1/readings", data=data, timeout=10,
                        headers={"Content-Type": "application/json"})


def register(hub, api, code: str, gateway: str) -> None:
    answer = api.post(hub.url + "/api/v1/sensors", timeout=10, json={
        "code": code, "kind": "rain_gauge", "unit": "mm", "gateway": gateway,
        "lon": 109.05, "lat": 33.15})
    assert answer.status_code == 201, answer.text


def letters(hub, api, query: str = "") -> list[dict]:
    answer = api.get(hub.url + "/api/v1/dead-letters" + query, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def row(page, letter_id: int):
    return page.locator(f'#dl-list > li[data-id="{letter_id}"]')


def next_poll_shows(page, locator) -> None:
    """Move the page's clock on to its next summary poll until `locator` is visible. One move
    can fall while a poll is under way: that poll sets the next timer only when it returns,
    after the move (the page's clock then runs at real speed, 15 s away)."""
    for _ in range(3):
        page.clock.fast_forward("00:15")
        try:
            expect(locator).to_be_visible(timeout=3000)
            return
        except AssertionError:
            continue
    expect(locator).to_be_visible()


def test_dead_letter_office(hub, page, browser, artifacts):
    assert hub.commander_password, hub.output()
    api = api_client(hub)
    gateway = add_gateway(hub, "GW-T")
    register(hub, api, "RG-1", "GW-T")

    # Dead letters by real ingest: hostile text, an unknown sensor in a batch, a conflict, and
    # bytes that are not UTF-8 with control and bidi characters.
    assert send(hub, gateway, SCRIPT.encode()).status_code == 400                  # bad_json
    assert send(hub, gateway, {"sensor": IMG, "ts": ts(30), "value": 1}).json()["rejected"]
    batch = send(hub, gateway, {"readings": [{"sensor": "RG-1", "ts": ts(20), "value": 1.0},
                                             {"sensor": "RG-NEW", "ts": ts(20), "value": 2.5}]})
    assert batch.json()["stored"] == 1
    when = ts(10)
    assert send(hub, gateway, {"sensor": "RG-1", "ts": when, "value": 3.5}).json()["stored"] == 1
    assert send(hub, gateway, {"sensor": "RG-1", "ts": when, "value": 4.0}).json()["rejected"]
    assert send(hub, gateway, b'\xff{"note": "\x1b[31m \xe2\x80\xae evil"}').status_code == 400
    made = {d["reason"] + ":" + str(d["sensor"]): d for d in letters(hub, api)}
    assert len(made) == 5, made.keys()
    script, img = made["bad_json:None"], made[f"unknown_sensor:{IMG}"]
    unknown, conflict = made["unknown_sensor:RG-NEW"], made["conflict:RG-1"]
    binary = made["bad_encoding:None"]
    assert send(hub, gateway, b"[" + b"7," * 2500).status_code == 400    # 5,001 bytes, bad_json
    big = letters(hub, api)[0]
    assert big["payload_bytes"] == 5001 and big["payload_truncated"]

    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # The page's timers run on a clock the test can move on (below: the summary's 15 s poll
    # comes at once instead of being waited out); until then it keeps the real time.
    page.clock.install()
    sign_in_first_time(page, hub)
    page.locator('.mainnav a[href="/dead-letters"]').click()
    expect(page).to_have_url(hub.url + "/dead-letters")
    expect(page).to_have_title(re.compile("拒收数据"))
    the_list = page.locator("#dl-list")
    expect(the_list).to_have_attribute("data-state", "ready")
    expect(the_list).to_have_attribute("data-count", "6")

    # Hostile payloads are text: shown exactly, no element made from them, nothing ran.
    expect(row(page, script["id"]).locator(".dl-payload")).to_have_text(SCRIPT)
    expect(row(page, script["id"]).locator(".dl-reason-label")).to_have_text("不是有效的 JSON")
    expect(row(page, script["id"]).locator(".dl-code")).to_have_text("bad_json")
    # It would fail again: no Reprocess, only Dismiss.
    expect(row(page, script["id"]).locator("button")).to_have_count(1)
    expect(row(page, script["id"]).locator("button[data-action=dismiss]")).to_have_text("忽略")
    # Every stored detail is in Chinese (the English original stays in the title).
    details = the_list.locator(".dl-detail")
    assert details.evaluate_all("ps => ps.map(p => p.dataset.translated)") == ["true"] * 6
    expect(row(page, script["id"]).locator(".dl-detail")).to_have_text(
        "不是 JSON：第 1 行第 1 列此处应为一个值")
    expect(row(page, binary["id"]).locator(".dl-detail")).to_contain_text("不是 UTF-8 文本")
    expect(row(page, conflict["id"]).locator(".dl-detail")).to_have_text(
        "保留已存储的数值 3.5；本条读数为 4.0")
    img_row = row(page, img["id"])
    expect(img_row.locator('[data-field="sensor"] dd')).to_have_text(IMG)
    expect(img_row.locator(".dl-payload")).to_contain_text(IMG)
    expect(img_row.locator(".dl-detail")).to_contain_text(IMG)
    assert the_list.locator("script, img, iframe, object, svg").count() == 0
    assert dialogs == []
    # Bytes that are not UTF-8 and control/bidi characters are visible marks.
    binary_row = row(page, binary["id"])
    expect(binary_row.locator(".dl-not-utf8")).to_be_visible()
    expect(binary_row.locator(".dl-mark-bad")).to_have_count(1)
    expect(binary_row.locator(".dl-mark-ctl")).to_have_text("␛")
    expect(binary_row.locator(".dl-mark-inv")).to_have_text("<U+202E>")
    # A payload longer than the 4 KiB shown says so.
    expect(row(page, big["id"]).locator(".dl-cut")).to_contain_text("4,096")
    expect(row(page, big["id"]).locator(".dl-cut")).to_contain_text("5,001")

    # Reason chips with counts; filtering by one puts it in the address.
    unknown_chip = page.locator('.dl-chip[data-reason="unknown_sensor"]')
    expect(unknown_chip.locator(".dl-chip-count")).to_have_text("2")
    expect(page.locator('.dl-chip[data-reason=""] .dl-chip-count')).to_have_text("6")
    expect(page.locator('.dl-chip[data-reason="bad_json"] .dl-chip-count')).to_have_text("2")
    expect(page.locator('.dl-chip[data-reason="too_old"]')).to_be_hidden()  # none of those
    unknown_chip.click()
    expect(unknown_chip).to_have_attribute("aria-pressed", "true")
    expect(page).to_have_url(re.compile(r"reason=unknown_sensor"))
    expect(the_list).to_have_attribute("data-count", "2")
    assert set(the_list.locator("> li").evaluate_all(
        "rows => rows.map(r => r.dataset.reason)")) == {"unknown_sensor"}

    # Reprocess after the sensor is registered: resolved in the row, the reading stored.
    unknown_row = row(page, unknown["id"])
    expect(unknown_row.locator(".dl-hint")).to_be_visible()
    register(hub, api, "RG-NEW", "GW-T")
    unknown_row.locator("button[data-action=reprocess]").click()
    expect(unknown_row).to_have_attribute("data-resolution", "reprocessed")
    expect(unknown_row.locator(".dl-outcome")).to_contain_text("commander")
    expect(unknown_row.locator("button")).to_have_count(0)
    sensor = api.get(hub.url + "/api/v1/sensors/RG-NEW", timeout=10).json()
    assert sensor["last_value"] == 2.5
    expect(unknown_chip.locator(".dl-chip-count")).to_have_text("1")

    # A conflict: replace the stored value, after a confirmation.
    page.locator('.dl-chip[data-reason="conflict"]').click()
    conflict_row = row(page, conflict["id"])
    expect(conflict_row.locator("button[data-action=keep]")).to_be_visible()
    conflict_row.locator("button[data-action=replace]").click()
    confirm = page.locator("#dl-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("RG-1")
    expect(confirm).to_contain_text("审计日志")
    page.screenshot(path="/tmp/deadletters-confirm-zh.png")
    confirm.locator("#dl-confirm-ok").click()
    expect(conflict_row).to_have_attribute("data-resolution", "replaced")
    expect(conflict_row.locator(".dl-outcome")).to_contain_text("已替换为此值")
    [settled] = letters(hub, api, "?resolved=1&reason=conflict")
    assert settled["resolution"] == "replaced" and settled["resolved_by"] == "user:commander"
    engine = make_engine(f"sqlite:///{hub.data_dir / 'rescuehub.sqlite'}")
    try:
        with engine.connect() as conn:
            stored = conn.scalar(
                select(Reading.value).join(Sensor, Sensor.id == Reading.sensor_id)
                .where(Sensor.code == "RG-1", Reading.ts == datetime.fromisoformat(when)))
            audit = conn.execute(select(AuditEntry.actor, AuditEntry.before, AuditEntry.after)
                                 .where(AuditEntry.action == "reading.replace")).all()
    finally:
        engine.dispose()
    assert stored == 4.0
    assert [(a, json.loads(b), json.loads(c)) for a, b, c in audit] == [
        ("user:commander", {"value": 3.5}, {"value": 4.0})]

    # A new dead letter arrives while the page is open (the summary is polled every 15 s).
    page.locator('.dl-chip[data-reason=""]').click()
    page.locator("#dl-form input[name=resolved]").check()
    expect(page).to_have_url(re.compile(r"resolved=1"))
    expect(the_list).to_have_attribute("data-count", "6")
    expect(page.locator('.dl-chip[data-reason=""] .dl-chip-count')).to_have_text("6")  # total
    send(hub, gateway, {"sensor": "RG-LATE", "ts": ts(1), "value": 1})
    late = letters(hub, api, "?sensor=RG-LATE")[0]
    next_poll_shows(page, row(page, late["id"]))
    expect(row(page, late["id"])).to_have_class(re.compile("dl-is-new"))
    expect(the_list.locator("> li").first).to_have_attribute("data-id", str(late["id"]))
    page.screenshot(path="/tmp/deadletters-resolved-zh.png", full_page=True)

    # Gateway and sensor filters.
    page.locator("#dl-form input[name=sensor]").fill("RG-1")
    page.locator("#dl-form button[type=submit]").click()
    expect(the_list).to_have_attribute("data-count", "1")
    expect(row(page, conflict["id"])).to_be_visible()
    page.locator("#dl-form button[type=reset]").click()
    expect(page).to_have_url(hub.url + "/dead-letters")
    expect(the_list).to_have_attribute("data-count", "5")  # unresolved only again
    page.screenshot(path="/tmp/deadletters-zh.png", full_page=True)
    page.screenshot(path=str(artifacts / "dead-letters.png"))

    # English: the same page with English words.
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(the_list).to_have_attribute("data-state", "ready")
    expect(row(page, script["id"]).locator(".dl-reason-label")).to_have_text("Not valid JSON")
    expect(page.locator('.dl-chip[data-reason="unknown_sensor"]')).to_contain_text("Unknown sensor")
    expect(row(page, img["id"]).get_by_role("button", name="Reprocess")).to_be_visible()
    page.screenshot(path="/tmp/deadletters-en.png", full_page=True)
    assert page.errors == [] and dialogs == []

    # A viewer reads the same list without any action button.
    api_client(hub, "night-viewer", "viewer")
    viewer = browser.new_context(viewport=TABLET, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        other = viewer.new_page()
        other.goto(hub.url + "/login?next=/dead-letters")
        other.get_by_label("用户名").fill("night-viewer")
        other.get_by_label("密码", exact=True).fill("river-watch-2026-night-viewer")
        other.get_by_role("button", name="登录", exact=True).click()
        expect(other).to_have_url(hub.url + "/dead-letters")
        expect(other.locator("#dl-list")).to_have_attribute("data-count", "5")
        expect(other.locator("#dl-readonly")).to_be_visible()
        assert other.locator("#dl-list button").count() == 0
        expect(row(other, img["id"]).locator(".dl-payload")).to_contain_text(IMG)
        other.screenshot(path="/tmp/deadletters-viewer-zh.png", full_page=True)
    finally:
        viewer.close()

    # Dismiss sets a letter aside (after a confirmation), audited.
    page.get_by_role("link", name="中文").click()
    expect(the_list).to_have_attribute("data-state", "ready")
    script_row = row(page, script["id"])
    script_row.locator("button[data-action=dismiss]").click()
    expect(confirm).to_contain_text("审计日志")
    confirm.locator("#dl-confirm-ok").click()
    expect(script_row).to_have_attribute("data-resolution", "dismissed")
    expect(script_row.locator(".dl-outcome")).to_contain_text("已忽略")
    assert letters(hub, api, "?resolved=1&reason=bad_json")[0]["resolution"] == "dismissed"

    # Past the gateway's quota: one over_quota letter counts what was not kept; it has a label,
    # no Reprocess (the API refuses it) and can be dismissed.
    flood = add_gateway(hub, "GW-Q")
    sent = send(hub, flood, {"readings": [{"sensor": f"RG-X{i}", "ts": ts(5), "value": 1}
                                          for i in range(320)]})
    assert len(sent.json()["rejected"]) == 320
    [quota] = letters(hub, api, "?reason=over_quota")
    chip = page.locator('.dl-chip[data-reason="over_quota"]')
    next_poll_shows(page, chip)
    expect(chip.locator(".dl-chip-label")).to_have_text("超出网关配额（未保留内容）")
    chip.click()
    quota_row = row(page, quota["id"])
    expect(quota_row.locator(".dl-reason-label")).to_have_text("超出网关配额（未保留内容）")
    expect(quota_row.locator(".dl-dropped")).to_contain_text(str(quota["dropped_count"]))
    expect(quota_row.locator(".dl-detail")).to_contain_text("未登记的传感器")
    expect(quota_row.locator("button[data-action=reprocess]")).to_have_count(0)
    quota_row.locator("button[data-action=dismiss]").click()
    confirm.locator("#dl-confirm-ok").click()
    expect(quota_row).to_have_attribute("data-resolution", "dismissed")
    page.screenshot(path=str(artifacts / "dead-letters-quota.png"), full_page=True)
    assert page.errors == []
