"""The entity register on PostgreSQL: the demo's bulk writes, an import and its re-import, the list's
filters and scope."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cityops import all_models
from cityops.core.auth.models import User
from cityops.core.db import Base, Database
from cityops.core.seeding import seed
from cityops.credit import codes, demo, service
from cityops.credit.models import Entity
from cityops.places import service as places_service
from tests.credit.helpers import new_code, register_csv


@pytest.mark.postgres
def test_the_register_on_postgres(pg_url: str, tmp_path: Path) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        seed(db, scale="small", seed=7, quiet=True, files_root=tmp_path / "files")
        with db.sessions() as session:
            codes_seeded = list(session.scalars(select(Entity.code)))
            assert len(codes_seeded) == demo.TOTAL["small"] and all(codes.is_valid(c) for c in codes_seeded)
        data = register_csv(
            [
                {
                    "统一社会信用代码": new_code(1),
                    "名称": "鹤壁市淇滨区库测试有限公司",
                    "行业代码": "5212",
                    "成立日期": "2020-01-02",
                    "住所": "河南省鹤壁市淇滨区金山街道庞村1号",
                },
                {"统一社会信用代码": new_code(2), "名称": "坏日期", "成立日期": "2020-13-01"},
            ]
        )
        for expected in ((1, 0), (0, 1)):
            with db.session() as session:
                index = places_service.build_index(session)
                result = service.import_entities(
                    session, data=data, filename="r.csv", index=index, actor=None, today=date(2026, 12, 1)
                )
            assert (result.created, result.unchanged) == expected
            assert [(p.line, p.field) for p in result.rejected] == [(3, "established")]
        with db.sessions() as session:
            operator = session.scalar(select(User).where(User.username == "village1.operator"))
            assert operator is not None
            filters = service.Filters(q="库测试", section="F", division="410611001")
            assert [e.code for e in service.list_entities(session, viewer=None, filters=filters).items] == [
                new_code(1)
            ]
            visible = service.list_entities(session, viewer=operator, limit=500).items
            assert operator.scope_code and all(
                e.division_code.startswith(operator.scope_code) for e in visible
            )
            assert session.scalar(select(func.count()).select_from(Entity)) == demo.TOTAL["small"] + 1
    finally:
        db.dispose()
