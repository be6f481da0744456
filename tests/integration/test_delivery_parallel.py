"""One POST per event (what Marquez accepts), runs in parallel over pooled connections:
a real HTTP server records arrival order; every run's events arrive in spool order."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from tests.integration.test_delivery_poison import MarquezLike, event, isolate, wait_for

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



def slow_and_fast(slow: int = 8) -> list[dict[str, Any]]:
    """One DAG run whose tasks the endpoint is slow on (one lane), interleaved with quick
    one-event runs: in batches of 4, each batch holds two of each."""
    dag_run = "01932b6a-0000-7000-8000-000000000001"
    parent = {"run": {"runId": dag_run}, "job": {"namespace": "poison-tests", "name": "slow"}}
    out: list[dict[str, Any]] = []
    for i in range(slow):
        child = event(f"slow.task_{i}", 100 + i, "COMPLETE")
        child["run"]["facets"] = {"parent": {**parent, "root": parent}}
        out += [child, event(f"fast_{i}", 200 + i, "COMPLETE")]
    return out


def send_all(server: MarquezLike, monkeypatch: pytest.MonkeyPatch,
             events: list[dict[str, Any]]) -> None:
    """Spool ``events`` as a backlog; the sender drains it in batches of 4 over 4 lanes."""
    monkeypatch.setenv("OPENLINEAGE_URL", server.url)
    monkeypatch.setenv("PROVLINK_DELIVERY_CONCURRENCY", "4")
    monkeypatch.setenv("PROVLINK_SENDER_BATCH_SIZE", "4")
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    try:
        for e in events:
            runtime.emitter.spool.append(e)
        runtime.emitter.sender.start()  # the backlog, as after an outage
        assert wait_for(lambda: runtime.emitter.spool.status().pending == 0)
    finally:
        runtime.close(2.0)
        set_runtime(None)
        server.stop()


def test_a_run_spanning_batches_keeps_its_order_while_later_batches_flow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender hands over batch k+1 while batch k's slow run is still sending: quick runs
    of later batches overtake it, and the slow run's events still arrive in spool order."""
    isolate(tmp_path, monkeypatch)

    def answer(e: dict[str, Any]) -> int:
        if e["job"]["name"].startswith("slow"):
            time.sleep(0.03)  # the backend is slow on this run
        return 201

    server = MarquezLike(answer)
    events = slow_and_fast()
    send_all(server, monkeypatch, events)
    names = [e["job"]["name"] for e in server.arrived]
    assert sorted(names) == sorted(e["job"]["name"] for e in events)  # each exactly once
    assert [n for n in names if n.startswith("slow")] == [f"slow.task_{i}" for i in range(8)]
    batch_of = {e["job"]["name"]: i // 4 for i, e in enumerate(events)}
    # batches overlapped: a quick run of a later batch arrived before a slow event of an
    # earlier one (batch by batch, slow.task_1 would arrive before fast_2)
    assert any(batch_of[later] > batch_of[earlier]
               for k, later in enumerate(names) for earlier in names[k + 1:])


def test_a_run_that_fails_mid_batch_is_retried_in_order_across_batches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """slow.task_3 fails once (500): nothing after it in its run is tried before its retry
    succeeds, though that run's later events sit in batches already handed over."""
    isolate(tmp_path, monkeypatch)
    failed: list[str] = []

    def answer(e: dict[str, Any]) -> int:
        name = e["job"]["name"]
        if name.startswith("slow"):
            time.sleep(0.01)
            if name == "slow.task_3" and not failed:
                failed.append(name)
                return 500
        return 201

    server = MarquezLike(answer)
    events = slow_and_fast()
    send_all(server, monkeypatch, events)
    tries = [int(n.rsplit("_", 1)[1]) for n in server.tries if n.startswith("slow")]
    assert tries == sorted(tries) and tries.count(3) == 2 and len(tries) == 9
    names = [e["job"]["name"] for e in server.arrived]
    assert sorted(names) == sorted(e["job"]["name"] for e in events)
