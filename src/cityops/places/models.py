"""Administrative divisions (city -> county -> township -> village) and first-level grids.

All coordinates are WGS84 longitude/latitude. Geometry is stored as WKB so the same schema works on
SQLite and PostgreSQL; `source_datum` records the datum the geometry was delivered in before it was
converted (Chinese boundary data usually comes in GCJ-02).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

LEVELS = ("city", "county", "township", "village")
DATUMS = ("WGS84", "GCJ-02")


class _Shape:
    """Columns shared by divisions and grids: geometry plus what the lookup and the map need without
    decoding it (centroid, bounding box, area)."""

    geometry: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    centroid_lon: Mapped[float | None] = mapped_column(default=None)
    centroid_lat: Mapped[float | None] = mapped_column(default=None)
    min_lon: Mapped[float | None] = mapped_column(default=None)
    min_lat: Mapped[float | None] = mapped_column(default=None)
    max_lon: Mapped[float | None] = mapped_column(default=None)
    max_lat: Mapped[float | None] = mapped_column(default=None)
    area_km2: Mapped[float | None] = mapped_column(default=None)
    population: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Division(_Shape, Base):
    __tablename__ = "divisions"
    __table_args__ = (
        CheckConstraint("level IN ('city', 'county', 'township', 'village')", name="level"),
        CheckConstraint("source_datum IN ('WGS84', 'GCJ-02')", name="source_datum"),
    )

    # NBS code in its natural length: 6 digits for city/county, 9 for township, 12 for village.
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    name_en: Mapped[str | None] = mapped_column(String(120), default=None)
    level: Mapped[str] = mapped_column(String(10), index=True)
    # The top division of the installation (the city) has no parent row.
    parent_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("divisions.code"), index=True, default=None
    )
    geometry_synthetic: Mapped[bool] = mapped_column(default=True)
    geometry_source: Mapped[str] = mapped_column(String(200), default="synthetic")
    source_datum: Mapped[str] = mapped_column(String(8), default="WGS84")


class Grid(_Shape, Base):
    """A first-level grid (一级网格): the unit a grid worker covers, inside one village/community."""

    __tablename__ = "grids"

    # The village code followed by 3 digits.
    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    village_code: Mapped[str] = mapped_column(String(12), ForeignKey("divisions.code"), index=True)
    households: Mapped[int | None] = mapped_column(Integer, default=None)
    synthetic: Mapped[bool] = mapped_column(default=True)
    geometry_source: Mapped[str] = mapped_column(String(200), default="synthetic")
    source_datum: Mapped[str] = mapped_column(String(8), default="WGS84")


class PlacesRevision(Base):
    """One row counting changes to places data, so every process (server, CLI import) can tell
    cheaply whether its cached lookup index and map layers are stale."""

    __tablename__ = "places_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
