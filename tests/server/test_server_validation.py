"""validate_event names the offending field; node ids parse like Marquez's; API key specs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from provlink.errors import ConfigError, EventValidationError
from provlink.server.auth import KeyRing
from provlink.server.nodeid import parse_node_id
from provlink.server.validation import validate_event
from tests.server.server_events import dataset, run_event


def _without(event: dict[str, Any], *path: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def _with(event: dict[str, Any], value: Any, *path: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


BASE = run_event("job", inputs=[dataset("n", "in")], outputs=[dataset("n", "out")])


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (_without(BASE, "eventTime"), "eventTime"),
        (_with(BASE, "yesterday", "eventTime"), "eventTime"),
        (_with(BASE, "2024-05-01T00:00:00", "eventTime"), "eventTime"),
        (_without(BASE, "producer"), "producer"),
        (_with(BASE, "not a uri", "schemaURL"), "schemaURL"),
        (_without(BASE, "run", "runId"), "run.runId"),
        (_with(BASE, "1234", "run", "runId"), "run.runId"),
        (_with(BASE, [], "run", "facets"), "run.facets"),
        (_with(BASE, {"x": 1}, "run", "facets"), "run.facets.x"),
        (_without(BASE, "job"), "job"),
        (_without(BASE, "job", "name"), "job.name"),
        (_with(BASE, "", "job", "namespace"), "job.namespace"),
        (_with(BASE, "a\x00b", "job", "name"), "job.name"),
        (_with(BASE, "DONE", "eventType"), "eventType"),
        (_with(BASE, {}, "inputs"), "inputs"),
        (_without(BASE, "inputs", 0, "name"), "inputs[0].name"),
        (_with(BASE, {"s": "x"}, "outputs", 0, "outputFacets"), "outputs[0].outputFacets.s"),
        ([], "event"),
    ],
)
def test_invalid_events_name_the_field(event: Any, field: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        validate_event(event)
    assert caught.value.field == field


def test_valid_events_of_each_kind() -> None:
    validate_event(BASE)
    validate_event(_without(BASE, "eventType"))
    validate_event(
        {
            "eventTime": "2024-05-01T00:00:00+02:00",
            "producer": "https://p",
            "schemaURL": "https://s",
            "dataset": {"namespace": "n", "name": "d"},
        }
    )
    validate_event(
        {
            "eventTime": "2024-05-01T00:00:00Z",
            "producer": "https://p",
            "schemaURL": "https://s",
            "job": {"namespace": "n", "name": "j"},
        }
    )


@pytest.mark.parametrize(
    ("node", "namespace", "name", "field"),
    [
        ("job:ns:a.b", "ns", "a.b", None),
        (
            "dataset:sqlite:///tmp/mlruns/mlflow.db:models/churn/3",
            "sqlite:///tmp/mlruns/mlflow.db",
            "models/churn/3",
            None,
        ),
        (
            "dataset:http://127.0.0.1:5001:models/churn/3",
            "http://127.0.0.1:5001",
            "models/churn/3",
            None,
        ),
        ("dataset:postgres://db:5432:public.t", "postgres://db:5432", "public.t", None),
        ("datasetField:ns:ds:col", "ns", "ds", "col"),
    ],
)
def test_node_ids_split_like_marquez(
    node: str, namespace: str, name: str, field: str | None
) -> None:
    parsed = parse_node_id(node)
    assert (parsed.namespace, parsed.name, parsed.field) == (namespace, name, field)


@pytest.mark.parametrize("node", ["", "run:abc", "job:ns", "job::x", "dataset"])
def test_bad_node_ids(node: str) -> None:
    with pytest.raises(ValueError):
        parse_node_id(node)


def test_api_key_specs() -> None:
    ring = KeyRing.from_specs(["both-scopes-key", "reader-only-key:read", "odd:key:value"])
    assert ring.scopes("Bearer both-scopes-key") == {"read", "write"}
    assert ring.scopes("bearer reader-only-key") == {"read"}
    assert ring.scopes("Bearer odd:key:value") == {"read", "write"}
    assert ring.scopes("Basic both-scopes-key") is None
    assert ring.scopes(None) is None
    with pytest.raises(ConfigError):
        KeyRing.from_specs(["short"])
