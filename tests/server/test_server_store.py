"""Store semantics on both backends: idempotency, Marquez's derived model, lineage shape."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from provlink.errors import EventValidationError
from tests.server.server_events import dataset, facet, pipeline, run_event


def test_identical_event_is_stored_once(store: Any) -> None:
    event = run_event("job", outputs=[dataset("file", "/out")])
    assert store.ingest(event) is True
    assert store.ingest(dict(event)) is False
    assert store.ingest_many([event, event]) == [False, False]
    assert store.counts()["events"] == 1
    assert store.counts()["dataset_versions"] == 1


def test_ingest_rejects_invalid_event_naming_the_field(store: Any) -> None:
    event = run_event("job")
    event["run"]["runId"] = "not-a-uuid"
    with pytest.raises(EventValidationError) as caught:
        store.ingest(event)
    assert caught.value.field == "run.runId"
    assert store.counts()["events"] == 0


def test_run_states_follow_events_and_terminal_wins(store: Any) -> None:
    run_id = str(uuid.uuid4())
    store.ingest(run_event("job", event_type="START", run_id=run_id, minutes=0))
    assert store.run(run_id)["state"] == "RUNNING"
    store.ingest(run_event("job", event_type="FAIL", run_id=run_id, minutes=2))
    # a late RUNNING event does not resurrect a failed run
    store.ingest(run_event("job", event_type="RUNNING", run_id=run_id, minutes=1))
    run = store.run(run_id)
    assert run["state"] == "FAILED"
    assert run["durationMs"] == 120_000


def test_job_version_only_on_terminal_event(store: Any) -> None:
    run_id = str(uuid.uuid4())
    store.ingest(run_event("job", event_type="START", run_id=run_id, outputs=[dataset("f", "out")]))
    assert store.job("provlink-tests", "job").get("currentVersion") is None
    assert [n["inEdges"] for n in store.lineage("dataset:f:out", 20)["graph"]] == [[]]
    store.ingest(run_event("job", event_type="COMPLETE", run_id=run_id, minutes=1))
    job = store.job("provlink-tests", "job")
    assert job["currentVersion"]
    assert job["outputs"] == [{"namespace": "f", "name": "out"}]
    assert job["latestRun"]["state"] == "COMPLETED"


def test_new_dataset_version_per_output_of_each_run(store: Any) -> None:
    for minute in range(3):
        store.ingest(run_event("job", outputs=[dataset("f", "out", ["a"])], minutes=minute))
    versions = store.dataset_versions("f", "out", 100, 0)
    assert versions["totalCount"] == 3
    assert {v["createdByRun"]["state"] for v in versions["versions"]} == {"COMPLETED"}
    assert store.dataset("f", "out")["currentVersion"] == versions["versions"][0]["version"]


def test_facets_are_merged_across_events(store: Any) -> None:
    run_id = str(uuid.uuid4())
    store.ingest(
        run_event(
            "job",
            event_type="START",
            run_id=run_id,
            run_facets={"nominalTime": facet(nominalStartTime="2024-05-01T00:00:00Z")},
            job_facets={"sql": facet(query="SELECT 1")},
        )
    )
    store.ingest(
        run_event(
            "job",
            run_id=run_id,
            minutes=1,
            run_facets={"errorMessage": facet(message="boom", programmingLanguage="py")},
        )
    )
    facets = store.run_facets(run_id, "run")["facets"]
    assert set(facets) == {"nominalTime", "errorMessage"}
    assert store.run_facets(run_id, "job")["facets"]["sql"]["query"] == "SELECT 1"
    assert store.run(run_id)["nominalStartTime"].startswith("2024-05-01T00:00:00")


def test_lineage_graph_walks_the_pipeline_with_model_versions(store: Any) -> None:
    store.ingest_many(pipeline())
    graph = store.lineage("dataset:http://127.0.0.1:5001:models/churn/3", 20)["graph"]
    ids = {node["id"] for node in graph}
    assert ids == {
        "job:provlink-tests:ingest",
        "job:provlink-tests:train",
        "job:provlink-tests:score",
        "dataset:file:/data/raw.csv",
        "dataset:file:/data/features.parquet",
        "dataset:http://127.0.0.1:5001:models/churn/3",
        "dataset:file:/data/predictions.parquet",
    }
    model = next(n for n in graph if n["id"].endswith("models/churn/3"))
    assert model["type"] == "DATASET"
    assert model["inEdges"] == [
        {
            "origin": "job:provlink-tests:train",
            "destination": "dataset:http://127.0.0.1:5001:models/churn/3",
        }
    ]
    assert model["outEdges"] == [
        {
            "origin": "dataset:http://127.0.0.1:5001:models/churn/3",
            "destination": "job:provlink-tests:score",
        }
    ]
    # depth counts job hops: from train, depth 0 is train and its datasets only
    shallow = {n["id"] for n in store.lineage("job:provlink-tests:train", 0)["graph"]}
    assert shallow == {
        "job:provlink-tests:train",
        "dataset:file:/data/features.parquet",
        "dataset:http://127.0.0.1:5001:models/churn/3",
    }


def test_column_lineage_from_facet(store: Any) -> None:
    column_facet = facet(
        fields={
            "total": {
                "inputFields": [
                    {
                        "namespace": "f",
                        "name": "orders",
                        "field": "price",
                        "transformations": [
                            {"type": "DIRECT", "subtype": "AGGREGATION", "description": "sum"}
                        ],
                    }
                ]
            }
        }
    )
    store.ingest(
        run_event(
            "agg",
            inputs=[dataset("f", "orders", ["price"])],
            outputs=[dataset("f", "totals", ["total"], columnLineage=column_facet)],
        )
    )
    graph = store.column_lineage("datasetField:f:totals:total", 20, False)["graph"]
    by_id = {node["id"]: node for node in graph}
    assert set(by_id) == {"datasetField:f:totals:total", "datasetField:f:orders:price"}
    total = by_id["datasetField:f:totals:total"]
    assert total["type"] == "DATASET_FIELD"
    assert total["data"]["inputFields"][0]["field"] == "price"
    assert total["data"]["transformationType"] == "DIRECT"
    assert total["inEdges"] == [
        {"origin": "datasetField:f:orders:price", "destination": "datasetField:f:totals:total"}
    ]
    downstream = store.column_lineage("dataset:f:orders", 20, True)["graph"]
    assert "datasetField:f:totals:total" in {n["id"] for n in downstream}


def test_dataset_and_job_events(store: Any) -> None:
    store.ingest(
        {
            "eventTime": "2024-05-01T00:00:00Z",
            "producer": "https://p",
            "schemaURL": "https://s",
            "dataset": dataset("f", "static", ["x"]),
        }
    )
    assert store.dataset("f", "static")["fields"][0]["name"] == "x"
    store.ingest(
        {
            "eventTime": "2024-05-01T00:00:00Z",
            "producer": "https://p",
            "schemaURL": "https://s",
            "job": {"namespace": "n", "name": "defined"},
            "inputs": [dataset("f", "static")],
            "outputs": [dataset("f", "derived")],
        }
    )
    ids = {n["id"] for n in store.lineage("job:n:defined", 5)["graph"]}
    assert ids == {"job:n:defined", "dataset:f:static", "dataset:f:derived"}


def test_soft_delete_and_tags(store: Any) -> None:
    store.ingest(run_event("job", outputs=[dataset("f", "out", ["a"])]))
    assert "PII" in store.tag_dataset("f", "out", "PII", None, True)["tags"]
    tagged = store.tag_dataset("f", "out", "KEY", "a", True)
    assert tagged["fields"][0]["tags"] == ["KEY"]
    assert {t["name"] for t in store.tags()["tags"]} == {"PII", "KEY"}
    assert store.tag_dataset("f", "out", "PII", None, False)["tags"] == []
    assert store.delete_dataset("f", "out") is not None
    assert store.dataset("f", "out") is None
    store.ingest(run_event("job", outputs=[dataset("f", "out")], minutes=5))
    assert store.dataset("f", "out") is not None


def test_search_and_event_paging(store: Any) -> None:
    store.ingest_many(pipeline())
    found = store.search(
        q="FEAT", kind=None, sort="NAME", limit=10, namespace=None, before=None, after=None
    )
    assert [r["nodeId"] for r in found["results"]] == ["dataset:file:/data/features.parquet"]
    jobs = store.search(
        q="r", kind="JOB", sort="NAME", limit=10, namespace=None, before=None, after=None
    )
    assert {r["name"] for r in jobs["results"]} == {"score", "train"}
    first = store.list_events(before=None, after=None, ascending=True, limit=4, offset=0)
    rest = store.list_events(before=None, after=None, ascending=True, limit=4, offset=4)
    assert first["totalCount"] == 6 and len(first["events"]) == 4 and len(rest["events"]) == 2
    assert first["events"][0]["eventType"] == "START"


def test_export_round_trip_preserves_events(store: Any, tmp_path: Any) -> None:
    store.ingest_many(pipeline())
    exported = list(store.iter_events())
    assert len(exported) == 6
    from provlink.server.store import open_store

    other = open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        assert other.ingest_many(exported) == [True] * 6
        assert other.ingest_many(exported) == [False] * 6
        assert other.counts() == store.counts()
    finally:
        other.close()


def test_lineage_skips_soft_deleted_nodes(store: Any) -> None:
    store.ingest_many(pipeline())
    assert store.delete_job("provlink-tests", "train") is not None
    ids = {n["id"] for n in store.lineage("dataset:file:/data/raw.csv", 20)["graph"]}
    assert ids == {
        "job:provlink-tests:ingest",
        "dataset:file:/data/raw.csv",
        "dataset:file:/data/features.parquet",
        "job:provlink-tests:score",
        "dataset:file:/data/predictions.parquet",
        "dataset:http://127.0.0.1:5001:models/churn/3",
    }
    store.delete_dataset("file", "/data/features.parquet")
    ids = {n["id"] for n in store.lineage("dataset:file:/data/raw.csv", 20)["graph"]}
    assert ids == {"job:provlink-tests:ingest", "dataset:file:/data/raw.csv"}
