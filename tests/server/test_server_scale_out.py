"""Two ``provlink serve`` processes on one PostgreSQL database, fed concurrently over real
HTTP, as behind a load balancer: every event is stored once and no derived write is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provlink.server.store import open_store
from tests.server.server_events import dataset, run_event
from tests.server.support import free_port, postgres_url

CLIENTS = 4
BATCHES = 8
PER_BATCH = 50  # START + COMPLETE pairs: 25 runs per batch


@pytest.fixture
def shared_database() -> Iterator[str]:
    yield from postgres_url("backend_scale")


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "provlink.cli.main", "serve", "--port", str(port), "--db", url],
        env={k: v for k, v in os.environ.items() if not k.startswith("PROVLINK_API")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            httpx.get(base + "/api/v1/namespaces", timeout=5)
            return process, base
        except httpx.TransportError:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(error) from None
            assert time.monotonic() < deadline, "provlink serve did not start"
            time.sleep(0.2)


def _batches(client: int) -> list[list[dict[str, Any]]]:
    """Runs of 10 shared jobs over 20 shared datasets: clients contend on the same rows."""
    batches = []
    for number in range(BATCHES):
        events = []
        for index in range(PER_BATCH // 2):
            run_id = str(uuid.uuid4())
            job = f"shared.job{index % 10}"
            io = {
                "inputs": [dataset("shared", f"table{index % 20}", ["a", "b"])],
                "outputs": [dataset("shared", f"table{(index + 1) % 20}", ["a", "b"])],
            }
            minutes = client * 1000 + number * 50 + index
            events.append(run_event(job, event_type="START", run_id=run_id, minutes=minutes, **io))
            events.append(run_event(job, run_id=run_id, minutes=minutes + 0.5, **io))
        batches.append(events)
    return batches


def test_two_servers_on_one_database_store_every_event_once(shared_database: str) -> None:
    open_store(shared_database).close()  # migrate once, as a deployment would before scaling
    servers = [_serve(shared_database), _serve(shared_database)]
    try:
        work = [_batches(client) for client in range(CLIENTS)]
        failures: list[str] = []
        start = threading.Barrier(CLIENTS)

        def feed(client: int) -> None:
            with httpx.Client(timeout=300) as http:
                start.wait()
                for number, batch in enumerate(work[client]):
                    # every batch goes to one server and is redelivered to the other at once
                    first = servers[(client + number) % 2][1]
                    again = servers[(client + number + 1) % 2][1]
                    for base in (first, again):
                        answer = http.post(base + "/api/v1/lineage/batch", json=batch)
                        if answer.status_code != 200 or answer.json()["errors"]:
                            failures.append(f"{answer.status_code} {answer.text[:300]}")

        threads = [threading.Thread(target=feed, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=60)

    sent = [event for batches in work for batch in batches for event in batch]
    runs = {event["run"]["runId"] for event in sent}
    store = open_store(shared_database)
    try:
        counts = store.counts()
        assert counts["events"] == len(sent) == CLIENTS * BATCHES * PER_BATCH
        assert counts["runs"] == len(runs)
        assert counts["jobs"] == 10 and counts["datasets"] == 20
        # no derived write lost: every run COMPLETED, each wrote its own dataset version (plus
        # the run-less first version of table0, which is read before any run writes it)
        assert counts["dataset_versions"] == len(runs) + 1
        for run_id in runs:
            run = store.run(run_id)
            assert run is not None and run["state"] == "COMPLETED", run_id
            assert len(run["outputDatasetVersions"]) == 1
        for index in range(10):
            job = store.job("provlink-tests", f"shared.job{index}")
            assert job is not None and job["latestRun"]["state"] == "COMPLETED"
        graph = store.lineage("job:provlink-tests:shared.job0", 20)["graph"]
        assert {node["id"] for node in graph} >= {"job:provlink-tests:shared.job0"}
        assert len(list(store.iter_events())) == len(sent)
    finally:
        store.close()
