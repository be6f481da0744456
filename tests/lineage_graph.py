"""Reading a Marquez-shaped lineage graph in tests."""

from __future__ import annotations

from typing import Any


def edges(graph: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (origin, destination) edge of a ``GET /lineage`` answer."""
    return {(e["origin"], e["destination"]) for node in graph["graph"]
            for e in [*node["inEdges"], *node["outEdges"]]}
