"""The accounts flow on PostgreSQL: sign-in, scoped lists, personal-information audit, tokens."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops import all_models
from cityops.accounts import demo
from cityops.app import create_app
from cityops.core.auth.models import AuditEntry
from cityops.core.db import Base, Database
from cityops.places.models import Division
from tests.accounts.helpers import login, user_id

pytestmark = pytest.mark.postgres

DIVISIONS = [
    ("410600", "鹤壁市", "city", None),
    ("410611", "淇滨区", "county", "410600"),
    ("410621", "浚县", "county", "410600"),
    ("410611100", "大赉店镇", "township", "410611"),
    ("410611101", "钜桥镇", "township", "410611"),
    ("410611100201", "甲村民委员会", "village", "410611100"),
    ("410611101001", "乙社区居民委员会", "village", "410611101"),
]


def test_accounts_on_postgresql(pg_url: str, settings) -> None:  # type: ignore[no-untyped-def]
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        with db.session() as session:
            session.add_all(Division(code=c, name=n, level=lv, parent_code=p) for c, n, lv, p in DIVISIONS)
        with db.session() as session:
            divisions, grids = demo._load_places(session)
            demo.seed_accounts(session, rng=random.Random(3), divisions=divisions, grids_by_village=grids,
                               with_users=True)
        pg_settings = settings.model_copy(update={"database_url": pg_url})
        with TestClient(create_app(pg_settings, db=db)) as client:
            assert client.post("/api/auth/login",
                               json={"username": "admin\x00", "password": "x"}).status_code == 401
            login(client, "village1.operator")
            names = {u["username"] for u in client.get("/api/users", params={"q": "\x00"}).json()["items"]}
            assert "village1.grid" in names and "village2.grid" not in names
            assert client.get(f"/api/users/{user_id(db, 'village2.operator')}").status_code == 404
            assert client.get(f"/api/users/{user_id(db, 'village1.grid')}").json()["pii_visible"] is True
            token = client.post("/api/tokens", json={"name": "pg", "days": 1}).json()["token"]
            me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["username"] == "village1.operator"
        with db.sessions() as session:
            actions = set(session.scalars(select(AuditEntry.action)))
        assert {"login", "login_failed", "pii_read", "token_create"} <= actions
    finally:
        db.dispose()
