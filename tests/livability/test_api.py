"""The livability JSON routes: the networks, and an isochrone on the demo's synthetic network."""

from __future__ import annotations

import numpy as np
import shapely
from fastapi.testclient import TestClient

from cityops.core.db import Database
from cityops.livability import demo, service
from tests.accounts.helpers import login


def test_a_leader_lists_networks_and_draws_an_isochrone(client: TestClient, db: Database) -> None:
    login(client, "leader")
    listed = client.get("/api/livability/networks")
    assert listed.status_code == 200, listed.text
    [network] = [n for n in listed.json() if n["name"] == demo.DEMO_NETWORK]
    assert network["synthetic"] is True and network["edge_count"] > 1000
    with db.sessions() as session:
        graph = service.load_graph(session, name=demo.DEMO_NETWORK)
    degree = np.bincount(np.concatenate([graph.u, graph.v]), minlength=graph.node_count)
    node = int(np.argmax(degree))  # a junction in a town
    lon, lat = float(graph.lon[node]), float(graph.lat[node])
    drawn = client.get("/api/livability/isochrone",
                       params={"network": demo.DEMO_NETWORK, "lon": lon, "lat": lat, "minutes": 10})
    assert drawn.status_code == 200, drawn.text
    feature = drawn.json()
    area = shapely.geometry.shape(feature["geometry"])
    assert area.contains(shapely.Point(lon, lat))
    assert feature["properties"]["distance_m"] == 660.0  # 10 minutes at 1.1 m/s
    assert 0.2 < area.area * 111_000 * 91_000 / 1e6 < 2.0  # km²: less than the 660 m disk (1.37 km²) + buffer


def test_isochrone_errors_name_the_problem(client: TestClient) -> None:
    login(client, "leader")
    unknown = client.get("/api/livability/isochrone",
                         params={"network": "nowhere", "lon": 114.3, "lat": 35.7})
    assert unknown.status_code == 404 and "no network named 'nowhere'" in unknown.json()["message"]
    far = client.get("/api/livability/isochrone",
                     params={"network": demo.DEMO_NETWORK, "lon": 100.0, "lat": 30.0})
    assert far.status_code == 422 and "from every street" in far.json()["message"]
    assert far.json()["field"] == "lon"


def test_a_citizen_may_not_see_the_networks(client: TestClient) -> None:
    login(client, "citizen")
    refused = client.get("/api/livability/networks")
    assert refused.status_code == 403 and "livability.view" in refused.json()["message"]
