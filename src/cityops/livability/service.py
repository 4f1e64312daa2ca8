"""Walking networks (import, storage, the accessibility engine over a stored network), facilities (import
with row errors), and the coverage of the 15-minute living circle: the report, a community's access, the
suggested sites and the map's layers (cached per network, facilities, communities and speed)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy.orm import Session

from cityops.core.errors import Conflict, NotFound, ValidationFailed
from cityops.core.export import sheets_bytes
from cityops.livability import coverage, facilities, osm
from cityops.livability import repository as repo
from cityops.livability.categories import catalogue
from cityops.livability.coverage import Access, FacilitySet, measure
from cityops.livability.engine import DEFAULT_SPEED_MPS, Engine, StreetGraph, largest_component
from cityops.livability.models import StreetNetwork
from cityops.livability.report import (
    SCOPES,
    Communities,
    Covered,
    area_reports,
    community_rows,
    covered,
    in_scope,
)
from cityops.livability.schemas import (
    CategoryRead,
    CommunityReport,
    FacilitiesImported,
    FacilityRead,
    LivabilityReport,
    NetworkImported,
    NetworkRead,
    SiteRead,
    SiteSuggestion,
)
from cityops.places import service as places_service

MAX_NAME = 80
SOURCE_SYNTHETIC = "synthetic"
MAX_ISOCHRONE_MINUTES = 30.0


def _name(name: str) -> str:
    text = name.strip()
    if not text or len(text) > MAX_NAME:
        raise ValidationFailed(f"a network's name has 1 to {MAX_NAME} characters", field="name")
    return text


def save_network(session: Session, *, name: str, source: str, graph: StreetGraph, synthetic: bool = False,
                 replace: bool = False) -> tuple[StreetNetwork, bool]:
    """Store a graph under a name (flushes; the caller's unit of work commits, so a failure stores
    nothing). An existing network of that name is a Conflict unless `replace`. Returns the row and
    whether it replaced one."""
    name = _name(name)
    if graph.edge_count == 0:
        raise ValidationFailed("the network has no edges", field="file")
    old = repo.by_name(session, name)
    if old is not None:
        if not replace:
            raise Conflict(f"a network named {name!r} exists; import with --replace to replace it",
                           field="name")
        repo.delete_network(session, old)
    min_lon, min_lat, max_lon, max_lat = graph.bounds()
    row = StreetNetwork(name=name, source=source[:300], synthetic=synthetic, crs=graph.crs,
                        node_count=graph.node_count, edge_count=graph.edge_count,
                        length_km=round(float(graph.length.sum()) / 1000, 3), min_lon=min_lon,
                        min_lat=min_lat, max_lon=max_lon, max_lat=max_lat)
    session.add(row)
    session.flush()
    repo.add_graph(session, row.id, graph)
    return row, old is not None


def import_network(session: Session, *, path: Path, name: str, replace: bool = False) -> NetworkImported:
    """A walking network from an OpenStreetMap PBF file, stored under `name` (its largest connected
    part). The file is read whole before anything is written."""
    name = _name(name)
    if not replace and repo.by_name(session, name) is not None:
        raise Conflict(f"a network named {name!r} exists; import with --replace to replace it", field="name")
    parsed = osm.read_pbf(path)
    graph, dropped = largest_component(parsed.graph)
    row, replaced = save_network(session, name=name, source=path.name, graph=graph, replace=replace)
    return NetworkImported(network=NetworkRead.model_validate(row), ways=parsed.ways,
                           missing_nodes=parsed.missing_nodes, dropped_edges=dropped, replaced=replaced)


def list_networks(session: Session) -> list[NetworkRead]:
    return [NetworkRead.model_validate(n) for n in repo.all_networks(session)]


def _network(session: Session, name: str) -> StreetNetwork:
    row = repo.by_name(session, name)
    if row is None:
        raise NotFound(f"no network named {name!r}", field="network")
    return row


def get_network(session: Session, *, name: str) -> NetworkRead:
    return NetworkRead.model_validate(_network(session, name))


def load_graph(session: Session, *, name: str) -> StreetGraph:
    return repo.load_graph(session, _network(session, name))


# Engines of recently used networks, per process: building one (projection, graph, snapping index)
# takes a good part of a second on a city's network. A re-imported network is a new row (its id may be
# the old one's again on SQLite, its creation time is not).
_ENGINES: OrderedDict[tuple[int, float, float], Engine] = OrderedDict()
_ENGINES_LOCK = threading.Lock()
MAX_ENGINES = 4


def engine_for(session: Session, *, name: str, speed_mps: float = DEFAULT_SPEED_MPS) -> Engine:
    row = _network(session, name)
    key = (row.id, row.created_at.timestamp(), speed_mps)
    with _ENGINES_LOCK:
        if key in _ENGINES:
            _ENGINES.move_to_end(key)
            return _ENGINES[key]
    built = Engine(repo.load_graph(session, row), speed_mps=speed_mps)
    with _ENGINES_LOCK:
        _ENGINES[key] = built
        while len(_ENGINES) > MAX_ENGINES:
            _ENGINES.popitem(last=False)
    return built


def isochrone(session: Session, *, name: str, lon: float, lat: float, minutes: float,
              speed_mps: float = DEFAULT_SPEED_MPS) -> dict[str, Any]:
    """The area reachable on foot from a point within `minutes`, as a GeoJSON Feature (WGS84)."""
    if not 0 < minutes <= MAX_ISOCHRONE_MINUTES:
        raise ValidationFailed(f"minutes must be above 0 and at most {MAX_ISOCHRONE_MINUTES:g}",
                               field="minutes")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationFailed("lon, lat must be WGS84 degrees", field="lon")
    engine = engine_for(session, name=name, speed_mps=speed_mps)
    area = engine.isochrone(lon, lat, minutes=minutes)
    if area.is_empty:
        raise ValidationFailed(f"({lon:.6f}, {lat:.6f}) is more than {engine.max_snap_m:g} m from every "
                               f"street of network {name!r}", field="lon")
    area = shapely.set_precision(area, 1e-7)
    return {"type": "Feature", "geometry": shapely.geometry.mapping(area),
            "properties": {"network": name, "lon": lon, "lat": lat, "minutes": minutes,
                           "speed_mps": speed_mps, "distance_m": round(minutes * 60 * speed_mps, 1)}}


# --- facilities ----------------------------------------------------------------------------------

MAX_IMPORT_BYTES = 20 * 2**20
SOURCE_MAX = 300


def categories() -> list[CategoryRead]:
    return [CategoryRead(**vars(c)) for c in catalogue().categories.values()]


def default_network(session: Session, name: str | None) -> str:
    """The network named, or the only one stored."""
    if name:
        return _network(session, name).name
    found = repo.all_networks(session)
    if not found:
        raise NotFound(
            "no walking network is stored; import one with `cityops livability import-network`",
            field="network",
        )
    if len(found) > 1:
        raise ValidationFailed(
            f"several networks are stored ({', '.join(n.name for n in found)}): name one", field="network"
        )
    return found[0].name


def import_facilities(
    session: Session, *, data: bytes, filename: str, network: str | None = None, replace: bool = False
) -> FacilitiesImported:
    """Facilities from a CSV, Excel or GeoJSON file, checked against the network's area (facilities.py
    lists the checks). Every problem refuses the whole file (ValidationFailed naming each row and
    field); flushes only, the caller's unit of work commits."""
    kind, rows = facilities.read_file(data, filename)
    return import_rows(session, kind=kind, rows=rows, source=filename, network=network, replace=replace)


def import_rows(
    session: Session,
    *,
    kind: str,
    rows: list[tuple[int, dict[str, Any]]],
    source: str,
    network: str | None = None,
    replace: bool = False,
    synthetic: bool = False,
) -> FacilitiesImported:
    """The checked rows of a file (or the demo's generated ones, through the same checks) stored."""
    name = default_network(session, network)
    engine = engine_for(session, name=name)
    existing = facilities.Existing()
    if not replace:
        existing.source_ids, existing.points = repo.facility_keys(session)
    checked, problems = facilities.check_rows(
        kind, rows, catalogue=catalogue(), engine=engine, network=name, existing=existing
    )
    if problems:
        raise facilities.refusal(source, kind, problems)
    if not checked:
        raise ValidationFailed(f"{source}: no facilities in the file", field="file")
    replaced = repo.delete_facilities(session) if replace else 0
    repo.add_facilities(
        session,
        [
            {
                "category": r.category,
                "name": r.name,
                "source_id": r.source_id,
                "lon": r.lon,
                "lat": r.lat,
                "area_m2": r.area_m2,
                "area_class": r.area_class,
                "source": source[:SOURCE_MAX],
                "synthetic": synthetic,
            }
            for r in checked
        ],
        [r.entrances for r in checked],
    )
    by_category: dict[str, int] = {}
    for r in checked:
        by_category[r.category] = by_category.get(r.category, 0) + 1
    return FacilitiesImported(imported=len(checked), replaced=replaced, by_category=by_category)


def facility_set(session: Session) -> FacilitySet:
    rows, gates = repo.facility_table(session)
    ids = np.array([r.id for r in rows], dtype=np.int64)
    index = {int(f): i for i, f in enumerate(ids.tolist())}
    return FacilitySet(
        id=ids,
        category=[r.category for r in rows],
        lon=np.array([r.lon for r in rows], dtype=np.float64),
        lat=np.array([r.lat for r in rows], dtype=np.float64),
        area_m2=np.array([np.nan if r.area_m2 is None else r.area_m2 for r in rows], dtype=np.float64),
        entrance_of=np.array([index[g.facility_id] for g in gates], dtype=np.int64),
        entrance_lon=np.array([g.lon for g in gates], dtype=np.float64),
        entrance_lat=np.array([g.lat for g in gates], dtype=np.float64),
    )


def list_facilities(session: Session, *, category: str | None = None) -> list[FacilityRead]:
    if category is not None and category not in catalogue().categories:
        raise ValidationFailed(f"unknown category {category!r}", field="category")
    rows, gates = repo.facility_table(session)
    entrances: dict[int, list[tuple[float, float]]] = {}
    for g in gates:
        entrances.setdefault(g.facility_id, []).append((g.lon, g.lat))
    return [
        FacilityRead(
            id=r.id,
            category=r.category,
            name=r.name,
            lon=r.lon,
            lat=r.lat,
            area_m2=r.area_m2,
            area_class=r.area_class,
            synthetic=r.synthetic,
            entrances=entrances.get(r.id, []),
        )
        for r in rows
        if category is None or r.category == category
    ]


# --- coverage ------------------------------------------------------------------------------------

URBAN_SUFFIXES = ("社区", "居民委员会", "居委会")
POPULATION_SOURCE = (
    "the population of each village and community in places (the demo's populations are "
    "synthetic: Hebi's 1.56 million spread by the kind of village)"
)


def _divisions(session: Session, level: str) -> list[Any]:
    out: list[Any] = []
    while True:
        page = places_service.list_divisions(session, level=level, limit=1000, offset=len(out))
        out.extend(page.items)
        if not page.items or len(out) >= page.total:
            return out


def load_communities(session: Session) -> tuple[Communities, dict[str, str], tuple[str, str]]:
    """The village-level divisions with a point (their centroid, as places stores it) and population;
    the names of every division; the city (code, name)."""
    names: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    for level in ("city", "county", "township"):
        for d in _divisions(session, level):
            names[d.code] = d.name
            parent[d.code] = d.parent_code
    cities = [c for c, _ in names.items() if len(c) == 6 and parent.get(c) not in names]
    root = places_service.root_code(session) or (cities[0] if cities else "")
    villages = [
        d for d in _divisions(session, "village") if d.centroid_lon is not None and d.centroid_lat is not None
    ]
    township = [d.parent_code for d in villages]
    return (
        Communities(
            code=[d.code for d in villages],
            name=[d.name for d in villages],
            township_code=township,
            county_code=[parent.get(t) if t else None for t in township],
            urban=np.array([d.name.endswith(URBAN_SUFFIXES) for d in villages], dtype=bool),
            population=np.array([d.population or 0 for d in villages], dtype=np.int64),
            lon=np.array([d.centroid_lon for d in villages], dtype=np.float64),
            lat=np.array([d.centroid_lat for d in villages], dtype=np.float64),
        ),
        names,
        (root, names.get(root, root)),
    )


@dataclass(eq=False)
class Analysis:
    network: str
    network_synthetic: bool
    communities: Communities
    names: dict[str, str]
    city: tuple[str, str]
    facilities: FacilitySet
    synthetic_facilities: int
    access: Access
    engine: Engine

    @cached_property
    def cov(self) -> Covered:
        """What each community has covered (derived from the access: once per cached analysis)."""
        return covered(self.access, catalogue())


_ANALYSES: OrderedDict[tuple[Any, ...], Analysis] = OrderedDict()
MAX_ANALYSES = 4


def _speed(speed_mps: float) -> float:
    if not 0.3 <= speed_mps <= 3.0:
        raise ValidationFailed("the walking speed must be from 0.3 to 3 m/s", field="speed")
    return speed_mps


def _scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValidationFailed(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}", field="scope")
    return scope


def analyse(
    session: Session, *, network: str | None = None, speed_mps: float = DEFAULT_SPEED_MPS
) -> Analysis:
    """Every community's walking access to every category (cached per network, facilities,
    communities and speed)."""
    name = default_network(session, network)
    row = _network(session, name)
    communities, names, city = load_communities(session)
    fingerprint = hash(
        (
            tuple(communities.code),
            communities.population.tobytes(),
            communities.lon.tobytes(),
            communities.lat.tobytes(),
        )
    )
    key = (
        row.id,
        row.created_at.timestamp(),
        _speed(speed_mps),
        repo.facility_revision(session),
        fingerprint,
    )
    with _ENGINES_LOCK:
        if key in _ANALYSES:
            _ANALYSES.move_to_end(key)
            return _ANALYSES[key]
    engine = engine_for(session, name=name, speed_mps=speed_mps)
    found = facility_set(session)
    access = measure(engine, communities.lon, communities.lat, found, catalogue())
    synthetic = sum(repo.facility_counts(session, synthetic=True).values())
    result = Analysis(name, row.synthetic, communities, names, city, found, synthetic, access, engine)
    with _ENGINES_LOCK:
        _ANALYSES[key] = result
        while len(_ANALYSES) > MAX_ANALYSES:
            _ANALYSES.popitem(last=False)
    return result


def report(
    session: Session,
    *,
    network: str | None = None,
    speed_mps: float = DEFAULT_SPEED_MPS,
    scope: str = "urban",
    with_communities: bool = False,
) -> LivabilityReport:
    """The city's, counties' and townships' coverage figures, each summed from its communities."""
    scope = _scope(scope)
    a = analyse(session, network=network, speed_mps=speed_mps)
    city, counties, townships = area_reports(
        a.communities, a.access, catalogue(), scope, a.city, a.names, cov=a.cov
    )
    rows = (
        community_rows(a.communities, a.access, a.facilities, catalogue(), scope, a.names, cov=a.cov)
        if with_communities
        else None
    )
    return LivabilityReport(
        network=a.network,
        network_synthetic=a.network_synthetic,
        facilities=len(a.facilities.id),
        facilities_synthetic=a.synthetic_facilities,
        population_source=POPULATION_SOURCE,
        speed_mps=a.access.speed_mps,
        scope=scope,
        categories=categories(),
        city=city,
        counties=counties,
        townships=townships,
        communities=rows,
    )


def community(
    session: Session, *, code: str, network: str | None = None, speed_mps: float = DEFAULT_SPEED_MPS
) -> CommunityReport:
    a = analyse(session, network=network, speed_mps=speed_mps)
    if code not in a.communities.code:
        raise NotFound(f"no village or community with code {code!r}", field="code")
    [row] = community_rows(
        a.communities,
        a.access,
        a.facilities,
        catalogue(),
        "urban",
        a.names,
        only=[a.communities.code.index(code)],
        cov=a.cov,
    )
    return row


def suggest_sites(
    session: Session,
    *,
    category: str,
    count: int = 5,
    network: str | None = None,
    speed_mps: float = DEFAULT_SPEED_MPS,
    scope: str = "urban",
) -> SiteSuggestion:
    """Where new facilities of a category would newly cover the most population (coverage.py)."""
    found = catalogue().categories.get(category)
    if found is None:
        raise ValidationFailed(
            f"unknown category {category!r}; known: {', '.join(catalogue().categories)}", field="category"
        )
    if not 1 <= count <= 50:
        raise ValidationFailed("count must be from 1 to 50", field="count")
    scope = _scope(scope)
    a = analyse(session, network=network, speed_mps=speed_mps)
    eligible = in_scope(a.communities, scope)
    members = np.flatnonzero(eligible & a.access.on_network)
    base = int(a.communities.population[members].sum())
    covered_now = int(
        a.communities.population[members[a.access.distance_m[category][members] <= found.threshold_m]].sum()
    )
    picks = coverage.suggest_sites(
        a.engine,
        a.access,
        key=category,
        threshold_m=found.threshold_m,
        population=a.communities.population,
        eligible=eligible,
        count=count,
    )
    sites = []
    total = covered_now
    for rank, s in enumerate(picks, start=1):
        total += s.population
        sites.append(
            SiteRead(
                rank=rank,
                node=s.node,
                lon=round(s.lon, 7),
                lat=round(s.lat, 7),
                population=s.population,
                communities=[a.communities.code[i] for i in s.communities],
                covered_after=total,
                rate_after=round(total / base, 6) if base else None,
            )
        )
    return SiteSuggestion(
        network=a.network,
        category=category,
        threshold_m=found.threshold_m,
        scope=scope,
        population_analysed=base,
        population_covered=covered_now,
        rate=round(covered_now / base, 6) if base else None,
        sites=sites,
    )


def report_xlsx(
    session: Session,
    *,
    network: str | None = None,
    speed_mps: float = DEFAULT_SPEED_MPS,
    scope: str = "urban",
    gettext: Callable[[str], str] = lambda s: s,
) -> bytes:
    """The report as a workbook: the city, counties, townships, every community and the gap list (one
    row per missing item of a community in scope), and the categories with their standards."""
    _ = gettext
    r = report(session, network=network, speed_mps=speed_mps, scope=scope, with_communities=True)
    cats = list(catalogue().categories.values())
    area_headers = [
        _("Code"),
        _("Division name"),
        _("Communities"),
        _("Communities analysed"),
        _("Population"),
        _("Population analysed"),
        _("Green within 300 m"),
        _("Park within 500 m"),
        _("Complete living circle"),
        *(f"{c.name_zh} {c.name_en}" for c in cats),
    ]

    def areas(items: list[Any]) -> list[list[Any]]:
        return [
            [
                a.code,
                a.name,
                a.communities,
                a.analysed,
                a.population,
                a.population_analysed,
                a.green_300.rate,
                a.park_500.rate,
                a.complete.rate,
                *(a.categories[c.key].rate for c in cats),
            ]
            for a in items
        ]

    rows = r.communities or []
    community_headers = [
        _("Code"),
        _("Division name"),
        _("Township"),
        _("County"),
        _("Urban community"),
        _("In scope"),
        _("Population"),
        _("On the network"),
        _("Green within 300 m"),
        _("Nearest green (m)"),
        _("Park within 500 m"),
        _("Nearest park (m)"),
        _("Missing items"),
        *(f"{c.name_zh} {c.name_en} (m)" for c in cats),
    ]
    names = {c.key: c.name_zh for c in cats} | {"green_300": "300米见绿", "park_500": "500米见园"}
    community_table = [
        [
            c.code,
            c.name,
            c.township,
            c.county,
            c.urban,
            c.in_scope,
            c.population,
            c.on_network,
            c.green_300,
            c.green_m,
            c.park_500,
            c.park_m,
            "、".join(names[m] for m in c.missing),
            *(c.categories[k.key].distance_m for k in cats),
        ]
        for c in rows
    ]
    gaps = []
    rules = {f"{g.key}_{g.within_m:g}": g for g in catalogue().green_rules}
    for c in rows:
        for m in c.missing if c.in_scope else []:
            if m in rules:
                nearest, threshold = (c.green_m if rules[m].key == "green" else c.park_m), rules[m].within_m
            else:
                nearest, threshold = c.categories[m].distance_m, catalogue().categories[m].threshold_m
            gaps.append([c.code, c.name, c.township, c.county, c.population, m, names[m], nearest, threshold])
    gap_headers = [
        _("Code"),
        _("Division name"),
        _("Township"),
        _("County"),
        _("Population"),
        _("Missing item"),
        _("Missing item name"),
        _("Nearest (m)"),
        _("Threshold (m)"),
    ]
    category_headers = [
        _("Category key"),
        _("Chinese name"),
        _("English name"),
        _("Category group"),
        _("Threshold (m)"),
        _("Walking minutes"),
        _("Standard level"),
        _("Source standard"),
    ]
    category_rows = [
        [c.key, c.name_zh, c.name_en, c.group, c.threshold_m, c.minutes, c.level, c.standard] for c in cats
    ]
    return sheets_bytes(
        [
            (_("Whole city"), area_headers, areas([r.city])),
            (_("Counties"), area_headers, areas(r.counties)),
            (_("Townships and streets"), area_headers, areas(r.townships)),
            (_("Communities and villages"), community_headers, community_table),
            (_("Gap list"), gap_headers, gaps),
            (_("Facility categories"), category_headers, category_rows),
        ]
    )


def map_layer(
    session: Session, *, key: str, network: str | None = None, speed_mps: float = DEFAULT_SPEED_MPS
) -> dict[str, Any]:
    """What the map draws for a category (or the "green_300" / "park_500" rule): every community with its
    distance and whether it is covered, and the facilities (with entrances) of the category."""
    cat = catalogue()
    rules = {f"{r.key}_{r.within_m:g}": r for r in cat.green_rules}
    if key in cat.categories:
        distance_key, threshold = key, cat.categories[key].threshold_m
        shown = [key]
    elif key in rules:
        rule = rules[key]
        distance_key, threshold = rule.key, rule.within_m
        shown = [c.key for c in cat.categories.values() if c.green]
    else:
        raise ValidationFailed(
            f"unknown layer {key!r}; give a category or one of {', '.join(rules)}", field="category"
        )
    a = analyse(session, network=network, speed_mps=speed_mps)
    c = a.communities
    distance = a.access.distance_m[distance_key]
    communities = [
        {
            "code": c.code[i],
            "name": c.name[i],
            "lon": round(float(c.lon[i]), 6),
            "lat": round(float(c.lat[i]), 6),
            "population": int(c.population[i]),
            "urban": bool(c.urban[i]),
            "on_network": bool(a.access.on_network[i]),
            "distance_m": round(float(distance[i]), 1) if np.isfinite(distance[i]) else None,
            "covered": bool(a.access.on_network[i] and distance[i] <= threshold),
        }
        for i in range(len(c))
    ]
    facilities = [
        f.model_dump()
        for f in list_facilities(session)
        if f.category in shown and (key in cat.categories or (f.area_m2 or 0) >= rules[key].min_area_m2)
    ]
    return {
        "key": key,
        "threshold_m": threshold,
        "network": a.network,
        "communities": communities,
        "facilities": facilities,
    }
