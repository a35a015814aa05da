"""maps.geo: UTM zones, projections, geodesic measures, polygon repair, lon/lat and bbox checks."""

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from maps import geo


def _unchecked(kind, *args):
    # shapely warns when it builds a geometry from NaN or infinity; the hub must still cope.
    with np.errstate(invalid="ignore"):
        return kind(*args)


@pytest.mark.parametrize(("lon", "lat", "epsg"), [
    (109.05, 33.15, 32649),   # the demo township, southern Shaanxi
    (106.85, 33.05, 32648),   # Hanzhong
    (116.40, 39.90, 32650),   # Beijing
    (-73.90, 40.70, 32618),   # New York
    (151.20, -33.90, 32756),  # Sydney: southern hemisphere
    (-58.40, -34.60, 32721),  # Buenos Aires
    (3.0, -0.0001, 32731),    # just south of the equator
    (0.0, 0.0, 32631),
    (-180.0, 10.0, 32601),
    (180.0, 10.0, 32660),     # the antimeridian belongs to zone 60, not a zone 61
    (108.0, 30.0, 32649),     # a zone edge belongs to the zone east of it
])
def test_utm_epsg(lon, lat, epsg):
    assert geo.utm_epsg(lon, lat) == epsg


@pytest.mark.parametrize(("lon", "lat"), [(181.0, 0.0), (0.0, 90.5), (math.nan, 0.0),
                                          (0.0, math.inf)])
def test_utm_epsg_rejects_impossible_points(lon, lat):
    with pytest.raises(geo.GeometryError) as caught:
        geo.utm_epsg(lon, lat)
    assert caught.value.code == "out_of_range"


def test_central_meridian_has_false_easting():
    point = geo.to_metric(Point(111.0, 0.0), 32649)  # zone 49's central meridian is 111 E
    assert point.x == pytest.approx(500_000.0, abs=1e-6)
    assert point.y == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("lon", "lat"), [(109.05, 33.15), (106.85, 33.05), (151.2, -33.9),
                                          (-70.6, -33.4), (25.0, 60.2)])
def test_round_trip_is_better_than_a_centimetre(lon, lat):
    epsg = geo.utm_epsg(lon, lat)
    shape = Point(lon, lat).buffer(0.05, 16)
    back = geo.to_lonlat(geo.to_metric(shape, epsg), epsg)
    error_deg = np.abs(shapely.get_coordinates(back) - shapely.get_coordinates(shape)).max()
    assert error_deg * 111_320 < 0.01


def test_projection_takes_arrays_of_geometries():
    shapes = np.array([Point(109.0, 33.0), LineString([(109.0, 33.0), (109.01, 33.0)]),
                       box(109.0, 33.0, 109.01, 33.01)])
    metric = geo.to_metric(shapes, 32649)
    assert [g.geom_type for g in metric] == ["Point", "LineString", "Polygon"]
    assert metric[1].length == pytest.approx(933.0, abs=5.0)  # 0.01° of longitude at 33° N


def test_geodesic_length_of_one_degree_of_latitude():
    # One degree of the meridian from the equator on WGS84: 110,574.4 m.
    assert geo.geodesic_length_m(LineString([(0, 0), (0, 1)])) == pytest.approx(110_574.4,
                                                                                 abs=0.5)


def test_geodesic_and_metric_measures_agree():
    shape = Point(109.05, 33.15).buffer(0.05, 32)
    metric = geo.to_metric(shape, 32649)
    assert geo.area_km2(shape) == pytest.approx(metric.area / 1e6, rel=1e-3)
    assert geo.geodesic_length_m(shape.exterior) == pytest.approx(metric.length, rel=1e-3)


def test_area_subtracts_holes_whatever_their_orientation():
    outer = box(109.0, 33.0, 109.1, 33.1)
    hole = box(109.02, 33.02, 109.05, 33.05)
    for ring in (hole.exterior.coords, hole.exterior.coords[::-1]):
        holed = Polygon(outer.exterior.coords, [ring])
        assert geo.area_km2(holed) == pytest.approx(geo.area_km2(outer) - geo.area_km2(hole))


def test_clean_polygon_repairs_a_bow_tie():
    bow_tie = Polygon([(109.0, 33.0), (109.01, 33.01), (109.01, 33.0), (109.0, 33.01)])
    assert not bow_tie.is_valid
    fixed = geo.clean_polygon(bow_tie)
    assert isinstance(fixed, MultiPolygon) and fixed.is_valid
    assert len(fixed.geoms) == 2
    assert fixed.area == pytest.approx(0.01 * 0.01 / 2)


def test_clean_polygon_keeps_a_valid_polygon_and_orients_it():
    clockwise = Polygon([(109.0, 33.0), (109.0, 33.01), (109.01, 33.01), (109.01, 33.0)])
    cleaned = geo.clean_polygon(clockwise)
    assert cleaned.equals(clockwise)
    assert cleaned.exterior.is_ccw  # RFC 7946 right-hand rule


def test_clean_polygon_drops_a_spike():
    spiked = Polygon([(109.0, 33.0), (109.01, 33.0), (109.01, 33.01), (109.02, 33.02),
                      (109.01, 33.01), (109.0, 33.01)])
    fixed = geo.clean_polygon(spiked)
    assert fixed.is_valid and fixed.geom_type == "Polygon"
    assert fixed.area == pytest.approx(0.0001)


@pytest.mark.parametrize(("geom", "code"), [
    (None, "empty"),
    (Polygon(), "empty"),
    (Point(109.0, 33.0), "not_polygon"),
    (LineString([(109.0, 33.0), (109.1, 33.1)]), "not_polygon"),
    (box(179.9, 10.0, 180.1, 10.1), "out_of_range"),
    (box(10.0, 89.95, 10.1, 90.05), "out_of_range"),
    (_unchecked(Polygon, [(109.0, 33.0), (math.nan, 33.0), (109.0, 33.1)]), "out_of_range"),
    (box(33.15, 109.05, 33.16, 109.06), "swapped_axes"),
    (Polygon([(109.0, 33.0), (109.0, 33.1), (109.0, 33.2)]), "too_small"),  # on one meridian
    (box(109.0, 33.0, 109.0000001, 33.0000001), "too_small"),  # about 0.01 m²
])
def test_clean_polygon_errors(geom, code):
    with pytest.raises(geo.GeometryError) as caught:
        geo.clean_polygon(geom)
    assert caught.value.code == code
    assert str(caught.value)


def test_geometry_error_is_a_value_error_with_a_code():
    error = geo.GeometryError("bad_bbox", "say why")
    assert isinstance(error, ValueError)
    assert (error.code, str(error)) == ("bad_bbox", "say why")
    assert str(geo.GeometryError("empty")) == "the geometry is empty"


@pytest.mark.parametrize(("geom", "swapped"), [
    (Point(109.05, 33.15), False),
    (Point(33.15, 109.05), True),              # lat,lon of the demo township
    (Point(39.9, 116.4), True),                # lat,lon of Beijing
    (Point(10.7, 59.9), False),                # Oslo really is there
    (Point(-33.9, 151.2), False),              # lat,lon of Sydney: out of range, not China
    (LineString([(33.1, 109.0), (109.0, 33.1)]), False),  # mixed: not all swapped
    (Polygon(), False),
])
def test_looks_swapped(geom, swapped):
    assert geo.looks_swapped(geom) is swapped


@pytest.mark.parametrize(("geom", "code"), [
    (Point(109.05, 33.15), None),
    (Point(10.7, 59.9), None),
    (Point(-180.0, -90.0), None),
    (Point(33.15, 109.05), "swapped_axes"),
    (Point(-33.9, 151.2), "out_of_range"),
    (Point(181.0, 0.0), "out_of_range"),
    (_unchecked(Point, math.inf, 0.0), "out_of_range"),
])
def test_check_lonlat(geom, code):
    if code is None:
        geo.check_lonlat(geom)
        return
    with pytest.raises(geo.GeometryError) as caught:
        geo.check_lonlat(geom)
    assert caught.value.code == code


@pytest.mark.parametrize(("text", "expected"), [
    ("108.9,32.9,109.2,33.4", (108.9, 32.9, 109.2, 33.4)),
    (" 108.9 , 32.9 ,109.2, 33.4 ", (108.9, 32.9, 109.2, 33.4)),
    ("-180,-90,180,90", (-180.0, -90.0, 180.0, 90.0)),
    ("109,33,109,33", (109.0, 33.0, 109.0, 33.0)),
    ("1.08e2,+32.9,1.092E2,33", (108.0, 32.9, 109.2, 33.0)),
    ("-.5,-0.25,.5,0", (-0.5, -0.25, 0.5, 0.0)),
])
def test_bbox_param_accepts(text, expected):
    assert geo.bbox_param(text) == expected


@pytest.mark.parametrize("text", [
    "", "109", "108.9,32.9,109.2", "108.9,32.9,109.2,33.4,1", "108.9,,109.2,33.4",
    "a,b,c,d", "nan,32.9,109.2,33.4", "inf,32.9,109.2,33.4", "-Infinity,0,1,1",
    "1_08,32.9,109.2,33.4", "0x10,0,1,1", "109.2,32.9,108.9,33.4", "108.9,33.4,109.2,32.9",
    "32.9,108.9,33.4,109.2", "181,0,182,1", "0,-91,1,0", "1e999,0,1,1",
    ",".join(["1"] * 300),
])
def test_bbox_param_rejects(text):
    with pytest.raises(geo.GeometryError) as caught:
        geo.bbox_param(text)
    assert caught.value.code == "bad_bbox"
    assert str(caught.value)


def test_bbox_param_rejects_non_strings():
    with pytest.raises(geo.GeometryError):
        geo.bbox_param(None)  # type: ignore[arg-type]
