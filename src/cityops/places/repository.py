"""All queries on divisions and grids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from cityops.core.db import utcnow
from cityops.places.models import Division, Grid, PlacesRevision

Bbox = tuple[float, float, float, float]
# Where the service keeps per-session derived data (the division tree); dropped on every change.
SESSION_CACHE_KEY = "cityops.places.hierarchy"


def revision(session: Session) -> int:
    value = session.scalar(select(PlacesRevision.revision).where(PlacesRevision.id == 1))
    return int(value or 0)


def bump_revision(session: Session) -> int:
    """Count a change to places data; caches in every process compare against this number."""
    current = session.get(PlacesRevision, 1)
    if current is None:
        current = PlacesRevision(id=1, revision=0)
        session.add(current)
    current.revision += 1
    current.changed_at = utcnow()
    session.info.pop(SESSION_CACHE_KEY, None)
    session.flush()
    return current.revision


def get_division(session: Session, code: str) -> Division | None:
    return session.get(Division, code)


def get_grid(session: Session, code: str) -> Grid | None:
    return session.get(Grid, code)


def divisions_by_code(session: Session, codes: Sequence[str]) -> dict[str, Division]:
    if not codes:
        return {}
    rows = session.scalars(select(Division).where(Division.code.in_(list(codes))))
    return {d.code: d for d in rows}


def grids_by_code(session: Session, codes: Sequence[str]) -> dict[str, Grid]:
    if not codes:
        return {}
    return {g.code: g for g in session.scalars(select(Grid).where(Grid.code.in_(list(codes))))}


def children(session: Session, code: str) -> list[Division]:
    return list(session.scalars(select(Division).where(Division.parent_code == code).order_by(Division.code)))


def grids_of(session: Session, village_code: str) -> list[Grid]:
    return list(session.scalars(select(Grid).where(Grid.village_code == village_code).order_by(Grid.code)))


def count_by_level(session: Session) -> dict[str, int]:
    rows = session.execute(select(Division.level, func.count()).group_by(Division.level)).all()
    counts = {str(level): int(n) for level, n in rows}
    counts["grid"] = int(session.scalar(select(func.count()).select_from(Grid)) or 0)
    return counts


def hierarchy(session: Session) -> list[Any]:
    """(code, name, name_en, level, parent_code, population, area_km2, synthetic) of every division."""
    return list(
        session.execute(
            select(
                Division.code,
                Division.name,
                Division.name_en,
                Division.level,
                Division.parent_code,
                Division.population,
                Division.area_km2,
                Division.geometry_synthetic,
            ).order_by(Division.code)
        ).all()
    )


def grid_villages(session: Session) -> list[Any]:
    """(village_code, count) for every village that has grids."""
    return list(session.execute(select(Grid.village_code, func.count()).group_by(Grid.village_code)).all())


def _text_filter(q: str, *columns: Any) -> Any:
    """Code prefix, or a name containing the text, or pinyin with or without spaces."""
    clauses = [columns[0].startswith(q, autoescape=True), columns[1].contains(q, autoescape=True)]
    folded = q.replace(" ", "").lower()
    if len(columns) > 2 and folded.isascii() and folded.isalpha():
        clauses.append(func.replace(func.lower(func.coalesce(columns[2], "")), " ", "").contains(folded))
    return or_(*clauses)


def list_divisions(
    session: Session, *, level: str | None, parent_code: str | None, q: str | None, limit: int, offset: int
) -> tuple[list[Division], int]:
    query = select(Division)
    if level:
        query = query.where(Division.level == level)
    if parent_code:
        query = query.where(Division.parent_code == parent_code)
    if q:
        query = query.where(_text_filter(q, Division.code, Division.name, Division.name_en))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    items = list(session.scalars(query.order_by(Division.code).limit(limit).offset(offset)))
    return items, total


def search_divisions(session: Session, q: str, limit: int) -> list[Division]:
    query = select(Division).where(_text_filter(q, Division.code, Division.name, Division.name_en))
    # Higher levels first: a search for 淇 should show 淇县 before villages named 淇…
    order = func.length(Division.code)
    return list(session.scalars(query.order_by(order, Division.code).limit(limit)))


def search_grids(session: Session, q: str, limit: int) -> list[Grid]:
    query = select(Grid).where(_text_filter(q, Grid.code, Grid.name))
    return list(session.scalars(query.order_by(Grid.code).limit(limit)))


def division_shapes(
    session: Session, *, level: str, codes: Sequence[str] | None = None, bbox: Bbox | None = None
) -> list[Any]:
    query = select(
        Division.code,
        Division.name,
        Division.name_en,
        Division.level,
        Division.parent_code,
        Division.geometry_synthetic,
        Division.geometry,
    ).where(Division.level == level, Division.geometry.is_not(None))
    if codes is not None:
        query = query.where(Division.code.in_(list(codes)))
    if bbox is not None:
        query = query.where(
            Division.max_lon >= bbox[0],
            Division.min_lon <= bbox[2],
            Division.max_lat >= bbox[1],
            Division.min_lat <= bbox[3],
        )
    return list(session.execute(query.order_by(Division.code)).all())


def grid_shapes(
    session: Session,
    *,
    village_codes: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
    bbox: Bbox | None = None,
) -> list[Any]:
    query = select(Grid.code, Grid.name, Grid.village_code, Grid.synthetic, Grid.geometry).where(
        Grid.geometry.is_not(None)
    )
    if village_codes is not None:
        query = query.where(Grid.village_code.in_(list(village_codes)))
    if codes is not None:
        query = query.where(Grid.code.in_(list(codes)))
    if bbox is not None:
        query = query.where(
            Grid.max_lon >= bbox[0], Grid.min_lon <= bbox[2], Grid.max_lat >= bbox[1], Grid.min_lat <= bbox[3]
        )
    return list(session.execute(query.order_by(Grid.code)).all())


def leaf_grids(session: Session) -> list[Any]:
    """(code, name, village_code, geometry) of every grid with geometry: what the point lookup indexes."""
    return list(
        session.execute(
            select(Grid.code, Grid.name, Grid.village_code, Grid.geometry)
            .where(Grid.geometry.is_not(None))
            .order_by(Grid.code)
        ).all()
    )


def delete_grids(session: Session, codes: Sequence[str]) -> int:
    if not codes:
        return 0
    objs = list(session.scalars(select(Grid).where(Grid.code.in_(list(codes)))))
    for obj in objs:
        session.delete(obj)
    session.flush()
    return len(objs)


def set_geometry_fields(
    session: Session, model: type[Division] | type[Grid], code: str, values: dict[str, Any]
) -> None:
    session.execute(update(model).where(model.code == code).values(**values))
