"""Open311 GeoReport v2: the spec's documents in JSON and XML, its errors, its parameter rules, and a
GeoReport client library from PyPI reading a running server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.cases.models import Case
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.sessions import issue_token
from cityops.core.db import Database
from tests.cases.helpers import point_in_village, scope_of

BASE = "/open311/v2"


@pytest.fixture
def api_key(db: Database) -> str:
    """A key for a citizen-reporting app, issued to a city operator's account."""
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == "city.operator"))
        assert user is not None
        _row, token = issue_token(session, user=user, name="open311 app", days=30)
    return token


def post_fire_hazard(client: TestClient, db: Database, key: str, extra: dict[str, str] | None = None) -> Any:
    lon, lat, _grid = point_in_village(db, scope_of(db, "village1.operator"))
    form = {"api_key": key, "service_code": "hazard-fire", "lat": str(lat), "long": str(lon),
            "description": "楼道堆放杂物堵塞消防通道", "first_name": "明", "last_name": "王",
            "phone": "13911112222", "attribute[immediate_danger]": "true", **(extra or {})}
    return client.post(f"{BASE}/requests.json", data=form)


def test_services_are_the_public_case_types_in_json_and_xml(client: TestClient) -> None:
    services = client.get(f"{BASE}/services.json").json()
    codes = {s["service_code"] for s in services}
    assert "hazard-fire" in codes and "urban-garbage" in codes
    assert not any(c.startswith("dispute-") for c in codes)  # disputes are internal
    fire = next(s for s in services if s["service_code"] == "hazard-fire")
    assert fire["metadata"] is True and fire["type"] == "realtime" and fire["service_name"] == "消防隐患"
    xml = client.get(f"{BASE}/services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(xml.content)
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert root.find("service/service_code") is not None


def test_service_definition_lists_attributes(client: TestClient) -> None:
    definition = client.get(f"{BASE}/services/hazard-fire.json").json()
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert attributes["immediate_danger"]["datatype"] == "singlevaluelist"
    assert attributes["immediate_danger"]["required"] is True
    assert {v["key"] for v in attributes["immediate_danger"]["values"]} == {"true", "false"}
    assert attributes["found_on"]["datatype"] == "datetime"
    root = ET.fromstring(client.get(f"{BASE}/services/hazard-fire.xml").content)
    assert root.tag == "service_definition" and root.findall("attributes/attribute")


def test_a_posted_request_becomes_a_routed_case(client: TestClient, db: Database, api_key: str) -> None:
    response = post_fire_hazard(client, db, api_key)
    assert response.status_code == 201, response.text
    [created] = response.json()
    number = created["service_request_id"]
    with db.sessions() as session:
        case = session.scalar(select(Case).where(Case.number == number))
        assert case is not None and case.source == "open311" and case.fields == {"immediate_danger": True}
        unit = session.get(OrgUnit, case.org_unit_id)
        assert unit is not None and unit.code == "dept-fire"  # fire hazards belong to the fire brigade
        assert case.reporter_phone == "13911112222"
    [request] = client.get(f"{BASE}/requests/{number}.json").json()
    assert request["status"] == "open" and request["service_code"] == "hazard-fire"
    assert request["agency_responsible"] == unit.name
    assert "13911112222" not in str(request)  # personal information stays inside


def test_query_and_form_parameters_are_merged(client: TestClient, db: Database, api_key: str) -> None:
    lon, lat, _grid = point_in_village(db, scope_of(db, "village2.operator"))
    response = client.post(f"{BASE}/requests.xml?api_key={api_key}&service_code=urban-garbage",
                           data={"lat": str(lat), "long": str(lon), "description": "路边垃圾"})
    assert response.status_code == 201, response.text
    root = ET.fromstring(response.content)
    assert root.tag == "service_requests" and root.find("request/service_request_id") is not None


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"api_key": ""}, 403, "api_key is required"),
    ({"api_key": "wrong"}, 403, "api_key is not valid"),
    ({"service_code": "nonsense"}, 404, "not provided"),
    ({"lat": "north"}, 400, "lat"),
    ({"long": "200"}, 400, "long"),
    ({"lat": "0", "long": "0"}, 400, "outside"),
    ({"attribute[immediate_danger]": "maybe"}, 400, "true or false"),
    ({"attribute[colour]": "red"}, 400, "unknown attribute"),
])
def test_bad_posts_get_the_spec_error_list(client: TestClient, db: Database, api_key: str,
                                            change: dict[str, str], status: int, words: str) -> None:
    response = post_fire_hazard(client, db, api_key, change)
    assert response.status_code == status, response.text
    [error] = response.json()
    assert error["code"] == status and words in error["description"]


def test_errors_in_xml_and_unknown_formats(client: TestClient) -> None:
    response = client.get(f"{BASE}/requests/HB-1999-000001.xml")
    assert response.status_code == 404
    root = ET.fromstring(response.content)
    assert root.tag == "errors" and root.find("error/code").text == "404"  # type: ignore[union-attr]
    assert client.get(f"{BASE}/services.html").status_code == 404
    assert client.get(f"{BASE}/services.json", params={"jurisdiction_id": "110000"}).status_code == 404


def test_request_filters(client: TestClient, db: Database, api_key: str) -> None:
    numbers = [post_fire_hazard(client, db, api_key).json()[0]["service_request_id"] for _ in range(3)]
    everything = client.get(f"{BASE}/requests.json").json()
    assert set(numbers) <= {r["service_request_id"] for r in everything}
    # An empty parameter counts as absent; comma lists select several.
    assert client.get(f"{BASE}/requests.json", params={"status": "", "service_code": ""}).json() == everything
    picked = client.get(f"{BASE}/requests.json", params={"service_request_id": ",".join(numbers[:2])}).json()
    assert sorted(r["service_request_id"] for r in picked) == sorted(numbers[:2])
    closed = client.get(f"{BASE}/requests.json", params={"status": "closed", "service_code": "hazard-fire"})
    assert not set(numbers) & {r["service_request_id"] for r in closed.json()}
    assert all(r["status"] == "closed" for r in closed.json())
    fire_open = client.get(f"{BASE}/requests.json", params={"status": "open,closed",
                                                            "service_code": "hazard-fire,urban-garbage"})
    assert set(numbers) <= {r["service_request_id"] for r in fire_open.json()}
    long_ago = (datetime.now(UTC) - timedelta(days=4000)).isoformat()
    assert client.get(f"{BASE}/requests.json", params={"start_date": long_ago}).json() == []
    too_wide = client.get(f"{BASE}/requests.json", params={
        "start_date": long_ago, "end_date": datetime.now(UTC).isoformat()})
    assert too_wide.status_code == 400 and "90 days" in too_wide.json()[0]["description"]
    naive = client.get(f"{BASE}/requests.json", params={"start_date": "2024-01-01T00:00:00"})
    assert naive.status_code == 400


def test_token_answers_the_request_id(client: TestClient, db: Database, api_key: str) -> None:
    number = post_fire_hazard(client, db, api_key).json()[0]["service_request_id"]
    assert client.get(f"{BASE}/tokens/{number}.json").json() == [{"service_request_id": number,
                                                                   "token": number}]


def test_discovery(client: TestClient) -> None:
    document = client.get(f"{BASE}/discovery.json").json()
    assert document["endpoints"][0]["url"].endswith("/open311/v2/")
    assert ET.fromstring(client.get(f"{BASE}/discovery.xml").content).tag == "discovery"


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_georeport_client_reads_services_and_requests(live_server: str, db: Database, api_key: str,
                                                      output_format: str) -> None:
    from georeport import GeoReport

    lon, lat, _grid = point_in_village(db, scope_of(db, "village1.operator"))
    posted = httpx.post(f"{live_server}{BASE}/requests.json", data={
        "api_key": api_key, "service_code": "urban-garbage", "lat": str(lat), "long": str(lon),
        "description": "小区门口垃圾堆积"})
    assert posted.status_code == 201, posted.text
    number = posted.json()[0]["service_request_id"]

    client = GeoReport(f"{live_server}{BASE}", jurisdiction="410600", output_format=output_format)
    services = client.get_service_list()
    assert "hazard-fire" in {s["service_code"] for s in services}
    assert client.get_service_definition("hazard-fire")["service_code"] == "hazard-fire"
    found = client.get_service_request(number)
    assert found["service_request_id"] == number and found["status"] == "open"
    listed = client.get_service_requests(service_code="urban-garbage", status="open")
    listed = listed if isinstance(listed, list) else [listed]  # xmltodict gives one element bare
    assert number in {r["service_request_id"] for r in listed}
