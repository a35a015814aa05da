"""The warning pages in a real browser against a real `rescuehub run` (one hub for the module:
each test makes its own village, gauge and storm): the map's alert panel (an alert arriving live
while the page is open, seen in the title and heard, acknowledged, its public warning approved and
published, cleared with a reason, the village's colour back), the situation page, and the alert
history and alert pages. Names are HTML payloads and stay text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.test_hostile_names import WATCH_CSP
from tests.browser.test_live_indicator import sign_in_as, sign_in_first_time
from tests.browser.test_map import api_client, square
from tests.browser.test_sensor_page import add_gateway, post
from tests.fixtures.hub import start_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = '<img src=x onerror="window.__xss=1">'
# SL 675 practice table of the DESIGN §6 worked example (no antecedent rain known: the wet row).
TABLE = {"windows_h": [1, 3, 6],
         "prepare": {"dry": [45, 70, 100], "normal": [40, 65, 95], "wet": [35, 60, 90]},
         "evacuate": {"dry": [50, 75, 105], "normal": [45, 70, 100], "wet": [40, 65, 95]},
         "antecedent_mm": {"dry_below": 15, "wet_above": 50}}
STEP = timedelta(minutes=5)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One running hub for the module (the browser tests are slow to start)."""
    data_dir = tmp_path_factory.mktemp("alert-pages") / "var"
    data_dir.mkdir()
    running = start_hub(data_dir)
    if running.process.poll() is not None:
        pytest.fail(f"rescuehub run exited early:\n{running.output()}")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def commander_api(hub):
    return api_client(hub, "duty-commander", "commander")


def watched_village(hub, api, *, code: str, name: str, gauge: str, lon: float,
                    population: int) -> str:
    """A village with two rain gauges inside (`gauge` and `gauge`-2) that reported six dry hours
    (complete windows), judged on `gauge` by its critical-rainfall table; returns the gateway's
    token."""
    village = {"type": "Feature", "geometry": square(lon, 33.1, 0.02),
               "properties": {"code": code, "name_zh": name, "population": population}}
    answer = api.post(hub.url + "/api/v1/villages", json=village, timeout=10)
    assert answer.status_code == 201, answer.text
    token = add_gateway(hub, f"GW-{code}")
    now = datetime.now(UTC).replace(microsecond=0)
    for sensor_code, east in ((gauge, 0.0), (f"{gauge}-2", 0.01)):
        sensor = {"code": sensor_code, "name": f"{name}雨量站", "kind": "rain_gauge",
                  "unit": "mm", "gateway": f"GW-{code}", "lon": lon + east, "lat": 33.1,
                  "village": code, "interval_s": 300}
        answer = api.post(hub.url + "/api/v1/sensors", json=sensor, timeout=10)
        assert answer.status_code == 201, answer.text
        # The dry hours before the table: judged with a table and no data, the village would
        # get a data alert (windows incomplete) that stays for alerts.clear_hold_min.
        dry = [{"sensor": sensor_code, "ts": (now - k * STEP).isoformat(), "value": 0.0}
               for k in range(72, -1, -1)]
        assert post(hub, token, {"readings": dry})["stored"] == len(dry)
    answer = api.put(hub.url + f"/api/v1/villages/{code}/thresholds",
                     json={**TABLE, "gauges": [gauge]}, timeout=10)
    assert answer.status_code == 200, answer.text
    return token


def storm(hub, token: str, gauge: str, mm: float = 3.0) -> None:
    """`mm` every five minutes for the last three hours, between the dry reports: 3 mm makes
    36 mm in 1 h and 108 mm in 3 h (flash flood: evacuate; CMA: red)."""
    now = datetime.now(UTC).replace(microsecond=0)
    rain = [{"sensor": gauge, "ts": (now - k * STEP - STEP / 2).isoformat(), "value": mm}
            for k in range(35, -1, -1)]
    assert post(hub, token, {"readings": rain})["stored"] == len(rain)


def storm_moves_on(hub, api, code: str, gauge: str) -> None:
    """The rules judge the windows ending now, so an alert cleared while its rain is still in
    them is raised again at the next sweep: the village is judged on its dry gauge from now on
    and the wet one is retired, so what the test clears stays cleared."""
    answer = api.put(hub.url + f"/api/v1/villages/{code}/thresholds",
                     json={**TABLE, "gauges": [f"{gauge}-2"]}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert api.delete(hub.url + f"/api/v1/sensors/{gauge}", timeout=10).status_code == 200


def active(hub, api, kind: str, subject: str) -> dict:
    items = api.get(hub.url + f"/api/v1/alerts?kind={kind}", timeout=10).json()["items"]
    return next(a for a in items if a["subject"]["code"] == subject)


def close_all(hub, api) -> None:
    """Cancel every active alert (what earlier tests of the module left)."""
    for alert in api.get(hub.url + "/api/v1/alerts", timeout=10).json()["items"]:
        answer = api.post(hub.url + f"/api/v1/alerts/{alert['id']}/cancel",
                          json={"reason": "test: start from a quiet township"}, timeout=10)
        assert answer.status_code in {200, 409}, answer.text


def test_the_alert_panel_sees_hears_and_acts_on_a_storm(hub, commander_api, page, artifacts):
    assert hub.commander_password, hub.output()
    api = commander_api
    token = watched_village(hub, api, code="V-A", name=f"青山村{XSS}", gauge="RG-A", lon=109.0,
                            population=812)
    page.add_init_script(WATCH_CSP)
    sign_in_first_time(page, hub)
    page.goto(hub.url + "/map")
    the_map, panel = page.locator("#map"), page.locator("#alert-panel")
    expect(the_map).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    expect(panel).to_have_attribute("data-state", "ready")
    expect(panel.locator(".ap-empty")).to_have_text("当前没有生效的预警。")
    expect(the_map).to_have_attribute("data-warned", "")
    expect(page).to_have_title(re.compile(r"^地图"))
    # Sound needs a first click; the hint says so, then that it is on.
    hint = panel.locator(".ap-sound")
    expect(hint).to_have_attribute("data-sound", "waiting")
    expect(hint).to_contain_text("点击页面")
    panel.locator("h2").click()
    expect(hint).to_have_attribute("data-sound", "armed")
    page.evaluate("window.__sameDocument = true")

    # The storm: both alerts arrive live, the title counts them and the alarm sounds.
    storm(hub, token, "RG-A")
    flood = panel.locator('.ap-item[data-kind="flash_flood"]')
    expect(flood).to_have_attribute("data-level", "evacuate", timeout=20_000)
    expect(flood.locator('[data-field="level"]')).to_have_text("立即转移")
    expect(flood.locator('[data-field="kind"]')).to_have_text("山洪")
    expect(flood.locator(".ap-name")).to_have_text(f"青山村{XSS}")  # text, never markup
    expect(flood.locator('[data-field="meta"]')).to_contain_text("812 人")
    expect(flood.locator('[data-field="rule"]')).to_contain_text("实测雨量 108 mm")
    signal = panel.locator('.ap-item[data-kind="rainstorm"]')
    expect(signal).to_have_attribute("data-level", "red", timeout=20_000)
    expect(page).to_have_title(re.compile(r"^\(2\) 地图"))
    assert int(hint.get_attribute("data-played")) >= 1
    expect(the_map).to_have_attribute("data-warned", "V-A:evacuate")
    # The gauge wears its signal, and its popup gives the sums.
    gauge = page.locator('path[data-layer="sensors"][data-code="RG-A"]')
    expect(gauge).to_have_attribute("data-signal", "red")
    assert gauge.get_attribute("fill").lower() == "#d7191c"
    gauge.click()
    popup = page.locator(".leaflet-popup-content .fp-sensors")
    expect(popup.locator('[data-field="signal"] dd')).to_have_text("暴雨红色预警信号")
    expect(popup.locator('[data-field="sum-1h"] dd')).to_have_text("36 mm")
    expect(popup.locator('[data-field="sum-3h"] dd')).to_have_text("108 mm")
    page.keyboard.press("Escape")

    # Selecting the alert highlights its village; the map with the alert for people to look at.
    flood.locator(".ap-select").click()
    expect(the_map).to_have_attribute("data-highlight", "V-A")
    expect(flood).to_have_class(re.compile(r"\bselected\b"))
    page.screenshot(path=str(artifacts / "map-alert.png"))

    # Acknowledge: the count drops to the one nobody acknowledged.
    flood.get_by_role("button", name="确认", exact=True).click()
    expect(flood).to_have_attribute("data-state", "acknowledged")
    expect(flood.get_by_role("button", name="确认", exact=True)).to_have_count(0)
    expect(page).to_have_title(re.compile(r"^\(1\) 地图"))

    # The public warning: approve, then publish (commander).
    expect(flood).to_have_attribute("data-cap", "draft")
    flood.get_by_role("button", name="批准公开预警").click()
    expect(flood).to_have_attribute("data-cap", "approved")
    flood.get_by_role("button", name="发布公开预警").click()
    expect(flood).to_have_attribute("data-cap", "published")
    expect(flood.locator('[data-field="cap"]')).to_have_text("公开预警：已发布")

    # Clear: a reason is required; then the alert leaves and the village's colour returns.
    storm_moves_on(hub, api, "V-A", "RG-A")
    flood.get_by_role("button", name="解除", exact=True).click()
    form = flood.locator("form.ap-reason")
    form.get_by_role("button", name="解除预警").click()
    expect(form.locator(".ap-form-error")).to_have_text("请填写理由。")
    form.get_by_label("解除理由").fill("雨停，河水回落")
    form.get_by_role("button", name="解除预警").click()
    expect(flood).to_have_count(0)
    expect(the_map).to_have_attribute("data-warned", "", timeout=10_000)
    expect(the_map).to_have_attribute("data-highlight", "")
    history = api.get(hub.url + "/api/v1/alerts?state=all&kind=flash_flood&village=V-A",
                      timeout=10).json()["items"][0]
    assert history["state"] == "cleared", history

    # The signal too, from the API (another person): it leaves the panel live.
    rain = active(hub, api, "rainstorm", "RG-A")
    assert api.post(hub.url + f"/api/v1/alerts/{rain['id']}/cancel",
                    json={"reason": "测试"}, timeout=10).status_code == 200
    expect(signal).to_have_count(0, timeout=10_000)
    expect(page).to_have_title(re.compile(r"^地图"))
    assert page.evaluate("window.__sameDocument") is True
    assert page.evaluate("window.__xss") is None and page.evaluate("window.__csp") == []
    assert page.errors == []


def test_a_dispatcher_acknowledges_but_may_not_clear(hub, commander_api, page):
    token = watched_village(hub, commander_api, code="V-D", name="白杨村", gauge="RG-D",
                            lon=109.3, population=300)
    storm(hub, token, "RG-D")
    sign_in_as(page, hub, "duty-dispatcher", "dispatcher")
    page.goto(hub.url + "/map")
    item = page.locator('.ap-item[data-kind="flash_flood"]').filter(has_text="V-D")
    expect(item).to_have_attribute("data-state", "raised", timeout=20_000)
    expect(item.get_by_role("button", name="解除", exact=True)).to_have_count(0)
    expect(item.get_by_role("button", name="批准公开预警")).to_have_count(0)
    item.get_by_role("button", name="确认", exact=True).click()
    expect(item).to_have_attribute("data-state", "acknowledged")
    assert page.errors == []
    storm_moves_on(hub, commander_api, "V-D", "RG-D")
    close_all(hub, commander_api)


def test_the_situation_page_shows_a_storm_and_never_says_all_is_normal(hub, commander_api,
                                                                        page, artifacts):
    api = commander_api
    close_all(hub, api)
    token = watched_village(hub, api, code="V-S", name=f"石门村{XSS}", gauge="RG-S", lon=109.6,
                            population=640)
    page.add_init_script(WATCH_CSP)
    sign_in_as(page, hub, "duty-viewer", "viewer")
    situation, overall = page.locator("#situation"), page.locator("#system-status .overall")
    expect(situation).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(situation).to_have_attribute("data-alerts", "0")
    expect(overall).to_have_text("系统运行正常", timeout=20_000)
    expect(situation.locator('[data-field="headline"]')).to_have_text(
        "无生效预警，所有传感器和网关均在报数。")

    storm(hub, token, "RG-S")
    expect(situation).to_have_attribute("data-alerts", "2", timeout=20_000)
    expect(situation).to_have_attribute("data-level", "evacuate")
    expect(overall).to_have_text("系统运行中，有 2 条预警生效")
    expect(situation.locator('[data-field="headline"]')).to_have_text(
        "2 条预警生效 · 需转移 640 人")
    counts = situation.locator(".sit-counts")
    expect(counts.locator('[data-kind="flash_flood"][data-level="evacuate"] .sit-n')).to_have_text(
        "1")
    expect(counts.locator('[data-kind="rainstorm"][data-level="red"] .sit-n')).to_have_text("1")
    flood = situation.locator('.sit-list li[data-kind="flash_flood"]')
    expect(flood.locator(".sit-subject")).to_have_text(f"石门村{XSS}")
    evacuate = situation.locator('.sit-group[data-level="evacuate"]')
    expect(evacuate.locator('li[data-code="V-S"] [data-field="population"]')).to_have_text(
        "640 人")
    expect(evacuate.locator('[data-field="total"]')).to_have_text("1 个村，640 人")
    expect(situation.locator('.sit-signals li[data-level="red"]')).to_contain_text(
        "石门村")
    expect(page).to_have_title(re.compile(r"^\(2\) "))
    page.screenshot(path=str(artifacts / "situation-storm.png"), full_page=True)

    # The alert's own page is one click away.
    flood.locator("a").click()
    expect(page).to_have_url(re.compile(r"/alerts/\d+$"))
    page.go_back()
    expect(situation).to_have_attribute("data-alerts", "2", timeout=20_000)
    storm_moves_on(hub, api, "V-S", "RG-S")
    close_all(hub, api)
    expect(situation).to_have_attribute("data-alerts", "0", timeout=10_000)
    expect(overall).to_have_text("系统运行正常")
    expect(page).not_to_have_title(re.compile(r"^\("))
    assert page.evaluate("window.__xss") is None and page.evaluate("window.__csp") == []
    assert page.errors == []


def test_alert_history_and_an_alerts_page(hub, commander_api, page, artifacts):
    api = commander_api
    close_all(hub, api)
    token = watched_village(hub, api, code="V-H", name=f"河口村{XSS}", gauge="RG-H", lon=109.9,
                            population=455)
    storm(hub, token, "RG-H")
    flood = None
    for _ in range(100):  # the evaluator judges right after the readings' commit
        items = api.get(hub.url + "/api/v1/alerts?kind=flash_flood&village=V-H",
                        timeout=10).json()["items"]
        if items:
            flood = items[0]
            break
        page.wait_for_timeout(200)
    assert flood, hub.output()[-3000:]
    storm_moves_on(hub, api, "V-H", "RG-H")
    assert api.post(hub.url + f"/api/v1/alerts/{flood['id']}/clear",
                    json={"reason": "水位回落<b>安全</b>"}, timeout=10).status_code == 200
    page.add_init_script(WATCH_CSP)
    sign_in_as(page, hub, "duty-viewer-2", "viewer")

    # The history, filtered by village and kind, and by state (a cleared alert is not active).
    page.goto(hub.url + "/alerts?village=V-H")
    table = page.locator("#al-table")
    expect(table).to_have_attribute("data-state", "ready", timeout=20_000)
    row = table.locator(f'tr[data-id="{flood["id"]}"]')
    expect(row).to_have_attribute("data-state", "cleared")
    expect(row.locator('[data-field="level"]')).to_contain_text("立即转移")
    expect(row.locator('[data-field="state"]')).to_have_text("已解除")
    expect(row.locator(".al-name")).to_have_text(f"河口村{XSS}")
    assert table.locator('tbody tr[data-kind="rainstorm"]').count() >= 1
    page.locator('select[name="kind"]').select_option("flash_flood")
    expect(page).to_have_url(re.compile(r"kind=flash_flood"))
    expect(table.locator('tbody tr[data-kind="rainstorm"]')).to_have_count(0)
    expect(row).to_be_visible()
    page.locator('select[name="state"]').select_option("active")
    expect(row).to_have_count(0)
    expect(page.locator("#al-empty")).to_be_visible()
    page.locator('select[name="state"]').select_option("all")
    expect(row).to_be_visible()

    # Its page, with a made-up slope forecast in the answer to show how forecasts read: a good
    # fit first, then a weak one.
    fit = {"r2": 0.93}

    def with_forecast(route):
        answer = route.fetch()
        body = answer.json()
        body["forecast"] = {"failure_at": "2026-12-09T06:30:00+00:00", "r2": fit["r2"],
                            "points": 14}
        route.fulfill(response=answer, json=body)

    page.route(re.compile(rf"/api/v1/alerts/{flood['id']}$"), with_forecast)
    row.locator("a").click()
    root = page.locator("#alert")
    expect(root).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(root).to_have_attribute("data-alert-state", "cleared")
    expect(root.locator('[data-field="subject"]')).to_have_text(f"河口村{XSS}")
    expect(root.locator('[data-field="source"]')).to_have_text("SL 675-2014 临界雨量")
    expect(root.locator('[data-field="rule"] [data-key="observed_mm"] dd')).to_have_text("108 mm")
    expect(root.locator('[data-field="rule"] [data-key="threshold_mm"] dd')).to_have_text("65 mm")
    expect(root.locator('[data-field="evidence"] tr[data-sensor="RG-H"]')).to_have_count(1)
    forecast = root.locator('[data-part="forecast"]')
    expect(forecast.locator("h2")).to_have_text("预测，并非确定")
    expect(forecast).to_contain_text("并非确定")
    expect(forecast.locator('[data-key="r2"] dd')).to_have_text("0.93")
    expect(forecast.locator('[data-key="points"] dd')).to_have_text("14")
    expect(forecast.locator(".al-weak")).to_have_count(0)
    expect(root).not_to_contain_text("null")
    fit["r2"] = 0.71
    page.reload()
    expect(forecast.locator('[data-key="r2"] dd')).to_have_text("0.71", timeout=20_000)
    expect(forecast.locator(".al-weak")).to_have_text("拟合较差（r² 低于 0.8）：此预测更不可靠。")
    history = root.locator('[data-field="history"]')
    expect(history.locator('tr[data-state="cleared"] .al-note')).to_have_text("水位回落<b>安全</b>")
    cap = root.locator('[data-field="cap"]')
    expect(cap.locator("li")).to_have_count(2)  # the Alert, then the AllClear Update
    expect(root.locator('[data-field="cap-link"]')).to_have_attribute(
        "href", f"/api/v1/alerts/{flood['id']}.cap")
    page.screenshot(path=str(artifacts / "alert-page.png"), full_page=True)
    assert page.evaluate("window.__xss") is None and page.evaluate("window.__csp") == []
    assert page.errors == []


def test_the_threshold_editor_shows_the_rain_now_and_names_each_bad_cell(hub, commander_api,
                                                                         page, artifacts):
    api = commander_api
    close_all(hub, api)
    token = watched_village(hub, api, code="V-T", name=f"龙潭村{XSS}", gauge="RG-T", lon=110.2,
                            population=300)
    storm(hub, token, "RG-T")
    page.add_init_script(WATCH_CSP)
    sign_in_as(page, hub, "duty-dispatcher-2", "dispatcher")
    page.goto(hub.url + "/villages/V-T/thresholds")
    form = page.locator("#th-form")
    expect(form).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(page.locator(".th-village")).to_have_text(f"龙潭村{XSS}")
    # The rain of the windows ending now over each column; no antecedent rain known: wet row.
    expect(page.locator('[data-now="0"]')).to_have_text("当前 36 mm")
    expect(page.locator('[data-now="1"]')).to_have_text("当前 108 mm")
    expect(page.locator("#th-soil")).to_have_text("前期雨量未知：适用“土壤偏湿”一行（最稳妥）。")
    expect(page.locator("tr.th-applies")).to_have_count(2)

    def cell(path):
        return page.locator(f'input[data-path="{path}"]')

    def td(path):
        return page.locator(f'td:has(> input[data-path="{path}"])')

    expect(td("prepare.wet[0]")).to_have_class(re.compile(r"\bth-reached\b"))  # 36 >= 35
    expect(td("prepare.dry[0]")).not_to_have_class(re.compile(r"\bth-reached\b"))  # 36 < 45
    expect(td("evacuate.wet[1]")).to_have_class(re.compile(r"\bth-reached\b"))  # 108 >= 65

    # Two bad cells: each named beside its input, in Chinese; nothing saved.
    cell("evacuate.normal[1]").fill("30")
    cell("prepare.dry[2]").fill("多")
    page.get_by_role("button", name="保存阈值表").click()
    expect(form).to_have_attribute("data-state", "bad")
    expect(page.locator('[data-why="evacuate.normal[1]"]')).to_contain_text(
        "不能小于同一土壤状态和时段的准备转移值")
    expect(page.locator('[data-why="prepare.dry[2]"]')).to_contain_text("必须是数字")
    expect(cell("evacuate.normal[1]")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(artifacts / "thresholds-bad-cells.png"), full_page=True)
    saved = api.get(hub.url + "/api/v1/villages/V-T/thresholds", timeout=10).json()
    assert saved["evacuate"]["normal"] == TABLE["evacuate"]["normal"]

    # Fixed: saved, and the rules have the new table.
    cell("evacuate.normal[1]").fill("72")
    cell("prepare.dry[2]").fill("100")
    page.get_by_role("button", name="保存阈值表").click()
    expect(form).to_have_attribute("data-state", "saved")
    expect(page.locator('[data-why="evacuate.normal[1]"]')).to_be_hidden()
    saved = api.get(hub.url + "/api/v1/villages/V-T/thresholds", timeout=10).json()
    assert saved["evacuate"]["normal"] == [45, 72, 100]
    storm_moves_on(hub, api, "V-T", "RG-T")
    close_all(hub, api)
    assert page.evaluate("window.__xss") is None and page.evaluate("window.__csp") == []
    assert page.errors == []
