"""maps.demo: the generated township and prefecture are realistic, consistent and deterministic."""

import collections
import dataclasses
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from maps import demo, geo

ROOT = Path(__file__).resolve().parents[2]


def town() -> demo.DemoTownship:
    """The session's demo township (built once for every test that reads it)."""
    # Imported here: tests/maps/test_demo.py is also imported by a bare script below.
    from tests.conftest import demo_township

    return demo_township()


def metric(geom, epsg=32649):
    return geo.to_metric(geom, epsg)


def digest(obj, h=None) -> str:
    """A hash of every field, geometries as WKB: equal digests mean byte-identical output."""
    h = h or hashlib.sha256()
    if isinstance(obj, shapely.Geometry):
        h.update(shapely.to_wkb(obj))
    elif dataclasses.is_dataclass(obj):
        for field in dataclasses.fields(obj):
            digest(getattr(obj, field.name), h)
    elif isinstance(obj, tuple | list):
        for item in obj:
            digest(item, h)
    else:
        h.update(repr(obj).encode())
    return h.hexdigest()


def graph(t: demo.DemoTownship):
    """Adjacency (two-way unless oneway) and node coordinates of a township's roads."""
    adjacent = collections.defaultdict(set)
    coords: dict[int, tuple[float, float]] = {}
    for road in t.roads:
        adjacent[road.source].add(road.target)
        if not road.oneway:
            adjacent[road.target].add(road.source)
        first, last = road.geometry.coords[0], road.geometry.coords[-1]
        assert coords.setdefault(road.source, first) == first, road.code
        assert coords.setdefault(road.target, last) == last, road.code
    return adjacent, coords


def reachable(adjacent, start: int) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in adjacent[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


# --- the demo township ----------------------------------------------------------------------------

def test_township_sits_in_the_hills_of_southern_shaanxi():
    t = town()
    centre = t.boundary.centroid
    assert 108.9 <= centre.x <= 109.2 and 32.9 <= centre.y <= 33.4
    assert t.epsg == geo.utm_epsg(centre.x, centre.y) == 32649
    assert (t.code, t.name_zh[-1]) in {("T000", "镇"), ("T000", "乡")}
    assert re.fullmatch(r"[A-Z][a-z]+ (Zhen|Xiang)", t.name_pinyin)


def test_boundary_is_an_irregular_polygon_of_about_115_km2():
    t = town()
    outline = metric(t.boundary)
    assert t.boundary.is_valid and t.boundary.geom_type == "Polygon"
    assert 110.0 <= outline.area / 1e6 <= 120.0
    assert geo.area_km2(t.boundary) == pytest.approx(outline.area / 1e6, rel=2e-3)
    assert outline.area / outline.envelope.area < 0.9  # not a rectangle
    assert len(t.boundary.exterior.coords) > 50


def test_sizes_match_the_reform_reports():
    t = town()
    people = sum(v.population for v in t.villages)
    assert len(t.villages) == 66
    assert len({v.community_code for v in t.villages}) == 10
    assert people == 69000
    assert sum(v.households for v in t.villages) == pytest.approx(people / 3.1, rel=0.08)
    assert 0.12 <= sum(v.vulnerable for v in t.villages) / people <= 0.18
    assert 10 <= len(t.shelters) <= 14
    kinds = collections.Counter(h.kind for h in t.hazards)
    assert 15 <= kinds["landslide"] <= 30
    assert kinds["debris_flow"] >= 2 and kinds["flood_plain"] >= 1
    assert len(t.rivers) >= 5


def test_villages_tile_the_boundary_without_gaps_or_overlaps():
    t = town()
    cells = np.array([v.boundary for v in t.villages])
    assert all(c.geom_type == "Polygon" for c in cells)
    assert shapely.is_valid(cells).all()
    assert shapely.coverage_is_valid(cells)  # no overlaps, shared edges match exactly
    union = metric(shapely.coverage_union_all(cells))
    outline = metric(t.boundary)
    assert abs(union.area - outline.area) / outline.area < 1e-4
    assert union.symmetric_difference(outline).area / outline.area < 1e-4
    assert sum(metric(c).area for c in cells) == pytest.approx(union.area, rel=1e-9)
    left, right = shapely.STRtree(cells).query(cells, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(cells[left[pairs]], cells[right[pairs]]))
    assert overlap.max() < 1e-12  # degrees²: about 0.01 m²


def test_communities_are_contiguous_groups():
    t = town()
    groups = collections.defaultdict(list)
    for v in t.villages:
        groups[v.community_code].append(v)
    for code, members in groups.items():
        assert re.fullmatch(r"T000-C\d\d", code)
        assert len({m.community_name_zh for m in members}) == 1
        land = shapely.coverage_union_all([m.boundary for m in members])
        assert land.geom_type == "Polygon", code
    names = {members[0].community_name_zh for members in groups.values()}
    assert len(names) == 10 and all(n[-1] in "村区" for n in names)


def test_village_records_are_plausible():
    t = town()
    assert [v.code for v in t.villages] == [f"T000-V{i:02d}" for i in range(1, 67)]
    assert len({v.name_zh for v in t.villages}) == 66
    assert len({v.contact_phone for v in t.villages}) == 66
    for v in t.villages:
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", v.name_zh), v.name_zh
        assert re.fullmatch(r"[A-Z][a-z']+", v.name_pinyin), v.name_pinyin
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", v.contact_name)
        assert re.fullmatch(r"1380000\d{4}", v.contact_phone)
        assert v.population >= 100 and v.households >= 1
        assert 0 < v.vulnerable < v.population
        assert 400.0 <= v.elevation_m <= 2000.0
        assert v.boundary.contains(v.centre)


def test_fields_have_plain_python_types():
    # Database drivers take int/float/bool/str, not numpy scalars.
    t = town()
    samples = [t, t.villages[0], t.shelters[0], t.roads[0], t.hazards[0], t.rivers[0]]
    for sample in samples:
        for field in dataclasses.fields(sample):
            value = getattr(sample, field.name)
            assert not isinstance(value, np.generic), (type(sample).__name__, field.name)
    assert type(t.villages[0].riverside) is bool and type(t.roads[0].source) is int


def test_coordinates_are_rounded_to_six_decimals():
    t = town()
    geoms = [t.boundary, *(v.boundary for v in t.villages), *(v.centre for v in t.villages),
             *(s.location for s in t.shelters), *(r.geometry for r in t.roads),
             *(h.geometry for h in t.hazards), *(r.geometry for r in t.rivers)]
    coords = shapely.get_coordinates(np.array(geoms))
    assert np.array_equal(np.round(coords, 6), coords)


def test_rivers_flow_downhill_along_the_valleys():
    t = town()
    terrain = demo.Terrain.of(t)
    for river in t.rivers:
        assert river.geometry.is_valid and t.boundary.covers(river.geometry)
        xy = shapely.get_coordinates(metric(river.geometry))
        z = terrain.elevation_xy(xy[:, 0], xy[:, 1])
        assert np.all(np.diff(z) <= 1e-6), river.code
        assert z[0] > z[-1]
    assert terrain.depths[0] == 0 and terrain.depths.count(1) >= 3
    # Away from the rivers the land rises to ridges.
    minx, miny, maxx, maxy = metric(t.boundary).bounds
    grid = np.mgrid[minx:maxx:40j, miny:maxy:40j].reshape(2, -1)
    inside = shapely.contains_xy(metric(t.boundary), *grid)
    heights = terrain.elevation_xy(*grid[:, inside])
    assert heights.min() >= 400.0 and heights.max() <= 2000.0
    assert heights.max() - heights.min() > 600.0


def test_village_elevation_and_riverside_follow_the_terrain():
    t = town()
    terrain = demo.Terrain.of(t)
    rivers = shapely.union_all([r.geometry for r in t.rivers])
    for v in t.villages:
        assert terrain.elevation(*v.centre.coords[0]) == pytest.approx(v.elevation_m, abs=0.051)
        assert v.riverside == v.boundary.intersects(rivers)
    assert 0.4 <= np.mean([v.riverside for v in t.villages]) <= 0.6


def test_road_network_is_a_graph_with_shared_nodes():
    t = town()
    adjacent, coords = graph(t)
    assert 2000 <= len(coords) <= 6000
    assert len(set(coords.values())) == len(coords)  # one node per place
    assert len({r.code for r in t.roads}) == len(t.roads)
    assert len({frozenset((r.source, r.target)) for r in t.roads}) == len(t.roads)
    lines = np.array([r.geometry for r in t.roads])
    lengths = np.array([r.length_m for r in t.roads])
    assert np.allclose(lengths, [geo.geodesic_length_m(g) for g in lines], atol=0.01)
    assert lengths.max() <= 101.0 and lengths.min() > 0.0
    assert collections.Counter(r.road_class for r in t.roads).keys() == set(demo.SPEED_KMH)
    for road in t.roads:
        assert road.speed_kmh == demo.SPEED_KMH[road.road_class]
        assert road.source != road.target and road.source <= demo.NODE_BLOCK


def test_bridges_and_fords_where_roads_cross_rivers():
    t = town()
    rivers = shapely.union_all([r.geometry for r in t.rivers])
    crossing = {r.code: r.geometry.intersects(rivers) for r in t.roads}
    structures = collections.Counter(r.structure for r in t.roads)
    assert structures["bridge"] >= 5 and structures["ford"] >= 5
    for road in t.roads:
        assert (road.structure != "none") == crossing[road.code], road.code
        if road.road_class in ("county", "township") and road.structure != "none":
            assert road.structure == "bridge"
        if road.road_class == "track" and road.structure != "none":
            assert road.structure == "ford"


def test_every_village_centre_is_reachable_from_the_township_compound():
    t = town()
    adjacent, coords = graph(t)
    node_at = {xy: node for node, xy in coords.items()}
    compound = t.shelters[0]
    assert compound.kind == "township_compound"
    seen = reachable(adjacent, node_at[compound.location.coords[0]])
    for v in t.villages:
        assert node_at.get(v.centre.coords[0]) in seen, v.code


def test_shelters_are_safe_and_sized_for_a_quarter_of_the_people():
    t = town()
    _, coords = graph(t)
    places = set(coords.values())
    danger = shapely.union_all([h.geometry for h in t.hazards])
    villages = {v.code: v for v in t.villages}
    kinds = collections.Counter(s.kind for s in t.shelters)
    assert kinds["township_compound"] == 1 and kinds["school"] >= 2
    assert kinds["village_hall"] >= 2 and kinds["clinic"] + kinds["gymnasium"] >= 1
    assert len({s.code for s in t.shelters}) == len(t.shelters)
    assert len({s.location.coords[0] for s in t.shelters}) == len(t.shelters)
    for s in t.shelters:
        assert s.location.coords[0] in places, s.code  # at a road node
        assert t.boundary.contains(s.location)
        assert not danger.intersects(s.location), s.code
        assert villages[s.village_code].boundary.covers(s.location)
        assert s.capacity_day > 0 and s.capacity_night > 0
        if s.kind == "school":  # classes by day, dormitories and classrooms free at night
            assert s.capacity_day < s.capacity_night
        assert re.fullmatch(r"1380000\d{4}", s.contact_phone)
    night = sum(s.capacity_night for s in t.shelters)
    assert 0.20 <= night / 69000 <= 0.40
    assert any("政府大院" in s.name_zh for s in t.shelters)
    assert any(s.name_zh.endswith("中心小学") for s in t.shelters)


def test_hazards_sit_on_steep_slopes_valleys_and_gullies():
    t = town()
    terrain = demo.Terrain.of(t)
    main = t.rivers[0].geometry
    villages = {v.code: v for v in t.villages}
    for h in t.hazards:
        assert h.geometry.geom_type == "Polygon" and h.geometry.is_valid
        assert t.boundary.covers(h.geometry)
        assert h.households >= 1 and h.people >= h.households
        assert h.village_code in villages and h.geometry.intersects(
            villages[h.village_code].boundary)
        assert h.name_zh
        if h.kind == "flood_plain":
            assert h.geometry.intersects(main)
    slides = [metric(h.geometry).representative_point() for h in t.hazards
              if h.kind == "landslide"]
    slope = terrain.slope_xy([p.x for p in slides], [p.y for p in slides])
    assert np.median(slope) >= 20.0
    assert len({h.code for h in t.hazards}) == len({h.name_zh for h in t.hazards}) == len(
        t.hazards)


def test_every_geometry_is_valid_and_inside_the_boundary():
    t = town()
    others = [*(s.location for s in t.shelters), *(r.geometry for r in t.roads),
              *(h.geometry for h in t.hazards), *(r.geometry for r in t.rivers),
              *(v.centre for v in t.villages)]
    assert shapely.is_valid(np.array(others)).all()
    assert shapely.covers(t.boundary, np.array(others)).all()


# --- determinism and parameters -------------------------------------------------------------------

def test_same_seed_same_township():
    again = demo.build_township()
    assert again == town()
    assert digest(again) == digest(town())


def test_output_does_not_depend_on_the_process(tmp_path):
    # String hashing differs between processes; nothing may depend on it.
    script = tmp_path / "digest.py"
    script.write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]\n"
        "from maps import demo\n"
        "from test_demo import digest\n"
        "print(digest(demo.build_township()))\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    assert out.stdout.strip() == digest(town())


def test_another_index_is_another_township_beside_it():
    other = demo.build_township(index=1)
    assert other.code == "T001" and other.villages[0].code == "T001-V01"
    assert other.name_zh != town().name_zh
    assert not other.boundary.intersects(town().boundary)
    assert {r.source for r in other.roads}.isdisjoint({r.source for r in town().roads})
    assert min(r.source for r in other.roads) > demo.NODE_BLOCK
    assert other.villages[0].contact_phone.startswith("1380001")


def test_another_seed_is_another_township():
    assert demo.build_township(seed=7).boundary != town().boundary


def test_parameters_shape_the_township():
    t = demo.build_township(index=3, centre=(108.95, 33.30), villages=20, communities=4,
                            area_km2=60.0, population=15000)
    assert 57.0 <= metric(t.boundary).area / 1e6 <= 63.0
    assert t.boundary.contains(Point(108.95, 33.30))
    assert len(t.villages) == 20 and sum(v.population for v in t.villages) == 15000
    assert len({v.community_code for v in t.villages}) == 4
    assert shapely.coverage_is_valid(np.array([v.boundary for v in t.villages]))
    adjacent, coords = graph(t)
    node_at = {xy: node for node, xy in coords.items()}
    seen = reachable(adjacent, node_at[t.shelters[0].location.coords[0]])
    assert all(node_at[v.centre.coords[0]] in seen for v in t.villages)


@pytest.mark.parametrize("kwargs", [
    {"villages": 0}, {"communities": 0}, {"population": 10}, {"area_km2": 1.0},
    {"villages": 500, "area_km2": 100.0},
])
def test_impossible_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        demo.build_township(**kwargs)


# --- the prefecture -------------------------------------------------------------------------------

@pytest.mark.slow
def test_prefecture_tiles_103_townships_with_1106_villages():
    calls = []
    towns = demo.build_prefecture(progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 103) for i in range(1, 104)]
    assert [t.code for t in towns] == [f"T{i:03d}" for i in range(1, 104)]
    assert len({t.name_zh for t in towns}) == 103
    assert sum(len(t.villages) for t in towns) == 1106
    assert {len(t.villages) for t in towns} <= {10, 11}
    outlines = np.array([t.boundary for t in towns])
    assert shapely.is_valid(outlines).all()
    assert shapely.coverage_is_valid(outlines)  # side by side, never overlapping
    for t in towns:
        centre = t.boundary.centroid
        assert 105.5 <= centre.x <= 108.0 and 32.0 <= centre.y <= 34.0  # Hanzhong
        assert t.epsg == 32648
    for kind in ("villages", "shelters", "roads", "hazards", "rivers"):
        codes = [f.code for t in towns for f in getattr(t, kind)]
        assert len(codes) == len(set(codes)), kind
        assert all(c.startswith(t.code + "-") for t in towns for c in
                   (f.code for f in getattr(t, kind)))
    nodes_seen: set[int] = set()
    for t in towns:
        adjacent, coords = graph(t)
        assert nodes_seen.isdisjoint(coords)
        nodes_seen |= set(coords)
        node_at = {xy: node for node, xy in coords.items()}
        seen = reachable(adjacent, node_at[t.shelters[0].location.coords[0]])
        assert all(node_at[v.centre.coords[0]] in seen for v in t.villages), t.code
        assert shapely.coverage_is_valid(np.array([v.boundary for v in t.villages])), t.code
        assert len(t.shelters) >= 5
    assert 20_000 <= len(nodes_seen) <= 100_000
