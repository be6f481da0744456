"""Concurrent writers lose nothing: 8 HTTP clients posting 1,000 events each at once, on both
stores, and several processes writing one SQLite file directly (as task processes' senders do)."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx

from provlink.server.store import open_store
from tests.server.server_events import dataset, run_event
from tests.server.support import LiveServer

WRITERS = 8
EVENTS_PER_WRITER = 1000


def _writer_events(writer: int, count: int) -> list[dict[str, Any]]:
    """Jobs that share datasets across writers, so writers contend on the same rows."""
    events = []
    for index in range(count):
        events.append(
            run_event(
                f"writer{writer}.job{index % 25}",
                run_id=str(uuid.uuid4()),
                inputs=[dataset("shared", f"table{index % 10}")],
                outputs=[dataset("shared", f"table{(index + writer) % 10 + 10}")],
                minutes=index,
            )
        )
    return events


def test_eight_http_writers_lose_nothing(store: Any) -> None:
    batches = [_writer_events(w, EVENTS_PER_WRITER) for w in range(WRITERS)]
    failures: list[str] = []
    start = threading.Barrier(WRITERS)
    with LiveServer(store) as live:

        def write(events: list[dict[str, Any]]) -> None:
            with httpx.Client(base_url=live.url, timeout=60) as client:
                start.wait()
                for event in events:
                    response = client.post("/api/v1/lineage", json=event)
                    if response.status_code != 201:
                        failures.append(f"{response.status_code} {response.text}")

        threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        counts = store.counts()
        assert counts["events"] == WRITERS * EVENTS_PER_WRITER
        assert counts["runs"] == WRITERS * EVENTS_PER_WRITER
        assert counts["jobs"] == WRITERS * 25
        assert counts["datasets"] == 20
        total = httpx.get(live.url + "/api/v1/events/lineage", params={"limit": 1}).json()[
            "totalCount"
        ]
        assert total == WRITERS * EVENTS_PER_WRITER


def _process_writer(path: str, writer: int, count: int) -> None:
    store = open_store(f"sqlite:///{path}")
    try:
        for event in _writer_events(writer, count):
            store.ingest(event)
    finally:
        store.close()


def test_processes_writing_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "lineage.db"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_process_writer, args=(str(path), w, 250)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.counts()["events"] == 1000
        assert store.counts()["runs"] == 1000
    finally:
        store.close()
