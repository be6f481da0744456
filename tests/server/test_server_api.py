"""The HTTP API against a live uvicorn server, on both stores: Marquez's status codes and
shapes, the batch endpoint, URL-encoded names, auth, and real clients (marquez-python,
openlineage-python's ``http`` and ``async_http`` transports)."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.server.server_events import dataset, pipeline, run_event
from tests.server.support import LiveServer

MODEL_NS = "sqlite:////tmp/mlruns/mlflow.db"


def _post(
    server: LiveServer, body: Any, path: str = "/api/v1/lineage", **kw: Any
) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return httpx.post(server.url + path, content=content, headers=headers, **kw)


def test_post_lineage_answers_like_marquez(server: LiveServer, store: Any) -> None:
    event = run_event("job", outputs=[dataset("file", "/out")])
    created = _post(server, event)
    assert created.status_code == 201 and created.content == b""
    assert _post(server, event).status_code == 201  # a redelivery is fine, and stored once
    assert store.counts()["events"] == 1

    missing = dict(event)
    del missing["eventTime"]
    unprocessable = _post(server, missing)
    assert unprocessable.status_code == 422
    assert (
        unprocessable.json()["field"] == "eventTime"
        and "eventTime" in unprocessable.json()["message"]
    )

    bad_job = run_event("job")
    del bad_job["job"]["name"]
    assert _post(server, bad_job).json()["field"] == "job.name"

    assert _post(server, b'{"eventTime": ').status_code == 400
    assert _post(server, b'{"x": NaN}').status_code == 422
    assert _post(server, b"\xff\xfe").status_code == 400
    assert store.counts()["events"] == 1


def test_gzip_bodies_are_accepted(server: LiveServer, store: Any) -> None:
    body = gzip.compress(json.dumps(run_event("zipped")).encode())
    assert _post(server, body, headers={"Content-Encoding": "gzip"}).status_code == 201
    assert _post(server, b"not gzip", headers={"Content-Encoding": "gzip"}).status_code == 400
    assert store.job("provlink-tests", "zipped") is not None


def test_batch_endpoint_stores_valid_events_and_lists_errors(
    server: LiveServer, store: Any
) -> None:
    good = pipeline()
    bad = run_event("bad")
    bad["run"]["runId"] = "nope"
    response = _post(server, [*good, bad, good[0], 7], path="/api/v1/lineage/batch")
    assert response.status_code == 200
    assert response.json() == {
        "received": 9,
        "stored": 6,
        "duplicates": 1,
        "errors": [
            {"index": 6, "field": "run.runId", "message": "must be a UUID string"},
            {"index": 8, "field": "event", "message": "must be a JSON object"},
        ],
    }
    assert store.counts()["events"] == 6
    assert _post(server, {"not": "a list"}, path="/api/v1/lineage/batch").status_code == 422


def test_read_endpoints_with_encoded_names(server: LiveServer) -> None:
    events = pipeline(model_ns=MODEL_NS)
    assert _post(server, events, path="/api/v1/lineage/batch").json()["stored"] == len(events)
    api = server.url + "/api/v1"
    ns, name = quote(MODEL_NS, safe=""), quote("models/churn/3", safe="")
    model = httpx.get(f"{api}/namespaces/{ns}/datasets/{name}").json()
    assert model["id"] == {"namespace": MODEL_NS, "name": "models/churn/3"}
    versions = httpx.get(f"{api}/namespaces/{ns}/datasets/{name}/versions").json()
    assert versions["totalCount"] == 1
    version = versions["versions"][0]["version"]
    assert httpx.get(f"{api}/namespaces/{ns}/datasets/{name}/versions/{version}").status_code == 200

    node = f"dataset:{MODEL_NS}:models/churn/3"
    graph = httpx.get(f"{api}/lineage", params={"nodeId": node, "depth": 20}).json()["graph"]
    assert node in {n["id"] for n in graph} and len(graph) == 7

    namespaces = {n["name"] for n in httpx.get(f"{api}/namespaces").json()["namespaces"]}
    assert namespaces == {"provlink-tests", "file", MODEL_NS}
    jobs = httpx.get(f"{api}/namespaces/provlink-tests/jobs").json()
    assert jobs["totalCount"] == 3
    assert httpx.get(f"{api}/jobs", params={"lastRunStates": "COMPLETED"}).json()["totalCount"] == 3
    assert httpx.get(f"{api}/jobs", params={"lastRunStates": "FAILED"}).json()["totalCount"] == 0
    runs = httpx.get(f"{api}/namespaces/provlink-tests/jobs/train/runs").json()
    assert runs["totalCount"] == 1 and runs["runs"][0]["state"] == "COMPLETED"
    run_id = runs["runs"][0]["id"]
    assert (
        httpx.get(f"{api}/jobs/runs/{run_id}/facets", params={"type": "job"}).json()["runId"]
        == run_id
    )
    search = httpx.get(f"{api}/search", params={"q": "churn"}).json()
    assert search["results"][0]["nodeId"] == node
    events = httpx.get(f"{api}/events/lineage", params={"limit": 2, "sortDirection": "asc"}).json()
    assert events["totalCount"] == 6 and len(events["events"]) == 2


def test_client_errors_are_4xx(server: LiveServer) -> None:
    api = server.url + "/api/v1"
    assert httpx.get(f"{api}/lineage").status_code == 400
    assert httpx.get(f"{api}/lineage", params={"nodeId": "nonsense"}).status_code == 400
    assert httpx.get(f"{api}/lineage", params={"nodeId": "job:a:b"}).status_code == 404
    assert (
        httpx.get(f"{api}/lineage", params={"nodeId": "job:a:b", "depth": "x"}).status_code == 400
    )
    assert httpx.get(f"{api}/namespaces/a/datasets/b").status_code == 404
    assert httpx.get(f"{api}/namespaces/a%00/datasets/b").status_code == 400
    assert httpx.get(f"{api}/nothing/here").status_code == 404
    assert httpx.delete(f"{api}/lineage").status_code == 405
    assert httpx.get(f"{api}/search").status_code == 400
    assert httpx.get(f"{api}/events/lineage", params={"before": "yesterday"}).status_code == 400


def test_tags_endpoints(server: LiveServer) -> None:
    _post(server, run_event("job", outputs=[dataset("f", "out", ["a"])]))
    api = server.url + "/api/v1"
    assert httpx.put(f"{api}/tags/PII", json={"description": "personal"}).json() == {
        "name": "PII",
        "description": "personal",
    }
    assert httpx.post(f"{api}/namespaces/f/datasets/out/tags/PII").json()["tags"] == ["PII"]
    field = httpx.post(f"{api}/namespaces/f/datasets/out/fields/a/tags/PII").json()
    assert field["fields"][0]["tags"] == ["PII"]
    assert httpx.post(f"{api}/namespaces/f/datasets/out/fields/zz/tags/PII").status_code == 404
    assert httpx.post(f"{api}/namespaces/provlink-tests/jobs/job/tags/core").json()["tags"] == [
        "core"
    ]
    assert httpx.delete(f"{api}/namespaces/provlink-tests/jobs/job/tags/core").json()["tags"] == []
    assert {t["name"] for t in httpx.get(f"{api}/tags").json()["tags"]} == {"PII", "core"}
    assert httpx.delete(f"{api}/namespaces/f/datasets/out").status_code == 200
    assert httpx.get(f"{api}/namespaces/f/datasets/out").status_code == 404


def test_api_keys_and_scopes(store: Any) -> None:
    with LiveServer(store, api_keys=["writer-key-123", "reader-key-123:read"]) as live:
        event = run_event("secured")
        assert _post(live, event).status_code == 401
        assert (
            _post(live, event, headers={"Authorization": "Bearer reader-key-123"}).status_code
            == 403
        )
        assert (
            _post(live, event, headers={"Authorization": "Bearer writer-key-123"}).status_code
            == 201
        )
        api = live.url + "/api/v1/namespaces"
        assert httpx.get(api).status_code == 401
        assert httpx.get(api, headers={"Authorization": "Bearer wrong-key-1234"}).status_code == 401
        assert httpx.get(api, headers={"Authorization": "Bearer reader-key-123"}).status_code == 200
        assert httpx.get(live.url + "/").status_code == 200  # the page itself holds no data

        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        config = HttpConfig.from_dict(
            {"url": live.url, "auth": {"type": "api_key", "apiKey": "writer-key-123"}}
        )
        client = OpenLineageClient(transport=HttpTransport(config))
        client.emit(_ol_event("via-api-key"))
        assert store.job("provlink-tests", "via-api-key") is not None


def _ol_event(job: str, event_type: Any = None) -> Any:
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )

    return RunEvent(
        eventType=event_type or RunState.COMPLETE,
        eventTime="2024-05-01T00:00:00.000Z",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="provlink-tests", name=job),
        producer="https://github.com/provlink/provlink/tests",
        inputs=[InputDataset(namespace="file", name="/in")],
        outputs=[OutputDataset(namespace=MODEL_NS, name=f"models/{job}/1")],
    )


def test_openlineage_http_transport(server: LiveServer, store: Any) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    client = OpenLineageClient(
        transport=HttpTransport(HttpConfig.from_dict({"url": server.url, "compression": "gzip"}))
    )
    for index in range(5):
        client.emit(_ol_event(f"sync-{index}"))
    assert store.counts()["jobs"] == 5
    node = f"dataset:{MODEL_NS}:models/sync-0/1"
    graph = httpx.get(server.url + "/api/v1/lineage", params={"nodeId": node}).json()["graph"]
    assert {n["id"] for n in graph} == {"job:provlink-tests:sync-0", "dataset:file:/in", node} | {
        f"job:provlink-tests:sync-{i}" for i in range(1, 5)
    } | {f"dataset:{MODEL_NS}:models/sync-{i}/1" for i in range(1, 5)}


def test_openlineage_async_http_transport(server: LiveServer, store: Any) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.async_http import AsyncHttpConfig, AsyncHttpTransport

    transport = AsyncHttpTransport(AsyncHttpConfig.from_dict({"url": server.url}))
    client = OpenLineageClient(transport=transport)
    for index in range(20):
        client.emit(_ol_event(f"async-{index}"))
    assert transport.close(timeout=30)
    assert transport.get_stats()["failed"] == 0
    assert store.counts()["events"] == 20


def test_marquez_python_client(server: LiveServer) -> None:
    from marquez_client import MarquezClient

    events = pipeline(model_ns=MODEL_NS)
    _post(server, events, path="/api/v1/lineage/batch")
    client = MarquezClient(url=server.url)
    assert {n["name"] for n in client.list_namespaces()["namespaces"]} >= {
        "provlink-tests",
        MODEL_NS,
    }
    assert client.get_dataset(MODEL_NS, "models/churn/3")["name"] == "models/churn/3"
    versions = client.list_dataset_versions(MODEL_NS, "models/churn/3")["versions"]
    assert client.get_dataset_version(MODEL_NS, "models/churn/3", versions[0]["version"])["version"]
    assert [d["name"] for d in client.list_datasets("file")["datasets"]] == [
        "/data/features.parquet",
        "/data/predictions.parquet",
        "/data/raw.csv",
    ]
    assert client.get_job("provlink-tests", "train")["latestRun"]["state"] == "COMPLETED"
    assert client.list_jobs("provlink-tests")["totalCount"] == 3
    runs = client.list_job_runs("provlink-tests", "score")["runs"]
    assert client.get_job_run(runs[0]["id"])["state"] == "COMPLETED"
    assert client.tag_dataset("file", "/data/raw.csv", "RAW")["tags"] == ["RAW"]
    assert client.create_tag("GOLD", "curated")["name"] == "GOLD"
    assert {t["name"] for t in client.list_tags()["tags"]} == {"RAW", "GOLD"}
    column = client.get_column_lineage_by_dataset("file", "/data/predictions.parquet")
    assert column["graph"][0]["type"] == "DATASET_FIELD"
    from marquez_client.errors import APIError

    with pytest.raises(APIError) as missing:
        client.get_dataset("file", "/nope")
    assert missing.value.__cause__.response.status_code == 404
