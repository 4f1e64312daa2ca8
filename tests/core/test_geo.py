"""GCJ-02 <-> WGS84 against published test vectors, and geodesic areas."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from cityops.core import geo

# (WGS84 lon, lat) -> (GCJ-02 lon, lat), as published in the tests of googollee/eviltransform
# (Shanghai, Shenzhen, Beijing) and in the README of wandergis/coordtransform (Tiananmen).
VECTORS = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
]


@pytest.mark.parametrize(("wgs", "gcj"), VECTORS)
def test_forward_transform_matches_published_points(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    lon, lat = geo.wgs84_to_gcj02(*wgs)
    assert float(lon) == pytest.approx(gcj[0], abs=1e-9)
    assert float(lat) == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), VECTORS)
def test_inverse_recovers_wgs84_within_1e7_degrees(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    lon, lat = geo.gcj02_to_wgs84(*gcj)
    assert abs(float(lon) - wgs[0]) < 1e-7
    assert abs(float(lat) - wgs[1]) < 1e-7


def test_round_trip_on_arrays_over_hebi() -> None:
    rng = np.random.default_rng(3)
    lon = rng.uniform(113.9, 114.8, 10_000)
    lat = rng.uniform(35.4, 36.1, 10_000)
    g_lon, g_lat = geo.wgs84_to_gcj02(lon, lat)
    # In Hebi the offset is a few hundred metres.
    assert 0.001 < float(np.max(np.abs(g_lon - lon))) < 0.01
    back_lon, back_lat = geo.gcj02_to_wgs84(g_lon, g_lat)
    assert float(np.max(np.abs(back_lon - lon))) < 1e-7
    assert float(np.max(np.abs(back_lat - lat))) < 1e-7


def test_points_outside_china_are_unchanged() -> None:
    lon = np.array([2.35, -74.0, 151.2, 100.0])
    lat = np.array([48.86, 40.7, -33.9, 60.0])
    for func in (geo.wgs84_to_gcj02, geo.gcj02_to_wgs84):
        out_lon, out_lat = func(lon, lat)
        assert np.array_equal(out_lon, lon)
        assert np.array_equal(out_lat, lat)
    assert geo.out_of_china(lon, lat).all()


def test_geometries_are_converted_vertex_by_vertex() -> None:
    square = shapely.box(114.2, 35.7, 114.3, 35.8)
    moved = geo.geometry_wgs84_to_gcj02(square)
    x, y = geo.wgs84_to_gcj02(114.2, 35.7)
    assert (float(x), float(y)) in [tuple(c) for c in shapely.get_coordinates(moved)]
    back = geo.geometry_gcj02_to_wgs84(moved)
    assert shapely.equals_exact(back, square, tolerance=1e-7)


def test_geodesic_area_of_a_known_cell() -> None:
    # A 0.1° x 0.1° cell at 35.75°N is about 9.03 km (E-W) x 11.09 km (N-S).
    area = geo.area_km2(shapely.box(114.2, 35.7, 114.3, 35.8))
    assert area == pytest.approx(100.2, rel=0.01)
    assert geo.area_km2(shapely.Polygon()) == 0.0
    assert geo.distance_km(114.2, 35.7, 114.2, 35.8) == pytest.approx(11.09, rel=0.01)
