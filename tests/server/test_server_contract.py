"""Contract tests against Marquez's own artefacts in ../shared/spec: its OpenAPI document
(schemathesis, bounded), its example lineage responses, and the OpenLineage spec's example
events and facets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from tests.server.server_events import PRODUCER, RUN_SCHEMA, pipeline, run_event
from tests.server.support import LiveServer, spec_dir

MODEL_NS = "http://127.0.0.1:5001"

# (method, path) of every operation in openapi.yml that provlink serve implements.
IMPLEMENTED = [
    ("GET", "/namespaces"),
    ("GET", "/namespaces/{namespace}"),
    ("GET", "/events/lineage"),
    ("GET", "/namespaces/{namespace}/datasets"),
    ("GET", "/namespaces/{namespace}/datasets/{dataset}"),
    ("DELETE", "/namespaces/{namespace}/datasets/{dataset}"),
    ("GET", "/namespaces/{namespace}/datasets/{dataset}/versions"),
    ("GET", "/namespaces/{namespace}/datasets/{dataset}/versions/{version}"),
    ("POST", "/namespaces/{namespace}/datasets/{dataset}/tags/{tag}"),
    ("POST", "/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"),
    ("GET", "/namespaces/{namespace}/jobs"),
    ("GET", "/namespaces/{namespace}/jobs/{job}"),
    ("DELETE", "/namespaces/{namespace}/jobs/{job}"),
    ("GET", "/namespaces/{namespace}/jobs/{job}/runs"),
    ("GET", "/jobs/runs/{id}"),
    ("GET", "/jobs/runs/{id}/facets"),
    ("POST", "/lineage"),
    ("GET", "/lineage"),
    ("GET", "/column-lineage"),
    ("PUT", "/tags/{tag}"),
    ("GET", "/tags"),
    ("GET", "/search"),
]


def _openapi() -> dict[str, Any]:
    """openapi.yml with the few places where Marquez's spec disagrees with Marquez's own
    serialisation (read from its models) corrected; each erratum is listed and asserted."""
    import yaml

    document = yaml.safe_load((spec_dir() / "marquez" / "openapi.yml").read_text())
    schemas = document["components"]["schemas"]
    version = schemas["DatasetVersion"]
    # DatasetVersion.tags is an ImmutableSet<TagName> in Marquez (a JSON array), not a string
    assert version["properties"]["tags"]["type"] == "string"
    version["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    # DatasetVersion.description is @Nullable in Marquez; absent when a dataset has none
    version["required"].remove("description")
    # FacetsResult.facets is a map name -> facet in Marquez (FacetsResult.java), not one facet
    assert schemas["FacetsResult"]["properties"]["facets"] == {
        "$ref": "#/components/schemas/CustomFacet"
    }
    schemas["FacetsResult"]["properties"]["facets"] = {"$ref": "#/components/schemas/RunFacets"}
    # GraphNode.data is oneOf Dataset/Job, but neither has required properties, so every
    # object matches both and oneOf can never pass; the node's own "type" tells them apart
    data = schemas["GraphNode"]["properties"]["data"]
    data["anyOf"] = data.pop("oneOf")
    data.pop("discriminator")
    # SearchResult.name/updatedAt have an empty YAML "type:" (null), meant as string
    for key in ("name", "updatedAt"):
        assert schemas["SearchResult"]["properties"][key]["type"] is None
        schemas["SearchResult"]["properties"][key]["type"] = "string"
    return document


def _schema_validator(openapi: dict[str, Any], component: str) -> jsonschema.Validator:
    """A validator for ``#/components/schemas/<component>`` with the document's refs resolvable."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = json.loads(json.dumps(openapi, default=str))
    registry = Registry().with_resource("urn:marquez", Resource(document, DRAFT202012))
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:marquez#/components/schemas/{component}"}, registry=registry
    )


@pytest.fixture
def seeded(store: Any) -> Any:
    store.ingest_many(pipeline(model_ns=MODEL_NS))
    return store


def test_responses_on_real_data_match_openapi_components(seeded: Any) -> None:
    """Each implemented GET, on seeded data, validates against the component the spec names."""
    openapi = _openapi()
    runs = seeded.job_runs("provlink-tests", "train", 10, 0)["runs"]
    version = seeded.dataset_versions("file", "/data/features.parquet", 10, 0)["versions"][0][
        "version"
    ]
    with LiveServer(seeded) as live:
        api = live.url + "/api/v1"
        checks = {
            "/namespaces": "NamespaceList",
            "/namespaces/provlink-tests": "Namespace",
            "/events/lineage": "LineageEventList",
            "/namespaces/file/datasets": "DatasetList",
            "/namespaces/file/datasets/%2Fdata%2Ffeatures.parquet": "Dataset",
            "/namespaces/file/datasets/%2Fdata%2Ffeatures.parquet/versions": "DatasetVersionList",
            f"/namespaces/file/datasets/%2Fdata%2Ffeatures.parquet/versions/{version}":
                "DatasetVersion",
            "/namespaces/provlink-tests/jobs": "JobList",
            "/namespaces/provlink-tests/jobs/train": "Job",
            "/namespaces/provlink-tests/jobs/train/runs": "RunList",
            f"/jobs/runs/{runs[0]['id']}": "Run",
            f"/jobs/runs/{runs[0]['id']}/facets?type=run": "FacetsResult",
            "/lineage?nodeId=job:provlink-tests:train": "LineageGraph",
            "/tags": "TagList",
            "/search?q=data": "SearchResultList",
        }
        for path, component in checks.items():
            response = httpx.get(api + path)
            assert response.status_code == 200, path
            errors = [
                e.message
                for e in _schema_validator(openapi, component).iter_errors(response.json())
            ]
            assert errors == [], f"{path} vs {component}: {errors[:3]}"


def test_schemathesis_implemented_operations(seeded: Any) -> None:
    """Generated requests for every implemented operation: never a 5xx, schema-conformant 200s."""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(_openapi(), default=str)))
    with LiveServer(seeded) as live:
        base = live.url + "/api/v1"
        for method, path in IMPLEMENTED:
            operation = schema[path][method]

            @given(case=operation.as_strategy())
            @settings(
                max_examples=15,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: Any) -> None:
                response = case.call(base_url=base)
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

            exercise()
    assert seeded.counts()["jobs"] >= 3


def _shape(value: Any) -> Any:
    """Keys and JSON types, recursively; the first element stands for a list."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_lineage_node_shape_matches_marquez_example(seeded: Any) -> None:
    from tests.server.server_events import dataset, facet

    example = json.loads((spec_dir() / "marquez" / "examples" / "lineage-node.json").read_text())
    documented = dataset(
        "file",
        "/data/features.parquet",
        ["a", "b"],
        documentation=facet(description="the features"),
    )
    seeded.ingest(run_event("ingest", outputs=[documented], minutes=60))
    graph = seeded.lineage("dataset:file:/data/features.parquet", 20)["graph"]
    node = next(n for n in graph if n["id"] == "dataset:file:/data/features.parquet")
    assert set(node) == set(example)
    assert _shape(node["inEdges"]) == _shape(example["inEdges"])
    assert _shape(node["outEdges"]) == _shape(example["outEdges"])
    assert node["type"] == example["type"] == "DATASET"
    # every non-null property of Marquez's dataset data is present with the same JSON type;
    # timestamps are ISO strings in both Marquez's API and ours (the example file is a
    # serialised Java object with epoch numbers), so they are compared as "present".
    for key, value in example["data"].items():
        if value is None:
            continue
        assert key in node["data"], key
        if key not in ("createdAt", "updatedAt"):
            assert type(node["data"][key]) is type(value), key
    assert _shape(node["data"]["fields"][0]).keys() >= {"name", "type", "tags"}
    assert node["data"]["id"] == {"namespace": "file", "name": "/data/features.parquet"}


def test_column_lineage_node_shape_matches_marquez_example(store: Any) -> None:
    from tests.server.server_events import dataset, facet

    example = json.loads(
        (spec_dir() / "marquez" / "examples" / "column-lineage-node.json").read_text()
    )
    lineage_facet = facet(
        fields={
            "columnA": {
                "inputFields": [
                    {
                        "namespace": "namespace",
                        "name": "otherDataset",
                        "field": "columnB",
                        "transformations": [{"type": "IDENTITY", "description": "identical"}],
                    }
                ]
            }
        }
    )
    store.ingest(
        run_event(
            "j",
            inputs=[dataset("namespace", "otherDataset", ["columnB"])],
            outputs=[
                dataset("namespace", "commonDataset", ["columnA"], columnLineage=lineage_facet)
            ],
        )
    )
    graph = store.column_lineage("datasetField:namespace:commonDataset:columnA", 20, False)["graph"]
    node = next(n for n in graph if n["id"] == example["id"])
    assert set(node) == set(example) and node["type"] == example["type"]
    assert set(node["data"]) == set(example["data"])
    assert (
        _shape(node["data"]["inputFields"][0]).keys()
        >= _shape(example["data"]["inputFields"][0]).keys()
    )
    assert node["inEdges"] == example["inEdges"]


def _facet_examples() -> list[tuple[str, Path]]:
    root = spec_dir() / "openlineage" / "examples"
    return [(p.parent.name, p) for p in sorted(root.glob("*/*.json"))]


def _event_with_facet(kind: str, facets: dict[str, Any]) -> dict[str, Any]:
    event = run_event(
        "example",
        inputs=[{"namespace": "n", "name": "in"}],
        outputs=[{"namespace": "n", "name": "out"}],
    )
    if kind.endswith("RunFacet"):
        event["run"]["facets"] = facets
    elif kind.endswith("JobFacet"):
        event["job"]["facets"] = facets
    elif kind.endswith("InputDatasetFacet"):
        event["inputs"][0]["inputFacets"] = facets
    elif kind.endswith("OutputDatasetFacet"):
        event["outputs"][0]["outputFacets"] = facets
    else:  # dataset facets, and LineageFacet examples (job facets in the spec)
        if kind == "LineageFacet":
            event["job"]["facets"] = facets
        else:
            event["outputs"][0]["facets"] = facets
    return event


def test_openlineage_spec_examples_are_accepted(store: Any) -> None:
    root = spec_dir() / "openlineage"
    spec = json.loads((root / "OpenLineage.json").read_text())
    validator = jsonschema.Draft202012Validator(spec)
    full = json.loads((root / "examples" / "example_full_event.json").read_text())
    events = [full]
    for kind, path in _facet_examples():
        events.append(_event_with_facet(kind, json.loads(path.read_text())))
    assert len(events) > 40
    for event in events[1:]:
        assert list(validator.iter_errors(event)) == [], "test wrapper must build spec-valid events"
    with LiveServer(store) as live:
        for event in events:
            response = httpx.post(live.url + "/api/v1/lineage", json=event)
            assert response.status_code == 201, (response.text, event)
    assert store.counts()["events"] == len(events)
    assert store.job("food_delivery", "dbt")["latestRun"]["state"] == "COMPLETED"


def test_dataset_and_job_events_per_spec(store: Any) -> None:
    events = [
        {
            "eventTime": "2024-05-01T00:00:00Z",
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {"namespace": "n", "name": "d", "facets": {}},
        },
        {
            "eventTime": "2024-05-01T00:00:00Z",
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
            "job": {"namespace": "n", "name": "j"},
            "inputs": [{"namespace": "n", "name": "d"}],
            "outputs": [],
        },
    ]
    validator = jsonschema.Draft202012Validator(
        json.loads((spec_dir() / "openlineage" / "OpenLineage.json").read_text())
    )
    for event in events:
        assert list(validator.iter_errors(event)) == []
        store.ingest(event)
    assert store.counts()["events"] == 2
    assert RUN_SCHEMA.startswith("https://openlineage.io/spec/2-0-2/")
