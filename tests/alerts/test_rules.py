"""alerts.rules with the numbers of DESIGN §6 "Evaluation, exactly" and its sources: CMA rainstorm
signals, SL 675-2014 critical rainfall, Caine 1980 / Guzzetti 2008 I-D curves, k-of-n slope
velocities; hypothesis for what must hold whatever the data (gauge order, more rain)."""

from __future__ import annotations

import math
import operator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.choices import AlertKind, rank
from alerts.rules import (
    Curve,
    Decision,
    GaugeEvent,
    GaugeRain,
    HazardRainTable,
    SensorVelocity,
    SlopeTable,
    VillageTable,
    flash_flood,
    landslide_rain,
    rainstorm,
    slope_movement,
    soil_state,
    velocity_mm_d,
    village_warning,
    window_name,
)
from telemetry.rain import WindowSum
from telemetry.slope import FailureForecast

T0 = datetime(2026, 7, 27, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)
MIN_C = 0.8


def gauge(code="RG-1", antecedent=None, last=None, complete=1.0, **mm) -> GaugeRain:
    """A gauge whose windows are given as h1=…, h3=…, h0_5=… (mm), all `complete`."""
    windows = {float(k[1:].replace("_", ".")): WindowSum(v, complete) for k, v in mm.items()}
    return GaugeRain(code, windows, antecedent, last)


# ---------------------------------------------------------------------------------------------
# Rainstorm: CMA signals (blue 50/12 h, yellow 50/6 h, orange 50/3 h, red 100/3 h)

@pytest.mark.parametrize(("h3", "h6", "h12", "level", "window_h", "threshold"), [
    (100.0, 100.0, 100.0, "red", 3, 100),
    (99.9, 99.9, 99.9, "orange", 3, 50),
    (50.0, 50.0, 50.0, "orange", 3, 50),
    (49.9, 50.0, 50.0, "yellow", 6, 50),
    (49.9, 49.9, 50.0, "blue", 12, 50),
    # The sums of steady rain in tests/telemetry/test_rain.py (0.35 mm every 5 min for 12 h …).
    (12.6, 25.2, 50.4, "blue", 12, 50),
    (25.2, 50.4, 50.4, "yellow", 6, 50),
    (50.4, 50.4, 50.4, "orange", 3, 50),
    (100.8, 100.8, 100.8, "red", 3, 100),
    (99.0, 99.0, 99.0, "orange", 3, 50),
    # Below blue: the nearest miss is shown (ties go to the lower signal).
    (49.68, 49.68, 49.68, None, 12, 50),
    (48.0, 30.0, 40.0, None, 3, 50),
    (20.0, 30.0, 49.0, None, 12, 50),
    (0.0, 0.0, 0.0, None, 12, 50),
])
def test_cma_signals(h3, h6, h12, level, window_h, threshold):
    decision = rainstorm(gauge(h3=h3, h6=h6, h12=h12), min_completeness=MIN_C)
    observed = {3: h3, 6: h6, 12: h12}[window_h]
    assert decision == Decision(level, {
        "source": "CMA rainstorm signal", "window_h": window_h, "observed_mm": observed,
        "threshold_mm": threshold, "complete": 1.0})


@pytest.mark.parametrize(("complete", "level", "window_h", "incomplete"), [
    # 120 mm in 3 h, but the 3 h window is only 79 % complete: it does not count.
    ({3: 0.79, 6: 1.0, 12: 1.0}, "yellow", 6, ("3h",)),
    ({3: 0.8, 6: 1.0, 12: 1.0}, "red", 3, ()),  # exactly min_completeness counts
    ({3: 0.79, 6: 0.79, 12: 1.0}, "blue", 12, ("3h", "6h")),
    ({3: 0.5, 6: 0.5, 12: 0.5}, None, 12, ("3h", "6h", "12h")),
])
def test_incomplete_windows_do_not_count(complete, level, window_h, incomplete):
    windows = {h: WindowSum(120.0, c) for h, c in complete.items()}
    decision = rainstorm(GaugeRain("RG-1", windows), min_completeness=MIN_C)
    assert (decision.level, decision.rule["window_h"], decision.incomplete) == (
        level, window_h, incomplete)
    assert decision.rule["complete"] == complete[window_h]


def test_rainstorm_missing_windows_are_incomplete_and_evidence_is_the_last_report():
    last = (T0, 0.5)
    decision = rainstorm(gauge(h1=80.0, h3=10.0, last=last), min_completeness=MIN_C)
    assert decision.level is None and decision.incomplete == ("6h", "12h")
    assert decision.rule["window_h"] == 3
    assert decision.evidence == ({"sensor": "RG-1", "ts": "2026-07-27T00:00:00+00:00",
                                  "value": 0.5},)
    empty = rainstorm(GaugeRain("RG-1", {}), min_completeness=MIN_C)
    assert empty == Decision(None, {"source": "CMA rainstorm signal", "window_h": None,
                                    "observed_mm": None, "threshold_mm": None,
                                    "complete": None},
                             incomplete=("3h", "6h", "12h"))


@pytest.mark.parametrize("min_completeness", [-0.1, 1.01, math.nan, math.inf])
def test_bad_min_completeness(min_completeness):
    with pytest.raises(ValueError, match="min_completeness"):
        rainstorm(gauge(h3=1.0), min_completeness=min_completeness)
    with pytest.raises(ValueError, match="min_completeness"):
        flash_flood(WORKED, [gauge(h1=1.0)], min_completeness=min_completeness)


@pytest.mark.parametrize(("windows", "antecedent", "match"), [
    ({3.0: WindowSum(math.nan, 1.0)}, None, "rain in 3h"),
    ({3.0: WindowSum(-0.1, 1.0)}, None, "rain in 3h"),
    ({3.0: WindowSum(math.inf, 1.0)}, None, "rain in 3h"),
    ({3.0: WindowSum(10.0, 1.5)}, None, "completeness"),
    ({3.0: WindowSum(10.0, -0.1)}, None, "completeness"),
    ({3.0: WindowSum(10.0, math.nan)}, None, "completeness"),
    ({0.0: WindowSum(10.0, 1.0)}, None, "window length"),
    ({-1.0: WindowSum(10.0, 1.0)}, None, "window length"),
    ({math.nan: WindowSum(10.0, 1.0)}, None, "window length"),
    ({}, -1.0, "antecedent"),
    ({}, math.inf, "antecedent"),
])
def test_bad_gauge_rain(windows, antecedent, match):
    with pytest.raises(ValueError, match=match):
        GaugeRain("RG-1", windows, antecedent)


@pytest.mark.parametrize(("hours", "name"), [
    (0.5, "30m"), (10 / 60, "10m"), (1, "1h"), (3.0, "3h"), (24, "24h"), (1.5, "1.5h")])
def test_window_names(hours, name):
    assert window_name(hours) == name


# ---------------------------------------------------------------------------------------------
# Flash flood: critical rainfall per window and soil state (SL 675-2014 practice)

# DESIGN §6 worked example: normal soil, windows 1/3/6 h, prepare 40/65/95, evacuate 45/70/100
# (dry and wet rows added, dry >= normal >= wet as the thresholds API requires).
WORKED = VillageTable(
    windows_h=(1, 3, 6),
    prepare={"dry": (50, 75, 105), "normal": (40, 65, 95), "wet": (30, 55, 85)},
    evacuate={"dry": (55, 80, 110), "normal": (45, 70, 100), "wet": (35, 60, 90)})
NORMAL_PA = 30.0

# DESIGN §6 "Village flash-flood thresholds": 立即转移 at 1 h 40/35/30, 3 h 65/60/50,
# 6 h 95/90/80 mm for dry/normal/wet (准备转移 rows illustrative, below them).
SOIL = VillageTable(
    windows_h=(1, 3, 6),
    prepare={"dry": (30, 50, 80), "normal": (25, 45, 75), "wet": (20, 40, 65)},
    evacuate={"dry": (40, 65, 95), "normal": (35, 60, 90), "wet": (30, 50, 80)})


@pytest.mark.parametrize(("h1", "h3", "h6", "level", "window_h", "threshold"), [
    (46, 46, 46, "evacuate", 1, 45),  # 46 mm in the last hour
    (30, 66, 66, "prepare", 3, 65),  # 3 h >= 65
    (30, 60, 90, None, 6, 95),  # none; the nearest miss is 90 of 95 in 6 h
    (45, 45, 45, "evacuate", 1, 45),  # reaching is enough
    (44.9, 69.9, 99.9, "prepare", 1, 40),  # each window short of evacuate; 1 h most over prepare
    (10, 20, 101, "evacuate", 6, 100),
])
def test_flash_flood_worked_example(h1, h3, h6, level, window_h, threshold):
    last = (T0, 1.5)
    decision = flash_flood(WORKED, [gauge("RG-1", NORMAL_PA, last, h1=h1, h3=h3, h6=h6)],
                           min_completeness=MIN_C)
    assert decision == Decision(level, {
        "source": "SL 675-2014 critical rainfall", "window_h": window_h,
        "observed_mm": {1: h1, 3: h3, 6: h6}[window_h], "threshold_mm": threshold,
        "soil": "normal", "soil_known": True, "antecedent_mm": NORMAL_PA, "gauge": "RG-1",
        "complete": 1.0}, ({"sensor": "RG-1", "ts": T0.isoformat(), "value": 1.5},))


@pytest.mark.parametrize(("antecedent", "soil"), [
    (0.0, "dry"), (14.9, "dry"), (15.0, "normal"), (49.9, "normal"), (50.0, "wet"),
    (120.0, "wet"), (None, "wet")])
def test_soil_state_from_antecedent_rain(antecedent, soil):
    assert soil_state(antecedent, SOIL) == soil


def test_soil_state_bounds_are_the_village_s():
    table = VillageTable(SOIL.windows_h, SOIL.prepare, SOIL.evacuate, dry_below=5, wet_above=30)
    assert [soil_state(p, table) for p in (4.9, 5, 29.9, 30)] == ["dry", "normal", "normal", "wet"]


@pytest.mark.parametrize(("antecedent", "mm", "level", "window_h", "soil"), [
    # 36 mm in 1 h: below 40 (dry 立即转移) but over 30 (dry prepare); over 35 normal, 30 wet.
    (10.0, (36, 36, 36), "prepare", 1, "dry"),
    (30.0, (36, 36, 36), "evacuate", 1, "normal"),
    (60.0, (36, 36, 36), "evacuate", 1, "wet"),
    # Unknown P_a is judged as wet soil, the lowest thresholds.
    (None, (36, 36, 36), "evacuate", 1, "wet"),
    # 55 mm in 3 h: prepare on dry (50) and normal (45) soil, evacuate on wet (50).
    (10.0, (20, 55, 55), "prepare", 3, "dry"),
    (30.0, (20, 55, 55), "prepare", 3, "normal"),
    (60.0, (20, 55, 55), "evacuate", 3, "wet"),
    (10.0, (20, 30, 70), None, 6, "dry"),
])
def test_flash_flood_soil_states(antecedent, mm, level, window_h, soil):
    h1, h3, h6 = mm
    decision = flash_flood(SOIL, [gauge("RG-1", antecedent, h1=h1, h3=h3, h6=h6)],
                           min_completeness=MIN_C)
    assert (decision.level, decision.rule["window_h"], decision.rule["soil"]) == (
        level, window_h, soil)
    assert decision.rule["soil_known"] is (antecedent is not None)


def test_flash_flood_takes_the_wettest_complete_gauge_and_the_largest_antecedent():
    a = gauge("RG-A", 10.0, (T0, 0.2), h1=30, h3=30, h6=30)
    b = gauge("RG-B", 60.0, (T0 - H, 0.4), h1=31, h3=31, h6=31)
    decision = flash_flood(SOIL, [a, b], min_completeness=MIN_C)
    # Largest P_a (60) → wet; RG-B's 31 mm in 1 h reaches wet's 30 → evacuate.
    assert decision.level == "evacuate"
    assert decision.rule == {
        "source": "SL 675-2014 critical rainfall", "window_h": 1, "observed_mm": 31,
        "threshold_mm": 30, "soil": "wet", "soil_known": True, "antecedent_mm": 60.0,
        "gauge": "RG-B", "complete": 1.0}
    assert decision.evidence == ({"sensor": "RG-B", "ts": (T0 - H).isoformat(), "value": 0.4},)
    # An unknown P_a at one gauge does not hide a known one at another.
    c = gauge("RG-C", None, h1=0, h3=0, h6=0)
    assert flash_flood(SOIL, [a, c], min_completeness=MIN_C).rule["soil"] == "dry"


def test_flash_flood_counts_an_incomplete_window_only_as_a_lower_bound():
    # 46 mm seen in a half-complete hour: at least 46 mm fell there, so evacuate (issue #19: an
    # incomplete window never counts as dry, but what it did see is rain).
    wet_but_gappy = gauge("RG-A", NORMAL_PA, complete=0.5, h1=46, h3=46, h6=46)
    steady = gauge("RG-B", NORMAL_PA, h1=30, h3=30, h6=30)
    decision = flash_flood(WORKED, [wet_but_gappy, steady], min_completeness=MIN_C)
    assert (decision.level, decision.rule["gauge"], decision.incomplete) == (
        "evacuate", "RG-A", ())
    # A gappy gauge below the thresholds says nothing: the complete gauge decides "below".
    dry_but_gappy = gauge("RG-A", NORMAL_PA, complete=0.5, h1=10, h3=10, h6=10)
    decision = flash_flood(WORKED, [dry_but_gappy, steady], min_completeness=MIN_C)
    assert (decision.level, decision.rule["gauge"], decision.incomplete) == (None, "RG-B", ())


@pytest.mark.parametrize(("windows", "level", "incomplete"), [
    # The 1 h window is missing at every gauge: listed, never read as dry …
    ({3.0: 66, 6.0: 66}, "prepare", ("1h",)),
    # … and a level reached by the other windows still stands.
    ({3.0: 71}, "evacuate", ("1h", "6h")),
    ({6.0: 10}, None, ("1h", "3h")),
    ({}, None, ("1h", "3h", "6h")),
])
def test_flash_flood_incomplete_windows(windows, level, incomplete):
    g = GaugeRain("RG-1", {h: WindowSum(mm, 1.0) for h, mm in windows.items()}, NORMAL_PA)
    decision = flash_flood(WORKED, [g], min_completeness=MIN_C)
    assert (decision.level, decision.incomplete) == (level, incomplete)


def test_flash_flood_without_gauges_judges_nothing():
    decision = flash_flood(WORKED, [], min_completeness=MIN_C)
    assert decision == Decision(None, {
        "source": "SL 675-2014 critical rainfall", "window_h": None, "observed_mm": None,
        "threshold_mm": None, "soil": "wet", "soil_known": False, "antecedent_mm": None,
        "gauge": None, "complete": None}, incomplete=("1h", "3h", "6h"))


def test_sub_hour_windows_are_named_in_minutes():
    table = VillageTable((0.5, 1), {s: (20, 30) for s in ("dry", "normal", "wet")},
                         {s: (25, 35) for s in ("dry", "normal", "wet")})
    decision = flash_flood(table, [gauge(h1=31)], min_completeness=MIN_C)
    assert (decision.level, decision.incomplete) == ("prepare", ("30m",))
    assert flash_flood(table, [gauge(h0_5=25)], min_completeness=MIN_C).level == "evacuate"


def test_village_table_normalises_to_floats():
    table = VillageTable([1, 3], {s: [10, 20] for s in ("dry", "normal", "wet")},
                         {s: [15, 25] for s in ("dry", "normal", "wet")})
    assert table.windows_h == (1.0, 3.0) and table.prepare["wet"] == (10.0, 20.0)


ROWS = {s: (10, 20, 30) for s in ("dry", "normal", "wet")}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"windows_h": ()}, "strictly increasing"),
    ({"windows_h": (1, 1, 3)}, "strictly increasing"),
    ({"windows_h": (3, 1, 6)}, "strictly increasing"),
    ({"windows_h": (0, 1, 3)}, "window length"),
    ({"windows_h": (math.nan, 1, 3)}, "window length"),
    ({"prepare": {"dry": (10, 20, 30), "normal": (10, 20, 30)}}, "soil states"),
    ({"prepare": ROWS | {"soggy": (1, 2, 3)}}, "soil states"),
    ({"evacuate": ROWS | {"wet": (10, 20)}}, r"evacuate.wet needs one value per window"),
    ({"evacuate": ROWS | {"wet": (10, 20, 30, 40)}}, "one value per window"),
    ({"prepare": ROWS | {"normal": (10, 0, 30)}}, "prepare.normal"),
    ({"prepare": ROWS | {"normal": (10, -5, 30)}}, "prepare.normal"),
    ({"prepare": ROWS | {"normal": (10, math.nan, 30)}}, "prepare.normal"),
    ({"dry_below": 50, "wet_above": 50}, "dry_below must be less"),
    ({"dry_below": 60, "wet_above": 50}, "dry_below must be less"),
    ({"dry_below": -1}, "dry_below"),
    ({"wet_above": math.inf}, "wet_above"),
])
def test_bad_village_tables(kwargs, match):
    args = {"windows_h": (1, 3, 6), "prepare": ROWS, "evacuate": ROWS} | kwargs
    with pytest.raises(ValueError, match=match):
        VillageTable(**args)


# ---------------------------------------------------------------------------------------------
# Landslide rainfall: I = α·D^−β, Guzzetti 2008 (2.20, 0.44) for prepare, Caine 1980 (14.82, 0.39)

SOURCE_ID = "rainfall intensity-duration (Guzzetti 2008 / Caine 1980)"


@pytest.mark.parametrize(("mm", "hours", "level", "threshold"), [
    (30.0, 10, "prepare", 0.7988),  # DESIGN §6: I = 3 > 2.20·10^−0.44 = 0.80, < 6.03
    (70.0, 10, "evacuate", 6.0374),  # I = 7 > 14.82·10^−0.39
    (5.0, 10, None, 0.7988),  # I = 0.5
    (15.0, 1, "evacuate", 14.82),  # Caine at 1 h is α itself
    (14.0, 1, "prepare", 2.20),
    (40.0, 20, "prepare", 0.5888),
    (5.0, 10 / 60, "prepare", 2.20),  # 10 minutes count as min_duration_h = 1 h: I = 5
])
def test_intensity_duration_worked_examples(mm, hours, level, threshold):
    last = (T0, 2.0)
    event = GaugeEvent("RG-1", T0 - timedelta(hours=hours), mm, last)
    decision = landslide_rain(HazardRainTable(), [event], now=T0)
    duration = max(hours, 1.0)
    alpha, beta = (14.82, 0.39) if level == "evacuate" else (2.20, 0.44)
    assert decision.level == level
    assert decision.rule == {
        "source": SOURCE_ID, "event_mm": mm, "duration_h": pytest.approx(duration),
        "intensity_mm_h": pytest.approx(mm / duration),
        "threshold_mm_h": pytest.approx(threshold, abs=5e-5), "alpha": alpha, "beta": beta,
        "gauge": "RG-1"}
    assert decision.evidence == ({"sensor": "RG-1", "ts": T0.isoformat(), "value": 2.0},)


def test_min_duration_is_the_zone_s():
    # 5 mm in 10 min: with D = 1/6 h, I = 30 ≥ 14.82·6^0.39 = 29.81 → evacuate.
    event = GaugeEvent("RG-1", T0 - timedelta(minutes=10), 5.0)
    table = HazardRainTable(min_duration_h=1 / 6)
    assert landslide_rain(table, [event], now=T0).level == "evacuate"
    # An event stamped after now (a fast gauge clock) lasts min_duration_h.
    ahead = GaugeEvent("RG-1", T0 + H, 15.0)
    assert landslide_rain(HazardRainTable(), [ahead], now=T0).rule["duration_h"] == 1.0


def test_the_zone_s_event_is_the_largest_total():
    short_burst = GaugeEvent("RG-A", T0 - 2 * H, 30.0)  # alone: I = 15 > Caine's 11.31
    long_event = GaugeEvent("RG-B", T0 - 20 * H, 40.0)
    decision = landslide_rain(HazardRainTable(), [short_burst, long_event], now=T0)
    assert (decision.level, decision.rule["gauge"], decision.rule["event_mm"]) == (
        "prepare", "RG-B", 40.0)
    # Equal totals: the later start (the shorter, more intense event) is the zone's.
    same = GaugeEvent("RG-B", T0 - 20 * H, 30.0)
    assert landslide_rain(HazardRainTable(), [same, short_burst], now=T0).level == "evacuate"


@pytest.mark.parametrize(("events", "level", "incomplete"), [
    ([GaugeEvent("RG-B", None, None), GaugeEvent("RG-A", None, None)], None, ("RG-A", "RG-B")),
    ([GaugeEvent("RG-A", None, None), GaugeEvent("RG-B", T0 - 10 * H, 30.0)], "prepare",
     ("RG-A",)),
    ([GaugeEvent("RG-A", None, 0.0), GaugeEvent("RG-B", None, 0.0)], None, ()),  # dry
    ([], None, ()),
])
def test_landslide_unknown_and_dry_gauges(events, level, incomplete):
    decision = landslide_rain(HazardRainTable(), events, now=T0)
    assert (decision.level, decision.incomplete) == (level, incomplete)
    if level is None:
        assert decision.rule["event_mm"] is None and decision.rule["threshold_mm_h"] is None


@pytest.mark.parametrize(("build", "match"), [
    (lambda: Curve(0.0, 0.4), "alpha"),
    (lambda: Curve(-2.2, 0.4), "alpha"),
    (lambda: Curve(math.nan, 0.4), "alpha"),
    (lambda: Curve(2.2, math.nan), "beta"),
    (lambda: HazardRainTable(min_duration_h=0), "min_duration_h"),
    (lambda: HazardRainTable(min_duration_h=math.inf), "min_duration_h"),
    (lambda: GaugeEvent("RG-1", T0, -1.0), "event rain"),
    (lambda: GaugeEvent("RG-1", T0, math.nan), "event rain"),
])
def test_bad_landslide_inputs(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# ---------------------------------------------------------------------------------------------
# Slope movement: velocity over the window, k of n sensors (thresholds are per slope: no
# universal numbers exist, DESIGN §6; these are illustrative)

def linear(mm_per_h: float, hours, start=T0) -> list:
    return [(start + h * H, mm_per_h * h) for h in hours]


@pytest.mark.parametrize(("series", "now_h", "window_h", "velocity"), [
    (linear(1, range(13)), 12, 6, 24.0),  # 1 mm/h = 24 mm/day
    (linear(0.5, range(0, 13, 2)), 12, 5, 12.0),  # from the reading just before the window
    (linear(1, range(15)), 12, 6, 24.0),  # readings after now do not count
    (linear(1, [0, 12]), 12, 6, None),  # one reading in the window
    (linear(1, [11, 12]), 12, 6, None),  # 1 h covered, less than a quarter of 6 h
    (linear(1, [10.5, 12]), 12, 6, 24.0),  # exactly a quarter
    (linear(1, range(6)), 12, 6, None),  # silent for the whole window ending now
    (linear(1, range(7)), 12, 6, 24.0),  # newest exactly a window ago still counts
    ([(T0, 0.0), (T0 + 9 * H, 0.0), (T0 + 12 * H, 3.0)], 12, 4, 24.0),  # base 0 h is too old
    ([(T0, 0.0), (T0 + 9 * H, 0.0), (T0 + 12 * H, 3.0)], 12, 6, 6.0),  # base 0 h: in reach
    (linear(-1, range(13)), 12, 6, -24.0),  # moving back is a negative velocity
    ([], 12, 6, None),
    (linear(1, [12]), 12, 6, None),
])
def test_velocity_over_the_window(series, now_h, window_h, velocity):
    result = velocity_mm_d(series, now=T0 + now_h * H, window_h=window_h)
    assert result == (pytest.approx(velocity) if velocity is not None else None)


@pytest.mark.parametrize(("series", "window_h", "match"), [
    ([(T0 + H, 1.0), (T0, 0.0)], 6, "strict time order"),
    ([(T0, 0.0), (T0, 1.0)], 6, "strict time order"),
    ([(T0, 0.0), (T0 + H, math.nan)], 6, "displacement"),
    ([(T0, 0.0)], 0, "window_h"),
    ([(T0, 0.0)], -6, "window_h"),
    ([(T0, 0.0)], math.nan, "window_h"),
])
def test_bad_velocity_inputs(series, window_h, match):
    with pytest.raises(ValueError, match=match):
        velocity_mm_d(series, now=T0 + 12 * H, window_h=window_h)


TABLE = SlopeTable(attention=1.0, warning=5.0, alarm=20.0)


def sensors(*velocities) -> list[SensorVelocity]:
    return [SensorVelocity(f"GN-{i}", v, (T0, float(i))) for i, v in enumerate(velocities)]


@pytest.mark.parametrize(("velocities", "agree", "level", "kth", "threshold", "agreeing"), [
    ((25.0,), 1, "alarm", 25.0, 20.0, 1),
    ((20.0,), 1, "alarm", 20.0, 20.0, 1),  # reaching is enough
    ((19.9,), 1, "warning", 19.9, 5.0, 1),
    ((0.9,), 1, None, 0.9, 1.0, 0),
    ((25.0, 6.0, 0.5), 1, "alarm", 25.0, 20.0, 1),
    ((25.0, 6.0, 0.5), 2, "warning", 6.0, 5.0, 2),  # two agree on warning, one on alarm
    ((25.0, 6.0, 0.5), 3, None, 0.5, 1.0, 2),
    ((25.0, None, None), 2, None, None, 1.0, 1),  # too few known sensors to agree
    ((6.0, None, 25.0), 2, "warning", 6.0, 5.0, 2),
])
def test_slope_k_of_n(velocities, agree, level, kth, threshold, agreeing):
    table = SlopeTable(TABLE.attention, TABLE.warning, TABLE.alarm, agree)
    decision = slope_movement(table, sensors(*velocities))
    assert decision.level == level
    assert decision.rule == {"source": "slope velocity, k of n", "velocity_mm_d": kth,
                             "threshold_mm_d": threshold, "agreeing": agreeing,
                             "of": len(velocities), "agree": agree}
    assert decision.incomplete == tuple(f"GN-{i}" for i, v in enumerate(velocities) if v is None)
    assert len(decision.evidence) == agreeing
    assert decision.forecast is None


def test_slope_evidence_is_the_agreeing_sensors_fastest_first():
    decision = slope_movement(SlopeTable(1.0, 5.0, 20.0, 2), sensors(6.0, 0.5, 25.0))
    assert [e["sensor"] for e in decision.evidence] == ["GN-2", "GN-0"]
    assert decision.evidence[0] == {"sensor": "GN-2", "ts": T0.isoformat(), "value": 2.0}


@pytest.mark.parametrize(("table", "level", "threshold"), [
    (SlopeTable(None, None, None), None, None),  # no thresholds: a zone raises nothing
    (SlopeTable(None, None, 20.0), None, 20.0),
    (SlopeTable(None, None, 5.0), "alarm", 5.0),
    (SlopeTable(None, 5.0, None), "warning", 5.0),
])
def test_slope_partial_tables(table, level, threshold):
    decision = slope_movement(table, sensors(6.0))
    assert (decision.level, decision.rule["threshold_mm_d"]) == (level, threshold)


def test_slope_forecast_is_passed_through():
    forecast = FailureForecast(T0 + 48 * H, -0.5, 0.987654, 12)
    decision = slope_movement(TABLE, sensors(0.1), forecast=forecast)
    assert decision.level is None
    assert decision.forecast == {"failure_at": "2026-07-29T00:00:00+00:00", "r2": 0.9877,
                                 "points": 12}


@pytest.mark.parametrize(("build", "match"), [
    (lambda: SlopeTable(0.0, 5.0, 20.0), "attention"),
    (lambda: SlopeTable(1.0, -5.0, 20.0), "warning"),
    (lambda: SlopeTable(1.0, 5.0, math.nan), "alarm"),
    (lambda: SlopeTable(1.0, 5.0, 20.0, 0), "agree"),
    (lambda: SlopeTable(1.0, 5.0, 20.0, 1.5), "agree"),
    (lambda: SlopeTable(1.0, 5.0, 20.0, True), "agree"),
    (lambda: SensorVelocity("GN-1", math.nan), "velocity"),
    (lambda: SensorVelocity("GN-1", math.inf), "velocity"),
])
def test_bad_slope_inputs(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# ---------------------------------------------------------------------------------------------
# A village's warning level (DESIGN §5)

@pytest.mark.parametrize(("levels", "warning"), [
    ([], "none"),
    ([("rainstorm", "red")], "none"),  # public weather signal: no village level
    ([("data", "missing")], "none"),
    ([("flash_flood", None), ("flash_flood", "none")], "none"),
    ([("flash_flood", "prepare")], "prepare"),
    ([("landslide_rain", "evacuate")], "evacuate"),
    ([("slope_movement", "attention")], "none"),
    ([("slope_movement", "warning")], "prepare"),
    ([("slope_movement", "alarm"), ("flash_flood", "prepare")], "evacuate"),
    ([(AlertKind.FLASH_FLOOD, "evacuate"), (AlertKind.RAINSTORM, "blue")], "evacuate"),
    ([("landslide_rain", "prepare"), ("slope_movement", "warning")], "prepare"),
])
def test_village_warning(levels, warning):
    assert village_warning(levels) == warning
    assert village_warning(reversed(levels)) == warning


@pytest.mark.parametrize(("levels", "match"), [
    ([("flood", "evacuate")], "unknown alert kind"),
    ([("flash_flood", "red")], "no level"),
    ([("slope_movement", "prepare")], "no level"),
])
def test_bad_village_warning_inputs(levels, match):
    with pytest.raises(ValueError, match=match):
        village_warning(levels)


# ---------------------------------------------------------------------------------------------
# Properties

mm_values = st.floats(0, 200, allow_nan=False)
window_sums = st.builds(WindowSum, mm_values, st.floats(0, 1))
antecedents = st.none() | st.floats(0, 100)


@st.composite
def village_gauges(draw):
    codes = draw(st.lists(st.sampled_from([f"RG-{i}" for i in range(6)]), unique=True,
                          max_size=5))
    return [GaugeRain(code, draw(st.dictionaries(st.sampled_from([1.0, 3.0, 6.0]),
                                                 window_sums)), draw(antecedents),
                      (T0, 0.1))
            for code in codes]


def with_more_rain(gauges, data):
    """One window of one gauge with more rain (the same completeness)."""
    i = data.draw(st.integers(0, len(gauges) - 1))
    hours = data.draw(st.sampled_from([1.0, 3.0, 6.0]))
    extra = data.draw(st.floats(0, 100))
    old = gauges[i].windows.get(hours, WindowSum(0.0, 1.0))
    windows = dict(gauges[i].windows) | {hours: WindowSum(old.mm + extra, old.complete)}
    g = gauges[i]
    return [*gauges[:i], GaugeRain(g.gauge, windows, g.antecedent_mm, g.last), *gauges[i + 1:]]


FF = AlertKind.FLASH_FLOOD


@settings(max_examples=200, deadline=None)
@given(village_gauges(), st.data())
def test_flash_flood_does_not_depend_on_gauge_order(gauges, data):
    shuffled = data.draw(st.permutations(gauges))
    assert flash_flood(SOIL, shuffled, min_completeness=MIN_C) == flash_flood(
        SOIL, gauges, min_completeness=MIN_C)


@settings(max_examples=200, deadline=None)
@given(village_gauges().filter(bool), st.data())
def test_more_rain_never_lowers_a_flash_flood_level(gauges, data):
    before = flash_flood(SOIL, gauges, min_completeness=MIN_C).level
    after = flash_flood(SOIL, with_more_rain(gauges, data), min_completeness=MIN_C).level
    assert rank(FF, after) >= rank(FF, before)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([1.0, 3.0, 6.0]), mm_values, min_size=1),
       st.floats(0, 100), st.floats(0, 100))
def test_wetter_soil_never_lowers_a_flash_flood_level(mm, pa_low, pa_high):
    pa_low, pa_high = sorted((pa_low, pa_high))

    def level(pa):
        g = GaugeRain("RG-1", {h: WindowSum(v, 1.0) for h, v in mm.items()}, pa)
        return rank(FF, flash_flood(SOIL, [g], min_completeness=MIN_C).level)

    # An unknown P_a is never judged less severely than any known one.
    assert level(None) >= level(pa_high) >= level(pa_low)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([1.0, 3.0, 6.0, 12.0, 24.0]), window_sums), st.data())
def test_more_rain_or_completeness_never_lowers_a_rainstorm_signal(windows, data):
    before = rainstorm(GaugeRain("RG-1", windows), min_completeness=MIN_C).level
    hours = data.draw(st.sampled_from([3.0, 6.0, 12.0]))
    old = windows.get(hours, WindowSum(0.0, 0.0))
    more = WindowSum(old.mm + data.draw(st.floats(0, 100)),
                     data.draw(st.floats(old.complete, 1)))
    after = rainstorm(GaugeRain("RG-1", windows | {hours: more}),
                      min_completeness=MIN_C).level
    assert rank(AlertKind.RAINSTORM, after) >= rank(AlertKind.RAINSTORM, before)


events = st.builds(GaugeEvent, st.sampled_from([f"RG-{i}" for i in range(6)]),
                   st.none() | st.integers(-48, 2).map(lambda h: T0 + h * H),
                   st.none() | mm_values)


@settings(max_examples=200, deadline=None)
@given(st.lists(events, unique_by=operator.attrgetter("gauge")), st.data())
def test_landslide_does_not_depend_on_gauge_order(zone_events, data):
    shuffled = data.draw(st.permutations(zone_events))
    table = HazardRainTable()
    assert landslide_rain(table, shuffled, now=T0) == landslide_rain(table, zone_events, now=T0)


@settings(max_examples=200, deadline=None)
@given(st.integers(-240, 0), mm_values, st.floats(0, 100))
def test_more_event_rain_never_lowers_a_landslide_level(start_h, mm, extra):
    table, start = HazardRainTable(), T0 + start_h * H
    before = landslide_rain(table, [GaugeEvent("RG-1", start, mm)], now=T0).level
    after = landslide_rain(table, [GaugeEvent("RG-1", start, mm + extra)], now=T0).level
    kind = AlertKind.LANDSLIDE_RAIN
    assert rank(kind, after) >= rank(kind, before)


velocity_values = st.none() | st.floats(-10, 50)


@settings(max_examples=200, deadline=None)
@given(st.lists(velocity_values, max_size=6), st.integers(1, 4), st.data())
def test_slope_levels_do_not_depend_on_order_and_rise_with_speed(velocities, agree, data):
    table = SlopeTable(TABLE.attention, TABLE.warning, TABLE.alarm, agree)
    zone = sensors(*velocities)
    decision = slope_movement(table, zone)
    assert slope_movement(table, data.draw(st.permutations(zone))) == decision
    kind = AlertKind.SLOPE_MOVEMENT
    faster = [SensorVelocity(s.sensor, None if s.velocity_mm_d is None
                             else s.velocity_mm_d + data.draw(st.floats(0, 10)), s.last)
              for s in zone]
    assert rank(kind, slope_movement(table, faster).level) >= rank(kind, decision.level)
    stricter = SlopeTable(TABLE.attention, TABLE.warning, TABLE.alarm, agree + 1)
    assert rank(kind, slope_movement(stricter, zone).level) <= rank(kind, decision.level)


kinds_levels = st.sampled_from([
    ("rainstorm", "red"), ("data", "missing"), ("flash_flood", "prepare"),
    ("flash_flood", "evacuate"), ("landslide_rain", "prepare"), ("slope_movement", "attention"),
    ("slope_movement", "warning"), ("slope_movement", "alarm"), ("flash_flood", None)])


@given(st.lists(kinds_levels), st.data())
def test_village_warning_is_the_highest_whatever_the_order(levels, data):
    warning = village_warning(levels)
    assert village_warning(data.draw(st.permutations(levels))) == warning
    assert warning == max((village_warning([p]) for p in levels),
                          key=("none", "prepare", "evacuate").index, default="none")
