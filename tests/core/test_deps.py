"""The request's unit of work commits in the endpoint's own thread on every route."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from cityops.core.deps import UnitOfWorkRoute


def api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_every_api_route_commits_in_its_endpoint_thread(app: FastAPI) -> None:
    """A router built without route_class=UnitOfWorkRoute would commit in a second thread-pool call,
    which under load waits for a thread while holding the database's write lock."""
    routes = list(api_routes(app.routes))
    assert len(routes) > 50
    plain = sorted(f"{sorted(r.methods)} {r.path}" for r in routes if not isinstance(r, UnitOfWorkRoute))
    assert plain == []
