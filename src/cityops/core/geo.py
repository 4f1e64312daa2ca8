"""Geodesy helpers: GCJ-02 <-> WGS84 and areas in km².

GCJ-02 (the "Mars" datum of Amap/Gaode, Tencent and Aliyun DataV) is WGS84 plus a deterministic,
non-linear offset of a few hundred metres inside China; pyproj has no definition for it, so the
published forward transform is written here and inverted by fixed-point iteration. Outside China's
rough bounding box the offset is not applied (as every GCJ-02 implementation does), so the transform
is the identity there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod

FloatArray = npt.NDArray[np.float64]

# Krasovsky 1940 ellipsoid, which the GCJ-02 offset formula is defined on.
_A = 6378245.0
_EE = 0.00669342162296594323
# The conventional "is it in China" box used by GCJ-02 implementations.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)

_GEOD = Geod(ellps="WGS84")


def out_of_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    return ~(
        (lon_a >= _CHINA_LON[0])
        & (lon_a <= _CHINA_LON[1])
        & (lat_a >= _CHINA_LAT[0])
        & (lat_a <= _CHINA_LAT[1])
    )


def _offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 offset (dlon, dlat) in degrees at a WGS84 position."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    dlon, dlat = _offset(lon_a, lat_a)
    return lon_a + dlon, lat_a + dlat


def gcj02_to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, tolerance: float = 1e-9, max_iterations: int = 30
) -> tuple[FloatArray, FloatArray]:
    """Invert the forward transform: iterate w <- w - (forward(w) - g).

    The offset changes by far less than a degree per degree, so the map is a contraction and a handful
    of iterations reach `tolerance` degrees (1e-9 deg is about 0.1 mm).
    """
    g_lon = np.asarray(lon, dtype=np.float64)
    g_lat = np.asarray(lat, dtype=np.float64)
    w_lon = g_lon.copy()
    w_lat = g_lat.copy()
    for _ in range(max_iterations):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon = f_lon - g_lon
        e_lat = f_lat - g_lat
        w_lon = w_lon - e_lon
        w_lat = w_lat - e_lat
        if e_lon.size == 0 or max(float(np.max(np.abs(e_lon))), float(np.max(np.abs(e_lat)))) < tolerance:
            break
    return w_lon, w_lat


def _apply(geometry: Any, func: Any) -> Any:
    def transform(coords: FloatArray) -> FloatArray:
        x, y = func(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, transform)


def geometry_gcj02_to_wgs84(geometry: Any) -> Any:
    """Convert a shapely geometry (or an array of them) from GCJ-02 to WGS84."""
    return _apply(geometry, gcj02_to_wgs84)


def geometry_wgs84_to_gcj02(geometry: Any) -> Any:
    """Convert a shapely geometry (or an array of them) from WGS84 to GCJ-02."""
    return _apply(geometry, wgs84_to_gcj02)


def area_km2(geometry: Any) -> float:
    """Geodesic area on the WGS84 ellipsoid, in km² (orientation does not matter)."""
    if geometry is None or geometry.is_empty:
        return 0.0
    area, _perimeter = _GEOD.geometry_area_perimeter(geometry)
    return abs(float(area)) / 1e6


def areas_km2(geometries: Any) -> FloatArray:
    return np.array([area_km2(g) for g in geometries], dtype=np.float64)


def distance_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance between two WGS84 points, in km."""
    _az1, _az2, metres = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(metres) / 1000.0
