"""The case engine on PostgreSQL: the demo seed through the service, numbering and optimistic locking."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from cityops import all_models
from cityops.cases import service
from cityops.cases.demo import COUNTS
from cityops.cases.models import Case, CaseEvent
from cityops.cases.schemas import ActionRequest
from cityops.core.db import Base, Database
from cityops.core.errors import Conflict
from cityops.core.seeding import seed


@pytest.mark.postgres
def test_seed_numbers_and_stale_versions_on_postgres(pg_url: str, tmp_path: Path) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        seed(db, scale="small", seed=7, quiet=True, files_root=tmp_path / "files")
        with db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Case)) >= COUNTS["small"]
            numbers = session.scalars(select(Case.number)).all()
            assert len(set(numbers)) == len(numbers)
            open_case = session.scalars(select(Case).where(Case.status == "reported")
                                        .order_by(Case.id)).first()
            assert open_case is not None
            case_id, version = open_case.id, open_case.version
        with db.sessions() as first, db.sessions() as second:
            assert second.get(Case, case_id) is not None
            service.act(first, actor=None, case_id=case_id, action="accept",
                        body=ActionRequest(version=version))
            first.commit()
            with pytest.raises(Conflict, match="stale version"):
                service.act(second, actor=None, case_id=case_id, action="reject",
                            body=ActionRequest(version=version, reason="重复"))
        with db.sessions() as session:
            stored = session.get(Case, case_id)
            assert stored is not None and stored.status == "accepted" and stored.version == version + 1
            assert session.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) == version + 1
    finally:
        db.dispose()
