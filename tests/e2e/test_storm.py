"""End to end: `rescuehub simulate storm` against a running demo hub: a dry, still day of
spin-up stamped in the past, then the storm stamped in real time, so the windows ending now hold
the whole storm, complete; the moving slope's velocity over 6 h passes the alarm level; a second
drill repeats the spin-up as duplicates, never conflicts."""

import math
from datetime import UTC, datetime, timedelta

import pytest
import requests

from telemetry import simulate as sim
from telemetry.rain import WINDOWS
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


def _wait(predicate, timeout=60.0):
    deadline = datetime.now() + timedelta(seconds=timeout)
    while datetime.now() < deadline:
        if predicate():
            return True
    return predicate()


def _metrics(hub, headers) -> dict:
    text = requests.get(hub.url + "/metrics", headers=headers, timeout=5).text
    return {name: float(value) for name, value in (line.split(" ", 1) for line in
            text.splitlines() if line.startswith("rescuehub_readings_"))}


def _drill(hub) -> tuple[str, int]:
    storm = hub.cli("simulate", "storm", "--hours", "3", "--speed", "3600", timeout=180)
    assert storm.returncode == 0, storm.stdout + storm.stderr
    assert "spin-up: " in storm.stdout and "[36/36]" in storm.stdout
    return storm.stdout, int(storm.stdout.split("done: ")[1].split()[0])


def _readings(hub, headers, code, hours) -> list[dict]:
    since = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    answer = requests.get(f"{hub.url}/api/v1/sensors/{code}/readings",
                          params={"since": since}, headers=headers).json()
    assert not answer["truncated"]
    return answer["items"]


def _velocity(readings) -> float:
    """mm/day over the readings given (the last 6 h): displacement gained over time spanned."""
    t0, t1 = (datetime.fromisoformat(readings[i]["ts"]) for i in (0, -1))
    return (readings[-1]["value"] - readings[0]["value"]) / ((t1 - t0).total_seconds() / 86400)


def test_simulated_storm_fills_the_windows_ending_now(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    hub = start_hub(data_dir)
    try:
        assert hub.cli("demo", timeout=300).returncode == 0
        headers = _token(hub)
        _output, sent = _drill(hub)
        metrics = {}

        def stored(total):
            metrics.update(_metrics(hub, headers))
            return (metrics.get("rescuehub_readings_stored_total", 0)
                    + metrics.get("rescuehub_readings_duplicate_total", 0)) >= total

        assert _wait(lambda: stored(sent)), metrics
        assert metrics["rescuehub_readings_stored_total"] == sent
        assert requests.get(hub.url + "/api/v1/dead-letters", headers=headers).json()[
            "items"] == []

        centre = _township_centre(data_dir)
        plan = sim.StormPlan(centre=(centre.x, centre.y), duration_min=180, speed=3600)
        sensors = requests.get(hub.url + "/api/v1/sensors", headers=headers).json()["items"]
        gauges = [s for s in sensors if s["kind"] == "rain_gauge"]

        def factor(g):
            return sim.spatial_factor(
                sim.SimSensor(g["code"], "rain_gauge", g["gateway"], g["lon"], g["lat"]), plan)

        nearest = max(gauges, key=factor)
        readings = _readings(hub, headers, nearest["code"], 25)
        # The hyetograph, from the simulator's own physics, not from what the hub stored.
        published = [round(sim.rain_between(i * plan.step_min, (i + 1) * plan.step_min,
                                            plan.duration_min) * factor(nearest), 2)
                     for i in range(plan.steps)]
        storm, spin_up = readings[-plan.steps:], readings[:-plan.steps]
        assert [r["value"] for r in storm] == published
        assert all(r["flag"] == "good" for r in readings)
        # The spin-up: 0 mm every 5 minutes on the grid for a day, then the drill's start.
        spin_times = [datetime.fromisoformat(r["ts"]) for r in spin_up]
        assert {r["value"] for r in spin_up} == {0.0}
        assert sum(sim.on_grid(t) for t in spin_times) == 288
        assert len(spin_up) in (288, 289)
        assert all(b - a <= sim.GRID for a, b in zip(spin_times, spin_times[1:], strict=False))
        # The storm: stamped in real time, after the spin-up, unique, off the grid.
        storm_times = [datetime.fromisoformat(r["ts"]) for r in storm]
        assert storm_times == sorted(set(storm_times)) and storm_times[0] > spin_times[-1]
        assert not any(sim.on_grid(t) for t in storm_times)

        total = math.fsum(published)
        sums = requests.get(f"{hub.url}/api/v1/sensors/{nearest['code']}/sums",
                            headers=headers).json()
        # Every window ending now holds the whole storm (it fell seconds ago) and is complete
        # thanks to the spin-up: no report stands for at most the time since the last one.
        silent_s = (datetime.fromisoformat(sums["as_of"]) - storm_times[-1]).total_seconds()
        assert set(sums["windows"]) == set(WINDOWS)
        for name, window in sums["windows"].items():
            assert window["mm"] == pytest.approx(total, abs=1e-6), name
            assert window["complete"] >= 1 - silent_s / WINDOWS[name] - 1e-4, name
        assert sums["event_mm"] == pytest.approx(total, abs=1e-6)
        layer = requests.get(hub.url + "/api/v1/layers/sensors", headers=headers).json()
        live = [f["properties"] for f in layer["features"]
                if f["properties"]["code"] == nearest["code"]][0]
        assert live["last_value"] == published[-1] and live["status"] == "reporting"

        # Slopes, over the rules' 6 h window: one slope's two displacement sensors past the
        # alarm level (200 mm/day), every other one creeping far below attention (10).
        velocities = {s["code"]: (s["hazard"], _velocity(_readings(hub, headers, s["code"], 6)))
                      for s in sensors if s["kind"] in ("crack_meter", "gnss")}
        moving = {code: v for code, v in velocities.items() if v[1] >= 200}
        assert len(moving) == 2 and len({hazard for hazard, _ in moving.values()}) == 1
        assert all(v < 1 for code, (_, v) in velocities.items() if code not in moving)

        # A second drill: its spin-up repeats the first's stamps with the same values, so the
        # hub counts them as duplicates, and nothing is a conflict.
        _output, again = _drill(hub)
        assert _wait(lambda: stored(sent + again)), metrics
        duplicates = metrics["rescuehub_readings_duplicate_total"]
        assert metrics["rescuehub_readings_stored_total"] + duplicates == sent + again
        assert len(sensors) * 280 <= duplicates <= len(sensors) * 288
        assert requests.get(hub.url + "/api/v1/dead-letters", headers=headers).json()[
            "items"] == []
        sums = requests.get(f"{hub.url}/api/v1/sensors/{nearest['code']}/sums",
                            headers=headers).json()
        assert sums["windows"]["3h"]["mm"] == pytest.approx(2 * total, abs=1e-6)
    finally:
        hub.stop()
