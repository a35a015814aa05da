"""alerts.demo: the demo township's threshold tables are valid, cover what they should, and let
the drill storm of `rescuehub simulate storm` raise 准备转移 then 立即转移 near its centre and no
more than 准备转移 at its edge."""

from __future__ import annotations

import functools

import pytest
from pyproj import Geod
from shapely.geometry import Point

from alerts import demo
from alerts.thresholds import hazard_thresholds, village_thresholds
from telemetry import demo as sensor_demo
from telemetry import simulate as sim
from tests.conftest import demo_township

SOILS = ("dry", "normal", "wet")
GAUGE_RADIUS_M = 5000  # alerts.gauge_radius_m
STORM_MIN, STEP_MIN = 360, 5
EDGE = 0.15  # the simulator's smallest share of the centre's rain
GEOD = Geod(ellps="WGS84")


@functools.cache
def township():
    town = demo_township()
    return town, tuple(sensor_demo.build_sensors(town))


def rain_gauges(sensors) -> dict[str, object]:
    return {s.code: s for s in sensors if s.kind == "rain_gauge"}


def displacement_sensors(sensors) -> set[str]:
    return {s.code for s in sensors if s.kind in ("crack_meter", "gnss")}


def storm_so_far() -> list[float]:
    """Rain (mm) at the storm centre after each report of the design storm."""
    total, out = 0.0, []
    for step in range(STORM_MIN // STEP_MIN):
        total += sim.rain_between(step * STEP_MIN, (step + 1) * STEP_MIN, STORM_MIN)
        out.append(total)
    return out


def gauges_of(village, table, gauges) -> list:
    """The table's gauges, else those inside the village, else the nearest within the radius
    (DESIGN §5 "Thresholds")."""
    if table["gauges"]:
        return [gauges[code] for code in table["gauges"]]
    inside = [g for g in gauges.values() if village.boundary.contains(Point(g.lon, g.lat))]
    if inside:
        return inside
    metres = {code: GEOD.inv(village.centre.x, village.centre.y, g.lon, g.lat)[2]
              for code, g in gauges.items()}
    nearest = min(metres, key=metres.get)
    return [gauges[nearest]] if metres[nearest] <= GAUGE_RADIUS_M else []


def flood_level(table, soil: str, mm: float) -> str:
    """DESIGN §6 "Flash flood" with every window holding the same rain (the drill's storm is
    compressed into minutes, so each window ending now holds all of it)."""
    for level in ("evacuate", "prepare"):
        if any(mm >= cell for cell in table[level][soil]):
            return level
    return "none"


def test_every_riverside_village_has_a_valid_table():
    town, sensors = township()
    tables = demo.village_tables(town.villages, sensors)
    assert set(tables) == {v.code for v in town.villages if v.riverside}
    for table in tables.values():
        village_thresholds(table, rain_gauges=set(rain_gauges(sensors)))


def test_a_village_with_its_own_gauge_names_it():
    town, sensors = township()
    tables = demo.village_tables(town.villages, sensors)
    own = {s.village: s.code for s in sensors if s.kind == "rain_gauge"}
    assert {code: t["gauges"] for code, t in tables.items()} == {
        code: [own[code]] if code in own else [] for code in tables}
    assert any(t["gauges"] for t in tables.values())
    assert any(not t["gauges"] for t in tables.values())


def test_village_tables_follow_the_worked_example_within_the_elevation_spread():
    town, sensors = township()
    tables = demo.village_tables(town.villages, sensors)
    for table in tables.values():
        assert table["windows_h"] == [1, 3, 6]
        for soil in SOILS:
            for mm, example in zip(table["evacuate"][soil], demo.EVACUATE_MM[soil], strict=True):
                assert 0.9 * example - 0.5 <= mm <= 1.1 * example + 0.5
            assert table["prepare"][soil] == [round(0.75 * mm) for mm in table["evacuate"][soil]]
    # the lowest riverside village gets the lowest table, the highest the highest
    riverside = sorted((v for v in town.villages if v.riverside), key=lambda v: v.elevation_m)
    assert tables[riverside[0].code]["evacuate"]["dry"] == [36, 58, 86]
    assert tables[riverside[-1].code]["evacuate"]["dry"] == [44, 72, 105]


def test_every_landslide_and_debris_flow_zone_has_a_valid_table():
    town, sensors = township()
    tables = demo.hazard_tables(town.hazards, sensors)
    assert set(tables) == {h.code for h in town.hazards if h.kind in ("landslide", "debris_flow")}
    assert any(h.kind == "flood_plain" for h in town.hazards)
    for table in tables.values():
        checked = hazard_thresholds(table, rain_gauges=set(rain_gauges(sensors)),
                                    displacement_sensors=displacement_sensors(sensors))
        assert (checked.prepare, checked.evacuate) == ((2.20, 0.44), (14.82, 0.39))


def test_instrumented_zones_watch_crack_meter_and_gnss_with_two_agreeing():
    town, sensors = township()
    tables = demo.hazard_tables(town.hazards, sensors)
    instrumented = {s.hazard for s in sensors if s.hazard}
    assert len(instrumented) == sensor_demo.LANDSLIDE_SITES
    for code, table in tables.items():
        if code in instrumented:
            n = code[-2:]
            assert table["sensors"] == [f"CM-T000-{n}", f"GN-T000-{n}"]  # not the tilt meter
            assert table["agree"] == 2
            assert table["velocity_mm_d"] == {"attention": 10, "warning": 50, "alarm": 200}
        else:
            assert (table["sensors"], table["agree"]) == ([], 1)
            assert set(table["velocity_mm_d"].values()) == {None}


def village_factors():
    """Riverside village → (its table, the share of the centre's rain at its gauge)."""
    town, sensors = township()
    tables = demo.village_tables(town.villages, sensors)
    gauges = rain_gauges(sensors)
    centre = town.boundary.centroid
    plan = sim.StormPlan(centre=(centre.x, centre.y))
    out = {}
    for village in town.villages:
        if village.riverside:
            table = tables[village.code]
            found = gauges_of(village, table, gauges)
            assert found, village.code
            factor = max(sim.spatial_factor(sim.SimSensor(g.code, g.kind, g.gateway, g.lon,
                                                          g.lat), plan) for g in found)
            out[village.code] = (table, factor)
    return out


def test_the_drill_storm_raises_prepare_then_evacuate_near_the_centre():
    # After the simulator's dry 24 h spin-up the antecedent index is 0: dry soil.
    so_far = storm_so_far()
    assert 140 < so_far[-1] < 146
    raised = {}
    for code, (table, factor) in village_factors().items():
        levels = [flood_level(table, "dry", mm * factor) for mm in so_far]
        assert levels == sorted(levels, key=("none", "prepare", "evacuate").index), code
        if "evacuate" in levels:
            # a report at 准备转移 comes before the first at 立即转移
            assert levels[levels.index("evacuate") - 1] == "prepare", code
        raised[code] = levels[-1]
    factors = {code: factor for code, (_, factor) in village_factors().items()}
    near = [code for code, factor in factors.items() if factor >= 0.5]
    assert len(near) >= 10
    assert all(raised[code] == "evacuate" for code in near)


@pytest.mark.parametrize("soil", SOILS)
def test_the_storm_edge_never_evacuates_a_village(soil):
    edge_mm = EDGE * storm_so_far()[-1]
    for code, (table, _) in village_factors().items():
        assert flood_level(table, soil, edge_mm) != "evacuate", code


def test_landslide_curves_evacuate_near_the_centre_and_only_prepare_at_the_edge():
    # The compressed storm lasts minutes: the event's duration is the floor, min_duration_h.
    town, sensors = township()
    centre_mm = storm_so_far()[-1]
    for code, table in demo.hazard_tables(town.hazards, sensors).items():
        hours = table["min_duration_h"]

        def level(mm, table=table, hours=hours):
            for name in ("evacuate", "prepare"):
                curve = table[name]
                if mm / hours >= curve["alpha"] * hours ** -curve["beta"]:
                    return name
            return "none"

        assert level(centre_mm) == "evacuate", code
        assert level(EDGE * centre_mm) == "prepare", code
        # at the default floor of 1 h the edge would have been told to evacuate
        assert EDGE * centre_mm >= 14.82
