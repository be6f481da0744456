"""One POST per event (what Marquez accepts), runs in parallel over pooled connections:
a real HTTP server records arrival order; every run's events arrive in spool order."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from tests.integration.test_delivery_poison import MarquezLike, event, isolate

ORDER = ("START", "RUNNING", "COMPLETE")


def dag_runs(n_dags: int, tasks: int) -> list[dict[str, Any]]:
    """Airflow-shaped: a DAG run, then its tasks (parent and root = the DAG run), interleaved
    across DAG runs as a busy scheduler would append them."""
    out: list[dict[str, Any]] = []
    for step in ORDER:
        for d in range(n_dags):
            dag_run = f"01932b6a-0000-7000-8000-{d:012d}"
            out.append(event(f"dag_{d}", d, step))
            for t in range(tasks):
                n = 1000 + d * 100 + t
                parent = {"run": {"runId": dag_run}, "job": {"namespace": "poison-tests",
                                                              "name": f"dag_{d}"}}
                child = event(f"dag_{d}.task_{t}", n, step)
                child["run"]["facets"] = {"parent": {**parent, "root": parent}}
                out.append(child)
    return out


def test_parallel_per_event_delivery_keeps_each_runs_order(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    isolate(tmp_path, monkeypatch)
    server = MarquezLike(lambda e: 201, latency=0.002)
    monkeypatch.setenv("OPENLINEAGE_URL", server.url)
    monkeypatch.setenv("PROVLINK_DELIVERY_CONCURRENCY", "8")
    events = dag_runs(n_dags=12, tasks=3)
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    try:
        for e in events:
            runtime.emitter.spool.append(e)  # a backlog, as after an outage
        assert runtime.flush(60.0)
    finally:
        runtime.close(2.0)
        set_runtime(None)
        server.stop()
    assert server.max_inflight > 1  # runs really went in parallel
    assert len(server.arrived) == len(events)
    keys = [(e["run"]["runId"], e["eventType"]) for e in server.arrived]
    assert len(set(keys)) == len(events)  # each exactly once
    by_run: dict[str, list[str]] = defaultdict(list)
    by_root: dict[str, list[str]] = defaultdict(list)
    spool_order = {json.dumps(e, sort_keys=True): i for i, e in enumerate(events)}
    by_root_spool: dict[str, list[int]] = defaultdict(list)
    for e in server.arrived:
        by_run[e["run"]["runId"]].append(e["eventType"])
        parent = e["run"].get("facets", {}).get("parent")
        root = parent["root"]["run"]["runId"] if parent else e["run"]["runId"]
        by_root[root].append(e["job"]["name"])
        by_root_spool[root].append(spool_order[json.dumps(e, sort_keys=True)])
    assert all(states == list(ORDER) for states in by_run.values()), by_run
    # a DAG run and its tasks form one lane: they arrive exactly in append order
    assert all(seqs == sorted(seqs) for seqs in by_root_spool.values())
    assert len(by_root) == 12


EXITING_CHILD = """
import provlink
for i in range(10):
    with provlink.capture(f"exit_{i}", capture_files=False):
        pass
"""


def test_a_process_that_just_exits_drains_in_parallel_mode(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """At exit the thread pool refuses new work (interpreter shutdown); the drain at exit
    then sends from its own thread instead of failing the events."""
    import os
    import subprocess
    import sys

    home = isolate(tmp_path, monkeypatch)
    server = MarquezLike(lambda e: 201)
    env = {**os.environ, "OPENLINEAGE_URL": server.url, "PROVLINK_SENDER_POLL_INTERVAL": "60"}
    try:
        done = subprocess.run([sys.executable, "-c", EXITING_CHILD], env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert "failed delivering" not in done.stderr
    assert len(server.arrived) == 20
    assert (home / "spool.db").exists()
