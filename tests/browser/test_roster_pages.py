"""The roster's pages in a real browser against a real `rescuehub run` with the demo township and
its team (one hub for the module): the roster list with its filters and certificates coloured by
expiry, a member's page with skills, coming shifts, last fix and track, the rota calendar with
two squads alternating and a gap in red naming who could fill it, leave recorded and a swap that
opens a gap approved by the commander, and the commander's notices on the office page. A member
named with an HTML payload stays text, under the page's policy. Each page is checked on a 10-inch
tablet both ways round: nothing scrolls sideways, no two controls overlap, every control takes a
finger.

Screenshots: tests/artifacts/roster-*.png.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.test_hostile_names import nothing_ran, watch
from tests.browser.test_live_indicator import sign_in_as, sign_in_first_time
from tests.browser.test_map import api_client, load_township
from tests.fixtures.hub import start_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = '<img src=x onerror="window.__xss=1">'
HOSTILE = "T000-X01"
# The demo team (dispatch/roster/demo.py): squads A (22) and B (21) of the full-time team, and
# the composite team of 18. T000-F14's first-aid certificate has expired; T000-F42's boat
# certificate runs out in 9 days, which opens a boat gap on squad B's shifts after it.
DEMO_MEMBERS = 61
EXPIRED = ("T000-F14", "first_aid")
EXPIRING = ("T000-F42", "boat")
RULES = [{"skill": "boat", "min": 2}, {"skill": "first_aid", "min": 2},
         {"skill": "licence_c1", "min": 1}]
LANDSCAPE = {"width": 1280, "height": 800}
PORTRAIT = {"width": 800, "height": 1280}
TOUCH_PX = 40
ZONE = ZoneInfo("Asia/Shanghai")  # [roster] timezone

# Every visible control of the page (menu, tabs, links, buttons, fields) with its box: none may
# be less than TOUCH_PX tall or overlap another that is not its own part; nothing may scroll
# sideways. Leaflet's own map and the checkboxes inside their (taller) labels are left out.
LAYOUT = """() => {
  const shown = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
  };
  const controls = [...document.querySelectorAll(
      ".mainnav a, main a, main button, main select, main input")]
    .filter((e) => shown(e) && !e.closest(".leaflet-container, dialog")
      && !(e.type === "checkbox" && e.closest("label")));
  const describe = (e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""} ${
    (e.textContent || e.name || "").trim().slice(0, 30)}`;
  const small = controls.filter((e) => e.getBoundingClientRect().height < TOUCH)
    .map((e) => `${describe(e)} ${Math.round(e.getBoundingClientRect().height)}px`);
  const overlaps = [];
  const boxes = controls.map((e) => e.getBoundingClientRect());
  for (let i = 0; i < controls.length; i += 1) {
    for (let j = i + 1; j < controls.length; j += 1) {
      if (controls[i].contains(controls[j]) || controls[j].contains(controls[i])) continue;
      const a = boxes[i], b = boxes[j];
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1
          && b.top < a.bottom - 1) {
        overlaps.push(`${describe(controls[i])} / ${describe(controls[j])}`);
      }
    }
  }
  return { sideways: document.documentElement.scrollWidth - window.innerWidth, small, overlaps };
}""".replace("TOUCH", str(TOUCH_PX))


def check_tablet(page, artifacts, name: str) -> None:
    """The page on a 10-inch tablet both ways round: a screenshot of each, and the layout rules
    of LAYOUT."""
    for label, size in (("landscape", LANDSCAPE), ("portrait", PORTRAIT)):
        page.set_viewport_size(size)
        page.wait_for_timeout(100)  # one layout after the resize
        page.screenshot(path=str(artifacts / f"roster-{name}-{label}.png"))
        found = page.evaluate(LAYOUT)
        assert found["sideways"] <= 0, f"{name} {label}: scrolls sideways by {found['sideways']}"
        assert found["small"] == [], f"{name} {label}: controls under {TOUCH_PX} px"
        assert found["overlaps"] == [], f"{name} {label}: controls overlap"
    page.set_viewport_size(LANDSCAPE)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One running hub for the module, with the demo township, its team and coverage rules."""
    data_dir = tmp_path_factory.mktemp("roster-pages") / "var"
    data_dir.mkdir()
    running = start_hub(data_dir)
    if running.process.poll() is not None:
        pytest.fail(f"rescuehub run exited early:\n{running.output()}")
    load_township(running)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def commander_api(hub) -> requests.Session:
    api = api_client(hub, "rota-commander", "commander")
    answer = api.put(hub.url + "/api/v1/rota/rules", json=RULES, timeout=10)
    assert answer.status_code == 200, answer.text
    return api


@pytest.fixture(scope="module")
def hostile(hub, commander_api) -> dict:
    """A member named with an HTML payload, in the squad on shift now."""
    current = coverage(hub, commander_api)[0]["squad"]
    return add_member(hub, commander_api, HOSTILE, XSS, current)


def coverage(hub, api) -> list[dict]:
    answer = api.get(hub.url + "/api/v1/rota/coverage?days=14", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["shifts"]


def add_member(hub, api, code: str, name: str, squad: str, **fields) -> dict:
    body = {"code": code, "name": name, "phone": "13900009999", "post": "water",
            "team": "T000-FT", "squad": squad, "roles": ["rescue"],
            "skills": [{"skill": "pump", "level": 2, "expires": None}], **fields}
    answer = api.post(hub.url + "/api/v1/members", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def add_phone(hub, member: str) -> str:
    """A Traccar Client phone for the member: its device identifier."""
    added = hub.cli("device", "add", member, "--kind", "traccar")
    assert added.returncode == 0, added.stdout + added.stderr
    return re.search(r"^\s*id\s+(\S+)", added.stdout, re.M).group(1)


def report(hub, identifier: str, lon: float, lat: float, *, ago_s: int = 30,
           battery: float = 80) -> None:
    """The phone reports a fix as Traccar Client / OsmAnd does (GET /api/v1/osmand)."""
    when = datetime.now(UTC) - timedelta(seconds=ago_s)
    answer = requests.get(hub.url + "/api/v1/osmand", timeout=10, params={
        "id": identifier, "lat": lat, "lon": lon, "timestamp": int(when.timestamp()),
        "accuracy": 8, "batt": battery})
    assert answer.status_code == 200, answer.text


def township_point(hub, api) -> tuple[float, float]:
    """The middle of the demo township."""
    answer = api.get(hub.url + "/api/v1/townships", timeout=10)
    west, south, east, north = answer.json()["items"][0]["bounds"]
    return (west + east) / 2, (south + north) / 2


def test_roster_list_and_member_page(hub, page, artifacts, commander_api, hostile):
    assert hub.commander_password, hub.output()
    console = watch(page)
    lon, lat = township_point(hub, commander_api)
    phone = add_phone(hub, EXPIRING[0])
    for k, ago_s in enumerate((3600, 1800, 60)):
        report(hub, phone, lon + 0.002 * k, lat + 0.001 * k, ago_s=ago_s, battery=64)

    sign_in_first_time(page, hub)
    expect(page.locator(".mainnav")).to_contain_text("队伍")
    page.locator(".mainnav").get_by_text("队伍").click()
    expect(page).to_have_url(hub.url + "/roster")
    table = page.locator("#roster")
    expect(table).to_have_attribute("data-state", "ready")
    expect(table).to_have_attribute("data-count", str(DEMO_MEMBERS + 1))
    # Certificates: the expired one red, the one running out amber, in words too.
    expired = page.locator(f'tr[data-code="{EXPIRED[0]}"] .skill[data-skill="{EXPIRED[1]}"]')
    expect(expired).to_have_attribute("data-expiry", "expired")
    expect(expired).to_contain_text("过期")
    assert expired.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(253, 236, 236)"
    soon = page.locator(f'tr[data-code="{EXPIRING[0]}"] .skill[data-skill="{EXPIRING[1]}"]')
    expect(soon).to_have_attribute("data-expiry", "soon")
    expect(soon).to_contain_text("冲锋舟驾驶")
    # The hostile name is text.
    expect(page.locator(f'tr[data-code="{HOSTILE}"] .member-name')).to_have_text(XSS)
    check_tablet(page, artifacts, "list")

    # Filters go to the API: squad A, then a skill, then a search.
    page.get_by_label("班组").select_option("A")
    expect(table).to_have_attribute("data-count", "23" if hostile["squad"] == "A" else "22")
    page.get_by_label("班组").select_option("")
    page.get_by_label("技能").select_option("boat")
    boat = commander_api.get(hub.url + "/api/v1/members?skill=boat", timeout=10).json()["items"]
    assert 0 < len(boat) < DEMO_MEMBERS
    expect(table).to_have_attribute("data-count", str(len(boat)))
    expect(table.locator('tbody tr .skill[data-skill="boat"]')).to_have_count(len(boat))
    page.get_by_label("技能").select_option("")
    page.get_by_label("搜索").fill("F42")
    expect(table).to_have_attribute("data-count", "1")

    # The member's page: skills with their expiry, coming shifts, last fix and the track.
    table.locator(f'tr[data-code="{EXPIRING[0]}"] a').click()
    expect(page).to_have_url(hub.url + f"/roster/members/{EXPIRING[0]}")
    skills = page.locator("#skills")
    expect(skills).to_have_attribute("data-state", "ready")
    expect(skills.locator(f'tr[data-skill="{EXPIRING[1]}"] .cert')).to_have_attribute(
        "data-expiry", "soon")
    shifts = page.locator("#shifts")
    expect(shifts).to_have_attribute("data-state", "ready")
    assert 6 <= int(shifts.get_attribute("data-count")) <= 8  # every other day for 14 days
    expect(page.locator('#last-fix [data-field="battery"]')).to_have_text("64 %")
    expect(page.locator('#last-fix [data-field="age"]')).to_contain_text("分钟前")
    track = page.locator("#track-map")
    expect(track).to_have_attribute("data-state", "ready")
    expect(track).to_have_attribute("data-fixes", "3")
    expect(track.locator(f'path[data-member="{EXPIRING[0]}"]')).to_have_count(1)
    # A fix while the page is open extends the track at once (a `position` event's list).
    expect(page.locator("#live[data-state=online]")).to_be_visible(timeout=20_000)
    report(hub, phone, lon + 0.008, lat + 0.004, ago_s=5, battery=61)
    expect(track).to_have_attribute("data-fixes", "4")
    expect(page.locator('#last-fix [data-field="battery"]')).to_have_text("61 %")
    check_tablet(page, artifacts, "member")

    # A hostile member's own page shows the name as text too.
    page.goto(hub.url + f"/roster/members/{HOSTILE}")
    expect(page.locator('h1 [data-field="name"]')).to_have_text(XSS)
    expect(page.locator("#skills")).to_have_attribute("data-state", "ready")
    nothing_ran(page, console)


def test_rota_calendar_gaps_leave_and_a_swap(hub, page, artifacts, commander_api, hostile):
    console = watch(page)
    shifts = coverage(hub, commander_api)
    squads = [s["squad"] for s in shifts]
    assert set(squads) == {"A", "B"}
    assert all(squads[i] != squads[i + 1] for i in range(len(squads) - 1))
    gapped = [s for s in shifts if s["gaps"]]
    assert gapped, "the demo's expiring boat certificate opens gaps on squad B"

    sign_in_as(page, hub, "rota-dispatcher", "dispatcher")
    page.goto(hub.url + "/roster/rota")
    rota = page.locator("#rota")
    expect(rota).to_have_attribute("data-state", "ready")
    expect(rota).to_have_attribute("data-shifts", str(len(shifts)))
    expect(rota).to_have_attribute("data-gaps", str(len(gapped)))
    shown = [item.get_attribute("data-squad") for item in rota.locator("li.shift").all()]
    assert shown == squads  # two squads alternating
    expect(rota.locator("li.shift").first.locator(".squad-tag")).to_have_text(
        f"{squads[0]} 班组")
    # A gap: red, with the rule's count and who could fill it.
    gap = rota.locator(f'li.shift[data-start="{gapped[0]["start"]}"]')
    expect(gap).to_have_attribute("data-gaps", "1")
    expect(gap.locator('.cover-chip[data-skill="boat"]')).to_have_attribute("data-ok", "false")
    expect(gap.locator('.cover-chip[data-skill="boat"]')).to_contain_text("1/2")
    assert gap.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(198, 40, 40)"
    expect(gap.locator(".gap-what")).to_contain_text("冲锋舟驾驶：缺 1 人")
    fillers = gapped[0]["fill"][0]["members"]
    expect(gap.locator(".fill-member")).to_have_count(len(fillers))
    expect(gap.locator(".fill-member").first).to_contain_text(fillers[0]["name"])
    check_tablet(page, artifacts, "rota")

    # Leave, recorded by a dispatcher on the rota's clock: it shows on its shift.
    first = shifts[1]
    crew = commander_api.get(hub.url + "/api/v1/rota", timeout=10, params={
        "from": first["start"], "to": first["end"]}).json()["shifts"][0]["members"]
    on_leave = crew[-1]
    page.get_by_role("button", name="登记休假").click()
    dialog = page.locator("#leave-dialog")
    dialog.get_by_label("队员").select_option(on_leave["code"])
    start = datetime.fromisoformat(first["start"]).astimezone(ZONE)
    dialog.get_by_label("开始").fill(start.strftime("%Y-%m-%dT%H:%M"))
    dialog.get_by_label("结束").fill((start + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"))
    dialog.get_by_label("原因").fill(XSS)
    dialog.get_by_role("button", name="保存").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#page-status")).to_contain_text("已登记休假")
    leave = rota.locator(f'li.shift[data-start="{first["start"]}"] .change[data-kind="leave"]')
    expect(leave).to_contain_text(on_leave["name"])
    expect(leave).to_contain_text(XSS)

    # A swap that takes a boat handler off a shift opens a gap: it waits for the commander.
    target = next(s for s in shifts if not s["gaps"] and any(
        r["skill"] == "boat" and r["have"] == r["min"] for r in s["rules"]))
    boat = next(r for r in target["rules"] if r["skill"] == "boat")["members"][0]
    composite = commander_api.get(hub.url + "/api/v1/members?team=T000-ZH", timeout=10).json()
    stand_in = next(m for m in composite["items"]
                    if not any(s["skill"] == "boat" for s in m["skills"]))
    page.get_by_role("button", name="申请换班").click()
    dialog = page.locator("#swap-dialog")
    dialog.get_by_label("班次").select_option(target["start"])
    dialog.get_by_label("当班队员").select_option(boat)
    dialog.get_by_label("替班队员").select_option(stand_in["code"])
    dialog.get_by_role("button", name="提交换班申请").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#page-status")).to_contain_text("等待指挥长批准")
    pending = page.locator("#pending")
    expect(pending).to_be_visible()
    expect(pending.locator("li")).to_have_count(1)
    expect(pending.locator("li")).to_contain_text(stand_in["name"])
    expect(pending.locator("button")).to_have_count(0)  # a dispatcher cannot approve

    # The commander approves it: the shift then has a gap of its own.
    page.goto("about:blank")  # no request of the old page may set its cookie again
    page.context.clear_cookies()
    sign_in_as(page, hub, "rota-approver", "commander")
    # The office page tells the commander of the gaps, with who could fill them.
    notices = page.locator("#notices")
    expect(notices).to_have_attribute("data-state", "ready")
    expect(notices.locator('li[data-kind="coverage_gap"]').first).to_be_visible()
    expect(notices.locator('li[data-kind="certificate_expiring"]').first).to_be_visible()
    page.goto(hub.url + "/roster/rota")
    expect(rota).to_have_attribute("data-state", "ready")
    pending.locator('button[data-action="approve"]').click()
    expect(page.locator("#page-status")).to_contain_text("已批准")
    expect(pending).to_be_hidden()
    swapped = rota.locator(f'li.shift[data-start="{target["start"]}"]')
    expect(swapped).to_have_attribute("data-gaps", "1")
    expect(swapped.locator('.change[data-kind="swap"]')).to_contain_text(stand_in["name"])
    nothing_ran(page, console)

