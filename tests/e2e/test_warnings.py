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
        time.sleep(3)  # the evaluator's first sweep after start
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
