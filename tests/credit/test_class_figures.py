"""The distribution of risk classes by industry and area: the figures equal a count made here from the
rows, the viewer's scope holds, classes stay with credit.inspect, bad input is refused with its reason,
the page speaks Chinese and English, and the Excel export carries the same figures."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select, update

from cityops import all_models
from cityops.accounts.demo import DEMO_PASSWORD
from cityops.core.auth.models import AuditEntry, OrgUnit, User
from cityops.core.db import Base, Database
from cityops.credit import figures
from cityops.credit.models import Entity, EntityDepartment
from tests.accounts.helpers import login, logout
from tests.web.test_browser import assets_built, browser  # noqa: F401 - fixtures used below

CLASSES = ("A", "B", "C", "D", None)
COUNTY = "410611"  # the demo county of county.operator
OTHER_COUNTY = "410621"


def classify(db: Database) -> None:
    """Classes in turn by id (A, B, C, D, none) and one entity of each class revoked, so the count must
    skip entities no longer in business."""
    with db.session() as session:
        ids = list(session.scalars(select(Entity.id).order_by(Entity.id)))
        assert len(ids) >= 50
        for n, cls in enumerate(CLASSES):
            session.execute(
                update(Entity).where(Entity.id.in_(ids[n :: len(CLASSES)])).values(risk_class=cls)
            )
        session.execute(update(Entity).where(Entity.id.in_(ids[:5])).values(status="revoked"))


def expected(
    db: Database, *, prefix: str, unit_code: str | None = None, level: str = "industry", within: str = ""
) -> dict[str, Counter[str]]:
    """Counts by group and class of the active entities placed under `prefix` or supervised by the org
    unit, made in Python from the rows."""
    with db.sessions() as session:
        supervised: set[int] = set()
        if unit_code is not None:
            supervised = set(
                session.scalars(
                    select(EntityDepartment.entity_id)
                    .join(OrgUnit, OrgUnit.id == EntityDepartment.org_unit_id)
                    .where(OrgUnit.code == unit_code)
                )
            )
        rows = session.execute(
            select(Entity.id, Entity.risk_class, Entity.industry_section, Entity.division_code, Entity.status)
        ).all()
    found: dict[str, Counter[str]] = {}
    for id_, cls, section, division, status in rows:
        if status != "active" or not (division.startswith(prefix) or id_ in supervised):
            continue
        if not division.startswith(within):
            continue
        key = {"industry": section or "", "county": division[:6], "township": division[:9]}[level]
        if level == "township" and len(key) < 9:
            key = ""
        found.setdefault(key, Counter())[cls or "unevaluated"] += 1
    return found


def as_counts(body: dict[str, Any]) -> dict[str, Counter[str]]:
    return {r["key"]: Counter({c: n for c, n in r["counts"].items() if n}) for r in body["rows"]}


def unit_of(db: Database, username: str) -> str | None:
    with db.sessions() as session:
        return session.scalar(
            select(OrgUnit.code).join(User, User.org_unit_id == OrgUnit.id).where(User.username == username)
        )


def test_counts_equal_a_count_of_the_rows_with_totals_and_shares(client: TestClient, db: Database) -> None:
    classify(db)
    login(client, "inspector")  # market regulation, whole city
    unit = unit_of(db, "inspector")
    by_industry = client.get("/api/credit/classes", params={"by": "industry"})
    assert by_industry.status_code == 200, by_industry.text
    body = by_industry.json()
    want = expected(db, prefix="4106", unit_code=unit)
    assert as_counts(body) == want
    assert {c for counts in want.values() for c in counts} == {"A", "B", "C", "D", "unevaluated"}
    every = sum(sum(c.values()) for c in want.values())
    assert body["totals"]["total"] == every
    assert body["totals"]["counts"] == {c: sum(w[c] for w in want.values()) for c in body["classes"]}
    for row in body["rows"]:
        assert row["total"] == sum(row["counts"].values())
        assert abs(sum(row["shares"].values()) - 1) < 1e-3
        assert row["shares"]["A"] == round(row["counts"]["A"] / row["total"], 4)
        assert row["share_of_all"] == round(row["total"] / every, 4)
    by_area = client.get("/api/credit/classes", params={"by": "area"}).json()
    assert by_area["level"] == "county"
    assert as_counts(by_area) == expected(db, prefix="4106", unit_code=unit, level="county")
    assert by_area["totals"]["total"] == every
    townships = client.get("/api/credit/classes", params={"by": "area", "county": COUNTY}).json()
    assert townships["level"] == "township" and townships["county_name"]
    assert as_counts(townships) == expected(
        db, prefix="4106", unit_code=unit, level="township", within=COUNTY
    )
    assert all(r["key"].startswith(COUNTY) for r in townships["rows"] if r["key"])
    with db.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.resource_type == "credit_class_figures")
        ).all()
    assert len(entries) == 3 and {e.action for e in entries} == {"read"}


def test_a_county_user_sees_only_their_county(client: TestClient, db: Database) -> None:
    classify(db)
    with db.session() as session:  # a county centre's user given the inspector's role
        session.execute(update(User).where(User.username == "county.operator").values(role="inspector"))
    login(client, "county.operator")
    unit = unit_of(db, "county.operator")
    body = client.get("/api/credit/classes", params={"by": "area"}).json()
    want = expected(db, prefix=COUNTY, unit_code=unit, level="county")
    assert as_counts(body) == want and set(want) == {COUNTY}
    industry = client.get("/api/credit/classes", params={"by": "industry"}).json()
    assert as_counts(industry) == expected(db, prefix=COUNTY, unit_code=unit)
    assert industry["totals"]["total"] == body["totals"]["total"] > 0
    other = client.get("/api/credit/classes", params={"by": "area", "county": OTHER_COUNTY}).json()
    assert other["rows"] == [] and other["totals"]["total"] == 0


def test_classes_need_credit_inspect(client: TestClient, db: Database) -> None:
    for username in ("county.operator", "leader"):  # credit.view, not credit.inspect
        login(client, username)
        api = client.get("/api/credit/classes")
        assert api.status_code == 403 and "credit.inspect" in api.text
        assert client.get("/credit/classes").status_code == 403
        assert client.get("/api/credit/classes", params={"format": "xlsx"}).status_code == 403
        assert 'href="/credit/classes"' not in client.get("/credit/entities").text
        logout(client)
    assert client.get("/api/credit/classes").status_code == 401


def test_bad_input_is_refused_with_its_reason(client: TestClient, db: Database) -> None:
    login(client, "inspector")
    unknown = client.get("/api/credit/classes", params={"by": "area", "county": "410699"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "county"
    assert "410699" in unknown.json()["message"]
    for county in ("410600", "4106", "41x611", "410611100"):
        bad = client.get("/api/credit/classes", params={"county": county})
        assert bad.status_code == 422, (county, bad.text)
        assert "county" in bad.json()["message"]
    section = client.get("/api/credit/classes", params={"section": "Z"})
    assert section.status_code == 422 and section.json()["field"] == "section"
    assert client.get("/api/credit/classes", params={"by": "grid"}).status_code == 422
    page = client.get("/credit/classes", params={"county": "410699"})
    assert page.status_code == 404 and "410699" in page.text


def test_the_page_in_chinese_and_english(client: TestClient, db: Database) -> None:
    classify(db)
    login(client, "inspector")
    listing = client.get("/credit/entities")
    assert 'href="/credit/classes"' in listing.text
    zh = client.get("/credit/classes")
    assert zh.status_code == 200, zh.text
    assert "风险分类分布" in zh.text and "按行业门类" in zh.text and "按县区" in zh.text
    assert "/static/vendor/echarts/echarts.min.js" in zh.text
    assert 'data-chart="industry"' in zh.text and 'data-chart="area"' in zh.text
    api = client.get("/api/credit/classes", params={"by": "area"}).json()
    assert f'<td data-class="total">{api["totals"]["total"]}</td>' in zh.text
    assert 'href="/api/credit/classes?by=area&amp;format=xlsx"' in zh.text
    county = client.get("/credit/classes", params={"county": COUNTY})
    assert county.status_code == 200 and "各乡镇（街道）" in county.text
    en = client.get("/credit/classes", params={"lang": "en"})
    assert en.status_code == 200
    assert "Risk class distribution" in en.text and "By industry section" in en.text
    assert "Not evaluated" in en.text and "风险分类分布" not in en.text


def test_the_excel_export_has_the_same_figures(client: TestClient, db: Database) -> None:
    classify(db)
    login(client, "inspector")
    for params in ({"by": "industry"}, {"by": "area"}, {"by": "area", "county": COUNTY}):
        body = client.get("/api/credit/classes", params=params).json()
        download = client.get("/api/credit/classes", params={**params, "format": "xlsx"})
        assert download.status_code == 200, download.text
        assert download.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        sheet = load_workbook(io.BytesIO(download.content), read_only=True).worksheets[0]
        header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert header[2:8] == ["A", "B", "C", "D", "未评价", "合计"]
        table = [*body["rows"], body["totals"]]
        assert len(rows) == len(table)
        for row, want in zip(rows, table, strict=True):
            assert row[1] == want["name"]
            assert row[2:7] == [want["counts"][c] for c in body["classes"]]
            assert row[7] == want["total"]
            assert row[8:] == [want["shares"][c] for c in body["classes"]]
    with db.sessions() as session:
        actions = Counter(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.resource_type == "credit_class_figures")
            )
        )
    assert actions == {"read": 3, "export": 3}


@pytest.mark.browser
def test_the_charts_draw_in_a_browser(
    assets_built: None,  # noqa: F811
    live_server: str,
    browser: Any,  # noqa: F811
    client: TestClient,
    db: Database,
) -> None:
    from playwright.sync_api import expect

    classify(db)
    login(client, "inspector")
    rows = {
        by: len(client.get("/api/credit/classes", params={"by": by}).json()["rows"])
        for by in ("industry", "area")
    }
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server}/login?next=/credit/classes")
    page.fill("input[name=username]", "inspector")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    expect(page).to_have_url(f"{live_server}/credit/classes")
    for by, n in rows.items():
        chart = page.locator(f"[data-chart={by}]")
        expect(chart).to_have_attribute("data-ready", str(n))
        assert chart.locator("canvas").count() >= 1
    assert not errors, errors


@pytest.mark.postgres
def test_the_grouping_runs_on_postgres(pg_url: str) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        placed = [  # (class, section, division, status)
            ("A", "F", "410611001001", "active"),
            ("A", "F", "410611002", "active"),
            (None, "F", "410611", "active"),
            ("D", None, "410621100", "active"),
            ("B", "C", "410621100", "revoked"),
        ]
        with db.session() as session:
            session.add(
                User(
                    username="pg.inspector",
                    display_name="-",
                    password_hash="-",
                    role="inspector",
                    scope_code="410600",
                )
            )
            for n, (cls, section, division, status) in enumerate(placed):
                session.add(
                    Entity(
                        code=f"PG{n:016d}",
                        name=f"PG {n}",
                        kind="enterprise",
                        risk_class=cls,
                        industry_section=section,
                        division_code=division,
                        status=status,
                    )
                )
        with db.session() as session:
            viewer = session.scalar(select(User).where(User.username == "pg.inspector"))
            assert viewer is not None
            industry = figures.class_distribution(session, viewer=viewer, by="industry")
            area = figures.class_distribution(session, viewer=viewer, by="area")
        assert {r.key: r.total for r in industry.rows} == {"F": 3, "": 1}
        assert industry.totals.counts == {"A": 2, "B": 0, "C": 0, "D": 1, "unevaluated": 1}
        # No divisions in this database: every county key is unplaced, and still counted.
        assert [(r.key, r.total) for r in area.rows] == [("", 4)] and area.totals.total == 4
    finally:
        db.dispose()
