"""Benchmark of the governance commands on the embedded SQLite backend, through a real
``provlink serve`` (uvicorn on loopback), as users run them:

- ``evidence`` for a model version with 1,000 upstream nodes (goal ≤ 5 s), against the
  baseline of one ``GET /lineage`` of the same graph;
- ``coverage`` over 10,000 runs (20,000 events; goal ≤ 10 s), against the baseline of
  reading every event page without computing anything.

    .venv/bin/python benchmarks/bench_governance.py
    .venv/bin/python benchmarks/bench_governance.py --nodes 1000 --runs 10000

The upstream graph has layers of 50 runs; each run reads two datasets of the layer below
(content digests in the ``version`` facet) and writes one; the top run writes the model
version. Runs carry the ``provlink_code`` facet, as provlink's own events do (without it,
trace also asks for each run's job facets, one request more per run). The ledger part
of the bundle uses a real ledger (every event appended to a spool, one checkpoint), so the
bundle carries 2 × runs inclusion proofs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tests/

from provlink.server.store import open_store  # noqa: E402
from tests.server.support import LiveServer  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCER = "https://github.com/provlink/provlink/benchmarks"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json",
            **fields}


def _dataset(namespace: str, name: str) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return {"namespace": namespace, "name": name,
            "facets": {"version": _facet(datasetVersion=digest)}}


def _events(job: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
            at: datetime, namespace: str = "bench") -> list[dict[str, Any]]:
    run_id = str(uuid.uuid4())
    base = {"producer": PRODUCER, "schemaURL": RUN_EVENT,
            "job": {"namespace": namespace, "name": job}}
    return [{**base, "eventType": "START", "eventTime": at.isoformat(),
             "run": {"runId": run_id, "facets": {
                 "executionParameters": _facet(parameters=[{"key": "C", "value": "1.0"}]),
                 "provlink_code": _facet(type="git", commit="0" * 40, dirty=False)}},
             "inputs": inputs},
            {**base, "eventType": "COMPLETE",
             "eventTime": (at + timedelta(milliseconds=500)).isoformat(),
             "run": {"runId": run_id, "facets": {
                 "provlink_code": _facet(type="git", commit="0" * 40, dirty=False)}},
             "inputs": inputs, "outputs": outputs}]


def upstream_graph(nodes: int, width: int = 50) -> list[dict[str, Any]]:
    """About ``nodes`` runs + datasets upstream of ``models/bench/1``."""
    events: list[dict[str, Any]] = []
    layers = max(1, nodes // (2 * width))
    below = [_dataset("file", f"/data/source{i}.csv") for i in range(width)]
    at = START
    for layer in range(layers):
        here = []
        for i in range(width):
            out = _dataset("file", f"/data/l{layer}/d{i}.parquet")
            at += timedelta(seconds=1)
            events += _events(f"step{layer}_{i}", [below[i], below[(i + 1) % width]], [out], at)
            here.append(out)
        below = here
    model = {"namespace": "mlflow", "name": "models/bench/1"}
    events += _events("train", below, [model], at + timedelta(seconds=5))
    return events


def many_runs(runs: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(runs):
        at = START + timedelta(seconds=i)
        events += _events(f"job{i % 200}", [_dataset("file", f"/in/{i % 500}.csv")],
                          [_dataset("file", f"/out/{i}.csv")], at, namespace="coverage")
    return events


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from provlink.config import ProvlinkConfig
    from provlink.delivery.spool import Spool
    from provlink.governance.coverage import all_events, coverage
    from provlink.governance.evidence.bundle import build, spool_ledger
    from provlink.governance.registry_view import NoRegistry
    from provlink.governance.trace import LineageApi

    with tempfile.TemporaryDirectory(prefix="provlink-bench-gov-") as tmp:
        root = Path(tmp)
        store = open_store(f"sqlite:///{root / 'lineage.db'}")
        graph = upstream_graph(args.nodes)
        bulk = many_runs(args.runs)
        began = time.perf_counter()
        for chunk in range(0, len(graph), 2000):
            store.ingest_many(graph[chunk:chunk + 2000])
        for chunk in range(0, len(bulk), 2000):
            store.ingest_many(bulk[chunk:chunk + 2000])
        print(f"loaded {len(graph) + len(bulk)} events in {time.perf_counter() - began:.1f} s")
        spool = Spool(root / "spool.db")
        for event in graph:
            spool.append(event)
        artifacts = root / "model"
        artifacts.mkdir()
        (artifacts / "MLmodel").write_text("flavors: {}\n")
        (artifacts / "model.bin").write_bytes(b"\0" * 1_000_000)
        key = Ed25519PrivateKey.generate()
        with LiveServer(store) as server:
            api = LineageApi(server.url)
            lineage = timed(lambda: api.lineage("dataset:mlflow:models/bench/1", 40))
            size: list[int] = []

            stages: dict[str, float] = {}

            def evidence() -> None:
                began = time.perf_counter()

                def mark(stage: str, _: int) -> None:
                    stages[stage] = time.perf_counter() - began

                size.append(len(build(api, namespace="mlflow", name="bench", version="1",
                                      registry=NoRegistry(), key=key, artifacts_dir=artifacts,
                                      ledger=spool_ledger(ProvlinkConfig.load(home=str(root))),
                                      progress=mark)))

            bundle = timed(evidence)
            print("evidence stages (s since start):",
                  {k: round(v, 2) for k, v in stages.items()})
            read = timed(lambda: sum(1 for _ in all_events(api)), repeat=1)
            report: list[Any] = []
            cov = timed(lambda: report.append(coverage(api)), repeat=1)
        store.close()
    upstream = 2 * (len(graph) // 2)  # one run and one dataset per run
    print(f"| evidence, {upstream} upstream nodes | {bundle:.2f} s | GET /lineage of the "
          f"graph {lineage:.3f} s | {bundle / lineage:.1f}x | ≤ 5 s | bundle {size[-1]} B |")
    print(f"| coverage, {report[-1].runs} runs ({report[-1].events} events) | {cov:.2f} s | "
          f"reading every event page {read:.2f} s | {cov / read:.2f}x | ≤ 10 s |")


if __name__ == "__main__":
    main()
