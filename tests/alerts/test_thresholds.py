"""alerts.thresholds: the threshold tables of DESIGN §5 "Thresholds" (SL 675 village tables,
Caine 1980 / Guzzetti et al. 2008 curves, slope velocities) and their CSV import. Every bad
table names every bad cell: the tests assert the exact paths and codes."""

from __future__ import annotations

import copy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.thresholds import (
    MESSAGES,
    BadThresholds,
    HazardThresholds,
    VillageThresholds,
    hazard_thresholds,
    import_csv,
    parse_csv,
    village_thresholds,
)

GAUGES = {"RG-01", "RG-02"}
SLOPE_SENSORS = {"CM-01", "GN-01"}

# DESIGN §6 worked example for 立即转移 (dry/normal/wet: 1 h 40/35/30, 3 h 65/60/50, 6 h
# 95/90/80 mm) with 准备转移 at three quarters of it.
TABLE = {
    "gauges": ["RG-01"],
    "windows_h": [1, 3, 6],
    "prepare": {"dry": [30, 49, 71], "normal": [26, 45, 68], "wet": [22, 38, 60]},
    "evacuate": {"dry": [40, 65, 95], "normal": [35, 60, 90], "wet": [30, 50, 80]},
    "antecedent_mm": {"dry_below": 15, "wet_above": 50},
}

HAZARD = {
    "gauges": ["RG-02"],
    "prepare": {"alpha": 2.20, "beta": 0.44},
    "evacuate": {"alpha": 14.82, "beta": 0.39},
    "min_duration_h": 1,
    "sensors": ["CM-01", "GN-01"],
    "velocity_mm_d": {"attention": 10, "warning": 50, "alarm": 200},
    "agree": 2,
}

_PATH = re.compile(r"(\w+)(?:\[(\d+)\])?")


def patched(doc: dict, changes: dict) -> dict:
    """A copy of doc with each "a.b[i]" path set to its value (Ellipsis: the key removed)."""
    out = copy.deepcopy(doc)
    for path, value in changes.items():
        parts = [(m[1], m[2]) for m in _PATH.finditer(path)]
        node = out
        for key, index in parts[:-1]:
            node = node[key] if index is None else node[key][int(index)]
        key, index = parts[-1]
        if index is not None:
            node = node[key]
            key = int(index)
        if value is Ellipsis:
            del node[key]
        else:
            node[key] = value
    return out


def village_cells(body) -> list[tuple[str, str]]:
    with pytest.raises(BadThresholds) as caught:
        village_thresholds(body, rain_gauges=GAUGES)
    assert all(c.why == MESSAGES[c.code] for c in caught.value.cells)
    return [(c.path, c.code) for c in caught.value.cells]


def hazard_cells(body) -> list[tuple[str, str]]:
    with pytest.raises(BadThresholds) as caught:
        hazard_thresholds(body, rain_gauges=GAUGES, displacement_sensors=SLOPE_SENSORS)
    assert all(c.why == MESSAGES[c.code] for c in caught.value.cells)
    return [(c.path, c.code) for c in caught.value.cells]


# --- village tables -------------------------------------------------------------------------------

def test_the_worked_example_is_valid_and_round_trips():
    table = village_thresholds(TABLE, rain_gauges=GAUGES)
    assert table == VillageThresholds(
        ("RG-01",), (1, 3, 6),
        {"dry": (30, 49, 71), "normal": (26, 45, 68), "wet": (22, 38, 60)},
        {"dry": (40, 65, 95), "normal": (35, 60, 90), "wet": (30, 50, 80)}, 15, 50)
    assert table.as_json() == TABLE
    assert village_thresholds(table.as_json(), rain_gauges=GAUGES) == table


def test_design_evaluation_example_is_a_valid_table():
    # DESIGN §6 "Flash flood" worked example: normal soil, prepare 40/65/95, evacuate 45/70/100.
    body = patched(TABLE, {"prepare.normal": [40, 65, 95], "evacuate.normal": [45, 70, 100],
                           "prepare.dry": [40, 65, 95], "evacuate.dry": [45, 70, 100]})
    assert village_thresholds(body, rain_gauges=GAUGES).evacuate["normal"] == (45, 70, 100)


def test_absent_keys_take_the_contract_defaults():
    body = {"prepare": TABLE["prepare"], "evacuate": TABLE["evacuate"]}
    table = village_thresholds(body, rain_gauges=GAUGES)
    assert (table.gauges, table.windows_h) == ((), (1, 3, 6))
    assert (table.dry_below, table.wet_above) == (15, 50)
    # null counts as absent (DESIGN §5 "Decoding")
    nulls = dict(body, gauges=None, windows_h=None, antecedent_mm=None)
    assert village_thresholds(nulls, rain_gauges=GAUGES) == table
    half = dict(body, antecedent_mm={"wet_above": 40})
    assert village_thresholds(half, rain_gauges=GAUGES).dry_below == 15


@pytest.mark.parametrize(("changes", "cells"), [
    # gaps: a null cell, a short row, a missing soil row, a missing level
    ({"evacuate.normal[2]": None}, [("evacuate.normal[2]", "missing")]),
    ({"prepare.wet": [22, 38]}, [("prepare.wet[2]", "missing")]),
    ({"prepare.wet": [22]}, [("prepare.wet[1]", "missing"), ("prepare.wet[2]", "missing")]),
    ({"evacuate.wet": ...}, [("evacuate.wet", "missing")]),
    ({"prepare": ...}, [("prepare", "missing")]),
    ({"prepare": None}, [("prepare", "missing")]),
], ids=["null-cell", "short-row", "two-short", "no-soil-row", "no-level", "null-level"])
def test_gaps(changes, cells):
    assert village_cells(patched(TABLE, changes)) == cells


@pytest.mark.parametrize(("changes", "cells"), [
    ({"prepare.wet[0]": 0}, [("prepare.wet[0]", "not_positive")]),
    ({"prepare.wet[0]": -5}, [("prepare.wet[0]", "not_positive")]),
    ({"windows_h[0]": 0}, [("windows_h[0]", "not_positive")]),
    ({"windows_h[0]": -1}, [("windows_h[0]", "not_positive")]),
    ({"antecedent_mm.dry_below": -1}, [("antecedent_mm.dry_below", "negative")]),
], ids=["zero-mm", "negative-mm", "zero-window", "negative-window", "negative-antecedent"])
def test_non_positive(changes, cells):
    assert village_cells(patched(TABLE, changes)) == cells


@pytest.mark.parametrize("value", ["22", True, False, float("nan"), float("inf"), 10 ** 400,
                                   [22], {"mm": 22}])
def test_a_cell_must_be_a_finite_number(value):
    assert village_cells(patched(TABLE, {"prepare.wet[0]": value})) == [
        ("prepare.wet[0]", "not_a_number")]


def test_zero_antecedent_limit_is_allowed():
    body = patched(TABLE, {"antecedent_mm.dry_below": 0})
    assert village_thresholds(body, rain_gauges=GAUGES).dry_below == 0


@pytest.mark.parametrize(("windows", "cells"), [
    ([1, 3, 3], [("windows_h[2]", "not_increasing")]),
    ([6, 3, 1], [("windows_h[1]", "not_increasing"), ("windows_h[2]", "not_increasing")]),
    ([1, 24, 2], [("windows_h[2]", "not_increasing")]),
    ([1, 3, 48], [("windows_h[2]", "too_long")]),
    ([1, "3", 6], [("windows_h[1]", "not_a_number")]),
    ([0.5, 3, 24], []),
], ids=["repeated", "reversed", "one-out-of-order", "beyond-24h", "string", "valid"])
def test_windows_strictly_increasing(windows, cells):
    body = patched(TABLE, {"windows_h": windows})
    if cells:
        assert village_cells(body) == cells
    else:
        assert village_thresholds(body, rain_gauges=GAUGES).windows_h == tuple(windows)


@pytest.mark.parametrize(("windows", "cells"), [
    ([], [("windows_h", "empty")]),
    (list(range(1, 14)), [("windows_h", "too_many")]),
    ("1,3,6", [("windows_h", "not_a_list")]),
    (6, [("windows_h", "not_a_list")]),
])
def test_windows_list(windows, cells):
    # Without usable windows the rows' lengths cannot be judged, and are not.
    assert village_cells(patched(TABLE, {"windows_h": windows})) == cells


@pytest.mark.parametrize(("changes", "cells"), [
    # 64 after 65; also below normal soil's 90 and prepare's 71: each rule names its cell
    ({"evacuate.dry[2]": 64}, [("evacuate.dry[2]", "decreasing"),
                               ("evacuate.normal[2]", "wet_above_dry"),
                               ("evacuate.dry[2]", "below_prepare")]),
    ({"prepare.wet": [22, 21, 20]}, [("prepare.wet[1]", "decreasing"),
                                      ("prepare.wet[2]", "decreasing")]),
    # one dip is named once: the cell after it is compared with the last valid value
    ({"evacuate.dry": [40, 96, 95]}, [("evacuate.dry[2]", "decreasing")]),
], ids=["last-window-lower", "falling-row", "one-dip"])
def test_rows_non_decreasing_along_the_windows(changes, cells):
    assert village_cells(patched(TABLE, changes)) == cells


@pytest.mark.parametrize(("changes", "cells"), [
    ({"evacuate.wet[1]": 37}, [("evacuate.wet[1]", "below_prepare")]),
    ({"evacuate.wet": [21, 37, 59]}, [("evacuate.wet[0]", "below_prepare"),
                                       ("evacuate.wet[1]", "below_prepare"),
                                       ("evacuate.wet[2]", "below_prepare")]),
    # swapping the levels puts every evacuate cell below its prepare cell
    ({"prepare": TABLE["evacuate"], "evacuate": TABLE["prepare"]},
     [(f"evacuate.{soil}[{i}]", "below_prepare")
      for soil in ("dry", "normal", "wet") for i in range(3)]),
], ids=["one-cell", "one-row", "levels-swapped"])
def test_evacuate_below_prepare(changes, cells):
    assert village_cells(patched(TABLE, changes)) == cells


@pytest.mark.parametrize(("changes", "cells"), [
    ({"prepare.wet[0]": 27}, [("prepare.wet[0]", "wet_above_dry")]),
    ({"evacuate.normal[1]": 64}, []),
    ({"evacuate.normal[1]": 66}, [("evacuate.normal[1]", "wet_above_dry")]),
    # soils swapped: wet above normal above dry in every cell of the level
    ({"prepare": {"dry": [22, 38, 60], "normal": [26, 45, 68], "wet": [30, 49, 71]},
      "evacuate": {"dry": [30, 50, 80], "normal": [35, 60, 90], "wet": [40, 65, 95]}},
     [(f"{level}.{soil}[{i}]", "wet_above_dry") for level in ("prepare", "evacuate")
      for soil in ("normal", "wet") for i in range(3)]),
    # a bad normal cell: wet is compared with dry instead
    ({"prepare.normal[0]": "x", "prepare.wet[0]": 31, "evacuate.wet[0]": 31},
     [("prepare.normal[0]", "not_a_number"), ("prepare.wet[0]", "wet_above_dry")]),
], ids=["wet-above-normal", "normal-equal-ok", "normal-above-dry", "soils-swapped",
        "skip-bad-middle"])
def test_wetter_soil_above_drier(changes, cells):
    body = patched(TABLE, changes)
    if cells:
        assert village_cells(body) == cells
    else:
        village_thresholds(body, rain_gauges=GAUGES)


@pytest.mark.parametrize(("gauges", "cells"), [
    (["RG-99"], [("gauges[0]", "unknown_gauge")]),
    (["RG-01", "RG-99", 5, "RG-01"], [("gauges[1]", "unknown_gauge"),
                                      ("gauges[2]", "unknown_gauge"),
                                      ("gauges[3]", "duplicate")]),
    (["CM-01"], [("gauges[0]", "unknown_gauge")]),  # registered, but no rain gauge
    ("RG-01", [("gauges", "not_a_list")]),
])
def test_unknown_gauges(gauges, cells):
    assert village_cells(patched(TABLE, {"gauges": gauges})) == cells


@pytest.mark.parametrize(("antecedent", "cells"), [
    ({"dry_below": 50, "wet_above": 15}, [("antecedent_mm.wet_above", "not_above_dry_below")]),
    ({"dry_below": 30, "wet_above": 30}, [("antecedent_mm.wet_above", "not_above_dry_below")]),
    ({"wet_above": 10}, [("antecedent_mm.wet_above", "not_above_dry_below")]),  # dry_below 15
    ({"dry_below": "15"}, [("antecedent_mm.dry_below", "not_a_number")]),
    ({"dry_below": 15, "wet_above": 50, "k": 0.85}, [("antecedent_mm.k", "unknown_key")]),
    ([15, 50], [("antecedent_mm", "not_an_object")]),
])
def test_antecedent_limits(antecedent, cells):
    assert village_cells(patched(TABLE, {"antecedent_mm": antecedent})) == cells


@pytest.mark.parametrize(("changes", "cells"), [
    ({"evacuate.dry": [40, 65, 95, 120]}, [("evacuate.dry", "wrong_length")]),
    ({"evacuate.dry": "40,65,95"}, [("evacuate.dry", "not_a_list")]),
    ({"evacuate": [40, 65, 95]}, [("evacuate", "not_an_object")]),
    ({"moist": {}}, [("moist", "unknown_key")]),
    ({"prepare.moist": [1, 2, 3]}, [("prepare.moist", "unknown_key")]),
], ids=["long-row", "row-string", "level-list", "unknown-key", "unknown-soil"])
def test_shape(changes, cells):
    assert village_cells(patched(TABLE, changes)) == cells


@pytest.mark.parametrize("body", [None, [], "table", 3])
def test_a_table_is_an_object(body):
    assert village_cells(body) == [("", "not_an_object")]


def test_every_bad_cell_is_named_not_only_the_first():
    body = patched(TABLE, {"gauges": ["RG-99"], "windows_h": [1, 1, 6],
                           "prepare.dry[0]": 0, "evacuate.wet[1]": 37,
                           "antecedent_mm": {"dry_below": 60, "wet_above": 50}, "extra": 1})
    assert village_cells(body) == [
        ("extra", "unknown_key"), ("gauges[0]", "unknown_gauge"),
        ("windows_h[1]", "not_increasing"), ("prepare.dry[0]", "not_positive"),
        ("evacuate.wet[1]", "below_prepare"), ("antecedent_mm.wet_above", "not_above_dry_below")]


def valid_tables():
    """Valid tables by construction: each ordering is a sum of non-negative increments."""
    def build(windows, steps):
        n = len(windows)

        def running(values):
            total, out = 0.0, []
            for v in values[:n]:
                total += v
                out.append(total)
            return out

        wet = running(steps[0])
        normal = [w + d for w, d in zip(wet, running(steps[1]), strict=True)]
        dry = [w + d for w, d in zip(normal, running(steps[2]), strict=True)]
        extra = running(steps[3])
        prepare = {"dry": dry, "normal": normal, "wet": wet}
        return {"windows_h": windows, "prepare": prepare,
                "evacuate": {s: [p + e for p, e in zip(row, extra, strict=True)]
                             for s, row in prepare.items()}}

    windows = st.lists(st.sampled_from([0.5, 1, 2, 3, 6, 12, 24]), min_size=1, max_size=7,
                       unique=True).map(sorted)
    positive = st.floats(0.1, 100)
    non_negative = st.floats(0, 100)
    steps = st.tuples(*([st.lists(positive, min_size=7, max_size=7)]
                        + [st.lists(non_negative, min_size=7, max_size=7)] * 3))
    return st.builds(build, windows, steps)


@settings(max_examples=200, deadline=None)
@given(valid_tables(), st.floats(1e-3, 1e3))
def test_a_valid_table_stays_valid_when_every_cell_is_scaled(body, factor):
    table = village_thresholds(body, rain_gauges=GAUGES)
    assert village_thresholds(table.as_json(), rain_gauges=GAUGES) == table
    scaled = {**body, **{level: {soil: [mm * factor for mm in row]
                                 for soil, row in body[level].items()}
                         for level in ("prepare", "evacuate")}}
    assert village_thresholds(scaled, rain_gauges=GAUGES).evacuate["wet"] == tuple(
        mm * factor for mm in body["evacuate"]["wet"])


# --- hazard tables --------------------------------------------------------------------------------

def test_hazard_defaults_are_guzzetti_and_caine():
    table = hazard_thresholds({}, rain_gauges=GAUGES, displacement_sensors=SLOPE_SENSORS)
    assert table == HazardThresholds((), (2.20, 0.44), (14.82, 0.39), 1, (),
                                     {"attention": None, "warning": None, "alarm": None}, 1)


def test_a_full_hazard_table_round_trips():
    table = hazard_thresholds(HAZARD, rain_gauges=GAUGES, displacement_sensors=SLOPE_SENSORS)
    assert table.as_json() == HAZARD
    assert hazard_thresholds(table.as_json(), rain_gauges=GAUGES,
                             displacement_sensors=SLOPE_SENSORS) == table


@pytest.mark.parametrize(("changes", "cells"), [
    ({"prepare.alpha": 0}, [("prepare.alpha", "not_positive")]),
    ({"prepare.beta": -0.44}, [("prepare.beta", "not_positive")]),
    ({"evacuate.beta": 1.5}, [("evacuate.beta", "too_steep")]),
    # α and β swapped
    ({"evacuate": {"alpha": 0.39, "beta": 14.82}}, [("evacuate.beta", "too_steep")]),
    ({"prepare.alpha": "2.2"}, [("prepare.alpha", "not_a_number")]),
    ({"prepare.beta": ...}, [("prepare.beta", "missing")]),
    ({"prepare.gamma": 1}, [("prepare.gamma", "unknown_key")]),
    ({"prepare": [2.2, 0.44]}, [("prepare", "not_an_object")]),
], ids=["alpha-zero", "beta-negative", "beta-1.5", "swapped", "string", "no-beta",
        "unknown-key", "list"])
def test_bad_curves(changes, cells):
    assert hazard_cells(patched(HAZARD, changes)) == cells


@pytest.mark.parametrize(("changes", "cells"), [
    # below Guzzetti at D = 1 h: 2.0 < 2.20
    ({"evacuate": {"alpha": 2.0, "beta": 0.39}}, [("evacuate.alpha", "curve_below_prepare")]),
    # above at 1 h (3.0 > 2.2) but below at 240 h (3.0·240^−0.6 = 0.11 < 2.2·240^−0.44 = 0.20)
    ({"evacuate": {"alpha": 3.0, "beta": 0.6}}, [("evacuate.alpha", "curve_below_prepare")]),
    # below at 1 h only; from 2 h on it is above (2.0·2^−0.2 = 1.74 > 2.2·2^−0.44 = 1.62)
    ({"evacuate": {"alpha": 2.0, "beta": 0.2}}, [("evacuate.alpha", "curve_below_prepare")]),
    ({"evacuate": {"alpha": 2.0, "beta": 0.2}, "min_duration_h": 2}, []),
    # equal curves are allowed (evacuate reaches where prepare does)
    ({"evacuate": {"alpha": 2.2, "beta": 0.44}}, []),
], ids=["below-short", "below-long", "below-short-only", "above-from-min-duration", "equal"])
def test_evacuate_curve_below_prepare(changes, cells):
    body = patched(HAZARD, changes)
    if cells:
        assert hazard_cells(body) == cells
    else:
        hazard_thresholds(body, rain_gauges=GAUGES, displacement_sensors=SLOPE_SENSORS)


@pytest.mark.parametrize(("value", "code"), [(0, "not_positive"), (-1, "not_positive"),
                                             ("1", "not_a_number"), (True, "not_a_number")])
def test_min_duration(value, code):
    assert hazard_cells(patched(HAZARD, {"min_duration_h": value})) == [("min_duration_h", code)]


@pytest.mark.parametrize(("sensors", "cells"), [
    (["TL-01"], [("sensors[0]", "unknown_sensor")]),  # a tilt meter reports degrees, not mm
    (["CM-01", "CM-01"], [("sensors[1]", "duplicate")]),
    (["CM-01", None], [("sensors[1]", "unknown_sensor")]),
])
def test_unknown_sensors(sensors, cells):
    assert hazard_cells(patched(HAZARD, {"sensors": sensors, "agree": 1})) == cells


def test_hazard_gauges_are_registered_rain_gauges():
    assert hazard_cells(patched(HAZARD, {"gauges": ["CM-01"]})) == [
        ("gauges[0]", "unknown_gauge")]


@pytest.mark.parametrize(("velocities", "cells"), [
    ({"attention": 50, "warning": 10, "alarm": 200}, [("velocity_mm_d.warning",
                                                       "below_lower_level")]),
    ({"attention": 10, "warning": None, "alarm": 5}, [("velocity_mm_d.alarm",
                                                       "below_lower_level")]),
    ({"attention": 0}, [("velocity_mm_d.attention", "not_positive")]),
    ({"warning": "50"}, [("velocity_mm_d.warning", "not_a_number")]),
    ({"critical": 500}, [("velocity_mm_d.critical", "unknown_key")]),
    ([10, 50, 200], [("velocity_mm_d", "not_an_object")]),
])
def test_bad_velocities(velocities, cells):
    assert hazard_cells(patched(HAZARD, {"velocity_mm_d": velocities})) == cells


@pytest.mark.parametrize("velocities", [
    None, {}, {"attention": None, "warning": None, "alarm": None}, {"alarm": 200},
    {"attention": 10, "alarm": 200}, {"attention": 50, "warning": 50, "alarm": 50}])
def test_velocities_may_be_left_out(velocities):
    table = hazard_thresholds(patched(HAZARD, {"velocity_mm_d": velocities}), rain_gauges=GAUGES,
                              displacement_sensors=SLOPE_SENSORS)
    given = velocities or {}
    assert table.velocity_mm_d == {level: given.get(level) for level in
                                   ("attention", "warning", "alarm")}


@pytest.mark.parametrize(("agree", "sensors", "cells"), [
    (0, ["CM-01"], [("agree", "not_positive")]),
    (1.0, ["CM-01"], [("agree", "not_an_integer")]),
    (True, ["CM-01"], [("agree", "not_an_integer")]),
    ("2", ["CM-01", "GN-01"], [("agree", "not_an_integer")]),
    (3, ["CM-01", "GN-01"], [("agree", "more_than_sensors")]),
    (3, [], []),  # no sensors named: the number of the zone's sensors is the service's to check
])
def test_agree(agree, sensors, cells):
    body = patched(HAZARD, {"agree": agree, "sensors": sensors})
    if cells:
        assert hazard_cells(body) == cells
    else:
        assert hazard_thresholds(body, rain_gauges=GAUGES,
                                 displacement_sensors=SLOPE_SENSORS).agree == agree


def test_every_bad_hazard_cell_is_named():
    body = patched(HAZARD, {"prepare.alpha": -1, "evacuate.beta": 2, "min_duration_h": 0,
                            "sensors": ["X"], "velocity_mm_d.alarm": 20, "agree": 0, "why": 1})
    assert hazard_cells(body) == [
        ("why", "unknown_key"), ("prepare.alpha", "not_positive"), ("evacuate.beta", "too_steep"),
        ("min_duration_h", "not_positive"), ("sensors[0]", "unknown_sensor"),
        ("velocity_mm_d.alarm", "below_lower_level"), ("agree", "not_positive")]


# --- CSV import -----------------------------------------------------------------------------------

HEADER = "village,level,soil,window_h,mm"


def csv_rows(village: str, table: dict = TABLE) -> list[str]:
    return [f"{village},{level},{soil},{w},{mm}" for level in ("prepare", "evacuate")
            for soil in ("dry", "normal", "wet")
            for w, mm in zip(table["windows_h"], table[level][soil], strict=True)]


def csv_cells(text: str, **kw) -> list[tuple[str, str]]:
    with pytest.raises(BadThresholds) as caught:
        parse_csv(text, **kw)
    assert all(c.why == MESSAGES[c.code] for c in caught.value.cells)
    return [(c.path, c.code) for c in caught.value.cells]


def test_csv_gives_each_village_its_rows():
    rows = csv_rows("V01") + csv_rows("V02")
    text = "\n".join([HEADER, *reversed(rows)]) + "\n"
    tables = parse_csv(text)
    want = {k: TABLE[k] for k in ("windows_h", "prepare", "evacuate")}
    assert tables == {"V01": want, "V02": want}


def test_csv_tolerates_a_bom_spaces_case_crlf_blank_lines_and_decimal_windows():
    rows = [r.replace(",1,", ",1.0,") for r in csv_rows("V01")]
    text = ("\ufeffVillage, Level ,SOIL,window_h,mm\r\n\r\n"
            + "\r\n".join(r.replace("prepare", " Prepare ") for r in rows) + "\r\n\r\n")
    assert parse_csv(text)["V01"]["windows_h"] == [1, 3, 6]


def test_csv_bad_rows_are_named_by_line():
    # the good rows, less the three the bad lines 9-11 give (prepare, window 1)
    rows = [r for r in csv_rows("V01") if not r.startswith("V01,prepare,") or ",1," not in r]
    bad = [
        "V01,prepare,dry,1",              # line 2: four columns
        ",prepare,dry,1,30",              # line 3
        "V01,evac,dry,1,30",              # line 4
        "V01,prepare,moist,1,30",         # line 5
        "V01,prepare,dry,0,30",           # line 6
        "V01,prepare,dry,48,30",          # line 7
        "V01,prepare,dry,1h,30",          # line 8
        "V01,prepare,dry,1,-3",           # line 9
        "V01,prepare,normal,1,nan",       # line 10
        "V01,prepare,wet,1,",             # line 11
        "V01,prepare,dry,1,30",           # line 12: the cell of line 9 again
        "V02,evac,moist,x,y",             # line 13: everything wrong at once
    ]
    text = "\n".join([HEADER, *bad, *rows])
    assert csv_cells(text) == [
        ("line 2", "wrong_columns"), ("line 3", "no_village"), ("line 4", "unknown_level"),
        ("line 5", "unknown_soil"), ("line 6", "bad_window"), ("line 7", "bad_window"),
        ("line 8", "bad_window"), ("line 9", "bad_mm"), ("line 10", "bad_mm"),
        ("line 11", "bad_mm"), ("line 12", "duplicate_row"),
        ("line 13", "unknown_level"), ("line 13", "unknown_soil"), ("line 13", "bad_window"),
        ("line 13", "bad_mm")]


def test_csv_lines_count_blank_lines_and_begin_where_a_quoted_record_begins():
    rows = csv_rows("V01")
    text = "\n".join([HEADER, "", '"V01","prepare","dry","1","3', '0x"', *rows[1:]])
    assert csv_cells(text) == [("line 3", "bad_mm")]


def test_csv_with_gaps_names_the_missing_cells():
    rows = [r for r in csv_rows("V01") if not r.startswith("V01,evacuate,wet,")]
    rows.remove("V01,prepare,normal,3,45")
    assert csv_cells("\n".join([HEADER, *rows])) == [
        ("V01,prepare,normal,3", "missing_row"), ("V01,evacuate,wet,1", "missing_row"),
        ("V01,evacuate,wet,3", "missing_row"), ("V01,evacuate,wet,6", "missing_row")]


def test_csv_window_in_one_row_only_leaves_gaps_in_the_others():
    text = "\n".join([HEADER, *csv_rows("V01"), "V01,evacuate,wet,12,100"])
    cells = csv_cells(text)
    assert ("V01,prepare,dry,12", "missing_row") in cells and len(cells) == 5


@pytest.mark.parametrize(("text", "cells"), [
    ("", [("line 1", "bad_header")]),
    ("village,level,soil,mm\nV01,prepare,dry,30", [("line 1", "bad_header")]),
    ("V01,prepare,dry,1,30", [("line 1", "bad_header")]),
    ("\n" + HEADER, [("line 1", "bad_header")]),
    (HEADER + "\n", [("line 2", "no_rows")]),
    (HEADER + "\n\n ,, ,,\n", [("line 2", "no_rows")]),
    (HEADER + '\nV01,prepare,"dry,1,30\nV01,prepare,dry,3,49\n', [("line 2", "malformed")]),
    (HEADER + '\nV01,"prepare"x,dry,1,30\n', [("line 2", "malformed")]),
], ids=["empty", "wrong-header", "no-header", "header-not-first", "header-only", "blank-rows",
        "open-quote", "stray-quote"])
def test_csv_whole_file_problems(text, cells):
    assert csv_cells(text) == cells


def test_csv_unknown_villages_when_the_registry_is_given():
    text = "\n".join([HEADER, *csv_rows("V01"), "V99,prepare,dry,1,30"])
    assert csv_cells(text, villages={"V01"}) == [("line 20", "unknown_village")]


def test_import_keeps_gauges_and_antecedent_of_the_current_table():
    current = {"V01": {**TABLE, "gauges": ["RG-02"], "antecedent_mm": {"dry_below": 10,
                                                                        "wet_above": 40}},
               "V02": None, "V03": None}
    text = "\n".join([HEADER, *csv_rows("V01"), *csv_rows("V02")])
    tables = import_csv(text, current, rain_gauges=GAUGES)
    assert set(tables) == {"V01", "V02"}
    assert (tables["V01"].gauges, tables["V01"].dry_below, tables["V01"].wet_above) == (
        ("RG-02",), 10, 40)
    assert (tables["V02"].gauges, tables["V02"].dry_below) == ((), 15)
    assert tables["V01"].evacuate == tables["V02"].evacuate == village_thresholds(
        TABLE, rain_gauges=GAUGES).evacuate


def test_import_names_the_lines_of_cells_that_break_the_table_rules():
    rows = csv_rows("V01")  # row i is on line i + 2
    assert rows[1] == "V01,prepare,dry,3,49" and rows[16] == "V01,evacuate,wet,3,50"
    rows[1] = "V01,prepare,dry,3,20"  # below its 1 h value, and below normal soil's 45
    rows[16] = "V01,evacuate,wet,3,37"  # below prepare's 38
    with pytest.raises(BadThresholds) as caught:
        import_csv("\n".join([HEADER, *rows]), {"V01": None}, rain_gauges=GAUGES)
    assert [(c.path, c.code) for c in caught.value.cells] == [
        ("line 3", "decreasing"), ("line 6", "wet_above_dry"), ("line 18", "below_prepare")]


def test_import_names_problems_of_the_current_table_by_village():
    current = {"V01": {"gauges": ["RG-retired"]}}
    with pytest.raises(BadThresholds) as caught:
        import_csv("\n".join([HEADER, *csv_rows("V01")]), current, rain_gauges=GAUGES)
    assert [(c.path, c.code) for c in caught.value.cells] == [("V01: gauges[0]",
                                                               "unknown_gauge")]


def test_import_of_too_many_windows_names_the_village():
    table = {"windows_h": list(range(1, 14)),
             "prepare": {s: list(range(1, 14)) for s in ("dry", "normal", "wet")},
             "evacuate": {s: list(range(1, 14)) for s in ("dry", "normal", "wet")}}
    with pytest.raises(BadThresholds) as caught:
        import_csv("\n".join([HEADER, *csv_rows("V01", table)]), {"V01": None},
                   rain_gauges=GAUGES)
    assert [(c.path, c.code) for c in caught.value.cells] == [("V01: windows_h", "too_many")]


def test_import_rejects_unregistered_villages_by_line():
    text = "\n".join([HEADER, "V99,prepare,dry,1,30", *csv_rows("V01")])
    with pytest.raises(BadThresholds) as caught:
        import_csv(text, {"V01": None}, rain_gauges=GAUGES)
    assert [(c.path, c.code) for c in caught.value.cells] == [("line 2", "unknown_village")]


def test_bad_thresholds_message_summarises_the_cells():
    with pytest.raises(BadThresholds, match=r"gauges\[0\]: is not a registered rain gauge.*"
                                            r"\(and 1 more\)"):
        village_thresholds(patched(TABLE, {"gauges": ["A", "B", "C", "D"]}), rain_gauges=GAUGES)
