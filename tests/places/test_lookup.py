"""Point lookup: county seats, arrays equal to per-point shapely, bad coordinates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely

from cityops.core.errors import NotFound, ValidationFailed
from cityops.places import service, synthetic
from cityops.places.index import NO_MATCH, PlaceIndex

SEATS = {
    "Heshan": "410602",
    "Shancheng": "410603",
    "Qibin": "410611",
    "Xun Xian": "410621",
    "Zhaoge": "410622",
}


@pytest.mark.parametrize("name", sorted(SEATS))
def test_county_seats_look_up_to_their_county(place_index: PlaceIndex, name: str) -> None:
    seat = next(p for p in synthetic.read_geonames() if p.name_en == name)
    result = service.lookup_point(place_index, lon=seat.lon, lat=seat.lat)
    assert result.county is not None and result.county.code == SEATS[name]
    assert result.grid is not None and result.village is not None and result.township is not None
    assert result.grid.code.startswith(result.village.code)
    assert result.village.code.startswith(result.township.code)


def test_arrays_equal_per_point_shapely_contains(place_index: PlaceIndex, shapes: dict[str, Any]) -> None:
    city = shapes["410600"]
    minx, miny, maxx, maxy = city.bounds
    rng = np.random.default_rng(11)
    # Points over the whole bounding box: inside, outside and near every kind of edge.
    lon = rng.uniform(minx - 0.01, maxx + 0.01, 4000)
    lat = rng.uniform(miny - 0.01, maxy + 0.01, 4000)
    got = place_index.locate(lon, lat)
    polygons = place_index.polygons
    tree = shapely.STRtree(polygons)
    expected = np.full(len(lon), NO_MATCH)
    for i, (x, y) in enumerate(zip(lon, lat, strict=True)):
        point = shapely.Point(x, y)
        for j in sorted(int(k) for k in tree.query(point)):
            if polygons[j].contains(point):
                expected[i] = j
                break
    assert np.array_equal(got, expected)
    assert (got == NO_MATCH).any() and (got != NO_MATCH).any()


def test_points_in_boundary_cells_are_resolved_exactly(place_index: PlaceIndex) -> None:
    # Points a hair either side of a grid's vertices land in boundary cells of the raster.
    polygon = place_index.polygons[100]
    coords = shapely.get_coordinates(polygon)[:-1]
    centre = np.array([polygon.centroid.x, polygon.centroid.y])
    inner = coords + (centre - coords) * 1e-4
    got = place_index.locate(inner[:, 0], inner[:, 1])
    assert (got == 100).all()


def test_bulk_lookup_returns_columns(place_index: PlaceIndex) -> None:
    result = service.lookup_points(place_index, lon=[114.28598, 0.0], lat=[35.73947, 0.0])
    assert result.count == 2 and result.matched == 1
    assert result.county == ["410611", None]
    assert result.grid[0] is not None and result.grid[1] is None


@pytest.mark.parametrize(
    ("lon", "lat", "field"),
    [(181.0, 35.7, "lon"), (114.2, -91.0, "lat"), (float("nan"), 35.7, "lon"), (114.2, float("inf"), "lat")],
)
def test_bad_coordinates_name_the_field(place_index: PlaceIndex, lon: float, lat: float, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.lookup_point(place_index, lon=lon, lat=lat)
    assert caught.value.field == field


def test_bad_value_in_an_array_is_named_with_its_index(place_index: PlaceIndex) -> None:
    with pytest.raises(ValidationFailed, match="index 2") as caught:
        service.lookup_points(place_index, lon=[114.2, 114.3, 200.0], lat=[35.7, 35.7, 35.7])
    assert caught.value.field == "lon"
    with pytest.raises(ValidationFailed, match="lat has 1"):
        service.lookup_points(place_index, lon=[114.2, 114.3], lat=[35.7])


def test_point_outside_the_city_is_not_found(place_index: PlaceIndex) -> None:
    with pytest.raises(NotFound, match="outside the city"):
        service.lookup_point(place_index, lon=116.404, lat=39.915)  # Beijing


def test_empty_index_matches_nothing() -> None:
    index = PlaceIndex([], [])
    assert index.locate([114.2], [35.7]).tolist() == [NO_MATCH]
