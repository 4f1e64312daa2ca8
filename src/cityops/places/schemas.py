"""Pydantic shapes of places data as the API returns it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["city", "county", "township", "village"]
LayerLevel = Literal["city", "county", "township", "village", "grid"]
MAX_BULK_POINTS = 100_000


class DivisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    name_en: str | None
    level: str
    parent_code: str | None
    population: int | None
    area_km2: float | None
    centroid_lon: float | None
    centroid_lat: float | None
    bbox: tuple[float, float, float, float] | None = None
    geometry_synthetic: bool
    geometry_source: str
    source_datum: str


class GridRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    village_code: str
    population: int | None
    households: int | None
    area_km2: float | None
    centroid_lon: float | None
    centroid_lat: float | None
    bbox: tuple[float, float, float, float] | None = None
    synthetic: bool
    geometry_source: str
    source_datum: str


class DivisionDetail(DivisionRead):
    ancestors: list[DivisionRead] = Field(default_factory=list)
    children: list[DivisionRead] = Field(default_factory=list)
    grids: list[GridRead] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


class DivisionPage(BaseModel):
    items: list[DivisionRead]
    total: int
    limit: int
    offset: int


class SearchHit(BaseModel):
    code: str
    name: str
    name_en: str | None
    level: LayerLevel
    parent_code: str | None


class SearchResult(BaseModel):
    items: list[SearchHit]


class CountyStats(BaseModel):
    code: str
    name: str
    name_en: str | None
    townships: int
    villages: int
    grids: int
    population: int
    area_km2: float
    synthetic: bool


class PlacesStats(BaseModel):
    counts: dict[str, int]
    counties: list[CountyStats]
    population: int
    area_km2: float
    synthetic_note: str


class PlaceRef(BaseModel):
    code: str
    name: str


class LookupResult(BaseModel):
    lon: float
    lat: float
    grid: PlaceRef | None
    village: PlaceRef | None
    township: PlaceRef | None
    county: PlaceRef | None


class BulkLookupRequest(BaseModel):
    lon: list[float] = Field(max_length=MAX_BULK_POINTS)
    lat: list[float] = Field(max_length=MAX_BULK_POINTS)


class BulkLookupResult(BaseModel):
    """Columnar, one entry per input point; null where the point is outside the city."""

    count: int
    matched: int
    grid: list[str | None]
    village: list[str | None]
    township: list[str | None]
    county: list[str | None]


class ImportResult(BaseModel):
    level: str
    created: int
    updated: int
    deleted: int
    source: str
    datum: str
