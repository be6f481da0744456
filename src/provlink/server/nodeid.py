"""Marquez node ids: ``job:<ns>:<name>``, ``dataset:<ns>:<name>``,
``datasetField:<ns>:<ds>:<field>``.

Marquez splits ids on ``:`` except where the colon starts ``//`` or a port number, and the
last part takes the rest, so URIs such as ``sqlite:///x/mlflow.db`` or
``http://127.0.0.1:5001`` work as namespaces.

>>> parse_node_id("dataset:http://127.0.0.1:5001:models/churn/3")
NodeId(kind='dataset', namespace='http://127.0.0.1:5001', name='models/churn/3', field=None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DELIM = re.compile(r":(?!//|\d)")
_PARTS = {"job": 3, "dataset": 3, "datasetField": 4}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeId:
    """A parsed node id; ``field`` only for ``datasetField`` ids."""

    kind: str
    namespace: str
    name: str
    field: str | None = None


def parse_node_id(value: str) -> NodeId:
    """Parse ``value``; raise ``ValueError`` with a readable message when it is not a node id."""
    kind = value.split(":", 1)[0]
    expected = _PARTS.get(kind)
    if expected is None:
        raise ValueError(f"nodeId must start with one of {sorted(_PARTS)}: {value!r}")
    parts: list[str] = []
    start = len(kind) + 1
    for match in _DELIM.finditer(value, start):
        if len(parts) == expected - 2:
            break
        parts.append(value[start : match.start()])
        start = match.end()
    parts.append(value[start:])
    if len(parts) != expected - 1 or not all(parts):
        raise ValueError(f"nodeId {value!r} must have {expected} ':'-separated parts")
    if kind == "datasetField":
        return NodeId(kind=kind, namespace=parts[0], name=parts[1], field=parts[2])
    return NodeId(kind=kind, namespace=parts[0], name=parts[1])


def job_node(namespace: str, name: str) -> str:
    return f"job:{namespace}:{name}"


def dataset_node(namespace: str, name: str) -> str:
    return f"dataset:{namespace}:{name}"


def field_node(namespace: str, dataset: str, field: str) -> str:
    return f"datasetField:{namespace}:{dataset}:{field}"
