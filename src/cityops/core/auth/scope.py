"""The one authorisation rule every route and page uses.

A user may see a record iff
  * the record's division code lies inside the user's division subtree, or
  * the record is assigned to the user's org unit, or
  * the record belongs to the user (e.g. a citizen's own report), when the caller passes the owner;
an administrator whose scope is the whole city (or province) sees everything, including records
without a division.

Division codes are hierarchical NBS strings (city 410600, county 410611, township 410611100, village
410611100201, grid = village + 3 digits), so a subtree is "codes starting with a prefix" and this
module never needs the places package: `scope_prefix("410600") == "4106"`.

`can_access` / `authorize` check one record in Python; `scope_filter` is the same rule as a SQL
condition for list queries, so repositories of every package reuse it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, false, or_, true

from cityops.core.errors import Forbidden, NotFound, Unauthorized

GRID_CODE_LENGTH = 15


class ScopedUser(Protocol):
    """What the rule needs of a user (the ORM User satisfies it)."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def scope_code(self) -> str | None: ...
    @property
    def org_unit_id(self) -> int | None: ...
    @property
    def is_active(self) -> bool: ...


def scope_prefix(code: str) -> str:
    """The prefix shared by every division code inside `code`'s subtree.

    Province 410000 -> "41", city 410600 -> "4106", county 410611 -> "410611", township, village and
    grid codes are their own prefix. Raises ValueError for anything that is not a division code.
    """
    if not code.isascii() or not code.isdigit() or len(code) not in (6, 9, 12, GRID_CODE_LENGTH):
        raise ValueError(f"not a division code: {code!r} (expected 6, 9, 12 or 15 digits)")
    if len(code) == 6:
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


def division_level(code: str) -> str:
    """'province', 'city', 'county', 'township', 'village' or 'grid' from the shape of the code."""
    prefix = scope_prefix(code)
    return {2: "province", 4: "city", 6: "county", 9: "township", 12: "village",
            GRID_CODE_LENGTH: "grid"}[len(prefix)]


def in_scope(scope_code: str | None, division_code: str | None) -> bool:
    """True when division_code lies in the subtree of scope_code (both codes well formed)."""
    if not scope_code or not division_code:
        return False
    try:
        return division_code.startswith(scope_prefix(scope_code))
    except ValueError:
        return False


def sees_everything(user: ScopedUser) -> bool:
    """An active administrator whose scope is the whole city or province."""
    if not user.is_active or user.role != "admin" or not user.scope_code:
        return False
    try:
        return len(scope_prefix(user.scope_code)) <= 4
    except ValueError:
        return False


def can_access(user: ScopedUser | None, *, division_code: str | None = None,
               org_unit_id: int | None = None, owner_id: int | None = None) -> bool:
    """May `user` see a record with this division, assigned org unit and owner?"""
    if user is None or not user.is_active:
        return False
    if sees_everything(user):
        return True
    if in_scope(user.scope_code, division_code):
        return True
    if org_unit_id is not None and org_unit_id == user.org_unit_id:
        return True
    return owner_id is not None and owner_id == user.id


def authorize(user: ScopedUser | None, *, division_code: str | None = None,
              org_unit_id: int | None = None, owner_id: int | None = None,
              resource: str = "record", resource_id: object = None, hide: bool = True) -> None:
    """Raise unless `can_access`. By default a record outside the scope answers NotFound, exactly
    like a missing one, so its existence is not revealed; `hide=False` answers Forbidden."""
    if user is None:
        raise Unauthorized("not signed in")
    if can_access(user, division_code=division_code, org_unit_id=org_unit_id, owner_id=owner_id):
        return
    label = f"{resource} {resource_id}" if resource_id is not None else resource
    if hide:
        raise NotFound(f"{label} not found")
    raise Forbidden(f"{label} is outside your scope")


def scope_filter(user: ScopedUser | None, division_column: SQLColumnExpression[str | None] | None,
                 org_unit_column: SQLColumnExpression[int | None] | None = None,
                 owner_column: SQLColumnExpression[int | None] | None = None) -> ColumnElement[bool]:
    """`can_access` as a SQL condition for `select(...).where(scope_filter(user, Model.division_code))`.

    `division_column` may be any string expression (e.g. a coalesce over a join)."""
    if user is None or not user.is_active:
        return false()
    if sees_everything(user):
        return true()
    conditions: list[ColumnElement[bool]] = []
    if division_column is not None and user.scope_code:
        try:
            prefix = scope_prefix(user.scope_code)
        except ValueError:
            prefix = ""
        if prefix:
            # "Starts with the prefix" as a range of codes (digits only: the next character after '9'
            # is ':'), which every database answers from an index on the column, unlike LIKE.
            upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            conditions.append(and_(division_column >= prefix, division_column < upper))
    if org_unit_column is not None and user.org_unit_id is not None:
        conditions.append(org_unit_column == user.org_unit_id)
    if owner_column is not None:
        conditions.append(owner_column == user.id)
    if not conditions:
        return false()
    return or_(*conditions)
