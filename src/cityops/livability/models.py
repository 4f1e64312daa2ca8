"""Walking networks: one row per named network, its nodes and its edges.

Nodes and edges are numbered 0..n-1 within their network, so a network loads straight into the arrays
the accessibility engine works on (engine.StreetNetwork). An edge is (u, v, length in metres); its
shape is stored (WKB LineString, WGS84, both end nodes included) only when it is not the straight line
between its nodes: an OSM way between two junctions usually bends, a synthetic street does not. The
length is measured on the shape in the network's metric CRS (`crs`, a local transverse Mercator), and
the engine projects with the same CRS, so snapping and lengths agree."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow


class StreetNetwork(Base):
    __tablename__ = "livability_networks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # The imported file's name, or "synthetic" for the demo's generated network.
    source: Mapped[str] = mapped_column(String(300))
    synthetic: Mapped[bool] = mapped_column(default=False)
    # PROJ string of the metric CRS the lengths were measured in.
    crs: Mapped[str] = mapped_column(String(200))
    node_count: Mapped[int] = mapped_column(Integer)
    edge_count: Mapped[int] = mapped_column(Integer)
    length_km: Mapped[float] = mapped_column(Float)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class _NetworkPart:
    """A node or edge: numbered 0..n-1 within its network."""

    network_id: Mapped[int] = mapped_column(
        ForeignKey("livability_networks.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class NetworkNode(_NetworkPart, Base):
    __tablename__ = "livability_nodes"

    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    osm_id: Mapped[int | None] = mapped_column(BigInteger, default=None)


class NetworkEdge(_NetworkPart, Base):
    __tablename__ = "livability_edges"

    u: Mapped[int] = mapped_column(Integer)
    v: Mapped[int] = mapped_column(Integer)
    length_m: Mapped[float] = mapped_column(Float)
    geometry: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class Facility(Base):
    """A facility of the living circle (a kindergarten, a market, a park ...): where it is, and for green
    spaces their area (m²) and area class (categories.yaml). Green spaces are reached at their entrances
    (FacilityEntrance); one without entrances is open on every side and reached at its location."""

    __tablename__ = "livability_facilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The identifier in the file it came from (a POI id, a register number): unique when given.
    source_id: Mapped[str | None] = mapped_column(String(80), unique=True, default=None)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    area_m2: Mapped[float | None] = mapped_column(Float, default=None)
    area_class: Mapped[str | None] = mapped_column(String(20), default=None)
    # The imported file's name, or "synthetic" for the demo's facilities.
    source: Mapped[str] = mapped_column(String(300))
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FacilityEntrance(Base):
    __tablename__ = "livability_entrances"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("livability_facilities.id", ondelete="CASCADE"),
                                             index=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
