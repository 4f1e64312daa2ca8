"""A village operator reads nothing of another village through any registered route.

The test walks every route the app registers, API and page alike, signed in as the demo operator of
village 1, with path parameters filled with the records of village 2 (another township). A route
that takes a record of village 2 must answer 403 or 404; no answer may contain anything that
identifies a person or org unit outside village 1. A new route with a path parameter this walk
does not know fails the test until it is added here, so scope cannot be forgotten.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from starlette.routing import BaseRoute, Mount, Route

from cityops.core.auth.models import ApiToken, OrgUnit, User
from cityops.core.auth.scope import can_access
from cityops.core.auth.sessions import issue_token
from cityops.core.db import Database, utcnow
from cityops.core.export import XLSX_MEDIA_TYPE
from cityops.core.notifications import Notification
from cityops.credit import codes as credit_codes
from cityops.credit import lending as credit_lending
from cityops.credit import repair as credit_repair
from cityops.credit import service as credit_service
from cityops.credit.models import InspectionPlan, InspectionTask, JointVisit, VisitInspector
from cityops.perception import service as perception_service
from cityops.perception.models import Alarm
from cityops.perception.schemas import DeviceCreate, RpcCreate
from cityops.places import service as places_service
from cityops.places.models import Grid
from tests.accounts.helpers import login, logout

# Routes that need no signed-in user, and say nothing about records.
PUBLIC_PATHS = {"/login", "/healthz", "/api/auth/login", "/api/openapi.json", "/api/docs",
                "/docs/oauth2-redirect", "/redoc"}
# Division and grid boundaries are the city's reference map, shown to every staff member; they hold
# no personal information. Their routes are still checked for leaks of people and org units.
REFERENCE_PARAMS = {"/api/places/divisions/{code}", "/api/places/grids/{code}", "/places/{code}"}
# Warnings are published to the public (CAP scope Public): every staff member who reads warnings reads
# them all, wherever their area. Changing one takes warnings.issue, which a village operator lacks.
REFERENCE_PARAMS |= {"/api/warnings/{warning_id}", "/api/warnings/{warning_id}/cap"}
# The response to a warning: its area (grids and villages) is public like the warning; its tasks and
# evacuation figures are those in the reader's scope, and figures are reported for a village in one's
# scope only (404 otherwise, tested in tests/warning/test_response.py).
REFERENCE_PARAMS |= {"/api/warnings/{warning_id}/response", "/api/warnings/{warning_id}/history.xlsx",
                     "/api/warnings/{warning_id}/evacuations"}
# So are the monitoring stations and the levels they read (the public's rain gauges and river levels).
REFERENCE_PARAMS |= {"/api/warnings/stations/{station_code}"}
# A warning's page and its CAP messages, like the warning (its tasks and figures: the reader's scope).
REFERENCE_PARAMS |= {"/warnings/{warning_id}", "/warnings/{warning_id}/messages/{message_id}.xml"}
# Open311 is the city's public interface for citizens' reports: it answers without a session, shows only
# public case types and never personal information. Still checked for leaks.
OPEN311 = "/open311/v2/"
# The ThingsBoard device API: the access token in the path is the device's credential (devices have
# no session), so it answers whoever holds the token. Still checked for leaks.
DEVICE_API = "/api/v1/"
# The public page a scanned 鹤信码 opens answers without a session, and only to a link signed by the city
# (403 otherwise, before anything about the entity is read); it shows public information only. Still
# checked for leaks: the walk's unsigned link must show nothing of the entity.
CREDIT_CODE = "/c/"
# The published results of random inspections (一公开) are open to all and hold no personal information;
# the walk's joint visit is not recorded, so they show nothing of it. Still checked for leaks.
INSPECTION_RESULTS = ("/credit/inspections/results", "/api/credit/inspections/results")
# Routes that act on the signed-in user's own session only.
SELF_ONLY = {"/api/auth/logout", "/logout", "/api/me/password", "/login"}


def walk_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, through included routers and their prefixes."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from walk_routes(included.routes, prefix + (route.include_context.prefix or ""))
        elif isinstance(route, Mount):
            continue  # static files
        elif isinstance(route, APIRoute | Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, prefix + route.path


@pytest.fixture
def foreign(db: Database, client: TestClient) -> dict[str, Any]:
    """Records of village 2 (and others outside village 1), made visible through real use first."""
    login(client, "village2.operator")  # leaves audit entries in village 2
    created = client.post("/api/tokens", json={"name": "village2 system"})
    assert created.status_code in (200, 201), created.text
    case = client.post("/api/cases", json=foreign_case(db, "village2.operator"))
    assert case.status_code == 201, case.text
    dispute = client.post("/api/governance/disputes", json=foreign_dispute(db, "village2.operator"))
    assert dispute.status_code == 201, dispute.text
    attachment = client.post(f"/api/cases/{case.json()['id']}/attachments",
                             files={"file": ("walk.png", b"\x89PNG\r\n\x1a\n walk", "image/png")})
    assert attachment.status_code == 201, attachment.text
    export = client.post("/api/exports", json={"kind": "cases", "params": {}})
    assert export.status_code == 202, export.text
    with db.session() as session:
        owner = session.scalar(select(User.id).where(User.username == "village2.operator"))
        assert owner is not None
        notice = Notification(user_id=owner, title=FOREIGN_CASE_TITLE, link=f"/cases/{case.json()['id']}")
        session.add(notice)
        session.flush()
        notification_id = notice.id
    governance_items = foreign_governance_items(client, db)  # projects, meetings, risks
    device = foreign_device(client, db)
    entity = foreign_entity(client, db)
    logout(client)
    warning_id = foreign_warning(client, db)
    warning_markers = foreign_warning_response(client, warning_id)
    login(client, "village2.grid")
    field_work = foreign_field_work(client, db)  # a visit, a problem report and a patrol
    logout(client)
    transfer = client.post("/api/governance/police-transfers", headers=police_token(db), json={
        **police_call(foreign_case(db, "village2.operator")), "incident_no": FOREIGN_INCIDENT})
    assert transfer.status_code == 201, transfer.text
    with db.sessions() as session:
        me = session.scalar(select(User).where(User.username == "village1.operator"))
        other = session.scalar(select(User).where(User.username == "village2.operator"))
        assert me is not None and other is not None
        hidden_users = [u for u in session.scalars(select(User))
                        if not can_access(me, division_code=u.scope_code, org_unit_id=u.org_unit_id)
                        and u.scope_code and len(u.scope_code) >= 9]
        hidden_units = [o for o in session.scalars(select(OrgUnit))
                        if o.division_code and len(o.division_code) >= 9
                        and not can_access(me, division_code=o.division_code, org_unit_id=o.id)]
        token = session.scalar(select(ApiToken).where(ApiToken.user_id == other.id))
        assert token is not None and other.scope_code
        markers = {u.username for u in hidden_users} | {o.code for o in hidden_units}
        markers |= {u.phone for u in hidden_users if u.phone}
        markers |= {u.id_number for u in hidden_users if u.id_number}
        markers |= {case.json()["number"], FOREIGN_REPORTER, FOREIGN_REPORTER_PHONE, FOREIGN_CASE_TITLE}
        markers.add(transfer.json()["case_number"])
        markers |= {FOREIGN_PARTY, FOREIGN_PARTY_ID, dispute.json()["case_number"]}
        markers |= field_work.pop("markers")
        markers |= {device["name"], device["access_token"]}
        markers |= entity.pop("markers")
        markers |= warning_markers
        number = case.json()["number"]
        return {"user_id": other.id, "prefix": token.prefix, "code": other.scope_code,
                "markers": markers, "case_id": case.json()["id"], "action": "accept",
                "dispute_id": dispute.json()["id"],
                "fmt": "json", "service_code": "urban-garbage", "service_request_id": number, "token": number,
                "incident_no": FOREIGN_INCIDENT, "attachment_id": attachment.json()["id"],
                "notification_id": notification_id,
                "job_id": export.json()["id"], "device_id": device["id"], "alarm_id": device["alarm_id"],
                "rpc_id": device["rpc_id"], "entity_id": entity.pop("id"), **entity,
                "access_token": device["access_token"], "warning_id": warning_id, "profile": "smoke_detector",
                "station_code": "weihe_daokou",  # a demo station
                **foreign_board_items(db, warning_id),
                **governance_items, **field_work}


def foreign_entity(client: TestClient, db: Database) -> dict[str, Any]:
    """A business entity in village 2, with its legal representative's name and ID number."""
    case = foreign_case(db, "village2.operator")
    with db.session() as session:
        index = places_service.cache_for(client.app.state).index(session)  # type: ignore[attr-defined]
        code = credit_codes.make("9", "1", "410611", "MA0WALK2" + credit_codes.organisation_check("MA0WALK2"))
        item = credit_service.EntityIn(code=code, name="二村巡查化工有限公司", lon=case["lon"],
                                       lat=case["lat"], legal_rep_name="孙二法",
                                       legal_rep_id_number="410611199001011238")
        assert credit_service.save_entities(session, items=[item], index=index, actor=None) == ["created"]
    with db.sessions() as session:
        found = credit_service.list_entities(session, viewer=None,
                                             filters=credit_service.Filters(q=code)).items[0]
    return {"id": found.id, "markers": {found.name, found.code, "孙二法", "410611199001011238",
                                        "二村巡查罚〔2026〕1号"}, **foreign_repair_lending(client, found.id),
            "entity_code": found.code, "joint_visit_id": foreign_joint_visit(db, found.id)}


def foreign_joint_visit(db: Database, entity_id: int) -> int:
    """A joint visit to the village 2 entity by two market inspectors, with its food-safety task."""
    with db.session() as session:
        market = session.scalar(select(OrgUnit.id).where(OrgUnit.code == "dept-market"))
        staff = select(User.id).where(User.role == "inspector", User.org_unit_id == market)
        team = list(session.scalars(staff.order_by(User.id).limit(2)))
        assert market is not None and len(team) == 2
        plan = InspectionPlan(year=2026, category="food_safety", org_unit_id=market, seed=1, ratios={},
                              population={}, drawn={}, population_digest="-")
        visit = JointVisit(year=2026, entity_id=entity_id, scheduled_on=utcnow().date(), sequence=0)
        session.add_all([plan, visit])
        session.flush()
        session.add_all([VisitInspector(visit_id=visit.id, user_id=u) for u in team])
        session.add(InspectionTask(plan_id=plan.id, entity_id=entity_id, category="food_safety",
                                   org_unit_id=market, drawn_as="B", first_inspector_id=team[0],
                                   second_inspector_id=team[1], visit_id=visit.id))
        return visit.id


def foreign_repair_lending(client: TestClient, entity_id: int) -> dict[str, Any]:
    """A minor penalty of the village 2 entity with its documents and a repair application, and a bank
    product it is authorised for and has applied for."""
    app_state = client.app.state  # type: ignore[attr-defined]
    with app_state.db.session() as session:
        penalty = credit_repair.PenaltyCreate(
            entity_id=entity_id, decision_number="二村巡查罚〔2026〕1号", title="巡查处罚", severity="minor",
            decided_on=utcnow().date(), served_to="孙二法")
        issued = credit_repair.issue_penalty(
            session, actor=None, files_root=app_state.settings.attachments_dir, data=penalty)
        repair_app = credit_repair.apply_for_repair(
            session, actor=None, index=places_service.cache_for(app_state).index(session),
            data=credit_repair.RepairApply(record_id=issued.record_id))
        bank = credit_lending.create_bank(session, actor=None,
                                          data=credit_lending.BankCreate(code="walk-bank", name="巡查银行"))
        product = credit_lending.publish_product(session, actor=None, data=credit_lending.ProductCreate(
            bank_id=bank.id, name="巡查贷", max_amount=100_000, rate=4, term_months=12))
        granted = credit_lending.authorise(session, actor=None, data=credit_lending.AuthorisationCreate(
            entity_id=entity_id, bank_id=bank.id))
        credit_lending.apply(session, actor=None, data=credit_lending.ApplicationCreate(
            entity_id=entity_id, product_id=product.id, amount=50_000))
        return {"record_id": issued.record_id, "kind": "decision", "application_id": repair_app.id,
                "bank_id": bank.id, "product_id": product.id, "authorisation_id": granted.id}


def foreign_device(client: TestClient, db: Database) -> dict[str, Any]:
    """A smoke detector in village 2 that has sent telemetry."""
    case = foreign_case(db, "village2.operator")
    with db.session() as session:
        index = places_service.cache_for(client.app.state).index(session)  # type: ignore[attr-defined]
        device = perception_service.create_device(session, data=DeviceCreate(
            name="二村烟感-001", profile="smoke_detector", lon=case["lon"], lat=case["lat"]),
            index=index, actor=None)
        found = {"id": device.id, "name": device.name, "access_token": device.access_token}
    sent = client.post(f"/api/v1/{found['access_token']}/telemetry", json={"smoke": 0.5})  # an alarm
    assert sent.status_code == 200, sent.text
    with db.sessions() as session:
        alarm = session.scalar(select(Alarm).where(Alarm.device_id == found["id"]))
        assert alarm is not None and alarm.case_id is not None  # and the case it opened
        found["alarm_id"] = alarm.id
    with db.session() as session:  # a command to it, waiting for the device
        command = RpcCreate(method="getStatus", timeout_ms=600_000)
        found["rpc_id"] = perception_service.create_rpc(session, actor=None, device_id=found["id"],
                                                        data=command).id
    return found


def foreign_warning(client: TestClient, db: Database) -> int:
    """A rainstorm warning over village 2, issued by the administrator."""
    with db.sessions() as session:
        village = session.scalar(select(User.scope_code).where(User.username == "village2.operator"))
    login(client, "admin")
    issued = client.post("/api/warnings", json={
        "hazard": "rainstorm", "level": "blue", "division_codes": [village],
        "expires": (utcnow() + timedelta(hours=6)).isoformat(), "instruction": "远离河道。"})
    assert issued.status_code == 201, issued.text
    logout(client)
    return int(issued.json()["id"])


def foreign_board_items(db: Database, warning_id: int) -> dict[str, Any]:
    """A satellite change area in village 2 (a case is opened from it in one's scope only), and the
    first CAP message of the warning over village 2."""
    from cityops.warning import satellite
    from cityops.warning.models import WarningMessage

    case = foreign_case(db, "village2.operator")
    lon, lat, half = case["lon"], case["lat"], 0.0005
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    scene = {"scene_id": "WALK-GF2", "sensor": "GF-2", "source": "walk", "acquired_at": utcnow().isoformat(),
             "cloud_cover": 1, "resolution_m": 1, "footprint": {"type": "Polygon", "coordinates": [ring]},
             "changes": [{"kind": "illegal_building", "confidence": 0.9,
                          "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    with db.session() as session:
        made = satellite.import_scenes(session, data=[scene], actor=None)
        message_id = session.scalar(select(WarningMessage.id).where(WarningMessage.warning_id == warning_id))
    return {"change_id": made.scenes[0].changes[0].id, "message_id": message_id}


def foreign_warning_response(client: TestClient, warning_id: int) -> set[str]:
    """Village 2's figures of people evacuated under the warning; the numbers of the warning's tasks
    there (none may show outside village 2)."""
    login(client, "village2.operator")
    village = client.get("/api/me").json()["scope_code"]
    reported = client.post(f"/api/warnings/{warning_id}/evacuations",
                           json={"village_code": village, "evacuated": 77, "note": FOREIGN_EVACUATION})
    assert reported.status_code == 201, reported.text
    tasks = client.get(f"/api/warnings/{warning_id}/response").json()["tasks"]
    assert tasks, "the warning over village 2 handed out no tasks"
    logout(client)
    return {t["number"] for t in tasks} | {FOREIGN_EVACUATION}


FOREIGN_EVACUATION = "二村转移至村小学"
FOREIGN_REPORTER = "赵二村"
FOREIGN_REPORTER_PHONE = "13900002222"
FOREIGN_CASE_TITLE = "二村的宅基地纠纷"


FOREIGN_INCIDENT = "J-WALK-0002"
FOREIGN_PARTY = "钱二村"
FOREIGN_PARTY_ID = "410602198505053211"


def foreign_dispute(db: Database, username: str) -> dict[str, Any]:
    """A dispute with two parties at a point inside the village of `username`."""
    case = foreign_case(db, username)
    return {"category": "neighbour", "title": FOREIGN_CASE_TITLE, "lon": case["lon"], "lat": case["lat"],
            "parties": [{"name": FOREIGN_PARTY, "id_number": FOREIGN_PARTY_ID},
                        {"name": FOREIGN_REPORTER, "phone": FOREIGN_REPORTER_PHONE}]}


def foreign_governance_items(client: TestClient, db: Database) -> dict[str, Any]:
    """A project with a mitigation in the signed-in village 2 operator's village (path params of
    governance/assessment, meetings and risks)."""
    project = client.post("/api/governance/projects", json={
        "name": "二村垃圾中转站选址", "owner_unit_code": "dept-urban"})
    assert project.status_code == 201, project.text
    measure = client.post(f"/api/governance/projects/{project.json()['id']}/mitigations", json={
        "measure": "召开村民听证会", "responsible_unit_code": "dept-justice"})
    assert measure.status_code == 201, measure.text
    meeting = client.post("/api/governance/meetings", json={"held_at": "2030-01-01T09:00:00"})
    assert meeting.status_code == 201, meeting.text
    item = client.post(f"/api/governance/meetings/{meeting.json()['id']}/agenda", json={"title": "二村议题"})
    assert item.status_code == 201, item.text
    from tests.cases.helpers import report  # a cluster of one category in one place: a risk

    cases = [report(client, db, meeting.json()["division_code"], type_code="urban", category="garbage",
                    title="二村垃圾堆放", fields={}) for _ in range(3)]
    assert client.post("/api/governance/risks/scan").status_code == 200
    risk_ids = [r["id"] for r in client.get("/api/governance/risks?limit=500").json()["items"]
                if {c["id"] for c in cases} & {c["id"] for c in client.get(f"/api/governance/risks/{r['id']}")
                                               .json()["cases"]}]
    assert risk_ids, "no risk registered for the cluster of village 2"
    return {"project_id": project.json()["id"], "mitigation_id": measure.json()["id"],
            "meeting_id": meeting.json()["id"], "item_id": item.json()["agenda"][0]["id"],
            "risk_id": risk_ids[0]}


def police_token(db: Database) -> dict[str, str]:
    with db.session() as session:
        police = session.scalar(select(User).where(User.username == "police.handler"))
        assert police is not None
        _row, token = issue_token(session, user=police, name="110 platform", days=None)
    return {"Authorization": f"Bearer {token}"}


def police_call(case: dict[str, Any]) -> dict[str, Any]:
    """A 110 call transferred by the police system at the case's place, with the case's caller."""
    return {"category": "neighbour_dispute", "lon": case["lon"], "lat": case["lat"],
            "caller_name": case["reporter_name"], "caller_phone": case["reporter_phone"],
            "callback_url": "http://127.0.0.1:9/hooks/police"}


def foreign_case(db: Database, username: str) -> dict[str, Any]:
    """A dispute reported at a point inside the village of `username`."""
    with db.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None and user.scope_code
        grid = session.scalars(select(Grid).where(Grid.village_code == user.scope_code[:12])
                               .order_by(Grid.code)).first()
        assert grid is not None
        return {"type_code": "dispute", "category": "neighbour", "title": FOREIGN_CASE_TITLE,
                "lon": grid.centroid_lon, "lat": grid.centroid_lat, "reporter_name": FOREIGN_REPORTER,
                "reporter_phone": FOREIGN_REPORTER_PHONE, "fields": {"parties": 2}}


FOREIGN_HOUSEHOLD = "孙二户"
FOREIGN_HOUSEHOLD_PHONE = "13700002222"


def foreign_field_work(client: TestClient, db: Database) -> dict[str, Any]:
    """The signed-in village 2 grid worker's visit (with a photo and an issue), a problem reported with
    a photo, and a patrol (path params of governance/visits)."""
    case = foreign_case(db, "village2.grid")
    photo = {"photo": ("walk.png", b"\x89PNG\r\n\x1a\n field walk", "image/png")}
    visit = client.post("/api/governance/visits", files=photo, data={
        "kinds": ["visit"], "address": "二村一组1号", "household_head": FOREIGN_HOUSEHOLD,
        "household_phone": FOREIGN_HOUSEHOLD_PHONE, "lon": case["lon"], "lat": case["lat"],
        "issues": '[{"kind": "neighbour_dispute", "title": "二村走访发现的纠纷"}]'})
    assert visit.status_code == 201, visit.text
    report = client.post("/api/governance/visits/reports", files=photo, data={
        "kind": "rubbish", "title": "二村垃圾", "lon": case["lon"], "lat": case["lat"]})
    assert report.status_code == 201, report.text
    patrol = client.post("/api/governance/patrols",
                         json={"points": [{"lon": case["lon"], "lat": case["lat"]}]})
    assert patrol.status_code == 201, patrol.text
    return {"visit_id": visit.json()["id"], "issue_id": report.json()["id"], "patrol_id": patrol.json()["id"],
            # The reported rubbish is a public case type: Open311 lists its number for everyone.
            "markers": {FOREIGN_HOUSEHOLD, FOREIGN_HOUSEHOLD_PHONE, visit.json()["issues"][0]["case_number"]}}


def leaks(markers: set[str], text: str) -> list[str]:
    """Markers standing whole in text: centre-410611100 must not match inside centre-410611100201."""
    pattern = "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))
    return re.findall(rf"(?<![0-9A-Za-z])(?:{pattern})(?![0-9A-Za-z])", text)


def readable_text(response: Any) -> str:
    """The text a person would read: the cells of an Excel export, else the body."""
    if response.headers.get("content-type", "").startswith(XLSX_MEDIA_TYPE):
        book = load_workbook(io.BytesIO(response.content), read_only=True)
        return "\n".join(str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True)
                         for v in row if v is not None)
    return str(response.text)


def fill(path: str, values: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in values, f"{path}: the scope walk does not know path parameter {{{name}}}; add it"
        return str(values[name])

    return re.sub(r"{([^}]+)}", value, path)


def test_village_operator_cannot_read_another_village(app: FastAPI, client: TestClient,
                                                       foreign: dict[str, Any]) -> None:
    assert len(foreign["markers"]) > 100  # other villages' centres, people, phones, ID numbers
    login(client, "village1.operator")
    checked = 0
    for method, path in walk_routes(app.routes):
        if path in PUBLIC_PATHS and method == "GET":
            continue
        if path in SELF_ONLY:
            continue
        url = fill(path, foreign)
        if method == "GET":
            response = client.get(url, follow_redirects=False)
        else:
            response = client.request(method, url, json={}, follow_redirects=False)
        checked += 1
        takes_record = ("{" in path and path not in REFERENCE_PARAMS and not path.startswith(OPEN311)
                        and not path.startswith(DEVICE_API))
        if takes_record:
            assert response.status_code in (403, 404), f"{method} {url} -> {response.status_code}"
        assert response.status_code < 500, f"{method} {url} -> {response.status_code}: {response.text[:300]}"
        # What the request itself carries (a credit code in the path) is no leak when a page echoes it,
        # e.g. in its language links.
        leaked = leaks({m for m in foreign["markers"] if m not in url}, readable_text(response))
        assert not leaked, f"{method} {url} shows records outside village 1: {leaked[:5]}"
    assert checked >= 20


def test_village_operator_cannot_create_users_elsewhere(client: TestClient, foreign: dict[str, Any]) -> None:
    login(client, "village1.operator")
    response = client.post("/api/users", json={
        "username": "intruder", "display_name": "越权", "password": "a-long-password-1",
        "role": "grid_worker", "scope_code": foreign["code"]})
    assert response.status_code in (403, 422), response.text


def test_every_route_but_the_public_ones_needs_a_signed_in_user(app: FastAPI, client: TestClient,
                                                                foreign: dict[str, Any]) -> None:
    for method, path in walk_routes(app.routes):
        if (path in PUBLIC_PATHS or method != "GET" or path.startswith((OPEN311, DEVICE_API, CREDIT_CODE))
                or path in INSPECTION_RESULTS):
            continue
        response = client.get(fill(path, foreign), follow_redirects=False)
        status = response.status_code
        assert status in (401, 303, 307), f"GET {path} answers {status} anonymously"
