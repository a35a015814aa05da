"""A realistic, deterministic demo township and prefecture in the hills of southern Shaanxi (pure).

Everything is generated in metres in the township's UTM zone and returned in lon/lat (EPSG:4326)
rounded to 6 decimals (about 0.1 m), so the same seed gives byte-identical output on any machine.
The country is synthetic but shaped like the Qinling–Daba hills: rivers in valleys, villages along
them, roads following the valleys, landslides on the steep valley sides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point, Polygon

from maps import geo

# The demo township sits on the southern slopes of the Qinling north of the Han valley at Ankang
# (Ankang city is at about 109.03 E, 32.69 N; the Qinling crest runs near 33.8 N): mountain
# country of the kind the reform reports describe. UTM zone 49N (EPSG:32649).
DEMO_CENTRE = (109.05, 33.15)
# The prefecture lies over the Hanzhong basin and the Qinling and Daba/Micang mountains around it
# (Hanzhong city is at about 107.03 E, 33.07 N), all in UTM zone 48N (EPSG:32648), so it never
# overlaps the demo township.
PREFECTURE_CENTRE = (106.85, 33.05)
PREFECTURE_TOWNSHIP_KM2 = 150.0

SEED = 20210722
SPEED_KMH = {"county": 50.0, "township": 35.0, "village": 25.0, "track": 12.0}
SEGMENT_M = 100.0  # node spacing of the road graph: routing granularity
# Coarser for the prefecture, so its 103 townships still load into a database within a minute.
PREFECTURE_SEGMENT_M = 180.0
NODE_BLOCK = 100_000  # node ids of township `index` are index * NODE_BLOCK + 1 ...

# Terrain: valley floors rise upstream from the main river's outlet; relief grows away from them.
OUTLET_M = 450.0
FLOOR_GRADIENT = (0.005, 0.03, 0.07)  # m/m for the main river, tributaries, side gullies
RELIEF_DECAY_M = 1200.0
ELEVATION_RANGE = (400.0, 1999.0)
RIVER_STEP_M = 100.0  # vertex spacing of the rivers


# --- the generated features ---------------------------------------------------------------------

@dataclass(frozen=True)
class DemoVillage:
    """A natural village: its land, centre, people and a contact."""

    code: str
    name_zh: str
    name_pinyin: str
    community_code: str
    community_name_zh: str
    boundary: Polygon
    centre: Point
    population: int
    households: int
    vulnerable: int
    contact_name: str
    contact_phone: str
    riverside: bool
    elevation_m: float


@dataclass(frozen=True)
class DemoShelter:
    """A building people are evacuated to, at a road node."""

    code: str
    name_zh: str
    name_pinyin: str
    kind: str
    location: Point
    capacity_day: int
    capacity_night: int
    contact_name: str
    contact_phone: str
    village_code: str


@dataclass(frozen=True)
class DemoRoad:
    """One edge of the road graph between nodes `source` and `target`."""

    code: str
    geometry: LineString
    road_class: str
    speed_kmh: float
    oneway: bool
    structure: str
    source: int
    target: int
    length_m: float


@dataclass(frozen=True)
class DemoHazard:
    """A landslide, debris-flow or flood-plain zone and who lives in it."""

    code: str
    kind: str
    name_zh: str
    geometry: Polygon
    households: int
    people: int
    village_code: str | None


@dataclass(frozen=True)
class DemoRiver:
    """A river or stream, drawn from source to mouth (downhill)."""

    code: str
    name_zh: str
    geometry: LineString


@dataclass(frozen=True)
class DemoTownship:
    """A whole township: boundary, metric CRS and every feature in it."""

    code: str
    name_zh: str
    name_pinyin: str
    boundary: Polygon
    epsg: int
    villages: tuple[DemoVillage, ...]
    shelters: tuple[DemoShelter, ...]
    roads: tuple[DemoRoad, ...]
    hazards: tuple[DemoHazard, ...]
    rivers: tuple[DemoRiver, ...]


# --- names ----------------------------------------------------------------------------------------

def _table(text: str) -> tuple[tuple[str, str], ...]:
    # "柳树:liu-shu" -> ("柳树", "liu-shu"); pinyin syllables are joined later.
    return tuple(tuple(item.split(":")) for item in text.split())  # type: ignore[misc]


SURNAMES = _table(
    "王:wang 李:li 张:zhang 刘:liu 陈:chen 杨:yang 赵:zhao 黄:huang 周:zhou 吴:wu 徐:xu 孙:sun "
    "胡:hu 朱:zhu 高:gao 林:lin 何:he 郭:guo 马:ma 罗:luo 梁:liang 宋:song 郑:zheng 谢:xie "
    "韩:han 唐:tang 冯:feng 董:dong 程:cheng 曹:cao 袁:yuan 邓:deng 彭:peng 苏:su 蒋:jiang "
    "蔡:cai 贾:jia 丁:ding 魏:wei 薛:xue 叶:ye 余:yu 潘:pan 杜:du 戴:dai 夏:xia 钟:zhong "
    "田:tian 任:ren 姜:jiang 范:fan 方:fang 石:shi 姚:yao 谭:tan 廖:liao 邹:zou 熊:xiong "
    "金:jin 郝:hao 孔:kong 白:bai 崔:cui 康:kang 毛:mao 邱:qiu 秦:qin 史:shi 侯:hou 邵:shao "
    "孟:meng 龙:long 段:duan 雷:lei 汤:tang 尹:yin 易:yi 常:chang 武:wu 乔:qiao 贺:he 文:wen")
LANDFORMS = _table(
    "湾:wan 沟:gou 坪:ping 坝:ba 岭:ling 梁:liang 院:yuan 庄:zhuang 垭:ya 岩:yan 台:tai 嘴:zui "
    "坡:po 寨:zhai 河:he 口:kou 山:shan 营:ying 铺:pu 店:dian 庙:miao 塘:tang 槽:cao 坎:kan")
DESCRIPTORS = _table(
    "柳树:liu-shu 石板:shi-ban 黄土:huang-tu 青岗:qing-gang 大河:da-he 杨柳:yang-liu "
    "核桃:he-tao 松树:song-shu 白岩:bai-yan 红岩:hong-yan 枫树:feng-shu 桃园:tao-yuan "
    "漆树:qi-shu 茶园:cha-yuan 观音:guan-yin 马鞍:ma-an 狮子:shi-zi 龙王:long-wang 火地:huo-di "
    "竹园:zhu-yuan 银杏:yin-xing 板栗:ban-li 泉水:quan-shui 磨石:mo-shi 干沟:gan-gou "
    "水井:shui-jing 碾子:nian-zi 油坊:you-fang 白果:bai-guo 花园:hua-yuan 梨树:li-shu "
    "枣树:zao-shu 桑树:sang-shu 凉水:liang-shui 鹰嘴:ying-zui 牛角:niu-jiao 青龙:qing-long "
    "黑龙:hei-long 五郎:wu-lang 铁炉:tie-lu 瓦房:wa-fang 堰塘:yan-tang 桐树:tong-shu")
POSITIONS = _table(
    "上:shang 下:xia 中:zhong 前:qian 后:hou 东:dong 西:xi 南:nan 北:bei 新:xin 老:lao 大:da "
    "小:xiao 高:gao 长:chang 双:shuang 三:san 石:shi 沙:sha 金:jin")
TOWN_FIRST = _table(
    "龙:long 石:shi 双:shuang 金:jin 青:qing 高:gao 白:bai 铁:tie 黄:huang 红:hong 马:ma "
    "凤:feng 云:yun 松:song 桃:tao 杨:yang 柳:liu 竹:zhu 茨:ci 花:hua 长:chang 麻:ma 沙:sha 汉:han")
TOWN_SECOND = _table(
    "潭:tan 门:men 河:he 川:chuan 山:shan 峰:feng 坪:ping 坝:ba 口:kou 关:guan 岭:ling 溪:xi "
    "池:chi 寨:zhai 庙:miao 湾:wan 沟:gou 垭:ya 铺:pu")
GIVEN = "建国明华军平强伟秀英兰芳志德成林海勇红梅文春生福荣贵玉珍桂凤永忠发安宏利云霞丽娟涛斌"


def _pinyin(*syllable_groups: str) -> str:
    # GB/T 16159: an a/o/e syllable after another takes an apostrophe (ma'an, not maan).
    out: list[str] = []
    for group in syllable_groups:
        for syllable in group.split("-"):
            if out and syllable[0] in "aoe":
                out.append("'")
            out.append(syllable)
    return "".join(out).capitalize()


def _village_name(rng: np.random.Generator) -> tuple[str, str]:
    pattern = rng.random()
    land_zh, land_py = LANDFORMS[rng.integers(len(LANDFORMS))]
    if pattern < 0.5:
        sur_zh, sur_py = SURNAMES[rng.integers(len(SURNAMES))]
        return f"{sur_zh}家{land_zh}", _pinyin(sur_py, "jia", land_py)
    if pattern < 0.82:
        desc_zh, desc_py = DESCRIPTORS[rng.integers(len(DESCRIPTORS))]
        return f"{desc_zh}{land_zh}", _pinyin(desc_py, land_py)
    pos_zh, pos_py = POSITIONS[rng.integers(len(POSITIONS))]
    return f"{pos_zh}{land_zh}", _pinyin(pos_py, land_py)


def _unique_names(rng: np.random.Generator, count: int, taken: set[str]) -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = []
    while len(names) < count:
        zh, py = _village_name(rng)
        if zh not in taken and not _stutters(zh):
            taken.add(zh)
            names.append((zh, py))
    return names


def _stutters(name: str) -> bool:
    # 干沟 + 沟 reads wrong; a real name would be 干沟 or 干沟湾.
    return any(a == b for a, b in zip(name, name[1:], strict=False))


def _person(rng: np.random.Generator) -> str:
    surname = SURNAMES[rng.integers(len(SURNAMES))][0]
    given = "".join(GIVEN[i] for i in rng.integers(len(GIVEN), size=1 + int(rng.random() < 0.7)))
    return surname + given


def _phone(index: int, serial: int) -> str:
    # 138-0iii-ssss: fictitious numbers in one block per township (the demo township: 1380000xxxx).
    return f"1380{index % 1000:03d}{serial % 10000:04d}"


def _township_name(seed: int, index: int) -> tuple[str, str, str]:
    combos = [(a, b) for a in TOWN_FIRST for b in TOWN_SECOND if a[0] != b[0]]
    order = np.random.default_rng([seed, 7]).permutation(len(combos))
    (first_zh, first_py), (second_zh, second_py) = combos[order[index % len(combos)]]
    suffix_zh, suffix_py = ("乡", "Xiang") if (index * 7 + seed) % 5 == 0 else ("镇", "Zhen")
    stem = first_zh + second_zh
    return stem, stem + suffix_zh, f"{_pinyin(first_py, second_py)} {suffix_py}"


# --- terrain --------------------------------------------------------------------------------------

def _cumlen(xy: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])


def _relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Ridge height above the valley floor: a fixed function of position, so neighbouring
    # townships share it.
    return (720.0 + 260.0 * np.sin(x / 7300.0 + 1.3) * np.cos(y / 9100.0 - 0.4)
            + 120.0 * np.sin((x + y) / 3100.0 + 2.1) + 60.0 * np.sin((x - 2.0 * y) / 1700.0))


class Terrain:
    """Synthetic elevation of a demo township: valley floors along its rivers, ridges between."""

    def __init__(self, rivers_m: Sequence[LineString], epsg: int) -> None:
        self.epsg = epsg
        self._lines = np.array(rivers_m, dtype=object)
        self._cum: list[np.ndarray] = []
        self._floor: list[np.ndarray] = []
        depths: list[int] = []
        for k, line in enumerate(rivers_m):
            xy = shapely.get_coordinates(line)
            cum = _cumlen(xy)
            if k == 0:
                depth, outlet = 0, OUTLET_M
            else:
                # A tributary's mouth is a vertex of the river it joins, listed before it.
                mouth = Point(xy[-1])
                parent = int(np.argmin(shapely.distance(self._lines[:k], mouth)))
                depth = depths[parent] + 1
                along = self._lines[parent].project(mouth)
                outlet = float(np.interp(along, self._cum[parent], self._floor[parent]))
            depths.append(depth)
            self._cum.append(cum)
            self._floor.append(outlet + FLOOR_GRADIENT[min(depth, 2)] * (cum[-1] - cum))
        self.depths = tuple(depths)

    @classmethod
    def of(cls, town: DemoTownship) -> Terrain:
        """The terrain a township was generated on, rebuilt from its rivers."""
        rivers = geo.to_metric(np.array([r.geometry for r in town.rivers]), town.epsg)
        return cls(list(rivers), town.epsg)

    def elevation_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Elevation (m) at metric coordinates."""
        x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
        points = shapely.points(x, y)[:, None]
        dist = shapely.distance(points, self._lines[None, :])
        along = shapely.line_locate_point(self._lines[None, :], points)
        floors = np.column_stack([np.interp(along[:, r], self._cum[r], self._floor[r])
                                  for r in range(len(self._lines))])
        # Inverse-distance weights: on a river its own floor wins outright, between valleys the
        # floors blend smoothly, so rivers run downhill and the surface has no cliffs.
        weight = 1.0 / (dist + 1.0) ** 2
        floor = (weight * floors).sum(axis=1) / weight.sum(axis=1)
        rise = _relief(x, y) * (1.0 - np.exp(-dist.min(axis=1) / RELIEF_DECAY_M))
        return np.clip(floor + rise, *ELEVATION_RANGE)

    def slope_xy(self, x: np.ndarray, y: np.ndarray, step: float = 15.0) -> np.ndarray:
        """Slope (degrees) at metric coordinates, by central differences."""
        x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
        n = len(x)
        z = self.elevation_xy(np.concatenate([x + step, x - step, x, x]),
                              np.concatenate([y, y, y + step, y - step]))
        gx = (z[:n] - z[n:2 * n]) / (2 * step)
        gy = (z[2 * n:3 * n] - z[3 * n:]) / (2 * step)
        return np.degrees(np.arctan(np.hypot(gx, gy)))

    def elevation(self, lon: float, lat: float) -> float:
        """Elevation (m) at a lon/lat point."""
        p = geo.to_metric(Point(lon, lat), self.epsg)
        return float(self.elevation_xy(np.array([p.x]), np.array([p.y]))[0])


# --- plane geometry helpers ---------------------------------------------------------------------

def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _star(rng: np.random.Generator, centre: np.ndarray, area_m2: float) -> Polygon:
    # A wobbly outline (a few harmonics of the radius), scaled to the asked area.
    theta = np.linspace(0.0, 2 * math.pi, 144, endpoint=False)
    radius = np.ones_like(theta)
    for k in range(2, 11):
        radius += rng.uniform(0.02, 0.10) / math.sqrt(k) * np.cos(k * theta + rng.uniform(0, 6.3))
    ring = np.column_stack([radius * np.cos(theta), radius * np.sin(theta)])
    unit = Polygon(ring)
    return Polygon(centre + ring * math.sqrt(area_m2 / unit.area))


def _warp(rng: np.random.Generator, amplitude: float) -> Callable[[np.ndarray], np.ndarray]:
    # A smooth displacement whose derivative stays below 1 (wavelengths >= 16 amplitudes), so it
    # is one-to-one: a tiling stays a tiling, only its straight edges become wavy.
    waves = [(weight, _unit(rng.uniform(0, 2 * math.pi)), _unit(rng.uniform(0, 2 * math.pi)),
              2 * math.pi / (amplitude * rng.uniform(16.0, 24.0)), rng.uniform(0, 6.3),
              rng.uniform(0, 6.3)) for weight in (0.5, 0.3, 0.2)]

    def displace(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        for weight, ax, ay, k, px, py in waves:
            out[:, 0] += amplitude * weight * np.sin(k * (coords @ ax) + px)
            out[:, 1] += amplitude * weight * np.sin(k * (coords @ ay) + py)
        return out

    return displace


def _tile(region: Polygon, seeds: np.ndarray, warp, densify: float) -> tuple[list, np.ndarray]:
    """Warped Voronoi cells of `seeds` that exactly tile `region`, and the warped seeds."""
    frame = region.buffer(densify * 20).envelope
    edges = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame, only_edges=True)
    edges = shapely.transform(shapely.segmentize(edges, densify), warp)
    # Node the cell edges and the outline once, then polygonize: cells that share an edge share
    # its vertices bit for bit, which is what keeps the tiling exact through rounding later.
    noded = shapely.union_all([edges, region.exterior])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.within(shapely.point_on_surface(faces), region)]
    moved = warp(seeds)
    tree = shapely.STRtree(faces)
    seed_idx, face_idx = tree.query(shapely.points(moved), predicate="within")
    owner = np.full(len(faces), -1)
    owner[face_idx] = seed_idx
    _adopt_orphans(faces, owner, tree)
    cells = []
    for i in range(len(seeds)):
        parts = faces[owner == i]
        cells.append(parts[0] if len(parts) == 1 else shapely.coverage_union_all(parts))
    return cells, moved


def _adopt_orphans(faces: np.ndarray, owner: np.ndarray, tree: shapely.STRtree) -> None:
    # Pieces of a cell cut off by a bend of the outline join the neighbour they share the
    # longest edge with, so every cell stays one polygon.
    while (owner < 0).any():
        adopted = False
        for f in np.flatnonzero(owner < 0):
            near = tree.query(faces[f], predicate="touches")
            near = near[owner[near] >= 0]
            if not len(near):
                continue
            shared = shapely.length(shapely.intersection(faces[f].boundary,
                                                         shapely.boundary(faces[near])))
            if shared.max() > 0:
                owner[f] = owner[near[int(np.argmax(shared))]]
                adopted = True
        if not adopted:
            raise RuntimeError("a piece of the tiling touches no cell")


def _polylines(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([LineString(p) for p in parts], dtype=object)


def _inside(poly: Polygon, pts: np.ndarray) -> np.ndarray:
    return shapely.contains_xy(poly, pts[:, 0], pts[:, 1])


def _first_false(mask: np.ndarray) -> int:
    bad = np.flatnonzero(~mask)
    return int(bad[0]) if len(bad) else len(mask)


def _smooth(pts: np.ndarray, window: int) -> np.ndarray:
    # Moving average over 2 * window + 1 vertices, ends pinned: a road eases a river's bends.
    if window < 1 or len(pts) < 3:
        return pts.copy()
    pad = np.concatenate([np.repeat(pts[:1], window, 0), pts, np.repeat(pts[-1:], window, 0)])
    kernel = np.ones(2 * window + 1) / (2 * window + 1)
    out = np.column_stack([np.convolve(pad[:, i], kernel, "valid") for i in (0, 1)])
    out[0], out[-1] = pts[0], pts[-1]
    return out


def _offset(pts: np.ndarray, distance: float) -> np.ndarray:
    tangent = np.gradient(pts, axis=0)
    norm = np.hypot(tangent[:, 0], tangent[:, 1])[:, None]
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]]) / np.maximum(norm, 1e-9)
    return pts + distance * normal


def _wander(rng: np.random.Generator, start: np.ndarray, heading: float, length: float,
            step: float, sway: float, wavelength: float) -> np.ndarray:
    # A path whose heading swings gently: how streams and tracks run on a hillside.
    s = np.arange(1, max(int(length / step), 1) + 1) * step
    drift = rng.uniform(-1.0, 1.0) / 6000.0
    phase = rng.uniform(0, 6.3)
    angle = heading + drift * s + sway * (np.sin(2 * math.pi * s / wavelength + phase)
                                          - math.sin(phase))
    steps = step * np.column_stack([np.cos(angle), np.sin(angle)])
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


# --- rivers ---------------------------------------------------------------------------------------

@dataclass
class _River:
    pts: np.ndarray  # from source to mouth
    depth: int
    parent: int


def _main_river(rng: np.random.Generator, boundary: Polygon, radius: float) -> np.ndarray:
    inner = boundary.buffer(-15.0)
    centre = np.array(boundary.centroid.coords[0])
    u = _unit(rng.uniform(0, 2 * math.pi))
    n = np.array([-u[1], u[0]])
    base = centre + rng.uniform(-0.12, 0.12) * radius * n
    cut = shapely.get_parts(inner.intersection(LineString([base - 3 * radius * u,
                                                           base + 3 * radius * u])))
    piece = cut[int(np.argmin(shapely.distance(cut, Point(base))))]
    a, b = np.array(piece.coords[0]), np.array(piece.coords[-1])
    if (b - a) @ u < 0:
        a, b = b, a
    chord = float(np.hypot(*(b - a)))
    t = np.linspace(0.0, chord, max(int(chord / RIVER_STEP_M), 3))
    ramp = np.clip(np.minimum(t, chord - t) / 1500.0, 0.0, 1.0)
    offset = ramp * ramp * (3 - 2 * ramp) * (
        rng.uniform(0.07, 0.12) * radius
        * np.sin(2 * math.pi * t / (chord * rng.uniform(0.5, 0.8)) + rng.uniform(0, 6.3))
        + rng.uniform(100, 170) * np.sin(2 * math.pi * t / rng.uniform(900, 1400)
                                         + rng.uniform(0, 6.3)))
    direction = (b - a) / chord
    normal = np.array([-direction[1], direction[0]])
    # Where a bend would leave the township, pull it back towards the chord (which lies inside).
    for _ in range(6):
        pts = a + t[:, None] * direction + offset[:, None] * normal
        outside = ~_inside(inner, pts)
        if not outside.any():
            return pts
        offset[outside] *= 0.5
    offset[outside] = 0.0
    return a + t[:, None] * direction + offset[:, None] * normal


def _branch(rng: np.random.Generator, rivers: list[_River], parent: int, fraction: float,
            side: float, length: float, head_area: Polygon, clearance: float) -> _River | None:
    """A stream joining `parent` at `fraction` of its length, or None when none fits there."""
    ppts = rivers[parent].pts
    i = int(np.clip(round(fraction * (len(ppts) - 1)), 1, len(ppts) - 2))
    tangent = ppts[i + 1] - ppts[i - 1]
    upstream = math.atan2(-tangent[1], -tangent[0])
    heading = upstream + side * math.radians(rng.uniform(45.0, 75.0))
    path = _wander(rng, ppts[i], heading, length, RIVER_STEP_M, 0.35,
                   rng.uniform(1000.0, 2000.0))
    keep = _first_false(_inside(head_area, path))
    points = shapely.points(path)
    others = [r.pts for k, r in enumerate(rivers) if k != parent]
    if others:
        near = shapely.distance(points, MultiLineString(others)) < clearance
        keep = min(keep, _first_false(~near))
    # Past the first few hundred metres a stream must not bend back onto its own parent.
    back = (shapely.distance(points, LineString(ppts)) < clearance * 0.7) & (
        np.arange(len(path)) * RIVER_STEP_M > 400.0)
    keep = min(keep, _first_false(~back))
    if keep * RIVER_STEP_M < min(700.0, length * 0.6):
        return None
    return _River(path[:keep][::-1].copy(), rivers[parent].depth + 1, parent)


def _rivers(rng: np.random.Generator, boundary: Polygon, area_km2: float) -> list[_River]:
    radius = math.sqrt(area_km2 * 1e6 / math.pi)
    rivers = [_River(_main_river(rng, boundary, radius), 0, -1)]
    head_area = boundary.buffer(-250.0)
    tributaries = int(np.clip(round(area_km2 / 19.0), 3, 12))
    side = rng.choice([-1.0, 1.0])
    for k in range(tributaries):
        for _attempt in range(4):
            fraction = (k + rng.uniform(0.2, 0.8)) / tributaries
            river = _branch(rng, rivers, 0, fraction, side, radius * rng.uniform(0.6, 1.1),
                            head_area, 450.0)
            if river:
                rivers.append(river)
                break
        side = -side
    gullies = int(round(area_km2 / 18.0))
    for _ in range(gullies * 2):
        if sum(r.depth == 2 for r in rivers) >= gullies:
            break
        parents = [k for k, r in enumerate(rivers) if r.depth <= 1]
        parent = parents[int(rng.integers(len(parents)))]
        river = _branch(rng, rivers, parent, rng.uniform(0.15, 0.85), rng.choice([-1.0, 1.0]),
                        rng.uniform(900.0, 2200.0), head_area, 350.0)
        if river:
            rivers.append(river)
    return rivers


# --- villages and communities ---------------------------------------------------------------------

def _village_seeds(rng: np.random.Generator, boundary: Polygon, rivers: list[_River],
                   count: int, seat: np.ndarray) -> tuple[np.ndarray, float]:
    inner = boundary.buffer(-350.0)
    spacing = 0.62 * math.sqrt(boundary.area / count)
    minx, miny, maxx, maxy = inner.bounds
    pts = rng.uniform((minx, miny), (maxx, maxy), size=(count * 60, 2))
    pts = pts[_inside(inner, pts)]
    river_lines = MultiLineString([r.pts for r in rivers])
    dist = shapely.distance(shapely.points(pts), river_lines)
    # Villages crowd the valley floors: sample without replacement weighted towards the rivers
    # (Efraimidis–Spirakis keys), keeping them apart.
    weight = 0.6 + np.exp(-dist / 400.0)
    order = np.argsort(-(rng.random(len(pts)) ** (1.0 / weight)), kind="stable")
    chosen = [seat]
    gap = spacing
    while len(chosen) < count:
        for idx in order:
            taken = np.array(chosen)
            if np.min(np.hypot(*(taken - pts[idx]).T)) >= gap:
                chosen.append(pts[idx])
                if len(chosen) == count:
                    break
        gap *= 0.85
        if gap < 1.0:
            raise RuntimeError("no room for the villages asked for")
    return np.array(chosen), spacing


def _adjacency(cells: Sequence[Polygon]) -> list[list[int]]:
    arr = np.array(cells, dtype=object)
    left, right = shapely.STRtree(arr).query(arr, predicate="touches")
    shared = shapely.length(shapely.intersection(shapely.boundary(arr[left]),
                                                 shapely.boundary(arr[right])))
    adjacent: list[list[int]] = [[] for _ in cells]
    for a, b, length in zip(left, right, shared, strict=True):
        if length > 1.0:
            adjacent[a].append(int(b))
    return adjacent


def _communities(centres: np.ndarray, adjacent: list[list[int]],
                 count: int) -> tuple[np.ndarray, list[int]]:
    """Community index per village (contiguous groups grown from spread-out seats), the seats."""
    count = max(1, min(count, len(centres)))
    seeds = [0]  # the township seat heads the first community
    while len(seeds) < count:
        # Farthest-point sampling: each new seat as far as can be from those chosen.
        offsets = centres[:, None, :] - centres[seeds][None, :, :]
        seeds.append(int(np.argmax(np.hypot(offsets[..., 0], offsets[..., 1]).min(axis=1))))
    owner = np.full(len(centres), -1)
    members: list[list[int]] = []
    for c, s in enumerate(seeds):
        owner[s] = c
        members.append([s])
    while (owner < 0).any():
        for c in sorted(range(count), key=lambda k: (len(members[k]), k)):
            free = sorted({v for u in members[c] for v in adjacent[u] if owner[v] < 0})
            if free:
                gap = np.hypot(*(centres[free] - centres[seeds[c]]).T)
                pick = free[int(np.argmin(gap))]
                owner[pick] = c
                members[c].append(pick)
                break
        else:
            raise RuntimeError("the villages do not form one connected area")
    return owner, seeds


def _allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    # Largest-remainder shares, so the parts add up to the total exactly.
    minimum = min(minimum, total // len(weights))
    rest = total - minimum * len(weights)
    shares = rest * weights / weights.sum()
    counts = np.floor(shares).astype(int)
    short = rest - int(counts.sum())
    counts[np.argsort(-(shares - counts), kind="stable")[:short]] += 1
    return counts + minimum


# --- roads ----------------------------------------------------------------------------------------

@dataclass
class _Road:
    kind: str
    pts: np.ndarray
    joins: list[tuple[float, int]]


class _Network:
    """Road polylines and the junctions where they meet, before they become a graph."""

    def __init__(self, area: Polygon) -> None:
        self.area = area  # every road stays inside it
        self.roads: list[_Road] = []
        self.junctions: list[np.ndarray] = []
        self._line_list: list[LineString] = []
        self._lines: np.ndarray | None = None

    def junction(self, xy: np.ndarray) -> int:
        self.junctions.append(np.asarray(xy, float))
        return len(self.junctions) - 1

    def lines(self) -> np.ndarray:
        if self._lines is None:
            self._lines = np.array(self._line_list, dtype=object)
        return self._lines

    def add(self, kind: str, pts: np.ndarray, start: int | None = None,
            end: int | None = None) -> None:
        joins = []
        if start is not None:
            joins.append((0.0, start))
        if end is not None:
            joins.append((float(_cumlen(pts)[-1]), end))
        self.roads.append(_Road(kind, pts, joins))
        self._line_list.append(LineString(pts))
        self._lines = None

    def attach(self, xy: np.ndarray) -> tuple[int, np.ndarray]:
        """A junction at the point of the network nearest to `xy`."""
        point = Point(xy)
        lines = self.lines()
        k = int(np.argmin(shapely.distance(lines, point)))
        along = lines[k].project(point)
        q = np.array(lines[k].interpolate(along).coords[0])
        j = self.junction(q)
        self.roads[k].joins.append((float(along), j))
        return j, q

    def clip(self, pts: np.ndarray) -> np.ndarray:
        return pts[:_first_false(_inside(self.area, pts))]


def _longest_run(mask: np.ndarray) -> slice:
    best, start, best_slice = 0, None, slice(0, 0)
    for i, ok in enumerate(np.append(mask, False)):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best:
                best, best_slice = i - start, slice(start, i)
            start = None
    return best_slice


def _valley_roads(rng: np.random.Generator, net: _Network, rivers: list[_River],
                  bank: float) -> None:
    main = _offset(_smooth(rivers[0].pts, 4), 40.0 * bank)
    net.add("county", main[_longest_run(_inside(net.area, main))])
    for depth, kind, share, window, gap in ((1, "township", 0.85, 2, 25.0),
                                            (2, "village", 0.7, 1, 15.0)):
        for river in rivers:
            if river.depth != depth:
                continue
            up = river.pts[::-1]
            up = up[: max(int(len(up) * share), 2)]
            pts = net.clip(_offset(_smooth(up, window), gap * rng.choice([-1.0, 1.0]))[1:])
            if len(pts) < 3:
                continue
            j, q = net.attach(pts[0])
            net.add(kind, np.vstack([q, pts]), start=j)


def _connect_villages(rng: np.random.Generator, net: _Network, centres: np.ndarray) -> list[int]:
    """Village roads from every centre to the network, nearest first; the centres' junctions."""
    points = shapely.points(centres)
    dist = shapely.distance(points[:, None], net.lines()[None, :]).min(axis=1)
    nodes = [-1] * len(centres)
    for _ in range(len(centres)):
        v = int(np.argmin(np.where(np.array(nodes) < 0, dist, np.inf)))
        j, q = net.attach(centres[v])
        span = float(np.hypot(*(q - centres[v])))
        if span < 1.0:
            centres[v] = q
            nodes[v] = j
            dist[v] = np.inf
            continue
        nodes[v] = net.junction(centres[v])
        bend = (centres[v] + q) / 2 + rng.uniform(-0.15, 0.15) * span * np.array(
            [-(q - centres[v])[1], (q - centres[v])[0]]) / span
        pts = np.array([centres[v], bend, q])
        if not _inside(net.area, pts).all():
            pts = np.array([centres[v], q])
        net.add("village", pts, start=nodes[v], end=j)
        dist = np.minimum(dist, shapely.distance(points, LineString(pts)))
    return nodes


def _tracks(rng: np.random.Generator, net: _Network, centres: np.ndarray, nodes: list[int],
            rivers: list[_River], spacing: float) -> None:
    river_lines = MultiLineString([r.pts for r in rivers])
    for v, centre in enumerate(centres):
        # Tracks climb from the village to its fields and hamlets, away from the stream.
        bottom = np.array(river_lines.interpolate(river_lines.project(Point(centre))).coords[0])
        away = centre - bottom
        uphill = math.atan2(away[1], away[0]) if np.hypot(*away) > 1 else rng.uniform(0, 6.3)
        for _ in range(1 + int(rng.integers(0, 3))):
            path = _wander(rng, centre, uphill + rng.uniform(-0.9, 0.9), rng.uniform(500, 1600),
                           50.0, 0.4, rng.uniform(400.0, 900.0))
            path = net.clip(path)
            if len(path) >= 3:
                net.add("track", path, start=nodes[v])
    edges = shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints(centres),
                                                          only_edges=True))
    index = {tuple(c): i for i, c in enumerate(centres)}
    for edge in edges:
        a, b = (index.get(tuple(c)) for c in shapely.get_coordinates(edge))
        if a is None or b is None or edge.length > 1.7 * spacing or rng.random() > 0.3:
            continue
        t = np.linspace(0.0, 1.0, max(int(edge.length / 50.0), 3))
        d = centres[b] - centres[a]
        bow = rng.uniform(-0.12, 0.12) * np.sin(math.pi * t)
        pts = centres[a] + t[:, None] * d + bow[:, None] * np.array([-d[1], d[0]])
        if _inside(net.area, pts).all():
            net.add("track", pts, start=nodes[a], end=nodes[b])


def _crossings(net: _Network) -> None:
    # Roads that cross get a junction there: the graph has a node wherever two roads meet.
    lines = net.lines()
    left, right = shapely.STRtree(lines).query(lines, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    meets = shapely.intersection(lines[left], lines[right])
    ends = [shapely.multipoints([r.pts[0], r.pts[-1]]) for r in net.roads]
    for a, b, meet in zip(left, right, meets, strict=True):
        for part in shapely.get_parts(meet):
            xy = shapely.get_coordinates(part)
            for p in (xy[:1] if part.geom_type == "Point" else xy[[0, -1]]):
                point = Point(p)
                if ends[a].distance(point) < 1.0 or ends[b].distance(point) < 1.0:
                    continue  # a junction made on purpose, or a dead end that just touches
                j = net.junction(p)
                net.roads[a].joins.append((float(lines[a].project(point)), j))
                net.roads[b].joins.append((float(lines[b].project(point)), j))


def _graph(net: _Network, segment_m: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Node coordinates and edges (source, target, road class), nodes about `segment_m` apart."""
    coords = [np.array(net.junctions, float).reshape(-1, 2)]
    count = len(net.junctions)
    sources, targets, kinds = [], [], []
    for road in net.roads:
        cum = _cumlen(road.pts)
        stops = sorted({(round(s, 6), j) for s, j in road.joins})
        marks = np.array([0.0, *(s for s, _ in stops), cum[-1]])
        pieces = np.maximum(np.ceil(np.diff(marks) / segment_m).astype(int), 1)
        first = np.cumsum(pieces) - pieces  # where each mark lands among the samples
        step = np.arange(pieces.sum()) - np.repeat(first, pieces)
        along = np.append(np.repeat(marks[:-1], pieces)
                          + np.repeat(np.diff(marks) / pieces, pieces) * step, marks[-1])
        ids = np.full(len(along), -1)
        ids[np.append(first, len(along) - 1)] = [-1, *(j for _, j in stops), -1]
        new = ids < 0
        ids[new] = count + np.arange(int(new.sum()))
        count += int(new.sum())
        coords.append(np.column_stack([np.interp(along[new], cum, road.pts[:, 0]),
                                       np.interp(along[new], cum, road.pts[:, 1])]))
        sources.append(ids[:-1])
        targets.append(ids[1:])
        kinds.extend([road.kind] * (len(ids) - 1))
    edges = np.column_stack([np.concatenate(sources), np.concatenate(targets)])
    return np.concatenate(coords), edges, kinds


# --- hazards --------------------------------------------------------------------------------------

def _largest(geom) -> Polygon | None:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 100.0]
    return max(parts, key=lambda p: p.area) if parts else None


def _flood_plains(rng: np.random.Generator, inner: Polygon, main: np.ndarray) -> list[Polygon]:
    # The valley floor of the main river floods: three reaches, 150–230 m either side.
    zones = []
    cuts = np.linspace(0, len(main) - 1, 4).astype(int)
    for a, b in zip(cuts, cuts[1:], strict=False):
        reach = LineString(main[a:b + 1])
        zone = _largest(reach.buffer(rng.uniform(150.0, 230.0), cap_style="flat") & inner)
        if zone is not None:
            zones.append(zone)
    return zones


def _landslides(rng: np.random.Generator, inner: Polygon, terrain: Terrain,
                centres: np.ndarray, river_lines, count: int) -> list[Polygon]:
    # Candidate slopes within reach of the villages; the steepest, spread apart, fail.
    angle = rng.uniform(0, 2 * math.pi, size=(len(centres), 8))
    reach = rng.uniform(150.0, 800.0, size=(len(centres), 8))
    pts = (centres[:, None, :] + reach[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1))
    pts = pts.reshape(-1, 2)
    pts = pts[_inside(inner.buffer(-200.0), pts)]
    slope = terrain.slope_xy(pts[:, 0], pts[:, 1])
    order = np.argsort(-(slope * rng.uniform(0.85, 1.0, len(pts))), kind="stable")
    chosen: list[np.ndarray] = []
    for idx in order:
        if len(chosen) == count or slope[idx] < 15.0:
            break
        if chosen and np.min(np.hypot(*(np.array(chosen) - pts[idx]).T)) < 350.0:
            continue
        chosen.append(pts[idx])
    zones = []
    theta = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    for p in chosen:
        bottom = np.array(river_lines.interpolate(river_lines.project(Point(p))).coords[0])
        down = math.atan2(*(bottom - p)[::-1])
        half_length, half_width = rng.uniform(80.0, 180.0), rng.uniform(50.0, 110.0)
        wobble = 1.0 + 0.08 * np.sin(3 * theta + rng.uniform(0, 6.3))
        local = np.column_stack([half_length * np.cos(theta), half_width * np.sin(theta)])
        rot = np.array([[math.cos(down), -math.sin(down)], [math.sin(down), math.cos(down)]])
        zone = _largest(Polygon(p + (local * wobble[:, None]) @ rot.T) & inner)
        if zone is not None:
            zones.append(zone)
    return zones


def _debris_flows(rng: np.random.Generator, inner: Polygon, rivers: list[_River],
                  count: int) -> list[tuple[int, Polygon]]:
    # Side gullies carry debris flows: the lower channel and the fan where it meets the valley.
    gullies = [k for k, r in enumerate(rivers) if r.depth == 2] or [
        k for k, r in enumerate(rivers) if r.depth == 1]
    picked = sorted(rng.permutation(len(gullies))[:count])
    zones = []
    for i in picked:
        pts = rivers[gullies[i]].pts
        channel = LineString(pts[int(len(pts) * 0.6):]).buffer(rng.uniform(50.0, 90.0))
        fan = Point(pts[-1]).buffer(rng.uniform(140.0, 220.0))
        zone = _largest((channel | fan) & inner)
        if zone is not None:
            zones.append((gullies[i], zone))
    return zones


# --- assembly -------------------------------------------------------------------------------------

def _lonlat(geoms, epsg: int):
    """Metric geometries in lon/lat, rounded to 6 decimals, without repeated vertices."""
    out = shapely.transform(geo.to_lonlat(geoms, epsg), lambda c: np.round(c, 6))
    return shapely.remove_repeated_points(out)


def _valid(geom):
    # Rounding a thin sliver can pinch it; repair rather than ship an invalid polygon.
    return geom if geom.is_valid else _largest(shapely.make_valid(geom))


@dataclass
class _Town:
    """What a township is made of, in metres, while it is being generated."""

    code: str
    index: int
    epsg: int
    boundary: Polygon
    rivers: list[_River]
    terrain: Terrain
    river_ll: np.ndarray
    cells: list[Polygon]
    centres: np.ndarray
    community: np.ndarray
    segment_m: float


def _river_names(rng: np.random.Generator, rivers: list[_River]) -> list[str]:
    names: list[str] = []
    while len(names) < len(rivers):
        depth = rivers[len(names)].depth
        if rng.random() < 0.5 and depth:
            stem = SURNAMES[rng.integers(len(SURNAMES))][0] + "家"
        else:
            stem = DESCRIPTORS[rng.integers(len(DESCRIPTORS))][0]
        name = stem + ("沟" if depth == 2 else "河")
        if name not in names and not _stutters(name):
            names.append(name)
    return names


def _roads(town: _Town, rng: np.random.Generator, node_base: int,
           bank: float, spacing: float) -> tuple[list[DemoRoad], np.ndarray, np.ndarray]:
    """The road graph as DemoRoads, and its nodes (lon/lat and metres)."""
    net = _Network(town.boundary.buffer(-40.0))
    _valley_roads(rng, net, town.rivers, bank)
    nodes = _connect_villages(rng, net, town.centres)
    _tracks(rng, net, town.centres, nodes, town.rivers, spacing)
    _crossings(net)
    coords, edges, kinds = _graph(net, town.segment_m)
    ll = np.round(shapely.get_coordinates(geo.to_lonlat(shapely.points(coords), town.epsg)), 6)
    # Points that round to the same lon/lat are one node; ids follow creation order.
    _, first, inverse = np.unique(ll, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    node = rank[inverse.ravel()]
    src, dst = node[edges[:, 0]], node[edges[:, 1]]
    pair = np.column_stack([np.minimum(src, dst), np.maximum(src, dst)])
    _, once = np.unique(pair, axis=0, return_index=True)
    keep = np.sort(once[src[once] != dst[once]])
    node_ll = np.empty((len(first), 2))
    node_ll[node] = ll
    node_m = np.empty((len(first), 2))
    node_m[node] = coords
    src, dst = src[keep], dst[keep]
    lines = shapely.linestrings(np.stack([node_ll[src], node_ll[dst]], axis=1))
    _, _, length = geo.GEOD.inv(node_ll[src, 0], node_ll[src, 1], node_ll[dst, 0],
                                node_ll[dst, 1])
    major = MultiLineString(
        [g for r, g in zip(town.rivers, town.river_ll, strict=True) if r.depth <= 1])
    minor = [g for r, g in zip(town.rivers, town.river_ll, strict=True) if r.depth == 2]
    over_major = shapely.intersects(lines, major)
    over_minor = shapely.intersects(lines, MultiLineString(minor)) if minor else (
        np.zeros(len(lines), bool))
    roads = []
    for k, e in enumerate(keep):
        kind = kinds[e]
        structure = "none"
        if over_major[k]:
            structure = "ford" if kind == "track" else "bridge"
        elif over_minor[k]:
            structure = "bridge" if kind in ("county", "township") else "ford"
        roads.append(DemoRoad(
            code=f"{town.code}-E{k + 1:05d}", geometry=lines[k], road_class=kind,
            speed_kmh=SPEED_KMH[kind], oneway=False, structure=structure,
            source=node_base + int(src[k]) + 1, target=node_base + int(dst[k]) + 1,
            length_m=round(float(length[k]), 2)))
    return roads, node_ll, node_m


def _seat(rng: np.random.Generator, boundary: Polygon,
          main: np.ndarray) -> tuple[np.ndarray, float]:
    # The township seat (集镇) stands on a terrace of the main river near the middle.
    centre = np.array(boundary.centroid.coords[0])
    i = int(np.clip(np.argmin(np.hypot(*(main - centre).T)), 1, len(main) - 2))
    tangent = main[i + 1] - main[i - 1]
    normal = np.array([-tangent[1], tangent[0]]) / np.hypot(*tangent)
    bank = float(rng.choice([-1.0, 1.0]))
    return main[i] + bank * 260.0 * normal, bank


@dataclass
class _People:
    """Per-village figures, indexed like the cells."""

    names: list[tuple[str, str]]
    codes: list[str]
    population: np.ndarray
    households: np.ndarray
    cells_ll: np.ndarray
    centres_ll: np.ndarray


def _people(rng: np.random.Generator, town: _Town, population: int,
            riverside: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weights = rng.lognormal(0.0, 0.45, len(town.cells)) * np.where(riverside, 1.5, 1.0)
    weights[0] *= 6.0  # the seat
    people = _allocate(population, weights, 120)
    households = np.maximum(1, np.round(people / rng.uniform(2.9, 3.3, len(people)))).astype(int)
    vulnerable = np.round(people * rng.uniform(0.12, 0.18, len(people))).astype(int)
    return people, households, vulnerable


def _villages(rng: np.random.Generator, town: _Town, stem: str, population: int,
              seats: list[int]) -> tuple[list[DemoVillage], _People]:
    count = len(town.cells)
    cells_ll = _lonlat(np.array(town.cells, dtype=object), town.epsg)
    centres_ll = _lonlat(shapely.points(town.centres), town.epsg)
    riverside = shapely.intersects(cells_ll, MultiLineString(list(town.river_ll)))
    people, households, vulnerable = _people(rng, town, population, riverside)
    back = shapely.get_coordinates(geo.to_metric(centres_ll, town.epsg))
    elevation = np.round(town.terrain.elevation_xy(back[:, 0], back[:, 1]), 1)
    names = _unique_names(rng, count, set())
    order = np.lexsort((np.arange(count), town.community))
    width = max(2, len(str(count)))
    codes = [""] * count
    for rank, v in enumerate(order):
        codes[v] = f"{town.code}-V{rank + 1:0{width}d}"
    community_names = [f"{stem}社区" if c == 0 else f"{names[s][0]}村"
                       for c, s in enumerate(seats)]
    result = []
    for v in order:
        c = int(town.community[v])
        result.append(DemoVillage(
            code=codes[v], name_zh=names[v][0], name_pinyin=names[v][1],
            community_code=f"{town.code}-C{c + 1:02d}", community_name_zh=community_names[c],
            boundary=cells_ll[v], centre=centres_ll[v], population=int(people[v]),
            households=int(households[v]), vulnerable=int(vulnerable[v]),
            contact_name=_person(rng), contact_phone=_phone(town.index, int(v) + 1),
            riverside=bool(riverside[v]), elevation_m=float(elevation[v])))
    return result, _People(names, codes, people, households, cells_ll, centres_ll)


def _hazards(rng: np.random.Generator, town: _Town, people: _People,
             river_names: list[str]) -> tuple[list[DemoHazard], list[Polygon]]:
    inner = town.boundary.buffer(-10.0)
    river_lines = MultiLineString([r.pts for r in town.rivers])
    count = len(town.cells)
    zones: list[tuple[str, str | None, Polygon]] = []
    for zone in _landslides(rng, inner, town.terrain, town.centres, river_lines,
                            int(np.clip(round(0.35 * count), 3, 30))):
        zones.append(("landslide", None, zone))
    gullies = sum(r.depth == 2 for r in town.rivers)
    for k, zone in _debris_flows(rng, inner, town.rivers, int(np.clip(round(gullies * 0.35), 2,
                                                                       6))):
        zones.append(("debris_flow", f"{river_names[k]}泥石流", zone))
    for k, zone in enumerate(_flood_plains(rng, inner, town.rivers[0].pts)):
        zones.append(("flood_plain", f"{river_names[0]}{'上中下'[k]}游段洪泛区", zone))
    cells = np.array(town.cells, dtype=object)
    tree = shapely.STRtree(cells)
    # Concentration: houses cluster where the hazard is (toe of a slope, valley floor).
    density = {"landslide": 4.0, "debris_flow": 3.0, "flood_plain": 2.0}
    seen: dict[str, int] = {}
    hazards = []
    for k, (kind, name, zone) in enumerate(zones):
        hit = tree.query(zone, predicate="intersects")
        overlap = shapely.area(shapely.intersection(cells[hit], zone))
        main = int(hit[int(np.argmax(overlap))])
        exposed = float(np.sum(overlap / shapely.area(cells[hit]) * people.households[hit]))
        homes = int(np.clip(round(exposed * density[kind]), 1,
                            max(1, int(people.households[hit].sum() * 0.6))))
        if name is None:
            village = people.names[main][0]
            seen[village] = seen.get(village, 0) + 1
            name = f"{village}滑坡" if seen[village] == 1 else f"{village}{seen[village]}号滑坡"
        hazards.append(DemoHazard(
            code=f"{town.code}-H{k + 1:02d}", kind=kind, name_zh=name,
            geometry=_valid(_lonlat(zone, town.epsg)), households=homes,
            people=int(round(homes * people.population[main] / people.households[main])),
            village_code=people.codes[main]))
    return hazards, [z for _, _, z in zones]


# (kind, night capacity before scaling, share of it usable by day): schools hold classes by day.
_SHELTER_KINDS = {
    "township_compound": (1500, 1.0), "school": (2400, 0.5), "middle_school": (3000, 0.5),
    "clinic": (150, 1.0), "gymnasium": (2500, 1.0), "village_school": (1000, 0.5),
    "village_hall": (400, 1.0),
}


def _shelter_plan(town: _Town, people: _People, name: tuple[str, str],
                  seats: list[int], population: int) -> list[tuple[str, str, str, int]]:
    """(kind key, name, pinyin, village) for each shelter, the seat's first."""
    zh, py = name
    plan = [("township_compound", f"{zh}政府大院", f"{py} Zhengfu Dayuan", 0),
            ("school", f"{zh}中心小学", f"{py} Zhongxin Xiaoxue", 0),
            ("middle_school", f"{zh}初级中学", f"{py} Chuji Zhongxue", 0),
            ("clinic", f"{zh}卫生院", f"{py} Weishengyuan", 0)]
    if population >= 30000:
        plan.append(("gymnasium", f"{zh}全民健身中心", f"{py} Quanmin Jianshen Zhongxin", 0))
    count = len(town.cells)
    big = [int(v) for v in np.argsort(-people.population, kind="stable") if v != 0]
    for v in big[: count // 25]:
        plan.append(("village_school", f"{people.names[v][0]}小学",
                     f"{people.names[v][1]} Xiaoxue", v))
    target = int(np.clip(round(count / 5.5), 6, 14))
    halls = [s for s in seats[1:] if s not in big[: count // 25]] + big[count // 25:]
    for v in halls[: max(0, target - len(plan))]:
        plan.append(("village_hall", f"{people.names[v][0]}村委会",
                     f"{people.names[v][1]} Cunweihui", v))
    return plan


# Shelters stand at least this far apart where the village allows: the seat's compound, schools
# and clinic are separate sites, and each is its own geofence (positions.shelter_radius_m, 150 m
# by default), so a member walking onto one must not enter five.
SHELTER_SPACING_M = 350.0


def _place(node_m: np.ndarray, usable: np.ndarray, cells: np.ndarray, village: int,
           centre: np.ndarray, taken: list[int]) -> tuple[int, int]:
    """The usable road node nearest the village centre (inside the village if it can) and at
    least SHELTER_SPACING_M from the nodes `taken` by shelters before (nearer only when none is),
    and the village it is in."""
    gap = np.hypot(*(node_m - centre).T)
    mine = usable & shapely.contains_xy(cells[village].buffer(-15.0), node_m[:, 0], node_m[:, 1])
    candidates = mine if mine.any() else usable
    if taken:
        near = node_m[taken]
        nearest = np.min(np.hypot(node_m[:, None, 0] - near[None, :, 0],
                                  node_m[:, None, 1] - near[None, :, 1]), axis=1)
        spaced = candidates & (nearest >= SHELTER_SPACING_M)
    else:
        spaced = candidates
    pick = int(np.argmin(np.where(spaced if spaced.any() else candidates, gap, np.inf)))
    usable[pick] = False
    if mine.any():
        return pick, village
    return pick, int(np.argmin(shapely.distance(cells, Point(node_m[pick]))))


def _shelters(rng: np.random.Generator, town: _Town, people: _People, name: tuple[str, str],
              seats: list[int], population: int, zones: list[Polygon],
              nodes: tuple[np.ndarray, np.ndarray]) -> list[DemoShelter]:
    node_ll, node_m = nodes
    plan = _shelter_plan(town, people, name, seats, population)
    danger = shapely.union_all(zones).buffer(40.0) if zones else Polygon()
    usable = (~shapely.contains_xy(danger, node_m[:, 0], node_m[:, 1])
              & _inside(town.boundary.buffer(-60.0), node_m))
    base = np.array([_SHELTER_KINDS[key][0] for key, *_ in plan], float)
    # Places for a quarter to a third of the people, as township plans provide (the rest go to
    # relatives, 投亲靠友).
    scale = rng.uniform(0.25, 0.32) * population / base.sum()
    cells = np.array(town.cells, dtype=object)
    shelters, taken = [], []
    for k, (key, zh, py, v) in enumerate(plan):
        pick, home = _place(node_m, usable, cells, v, town.centres[v], taken)
        taken.append(pick)
        night = max(20, int(round(base[k] * scale, -1)))
        shelters.append(DemoShelter(
            code=f"{town.code}-S{k + 1:02d}", name_zh=zh, name_pinyin=py,
            kind="school" if key.endswith("school") else key,
            location=Point(node_ll[pick]), capacity_day=max(10, int(round(
                night * _SHELTER_KINDS[key][1], -1))), capacity_night=night,
            contact_name=_person(rng), contact_phone=_phone(town.index, 5001 + k),
            village_code=people.codes[home]))
    return shelters


def _build(rng: np.random.Generator, *, seed: int, index: int, boundary: Polygon, epsg: int,
           villages: int, communities: int, population: int,
           segment_m: float = SEGMENT_M) -> DemoTownship:
    """One township inside `boundary` (metres in `epsg`)."""
    code = f"T{index:03d}"
    stem, name_zh, name_pinyin = _township_name(seed, index)
    rivers = _rivers(rng, boundary, boundary.area / 1e6)
    river_ll = _lonlat(_polylines([r.pts for r in rivers]), epsg)
    # The terrain is rebuilt from the rounded rivers, exactly as Terrain.of() does later.
    terrain = Terrain(list(geo.to_metric(river_ll, epsg)), epsg)
    seat, bank = _seat(rng, boundary, rivers[0].pts)
    seeds, spacing = _village_seeds(rng, boundary, rivers, villages, seat)
    amplitude = min(120.0, 0.12 * spacing)
    cells, centres = _tile(boundary, seeds, _warp(rng, amplitude), 2.0 * amplitude)
    community, seats = _communities(centres, _adjacency(cells), communities)
    town = _Town(code, index, epsg, boundary, rivers, terrain, river_ll, cells, centres,
                 community, segment_m)
    roads, node_ll, node_m = _roads(town, rng, index * NODE_BLOCK, bank, spacing)
    village_list, people = _villages(rng, town, stem, population, seats)
    river_names = _river_names(rng, rivers)
    hazards, zones = _hazards(rng, town, people, river_names)
    shelters = _shelters(rng, town, people, (name_zh, name_pinyin), seats, population, zones,
                         (node_ll, node_m))
    return DemoTownship(
        code=code, name_zh=name_zh, name_pinyin=name_pinyin,
        boundary=_lonlat(boundary, epsg), epsg=epsg, villages=tuple(village_list),
        shelters=tuple(shelters), roads=tuple(roads), hazards=tuple(hazards),
        rivers=tuple(DemoRiver(code=f"{code}-W{k + 1:02d}", name_zh=river_names[k],
                               geometry=river_ll[k]) for k in range(len(rivers))))


def _check_sizes(villages: int, communities: int, area_km2: float, population: int) -> None:
    if villages < 1 or communities < 1:
        raise ValueError("a township needs at least one village and one community")
    if not 5.0 <= area_km2 <= 2000.0:
        raise ValueError("area_km2 must be between 5 and 2000")
    if population < villages:
        raise ValueError("population must be at least one person per village")
    if area_km2 / villages < 0.3:
        raise ValueError("too many villages for the area (at least 0.3 km² each)")


def build_township(seed: int = SEED, *, index: int = 0, centre: tuple[float, float] | None = None,
                   villages: int = 66, communities: int = 10, area_km2: float = 115.0,
                   population: int = 69000) -> DemoTownship:
    """A deterministic demo township; `index` picks another one (and its place, code and ids)."""
    _check_sizes(villages, communities, area_km2, population)
    if centre is None:
        # Further townships sit side by side east and south of the demo one, never on top of it.
        centre = (DEMO_CENTRE[0] + 0.18 * (index % 5), DEMO_CENTRE[1] - 0.16 * (index // 5))
    epsg = geo.utm_epsg(*centre)
    rng = np.random.default_rng([seed, index])
    middle = shapely.get_coordinates(geo.to_metric(Point(centre), epsg))[0]
    boundary = _star(rng, middle, area_km2 * 1e6)
    return _build(rng, seed=seed, index=index, boundary=boundary, epsg=epsg, villages=villages,
                  communities=communities, population=population)


def _spread(rng: np.random.Generator, region: Polygon, count: int, rounds: int = 10) -> np.ndarray:
    # Lloyd relaxation: seats spread evenly, so townships come out of similar size.
    minx, miny, maxx, maxy = region.bounds
    pts = rng.uniform((minx, miny), (maxx, maxy), size=(count * 4, 2))
    pts = pts[_inside(region, pts)][:count]
    for _ in range(rounds):
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts),
                                                           extend_to=region, ordered=True))
        centroids = shapely.get_coordinates(shapely.centroid(shapely.intersection(cells, region)))
        pts = np.where(_inside(region, centroids)[:, None], centroids, pts)
    return pts


def build_prefecture(seed: int = SEED, *, townships: int = 103, villages: int = 1106,
                     progress: Callable[[int, int], None] | None = None) -> list[DemoTownship]:
    """A prefecture of townships tiling one area of southern Shaanxi (codes T001, T002, …)."""
    if townships < 1 or villages < townships:
        raise ValueError("need at least one township and one village per township")
    rng = np.random.default_rng([seed, 1_000_000])
    epsg = geo.utm_epsg(*PREFECTURE_CENTRE)
    middle = shapely.get_coordinates(geo.to_metric(Point(PREFECTURE_CENTRE), epsg))[0]
    region = _star(rng, middle, townships * PREFECTURE_TOWNSHIP_KM2 * 1e6)
    seeds = _spread(rng, region, townships)
    size = math.sqrt(PREFECTURE_TOWNSHIP_KM2 * 1e6)
    cells, _ = _tile(region, seeds, _warp(rng, size * 0.1), size * 0.1)
    # Number the townships in rows from north-west to south-east, as on a map.
    top = region.bounds[3]
    order = sorted(range(townships), key=lambda i: (
        int((top - cells[i].centroid.y) // size), cells[i].centroid.x))
    cells = [cells[i] for i in order]
    share = np.full(townships, villages // townships)
    share[np.argsort(-shapely.area(np.array(cells, dtype=object)), kind="stable")[
        : villages % townships]] += 1
    towns = []
    for i, cell in enumerate(cells):
        index = i + 1
        town_rng = np.random.default_rng([seed, index])
        count = int(share[i])
        population = int(round(count * town_rng.uniform(1500.0, 2600.0), -1))
        towns.append(_build(town_rng, seed=seed, index=index, boundary=cell, epsg=epsg,
                            villages=count, communities=max(1, round(count / 3)),
                            population=population, segment_m=PREFECTURE_SEGMENT_M))
        if progress is not None:
            progress(index, townships)
    return towns
