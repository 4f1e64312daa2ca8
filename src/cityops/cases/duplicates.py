"""Possible duplicates: open cases of the same type and category, reported nearby within a few days,
with similar text, ranked by a score.

Text similarity uses character bigrams, not jieba word segmentation: reports are short and full of
place names, shop names and local words a segmentation dictionary splits unpredictably, while
overlapping bigrams match them without a dictionary. Bigrams need no extra dependency, no
dictionary loaded at start-up (jieba takes about a second and tens of MB), and give the same
answer on every machine.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases import service
from cityops.cases import types as case_types
from cityops.cases.models import Case
from cityops.cases.workflow import FINAL_STATES
from cityops.core.auth.models import User
from cityops.core.auth.scope import scope_filter
from cityops.core.db import utcnow
from cityops.core.geo import distance_km

RADIUS_M = 300.0
WINDOW_DAYS = 7
# Below this text similarity a nearby case of the same category is a different problem.
MIN_SIMILARITY = 0.2
# The title says what the problem is; descriptions carry boilerplate ("请尽快处理"), so they count less.
TITLE_WEIGHT = 0.6
# Text matters most; of two equally similar reports, the nearer ranks first.
TEXT_WEIGHT = 0.8
MAX_CANDIDATES = 200
METRES_PER_DEGREE = 111_320.0
_WORD = re.compile(r"[\u3400-\u9fff]+|[0-9a-z]+")


class SimilarCase(BaseModel):
    id: int
    number: str
    title: str
    status: str
    created_at: datetime
    distance_m: float
    similarity: float
    score: float
    url: str


def bigrams(text: str) -> set[str]:
    """Character bigrams of each run of Chinese characters; latin words and numbers whole."""
    grams: set[str] = set()
    for run in _WORD.findall(text.lower()):
        if run[0].isascii() or len(run) == 1:
            grams.add(run)
        else:
            grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def similarity(title_a: str, text_a: str, title_b: str, text_b: str) -> float:
    """0..1: the title's bigram overlap weighted with the whole text's."""
    whole = dice(bigrams(title_a + " " + text_a), bigrams(title_b + " " + text_b))
    return TITLE_WEIGHT * dice(bigrams(title_a), bigrams(title_b)) + (1 - TITLE_WEIGHT) * whole


def candidates(
    session: Session,
    *,
    viewer: User,
    type_code: str,
    category: str,
    lon: float,
    lat: float,
    title: str,
    description: str = "",
    at: datetime | None = None,
    exclude_id: int | None = None,
    radius_m: float = RADIUS_M,
    window_days: int = WINDOW_DAYS,
    limit: int = 10,
) -> list[SimilarCase]:
    """Open cases in the viewer's scope that may report the same problem, best first."""
    registry = case_types.registry()
    registry.get(type_code).category(category)
    at = at or utcnow()
    window = timedelta(days=window_days)
    dlat = radius_m / METRES_PER_DEGREE
    dlon = radius_m / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    query = (
        select(Case)
        .where(
            Case.type_code == type_code,
            Case.category == category,
            Case.status.not_in(FINAL_STATES),
            Case.created_at >= at - window,
            Case.created_at <= at + window,
            Case.lat.between(lat - dlat, lat + dlat),
            Case.lon.between(lon - dlon, lon + dlon),
            scope_filter(viewer, Case.division_code, Case.org_unit_id, Case.reporter_user_id),
        )
        .order_by(Case.created_at.desc())
        .limit(MAX_CANDIDATES)
    )
    if exclude_id is not None:
        query = query.where(Case.id != exclude_id)
    found: list[SimilarCase] = []
    for case in session.scalars(query):
        metres = distance_km(lon, lat, case.lon, case.lat) * 1000
        if metres > radius_m:
            continue
        text = similarity(title, description, case.title, case.description)
        if text < MIN_SIMILARITY:
            continue
        score = TEXT_WEIGHT * text + (1 - TEXT_WEIGHT) * (1 - metres / radius_m)
        found.append(
            SimilarCase(
                id=case.id,
                number=case.number,
                title=case.title,
                status=case.status,
                created_at=case.created_at,
                distance_m=round(metres, 1),
                similarity=round(text, 3),
                score=round(score, 3),
                url=f"/cases/{case.id}",
            )
        )
    found.sort(key=lambda c: (-c.score, c.id))
    return found[:limit]


def similar_to_case(session: Session, *, viewer: User, case_id: int, limit: int = 10) -> list[SimilarCase]:
    """Possible duplicates of a case in the viewer's scope, around the time it was reported."""
    case = service.visible_case(session, viewer=viewer, case_id=case_id)
    return candidates(
        session,
        viewer=viewer,
        type_code=case.type_code,
        category=case.category,
        lon=case.lon,
        lat=case.lat,
        title=case.title,
        description=case.description,
        at=case.created_at,
        exclude_id=case.id,
        limit=limit,
    )
