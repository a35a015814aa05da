"""End to end (issue #19 "Done when"): `rescuehub simulate storm` against the demo township, through
a real hub and broker, raises rainstorm signals, prepare then evacuate for riverside villages, a
landslide-rain alert and a slope-movement alert with a failure forecast; the village topics say
so; an acknowledged alert stops escalating, its CAP passes the XSD, and a cleared alert resets its
villages' topics to `none`."""

import json
import queue
import time
from pathlib import Path

import pytest
import requests
from lxml import etree

from tests.e2e.test_storm import _token
from tests.fixtures.hub import start_hub

pytestmark = pytest.mark.slow

XSD = Path(__file__).parents[1] / "alerts" / "standards" / "cap-v1.2.xsd"


def _wait(predicate, timeout=60.0, every=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


def _commander(hub) -> dict:
    added = hub.cli("user", "add", "chief", "--role", "commander")
    once = added.stdout.strip().split()[-1]
    requests.post(hub.url + "/api/v1/auth/password", json={
        "username": "chief", "password": once, "new_password": "storm over the ridge 9"})
    token = requests.post(hub.url + "/api/v1/auth/token", json={
        "username": "chief", "password": "storm over the ridge 9"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _latest_levels(observer, levels: dict) -> dict:
    while True:
        try:
            message = observer.messages.get(timeout=0.2)
        except queue.Empty:
            return levels
        if message.topic.startswith("rescuehub/v1/warnings/"):
            levels[message.topic.rsplit("/", 1)[-1]] = json.loads(message.payload)["level"]


def _plan(hub, headers, version=None):
    path = f"/api/v1/evacuation/plans/{version}" if version else "/api/v1/evacuation/plan"
    answer = requests.get(hub.url + path, headers=headers, timeout=10)
    return answer.json() if answer.status_code == 200 else None


def _evacuation_follows(hub, viewer, chief, flooded: set[str]) -> None:
    """Issue #20 "Done when": the villages at evacuate are in a plan within seconds, with routes
    along open roads to usable shelters; closing a road on a route moves those people in the
    next version, whose diff says why; a shelter reported full sends its people elsewhere."""
    def covering():
        doc = _plan(hub, viewer)
        levels = {v["code"]: v["level"] for v in (doc or {}).get("villages", ())}
        return doc if doc and all(levels.get(c) == "evacuate" for c in flooded) else None

    doc = _wait(covering, timeout=30)
    assert doc, _plan(hub, viewer)
    routed = [a for a in doc["assignments"] if a["village"] in flooded and a["roads"]]
    assert routed, doc["metrics"]
    usable = {s["code"] for s in doc["shelters"] if s["usable"]}
    assert all(a["shelter"] in usable for a in doc["assignments"])
    closed = {r["code"] for r in doc["closed_roads"]}
    assert not closed & {road for a in doc["assignments"] for road in a["roads"]}

    # Close a road on a route: the next version routes around it and its diff says why.
    road, village = routed[0]["roads"][0], routed[0]["village"]
    answer = requests.patch(f"{hub.url}/api/v1/roads/{road}", headers=chief, timeout=10,
                            json={"is_open": False, "closed_reason": "washed out"})
    assert answer.status_code == 200, answer.text

    def without_road():
        new = _plan(hub, viewer)
        return new if new and any(r["code"] == road for r in new["closed_roads"]) else None

    after = _wait(without_road, timeout=15)
    assert after and after["version"] > doc["version"]
    assert not [a for a in after["assignments"] if road in a["roads"]]
    diff = requests.get(f"{hub.url}/api/v1/evacuation/plans/{after['version']}/diff",
                        params={"from": doc["version"]}, headers=viewer, timeout=10).json()
    moved = next(m for m in diff["moves"] if m["village"] == village)
    assert {"why": "road_closed", "road": road, "reason": "closed: washed out",
            "shelter": routed[0]["shelter"]} in moved["why"], moved

    # A shelter reported full: its people go elsewhere (or are reported without a place).
    shelter = next(s for s in after["shelters"] if s["assigned"] > 0)
    answer = requests.post(f"{hub.url}/api/v1/shelters/{shelter['code']}/occupancy",
                           json={"delta": shelter["available"]}, headers=chief, timeout=10)
    assert answer.status_code == 200, answer.text

    def shelter_full():
        new = _plan(hub, viewer)
        state = {s["code"]: s for s in (new or {}).get("shelters", ())}.get(shelter["code"])
        return new if state and state["why_not"] == "full" else None

    full = _wait(shelter_full, timeout=15)
    assert full, _plan(hub, viewer)
    assert not [a for a in full["assignments"] if a["shelter"] == shelter["code"]]
    diff = requests.get(f"{hub.url}/api/v1/evacuation/plans/{full['version']}/diff",
                        params={"from": after["version"]}, headers=viewer, timeout=10).json()
    assert any({"why": "shelter_unusable", "shelter": shelter["code"], "reason": "full"}
               in m["why"] for m in diff["moves"]), diff
    # The sheets print: one page per village with people to move, in both languages.
    sheets = requests.get(f"{hub.url}/api/v1/evacuation/plans/{full['version']}/sheets",
                          headers=viewer, timeout=10)
    assert sheets.status_code == 200 and sheets.headers["Content-Type"].startswith("text/html")
    assert "Evacuation sheet" in sheets.text and village in sheets.text


def test_simulated_storm_raises_the_warnings_in_order(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    hub = start_hub(data_dir)
    observer = None
    try:
        assert hub.cli("demo", timeout=300).returncode == 0
        viewer, chief = _token(hub), _commander(hub)
        observer = hub.observer()
        observer.subscribe("rescuehub/v1/warnings/#")
        storm = hub.cli("simulate", "storm", "--hours", "6", "--speed", "720", timeout=300)
        assert storm.returncode == 0, storm.stdout + storm.stderr

        def alerts(kind):
            return requests.get(f"{hub.url}/api/v1/alerts?state=all&kind={kind}",
                                headers=viewer, timeout=5).json()["items"]

        assert _wait(lambda: [a for a in alerts("slope_movement") if a["level"] == "alarm"])
        rainstorms = alerts("rainstorm")
        assert {a["level"] for a in rainstorms} & {"orange", "red"}, rainstorms
        floods = alerts("flash_flood")
        evacuate = [a for a in floods if a["level"] == "evacuate"]
        assert evacuate, floods
        # Prepare came first for the villages that went to evacuate (levels rise one by one as
        # the storm's sums grow), each rise in the alert's history.
        histories = [requests.get(f"{hub.url}/api/v1/alerts/{a['id']}", headers=viewer)
                     .json()["history"] for a in evacuate]
        assert any([h["level"] for h in history][:2] == ["prepare", "evacuate"]
                   for history in histories), histories
        assert alerts("landslide_rain")
        slope = [a for a in alerts("slope_movement") if a["level"] == "alarm"][0]
        assert slope["forecast"] and slope["forecast"]["failure_at"] and slope["forecast"][
            "r2"] is not None
        # The village topics say evacuate for those villages.
        levels: dict = {}
        assert _wait(lambda: all(_latest_levels(observer, levels).get(code) == "evacuate"
                                 for a in evacuate for code in a["villages"]), timeout=30), levels
        _evacuation_follows(hub, viewer, chief, {c for a in evacuate for c in a["villages"]})
        # Restart the hub (and its managed broker) with the alerts active: nothing is raised
        # twice, escalation timers continue from where they were, and a new subscriber gets
        # the right retained level (the channels republish every village on connect).
        before = {a["id"]: a for kind in ("flash_flood", "landslide_rain", "slope_movement",
                                          "rainstorm") for a in alerts(kind)}
        due_before = {i: requests.get(f"{hub.url}/api/v1/alerts/{i}", headers=viewer).json()[
            "escalation_due_at"] for i in before}
        observer.close()
        hub.stop()
        hub = start_hub(data_dir)
        # The evaluator's first sweep after start (it builds its index first, and says so).
        assert _wait(lambda: "alerts: judging" in hub.output(), timeout=30), hub.output()
        after = {a["id"]: a for kind in ("flash_flood", "landslide_rain", "slope_movement",
                                         "rainstorm") for a in alerts(kind)}
        assert set(after) == set(before)
        assert {i: requests.get(f"{hub.url}/api/v1/alerts/{i}", headers=viewer).json()[
            "escalation_due_at"] for i in before} == due_before
        observer = hub.observer()
        observer.subscribe("rescuehub/v1/warnings/#")
        levels = {}
        assert _wait(lambda: all(_latest_levels(observer, levels).get(code) == "evacuate"
                                 for a in evacuate for code in a["villages"]), timeout=30), levels
        # Acknowledge one, export its CAP, then clear it: its villages go back to none.
        alert = evacuate[0]
        assert requests.post(f"{hub.url}/api/v1/alerts/{alert['id']}/ack",
                             headers=chief).json()["state"] == "acknowledged"
        xml = requests.get(f"{hub.url}/api/v1/alerts/{alert['id']}.cap", headers=viewer).content
        etree.XMLSchema(etree.parse(str(XSD))).assertValid(etree.fromstring(xml))
        # Other alerts may hold the same villages (a hazard zone's): clear those too.
        for other in alerts("flash_flood") + alerts("landslide_rain") + alerts("slope_movement"):
            if other["state"] in {"raised", "acknowledged", "escalated"} and set(
                    other["villages"]) & set(alert["villages"]):
                cleared = requests.post(f"{hub.url}/api/v1/alerts/{other['id']}/clear",
                                        json={"reason": "drill over"}, headers=chief)
                assert cleared.status_code == 200, cleared.text
        code = alert["villages"][0]
        assert _wait(lambda: _latest_levels(observer, levels).get(code) == "none", timeout=30)
    finally:
        if observer is not None:
            observer.close()
        hub.stop()
