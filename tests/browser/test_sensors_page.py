"""The sensors page in a real browser against a real `rescuehub run`: a dispatcher registers,
edits and retires a sensor, sees a reading arrive live over MQTT, and imports a file with a bad
row; a viewer sees the same table without any edit controls."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TABLET
from tests.browser.test_map import api_client
from tests.fixtures.broker import MqttProbe
from tests.maps.test_layers import square

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CST = timezone(timedelta(hours=8))


def person(hub, name: str, role: str) -> str:
    """A new person of `role`; returns the one-time password."""
    added = hub.command("user", "add", name, "--role", role)
    assert added.returncode == 0, added.stdout + added.stderr
    return re.search(r"one-time password: (\S+)", added.stdout).group(1)


def sign_in(page, hub, name: str, one_time: str) -> None:
    """Sign in with the one-time password and replace it, landing on the sensors page."""
    page.goto(hub.url + "/sensors")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码", exact=True).fill(one_time)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(hub.url + "/password")
    new_password = "gauge-night-" + secrets.token_hex(6)
    page.get_by_label("当前密码").fill(one_time)
    page.get_by_label("新密码", exact=True).fill(new_password)
    page.get_by_label("再次输入新密码").fill(new_password)
    page.get_by_role("button", name="保存并继续").click()
    expect(page).to_have_url(hub.url + "/")
    page.goto(hub.url + "/sensors")
    expect(page.locator("#sensors")).to_have_attribute("data-state", "ready")


def test_dispatcher_manages_sensors_and_a_viewer_only_reads(hub, browser, page, tmp_path):
    assert hub.commander_password, hub.output()
    added = hub.command("gateway", "add", "GW-01", "--name", "沟口站")
    assert added.returncode == 0, added.stdout + added.stderr
    mqtt_password = re.search(r"password (\S+)", added.stdout).group(1)
    api = api_client(hub, "duty-commander", "commander")
    village = {"type": "Feature", "geometry": square(109.05, 33.15, 0.02),
               "properties": {"code": "V01", "name_zh": "石板沟", "population": 800}}
    assert api.post(hub.url + "/api/v1/villages", json=village, timeout=10).status_code == 201

    sign_in(page, hub, "duty-dispatcher", person(hub, "duty-dispatcher", "dispatcher"))
    expect(page.locator(".mainnav a[aria-current=page]")).to_have_attribute("href", "/sensors")
    expect(page.locator("#sensors-empty")).to_be_visible()

    # Register through the form; a server-side refusal shows in the form, naming the field.
    page.locator("#register-open").click()
    form = page.locator("#sensor-dialog")
    expect(form).to_be_visible()
    form.locator("#s-code").fill("RG-901")
    form.locator("#s-name").fill("沟口雨量站")
    form.locator("#s-kind").select_option("rain_gauge")
    expect(form.locator("#s-unit")).to_have_value("mm")
    form.locator("#s-gateway").select_option("GW-01")
    form.locator("#s-lon").fill("209.05")
    form.locator("#s-lat").fill("33.15")
    form.locator("#s-village").select_option("V01")
    form.locator("#sensor-submit").click()
    # The field by its label, not the API's name ("lon: …").
    error = form.locator("#sensor-form-error")
    expect(error).to_contain_text("经度")
    expect(error).not_to_contain_text("lon")
    expect(form.locator("#s-lon")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(tmp_path / "sensors-form-zh.png"))
    # About 1,000 km east of the village: refused with the distance, then confirmed and sent.
    form.locator("#s-lon").fill("119.05")
    form.locator("#sensor-submit").click()
    expect(error).to_contain_text("公里")
    expect(error).to_contain_text("乡镇范围")
    words = page.evaluate("JSON.parse(document.getElementById('sensors-config').textContent)"
                          ".labels")
    expect(form.locator("#sensor-submit")).to_have_text(words["confirmOutside"])
    form.locator("#sensor-submit").click()
    expect(form).to_be_hidden()
    assert api.get(hub.url + "/api/v1/sensors/RG-901", timeout=10).json()["lon"] == 119.05
    row = page.locator('#sensors tr[data-code="RG-901"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-flag", "missing")
    expect(row).to_contain_text("沟口雨量站")
    expect(row).to_contain_text("雨量计")
    expect(row).to_contain_text("石板沟")
    expect(row.locator("a")).to_have_attribute("href", "/sensors/RG-901")

    # A reading from the gateway over MQTT arrives live, with its value, unit and QC flag.
    gateway = MqttProbe("127.0.0.1", hub.mqtt_port, "GW-01", mqtt_password, "GW-01")
    assert not gateway.connect().is_failure
    ts = datetime.now(CST).replace(microsecond=0) - timedelta(minutes=1)
    reading = {"sensor": "RG-901", "ts": ts.isoformat(), "value": 3.5}
    assert not gateway.publish("rescuehub/v1/readings/GW-01",
                               json.dumps(reading).encode()).is_failure
    gateway.close()
    expect(row.locator(".value")).to_have_text("3.5 mm", timeout=15_000)
    expect(row).to_have_attribute("data-flag", "good")
    expect(row.locator(".when")).to_have_text(re.compile(ts.strftime("%H:%M")))

    # Edit: name and interval.
    row.locator("button[data-action=edit]").click()
    expect(form.locator("#s-code")).to_be_disabled()
    expect(form.locator("#s-lon")).to_have_value("119.05")
    form.locator("#s-lon").fill("109.05")
    form.locator("#s-name").fill("沟口雨量站（新）")
    form.locator("#s-interval").fill("600")
    form.locator("#sensor-submit").click()
    expect(form).to_be_hidden()
    expect(row).to_contain_text("沟口雨量站（新）")
    assert api.get(hub.url + "/api/v1/sensors/RG-901", timeout=10).json()["interval_s"] == 600

    # Import: a bad row is listed with its line and nothing is written.
    page.locator("#import-open").click()
    dialog = page.locator("#import-dialog")
    csv_text = ("code,name,kind,unit,gateway,lon,lat\n"
                "RG-902,河湾雨量站,rain_gauge,mm,GW-01,109.06,33.16\n"
                "RG-903,坡顶,rain_gauge,mm,GW-NOPE,109.07,33.17\n")
    dialog.locator("#import-file").set_input_files(
        {"name": "sensors.csv", "mimeType": "text/csv", "buffer": csv_text.encode()})
    dialog.locator("#import-submit").click()
    refused = dialog.locator('#import-errors tr[data-line="3"]')
    expect(refused).to_be_visible()
    expect(refused).to_contain_text("RG-903")
    expect(refused).to_contain_text("GW-NOPE")
    expect(dialog.locator("#import-result")).to_have_class(re.compile("alert-error"))
    page.screenshot(path=str(tmp_path / "sensors-import-zh.png"))
    assert api.get(hub.url + "/api/v1/sensors/RG-902", timeout=10).status_code == 404
    dialog.locator("#import-file").set_input_files(
        {"name": "sensors.csv", "mimeType": "text/csv",
         "buffer": csv_text.replace("GW-NOPE", "GW-01").encode()})
    dialog.locator("#import-submit").click()
    expect(dialog.locator("#import-result")).to_have_class(re.compile("alert-ok"))
    dialog.locator("[data-close]").click()
    expect(page.locator('#sensors tr[data-code="RG-903"]')).to_be_visible()
    page.screenshot(path=str(tmp_path / "sensors-zh.png"), full_page=True)

    # The gateways: GW-01 online (it sent a reading); search, sort and "problems only".
    gateways = page.locator("#gateways")
    expect(gateways.locator('tr[data-gateway="GW-01"]')).to_have_attribute("data-online", "true")
    expect(gateways.locator('tr[data-gateway="GW-01"]')).to_contain_text("在线")
    page.locator("#filter-search").fill("河湾")
    expect(page.locator("#sensors tbody tr")).to_have_count(1)
    expect(page.locator('#sensors tr[data-code="RG-902"]')).to_be_visible()
    page.locator("#filter-search").fill("rg-90")
    expect(page.locator("#sensors tbody tr")).to_have_count(3)
    page.locator("#filter-search").fill("")
    code_order = "rows => rows.map(r => r.dataset.code)"
    assert page.locator("#sensors tbody tr").evaluate_all(code_order) == [
        "RG-901", "RG-902", "RG-903"]
    page.locator('#sensors button[data-sort="code"]').click()
    expect(page.locator('#sensors th[data-sort-key="code"]')).to_have_attribute(
        "aria-sort", "descending")
    assert page.locator("#sensors tbody tr").evaluate_all(code_order) == [
        "RG-903", "RG-902", "RG-901"]
    page.locator('#sensors button[data-sort="value"]').click()
    expect(page.locator("#sensors tbody tr").first).to_have_attribute("data-code", "RG-901")
    page.locator("#filter-problems").check()  # the two with no reading yet are missing
    expect(page.locator("#sensors tbody tr")).to_have_count(2)
    expect(page.locator('#sensors tr[data-code="RG-901"]')).to_have_count(0)

    # The gateway says it goes offline: the table and the rows say so, live and after a reload.
    gateway = MqttProbe("127.0.0.1", hub.mqtt_port, "GW-01", mqtt_password, "GW-01")
    assert not gateway.connect().is_failure
    assert not gateway.publish("rescuehub/v1/status/GW-01", json.dumps(
        {"online": False, "ts": datetime.now(CST).isoformat()}).encode(),
        retain=True).is_failure
    gateway.close()
    offline = gateways.locator('tr[data-gateway="GW-01"]')
    expect(offline).to_have_attribute("data-online", "false", timeout=15_000)
    expect(page.locator("#sensors tbody tr")).to_have_count(3)  # every one has a problem now
    page.reload()
    expect(page.locator("#sensors")).to_have_attribute("data-state", "ready")
    expect(offline).to_have_attribute("data-online", "false")
    expect(offline.locator(".gw-state")).to_have_text(words["gatewayState"]["reported"])
    expect(row.locator(".gw-offline")).to_have_text(words["gatewayOffline"])
    page.goto(hub.url + "/sensors/RG-901")
    expect(page.locator("#gateway-state")).to_be_visible()
    page.goto(hub.url + "/sensors")
    expect(page.locator("#sensors")).to_have_attribute("data-state", "ready")

    # A tablet in portrait: nothing wider than the screen, every target at least 40 px.
    page.set_viewport_size({"width": 800, "height": 1280})
    for card in (".gateways-card", ".sensors-card"):
        box = page.locator(card).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 800, (card, box)
    assert page.evaluate("[...document.querySelectorAll('main .table-wrap')]"
                         ".every(w => w.scrollWidth <= w.clientWidth)")
    small = page.evaluate("""[...document.querySelectorAll(
        'main button, main select, main input[type=search], main label.check, #sensors a')]
        .filter(n => n.offsetParent !== null)
        .map(n => [n.outerHTML.slice(0, 60), n.getBoundingClientRect().height])
        .filter(([, h]) => h < 40)""")
    assert small == []
    page.screenshot(path=str(tmp_path / "sensors-portrait.png"), full_page=True)
    page.set_viewport_size(TABLET)

    # Retire, after a confirmation; retired sensors show under "show retired".
    row.locator("button[data-action=retire]").click()
    confirm = page.locator("#retire-dialog")
    expect(confirm.locator("#retire-title")).to_contain_text("RG-901")
    confirm.locator("#retire-confirm").click()
    expect(confirm).to_be_hidden()
    expect(row).to_have_count(0)
    page.locator("#filter-problems").uncheck()
    page.locator("#filter-retired").check()
    expect(row).to_have_attribute("data-retired", "true")
    assert api.get(hub.url + "/api/v1/sensors/RG-901", timeout=10).json()["retired"] is True

    # Filters: by kind and by gateway.
    page.locator("#filter-kind").select_option("water_level")
    expect(page.locator("#sensors tbody tr")).to_have_count(0)
    expect(page.locator("#sensors-empty")).to_be_visible()
    page.locator("#filter-kind").select_option("")
    page.locator("#filter-gateway").select_option("GW-01")
    expect(page.locator("#sensors tbody tr")).to_have_count(3)

    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#sensors")).to_have_attribute("data-state", "ready")
    expect(page.locator('#sensors tr[data-code="RG-902"]')).to_contain_text("Rain gauge")
    page.screenshot(path=str(tmp_path / "sensors-en.png"), full_page=True)
    assert page.errors == []

    # A viewer: the same table, no edit controls.
    context = browser.new_context(viewport=TABLET, locale="zh-CN", timezone_id="Asia/Shanghai")
    viewer = context.new_page()
    viewer.errors = []
    viewer.on("pageerror", lambda exc: viewer.errors.append(str(exc)))
    try:
        sign_in(viewer, hub, "watcher", person(hub, "watcher", "viewer"))
        expect(viewer.locator('#sensors tr[data-code="RG-902"]')).to_be_visible()
        expect(viewer.locator("#register-open")).to_have_count(0)
        expect(viewer.locator("#import-open")).to_have_count(0)
        expect(viewer.locator("#sensors tbody button")).to_have_count(0)
        expect(viewer.locator("dialog")).to_have_count(0)
        viewer.screenshot(path=str(tmp_path / "sensors-viewer.png"))
        assert viewer.errors == []
    finally:
        context.close()
