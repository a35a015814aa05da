"""The storm simulator (pure): the design storm, the failing slope, the dry spin-up before the
storm and the drill's real-time stamps, run against recording links and a stepped clock."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from telemetry import simulate as sim
from telemetry.choices import DEFAULT_QC
from telemetry.decode import parse_timestamp
from telemetry.qc import Flag, QcParams, check

CENTRE = (109.05, 33.15)
SENSORS = [sim.SimSensor("RG-1", "rain_gauge", "GW-1", *CENTRE),
           sim.SimSensor("RG-2", "rain_gauge", "GW-1", 109.15, 33.15),  # ~9 km east
           sim.SimSensor("WL-1", "water_level", "GW-1", *CENTRE),
           sim.SimSensor("CM-1", "crack_meter", "GW-2", *CENTRE),
           sim.SimSensor("GN-1", "gnss", "GW-2", *CENTRE),
           sim.SimSensor("TL-1", "tilt", "GW-2", *CENTRE),
           sim.SimSensor("CM-2", "crack_meter", "GW-3", *CENTRE),
           sim.SimSensor("GN-2", "gnss", "GW-3", *CENTRE),
           sim.SimSensor("TL-2", "tilt", "GW-3", *CENTRE),
           sim.SimSensor("SM-1", "soil_moisture", "GW-3", *CENTRE)]
MOVING = {"CM-1", "GN-1", "TL-1"}
# Not on the 5-minute grid, with a fraction: the usual case.
START = datetime(2026, 7, 27, 12, 3, 17, 250123, tzinfo=UTC)


def test_chicago_storm_gives_a_red_signal_at_the_centre():
    total = sim.rain_between(0, 360, 360, 2000)
    wettest_3h = max(sim.rain_between(t, t + 180, 360, 400) for t in range(0, 181, 5))
    assert 130 < total < 160
    assert wettest_3h >= 100  # CMA red rainstorm signal: >= 100 mm in 3 h
    peak = max(range(0, 360, 5), key=lambda t: sim.chicago_intensity(t, 360))
    assert abs(peak - 0.4 * 360) <= 5


def test_rain_falls_off_away_from_the_centre():
    plan = sim.StormPlan(centre=CENTRE)
    assert sim.spatial_factor(SENSORS[0], plan) == 1.0
    assert sim.spatial_factor(SENSORS[1], plan) == 0.15


@pytest.mark.parametrize(("failure", "unit"), [(480.0, 1.0), (6.6 * 60, 1.0), (6.6, 0.01)])
def test_slope_follows_fukuzono(failure, unit):
    """1/v = a (t_f - t): linear, falling to zero at the failure time, in any time unit."""
    a = sim.SLOPE_A
    for fraction in (0.1, 0.3, 0.6, 0.9):
        t = fraction * failure
        v = (sim.slope_displacement(t + unit / 2, failure, a)
             - sim.slope_displacement(t - unit / 2, failure, a)) / unit
        assert 1 / v == pytest.approx(a * (failure - t), rel=1e-3)
    # Past the failure time the slope has failed: it moves no further than at 1 % before it.
    assert sim.slope_displacement(2 * failure, failure) == pytest.approx(math.log(100) / a)


@pytest.mark.parametrize(("speed", "step_s", "unit", "real_s"), [
    (1, 300.0, timedelta(seconds=1), 21600.0),     # --speed 1 is real time
    (60, 5.0, timedelta(seconds=1), 360.0),        # the default: 6 h in 6 minutes
    (300, 1.0, timedelta(seconds=1), 72.0),
    (3600, 300 / 3600, timedelta(milliseconds=1), 6.0),
])
def test_the_plan_compresses_the_storm_into_real_time(speed, step_s, unit, real_s):
    plan = sim.StormPlan(centre=CENTRE, speed=speed)
    assert plan.steps == 72
    assert plan.step_s == pytest.approx(step_s)
    assert plan.unit == unit
    assert plan.real_s == pytest.approx(real_s)
    assert plan.failure_s == pytest.approx(1.1 * real_s)


@pytest.mark.parametrize("bad", [{"speed": 0.5}, {"speed": 0}, {"speed": float("nan")},
                                 {"speed": float("inf")}, {"step_min": 0}, {"step_min": -5},
                                 {"duration_min": 4}])
def test_a_plan_refuses_what_cannot_be_a_drill(bad):
    with pytest.raises(ValueError):
        sim.StormPlan(centre=CENTRE, **bad)


def _by_sensor(pairs):
    series = {}
    for _gateway, reading in pairs:
        series.setdefault(reading["sensor"], []).append((reading["ts"], reading["value"]))
    return series


def test_spin_up_is_the_dry_still_day_before_the_storm_on_the_5_minute_grid():
    pairs = sim.spin_up(SENSORS, START)
    series = _by_sensor(pairs)
    assert "SM-1" not in series  # kinds the simulator does not report are left out
    assert set(series) == {s.code for s in SENSORS} - {"SM-1"}
    for code, readings in series.items():
        times = [t for t, _ in readings]
        # 288 five-minute reports in (start - 24 h, start], then one at the start itself.
        assert len(times) == 289, code
        assert times[0] == "2026-07-26T12:05:00+00:00"
        assert times[-2] == "2026-07-27T12:00:00+00:00"
        assert times[-1] == "2026-07-27T12:03:17.250+00:00"
        parsed = [parse_timestamp(t) for t in times]
        assert all(sim.on_grid(t) for t in parsed[:-1])
        assert parsed == sorted(set(parsed))
    assert {v for _, v in series["RG-1"] + series["RG-2"]} == {0.0}
    # Oldest first across the gateways' sensors, as a catching-up gateway sends.
    assert [parse_timestamp(r["ts"]) for _, r in pairs] == sorted(
        parse_timestamp(r["ts"]) for _, r in pairs)


@pytest.mark.parametrize(("code", "low", "high"), [
    ("WL-1", 1.18, 1.22),   # base stage, ±2 cm daily swing
    ("CM-2", 192.0, 193.0),  # 5 mm + 0.2 mm/day since 2024-01-01
    ("TL-2", 1.13, 1.14),   # 0.2 deg + 0.001 deg/day
])
def test_spin_up_values_are_steady(code, low, high):
    values = [v for _, v in _by_sensor(sim.spin_up(SENSORS, START))[code]]
    assert all(low <= v <= high for v in values), (min(values), max(values))


def test_a_second_drill_repeats_the_spin_up_exactly():
    """The same (sensor, ts) always gets the same value: the hub counts a repeat as a
    duplicate, never a conflict."""
    first = {(r["sensor"], r["ts"]): r["value"] for _, r in sim.spin_up(SENSORS, START)}
    later = START + timedelta(hours=5, minutes=2, seconds=7)
    second = {(r["sensor"], r["ts"]): r["value"] for _, r in sim.spin_up(SENSORS, later)}
    shared = first.keys() & second.keys()
    assert len(shared) == 9 * (288 - 61)  # 24 h less the 5 h 5 min between the drills
    assert all(first[key] == second[key] for key in shared)


def test_a_start_on_the_grid_is_not_reported_twice():
    on = datetime(2026, 7, 27, 12, 5, tzinfo=UTC)
    times = [t for t, _ in _by_sensor(sim.spin_up(SENSORS, on))["RG-1"]]
    assert len(times) == 288 and times[-1] == "2026-07-27T12:05:00+00:00"


def _judge(readings, kind, interval_s=300):
    """The hub's QC flags for a sensor's readings, in order (telemetry.qc, DEFAULT_QC)."""
    params = QcParams.from_mapping(DEFAULT_QC[kind], interval_s)
    history, flags = [], []
    for ts, value in readings:
        ts = parse_timestamp(ts)
        flags.append(check(value, ts, history, params, kind, ordered=True).flag)
        history.append((ts, value))
    return flags


def test_spin_up_passes_the_hubs_quality_control():
    kinds = {s.code: s.kind for s in SENSORS}
    for code, readings in _by_sensor(sim.spin_up(SENSORS, START)).items():
        assert set(_judge(readings, kinds[code])) == {Flag.GOOD}, code


@pytest.mark.parametrize(("size", "counts"), [(1000, [1000, 1000, 500, 7]),
                                              (300, [300] * 8 + [100, 7])])
def test_batches_are_per_gateway_in_order_and_never_over_the_limit(size, counts):
    pairs = [("GW-1", {"n": i}) for i in range(2500)]
    pairs[1200:1200] = [("GW-2", {"n": -i}) for i in range(7)]
    out = list(sim.batches(pairs, size))
    assert [len(b) for _, b in out] == counts
    assert [r["n"] for g, b in out if g == "GW-1" for r in b] == list(range(2500))
    assert [r["n"] for g, b in out if g == "GW-2" for r in b] == [-i for i in range(7)]


MS, S = timedelta(milliseconds=1), timedelta(seconds=1)


def _t(text):
    return parse_timestamp(text)


@pytest.mark.parametrize(("now", "previous", "unit", "expected"), [
    ("2026-07-27T12:00:01.734+00:00", None, S, "2026-07-27T12:00:01+00:00"),
    ("2026-07-27T12:00:01.734+00:00", "2026-07-27T12:00:01+00:00", S,
     "2026-07-27T12:00:02+00:00"),   # the same second: the next one
    ("2026-07-27T12:05:00.400+00:00", "2026-07-27T12:04:55+00:00", S,
     "2026-07-27T12:05:01+00:00"),   # never on the 5-minute grid
    ("2026-07-27T12:05:00.0004+00:00", None, MS, "2026-07-27T12:05:00.001+00:00"),
    ("2026-07-27T12:00:00.050+00:00", "2026-07-27T12:00:00.083+00:00", MS,
     "2026-07-27T12:00:00.084+00:00"),  # a clock that went back: still increasing
    ("2026-07-27T20:00:00.0831+08:00", None, MS, "2026-07-27T12:00:00.083+00:00"),
])
def test_next_stamp(now, previous, unit, expected):
    got = sim.next_stamp(_t(now), previous and _t(previous), unit)
    assert sim.stamp_text(got, unit) == expected


class SteppedClock:
    """The wall clock of a drill: moves only when the drill sleeps (or a publish takes time)."""

    def __init__(self, start: datetime, publish_s: float = 0.0):
        self.now = start
        self.publish_s = publish_s
        self.slept = 0.0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept += seconds
        self.now += timedelta(seconds=seconds)


class RecordingLink:
    """A gateway's connection that keeps what it was given, stamped with the clock's time."""

    def __init__(self, gateway: str, clock: SteppedClock, sent: list):
        self.gateway, self.clock, self.sent = gateway, clock, sent
        self.statuses = []

    def status(self, online: bool) -> None:
        self.statuses.append(online)

    def batch(self, readings: list[dict]) -> None:
        self.sent.append((self.gateway, self.clock(), list(readings)))
        self.clock.now += timedelta(seconds=self.clock.publish_s)


def _drill(speed, *, hours=6, publish_s=0.0):
    clock = SteppedClock(START, publish_s)
    sent, progress, spun = [], [], []
    links = {g: RecordingLink(g, clock, sent) for g in ("GW-1", "GW-2", "GW-3")}
    plan = sim.StormPlan(centre=CENTRE, duration_min=hours * 60, speed=speed)
    total = sim.run_storm(links, SENSORS, plan, MOVING, progress=lambda *a: progress.append(a),
                          spun_up=spun.append, clock=clock, sleep=clock.sleep)
    assert total == sum(len(b) for _, _, b in sent)
    assert all(link.statuses == [True] for link in links.values())
    return plan, sent, progress, spun[0], clock


def _series(sent):
    series = {}
    for _gateway, at, readings in sent:
        for r in readings:
            series.setdefault(r["sensor"], []).append((parse_timestamp(r["ts"]), r["value"],
                                                       r["ts"], at))
    return series


@pytest.mark.parametrize(("speed", "publish_s"), [(3600, 0.0), (3600, 0.03), (60, 0.0),
                                                  (1, 0.0), (3600, 1.0)])
def test_drill_stamps_are_real_unique_increasing_and_off_the_grid(speed, publish_s):
    plan, sent, progress, spun, clock = _drill(speed, publish_s=publish_s)
    assert all(len(b) <= sim.BATCH_MAX for _, _, b in sent)
    assert spun == 9 * 289
    assert [p[:2] for p in progress] == [(i, 72) for i in range(1, 73)]
    assert progress[-1][2] == pytest.approx(
        math.fsum(sim.rain_between(i * 5, (i + 1) * 5, 360) for i in range(72)), rel=1e-12)
    for code, readings in _series(sent).items():
        storm = readings[289:]
        assert len(storm) == 72, code
        times = [ts for ts, *_ in readings]
        assert times == sorted(set(times)), code  # unique and increasing per sensor
        for ts, _value, text, at in storm:
            assert not sim.on_grid(ts)
            assert ts <= at  # stamped with the time it was sent, never ahead of the clock
            assert at - ts < plan.unit + timedelta(seconds=publish_s) * 3
            assert text.endswith("+00:00")
            assert (len(text) == len("2026-07-27T12:03:17.334+00:00")) == (speed > 300)
    # Without a slow broker the storm takes its real length, 6/S hours.
    if publish_s == 0:
        assert clock.now - START == pytest.approx(timedelta(seconds=plan.real_s),
                                                  abs=timedelta(seconds=2))


@pytest.mark.parametrize("hours", [3, 6])
def test_drill_rain_is_the_design_hyetograph_at_real_time(hours):
    plan, sent, *_ = _drill(3600, hours=hours)
    series = _series(sent)
    for code, factor in (("RG-1", 1.0), ("RG-2", 0.15)):
        storm = [value for _, value, *_ in series[code][289:]]
        assert storm == [round(sim.rain_between(i * 5, (i + 1) * 5, hours * 60) * factor, 2)
                         for i in range(plan.steps)]
    # All the rain a window ending at the last report holds is the storm's: the spin-up is dry.
    assert {v for _, v, *_ in series["RG-1"][:289]} == {0.0}
    stage = [v for _, v, *_ in series["WL-1"][289:]]
    assert stage == sorted(stage) and stage[-1] - stage[0] > 2  # rises with the rain


def _window_velocity(readings, i, hours=6):
    """mm/day over the window of `hours` ending at reading i: displacement gained in it over
    the time it spans (the rules' slope velocity, DESIGN §6)."""
    now = readings[i][0]
    window = [(ts, v) for ts, v, *_ in readings[:i + 1] if ts > now - timedelta(hours=hours)]
    (t0, x0), (t1, x1) = window[0], window[-1]
    return (x1 - x0) / ((t1 - t0).total_seconds() / 86400)


@pytest.mark.parametrize("speed", [1, 60, 3600])
def test_the_moving_slope_crosses_10_50_200_mm_a_day_during_the_drill(speed):
    _plan, sent, *_ = _drill(speed)
    series = _series(sent)
    for code in ("CM-1", "GN-1"):
        readings = series[code]
        velocities = [_window_velocity(readings, i) for i in range(288, len(readings))]
        assert velocities[0] < 1  # still before the storm (the spin-up's last report)
        crossings = [next(i for i, v in enumerate(velocities) if v >= level)
                     for level in (10, 50, 200)]
        # Attention, warning, alarm: one after the other, each at a later storm report.
        assert crossings == [5, 21, 56]
        assert velocities == sorted(velocities)
    for code in ("CM-2", "GN-2"):
        velocities = [_window_velocity(series[code], i) for i in range(1, len(series[code]))]
        assert max(velocities) < 1  # stable slopes: 0.2 mm/day, far below 10
    tilt = series["TL-1"]
    assert tilt[-1][1] - tilt[288][1] == pytest.approx(
        sim.TILT_DEG_PER_MM * (series["CM-1"][-1][1] - series["CM-1"][288][1]), abs=1e-3)
    assert max(_window_velocity(series["TL-2"], i) for i in range(1, 361)) < 0.01


@pytest.mark.parametrize("speed", [60, 3600])
def test_the_moving_slope_fails_in_real_time(speed):
    """Fukuzono's inverse-velocity fit over the drill's reports forecasts the failure a tenth
    of the storm's real length after its end."""
    from telemetry.slope import inverse_velocity_forecast

    plan, sent, *_ = _drill(speed)
    readings = _series(sent)["CM-1"]
    forecast = inverse_velocity_forecast([(ts, v) for ts, v, *_ in readings[289:]])
    storm_start = readings[289][0] - timedelta(seconds=plan.step_s)
    expected = storm_start + timedelta(seconds=plan.failure_s)
    assert forecast is not None
    assert abs((forecast.failure_time - expected).total_seconds()) < 0.02 * plan.real_s


@pytest.mark.parametrize("speed", [60, 3600])
def test_drill_rain_and_slopes_pass_the_hubs_quality_control(speed):
    """Rain and slope reports of the drill are stored good; water level, rising S times faster
    than the design's, may be flagged by the rate-of-change test (it is a drill)."""
    _plan, sent, *_ = _drill(speed)
    kinds = {s.code: s.kind for s in SENSORS}
    for code, readings in _series(sent).items():
        if kinds[code] == "water_level":
            continue
        flags = _judge([(text, v) for _, v, text, _ in readings], kinds[code])
        assert set(flags) == {Flag.GOOD}, code
