"""Shared data of the credit tests: codes of every authority, register rows placed in demo villages."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select

from cityops.core.auth.models import User
from cityops.core.db import Database
from cityops.credit import codes
from cityops.places.models import Grid

# Published codes (python-stdnum's test file collects them "found online"): an enterprise (Sinopec),
# a public institution (12: 事业单位), individual businesses (92) and codes with letters in the identifier.
PUBLISHED = (
    "91110000710926094P",
    "9144030071526726XG",
    "91110000600037341L",
    "121200004013590816",
    "91310115MA1K3BTP2B",
    "92340602MA2PBMEM24",
    "92340621MA2UK3PJXE",
    "91620105L015101280",
)
# Codes built by the standard's rules (authority, type, registration division, an identifier with its GB
# 11714 check character, python-stdnum's check character) for the authorities with letters and the rest.
BUILT = {
    "N1": codes.make("N", "1", "410621", "MA9KXB4" + "L" + codes.organisation_check("MA9KXB4L")),
    "N2": codes.make("N", "2", "410622", "5A71903" + "4" + codes.organisation_check("5A719034")),
    "N3": codes.make("N", "3", "410611", "MA40U3Y" + "1" + codes.organisation_check("MA40U3Y1")),
    "Y1": codes.make("Y", "1", "410600", "MA3X0A1" + "7" + codes.organisation_check("MA3X0A17")),
    "A1": codes.make("A", "1", "100000", "MA0012K" + "3" + codes.organisation_check("MA0012K3")),
    "51": codes.make("5", "1", "410600", "50768101" + codes.organisation_check("50768101")),
    "53": codes.make("5", "3", "410600", "MA44AB0" + "2" + codes.organisation_check("MA44AB02")),
    "11": codes.make("1", "1", "410611", "00549201" + codes.organisation_check("00549201")),
    "31": codes.make("3", "1", "410600", "MA47QW8" + "3" + codes.organisation_check("MA47QW83")),
    "93": codes.make("9", "3", "410621", "MA45PL1" + "0" + codes.organisation_check("MA45PL10")),
}


def new_code(n: int, *, head: str = "91", division: str = "410611") -> str:
    """A valid code of the given authority and type, different for each n."""
    body = f"MA{n:06d}"
    return codes.make(head[0], head[1], division, body + codes.organisation_check(body))


def village_point(db: Database, username: str) -> tuple[float, float]:
    """The centroid of the first grid of a demo user's village."""
    with db.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None and user.scope_code
        grid = session.scalars(
            select(Grid).where(Grid.village_code == user.scope_code[:12]).order_by(Grid.code)
        ).first()
        assert grid is not None and grid.centroid_lon is not None and grid.centroid_lat is not None
        return grid.centroid_lon, grid.centroid_lat


HEADER = (
    "统一社会信用代码",
    "名称",
    "市场主体类型",
    "行业代码",
    "注册资本",
    "成立日期",
    "登记状态",
    "住所",
    "经度",
    "纬度",
    "法定代表人",
    "证件号码",
    "监管部门",
)


def register_csv(rows: list[dict[str, Any]]) -> bytes:
    """A register export (UTF-8 with BOM, Chinese headers) of rows keyed by the headers above."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([row.get(h, "") for h in HEADER])
    return out.getvalue().encode("utf-8-sig")
