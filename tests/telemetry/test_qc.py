"""telemetry.qc: each QARTOD test on its own, table-driven, then how they combine."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.qc import Flag, QcParams, QcResult, check, is_silent

T0 = datetime(2026, 7, 27, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)


def history(*values: float, gap: timedelta = STEP, end: datetime = T0) -> list:
    """(ts, value) pairs, oldest first, the last one `gap` before `end`."""
    return [(end - gap - STEP * (len(values) - 1 - i), v) for i, v in enumerate(values)]


def params(**overrides) -> QcParams:
    return QcParams(expected_interval_s=300, **overrides)


# QARTOD gross range test: the user's band → suspect, the stricter site band → fail.
@pytest.mark.parametrize(("value", "flag"), [
    (5.0, Flag.GOOD), (0.0, Flag.GOOD), (10.0, Flag.GOOD),
    (-0.1, Flag.SUSPECT), (10.1, Flag.SUSPECT),
    (-1.1, Flag.FAIL), (20.5, Flag.FAIL),
    (math.nan, Flag.FAIL), (math.inf, Flag.FAIL),
])
def test_gross_range(value, flag):
    p = params(suspect_min=0, suspect_max=10, fail_min=-1, fail_max=20)
    result = check(value, T0, [], p, "water_level")
    assert result.flag is flag
    assert result.reasons == (() if flag is Flag.GOOD else ("gross_range",))


def test_gross_range_with_one_side_only():
    p = params(suspect_max=50)
    assert check(-1e6, T0, [], p, "water_level").flag is Flag.GOOD
    assert check(51, T0, [], p, "water_level").flag is Flag.SUSPECT


# QARTOD spike test (real-time form: reference = median of the last spike_window values).
@pytest.mark.parametrize(("past", "value", "flag"), [
    ((), 100.0, Flag.GOOD),  # no history: not evaluated, passes
    ((2.0, 2.1, 2.0), 2.4, Flag.GOOD),
    ((2.0, 2.1, 2.0), 2.6, Flag.SUSPECT),  # 0.6 from the median 2.0 > 0.5
    ((2.0, 2.1, 2.0), 0.9, Flag.FAIL),  # 1.1 > 1.0
    ((2.0, 9.0, 2.0), 2.2, Flag.GOOD),  # an earlier spike does not move the median
    ((9.0, 9.0, 2.0, 2.0, 2.0), 2.3, Flag.GOOD),  # only the last three count
    ((2.0,), 2.5, Flag.GOOD),  # exactly at the threshold is not above it
])
def test_spike(past, value, flag):
    p = params(spike_threshold=0.5, spike_fail_threshold=1.0)
    result = check(value, T0, history(*past), p, "water_level")
    assert result.flag is flag
    assert result.reasons == (() if flag is Flag.GOOD else ("spike",))


# QARTOD rate of change test, units per second.
@pytest.mark.parametrize(("past", "gap", "value", "flag"), [
    ((1.0,), STEP, 1.29, Flag.GOOD),  # 0.29 in 300 s < 0.001/s
    ((1.0,), STEP, 1.31, Flag.SUSPECT),
    ((1.0,), STEP, 0.69, Flag.SUSPECT),  # falling as fast counts too
    ((1.0,), STEP * 2, 1.59, Flag.GOOD),  # over 600 s the same rise is slow enough
    ((5.0, 1.0), STEP, 1.2, Flag.GOOD),  # only the latest value counts
])
def test_rate_of_change(past, gap, value, flag):
    p = params(rate_of_change_max=0.001)
    result = check(value, T0, history(*past, gap=gap), p, "water_level")
    assert result.flag is flag
    assert result.reasons == (() if flag is Flag.GOOD else ("rate_of_change",))


# QARTOD flat line test: n identical consecutive values (this one included).
@pytest.mark.parametrize(("kind", "past", "value", "flag"), [
    ("water_level", (1.0, 1.0), 1.0, Flag.GOOD),  # 3 in a row < 4
    ("water_level", (1.0, 1.0, 1.0), 1.0, Flag.SUSPECT),  # 4 in a row
    ("water_level", (1.0,) * 5, 1.0, Flag.FAIL),  # 6 in a row
    ("water_level", (1.0, 1.0, 1.0), 1.05, Flag.GOOD),
    ("water_level", (1.0, 1.0, 1.0), 1.005, Flag.SUSPECT),  # within the tolerance
    ("water_level", (2.0, 1.0, 1.0, 1.0), 1.0, Flag.SUSPECT),
    ("rain_gauge", (0.0,) * 10, 0.0, Flag.GOOD),  # a dry gauge legitimately reports 0
    ("rain_gauge", (0.5,) * 3, 0.5, Flag.SUSPECT),  # the same rain four times is not
    ("crack_meter", (0.0,) * 3, 0.0, Flag.SUSPECT),  # only rain gauges are exempt
])
def test_flat_line(kind, past, value, flag):
    p = params(stuck_count=4, stuck_fail_count=6, stuck_tolerance=0.01)
    result = check(value, T0, history(*past), p, kind)
    assert result.flag is flag
    assert result.reasons == (() if flag is Flag.GOOD else ("flat_line",))


def test_worst_flag_wins_and_every_test_is_named():
    p = params(suspect_max=10, spike_threshold=1, spike_fail_threshold=5, rate_of_change_max=0.01)
    result = check(12.0, T0, history(2.0, 2.0, 2.0), p, "water_level")
    assert result == QcResult(Flag.FAIL, ("gross_range", "spike", "rate_of_change"))
    assert check(2.0, T0, history(2.0), params(), "tilt") == QcResult(Flag.GOOD, ())


def test_history_is_what_came_before_in_time():
    p = params(spike_threshold=0.5)
    # A late reading at T0 is judged against the readings before it, not those after.
    past = history(1.0, 1.0) + [(T0 + STEP, 9.0), (T0 + 2 * STEP, 9.0)]
    assert check(1.1, T0, past, p, "water_level").flag is Flag.GOOD
    assert check(1.1, T0, list(reversed(past)), p, "water_level").flag is Flag.GOOD
    assert check(9.0, T0 + 3 * STEP, past, p, "water_level").flag is Flag.GOOD


def test_a_gap_that_made_the_sensor_missing_breaks_the_series():
    p = params(spike_threshold=0.5, rate_of_change_max=0.0001, stuck_count=2)
    after_outage = history(1.0, 1.0, gap=timedelta(seconds=901))
    assert check(5.0, T0, after_outage, p, "water_level").flag is Flag.GOOD
    assert check(1.0, T0, after_outage, p, "water_level").flag is Flag.GOOD
    just_in_time = history(1.0, 1.0, gap=timedelta(seconds=900))
    assert check(5.0, T0, just_in_time, p, "water_level").reasons == ("spike", "rate_of_change")


# QARTOD timing/gap test: silent for more than silence_factor × expected interval → missing.
@pytest.mark.parametrize(("silent_for", "factor", "missing"), [
    (timedelta(seconds=0), 3, False),
    (timedelta(seconds=899), 3, False),
    (timedelta(seconds=900), 3, False),
    (timedelta(seconds=901), 3, True),
    (timedelta(hours=2), 3, True),
    (timedelta(seconds=1499), 5, False),
    (timedelta(seconds=1501), 5, True),
])
def test_timing_gap(silent_for, factor, missing):
    assert is_silent(T0 - silent_for, T0, params(silence_factor=factor)) is missing


def test_a_sensor_that_never_reported_is_silent():
    assert is_silent(None, T0, params())


@pytest.mark.parametrize(("flag", "code"), [
    (Flag.GOOD, 1), (Flag.SUSPECT, 3), (Flag.FAIL, 4), (Flag.MISSING, 9)])
def test_flags_are_stored_as_their_names_with_qartod_codes(flag, code):
    assert flag.qartod_code == code and flag == flag.value


def test_params_from_a_sensors_stored_settings():
    p = QcParams.from_mapping({"spike_threshold": 2.5, "stuck_count": 6}, 600)
    assert (p.expected_interval_s, p.spike_threshold, p.stuck_count, p.silence_s) \
        == (600, 2.5, 6, 1800)
    with pytest.raises(ValueError, match="spike"):
        QcParams.from_mapping({"spikes": 1}, 600)


@pytest.mark.parametrize("bad", [
    {"expected_interval_s": 0}, {"silence_factor": 0}, {"stuck_count": 1},
    {"stuck_fail_count": 0}, {"spike_window": 0}])
def test_params_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        QcParams(**{"expected_interval_s": 300, **bad})


def test_a_reading_is_judged_the_same_on_only_the_history_the_tests_need():
    """The writer passes only the last `history_needed` readings when a reading is the newest,
    saying they are in order (telemetry.sensor_memory): the flag must be what the whole history
    gives, shuffled, gaps and all."""
    import random

    rng = random.Random(7)
    p = params(spike_threshold=2, spike_fail_threshold=5, spike_window=4, rate_of_change_max=0.01,
               stuck_count=5, stuck_fail_count=8)
    assert p.history_needed == 7
    for _ in range(300):
        ts, readings = T0, []
        for _ in range(rng.randint(0, 30)):
            ts += STEP * rng.choice([1, 1, 1, 2, 4])  # gaps of 4 steps exceed 3 × the interval
            readings.append((ts, rng.choice([1.0, 1.0, 1.5, 4.0, 9.0])))
        now = ts + STEP * rng.choice([1, 1, 4])
        value = rng.choice([1.0, 1.5, 9.0])
        shuffled = rng.sample(readings, len(readings))
        assert check(value, now, readings[-p.history_needed:], p, "crack_meter",
                     ordered=True) == check(value, now, shuffled, p, "crack_meter")


def _reference(value, ts, previous, p, kind):
    """check() as DESIGN §6 states it, without its shortcuts: every test runs, on every
    reading before ts back to the first gap longer than silence."""
    from telemetry import qc

    if not math.isfinite(value):
        return QcResult(Flag.FAIL, ("gross_range",))
    earlier = sorted(r for r in previous if r[0] < ts)
    start, after = len(earlier), ts
    while start > 0 and (after - earlier[start - 1][0]).total_seconds() <= p.silence_s:
        start -= 1
        after = earlier[start][0]
    consecutive = earlier[start:]
    results = {"gross_range": qc._gross_range(value, p),
               "spike": qc._spike(value, consecutive, p),
               "rate_of_change": qc._rate_of_change(value, ts, consecutive, p),
               "flat_line": qc._flat_line(value, consecutive, p, kind)}
    flag = max(results.values(), key=qc.SEVERITY.__getitem__)
    return QcResult(flag, tuple(name for name, f in results.items() if f is not Flag.GOOD))


@pytest.mark.parametrize(("kind", "settings"), [
    ("rain_gauge", {"suspect_max": 40.0, "stuck_count": 24}),  # the rain gauge's defaults
    ("rain_gauge", {"suspect_max": 40.0, "stuck_count": 3, "spike_threshold": 2}),
    ("water_level", {"spike_threshold": 1.5, "rate_of_change_max": 0.005, "stuck_count": 4}),
    ("tilt", {}),  # no test reads the history
    ("crack_meter", {"stuck_count": 3, "stuck_fail_count": 5, "fail_max": 8.0}),
])
def test_the_shortcuts_change_no_flag(kind, settings):
    """check() skips the history when no test needs it (a rain gauge's dry 0 is exempt from
    the only one that would) and stops at the first reading within one silence of ts: the flag
    and reasons are those of every test run on the whole consecutive history."""
    import random

    rng = random.Random(19)
    p = params(**settings)
    for _ in range(400):
        ts, readings = T0, []
        for _ in range(rng.randint(0, 40)):
            ts += rng.choice([timedelta(seconds=20), STEP, STEP, STEP * 4])
            readings.append((ts, rng.choice([0.0, 0.0, 1.0, 1.0, 4.0, 9.0, 45.0])))
        now = ts + rng.choice([timedelta(seconds=20), STEP, STEP * 4])
        value = rng.choice([0.0, 0.0, 1.0, 4.0, 9.0, 45.0, math.inf])
        expected = _reference(value, now, readings, p, kind)
        assert check(value, now, readings, p, kind) == expected
        assert check(value, now, readings[-p.history_needed:], p, kind,
                     ordered=True) == expected
