"""Hypothesis fuzz of the ingestion endpoints: malformed and odd events get a 4xx whose
message names the field, never a 5xx, and the store stays consistent afterwards."""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from provlink.canonical import json_digest
from provlink.errors import EventValidationError
from provlink.server.app import create_app
from provlink.server.nodeid import parse_node_id
from provlink.server.validation import MAX_DEPTH, validate_event
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
    """What the store must hold after ``events``, derived from the events alone (a null
    ``run`` or ``dataset`` counts as absent, as the spec's kinds are told apart)."""

    def kind(e: dict[str, Any]) -> str:
        if isinstance(e.get("run"), dict):
            return "run"
        return "dataset" if isinstance(e.get("dataset"), dict) else "job"

    jobs = {(e["job"]["namespace"], e["job"]["name"]) for e in events if kind(e) != "dataset"}
    datasets = {(e["dataset"]["namespace"], e["dataset"]["name"]) for e in events
                if kind(e) == "dataset"}
    for event in events:
        if kind(event) != "dataset":
            for key in ("inputs", "outputs"):
                datasets |= {(d["namespace"], d["name"]) for d in event.get(key) or []}
    runs = {e["run"]["runId"].lower() for e in events if kind(e) == "run"}
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
    client = TestClient(create_app(store), base_url="http://127.0.0.1")
    # a server exception fails the test with its traceback
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
    client = TestClient(create_app(store), base_url="http://127.0.0.1")
    # a server exception fails the test with its traceback
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


# extremes: depth, numbers, size and encoding, then every read endpoint --------------------
DEEP_MARK = '"__deep__"'
NUMBERS = [
    "1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1e308", "5e-324", "-0", "-0.0",
    str(2**63), str(2**64), "9" * 4000, "1" + "0" * 5000, "0.1e-99999", "123456789.123456789e-3",
]
TEXTS = [
    "\\ud800", "\\udfff\\ud800", "\\u0000", "a\\u0000b", "\\ufeff", "\ufeff", "é✓🚀", "\u202e",
    "a\u0301", "x" * 4096, "x" * 4097, "y" * 200_000, "%2F%00", "a:b:c", "job:x:y", "//", "",
    " ", "\\n\\t\\r", "\\\\", '\\"', "🚀" * 2000,
]


@st.composite
def extreme_bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A JSON text (single event or batch) with one or more extremes spliced in, encoded oddly."""
    base = copy.deepcopy(draw(st.sampled_from(BASES)))
    splices: dict[str, str] = {}
    for index in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["depth", "number", "text", "width", "name"]))
        mark = f"__splice{index}__"
        if kind == "depth":
            depth = draw(st.sampled_from(
                [MAX_DEPTH - 6, MAX_DEPTH, MAX_DEPTH + 1, 200, 600, 800, 900, 970, 5000]
            ))
            opener = draw(st.sampled_from(['{"x":', "[", '{"a":[']))
            closer = {'{"x":': "}", "[": "]", '{"a":[': "]}"}[opener]
            splices[mark] = opener * depth + "1" + closer * depth
        elif kind == "number":
            splices[mark] = draw(st.sampled_from(NUMBERS))
        elif kind == "text":
            splices[mark] = json.dumps(draw(st.sampled_from(TEXTS)), ensure_ascii=False).replace(
                "\\\\u", "\\u"
            )
        elif kind == "width":
            width = draw(st.sampled_from([500, 3000]))
            splices[mark] = json.dumps([{"name": f"f{i}", "type": "INT"} for i in range(width)])
        else:
            splices[mark] = json.dumps(draw(st.sampled_from(TEXTS)))
        paths = [p for p in _paths(base) if p]
        path = draw(st.sampled_from(paths))
        parent = base
        for key in path[:-1]:
            parent = parent[key]
        if kind == "name" and "namespace" in base.get("job", {}):
            base["job"][draw(st.sampled_from(["namespace", "name"]))] = mark
        elif isinstance(parent, dict) and draw(st.booleans()):
            parent[draw(st.sampled_from(["extra", path[-1]]))] = mark
        else:
            parent[path[-1]] = mark
    text = json.dumps(base)
    if draw(st.booleans()):
        text = "[" + text + "," + json.dumps(BASES[0]) + "]"
    for mark, value in splices.items():
        text = text.replace(json.dumps(mark), value)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-32", "utf-8-sig", "latin-1"]))
    try:
        body = text.encode(encoding, errors="surrogatepass")
    except UnicodeEncodeError:
        body = text.encode("utf-8", errors="surrogatepass")
    headers = {"Content-Type": "application/json"}
    if draw(st.integers(0, 5)) == 0:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return body, headers


def _not_json(name: str) -> Any:
    raise AssertionError(f"a response contains {name}, which is not JSON")


def _read_every_endpoint(client: TestClient) -> list[tuple[str, int]]:
    """GET every read endpoint for every stored namespace, dataset, version, job and run."""
    answers: list[tuple[str, int]] = []

    def get(path: str, **params: Any) -> Any:
        response = client.get("/api/v1/" + path, params=params)
        answers.append((path, response.status_code))
        # strict JSON: no NaN or Infinity, which browsers' JSON.parse refuses
        body = json.loads(response.text, parse_constant=_not_json) if response.text else {}
        return body if response.status_code == 200 else {}

    def q(value: str) -> str:
        return quote(value, safe="")

    get("events/lineage", limit=50)
    get("events/lineage", limit=50, sortDirection="asc", after="2000-01-01T00:00:00Z")
    get("tags")
    get("jobs", limit=10_000)
    for ns in get("namespaces", limit=10_000).get("namespaces", []):
        name = ns["name"]
        get(f"namespaces/{q(name)}")
        get("search", q=name[:50] or "x")
        get("search", q=name[:50] or "x", sort="UPDATE_AT", filter="DATASET")
        for ds in get(f"namespaces/{q(name)}/datasets", limit=10_000).get("datasets", []):
            path = f"namespaces/{q(name)}/datasets/{q(ds['name'])}"
            get(path)
            for version in get(f"{path}/versions", limit=50).get("versions", []):
                get(f"{path}/versions/{q(version['version'])}")
            node = f"dataset:{name}:{ds['name']}"
            get("lineage", nodeId=node, depth=20)
            get("column-lineage", nodeId=node, depth=20, withDownstream="true")
            for field in ds.get("fields", [])[:3]:
                get("column-lineage", nodeId=f"datasetField:{name}:{ds['name']}:{field['name']}")
        for job in get(f"namespaces/{q(name)}/jobs", limit=10_000).get("jobs", []):
            path = f"namespaces/{q(name)}/jobs/{q(job['name'])}"
            get(path)
            get("lineage", nodeId=f"job:{name}:{job['name']}", depth=20)
            get("column-lineage", nodeId=f"job:{name}:{job['name']}")
            for run in get(f"{path}/runs", limit=50).get("runs", []):
                get(f"jobs/runs/{q(run['id'])}")
                get(f"jobs/runs/{q(run['id'])}/facets", type="job")
                get(f"jobs/runs/{q(run['id'])}/facets")
    page = client.get("/")
    answers.append(("/", page.status_code))
    return answers


def test_extreme_ingest_then_every_read_endpoint(store: Any) -> None:
    """Depth, number, size and encoding extremes go in; afterwards no read answers 5xx."""
    client = TestClient(
        create_app(store), base_url="http://127.0.0.1", raise_server_exceptions=False
    )
    answers: list[tuple[str, int]] = []

    @given(case=extreme_bodies())
    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def post(case: tuple[bytes, dict[str, str]]) -> None:
        body, headers = case
        path = "/api/v1/lineage/batch" if body.lstrip()[:1] == b"[" else "/api/v1/lineage"
        for target in (path, "/api/v1/lineage"):
            response = client.post(target, content=body, headers=headers)
            answers.append((target, response.status_code))
            assert response.status_code < 500, (response.status_code, response.text[:500])

    post()
    assert any(status in (200, 201) for _, status in answers), "some extremes must be stored"
    assert any(status == 422 for _, status in answers), "some extremes must be refused"
    assert store.counts()["events"] > 0
    reads = _read_every_endpoint(client)
    assert len(reads) > 20
    assert [(path, status) for path, status in reads if status >= 500] == []
