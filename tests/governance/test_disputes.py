"""Disputes: scope, masked parties with audited unmasked reads, ID number checks, mediation, the
figures of "small matters stay in the village", repeat disputes and the Excel export."""

from __future__ import annotations

import io
import math
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from rich.progress import Progress
from sqlalchemy import func, select

from cityops.cases.models import Case, CaseAttachment, CaseEvent, CaseFeedback
from cityops.core import files
from cityops.core.auth.models import AuditEntry
from cityops.core.db import Database, utcnow
from cityops.core.seeding import SeedContext
from cityops.governance.disputes import demo
from cityops.governance.disputes.models import Dispute, DisputeParty
from cityops.places.models import Grid
from tests.accounts.helpers import login, logout
from tests.cases.helpers import scope_of

ALICE_ID = "410600198001011234"
BOB_ID = "410602198505053211"


def grid_points(db: Database, village_code: str) -> list[tuple[float, float]]:
    with db.sessions() as session:
        return [
            (g.centroid_lon, g.centroid_lat)
            for g in session.scalars(
                select(Grid).where(Grid.village_code == village_code).order_by(Grid.code)
            )
            if g.centroid_lon is not None and g.centroid_lat is not None
        ]


def far_apart(db: Database, village_code: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points inside the village's first grid, more than 300 m apart."""
    with db.sessions() as session:
        grid = session.scalars(
            select(Grid).where(Grid.village_code == village_code).order_by(Grid.code)
        ).first()
        assert grid is not None and grid.geometry is not None
        polygon = shapely.from_wkb(grid.geometry)
    minx, miny, maxx, maxy = polygon.bounds
    inside = [
        (minx + (maxx - minx) * i / 10, miny + (maxy - miny) * j / 10)
        for i in range(1, 10)
        for j in range(1, 10)
        if polygon.contains(shapely.Point(minx + (maxx - minx) * i / 10, miny + (maxy - miny) * j / 10))
    ]
    first = inside[0]
    for other in inside[1:]:
        dx = (other[0] - first[0]) * 111_000 * math.cos(math.radians(first[1]))
        if math.hypot(dx, (other[1] - first[1]) * 111_000) > 300:
            return first, other
    raise AssertionError("the village's grid has no two points 300 m apart")


def body(
    db: Database,
    username: str,
    *,
    point: tuple[float, float] | None = None,
    parties: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    lon, lat = point or grid_points(db, scope_of(db, username)[:12])[0]
    data: dict[str, Any] = {
        "category": "neighbour",
        "title": "两户因宅基地边界争执",
        "description": "东西两户争执院墙位置",
        "place": "村东头",
        "lon": lon,
        "lat": lat,
        "parties": parties
        or [
            {
                "name": "王小明",
                "phone": "13812345678",
                "id_number": ALICE_ID,
                "address": "淇滨区大赉店镇东街1号",
            },
            {
                "name": "李大强",
                "phone": "13987654321",
                "id_number": BOB_ID,
                "address": "淇滨区大赉店镇东街3号",
            },
        ],
    }
    data.update(overrides)
    return data


def create(client: TestClient, db: Database, username: str, **kwargs: Any) -> dict[str, Any]:
    response = client.post("/api/governance/disputes", json=body(db, username, **kwargs))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_village_operator_cannot_see_another_villages_disputes(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    theirs = create(client, db, "village2.operator")
    logout(client)
    login(client, "village1.operator")
    mine = create(client, db, "village1.operator")
    assert client.get(f"/api/governance/disputes/{theirs['id']}").status_code == 404
    assert client.get(f"/governance/disputes/{theirs['id']}").status_code == 404
    response = client.post(f"/api/governance/disputes/{theirs['id']}/sessions", json={})
    assert response.status_code == 404
    listed = client.get("/api/governance/disputes", params={"limit": 500}).json()
    ids = {d["id"] for d in listed["items"]}
    assert mine["id"] in ids and theirs["id"] not in ids
    assert all(d["village_code"] == scope_of(db, "village1.operator")[:12] for d in listed["items"])


def test_a_dispute_outside_ones_area_cannot_be_recorded(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    lon, lat = grid_points(db, scope_of(db, "village2.operator")[:12])[0]
    response = client.post("/api/governance/disputes", json=body(db, "village1.operator", point=(lon, lat)))
    assert response.status_code == 403, response.text


def test_parties_are_masked_for_a_grid_worker_and_shown_to_an_operator_with_an_audit_entry(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.operator")
    dispute = create(client, db, "village1.operator")
    logout(client)

    login(client, "village1.grid")
    seen = client.get(f"/api/governance/disputes/{dispute['id']}").json()
    assert seen["pii_visible"] is False
    first = seen["party_details"][0]
    assert first["name"] == "王**" and first["phone"] == "138****5678"
    assert first["id_number"] == "410600********1234" and "东街1号" not in first["address"]
    page = client.get(f"/governance/disputes/{dispute['id']}")
    assert page.status_code == 200 and "王**" in page.text and "13812345678" not in page.text
    assert ALICE_ID not in page.text
    logout(client)

    login(client, "village1.operator")
    seen = client.get(f"/api/governance/disputes/{dispute['id']}").json()
    assert seen["pii_visible"] is True
    assert seen["party_details"][0]["id_number"] == ALICE_ID
    assert seen["party_details"][1]["phone"] == "13987654321"
    with db.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "pii_read",
                AuditEntry.resource_type == "dispute",
                AuditEntry.resource_id == str(dispute["id"]),
                AuditEntry.username == "village1.operator",
            )
        ).all()
    assert entries


def test_a_bad_id_number_is_refused_naming_the_field(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    parties = [
        {"name": "王小明", "id_number": ALICE_ID},
        {"name": "李大强", "id_number": "410602198505053212"},
    ]  # wrong check digit
    response = client.post("/api/governance/disputes", json=body(db, "village1.operator", parties=parties))
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["detail"]["errors"]]
    assert fields == ["parties.1.id_number"]


def test_mediation_sessions_are_recorded_and_checked(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    dispute = create(client, db, "village1.operator")
    url = f"/api/governance/disputes/{dispute['id']}/sessions"
    missing = client.post(
        url, json={"held_on": "2020-01-01", "mediator": "张调解", "place": "村委会", "outcome": "continue"}
    )
    assert missing.status_code == 422 and missing.json()["field"] == "held_on"
    no_mediator = client.post(
        url, json={"held_on": beijing_day(dispute["created_at"]), "place": "村委会", "outcome": "continue"}
    )
    assert no_mediator.status_code == 422 and no_mediator.json()["field"] == "mediator"
    page = client.post(
        f"/governance/disputes/{dispute['id']}/sessions",
        data={
            "held_on": beijing_day(dispute["created_at"]),
            "mediator": "张调解",
            "place": "村委会调解室",
            "outcome": "continue",
            "notes": "双方同意再谈",
        },
        follow_redirects=True,
    )
    assert page.status_code == 200 and "张调解" in page.text
    sessions = client.get(f"/api/governance/disputes/{dispute['id']}").json()["sessions"]
    assert [(s["mediator"], s["outcome"], s["level"]) for s in sessions] == [
        ("张调解", "continue", "village")
    ]


def figures(client: TestClient, division: str) -> dict[tuple[str, str | None], float]:
    response = client.get("/api/governance/disputes/figures", params={"division": division})
    assert response.status_code == 200, response.text
    return {(f["name"], f["level"]): f["value"] for f in response.json()["figures"]}


def drill(client: TestClient, division: str, level: str) -> set[int]:
    response = client.get(
        "/api/governance/disputes",
        params={"figure": "resolved_at_level", "level": level, "division": division, "limit": 500},
    )
    assert response.status_code == 200, response.text
    return {d["id"] for d in response.json()["items"]}


def test_figures_count_where_each_dispute_was_resolved(client: TestClient, db: Database) -> None:
    township = scope_of(db, "township.operator")
    login(client, "township.operator")
    before = figures(client, township)
    logout(client)

    login(client, "village1.operator")
    settled = create(client, db, "village1.operator")
    referred = create(client, db, "village1.operator", title="土地流转费用纠纷")
    agreed = client.post(
        f"/api/governance/disputes/{settled['id']}/outcome",
        json={"kind": "agreement", "agreement": "院墙按原址重砌，费用各半"},
    )
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["status"] == "agreed" and agreed.json()["case_status"] == "resolved"
    up = client.post(
        f"/api/governance/disputes/{referred['id']}/outcome",
        json={"kind": "referral", "to_level": "township", "reason": "涉及多户，村里调不下来"},
    )
    assert up.status_code == 200, up.text
    assert up.json()["status"] == "referred" and up.json()["level"] == "township"
    logout(client)

    login(client, "township.operator")
    done = client.post(
        f"/api/governance/disputes/{referred['id']}/outcome",
        json={"kind": "agreement", "agreement": "镇调委会调解，按合同补足流转费"},
    )
    assert done.status_code == 200, done.text
    after = figures(client, township)
    assert after[("resolved_at_level", "village")] == before[("resolved_at_level", "village")] + 1
    assert after[("resolved_at_level", "township")] == before[("resolved_at_level", "township")] + 1
    assert settled["id"] in drill(client, township, "village")
    assert referred["id"] not in drill(client, township, "village")
    assert referred["id"] in drill(client, township, "township")
    resolved = sum(after[("resolved_at_level", lv)] for lv in ("village", "township", "county", "city"))
    assert after[("kept_in_village", None)] == round(after[("resolved_at_level", "village")] / resolved, 4)
    page = client.get("/governance/disputes/figures", params={"division": township})
    assert page.status_code == 200 and 'data-figure="kept_in_village"' in page.text


def test_a_referral_goes_only_to_the_next_level(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    dispute = create(client, db, "village1.operator")
    response = client.post(
        f"/api/governance/disputes/{dispute['id']}/outcome",
        json={"kind": "referral", "to_level": "county", "reason": "太难"},
    )
    assert response.status_code == 422 and response.json()["field"] == "to_level"


def test_repeat_disputes_are_found_by_party_and_by_place(client: TestClient, db: Database) -> None:
    village = scope_of(db, "village1.operator")[:12]
    here, there = far_apart(db, village)
    login(client, "village1.operator")
    first = create(client, db, "village1.operator", point=here)
    # The same person (by ID number) in another dispute elsewhere in the village.
    again = create(
        client,
        db,
        "village1.operator",
        point=there,
        parties=[{"name": "王小明", "id_number": ALICE_ID}, {"name": "赵六", "phone": "13700001111"}],
    )
    # Other people at the first dispute's place.
    nearby = create(
        client,
        db,
        "village1.operator",
        point=here,
        parties=[{"name": "孙七", "phone": "13600002222"}, {"name": "周八", "phone": "13600003333"}],
    )
    seen = client.get(f"/api/governance/disputes/{again['id']}").json()
    assert seen["repeat"] is True
    assert {(r["id"], r["reason"]) for r in seen["related"]} >= {(first["id"], "same_party")}
    near = client.get(f"/api/governance/disputes/{nearby['id']}").json()
    assert (first["id"], "same_place") in {(r["id"], r["reason"]) for r in near["related"]}
    repeats = client.get("/api/governance/disputes", params={"repeat": "true", "limit": 500}).json()
    ids = {d["id"] for d in repeats["items"]}
    assert {again["id"], nearby["id"]} <= ids
    page = client.get(f"/governance/disputes/{again['id']}")
    assert f"/governance/disputes/{first['id']}" in page.text


def test_the_excel_export_opens_with_masked_parties(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    dispute = create(client, db, "village1.operator")
    response = client.get("/api/governance/disputes", params={"format": "xlsx"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "编号 Number"
    mine = [r for r in rows[1:] if r[0] == dispute["id"]]
    assert mine and mine[0][5] == "王**、李**"
    page = client.get("/governance/disputes")
    assert page.status_code == 200 and "/api/governance/disputes?format=xlsx" in page.text
    assert dispute["case_number"] in page.text


def test_a_dispute_is_recorded_through_the_form_and_a_bad_id_number_shown(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.operator")
    form = client.get("/governance/disputes/new")
    assert form.status_code == 200 and 'name="party0_id_number"' in form.text
    lon, lat = grid_points(db, scope_of(db, "village1.operator")[:12])[0]
    values = {
        "category": "family",
        "title": "赡养老人纠纷",
        "place": "村西头",
        "lon": str(lon),
        "lat": str(lat),
        "party0_name": "王小明",
        "party0_id_number": ALICE_ID,
        "party1_name": "王小红",
        "party1_id_number": "410602198505053212",
    }
    refused = client.post("/governance/disputes/new", data=values)
    assert refused.status_code == 422
    assert "parties.1.id_number" in refused.text and "赡养老人纠纷" in refused.text
    values["party1_id_number"] = BOB_ID
    done = client.post("/governance/disputes/new", data=values, follow_redirects=False)
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert page.status_code == 200 and "赡养老人纠纷" in page.text and ALICE_ID in page.text
    logout(client)
    login(client, "village1.grid")
    assert client.get("/governance/disputes/new").status_code == 403


def test_the_hotspot_map_has_points_without_personal_information(client: TestClient, db: Database) -> None:
    village = scope_of(db, "village1.operator")[:12]
    login(client, "village1.operator")
    dispute = create(client, db, "village1.operator")
    response = client.get("/api/governance/disputes/points", params={"division": village})
    assert response.status_code == 200
    features = {f["properties"]["id"]: f for f in response.json()["features"]}
    assert dispute["id"] in features
    assert features[dispute["id"]]["geometry"]["coordinates"] == [dispute["lon"], dispute["lat"]]
    assert "王小明" not in response.text and dispute["title"] not in response.text
    page = client.get("/governance/disputes/figures", params={"division": village})
    assert page.status_code == 200 and "/api/governance/disputes/points?" in page.text
    other = scope_of(db, "village2.operator")[:12]
    assert client.get("/api/governance/disputes/points", params={"division": other}).status_code == 404


def beijing_day(timestamp: str) -> str:
    """The Beijing date of an API timestamp (a session is held on a local day, not a UTC one)."""
    return datetime.fromisoformat(timestamp).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()


def test_the_demo_disputes_are_settled_mostly_in_the_village_rated_and_some_with_a_scan(
    db: Database, template_db: Path
) -> None:
    with db.sessions() as session:
        disputes = session.scalars(select(Dispute)).all()
        case_ids = [d.case_id for d in disputes]
        levels = Counter(session.scalars(select(CaseEvent.level).where(
            CaseEvent.case_id.in_(case_ids), CaseEvent.action == "resolve")))
        closed = session.scalar(select(func.count()).select_from(Case).where(
            Case.id.in_(case_ids), Case.status == "closed")) or 0
        ratings = session.scalars(select(CaseFeedback.rating).where(CaseFeedback.case_id.in_(case_ids))).all()
        scans = session.scalars(select(CaseAttachment).where(CaseAttachment.case_id.in_(case_ids))).all()
    assert len(disputes) == demo.COUNTS["small"] and all(d.synthetic for d in disputes)
    assert Counter(d.status for d in disputes)["agreed"] > len(disputes) * 3 / 4
    assert levels["village"] > 2 * (levels["township"] + levels["county"])
    # The parties' ratings on a share of the closed disputes, from the centre's call-back.
    assert 0 < len(ratings) < closed and all(1 <= r <= 5 for r in ratings)
    assert scans and all(s.filename == "人民调解协议书.png" for s in scans)
    for scan in scans:
        assert files.open_path(template_db.parent / "files", scan.sha256).read_bytes().startswith(b"\x89PNG")


def made_by_the_demo(database: Database, *, seed: int, now: datetime, files_root: Path) -> dict[str, Any]:
    """Run the disputes generator once more; what it made, field by field."""
    with database.sessions() as session:
        last = session.scalar(select(func.max(Dispute.id))) or 0
    demo.GENERATOR.run(SeedContext(db=database, scale="small", seed=seed, progress=Progress(disable=True),
                                   files_root=files_root, now=now))
    with database.sessions() as session:
        rows = session.execute(
            select(Dispute.title, Dispute.status, Dispute.created_at, Case.number, Case.status, Case.level)
            .join(Case, Case.id == Dispute.case_id).where(Dispute.id > last).order_by(Dispute.id)).all()
        parties = session.scalars(select(DisputeParty.id_number).where(DisputeParty.dispute_id > last)
                                  .order_by(DisputeParty.id)).all()
        new_cases = select(Dispute.case_id).where(Dispute.id > last)
        ratings = session.execute(select(CaseFeedback.case_id, CaseFeedback.rating)
                                  .where(CaseFeedback.case_id.in_(new_cases)).order_by(CaseFeedback.id)).all()
        scans = session.scalars(select(CaseAttachment.sha256).where(CaseAttachment.case_id.in_(new_cases))
                                .order_by(CaseAttachment.id)).all()
    return {"disputes": rows, "parties": parties, "ratings": ratings, "scans": scans}


def test_the_demo_disputes_are_the_same_for_the_same_seed(
    db: Database, template_db: Path, tmp_path: Path
) -> None:
    shutil.copyfile(template_db, tmp_path / "twin.db")
    twin = Database(f"sqlite:///{tmp_path / 'twin.db'}")
    now = utcnow()
    try:
        first = made_by_the_demo(db, seed=7, now=now, files_root=tmp_path / "files")
        assert first == made_by_the_demo(twin, seed=7, now=now, files_root=tmp_path / "files")
        other = made_by_the_demo(twin, seed=8, now=now, files_root=tmp_path / "files")
        assert first["parties"] != other["parties"] and first["scans"] != other["scans"]
    finally:
        twin.dispose()

