"""Finding an item and reading its life, in a real browser against a real `rescuehub run` with the
demo township and its depot (~600 items with a year of history; one hub for the module): a
keeper searches a pump by name, opens its page and reads its history in words; an item checked
out through the API (POST /api/v1/depot/checkouts) shows who has it, since when and until when
on both pages, and on the item's page live, without a reload, as does its damaged return; the
problems (inspection overdue, in repair) are said in words; an item whose type name and serial
are HTML payloads stays text, under the page's policy.

Screenshots: tests/artifacts/depot-items-{landscape,portrait}.png,
tests/artifacts/depot-item-{landscape,portrait}.png, tests/artifacts/depot-item-out.png.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_depot_panel import MAIN, screenshots
from tests.browser.test_hostile_names import nothing_ran, watch
from tests.browser.test_live_indicator import sign_in_as
from tests.browser.test_map import api_client, load_township
from tests.browser.test_roster_pages import LANDSCAPE, XSS
from tests.fixtures.hub import start_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ZONE = ZoneInfo("Asia/Shanghai")
PUMP = "排涝泵"  # the demo's drainage pumps (depot/demo.py)
HOSTILE_TYPE = "XSS-TYPE"
HOSTILE_ITEM = "XSS-ITEM-1"
INCIDENT = "INC-FLOOD-7"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One running hub for the module, with the demo township and its depot."""
    data_dir = tmp_path_factory.mktemp("depot-items") / "var"
    data_dir.mkdir()
    running = start_hub(data_dir)
    if running.process.poll() is not None:
        pytest.fail(f"rescuehub run exited early:\n{running.output()}")
    load_township(running)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keeper(hub):
    """A keeper signed in to the API, and an item whose type name and serial are HTML."""
    api = api_client(hub, "items-keeper", "keeper")
    bins = api.get(hub.url + "/api/v1/depot/bins", params={"site": MAIN}, timeout=10).json()
    for path, body in (
            ("/api/v1/depot/types", {"code": HOSTILE_TYPE, "name_zh": XSS, "name_en": XSS,
                                     "category": "rescue", "serialized": True, "unit": "<b>"}),
            ("/api/v1/depot/items", {"code": HOSTILE_ITEM, "type": HOSTILE_TYPE, "serial": XSS,
                                     "condition": XSS, "bin": bins["items"][0]["path"]})):
        answer = api.post(hub.url + path, json=body, timeout=10)
        assert answer.status_code == 201, answer.text
    return api


def items(hub, api, **query) -> dict:
    query.setdefault("limit", 500)
    answer = api.get(hub.url + "/api/v1/depot/items", params=query, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def item(hub, api, code: str) -> dict:
    answer = api.get(hub.url + f"/api/v1/depot/items/{code}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def holder_name(hub, api, to: dict) -> str:
    """A holder as the pages name them: 队员 name（code）, 队伍 name（code）."""
    if to["kind"] == "team":
        teams = api.get(hub.url + "/api/v1/teams", timeout=10).json()["items"]
        return f"队伍 {next(t['name'] for t in teams if t['code'] == to['code'])}（{to['code']}）"
    member = api.get(hub.url + f"/api/v1/members/{to['code']}", timeout=10).json()
    return f"队员 {member['name']}（{to['code']}）"


def ready_now(entry: dict, today: date) -> bool:
    """In stock, inspection and expiry not passed: it may go out."""
    due, expires = entry.get("inspection_due"), entry.get("expires")
    return entry["status"] == "in_stock" and not (due and date.fromisoformat(due) < today) \
        and not (expires and date.fromisoformat(expires) < today)


def open_page(browser):
    context = browser.new_context(viewport=LANDSCAPE, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return context, page


def search(page, text: str) -> None:
    results = page.locator("#items")
    before = results.get_attribute("data-loads")
    page.locator("#filter-q").fill(text)
    expect(results).not_to_have_attribute("data-loads", before or "")
    expect(results).to_have_attribute("data-state", "ready")


def test_find_a_pump_and_read_its_whole_life(hub, browser, artifacts, keeper):
    context, page = open_page(browser)
    console = watch(page)
    sign_in_as(page, hub, "items-reader", "keeper")
    page.goto(hub.url + "/depot/items")
    results = page.locator("#items")
    expect(results).to_have_attribute("data-state", "ready")
    total = items(hub, keeper)["total"]
    assert total >= 500
    expect(results).to_have_attribute("data-total", str(total))
    expect(results).to_have_attribute("data-count", "50")
    expect(page.locator("#items-count")).to_have_text(f"共 {total} 件")
    expect(page.locator("#page-range")).to_have_text(f"第 1–50 件，共 {total} 件")
    first_page = results.locator(".item-row").first.get_attribute("data-code")
    page.locator("#page-next").click()
    expect(page.locator("#page-range")).to_have_text(f"第 51–100 件，共 {total} 件")
    second = items(hub, keeper, limit=50, offset=50)["items"]
    expect(results.locator(".item-row").first).to_have_attribute("data-code", second[0]["code"])
    assert "offset=50" in page.url
    page.locator("#page-prev").click()
    expect(results.locator(".item-row").first).to_have_attribute("data-code", first_page)

    # A pump by its name: every result is a pump, as many as the API finds.
    pumps = items(hub, keeper, q=PUMP)
    assert pumps["total"] >= 10
    search(page, PUMP)
    expect(results).to_have_attribute("data-total", str(pumps["total"]))
    expect(results.locator(".item-row")).to_have_count(pumps["total"])
    assert set(results.locator(".item-row .item-type").all_text_contents()) == {PUMP}
    expect(page.locator("#pager")).to_be_hidden()
    assert "q=" in page.url  # the query stays in the address

    # Each row says where the pump is: its bin, or who has it.
    for entry in pumps["items"]:
        row = results.locator(f'.item-row[data-code="{entry["code"]}"]')
        if entry["holder"]:
            expect(row.locator(".where .holder")).to_contain_text(entry["holder"]["to"]["code"])
        elif entry["bin"]:
            expect(row.locator(".where .bin")).to_have_text(entry["bin"])
    screenshots(page, artifacts, "depot-items")

    # The pump with the longest life so far, opened from its row.
    lives = {e["code"]: item(hub, keeper, e["code"])["history"] for e in pumps["items"]}
    code = max(lives, key=lambda c: (len({e["kind"] for e in lives[c]}), len(lives[c])))
    life = lives[code]
    kinds = {e["kind"] for e in life}
    assert {"checkout", "checkin", "inspection"} <= kinds, kinds
    results.locator(f'.item-row[data-code="{code}"] .item-link').click()
    expect(page).to_have_url(hub.url + f"/depot/items/{code}")
    history = page.locator("#history")
    expect(history).to_have_attribute("data-state", "ready")
    expect(history).to_have_attribute("data-count", str(len(life)))
    expect(page.locator(".item-head [data-field=type]")).to_have_text(PUMP)
    lines = history.locator("li.event")
    # Newest first, each at its local time, in words.
    newest = datetime.fromisoformat(life[0]["at"]).astimezone(ZONE)
    expect(lines.first.locator("time")).to_have_text(newest.strftime("%Y/%m/%d %H:%M"))
    expect(lines.first).to_have_attribute("data-kind", life[0]["kind"])
    # To whom, by name (from the roster) and code.
    out = next(e for e in life if e["kind"] == "checkout")
    expect(history.locator('li[data-kind="checkout"]').first).to_contain_text(
        f"借出给 {holder_name(hub, keeper, out['to'])}")
    expect(history.locator('li[data-kind="checkin"]').first).to_contain_text("归还：")
    inspected = history.locator('li[data-kind="inspection"]').first
    expect(inspected).to_contain_text("检查：")
    first_check = next(e for e in life if e["kind"] == "inspection")
    for step in first_check["checklist"]:
        expect(inspected.locator(".checks-done")).to_contain_text(step)
    expect(page.locator('#facts [data-field="bin"]')).to_have_text(
        item(hub, keeper, code)["bin"] or "无货位")
    screenshots(page, artifacts, "depot-item")
    nothing_ran(page, console)
    context.close()


def test_problems_are_said_in_words(hub, browser, keeper):
    context, page = open_page(browser)
    sign_in_as(page, hub, "items-dispatcher", "dispatcher")
    today = datetime.now(ZONE).date()
    overdue = next(e for e in items(hub, keeper, status="in_stock")["items"]
                   if e["inspection_due"] and date.fromisoformat(e["inspection_due"]) < today)
    page.goto(hub.url + "/depot/items")
    results = page.locator("#items")
    expect(results).to_have_attribute("data-state", "ready")
    search(page, overdue["code"])
    row = results.locator(f'.item-row[data-code="{overdue["code"]}"]')
    expect(row).to_have_attribute("data-problem", "true")
    expect(row.locator('[data-problem="inspection_overdue"]')).to_have_text(
        f"逾期未检（应于 {overdue['inspection_due']} 检查）")
    expect(row.locator('.status-word[data-status="in_stock"]')).to_have_text("在库")
    # The status filter: items in repair, each said so in red words.
    page.locator("#filter-q").fill("")
    page.locator("#filter-status").select_option("repair")
    repairs = items(hub, keeper, status="repair")["total"]
    assert repairs > 0
    expect(results).to_have_attribute("data-total", str(repairs))
    expect(results.locator('.item-row:not([data-status="repair"])')).to_have_count(0)
    expect(results.locator('.item-row [data-problem="repair"]').first).to_have_text("维修中")
    context.close()


def test_who_has_an_item_shows_on_both_pages_and_live(hub, browser, artifacts, keeper):
    context, page = open_page(browser)
    console = watch(page)
    sign_in_as(page, hub, "items-commander", "commander")
    today = datetime.now(ZONE).date()
    code = next(e["code"] for e in items(hub, keeper, q=PUMP)["items"] if ready_now(e, today))
    page.goto(hub.url + f"/depot/items/{code}")
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    history = page.locator("#history")
    expect(history).to_have_attribute("data-state", "ready")
    expect(page.locator('#facts [data-field="holder"]')).to_have_text("—")
    expect(page.locator('#item-state .status-word[data-status="in_stock"]')).to_have_text("在库")
    count = int(history.get_attribute("data-count"))
    page.evaluate("window.__sameDocument = true")

    # Checked out through the API: the open page says who has it, since when, due when.
    due = (datetime.now(ZONE) + timedelta(hours=30)).replace(second=0, microsecond=0)
    answer = keeper.post(hub.url + "/api/v1/depot/checkouts", json={
        "items": [code], "to": {"incident": INCIDENT}, "due": due.isoformat()}, timeout=10)
    assert answer.status_code == 201, answer.text
    holder = page.locator('#facts [data-field="holder"]')
    expect(holder.locator(".holder")).to_have_text(f"在 事件 {INCIDENT} 处")
    expect(holder.locator(".due")).to_have_text(f"应于 {due.strftime('%Y/%m/%d %H:%M')} 归还")
    since = datetime.fromisoformat(item(hub, keeper, code)["holder"]["since"]).astimezone(ZONE)
    expect(holder.locator(".since")).to_have_text(f"自 {since.strftime('%Y/%m/%d %H:%M')} 借出")
    expect(page.locator('#item-state .status-word[data-status="out"]')).to_have_text("已借出")
    expect(history).to_have_attribute("data-count", str(count + 1))
    expect(history.locator("li.event").first).to_have_attribute("data-kind", "checkout")
    expect(history.locator("li.event").first).to_contain_text(f"借出给 事件 {INCIDENT}")
    assert page.evaluate("window.__sameDocument")
    page.screenshot(path=str(artifacts / "depot-item-out.png"), full_page=True)
    # An event names items by `codes` (depot/live.py), or by `items` in the other shape.
    named = page.evaluate("""async () => {
        const m = await import("/static/depot-items/items_common.js");
        return [m.namedCodes({codes: ["t000-pu-001", "PUMP@T000-D1/B/1/1"]}),
                m.namedCodes({items: ["a-1", {code: "b-2"}, {}, 7]}),
                m.namedCodes(null)].map((s) => [...s].sort());
    }""")
    assert named == [["PUMP@T000-D1/B/1/1", "T000-PU-001"], ["A-1", "B-2"], []]

    # The list says so too.
    page.goto(hub.url + "/depot/items")
    search(page, code)
    row = page.locator(f'.item-row[data-code="{code}"]')
    expect(row.locator(".where .holder")).to_have_text(f"在 事件 {INCIDENT} 处")
    expect(row.locator(".where .due")).to_have_text(
        f"应于 {due.strftime('%Y/%m/%d %H:%M')} 归还")
    expect(row).not_to_have_attribute("data-problem", "true")

    # Returned damaged, live: in repair (said in red words), no holder, the return and the
    # repair in its life.
    row.locator(".item-link").click()
    expect(history).to_have_attribute("data-state", "ready")
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    page.evaluate("window.__sameDocument = true")
    answer = keeper.post(hub.url + "/api/v1/depot/checkins", json={
        "items": [{"code": code, "condition": "damaged", "note": "叶轮卡死"}]}, timeout=10)
    assert answer.status_code in (200, 201), answer.text
    expect(page.locator('#item-state [data-problem="repair"]')).to_have_text("维修中")
    expect(page.locator('#facts [data-field="holder"]')).to_have_text("—")
    expect(history.locator('li[data-kind="checkin"]').first).to_contain_text(
        f"事件 {INCIDENT} 归还：损坏")
    expect(history.locator('li[data-kind="checkin"]').first).to_contain_text("备注：叶轮卡死")
    expect(history.locator('li[data-kind="repair_opened"]').first).to_contain_text("送修")
    assert page.evaluate("window.__sameDocument")
    nothing_ran(page, console)
    context.close()


def test_a_hostile_type_name_and_serial_stay_text(hub, browser, artifacts, keeper):
    context, page = open_page(browser)
    console = watch(page)
    sign_in_as(page, hub, "items-keeper2", "keeper")
    page.goto(hub.url + "/depot/items")
    expect(page.locator("#items")).to_have_attribute("data-state", "ready")
    search(page, "xss-item")
    row = page.locator(f'.item-row[data-code="{HOSTILE_ITEM}"]')
    expect(row.locator(".item-type")).to_have_text(XSS)
    expect(row.locator(".item-serial")).to_have_text(XSS)
    row.locator(".item-link").click()
    expect(page.locator("#history")).to_have_attribute("data-state", "ready")
    expect(page.locator(".item-head [data-field=type]")).to_have_text(XSS)
    expect(page.locator('#facts [data-field="serial"]')).to_have_text(XSS)
    expect(page.locator('#facts [data-field="condition"]')).to_have_text(XSS)
    expect(page.locator("#history li.event").first).to_contain_text("登记入库")
    assert page.locator("img").count() == 1  # the brand's emblem only
    page.screenshot(path=str(artifacts / "depot-item-hostile.png"))
    nothing_ran(page, console)
    context.close()
