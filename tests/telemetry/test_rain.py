"""telemetry.rain with numbers from the sources of DESIGN §6: CMA rainstorm signals, a Chicago
design storm, the antecedent-rain index, Caine and Guzzetti thresholds."""

from __future__ import annotations

import math
import operator
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from telemetry.rain import (
    CAINE_1980,
    GUZZETTI_2008,
    WINDOWS,
    RainWindows,
    WindowSum,
    antecedent_index,
    current_event,
    event_total,
    id_threshold_exceeded,
    rain_windows,
)

T0 = datetime(2026, 7, 27, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
FIVE = timedelta(minutes=5)


def steady(mm: float, hours: float, *, end: datetime, step: timedelta = FIVE) -> list:
    """Reports of `mm` every `step` for `hours` up to `end`."""
    n = round(timedelta(hours=hours) / step)
    return [(end - step * (n - 1 - i), mm, "good") for i in range(n)]


def cma_signal(w: dict[str, WindowSum]) -> str | None:
    """CMA rainstorm signal on rolling observed sums (DESIGN §6)."""
    if w["3h"].mm >= 100:
        return "red"
    if w["3h"].mm >= 50:
        return "orange"
    if w["6h"].mm >= 50:
        return "yellow"
    if w["12h"].mm >= 50:
        return "blue"
    return None


# Steady rain every 5 min; 0.35 mm × 144 = 50.4 mm in 12 h, and so on (CMA thresholds).
@pytest.mark.parametrize(("mm", "hours", "sums", "signal"), [
    (0.35, 12, {"1h": 4.2, "3h": 12.6, "6h": 25.2, "12h": 50.4, "24h": 50.4}, "blue"),
    (0.34, 12, {"1h": 4.08, "3h": 12.24, "6h": 24.48, "12h": 48.96, "24h": 48.96}, None),
    (0.7, 6, {"1h": 8.4, "3h": 25.2, "6h": 50.4, "12h": 50.4, "24h": 50.4}, "yellow"),
    (1.4, 3, {"1h": 16.8, "3h": 50.4, "6h": 50.4, "12h": 50.4, "24h": 50.4}, "orange"),
    (1.38, 3, {"1h": 16.56, "3h": 49.68, "6h": 49.68, "12h": 49.68, "24h": 49.68}, None),
    (2.8, 3, {"1h": 33.6, "3h": 100.8, "6h": 100.8, "12h": 100.8, "24h": 100.8}, "red"),
    (2.75, 3, {"1h": 33.0, "3h": 99.0, "6h": 99.0, "12h": 99.0, "24h": 99.0}, "orange"),
])
def test_cma_signal_sums(mm, hours, sums, signal):
    now = T0 + timedelta(hours=20)
    windows = rain_windows(steady(mm, hours, end=now), now=now, interval_s=300)
    assert {k: w.mm for k, w in windows.items() if k != "10m"} == sums
    assert windows["10m"].mm == pytest.approx(2 * mm) and windows["10m"].complete == 1.0
    assert cma_signal(windows) == signal


# Chicago design storm (Keifer & Chu 1957) on the IDF curve i = a / (t + b)^c, mm/min, with the
# simulator's parameters: the depth of its wettest window of any length d is F(d) = a·d/(d+b)^c.
A, B, C, R = 25.0, 10.0, 0.7, 0.4
STORM_MIN = 360
PEAK = R * STORM_MIN


def idf_depth(d: float) -> float:
    return A * d / (d + B) ** C


def storm_depth(t: float) -> float:
    """Cumulative rain (mm) t minutes into the storm."""
    if t <= PEAK:
        return R * idf_depth(PEAK / R) - R * idf_depth((PEAK - t) / R)
    return R * idf_depth(PEAK / R) + (1 - R) * idf_depth((t - PEAK) / (1 - R))


def chicago_reports() -> list:
    """A gauge at the storm centre reporting every minute (0.001 mm resolution, no drift)."""
    return [(T0 + k * MIN, round(storm_depth(k), 3) - round(storm_depth(k - 1), 3), "good")
            for k in range(1, STORM_MIN + 1)]


@pytest.mark.parametrize(("name", "minutes"), [("10m", 10), ("1h", 60), ("3h", 180)])
def test_chicago_storm_wettest_windows_match_the_idf_curve(name, minutes):
    # The wettest d-minute window runs from PEAK − r·d to PEAK + (1 − r)·d.
    now = T0 + timedelta(minutes=PEAK + (1 - R) * minutes)
    window = rain_windows(chicago_reports(), now=now, interval_s=60)[name]
    assert window.mm == pytest.approx(idf_depth(minutes), abs=0.002)
    assert window.complete == 1.0


def test_chicago_storm_totals():
    now = T0 + timedelta(minutes=STORM_MIN)
    windows = rain_windows(chicago_reports(), now=now, interval_s=60)
    assert idf_depth(180) == pytest.approx(114.0, abs=0.5)  # a CMA red signal at the centre
    assert windows["6h"].mm == windows["24h"].mm == pytest.approx(idf_depth(360), abs=0.002)
    assert windows["6h"].complete == 1.0
    assert windows["12h"].complete == 0.5 and windows["24h"].complete == 0.25
    assert event_total(chicago_reports(), now=now, interval_s=60) == pytest.approx(
        idf_depth(360), abs=0.002)


def test_out_of_order_and_late_reports_give_identical_sums():
    reports = chicago_reports()
    in_order = RainWindows(60)
    for ts, mm, flag in reports:
        in_order.add(ts, mm, flag)
    shuffled = RainWindows(60)
    late = reports[100:140]
    rest = reports[:100] + reports[140:]
    random.Random(7).shuffle(rest)
    for ts, mm, flag in rest:
        shuffled.add(ts, mm, flag)
    now = T0 + timedelta(minutes=STORM_MIN, seconds=17)
    before = shuffled.windows(now)
    for ts, mm, flag in reversed(late):  # arriving late, newest first
        shuffled.add(ts, mm, flag)
    after = shuffled.windows(now)
    assert after == in_order.windows(now)
    assert before["6h"].mm < after["6h"].mm and before["6h"].complete < 1.0


def test_a_silent_gap_is_missing_not_zero():
    now = T0 + timedelta(hours=22)
    reports = [r for r in steady(1.0, 24, end=now)
               if not T0 + timedelta(hours=20) < r[0] <= T0 + timedelta(hours=21)]
    windows = rain_windows(reports, now=now, interval_s=300)
    assert windows["1h"] == WindowSum(12.0, 1.0)
    assert windows["3h"] == WindowSum(24.0, pytest.approx(2 / 3))
    assert windows["24h"] == WindowSum(276.0, pytest.approx(23 / 24))


def test_a_report_after_a_gap_stands_for_one_interval_only():
    gauge = RainWindows(300)
    gauge.add(T0, 1.0)
    gauge.add(T0 + timedelta(minutes=30), 6.0)  # buffered rain of 30 minutes
    now = T0 + timedelta(minutes=30)
    assert gauge.window(now, 3600) == WindowSum(7.0, pytest.approx(10 / 60))
    gauge.add(T0 + timedelta(minutes=25), 1.0)  # a late report fills part of the gap
    assert gauge.window(now, 3600) == WindowSum(8.0, pytest.approx(15 / 60))


def test_failed_and_missing_reports_are_not_data():
    now = T0 + timedelta(hours=1)
    reports = steady(2.0, 1, end=now)
    reports[3] = (reports[3][0], 50.0, "fail")
    reports[4] = (reports[4][0], 2.0, "missing")
    reports[5] = (reports[5][0], 9.0, "suspect")  # suspect is still data
    assert rain_windows(reports, now=now, interval_s=300)["1h"] == WindowSum(
        9 * 2.0 + 9.0, pytest.approx(10 / 12))


def test_a_report_replaced_at_the_same_time():
    gauge = RainWindows(300)
    gauge.add(T0, 3.0)
    gauge.add(T0, 4.5)  # a conflict resolved by replacing the stored value
    assert gauge.window(T0, 600).mm == 4.5
    gauge.add(T0, 4.5, "fail")
    assert gauge.window(T0, 600) == WindowSum(0.0, 0.0)


def test_window_edges():
    gauge = RainWindows(60)
    for ts in (T0, T0 + timedelta(seconds=30), T0 + timedelta(minutes=10)):
        gauge.add(ts, 1.0)
    gauge.add(T0 + timedelta(minutes=10, seconds=1), 5.0)  # ahead of now: not yet in a window
    now = T0 + timedelta(minutes=10)
    assert gauge.window(now, 600).mm == 2.0  # (now − 10 min, now]: T0 itself is out
    assert gauge.window(now + timedelta(seconds=1), 600).mm == 7.0
    assert gauge.window(now - timedelta(seconds=1), 599).mm == 1.0
    assert gauge.window(now, 10).mm == 1.0


def test_old_reports_fall_out_and_a_silent_gauge_reads_nothing():
    gauge = RainWindows(300)
    for ts, mm, flag in steady(1.0, 24, end=T0 + timedelta(hours=24)):
        gauge.add(ts, mm, flag)
    assert gauge.window(T0 + timedelta(hours=24), 86400) == WindowSum(288.0, 1.0)
    assert gauge.window(T0 + timedelta(hours=36), 86400) == WindowSum(144.0, 0.5)
    assert gauge.window(T0 + timedelta(days=3), 86400) == WindowSum(0.0, 0.0)
    gauge.add(T0, 5.0)  # far too old to matter now
    assert gauge.window(T0 + timedelta(days=3), 86400) == WindowSum(0.0, 0.0)
    with pytest.raises(ValueError, match="horizon"):
        gauge.window(T0 + timedelta(days=2), 86400)


def _reference(reports: list, now: datetime, seconds: int, interval_s: int) -> WindowSum:
    """The definition, by brute force: usable reports in (now − W, now] and their intervals."""
    units, covered = 0, timedelta(0)
    previous = None
    for ts, mm, flag in sorted(reports):
        start = ts - timedelta(seconds=interval_s)
        if previous is not None:
            start = max(start, previous)
        previous = ts
        if now - timedelta(seconds=seconds) < ts <= now and flag in ("good", "suspect"):
            units += round(mm * 1000)
            covered += ts - start
    return WindowSum(units / 1000, min(1.0, covered / timedelta(seconds=seconds)))


reports_strategy = st.lists(
    st.tuples(st.integers(min_value=-27 * 3600, max_value=600),
              st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.3, 12.7]),
              st.sampled_from(["good", "good", "suspect", "fail", "missing"])),
    # itemgetter, not a lambda: Hypothesis reads a lambda's source with ast.parse, which
    # Python 3.11.2 (Debian's) can fail with "AST constructor recursion depth mismatch".
    max_size=60, unique_by=operator.itemgetter(0))


@settings(max_examples=150, deadline=None)
@given(reports_strategy, st.randoms(use_true_random=False),
       st.sampled_from([60, 300, 600, 3600]), st.integers(min_value=0, max_value=3600))
def test_property_incremental_sums_equal_the_definition(raw, rnd, interval_s, later_s):
    now = T0 + timedelta(days=1)
    reports = [(now + timedelta(seconds=s, microseconds=s % 7), mm, f) for s, mm, f in raw]
    rnd.shuffle(reports)
    gauge = RainWindows(interval_s)
    half = len(reports) // 2
    for ts, mm, flag in reports[:half]:
        gauge.add(ts, mm, flag)
    for seconds in WINDOWS.values():
        assert gauge.window(now, seconds) == _reference(reports[:half], now, seconds, interval_s)
    for ts, mm, flag in reports[half:]:
        gauge.add(ts, mm, flag)
    later = now + timedelta(seconds=later_s)
    for seconds in WINDOWS.values():
        assert gauge.window(later, seconds) == _reference(reports, later, seconds, interval_s)


def _state(gauge: RainWindows) -> tuple:
    return (gauge._head, gauge._times, dict(gauge._reports),
            gauge._bin_rain, gauge._bin_covered, gauge._rain.tree, gauge._covered.tree)


@settings(max_examples=150, deadline=None)
@given(reports_strategy, st.sampled_from([60, 300, 600, 3600]),
       st.integers(min_value=0, max_value=3 * 86400))
# Found by hypothesis: a jump past the whole horizon dropped, one by one, a report that the
# ordinary cut keeps as the predecessor of the first kept minute.
@example(raw=[(0, 0.0, "good"), (-87301, 0.0, "good")], interval_s=60, spread=0)
def test_property_a_bulk_load_equals_adding_one_by_one(raw, interval_s, spread):
    """load() (a memory read from the database) leaves the gauge exactly as add() in time
    order would, including reports too old to keep and a span longer than the horizon."""
    reports = sorted((T0 + timedelta(seconds=s * (1 + spread // 3600), microseconds=s % 7),
                      mm, f) for s, mm, f in raw)
    one_by_one, bulk = RainWindows(interval_s), RainWindows(interval_s)
    for report in reports:
        one_by_one.add(*report)
    bulk.load(reports)
    assert _state(bulk) == _state(one_by_one)
    if reports:
        later = reports[-1][0] + timedelta(minutes=7)
        assert bulk.windows(later) == one_by_one.windows(later)


@settings(max_examples=200, deadline=None)
@given(reports_strategy, reports_strategy, st.sampled_from([60, 300, 600, 3600]),
       st.integers(min_value=-1, max_value=3 * 86400), st.booleans())
# A gauge asked for its windows a day after its reports: the next ones are newer than all it
# holds but older than the ring's floor (too old to keep), and the one after them is kept.
@example(held=[(0, 1.0, "good")], more=[(200, 1.0, "good"), (90000, 0.5, "good")],
         interval_s=3600, asked_s=86400 + 3600, in_order=True)
def test_property_extend_equals_adding_one_by_one(held, more, interval_s, asked_s, in_order):
    """extend() (a followed batch of readings) leaves the gauge exactly as add() of each in
    turn would: after reports it holds, a question that moved its ring, reports in time order
    or in any order (late ones, repeats of a time it holds)."""
    held_reports = [(T0 + timedelta(seconds=s), mm, f) for s, mm, f in held]
    # Seconds after the held span, so that in time order most of them are the gauge's newest.
    step = max((s for s, _, _ in held), default=0) + 1
    later = [(T0 + timedelta(seconds=step + s + 27 * 3600, microseconds=s % 5), mm, f)
             for s, mm, f in more]
    later += [held_reports[i] for i in range(0, len(held_reports), 3)]  # repeats
    later = sorted(later) if in_order else later
    one_by_one, bulk = RainWindows(interval_s), RainWindows(interval_s)
    for gauge in (one_by_one, bulk):
        for report in held_reports:
            gauge.add(*report)
        if asked_s >= 0:
            gauge.window(T0 + timedelta(seconds=asked_s), 600)
    for report in later:
        one_by_one.add(*report)
    bulk.extend(later)
    assert _state(bulk) == _state(one_by_one)
    end = max([T0 + timedelta(seconds=asked_s), *(r[0] for r in held_reports + later)])
    end += timedelta(minutes=3)
    assert bulk.windows(end) == one_by_one.windows(end)


@pytest.mark.parametrize("way", ["add", "extend", "load"])
def test_a_value_too_large_for_64_bit_sums_is_summed_exactly(way):
    """A gauge registered with a huge range can report 3e15 mm: its sums leave the 64-bit
    arrays for Python integers, and stay exact (four of them overflow 2**63 micrometres)."""
    now = T0 + timedelta(hours=2)
    reports = [(now - timedelta(minutes=5 * i), 3e15 if i % 4 else 0.1, "good")
               for i in reversed(range(24))]
    gauge = RainWindows(300)
    if way == "add":
        for report in reports:
            gauge.add(*report)
    elif way == "extend":
        gauge.extend(reports[:1])
        gauge.extend(reports[1:])
    else:
        gauge.load(reports)
    for seconds in WINDOWS.values():
        assert gauge.window(now, seconds) == _reference(reports, now, seconds, 300)
    assert gauge.window(now, 7200).mm == 54e15 + 0.6


def test_extend_refuses_a_report_that_is_not_finite():
    gauge = RainWindows(300)
    with pytest.raises(ValueError, match="finite"):
        gauge.extend([(T0, math.nan, "good")])


def test_bulk_load_refuses_disorder_and_a_used_gauge():
    gauge = RainWindows(300)
    with pytest.raises(ValueError, match="time order"):
        gauge.load([(T0 + timedelta(minutes=5), 1.0, "good"), (T0, 1.0, "good")])
    gauge = RainWindows(300)
    gauge.add(T0, 1.0)
    with pytest.raises(ValueError, match="new gauge"):
        gauge.load([(T0 + timedelta(minutes=5), 1.0, "good")])
    asked = RainWindows(300)
    asked.windows(T0 + timedelta(hours=1))  # moves the gauge's head past the reports
    with pytest.raises(ValueError, match="new gauge"):
        asked.load([(T0 + timedelta(minutes=5), 1.0, "good")])


# Rain events split by a dry gap (DESIGN §6, default 6 h).
def test_event_total_and_its_dry_gap():
    storm = steady(5.0, 1, end=T0 + timedelta(hours=1))  # 60 mm from 00:05 to 01:00
    dry = steady(0.0, 5.5, end=T0 + timedelta(hours=6.5))
    shower = [(T0 + timedelta(hours=6.5, minutes=5), 1.0, "good")]
    now = T0 + timedelta(hours=7)
    event = current_event(storm + dry + shower, now=now, interval_s=300)
    assert event is not None and event.mm == 61.0 and event.start == T0
    more_dry = steady(0.0, 6, end=T0 + timedelta(hours=7))
    shower = [(T0 + timedelta(hours=7, minutes=5), 1.0, "good")]
    now = T0 + timedelta(hours=8)
    assert event_total(storm + more_dry + shower, now=now, interval_s=300) == 1.0
    assert event_total(storm + more_dry, now=now, interval_s=300) == 0.0  # over: 6 h dry
    assert event_total(storm + more_dry, now=now, interval_s=300, dry_gap_h=7) == 60.0


def test_an_event_is_not_ended_by_missing_time():
    storm = steady(5.0, 1, end=T0 + timedelta(hours=1))
    silent_then_dry = steady(0.0, 2, end=T0 + timedelta(hours=10))  # silent 01:00-08:00
    failed = [(ts, 0.0, "fail") for ts, _, _ in steady(0.0, 3, end=T0 + timedelta(hours=13))]
    now = T0 + timedelta(hours=13)
    event = current_event(storm + silent_then_dry + failed, now=now, interval_s=300)
    assert event is not None and event.mm == 60.0 and event.dry_h == 2.0


def test_event_duration_and_intensity_for_the_id_threshold():
    reports = [(T0, 0.0, "good")] + steady(5.0, 1, end=T0 + timedelta(hours=1))
    reports += [(T0 + timedelta(hours=1, minutes=5), 0.0, "good"),
                (T0 + timedelta(hours=1, minutes=10), 50.0, "fail")]  # fail: not rain
    event = current_event(reports, now=T0 + timedelta(hours=2), interval_s=300)
    assert event is not None
    assert (event.start, event.end, event.mm) == (T0, T0 + timedelta(hours=1), 60.0)
    assert (event.duration_h, event.intensity_mm_h) == (1.0, 60.0)
    assert id_threshold_exceeded(event.intensity_mm_h, event.duration_h, CAINE_1980.alpha,
                                 CAINE_1980.beta)
    assert current_event([], now=T0, interval_s=300) is None


# Antecedent-rain index P_a = Σ K^i·P_i, i = 1 for yesterday (DESIGN §6).
def test_antecedent_index_worked_example():
    # Ten days, oldest first: 20 mm three days ago, 10 mm yesterday, K = 0.85.
    # 0.85 × 10 + 0.85³ × 20 = 8.5 + 0.614125 × 20 = 8.5 + 12.2825 = 20.7825 mm.
    days = [0, 0, 0, 0, 0, 0, 0, 20, 0, 10]
    assert antecedent_index(days) == pytest.approx(20.7825, abs=1e-9)
    # 15 days of 10 mm, a geometric series: 10 × 0.85 × (1 − 0.85^15) / (1 − 0.85)
    # = 10 × 0.85 × (1 − 0.0873542) / 0.15 = 51.71660 mm.
    assert antecedent_index([10] * 15) == pytest.approx(51.71660, abs=1e-5)
    assert antecedent_index([10] * 15, k=0.9) == pytest.approx(
        10 * 0.9 * (1 - 0.9 ** 15) / 0.1)
    assert antecedent_index([100] * 15, max_mm=80) == 80  # capped at W_m
    assert antecedent_index([]) == 0.0


@pytest.mark.parametrize("bad", [([1, -1], 0.85), ([math.nan], 0.85), ([1], 1.0), ([1], 0)])
def test_antecedent_index_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        antecedent_index(*bad)


# Intensity-duration thresholds, I = α·D^−β: Caine 1980 (14.82, 0.39), Guzzetti 2008 (2.20, 0.44).
# Curve values by hand: 14.82 × 10^−0.39 = 6.0374; 14.82 × 24^−0.39 = 4.2911;
# 2.20 × 24^−0.44 = 0.54341; 2.20 × 0.5^−0.44 = 2.9845; 2.20 × 100^−0.44 = 0.29002.
@pytest.mark.parametrize(("threshold", "duration_h", "curve"), [
    (CAINE_1980, 1.0, 14.82), (CAINE_1980, 10.0, 6.0374), (CAINE_1980, 24.0, 4.2911),
    (GUZZETTI_2008, 1.0, 2.20), (GUZZETTI_2008, 24.0, 0.54341),
    (GUZZETTI_2008, 0.5, 2.9845), (GUZZETTI_2008, 100.0, 0.29002),
])
def test_id_thresholds_just_above_and_below_the_curve(threshold, duration_h, curve):
    assert threshold.intensity(duration_h) == pytest.approx(curve, rel=1e-4)
    alpha, beta = threshold.alpha, threshold.beta
    assert id_threshold_exceeded(curve * 1.001, duration_h, alpha, beta)
    assert not id_threshold_exceeded(curve * 0.999, duration_h, alpha, beta)
    assert id_threshold_exceeded(threshold.intensity(duration_h), duration_h, alpha, beta)


def test_id_threshold_constants_and_ranges():
    assert (CAINE_1980.alpha, CAINE_1980.beta) == (14.82, 0.39)
    assert (GUZZETTI_2008.alpha, GUZZETTI_2008.beta) == (2.20, 0.44)
    assert CAINE_1980.min_h == pytest.approx(1 / 6) and GUZZETTI_2008.max_h == 1000
    with pytest.raises(ValueError):
        id_threshold_exceeded(10, 0, 14.82, 0.39)
