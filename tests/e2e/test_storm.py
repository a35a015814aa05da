"""End to end: `rescuehub simulate storm` against a running demo hub fills the sensors with live
values, and the sums the hub serves match the simulated hyetograph."""

import math
from datetime import datetime, timedelta

import pytest
import requests

from telemetry import simulate as sim
from tests.fixtures.hub import start_hub

pytestmark = pytest.mark.slow


def _token(hub) -> dict:
    added = hub.cli("user", "add", "watcher", "--role", "viewer")
    assert added.returncode == 0, added.stderr
    once = added.stdout.strip().split()[-1]
    changed = requests.post(hub.url + "/api/v1/auth/password", json={
        "username": "watcher", "password": once, "new_password": "rain on the hills 7"})
    assert changed.status_code == 200, changed.text
    token = requests.post(hub.url + "/api/v1/auth/token", json={
        "username": "watcher", "password": "rain on the hills 7"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _township_centre(data_dir):
    """Where the simulator centres its storm: the township's centroid, read from the hub's
    SpatiaLite file as the CLI reads it."""
    from geoalchemy2.shape import to_shape
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from dispatch.core.db import make_engine
    from maps.models import Township

    engine = make_engine(f"sqlite:///{data_dir / 'rescuehub.sqlite'}")
    try:
        with Session(engine) as s:
            township = s.scalar(select(Township).order_by(Township.code))
            return to_shape(township.boundary).centroid
    finally:
        engine.dispose()


def _wait(predicate, timeout=30.0):
    deadline = datetime.now() + timedelta(seconds=timeout)
    while datetime.now() < deadline:
        if predicate():
            return True
    return predicate()


def test_simulated_storm_is_stored_whole_and_sums_match_the_hyetograph(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    hub = start_hub(data_dir)
    try:
        assert hub.cli("demo", timeout=300).returncode == 0
        headers = _token(hub)
        storm = hub.cli("simulate", "storm", "--hours", "3", "--speed", "3600", timeout=120)
        assert storm.returncode == 0, storm.stdout + storm.stderr
        sent = int(storm.stdout.split("done: ")[1].split()[0])

        metrics = {}

        def all_stored():
            text = requests.get(hub.url + "/metrics", headers=headers, timeout=5).text
            metrics.update(line.split(" ", 1) for line in text.splitlines()
                           if line.startswith("rescuehub_readings_"))
            return float(metrics.get("rescuehub_readings_stored_total", 0)) >= sent

        assert _wait(all_stored), metrics
        assert float(metrics["rescuehub_readings_stored_total"]) == sent
        assert requests.get(hub.url + "/api/v1/dead-letters", headers=headers).json()[
            "items"] == []

        centre = _township_centre(data_dir)
        plan = sim.StormPlan(centre=(centre.x, centre.y), duration_min=180)
        gauges = [s for s in requests.get(hub.url + "/api/v1/sensors?kind=rain_gauge",
                                          headers=headers).json()["items"]]
        nearest = max(gauges, key=lambda g: sim.spatial_factor(
            sim.SimSensor(g["code"], "rain_gauge", g["gateway"], g["lon"], g["lat"]), plan))
        factor = sim.spatial_factor(sim.SimSensor(
            nearest["code"], "rain_gauge", nearest["gateway"], nearest["lon"], nearest["lat"]),
            plan)
        sums = requests.get(f"{hub.url}/api/v1/sensors/{nearest['code']}/sums",
                            headers=headers).json()
        readings = requests.get(f"{hub.url}/api/v1/sensors/{nearest['code']}/readings",
                                headers=headers).json()["items"]
        steps = plan.duration_min // plan.step_min
        assert len(readings) == steps
        # The hyetograph, from the simulator's own physics, not from what the hub stored.
        published = [round(sim.rain_between(i * plan.step_min, (i + 1) * plan.step_min,
                                            plan.duration_min) * factor, 2)
                     for i in range(steps)]
        assert [r["value"] for r in readings] == published
        assert sums["windows"]["24h"]["mm"] == pytest.approx(math.fsum(published), abs=1e-6)
        assert sums["windows"]["3h"]["mm"] == pytest.approx(math.fsum(published), abs=1e-6)
        as_of = datetime.fromisoformat(sums["as_of"])
        last_hour = [r["value"] for r in readings
                     if datetime.fromisoformat(r["ts"]) > as_of - timedelta(hours=1)]
        assert sums["windows"]["1h"]["mm"] == pytest.approx(math.fsum(last_hour), abs=1e-6)
        assert sums["windows"]["1h"]["complete"] == pytest.approx(1.0)
        assert sums["event_mm"] == pytest.approx(math.fsum(published), abs=1e-6)
        layer = requests.get(hub.url + "/api/v1/layers/sensors", headers=headers).json()
        live = [f["properties"] for f in layer["features"]
                if f["properties"]["code"] == nearest["code"]][0]
        assert live["last_value"] == published[-1] and live["status"] == "reporting"
    finally:
        hub.stop()
