"""Pydantic schemas of the livability package."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class NetworkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    source: str
    synthetic: bool
    crs: str
    node_count: int
    edge_count: int
    length_km: float
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    created_at: datetime


class NetworkImported(BaseModel):
    """What an import stored, and what it left out."""

    network: NetworkRead
    ways: int
    # Way-node references to nodes not in the file (ways cut at the edge of an extract).
    missing_nodes: int
    # Edges in fragments not connected to the largest part of the network.
    dropped_edges: int
    replaced: bool
