"""The storm simulator's physics (pure): the design storm and the failing slope."""

from datetime import UTC, datetime

from telemetry import simulate as sim


def test_chicago_storm_gives_a_red_signal_at_the_centre():
    total = sim.rain_between(0, 360, 360, 2000)
    wettest_3h = max(sim.rain_between(t, t + 180, 360, 400) for t in range(0, 181, 5))
    assert 130 < total < 160
    assert wettest_3h >= 100  # CMA red rainstorm signal: >= 100 mm in 3 h
    peak = max(range(0, 360, 5), key=lambda t: sim.chicago_intensity(t, 360))
    assert abs(peak - 0.4 * 360) <= 5


def test_rain_falls_off_away_from_the_centre():
    plan = sim.StormPlan(centre=(109.05, 33.15))
    near = sim.SimSensor("RG-1", "rain_gauge", "GW", 109.05, 33.15)
    far = sim.SimSensor("RG-2", "rain_gauge", "GW", 109.15, 33.15)  # ~9 km east
    assert sim.spatial_factor(near, plan) == 1.0
    assert sim.spatial_factor(far, plan) == 0.15


def test_slope_follows_fukuzono():
    failure, a = 480.0, 0.02
    inverse = []
    for t in (60, 120, 240, 360):
        v = (sim.slope_displacement(t + 0.5, failure, a) - sim.slope_displacement(t - 0.5,
                                                                                  failure, a))
        inverse.append(1 / v)
    # 1/v = a (t_f - t): linear, falling to zero at the failure time.
    for t, inv in zip((60, 120, 240, 360), inverse, strict=True):
        assert abs(inv - a * (failure - t)) < 0.01


def test_readings_cover_every_sensor_kind_once_per_step():
    plan = sim.StormPlan(centre=(109.05, 33.15))
    sensors = [sim.SimSensor("RG-1", "rain_gauge", "GW-1", 109.05, 33.15),
               sim.SimSensor("WL-1", "water_level", "GW-1", 109.05, 33.15),
               sim.SimSensor("CM-1", "crack_meter", "GW-2", 109.05, 33.15),
               sim.SimSensor("TL-1", "tilt", "GW-2", 109.05, 33.15)]
    start = datetime(2026, 7, 27, 12, tzinfo=UTC)
    out = list(sim.readings_at(10, sensors, plan, {"CM-1", "TL-1"}, start))
    assert [r["sensor"] for _, r in out] == ["RG-1", "WL-1", "CM-1", "TL-1"]
    assert all(r["ts"] == "2026-07-27T12:55:00+00:00" for _, r in out)
    assert all(isinstance(r["value"], float) for _, r in out)
