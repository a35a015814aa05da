"""Demo threshold tables for the generated township (pure): a critical-rainfall table for every
riverside village and curves and slope velocities for every landslide and debris-flow zone,
for `rescuehub demo` to store.

They are practice numbers, not a survey, chosen so the drill behaves as a real storm would:
`rescuehub simulate storm` (a 6 h Chicago design storm of about 143 mm at the township's
centroid, at least 15 % of that at its edge) raises 准备转移 and then 立即转移 for the riverside
villages near the centre, while the edge (about 21 mm) stays at 准备转移 or below. The drill
compresses the storm into minutes, so every rolling window ending now holds all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from alerts.thresholds import (
    DEFAULT_ANTECEDENT_MM,
    DEFAULT_CURVES,
    DEFAULT_WINDOWS_H,
    DISPLACEMENT_KINDS,
    SOILS,
)
from telemetry.choices import SensorKind

if TYPE_CHECKING:
    from maps.demo import DemoHazard, DemoVillage
    from telemetry.demo import DemoSensor

# 立即转移 (evacuate now) per window of DEFAULT_WINDOWS_H (1, 3, 6 h) and soil state: the worked
# example of DESIGN §6 (SL 675-2014 practice); drier soil takes more rain before a flood.
EVACUATE_MM = {"dry": (40, 65, 95), "normal": (35, 60, 90), "wet": (30, 50, 80)}
# 准备转移 (prepare) at three quarters of it: the earlier step, leaving time to get ready.
PREPARE_SHARE = 0.75
# SL 675 derives a village's critical rainfall from the flow its channel passes: a village
# lower on the river drains a larger catchment and floods with less rain. The demo spreads the
# table ±10 % from the lowest riverside village to the highest.
ELEVATION_SPREAD = 0.10

# Rain-triggered mass movements: the kinds Caine 1980 and Guzzetti et al. 2008 fitted their
# curves to (shallow landslides and debris flows). A flood plain's danger is the river, which
# the village tables cover.
RAIN_HAZARD_KINDS = ("landslide", "debris_flow")
# The drill's storm reaches the hub compressed into minutes, so each event would be judged at
# the floor duration. At the default 1 h the storm's 15 % edge (about 21 mm) exceeds Caine
# (14.8 mm/h over 1 h) and would evacuate every slope in the township; a 3 h floor (the
# villages' middle window) puts Caine at 14.82·3^0.61 ≈ 29 mm, so only zones that get at least
# a fifth of the centre's rain are told to evacuate, and Guzzetti (≈ 4 mm) prepares all of them.
MIN_DURATION_H = 3
# Slope velocities (mm/day): no universal values exist (DESIGN §6); these are chosen for the
# drill. In the simulator's storm time the failing slope (Fukuzono 1985) moves at 150 mm/day
# at first and passes 200 mm/day two hours into the storm; the other slopes creep at
# 1.4 mm/day and raise nothing.
VELOCITY_MM_D = {"attention": 10, "warning": 50, "alarm": 200}
# Two instruments (crack meter and GNSS) must agree, to cut false alarms (k of n, DESIGN §6).
AGREE = 2


def _scale(village: DemoVillage, low: float, high: float) -> float:
    if high <= low:
        return 1.0
    share = (village.elevation_m - low) / (high - low)
    return 1 - ELEVATION_SPREAD + 2 * ELEVATION_SPREAD * share


def _village_table(gauges: list[str], scale: float) -> dict[str, Any]:
    # Rounding is monotone, so the rounded table keeps every ordering of the unrounded one.
    evacuate = {soil: [round(mm * scale) for mm in EVACUATE_MM[soil]] for soil in SOILS}
    prepare = {soil: [round(mm * PREPARE_SHARE) for mm in evacuate[soil]] for soil in SOILS}
    return {"gauges": gauges, "windows_h": list(DEFAULT_WINDOWS_H), "prepare": prepare,
            "evacuate": evacuate, "antecedent_mm": dict(DEFAULT_ANTECEDENT_MM)}


def village_tables(villages: Iterable[DemoVillage],
                   sensors: Iterable[DemoSensor]) -> dict[str, dict[str, Any]]:
    """Village code → its table (contract JSON) for every riverside village."""
    riverside = sorted((v for v in villages if v.riverside), key=lambda v: v.code)
    own: dict[str, list[str]] = {}
    for sensor in sensors:
        if sensor.kind == SensorKind.RAIN_GAUGE and sensor.village:
            own.setdefault(sensor.village, []).append(sensor.code)
    if not riverside:
        return {}
    low = min(v.elevation_m for v in riverside)
    high = max(v.elevation_m for v in riverside)
    # No gauge of its own: [] lets the service take the gauges inside it or the nearest one.
    return {v.code: _village_table(sorted(own.get(v.code, [])), _scale(v, low, high))
            for v in riverside}


def hazard_tables(hazards: Iterable[DemoHazard],
                  sensors: Iterable[DemoSensor]) -> dict[str, dict[str, Any]]:
    """Hazard code → its table (contract JSON) for every landslide and debris-flow zone."""
    instruments: dict[str, list[str]] = {}
    for sensor in sensors:
        if sensor.kind in DISPLACEMENT_KINDS and sensor.hazard:
            instruments.setdefault(sensor.hazard, []).append(sensor.code)
    tables = {}
    for hazard in sorted(hazards, key=lambda h: h.code):
        if hazard.kind not in RAIN_HAZARD_KINDS:
            continue
        codes = sorted(instruments.get(hazard.code, []))
        prepare, evacuate = DEFAULT_CURVES["prepare"], DEFAULT_CURVES["evacuate"]
        tables[hazard.code] = {
            "gauges": [],
            "prepare": {"alpha": prepare[0], "beta": prepare[1]},
            "evacuate": {"alpha": evacuate[0], "beta": evacuate[1]},
            "min_duration_h": MIN_DURATION_H,
            "sensors": codes,
            # An uninstrumented zone has nothing to measure: no slope alert, and the page says so.
            "velocity_mm_d": dict(VELOCITY_MM_D) if codes else dict.fromkeys(VELOCITY_MM_D),
            "agree": min(AGREE, len(codes)) or 1,
        }
    return tables
