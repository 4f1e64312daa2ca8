"""Pydantic schemas of the livability package."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class NetworkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    source: str
    synthetic: bool
    crs: str
    node_count: int
    edge_count: int
    length_km: float
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    created_at: datetime


class NetworkImported(BaseModel):
    """What an import stored, and what it left out."""

    network: NetworkRead
    ways: int
    # Way-node references to nodes not in the file (ways cut at the edge of an extract).
    missing_nodes: int
    # Edges in fragments not connected to the largest part of the network.
    dropped_edges: int
    replaced: bool


class CategoryRead(BaseModel):
    key: str
    name_zh: str
    name_en: str
    group: str
    threshold_m: float
    minutes: int
    level: str
    green: bool
    standard: str


class FacilityRead(BaseModel):
    id: int
    category: str
    name: str
    lon: float
    lat: float
    area_m2: float | None
    area_class: str | None
    synthetic: bool
    entrances: list[tuple[float, float]]


class FacilitiesImported(BaseModel):
    """What an import stored: the facilities per category, and how many it replaced."""

    imported: int
    replaced: int
    by_category: dict[str, int]


class CategoryAccessRead(BaseModel):
    """A community's walking access to one category (None: nothing of it reachable)."""

    distance_m: float | None
    minutes: float | None
    facility_id: int | None
    covered: bool
    within: dict[int, int]  # minutes -> facilities within that walking circle


class CommunityReport(BaseModel):
    code: str
    name: str
    township_code: str | None
    township: str | None
    county_code: str | None
    county: str | None
    urban: bool
    in_scope: bool
    population: int
    on_network: bool
    access_m: float | None
    green_300: bool
    green_m: float | None
    park_500: bool
    park_m: float | None
    # Basic items (categories.yaml) not within their walking distance, then "green_300", "park_500".
    missing: list[str]
    categories: dict[str, CategoryAccessRead]


class Coverage(BaseModel):
    """Communities and their population covered, and the share of the analysed population."""

    communities: int
    population: int
    rate: float | None


class AreaReport(BaseModel):
    code: str
    name: str
    level: str
    communities: int  # in scope
    analysed: int  # in scope and on the network
    population: int
    population_analysed: int
    categories: dict[str, Coverage]
    green_300: Coverage
    park_500: Coverage
    # No basic item missing, green within 300 m and a park within 500 m.
    complete: Coverage
    # Per group (一老 elderly, 一小 children ...): every basic item of the group (any item, when none is
    # basic).
    groups: dict[str, Coverage]


class LivabilityReport(BaseModel):
    network: str
    network_synthetic: bool
    facilities: int
    facilities_synthetic: int
    population_source: str
    speed_mps: float
    scope: str
    categories: list[CategoryRead]
    city: AreaReport
    counties: list[AreaReport]
    townships: list[AreaReport]
    communities: list[CommunityReport] | None = None


class SiteRead(BaseModel):
    rank: int
    node: int
    lon: float
    lat: float
    # Population (and communities) this site would newly cover, after the sites ranked before it.
    population: int
    communities: list[str]
    covered_after: int
    rate_after: float | None


class SiteSuggestion(BaseModel):
    network: str
    category: str
    threshold_m: float
    scope: str
    population_analysed: int
    population_covered: int
    rate: float | None
    sites: list[SiteRead]
