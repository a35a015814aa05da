"""Demo sensors for a generated township (pure): rain gauges at villages, water-level gauges on
the rivers, landslide instruments on the slopes, owned by a few gateways grouped by community."""

from __future__ import annotations

from dataclasses import dataclass

from shapely.ops import nearest_points

from telemetry.choices import UNITS, SensorKind

RAIN_GAUGES = 30
WATER_LEVEL_GAUGES = 4
LANDSLIDE_SITES = 7
# Each watched slope gets a crack meter, a GNSS station and a tilt meter (k-of-n agreement).
SLOPE_KINDS = (SensorKind.CRACK_METER, SensorKind.GNSS, SensorKind.TILT)


@dataclass(frozen=True)
class DemoSensor:
    """One sensor to register."""

    code: str
    name: str
    kind: str
    unit: str
    gateway: str
    lon: float
    lat: float
    village: str | None
    hazard: str | None
    interval_s: int


def gateway_codes(township) -> list[str]:
    """The demo gateways: one per group of communities (three in a township)."""
    return [f"GW-{township.code}-{i}" for i in (1, 2, 3)]


def _gateway_for(township, village_code: str | None) -> str:
    codes = gateway_codes(township)
    communities = sorted({v.community_code for v in township.villages})
    community = next((v.community_code for v in township.villages if v.code == village_code),
                     communities[0])
    return codes[communities.index(community) * len(codes) // len(communities)]


def _spread(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


# Candidate offsets (degrees) from the village centre: a gauge stands in the open, some 300 m
# from the village hall (where a shelter often is), so their map symbols do not overlap.
GAUGE_OFFSETS = ((0.004, -0.002), (-0.004, 0.002), (0.002, 0.004), (-0.002, -0.004),
                 (0.003, 0.0), (-0.003, 0.0), (0.0, 0.003), (0.0, -0.003))


def _gauge_site(village) -> tuple[float, float]:
    from shapely.geometry import Point

    x, y = village.centre.x, village.centre.y
    for dx, dy in GAUGE_OFFSETS:
        if village.boundary.contains(Point(x + dx, y + dy)):
            return round(x + dx, 6), round(y + dy, 6)
    return round(x + 0.0015, 6), round(y + 0.001, 6)


def build_sensors(township) -> list[DemoSensor]:
    """Deterministic sensors for one demo township."""
    sensors: list[DemoSensor] = []
    villages = sorted(township.villages, key=lambda v: (not v.riverside, v.code))
    for n, village in enumerate(_spread(sorted(villages, key=lambda v: v.code), RAIN_GAUGES), 1):
        lon, lat = _gauge_site(village)
        sensors.append(DemoSensor(
            f"RG-{township.code}-{n:02d}", f"{village.name_zh}雨量站", SensorKind.RAIN_GAUGE,
            UNITS[SensorKind.RAIN_GAUGE][0], _gateway_for(township, village.code),
            lon, lat, village.code, None, 300))
    riverside = [v for v in villages if v.riverside]
    main_river = max(township.rivers, key=lambda r: r.geometry.length)
    for n, village in enumerate(_spread(riverside, WATER_LEVEL_GAUGES), 1):
        point = nearest_points(main_river.geometry, village.centre)[0]
        sensors.append(DemoSensor(
            f"WL-{township.code}-{n:02d}", f"{village.name_zh}水位站", SensorKind.WATER_LEVEL,
            UNITS[SensorKind.WATER_LEVEL][0], _gateway_for(township, village.code),
            round(point.x, 6), round(point.y, 6), village.code, None, 300))
    slopes = [h for h in township.hazards if h.kind == "landslide"][:LANDSLIDE_SITES]
    for n, hazard in enumerate(slopes, 1):
        centre = hazard.geometry.representative_point()
        for k, kind in enumerate(SLOPE_KINDS):
            prefix = {SensorKind.CRACK_METER: "CM", SensorKind.GNSS: "GN",
                      SensorKind.TILT: "TL"}[kind]
            sensors.append(DemoSensor(
                f"{prefix}-{township.code}-{n:02d}", f"{hazard.name_zh}{prefix}",
                kind, UNITS[kind][0], _gateway_for(township, hazard.village_code),
                round(centre.x + 0.0004 * (k - 1), 6), round(centre.y, 6), hazard.village_code,
                hazard.code, 600))
    return sensors
