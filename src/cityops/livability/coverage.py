"""Walking access of every community to every facility category, and where new facilities would serve
the most people. Pure computation on the engine; the service loads the records and stores nothing here.

Facilities are reached at their access points: the entrances of a green space (a park is reached at its
nearest gate, never at its centre), or the location of anything else and of a green space without
entrances. Per community and category: the distance to the nearest facility (one multi-source run per
category over all its access points) and how many facilities lie within each walking circle (a park
with three gates inside the circle counts once). The green-access rules (categories.yaml,
"300米见绿、500米见园") are two more "categories": the access points of every green space of at least the
rule's area.

Site selection (greedy maximal coverage): the candidates are the street network's nodes within the
category's threshold of a community that lacks it (a facility on a node is reached exactly as the node
is: it snaps onto it); each candidate covers the communities within the threshold of it. The greedy
algorithm picks the candidate covering the most population not yet covered, marks those communities
covered, and repeats: each pick's figure is the population it adds to what the picks before it covered
(its promise). Greedy is within 1 - 1/e (63 %) of the best set of k sites (Nemhauser, Wolsey and Fisher
1978) and exact for the first pick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_array

from cityops.livability.categories import Catalogue
from cityops.livability.engine import (
    LIVING_CIRCLES_M,
    Attachment,
    BoolArray,
    Engine,
    FloatArray,
    IntArray,
    Points,
)

GREEN_KEYS = ("green", "park")


@dataclass(frozen=True)
class FacilitySet:
    """Facilities as arrays (index i is facility i), with the entrances of green spaces."""

    id: IntArray
    category: list[str]
    lon: FloatArray
    lat: FloatArray
    area_m2: FloatArray  # nan where none
    entrance_of: IntArray  # the facility (index) of each entrance
    entrance_lon: FloatArray
    entrance_lat: FloatArray

    def access_points(self) -> tuple[FloatArray, FloatArray, IntArray]:
        """(lon, lat, facility index) of every access point: the entrances of facilities that have them,
        the location of the others."""
        has_gate = np.zeros(len(self.id), dtype=bool)
        has_gate[self.entrance_of] = True
        plain = np.flatnonzero(~has_gate)
        return (
            np.concatenate([self.lon[plain], self.entrance_lon]),
            np.concatenate([self.lat[plain], self.entrance_lat]),
            np.concatenate([plain, self.entrance_of]).astype(np.int64),
        )


@dataclass(eq=False)
class Access:
    """Per community (rows) and key (category keys, then "green" and "park"): the walking distance to
    the nearest facility (inf: none reachable, or the community is off the network) and which facility
    (index, -1: none); counts within each walking circle per category."""

    distance_m: dict[str, FloatArray]
    nearest: dict[str, IntArray]
    counts: dict[str, dict[int, IntArray]]
    on_network: BoolArray
    access_m: FloatArray
    speed_mps: float
    circles_m: dict[int, float]
    # Kept for site selection on the same snapped graph.
    attachment: Attachment
    origin_vertex: IntArray


def measure(
    engine: Engine,
    lon: FloatArray,
    lat: FloatArray,
    facilities: FacilitySet,
    catalogue: Catalogue,
    *,
    circles_m: Mapping[int, float] = LIVING_CIRCLES_M,
) -> Access:
    plon, plat, pfac = facilities.access_points()
    att = engine.attach([Points.at(lon, lat), Points.at(plon, plat)])
    o_vertex, p_vertex = att.vertex
    on = o_vertex >= 0
    category = np.array(facilities.category, dtype=object)
    p_category = category[pfac] if len(pfac) else np.zeros(0, dtype=object)
    area = facilities.area_m2[pfac] if len(pfac) else np.zeros(0)
    green = np.array([catalogue.categories[c].green for c in p_category], dtype=bool)
    subsets: dict[str, IntArray] = {key: np.flatnonzero(p_category == key) for key in catalogue.categories}
    for rule in catalogue.green_rules:
        subsets[rule.key] = np.flatnonzero(green & (np.nan_to_num(area, nan=0.0) >= rule.min_area_m2))
    distance: dict[str, FloatArray] = {}
    nearest: dict[str, IntArray] = {}
    safe = np.maximum(o_vertex, 0)
    for key, points in subsets.items():
        dist, which = engine.nearest(att, p_vertex[points])
        distance[key] = np.where(on, dist[safe], np.inf)
        found = np.where(on, which[safe], -1)
        nearest[key] = np.where(found >= 0, pfac[points][np.maximum(found, 0)], -1) if len(points) else found
    counts = _counts(engine, att, o_vertex, p_vertex, pfac, facilities, list(catalogue.categories), circles_m)
    snapped = att.snapped[0]
    access = snapped.access_m if snapped is not None else np.zeros(len(lon))
    return Access(distance, nearest, counts, on, access, engine.speed_mps, dict(circles_m), att, o_vertex)


def _counts(
    engine: Engine,
    att: Attachment,
    o_vertex: IntArray,
    p_vertex: IntArray,
    pfac: IntArray,
    facilities: FacilitySet,
    keys: list[str],
    circles_m: Mapping[int, float],
) -> dict[str, dict[int, IntArray]]:
    """How many facilities of each category are within each circle of each community: from the pairs
    (community, access point) within the largest circle, the nearest access point of each facility."""
    n = len(o_vertex)
    out = {k: {m: np.zeros(n, dtype=np.int64) for m in circles_m} for k in keys}
    if not circles_m or not len(pfac):
        return out
    pairs = engine.pairs_on(att, o_vertex, p_vertex, float(max(circles_m.values())))
    if not len(pairs.source):
        return out
    facility = pfac[pairs.target]
    # The nearest access point of each (community, facility).
    key = pairs.source * len(facilities.id) + facility
    order = np.lexsort((pairs.distance_m, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = order[first]
    origin, dist = pairs.source[pick], pairs.distance_m[pick]
    index = {k: i for i, k in enumerate(keys)}
    cat = np.array(
        [index[c] for c in np.array(facilities.category, dtype=object)[facility[pick]]], dtype=np.int64
    )
    for minutes, radius in circles_m.items():
        hit = dist <= radius
        table = np.bincount(origin[hit] * len(keys) + cat[hit], minlength=n * len(keys)).reshape(n, len(keys))
        for k, i in index.items():
            out[k][minutes] = table[:, i].astype(np.int64)
    return out


@dataclass(frozen=True)
class Site:
    """A suggested site: a network node, the communities it would newly cover and their population."""

    node: int
    lon: float
    lat: float
    communities: IntArray
    population: int


def suggest_sites(
    engine: Engine,
    access: Access,
    *,
    key: str,
    threshold_m: float,
    population: IntArray,
    eligible: BoolArray,
    count: int,
) -> list[Site]:
    """Up to `count` sites for a new facility of `key`, greedily by the population newly covered (see
    the module's docstring); `eligible` communities are those the figure counts (the scope)."""
    gap = eligible & access.on_network & ~(access.distance_m[key] <= threshold_m) & (population > 0)
    communities = np.flatnonzero(gap)
    if not len(communities) or count <= 0:
        return []
    nodes = np.arange(engine.network.node_count, dtype=np.int64)
    pairs = engine.pairs_on(access.attachment, access.origin_vertex[communities], nodes, threshold_m)
    if not len(pairs.source):
        return []
    candidates, column = np.unique(pairs.target, return_inverse=True)
    cover = coo_array(
        (np.ones(len(column)), (column, pairs.source)), shape=(len(candidates), len(communities))
    ).tocsr()
    cover.data[:] = 1.0  # a community reached twice (two legs) still counts once
    weight = population[communities].astype(np.float64)
    left = weight.copy()
    sites: list[Site] = []
    for _ in range(count):
        gain = cover @ left
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        row = cover[[best]].toarray()[0] > 0
        newly = np.flatnonzero(row & (left > 0))
        node = int(candidates[best])
        sites.append(
            Site(
                node,
                float(engine.network.lon[node]),
                float(engine.network.lat[node]),
                communities[newly],
                round(float(left[newly].sum())),
            )
        )
        left[newly] = 0.0
    return sites
