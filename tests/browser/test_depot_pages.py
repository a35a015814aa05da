"""The keepers' scan-first pages in a real browser against a real `rescuehub run` with the demo
township and its depot (one hub for the module). A code typed into the scan field and Enter
stands in for the USB wedge scanner (which types the code and Enter) and for the camera.

- Check-out: a keeper reaches the page from the menu, types the composite team's code, then the
  demo's boat-team kit (depot/demo.py BOAT_KIT), confirms, and sees the check-out's id and the
  items the depot picked; the API agrees.
- Refusals: an item in repair and one whose inspection is overdue say why as soon as they are
  scanned and cannot be sent; an item another keeper takes between scan and confirm comes back
  as a 409 that names it with its reason, nothing written; the rest then goes out. The holder is
  a member named with an HTML payload: it stays text, under the page's policy.
- Check-in: the team's code lists its open check-out, "return all" takes its lines, one pump is
  returned damaged with a note, and the page says it went to repair; the API agrees.
- The camera: without a camera (or permission) the page says so and keeps working; with
  Chromium's fake camera showing a QR label, the code is read in the browser (jsQR) and looked up.

Each page is checked on a 10-inch tablet both ways round (1280×800, 800×1280): nothing scrolls
sideways, no two controls overlap, every control takes a finger. Screenshots:
tests/artifacts/depot-{checkout,refused,checkin}-{landscape,portrait}.png.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, close
from tests.browser.test_hostile_names import nothing_ran, watch
from tests.browser.test_live_indicator import sign_in_as
from tests.browser.test_map import api_client, load_township
from tests.browser.test_roster_pages import LANDSCAPE, LAYOUT, PORTRAIT, TOUCH_PX, XSS
from tests.fixtures.hub import start_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEAM = "T000-ZH"  # the demo township's composite team (dispatch/roster/demo.py)
KIT = "BOAT-TEAM"  # depot/demo.py BOAT_KIT: 1 boat, 6 life jackets, 1 pump, 2 ropes, 1 first-aid
KIT_ITEMS = 13     # kit, 2 radios
MAIN = "T000-D1"
HOSTILE = "T000-X77"
ZONE = ZoneInfo("Asia/Shanghai")  # [depot] timezone


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One running hub for the module, with the demo township, its team and its depot."""
    data_dir = tmp_path_factory.mktemp("depot-pages") / "var"
    data_dir.mkdir()
    running = start_hub(data_dir)
    if running.process.poll() is not None:
        pytest.fail(f"rescuehub run exited early:\n{running.output()}")
    load_township(running)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def office(hub) -> requests.Session:
    """Another keeper at the API, and a member named with an HTML payload."""
    api = api_client(hub, "depot-office", "commander")
    answer = api.post(hub.url + "/api/v1/members", timeout=10, json={
        "code": HOSTILE, "name": XSS, "phone": "13900007777", "post": "water",
        "team": TEAM, "roles": ["rescue"], "skills": []})
    assert answer.status_code == 201, answer.text
    return api


def serviceable(hub, api, type_code: str, skip: set[str] = frozenset(), n: int = 1) -> list[str]:
    """Items of a type at the main depot that may go out now."""
    today = datetime.now(ZONE).date().isoformat()
    found = api.get(hub.url + "/api/v1/depot/items", timeout=10, params={
        "type": type_code, "site": MAIN, "status": "in_stock", "limit": 500}).json()["items"]
    codes = [i["code"] for i in found if i["code"] not in skip
             and (i["inspection_due"] or "9999") >= today and (i["expires"] or "9999") >= today]
    assert len(codes) >= n, f"the demo depot has too few serviceable {type_code}"
    return codes[:n]


def scan(page, code: str) -> None:
    """Type a code into the scan field and press Enter, as a wedge scanner does."""
    field = page.locator("#scan-code")
    field.fill(code)
    field.press("Enter")


def check_tablet(page, artifacts, name: str) -> None:
    """The page on a 10-inch tablet both ways round: a screenshot of each, and the layout rules
    of the roster pages' test (no sideways scroll, no overlaps, every control ≥ 40 px)."""
    for label, size in (("landscape", LANDSCAPE), ("portrait", PORTRAIT)):
        page.set_viewport_size(size)
        # From the top: the top bar is sticky, so a scrolled page has fields under the menu.
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(150)  # one layout after the resize
        page.screenshot(path=str(artifacts / f"depot-{name}-{label}.png"), full_page=True)
        found = page.evaluate(LAYOUT)
        assert found["sideways"] <= 0, f"{name} {label}: scrolls sideways by {found['sideways']}"
        assert found["small"] == [], f"{name} {label}: controls under {TOUCH_PX} px"
        assert found["overlaps"] == [], f"{name} {label}: controls overlap"
    page.set_viewport_size(LANDSCAPE)


def checkout_of(hub, api, checkout_id: int) -> dict:
    found = api.get(hub.url + "/api/v1/depot/checkouts", timeout=10).json()["items"]
    return next(c for c in found if c["id"] == checkout_id)


def test_keeper_checks_a_kit_out_refusals_say_why_and_the_return_sends_a_pump_to_repair(
        hub, page, artifacts, office):
    console = watch(page)
    # An item in repair and one whose inspection is overdue, both at the main depot.
    repair, overdue, lamp, radio = serviceable(hub, office, "SEARCHLIGHT", n=4)
    opened = office.post(hub.url + f"/api/v1/depot/items/{repair}/repairs",
                         json={"reason": "不亮"}, timeout=10)
    assert opened.status_code == 201, opened.text
    late = (datetime.now(ZONE).date() - timedelta(days=3)).isoformat()
    changed = office.patch(hub.url + f"/api/v1/depot/items/{overdue}",
                           json={"inspection_due": late}, timeout=10)
    assert changed.status_code == 200, changed.text

    sign_in_as(page, hub, "depot-keeper", "keeper")
    page.locator(".mainnav").get_by_text("物资库").click()
    expect(page).to_have_url(hub.url + "/depot/checkout")
    desk = page.locator("#desk")
    expect(desk).to_have_attribute("data-ready", "true")
    expect(page.locator("#scan-code")).to_be_focused()

    # --- a kit to the team --------------------------------------------------------------------
    scan(page, TEAM.lower() + "  ")
    holder = page.locator("#holder")
    expect(holder).to_have_attribute("data-code", TEAM)
    expect(holder).to_contain_text("综合应急救援队")
    expect(desk).to_have_attribute("data-step", "what")
    # A person where an item is expected is refused with the reason.
    scan(page, HOSTILE)
    status = page.locator("#scan-status")
    expect(status).to_have_attribute("data-error", "wrong_kind")
    expect(status).to_contain_text("是队员")
    scan(page, "NO-SUCH-THING")
    expect(status).to_have_attribute("data-error", "unknown_code")
    scan(page, KIT.lower())
    kit = page.locator("#kit")
    expect(kit).to_have_attribute("data-code", KIT)
    expect(kit.locator("li")).to_have_count(6)
    expect(kit.locator('li[data-short="true"]')).to_have_count(0)
    page.locator("#site").select_option(MAIN)
    check_tablet(page, artifacts, "checkout")
    confirm = page.locator("#confirm")
    expect(confirm).to_be_enabled()
    confirm.click()
    result = page.locator("#result")
    expect(result).to_be_visible()
    checkout_id = int(result.get_attribute("data-checkout"))
    expect(result).to_contain_text(f"借出单 #{checkout_id} 已登记")
    expect(result.locator("li[data-item]")).to_have_count(KIT_ITEMS)
    record = checkout_of(hub, office, checkout_id)
    assert record["to"] == {"kind": "team", "code": TEAM} and record["kit"] == KIT
    assert len([line for line in record["lines"] if line["item"]]) == KIT_ITEMS
    # Cleared for the next keeper's scan.
    expect(holder).to_be_hidden()
    expect(desk).to_have_attribute("data-step", "who")

    # --- refusals, to a member named with an HTML payload ------------------------------------
    scan(page, HOSTILE)
    expect(holder).to_have_attribute("data-code", HOSTILE)
    expect(holder.locator(".holder-name")).to_have_text(XSS)
    scan(page, repair)
    blocked = page.locator(f'#lines li[data-code="{repair}"]')
    expect(blocked).to_have_attribute("data-state", "blocked")
    expect(blocked.locator(".line-why")).to_have_text("不能借出：维修中")
    scan(page, overdue)
    late = page.locator(f'#lines li[data-code="{overdue}"]')
    expect(late.locator(".line-why")).to_contain_text("不能借出：逾期未检")
    expect(confirm).to_be_disabled()
    expect(page.locator("#problems")).to_have_text("请先移除不能借出的物品，再确认。")
    page.locator("#lines").screenshot(path=str(artifacts / "depot-refused-lines.png"))
    check_tablet(page, artifacts, "refused")
    blocked.get_by_role("button").click()
    late.get_by_role("button").click()
    scan(page, lamp)
    scan(page, radio)
    expect(page.locator('#lines li[data-state="ok"]')).to_have_count(2)
    expect(confirm).to_be_enabled()
    # Another keeper is faster with the radio: the 409 names it with its reason.
    taken = office.post(hub.url + "/api/v1/depot/checkouts", timeout=10, json={
        "items": [radio], "to": {"incident": "INC-RIVER-9"}})
    assert taken.status_code == 201, taken.text
    confirm.click()
    problems = page.locator("#problems")
    expect(problems.locator(f'li[data-code="{radio}"]')).to_contain_text("已借出")
    expect(page.locator(f'#lines li[data-code="{radio}"]')).to_have_attribute(
        "data-state", "blocked")
    lamp_now = office.get(hub.url + f"/api/v1/depot/items/{lamp}", timeout=10).json()
    assert lamp_now["status"] == "in_stock"  # nothing written
    page.locator(f'#lines li[data-code="{radio}"]').get_by_role("button").click()
    # Bulk stock goes out by quantity from a bin the keeper picks (the fullest first).
    scan(page, "sandbag")
    bags = page.locator('#lines li[data-code="SANDBAG"]')
    expect(bags.locator("select.bin option").first).to_contain_text(MAIN)
    bags.locator("input.qty").fill("0")
    expect(confirm).to_be_disabled()
    bags.locator("input.qty").fill("20")
    expect(confirm).to_be_enabled()
    confirm.click()
    expect(result).to_contain_text(HOSTILE)
    expect(result.locator('li[data-type="SANDBAG"]')).to_contain_text("× 20")
    assert office.get(hub.url + f"/api/v1/depot/items/{lamp}",
                      timeout=10).json()["status"] == "out"
    nothing_ran(page, console)

    # --- check-in: everything back, one pump damaged -----------------------------------------
    page.locator(".desk-tabs").get_by_text("归还").click()
    expect(page).to_have_url(hub.url + "/depot/checkin")
    expect(page.locator("#desk")).to_have_attribute("data-ready", "true")
    scan(page, repair)  # not out: nothing to return
    expect(page.locator("#scan-status")).to_contain_text("未借出")
    scan(page, TEAM)
    mine = page.locator(f'#open-list li[data-checkout="{checkout_id}"]')
    expect(mine).to_contain_text(f"{KIT_ITEMS} 项未还")
    mine.get_by_role("button").click()
    lines = page.locator("#lines li")
    expect(lines).to_have_count(KIT_ITEMS)
    pump = next(line["item"] for line in record["lines"] if line["type"] == "PUMP")
    pump_line = page.locator(f'#lines li[data-code="{pump}"]')
    pump_line.locator('label[data-condition="damaged"]').click()
    pump_line.locator("input.note").fill("出水量不足")
    expect(pump_line).to_have_attribute("data-condition", "damaged")
    check_tablet(page, artifacts, "checkin")
    page.locator("#confirm").click()
    back = page.locator("#result")
    expect(back).to_contain_text(f"已归还 {KIT_ITEMS} 项")
    expect(back).to_contain_text("1 件已送修")
    expect(back.locator(f'li[data-item="{pump}"]')).to_contain_text("损坏：已送修（维修单 #")
    expect(back.locator(f'li[data-checkout="{checkout_id}"]')).to_contain_text("已结清")
    after = office.get(hub.url + f"/api/v1/depot/items/{pump}", timeout=10).json()
    assert after["status"] == "repair"
    assert any(h["kind"] == "repair_opened" for h in after["history"])
    assert not checkout_of(hub, office, checkout_id)["open"]
    page.screenshot(path=str(artifacts / "depot-checkin-done.png"), full_page=True)
    nothing_ran(page, console)


def test_no_camera_says_so_and_the_page_keeps_working(hub, page, office):
    sign_in_as(page, hub, "depot-keeper-2", "keeper")
    page.goto(hub.url + "/depot/checkout")
    expect(page.locator("#desk")).to_have_attribute("data-ready", "true")
    page.locator("#scan-camera").click()
    camera = page.locator("#camera")
    expect(camera).to_have_attribute("data-state", "error")
    expect(page.locator("#camera-note")).to_contain_text("请手动输入编码")
    assert page.evaluate("typeof window.jsQR") == "function"  # the reader loaded under the CSP
    scan(page, TEAM)
    expect(page.locator("#holder")).to_have_attribute("data-code", TEAM)
    assert page.errors == []


def qr_video(path, code: str, size: int = 480) -> None:
    """A one-frame Y4M video of a QR label holding `code`, for Chromium's fake camera."""
    segno = pytest.importorskip("segno")
    import numpy as np

    # make_qr, not make: a short code would become a Micro QR, which jsQR (and most phone
    # readers) cannot read.
    rows = np.array(list(segno.make_qr(code, error="m").matrix_iter(scale=1, border=4)),
                    dtype=np.uint8)
    scale = (size * 3 // 4) // rows.shape[0]
    modules = np.kron(rows, np.ones((scale, scale), dtype=np.uint8))
    luma = np.full((size, size), 235, dtype=np.uint8)
    top = (size - modules.shape[0]) // 2
    luma[top:top + modules.shape[0], top:top + modules.shape[1]][modules == 1] = 16
    chroma = np.full((size // 2, size // 2), 128, dtype=np.uint8)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{size} H{size} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(5):
            out.write(b"FRAME\n" + luma.tobytes() + chroma.tobytes() + chroma.tobytes())


def test_the_camera_reads_a_qr_label(hub, browser, office, tmp_path, artifacts):
    video = tmp_path / "label.y4m"
    qr_video(video, TEAM)
    # A second Chromium of the same Playwright, whose fake camera shows the label.
    camera = browser.browser_type.launch(executable_path=str(CHROMIUM), headless=True, args=[
        *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    context = camera.new_context(viewport=LANDSCAPE, locale="zh-CN",
                                 timezone_id="Asia/Shanghai", permissions=["camera"])
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    try:
        sign_in_as(page, hub, "depot-keeper-3", "keeper")
        page.goto(hub.url + "/depot/checkout")
        expect(page.locator("#desk")).to_have_attribute("data-ready", "true")
        page.locator("#scan-camera").click()
        expect(page.locator("#holder")).to_have_attribute("data-code", TEAM)
        expect(page.locator("#camera-note")).to_have_text(f"已识别 {TEAM}")
        expect(page.locator("#camera video")).to_be_hidden()  # the camera is let go
        page.screenshot(path=str(artifacts / "depot-camera-read.png"))
        assert page.errors == []
    finally:
        close(context)
        camera.close()
