"""The synthetic register: the small demo city's entities (in every test database), and the plan of the
full one."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from cityops.core.db import Database
from cityops.credit import codes, demo
from cityops.credit.models import Entity, EntityDepartment

HEBI = {"410600", "410602", "410603", "410611", "410621", "410622"}
HEADS = {
    "enterprise": {"91"},
    "individual": {"92"},
    "cooperative": {"93"},
    "social_org": {"51", "52", "53"},
    "other": {"N2", "N3"},
}


def test_the_small_demo_has_a_few_hundred_entities_with_valid_codes_only(db: Database) -> None:
    with db.sessions() as session:
        entities = session.scalars(select(Entity)).all()
        linked = set(session.scalars(select(EntityDepartment.entity_id)))
    assert len(entities) == demo.TOTAL["small"] and all(e.synthetic for e in entities)
    for e in entities:
        found = codes.check(e.code)  # raises for an invalid one
        assert found.kind == e.kind and e.code[:2] in HEADS[e.kind], e.code
        assert found.division in HEBI, e.code
        assert e.located_by == "point" and e.grid_code and e.division_code == e.grid_code
        assert e.industry_code and e.name and e.legal_rep_name and e.legal_rep_id_number
        assert e.id in linked  # every entity has a supervising department
    kinds = Counter(e.kind for e in entities)
    assert kinds["individual"] > kinds["enterprise"] > kinds["cooperative"] > 0 and kinds["other"] > 0
    assert len({e.name for e in entities}) == len(entities)
    assert len({e.code[8:17] for e in entities}) == len(entities)
    # Identifiers as registrars issued them: new ones (MA...) since the 2015 reform, 8 digits before.
    for e in entities:
        assert e.established_on is not None
        assert e.code[8:10] == "MA" if e.established_on >= demo.REFORM else e.code[8:16].isdigit()


def test_names_read_like_hebis(db: Database) -> None:
    with db.sessions() as session:
        rows = session.execute(select(Entity.kind, Entity.name)).all()
    firms = [n for k, n in rows if k == "enterprise"]
    assert all(n.endswith(("有限公司", "有限责任公司")) for n in firms)
    assert any(n.startswith(("鹤壁市淇滨区", "鹤壁市山城区", "鹤壁市鹤山区", "浚县", "淇县")) for n in firms)
    assert all(n.endswith("专业合作社") for k, n in rows if k == "cooperative")
    assert all(n.endswith(("股份经济合作社", "经济联合总社")) for k, n in rows if k == "other")


def test_the_full_plan_has_a_prefecture_citys_proportions() -> None:
    counts = demo.plan(178_000, villages=1_041, townships=48, small=False)
    assert sum(counts.values()) == 178_000
    assert 0.25 <= counts["enterprise"] / 178_000 <= 0.30
    assert 0.65 <= counts["individual"] / 178_000 <= 0.70
    assert counts["cooperative"] == 3_200 and counts["social_org"] == 1_400
    assert counts["other"] == 1_041 + 48  # a collective economic organisation per village and township
