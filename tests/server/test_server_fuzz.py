"""Hypothesis fuzz of the ingestion endpoints: malformed and odd events get a 4xx whose
message names the field, never a 5xx, and the store stays consistent afterwards."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from provlink.canonical import json_digest
from provlink.errors import EventValidationError
from provlink.server.app import create_app
from provlink.server.nodeid import parse_node_id
from provlink.server.validation import validate_event
from tests.server.server_events import dataset, facet, pipeline, run_event

ODD_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "a:b",
            "job:x:y",
            "9" * 400,
            "2024-13-45T99:00:00Z",
            "2024-05-01T00:00:00",
            "0001-01-01T00:00:00+14:00",
            "é✓",
            "%2F",
            "../..",
        ]
    ),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | ODD_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(ODD_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)


def _bases() -> list[dict[str, Any]]:
    lineage = facet(fields={"c": {"inputFields": [{"namespace": "f", "name": "in", "field": "c"}]}})
    return [
        *pipeline()[:2],
        run_event(
            "fuzz",
            inputs=[dataset("f", "in", ["c"])],
            outputs=[dataset("f", "out", ["c"], columnLineage=lineage)],
            run_facets={
                "parent": facet(
                    run={"runId": "3f6d5b6e-1a52-4c07-9b36-3c1f1d2b1a11"},
                    job={"namespace": "p", "name": "parent"},
                ),
                "nominalTime": facet(nominalStartTime="2024-05-01T00:00:00Z"),
            },
            job_facets={
                "jobType": facet(processingType="STREAMING", integration="X", jobType="J"),
                "sourceCodeLocation": facet(type="git", url="https://x/y"),
            },
        ),
        {
            "eventTime": "2024-05-01T00:00:00Z",
            "producer": "https://p",
            "schemaURL": "https://s",
            "dataset": dataset(
                "f", "static", ["x"], dataSource=facet(name="src", uri="postgres://h:5432")
            ),
        },
        {
            "eventTime": "2024-05-01T00:00:00Z",
            "producer": "https://p",
            "schemaURL": "https://s",
            "job": {"namespace": "n", "name": "j"},
            "inputs": [dataset("f", "in")],
            "outputs": [],
        },
    ]


BASES = _bases()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    event: Any = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(event)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "replace", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif isinstance(parent, dict):
            parent[draw(ODD_TEXT)] = draw(JSON_VALUES)
    if draw(st.integers(0, 20)) == 0:
        event = draw(JSON_VALUES)
    return event


def _check_answer(response: Any, event: Any) -> bool:
    """Assert the answer is a 201 for a valid event or a 4xx naming the field; True if stored."""
    assert response.status_code < 500, (response.status_code, response.text, event)
    try:
        validate_event(event)
        expected_field = None
    except EventValidationError as error:
        expected_field = error.field
    if response.status_code == 201:
        assert expected_field is None
        return True
    assert response.status_code == 422, (response.status_code, response.text)
    body = response.json()
    assert body["field"] == expected_field and expected_field in body["message"]
    return False


def _expected_counts(events: list[dict[str, Any]]) -> dict[str, int]:
    """What the store must hold after ``events``, derived from the events alone."""
    jobs = {(e["job"]["namespace"], e["job"]["name"]) for e in events if "dataset" not in e
            or "run" in e}
    datasets = {(e["dataset"]["namespace"], e["dataset"]["name"]) for e in events
                if "run" not in e and "dataset" in e}
    for event in events:
        if "run" in event or "dataset" not in event:
            for key in ("inputs", "outputs"):
                datasets |= {(d["namespace"], d["name"]) for d in event.get(key) or []}
    runs = {e["run"]["runId"].lower() for e in events if "run" in e}
    namespaces = {ns for ns, _ in jobs | datasets}
    return {"events": len(events), "jobs": len(jobs), "datasets": len(datasets),
            "runs": len(runs), "namespaces": len(namespaces)}


def _assert_store_intact(store: Any, client: TestClient, stored: dict[str, Any]) -> None:
    """The store holds exactly what the accepted events say, and every job's graph is served."""
    counts = store.counts()
    expected = _expected_counts(list(stored.values()))
    assert {key: counts[key] for key in expected} == expected
    assert client.get("/api/v1/events/lineage", params={"limit": 1}).json()["totalCount"] == len(
        stored
    )
    jobs = client.get("/api/v1/jobs", params={"limit": 1000}).json()["jobs"]
    assert len(jobs) == expected["jobs"]
    for job in jobs:
        node = f"job:{job['namespace']}:{job['name']}"
        response = client.get("/api/v1/lineage", params={"nodeId": node})
        try:
            parsed = parse_node_id(node)
            readable = (parsed.namespace, parsed.name) == (job["namespace"], job["name"])
        except ValueError:
            readable = False
        if readable:
            assert response.status_code == 200, (node, response.text)
            assert node in {n["id"] for n in response.json()["graph"]}
        else:  # Marquez's id syntax cannot name this job (e.g. a ':' inside its namespace)
            assert response.status_code in (400, 404), (node, response.text)
    exported = {json_digest(e) for e in store.iter_events()}
    assert exported == set(stored)


def test_fuzzed_single_events(store: Any) -> None:
    client = TestClient(create_app(store))  # a server exception fails the test with its traceback
    stored: dict[str, Any] = {}

    @given(event=mutated_events())
    @settings(
        max_examples=1200, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def post(event: Any) -> None:
        body = json.dumps(event)
        response = client.post(
            "/api/v1/lineage", content=body, headers={"Content-Type": "application/json"}
        )
        if _check_answer(response, event):
            parsed = json.loads(body)
            stored[json_digest(parsed)] = parsed

    post()
    assert stored, "the fuzz must also produce some valid events"
    _assert_store_intact(store, client, stored)


def test_fuzzed_raw_bodies_and_batches(store: Any) -> None:
    client = TestClient(create_app(store))  # a server exception fails the test with its traceback
    stored: dict[str, Any] = {}

    @given(
        body=st.binary(max_size=64)
        | st.sampled_from([b"[", b"{}", b"[]", b"null", b'"x"', b"[" * 5000, b'{"a": Infinity}'])
    )
    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def raw(body: bytes) -> None:
        for path in ("/api/v1/lineage", "/api/v1/lineage/batch"):
            response = client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
            assert response.status_code == 200 or response.json()["message"]

    @given(events=st.lists(mutated_events(), max_size=6))
    @settings(
        max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def batch(events: list[Any]) -> None:
        response = client.post(
            "/api/v1/lineage/batch",
            content=json.dumps(events),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        invalid = {error["index"] for error in answer["errors"]}
        valid = [e for i, e in enumerate(events) if i not in invalid]
        for index, event in enumerate(events):
            try:
                validate_event(event)
                assert index not in invalid
            except EventValidationError as error:
                assert {"index": index, "field": error.field, "message": error.message} in answer[
                    "errors"
                ]
        assert answer["stored"] + answer["duplicates"] == len(valid)
        stored.update((json_digest(e), e) for e in valid)

    raw()
    batch()
    _assert_store_intact(store, client, stored)
