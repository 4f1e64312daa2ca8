"""Chinese full-text search of cases: two-character words, several words, numbers, on both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from cityops import all_models
from cityops.cases import search
from cityops.cases.models import Case
from cityops.core.db import Base, Database, utcnow
from tests.accounts.helpers import login
from tests.cases.helpers import report, scope_of


def test_text_becomes_character_pairs_and_words() -> None:
    assert search.tokens("路边垃圾堆积 A12路") == ["路边", "边垃", "垃圾", "圾堆", "堆积", "a12", "路"]
    assert search.phrases("垃圾  东门") == [["垃圾"], ["东门"]]


def found(client: TestClient, q: str) -> set[str]:
    response = client.get("/api/cases", params={"q": q, "limit": 500})
    assert response.status_code == 200, response.text
    return {c["title"] for c in response.json()["items"]}


def test_the_list_finds_cases_by_chinese_words_numbers_and_single_characters(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.operator")
    village = scope_of(db, "village1.operator")
    garbage = report(
        client,
        db,
        village,
        type_code="urban",
        category="garbage",
        title="检索：小区东门垃圾堆积",
        description="垃圾三天没有清运",
        fields={},
    )
    noise = report(
        client,
        db,
        village,
        type_code="urban",
        category="garbage",
        title="检索：夜间施工噪声",
        description="工地夜里打桩",
        fields={},
    )
    assert found(client, "垃圾") >= {garbage["title"]} and noise["title"] not in found(client, "垃圾")
    assert found(client, "东门 清运") == {garbage["title"]}  # both words, anywhere in title or text
    assert found(client, "东门 打桩") == set()
    assert found(client, "施工噪声") == {noise["title"]}
    assert found(client, "噪") >= {noise["title"]}  # one character: scanned
    assert found(client, garbage["number"]) == {garbage["title"]}
    assert found(client, "垃圾堆积如山") == set()  # a phrase, not any of its pairs
    page = client.get("/cases", params={"q": "清运", "open": "0", "box": "scope"})
    assert garbage["number"] in page.text and noise["number"] not in page.text


@pytest.mark.postgres
def test_the_same_search_on_postgresql(pg_url: str) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        now = utcnow()
        with db.session() as session:
            for number, title in (("T-1", "小区东门垃圾堆积"), ("T-2", "夜间施工噪声")):
                session.add(
                    Case(
                        number=number,
                        type_code="urban",
                        category="garbage",
                        title=title,
                        search_text=search.search_text(number, title),
                        status="reported",
                        level="village",
                        division_code="410611",
                        village_code="410611",
                        lon=114.3,
                        lat=35.7,
                        created_at=now,
                        updated_at=now,
                    )
                )
        with db.sessions() as session:

            def titles(q: str) -> set[str]:
                return set(session.scalars(select(Case.title).where(search.matches(session, q))))

            assert titles("垃圾") == {"小区东门垃圾堆积"}
            assert titles("东门 垃圾") == {"小区东门垃圾堆积"}
            assert titles("施工噪声") == {"夜间施工噪声"}
            assert titles("垃圾堆积如山") == set()
            assert titles("t-2") == {"夜间施工噪声"}
            indexed = session.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_cases_search'")
            )
            assert indexed is not None and "to_tsvector" in indexed
    finally:
        db.dispose()
