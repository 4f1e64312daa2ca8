"""The one authorisation rule: division subtree, org unit or owner; admin at city scope sees all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from cityops import all_models
from cityops.core.auth import authorize, can_access, division_level, scope_filter, scope_prefix
from cityops.core.auth.models import AuditEntry
from cityops.core.db import Base, Database
from cityops.core.errors import Forbidden, NotFound, Unauthorized


@dataclass(frozen=True)
class FakeUser:
    id: int
    role: str
    scope_code: str | None
    org_unit_id: int | None = None
    is_active: bool = True


VILLAGE = "410611100201"
OTHER_VILLAGE = "410611101001"
GRID = VILLAGE + "001"


@pytest.mark.parametrize(("code", "prefix", "level"), [
    ("410000", "41", "province"),
    ("410600", "4106", "city"),
    ("410611", "410611", "county"),
    ("410671", "410671", "county"),
    ("410611100", "410611100", "township"),
    (VILLAGE, VILLAGE, "village"),
    (GRID, GRID, "grid"),
])
def test_scope_prefix_follows_the_code_hierarchy(code: str, prefix: str, level: str) -> None:
    assert scope_prefix(code) == prefix
    assert division_level(code) == level


@pytest.mark.parametrize("bad", ["", "4106", "41061", "4106110001", "41061110020a", "４１０６００",
                                 "410600 "])
def test_scope_prefix_refuses_what_is_not_a_division_code(bad: str) -> None:
    with pytest.raises(ValueError, match="not a division code"):
        scope_prefix(bad)


def test_village_operator_sees_their_village_and_its_grids_only() -> None:
    op = FakeUser(1, "centre_operator", VILLAGE, org_unit_id=10)
    assert can_access(op, division_code=VILLAGE)
    assert can_access(op, division_code=GRID)
    assert not can_access(op, division_code=OTHER_VILLAGE)
    assert not can_access(op, division_code="410611100")  # the township above is not theirs
    assert not can_access(op, division_code=None)


def test_org_unit_assignment_and_ownership_grant_access() -> None:
    handler = FakeUser(2, "department_handler", None, org_unit_id=7)
    assert can_access(handler, division_code=VILLAGE, org_unit_id=7)
    assert not can_access(handler, division_code=VILLAGE, org_unit_id=8)
    citizen = FakeUser(3, "citizen", None)
    assert can_access(citizen, owner_id=3)
    assert not can_access(citizen, owner_id=4, division_code=VILLAGE)


def test_admin_at_city_scope_sees_everything_but_a_county_admin_does_not() -> None:
    city_admin = FakeUser(4, "admin", "410600")
    assert can_access(city_admin, division_code=OTHER_VILLAGE)
    assert can_access(city_admin)  # even records without a division
    county_admin = FakeUser(5, "admin", "410621")
    assert not can_access(county_admin, division_code=VILLAGE)
    assert can_access(county_admin, division_code="410621101001")


def test_disabled_users_and_nobody_see_nothing() -> None:
    assert not can_access(FakeUser(6, "admin", "410600", is_active=False), division_code=VILLAGE)
    assert not can_access(None, division_code=VILLAGE)


def test_authorize_hides_records_outside_the_scope() -> None:
    op = FakeUser(1, "centre_operator", VILLAGE)
    authorize(op, division_code=GRID)
    with pytest.raises(NotFound, match="case 9 not found"):
        authorize(op, division_code=OTHER_VILLAGE, resource="case", resource_id=9)
    with pytest.raises(Forbidden, match="outside your scope"):
        authorize(op, division_code=OTHER_VILLAGE, hide=False)
    with pytest.raises(Unauthorized):
        authorize(None, division_code=VILLAGE)


def test_scope_filter_is_the_same_rule_in_sql(empty_db: Database) -> None:
    check_scope_filter(empty_db)


@pytest.mark.postgres
def test_scope_filter_is_the_same_rule_on_postgresql(pg_url: str) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        check_scope_filter(db)
    finally:
        db.dispose()


def check_scope_filter(empty_db: Database) -> None:
    codes = [VILLAGE, GRID, OTHER_VILLAGE, "410611100", "410621", None]
    with empty_db.session() as session:
        for i, code in enumerate(codes):
            session.add(AuditEntry(action="read", resource_type="thing", resource_id=str(i),
                                   division_code=code, user_id=100 + i))
    expected = {
        FakeUser(1, "centre_operator", VILLAGE): {"0", "1"},
        FakeUser(2, "centre_operator", "410611100"): {"0", "1", "3"},
        FakeUser(3, "centre_operator", "410600"): {"0", "1", "2", "3", "4"},
        FakeUser(4, "admin", "410600"): {"0", "1", "2", "3", "4", "5"},
        FakeUser(5, "grid_worker", GRID): {"1"},
        FakeUser(105, "citizen", None): {"5"},  # their own entry only
        FakeUser(7, "admin", "410600", is_active=False): set(),
    }
    with empty_db.session() as session:
        rows = session.execute(
            select(AuditEntry.resource_id, AuditEntry.division_code, AuditEntry.user_id)).all()
        for user, visible in expected.items():
            got = set(session.scalars(select(AuditEntry.resource_id).where(
                scope_filter(user, AuditEntry.division_code, owner_column=AuditEntry.user_id))))
            assert got == visible, user
            # the SQL filter and the Python predicate agree row by row
            assert got == {rid for rid, code, owner in rows
                           if can_access(user, division_code=code, owner_id=owner)}
