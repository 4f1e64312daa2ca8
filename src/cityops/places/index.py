"""Point -> grid lookup, vectorised.

A raster of small square cells covers the city's bounding box. A cell that no polygon edge crosses
lies entirely inside one grid (or entirely outside the city), so points in it are answered by an
array lookup. Cells that an edge crosses are marked, and points falling in them are resolved exactly
with shapely (STRtree query + point-in-polygon). The answer is therefore the same as testing every
polygon, only much faster: most points never touch a polygon.

Building the raster is vectorised too: polygons are filled by scanline at cell centres (even-odd
rule over all rings) and edges are traced through every cell they cross (supercover).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

NO_MATCH = -1
_BOUNDARY = -2
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Leaf:
    """What a leaf polygon (normally a grid) answers: its code and the codes above it."""

    grid_code: str | None
    village_code: str | None
    township_code: str | None
    county_code: str | None


class PlaceIndex:
    def __init__(
        self,
        polygons: Sequence[Any],
        leaves: Sequence[Leaf],
        *,
        target_cells: int = 3_000_000,
        revision: int = 0,
        names: dict[str, str] | None = None,
    ) -> None:
        if len(polygons) != len(leaves):
            raise ValueError("one leaf description per polygon")
        self.polygons = np.asarray(polygons, dtype=object)
        self.leaves = list(leaves)
        self.revision = revision
        self.names = names or {}  # code -> name, for answers
        self.tree = shapely.STRtree(self.polygons)
        shapely.prepare(self.polygons)
        if len(self.polygons) == 0:
            self.x0 = self.y0 = 0.0
            self.cell = 1.0
            self.raster = np.full((1, 1), NO_MATCH, dtype=np.int32)
            return
        minx, miny, maxx, maxy = shapely.total_bounds(self.polygons)
        span_x, span_y = maxx - minx, maxy - miny
        self.cell = max(math.sqrt(max(span_x * span_y, 1e-12) / target_cells), 1e-7)
        # One spare cell round the edge, so every polygon edge lies strictly inside the raster.
        self.x0 = minx - self.cell
        self.y0 = miny - self.cell
        nx = math.ceil(span_x / self.cell) + 3
        ny = math.ceil(span_y / self.cell) + 3
        self.raster = self._build(nx, ny)

    # --- building ---------------------------------------------------------------------------------

    def _segments(self) -> tuple[FloatArray, FloatArray, IntArray]:
        parts, part_owner = shapely.get_parts(self.polygons, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
        same = coord_ring[:-1] == coord_ring[1:]
        start = coords[:-1][same]
        end = coords[1:][same]
        owner = part_owner[ring_part[coord_ring[:-1][same]]]
        return start, end, owner.astype(np.int64)

    def _build(self, nx: int, ny: int) -> npt.NDArray[np.int32]:
        a, b, owner = self._segments()
        cs = self.cell
        # Scanline fill at cell centres: rows whose centre y is in [min y, max y) of each edge.
        ya, yb = a[:, 1], b[:, 1]
        lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
        r0 = np.ceil((lo - self.y0) / cs - 0.5).astype(np.int64)
        r1 = np.ceil((hi - self.y0) / cs - 0.5).astype(np.int64)
        counts = np.maximum(r1 - r0, 0)
        seg = np.repeat(np.arange(len(a)), counts)
        offsets = np.arange(len(seg)) - np.repeat(np.cumsum(counts) - counts, counts)
        row = r0[seg] + offsets
        yc = self.y0 + (row + 0.5) * cs
        x = a[seg, 0] + (yc - a[seg, 1]) * (b[seg, 0] - a[seg, 0]) / (b[seg, 1] - a[seg, 1])
        leaf = owner[seg]
        order = np.lexsort((x, row, leaf))
        x, row, leaf = x[order], row[order], leaf[order]
        if len(x) % 2 or np.any(leaf[0::2] != leaf[1::2]) or np.any(row[0::2] != row[1::2]):
            raise ValueError("polygon rings are not closed")
        c0 = np.clip(np.ceil((x[0::2] - self.x0) / cs - 0.5), 0, nx).astype(np.int64)
        c1 = np.clip(np.ceil((x[1::2] - self.x0) / cs - 0.5), 0, nx).astype(np.int64)
        r = row[0::2]
        width = nx + 1
        label = (leaf[0::2] + 1).astype(np.float64)
        diff = np.bincount(r * width + c0, weights=label, minlength=ny * width)
        diff -= np.bincount(r * width + c1, weights=label, minlength=ny * width)
        filled = np.cumsum(diff.reshape(ny, width), axis=1)[:, :nx]
        raster = np.rint(filled).astype(np.int32) - 1  # 0 (outside) -> NO_MATCH, k -> leaf k-1

        # Supercover: every cell an edge passes through, from the pieces between grid-line crossings.
        gxa, gya = (a[:, 0] - self.x0) / cs, (a[:, 1] - self.y0) / cs
        gxb, gyb = (b[:, 0] - self.x0) / cs, (b[:, 1] - self.y0) / cs
        ts = [np.zeros(len(a)), np.ones(len(a))]
        segs = [np.arange(len(a)), np.arange(len(a))]
        for ga, gb in ((gxa, gxb), (gya, gyb)):
            k0 = np.floor(np.minimum(ga, gb)) + 1
            n = np.maximum(np.ceil(np.maximum(ga, gb)) - k0, 0).astype(np.int64)
            s = np.repeat(np.arange(len(a)), n)
            k = np.repeat(k0, n) + (np.arange(len(s)) - np.repeat(np.cumsum(n) - n, n))
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (k - ga[s]) / (gb[s] - ga[s])
            ts.append(np.clip(t, 0.0, 1.0))
            segs.append(s)
        t_all = np.concatenate(ts)
        s_all = np.concatenate(segs)
        order = np.lexsort((t_all, s_all))
        t_all, s_all = t_all[order], s_all[order]
        same = s_all[:-1] == s_all[1:]
        tm = ((t_all[:-1] + t_all[1:]) / 2.0)[same]
        sm = s_all[:-1][same]
        px = gxa[sm] + tm * (gxb[sm] - gxa[sm])
        py = gya[sm] + tm * (gyb[sm] - gya[sm])
        cols = np.concatenate([np.floor(px), np.floor(gxa)]).astype(np.int64)
        rows = np.concatenate([np.floor(py), np.floor(gya)]).astype(np.int64)
        ok = (cols >= 0) & (cols < nx) & (rows >= 0) & (rows < ny)
        raster[rows[ok], cols[ok]] = _BOUNDARY
        return raster

    # --- querying ---------------------------------------------------------------------------------

    @property
    def boundary_fraction(self) -> float:
        """Share of raster cells inside the city that need the exact test (for the benchmark)."""
        inside = int(np.count_nonzero(self.raster != NO_MATCH))
        return float(np.count_nonzero(self.raster == _BOUNDARY)) / max(inside, 1)

    @property
    def nbytes(self) -> int:
        return int(self.raster.nbytes)

    def locate(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> IntArray:
        """Leaf index for each point, NO_MATCH (-1) where no polygon holds it. Coordinates must be
        finite WGS84 degrees; validation is the caller's job (see service.validate_coordinates)."""
        x = np.asarray(lon, dtype=np.float64).ravel()
        y = np.asarray(lat, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError("lon and lat must have the same length")
        ny, nx = self.raster.shape
        fx = (x - self.x0) / self.cell
        fy = (y - self.y0) / self.cell
        inside = (fx >= 0) & (fx < nx) & (fy >= 0) & (fy < ny)
        result = np.full(x.shape, NO_MATCH, dtype=np.int64)
        if inside.all():
            result = self.raster[fy.astype(np.int64), fx.astype(np.int64)].astype(np.int64)
        else:
            result[inside] = self.raster[fy[inside].astype(np.int64), fx[inside].astype(np.int64)]
        exact = np.flatnonzero(result == _BOUNDARY)
        if len(exact):
            result[exact] = self._exact(x[exact], y[exact])
        return result

    def _exact(self, x: FloatArray, y: FloatArray) -> IntArray:
        """Exact point-in-polygon for points in boundary cells; on a shared edge the lowest index wins."""
        points = shapely.points(x, y)
        point_idx, poly_idx = self.tree.query(points, predicate="intersects")
        out = np.full(len(x), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(out, point_idx, poly_idx.astype(np.int64))
        out[out == np.iinfo(np.int64).max] = NO_MATCH
        return out
