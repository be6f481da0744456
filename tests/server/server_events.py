"""Builders for OpenLineage events used across the server tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PRODUCER = "https://github.com/provlink/provlink/tests"
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
BASE_TIME = datetime(2024, 5, 1, tzinfo=UTC)


def facet(**fields: Any) -> dict[str, Any]:
    return {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json",
        **fields,
    }


def dataset(
    namespace: str, name: str, fields: list[str] | None = None, **facets: Any
) -> dict[str, Any]:
    all_facets = dict(facets)
    if fields:
        all_facets["schema"] = facet(fields=[{"name": f, "type": "INTEGER"} for f in fields])
    return {"namespace": namespace, "name": name, "facets": all_facets}


def run_event(
    job: str,
    *,
    event_type: str = "COMPLETE",
    run_id: str | None = None,
    namespace: str = "provlink-tests",
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    minutes: float = 0,
    run_facets: dict[str, Any] | None = None,
    job_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": (BASE_TIME + timedelta(minutes=minutes)).isoformat(),
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA,
        "run": {"runId": run_id or str(uuid.uuid4()), "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
    }


def pipeline(
    namespace: str = "provlink-tests", model_ns: str = "http://127.0.0.1:5001"
) -> list[dict[str, Any]]:
    """raw -> features -> train -> model version -> score -> predictions, START + COMPLETE each."""
    steps = [
        (
            "ingest",
            [dataset("file", "/data/raw.csv")],
            [dataset("file", "/data/features.parquet", ["a", "b"])],
        ),
        (
            "train",
            [dataset("file", "/data/features.parquet")],
            [dataset(model_ns, "models/churn/3")],
        ),
        (
            "score",
            [dataset(model_ns, "models/churn/3"), dataset("file", "/data/features.parquet")],
            [dataset("file", "/data/predictions.parquet", ["p"])],
        ),
    ]
    events = []
    for index, (job, ins, outs) in enumerate(steps):
        run_id = str(uuid.uuid4())
        events.append(
            run_event(
                job,
                event_type="START",
                run_id=run_id,
                namespace=namespace,
                inputs=ins,
                minutes=index * 10,
            )
        )
        events.append(
            run_event(
                job,
                event_type="COMPLETE",
                run_id=run_id,
                namespace=namespace,
                inputs=ins,
                outputs=outs,
                minutes=index * 10 + 5,
            )
        )
    return events
