"""The demo generator: org units for the real divisions, accounts for every role, never in production."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import delete, func, select
from stdnum.cn import ric

from cityops.accounts import demo, service
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.roles import ROLES
from cityops.core.auth.scope import division_level
from cityops.core.auth.security import verify_password
from cityops.core.db import Database
from cityops.core.errors import Forbidden


def test_org_units_are_46_departments_and_a_centre_per_division(db: Database) -> None:
    with db.sessions() as session:
        kinds = Counter(session.scalars(select(OrgUnit.kind)))
        levels = Counter(session.scalars(select(OrgUnit.level).where(OrgUnit.kind == "centre")))
        divisions, _grids = demo._load_places(session)
        names = set(session.scalars(select(OrgUnit.name).where(OrgUnit.kind == "department")))
        orphans = session.scalar(select(func.count()).select_from(OrgUnit).where(
            OrgUnit.kind == "centre", OrgUnit.level != "city", OrgUnit.parent_id.is_(None)))
    assert kinds["department"] == 46
    assert kinds["centre"] == len(divisions)
    assert levels == Counter(d.level for d in divisions)
    assert {"鹤壁市公安局", "鹤壁市应急管理局", "鹤壁市市场监督管理局", "鹤壁市住房和城乡建设局"} <= names
    assert orphans == 0  # every centre below the city reports to the centre above it


def test_every_role_has_demo_accounts_that_sign_in_with_the_documented_password(db: Database) -> None:
    with db.sessions() as session:
        accounts = demo.demo_accounts_in(session)
        all_demo = session.scalar(select(func.count()).select_from(User).where(User.is_demo.is_(True)))
    assert [u.username for u in accounts] == list(demo.DEMO_USERNAMES)
    assert {u.role for u in accounts} == set(ROLES)
    assert all(u.is_demo for u in accounts)
    assert verify_password(accounts[0].password_hash, demo.DEMO_PASSWORD)
    operator_levels = {division_level(u.scope_code) for u in accounts
                       if u.role == "centre_operator" and u.scope_code}
    assert operator_levels == {"city", "county", "township", "village"}
    v1 = next(u for u in accounts if u.username == "village1.operator")
    v2 = next(u for u in accounts if u.username == "village2.operator")
    assert v1.scope_code and v2.scope_code and v1.scope_code[:9] != v2.scope_code[:9]  # other townships
    assert all(u.id_number is None or ric.is_valid(u.id_number) for u in accounts)
    assert all_demo and all_demo > len(accounts)  # plus an operator for every centre


def test_the_generator_is_deterministic(db: Database) -> None:
    with db.sessions() as session:
        divisions, grids = demo._load_places(session)
    first = demo.demo_accounts(divisions, grids)
    assert first == demo.demo_accounts(divisions, grids)
    rng_a, rng_b = random.Random("7:accounts"), random.Random("7:accounts")
    assert [demo.resident_id(rng_a, "410611") for _ in range(5)] == \
        [demo.resident_id(rng_b, "410611") for _ in range(5)]


def test_production_gets_org_units_but_no_demo_accounts(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    production = settings.model_copy(update={"environment": "production"})
    with db.sessions() as session:
        divisions, grids = demo._load_places(session)
        session.execute(delete(User))
        session.execute(delete(OrgUnit))
        made = demo.seed_accounts(session, rng=random.Random(1), divisions=divisions, grids_by_village=grids,
                                  with_users=False)
        assert made == 0
        assert session.scalar(select(func.count()).select_from(OrgUnit)) == 46 + len(divisions)
        assert session.scalar(select(func.count()).select_from(User)) == 0
        with pytest.raises(Forbidden, match="never created in production"):
            service.create_user(session, username="demo.x", display_name="x", role="citizen",
                                password="Citizen-2024", is_demo=True, settings=production)


def test_demo_accounts_cannot_sign_in_in_production(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    production = settings.model_copy(update={"environment": "production"})
    with db.session() as session:
        outcome = service.login(session, username="admin", password=demo.DEMO_PASSWORD, settings=production)
    assert outcome.user is None
    assert outcome.error is not None and outcome.error.message == "invalid username or password"
