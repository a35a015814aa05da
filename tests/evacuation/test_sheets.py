"""Printable evacuation sheets (GET /api/v1/evacuation/plans/{version}/sheets) on a small township
checked by hand (both databases): one page per village with people to move, labels in Chinese
and English, the route grouped road by road, contacts, unplaced people with the reason, a drill
banner on drills only, names as text.

    V1 ─ R1 village 1000 m ─ N2 ─ R2 village bridge 50 m ─ N3 ─ R3 village 950 m ─ N4 = S2 (30)
    N4 ─ R4 county 2000 m ─ N5 ─ R5 county bridge 1000 m ─ N6 = S1 (200)
    V2 ─ R78 track (no shelter on it)            V3 (never warned)

Village roads at 30 km/h (120 s per km), county roads at 60 km/h (60 s per km).
"""

from __future__ import annotations

import lxml.html
import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import LineString, MultiPolygon, Point, box

from alerts.models import Alert
from dispatch.core import auth
from dispatch.core.choices import PERSON_ROLES
from dispatch.core.db import db
from dispatch.evacuation import pages
from maps.models import RoadSegment, Shelter, Village

NODES = {1: (107.00, 33.00), 2: (107.01, 33.00), 3: (107.0105, 33.00), 4: (107.02, 33.00),
         5: (107.04, 33.00), 6: (107.05, 33.00), 7: (107.30, 33.30), 8: (107.31, 33.30),
         9: (107.60, 33.60)}
ROADS = [("R1", 1, 2, 1000.0, "village", "none"), ("R2", 2, 3, 50.0, "village", "bridge"),
         ("R3", 3, 4, 950.0, "village", "none"), ("R4", 4, 5, 2000.0, "county", "none"),
         ("R5", 5, 6, 1000.0, "county", "bridge"), ("R78", 7, 8, 1000.0, "track", "ford")]
SPEED = {"village": 30.0, "county": 60.0, "track": 15.0}
HOSTILE = "<img src=x onerror=alert(1)>"


def _village(code, node, name, population, vulnerable, **extra):
    lon, lat = NODES[node]
    area = box(lon - 0.004, lat - 0.004, lon + 0.004, lat + 0.004)
    return Village(code=code, name_zh=name, population=population, vulnerable=vulnerable,
                   boundary=from_shape(MultiPolygon([area]), 4326),
                   centre=from_shape(Point(lon, lat + 0.0005), 4326), **extra)


def _shelter(code, node, name, capacity, **extra):
    lon, lat = NODES[node]
    return Shelter(code=code, name_zh=name, kind="school", capacity_day=capacity,
                   capacity_night=capacity, location=from_shape(Point(lon, lat + 0.0005), 4326),
                   **extra)


@pytest.fixture
def township(app):
    with db.transaction() as s:
        s.add_all([
            _village("V1", 1, "石门村", 100, 10, name_pinyin="Shimen Cun", contact_name="王建国",
                     contact_phone="13900000001"),
            _village("V2", 7, HOSTILE, 50, 5),
            _village("V3", 9, "平安村", 80, 8),
            _shelter("S1", 6, "镇中学", 200, name_pinyin="Zhen Zhongxue", contact_name="李红",
                     contact_phone="13900000002"),
            _shelter("S2", 4, "村委会", 30)])
        for code, a, b, length, road_class, structure in ROADS:
            s.add(RoadSegment(code=code, road_class=road_class, structure=structure,
                              length_m=length, speed_kmh=SPEED[road_class], source=a, target=b,
                              geometry=from_shape(LineString([NODES[a], NODES[b]]), 4326)))


@pytest.fixture
def editor(bearer):
    return bearer("dispatcher")


def make_plan(client, headers, **body) -> dict:
    answer = client.post("/api/v1/evacuation/plan", json=body, headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json


def sheets_of(client, headers, version: int):
    answer = client.get(f"/api/v1/evacuation/plans/{version}/sheets", headers=headers)
    assert answer.status_code == 200, answer.data[:500]
    assert answer.mimetype == "text/html"
    return answer.get_data(as_text=True), lxml.html.fromstring(answer.get_data(as_text=True))


def text(node) -> str:
    return " ".join(node.text_content().split())


def find(node, tag: str, css_class: str) -> list:
    """Elements below `node` with this tag and class (lxml has no CSS selectors without the
    cssselect package)."""
    return node.xpath(f".//{tag}[contains(concat(' ', normalize-space(@class), ' '), "
                      f"' {css_class} ')]")


def field(node, name: str) -> str:
    return text(node.xpath(f".//*[@data-field='{name}']")[0])


def test_a_drill_prints_one_bilingual_sheet_per_village_to_move(client, township, editor):
    doc = make_plan(client, editor, levels={"V1": "evacuate", "V2": "evacuate"})
    assert doc["drill"] is True
    html, tree = sheets_of(client, editor, doc["version"])
    sheets = find(tree, "section", "sheet")
    # V3 was never warned: nobody to move, no sheet.
    assert [s.get("data-village") for s in sheets] == ["V1", "V2"]
    assert tree.body.get("data-drill") == "true" and tree.body.get("data-sheets") == "2"

    for number, sheet in enumerate(sheets, start=1):
        words = text(sheet)
        # The drill banner, the plan's version, time and page number on every page.
        [banner] = find(sheet, "div", "drill-banner")
        assert "DRILL" in text(banner) and "演练" in text(banner)
        foot = text(find(sheet, "footer", "sheet-foot")[0])
        assert f"方案版本 Plan version {doc['version']}" in foot
        assert f"页码 Page {number} / 2" in foot
        assert "(UTC+08:00)" in foot
        # Labels in both languages on the same sheet.
        for zh, en in (("疏散转移单", "Evacuation sheet"), ("需转移人数", "People to move"),
                       ("预警级别", "Warning level"), ("立即转移", "Evacuate now")):
            assert zh in words and en in words, (zh, en)

    v1 = text(sheets[0])
    assert "石门村" in v1 and "Shimen Cun" in v1
    assert "王建国 13900000001" in v1 and "李红 13900000002" in v1
    people = {row.get("data-class"): text(row.xpath("td")[0])
              for row in sheets[0].xpath(".//table[@class='people']//tr[@data-class]")}
    assert people == {"1": "10", "2": "90"}  # the vulnerable first; empty classes left out
    trips = find(sheets[0], "tbody", "trip")
    assert [t.get("data-shelter") for t in trips] == ["S2", "S1"]  # nearest first
    near, far = trips
    assert field(near, "people") == "30"
    assert field(far, "people") == "70"

    # Road by road: consecutive segments of one class make one step, bridges counted in it.
    steps = [(r.get("data-road-class"), r.get("data-segments"), r.get("data-km"),
              text(r.xpath("td")[4]), text(r.xpath("td")[5]))
             for r in find(far, "tr", "step")]
    assert steps == [("village", "3", "2.00", "4.0", "桥梁 Bridges 1"),
                     ("county", "2", "3.00", "3.0", "桥梁 Bridges 1")]
    assert "村道 Village road" in text(find(far, "tr", "step")[0])
    assert "县道 County road" in text(find(far, "tr", "step")[1])
    assert [r.get("data-road-class") for r in find(near, "tr", "step")] == ["village"]
    assert "R1 – R3 (3)" in text(find(near, "tr", "step")[0])
    # The walks to the road and from it (the centres lie ~55 m off the road nodes), and the
    # total travel time: the plan's own figure, walks included, in whole minutes.
    assert "步行：村庄至道路 Walk from the village to the road" in field(far, "walk-out")
    assert "步行：道路至避难场所 Walk from the road to the shelter" in field(far, "walk-in")
    [to_s1] = [a for a in doc["assignments"] if a["shelter"] == "S1"]
    assert field(far, "travel") == str(round(to_s1["travel_s"] / 60))

    # V2: nobody can be routed, with the reason in both languages; its name stays text.
    v2 = sheets[1]
    assert not find(v2, "tbody", "trip")
    note = find(v2, "p", "unplaced-note")[0]
    assert note.get("data-reason") == "no_route" and "50" in text(note)
    assert "No usable shelter can be reached within the travel limit" in text(note)
    assert "在行程时限内无法到达任何可用避难场所" in text(note)
    assert text(v2.xpath(".//h2[@class='village']/span[@class='name-zh']")[0]) == HOSTILE
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_live_plan_has_no_drill_banner_and_flags_roads_closed_since(client, township, editor):
    with db.transaction() as s:
        s.add(Alert(kind="flash_flood", level="evacuate", state="raised", subject_type="village",
                    subject_code="V1", active_key="flash_flood:V1", villages=["V1"],
                    people=100))
        s.query(Village).filter_by(code="V1").update({"warning_level": "evacuate"})
    doc = make_plan(client, editor)
    assert doc["drill"] is False
    html, tree = sheets_of(client, editor, doc["version"])
    assert [s.get("data-village") for s in find(tree, "section", "sheet")] == ["V1"]
    assert not find(tree, "div", "drill-banner") and "DRILL" not in html
    assert tree.body.get("data-drill") == "false"
    assert not find(tree, "tr", "closed-now")

    # A road of the printed route closes after the plan was made: the old version's sheet says
    # so where the route uses it (the next version routes around it).
    answer = client.patch("/api/v1/roads/R4", json={"is_open": False, "closed_reason": "塌方"},
                          headers=editor)
    assert answer.status_code == 200
    _, tree = sheets_of(client, editor, doc["version"])
    [closed] = tree.xpath(".//tbody[@data-shelter='S1']/tr[contains(@class, 'closed-now')]")
    assert closed.get("data-road-class") == "county"
    assert "Closed since this plan was made" in text(closed)


def test_the_page_chrome_follows_the_language_and_the_labels_stay_bilingual(client, township,
                                                                          editor, login):
    doc = make_plan(client, editor, levels={"V1": "evacuate"})
    login("viewer")
    page = client.get(f"/api/v1/evacuation/plans/{doc['version']}/sheets")
    assert page.status_code == 200
    tree = lxml.html.fromstring(page.get_data(as_text=True))
    assert tree.get("lang") == "zh-CN"
    assert "疏散转移单" in text(tree.xpath(".//header[@class='screen-bar']/h1")[0])
    client.get("/lang/en")
    tree = lxml.html.fromstring(client.get(
        f"/api/v1/evacuation/plans/{doc['version']}/sheets").get_data(as_text=True))
    assert tree.get("lang") == "en"
    heading = tree.xpath(".//header[@class='screen-bar']/h1")[0]
    assert "Evacuation sheets of plan version" in text(heading)
    sheet = text(find(tree, "section", "sheet")[0])
    assert "疏散转移单" in sheet and "Evacuation sheet" in sheet


def test_a_plan_with_nobody_to_move_prints_one_page_saying_so(client, township, editor):
    doc = make_plan(client, editor, levels={"V3": "none"})
    _, tree = sheets_of(client, editor, doc["version"])
    [sheet] = find(tree, "section", "sheet")
    assert "sheet-empty" in sheet.get("class")
    assert "Nobody is to move in this plan." in text(sheet)


@pytest.mark.parametrize("role", [str(r) for r in PERSON_ROLES])
def test_every_person_role_may_print_them(client, township, editor, bearer, role):
    doc = make_plan(client, editor, levels={"V1": "evacuate"})
    sheets_of(client, bearer(role), doc["version"])


def test_strangers_gateways_and_missing_versions_are_refused(client, township, editor):
    doc = make_plan(client, editor, levels={"V1": "evacuate"})
    url = f"/api/v1/evacuation/plans/{doc['version']}/sheets"
    assert client.get(url).status_code == 401
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
    assert client.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 403
    missing = client.get("/api/v1/evacuation/plans/99/sheets", headers=editor)
    assert missing.status_code == 404 and missing.json["error"] == "no_plan"
    assert client.get("/api/v1/evacuation/plans/x/sheets", headers=editor).status_code == 404


def test_route_steps_group_consecutive_segments_of_one_class():
    road = pages.Road
    roads = {"a": road("village", 100.0, 36.0, "none", True),
             "b": road("village", 50.0, 36.0, "ford", False),
             "c": road("county", 1000.0, 72.0, "bridge", True),
             "d": road("village", 10.0, 36.0, "none", True)}
    steps = pages.route_steps(["a", "b", "c", "d", "gone"], roads)
    assert [(s.road_class, s.codes, s.length_m, round(s.seconds, 6), s.bridges, s.fords,
             s.closed_now) for s in steps] == [
        ("village", ["a", "b"], 150.0, 15.0, 0, 1, 1),
        ("county", ["c"], 1000.0, 50.0, 1, 0, 0),
        ("village", ["d"], 10.0, 1.0, 0, 0, 0),
        ("", ["gone"], 0.0, 0.0, 0, 0, 0)]
    assert pages.route_steps([], roads) == []
    assert pages.minutes(0) == "0" and pages.minutes(20) == "1" and pages.minutes(90) == "2"
    assert pages.minutes(90, 1) == "1.5"


def test_a_sheet_with_many_shelters_or_steps_is_set_smaller():
    def sheet(trips: int, steps: int) -> pages.Sheet:
        trip = pages.Trip({"code": "S"}, 1, [0, 1, 0, 0], 60,
                          [pages.Step("village") for _ in range(steps)])
        return pages.Sheet({"code": "V"}, [0, 9, 0, 0], 9, 0, None, [trip] * trips)

    # A shelter's head counts as four step lines (pages.COMPACT_LINES, pages.TIGHT_LINES).
    assert sheet(0, 0).density == "roomy"
    assert sheet(2, 9).density == "roomy"  # 8 + 18 = 26 lines
    assert sheet(2, 10).density == "compact"
    assert sheet(4, 4).density == "compact"  # 16 + 16 = 32
    assert sheet(4, 5).density == "tight"
