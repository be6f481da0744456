"""A batch's cost on PostgreSQL: round trips and statements fixed whatever its size, and the
version identities ingest writes without the general canonicaliser equal RFC 8785's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from provlink.canonical import canonical_json
from provlink.server.ingest import _canonical_text, _fields
from provlink.server.store import open_store
from tests.server.server_events import dataset, run_event
from tests.server.support import postgres_url


@pytest.fixture
def pg_store() -> Iterator[Any]:
    for url in postgres_url():
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()


def _batch(size: int, tag: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """START events for half of ``size`` runs, and the COMPLETE event of every run: the
    COMPLETE batch then both creates runs and finds run rows (and their inputs) stored."""
    starts, completes = [], []
    for index in range(size):
        run_id = str(uuid.uuid4())
        ins = [dataset("file", f"/{tag}/in{index}")]
        outs = [dataset("file", f"/{tag}/out{index}", ["a", "b"])]
        if index % 2 == 0:
            starts.append(run_event(f"{tag}{index}", event_type="START", run_id=run_id,
                                    inputs=ins, minutes=index))
        completes.append(run_event(f"{tag}{index}", event_type="COMPLETE", run_id=run_id,
                                   inputs=ins, outputs=outs, minutes=index + 1))
    return starts, completes


def _traffic(store: Any, monkeypatch: pytest.MonkeyPatch, size: int, tag: str
             ) -> tuple[int, int]:
    """(statements sent, waits for results) while a COMPLETE batch of ``size`` is ingested.

    Inside the pipeline every statement is sent at once; the client waits on the database
    when it reads a result after sending (a read right after another read is already in).
    """
    import psycopg

    starts, events = _batch(size, tag)
    store.ingest_many(starts)
    log: list[str] = []
    execute, fetchall = psycopg.Connection.execute, psycopg.Cursor.fetchall

    def sent(self: Any, *args: Any, **kw: Any) -> Any:
        log.append("send")
        return execute(self, *args, **kw)

    def read(self: Any) -> Any:
        log.append("read")
        return fetchall(self)

    monkeypatch.setattr(psycopg.Connection, "execute", sent)
    monkeypatch.setattr(psycopg.Cursor, "fetchall", read)
    try:
        flags = store.ingest_many(events)
    finally:
        monkeypatch.undo()
    assert flags == [True] * len(events)
    waits = sum(1 for a, b in zip(log, log[1:], strict=False) if (a, b) == ("send", "read"))
    return log.count("send"), waits + 1  # + the commit, which ends the pipeline


def test_batch_costs_three_round_trips_whatever_its_size(
    pg_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _traffic(pg_store, monkeypatch, 6, "small")
    large = _traffic(pg_store, monkeypatch, 300, "large")
    assert small == large
    statements, waits = large
    # the load's reads (sent before the events are hashed), the insert's (read after the
    # batch is derived), then the commit
    assert waits == 3
    assert statements <= 20
    assert pg_store.counts()["events"] == 3 + 6 + 150 + 300
    assert pg_store.counts()["runs"] == 306


def test_redelivered_batch_derives_nothing_again(
    pg_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _batch(20, "again")[1]
    assert pg_store.ingest_many(events) == [True] * 20
    before = pg_store.counts()
    assert pg_store.ingest_many(events) == [False] * 20
    assert pg_store.counts() == before


def test_partly_redelivered_batch_derives_from_its_new_events_only(pg_store: Any) -> None:
    """The batch is derived before the insert tells which events are new; when some were
    stored already it is derived again from the new ones, so a stored event, sent again, does
    not set its output's version back (a newer run has written the dataset since)."""
    table = [dataset("file", "/part/table", ["a"])]
    old = run_event("part.old", outputs=table, minutes=1)
    newer = run_event("part.newer", outputs=table, minutes=5)
    assert pg_store.ingest_many([old]) == [True]
    assert pg_store.ingest_many([newer]) == [True]
    stored = pg_store.dataset("file", "/part/table")
    fresh = run_event("part.fresh", outputs=[dataset("file", "/part/other")], minutes=9)
    assert pg_store.ingest_many([old, fresh]) == [False, True]
    assert pg_store.dataset("file", "/part/table") == stored
    assert stored["currentVersion"] == pg_store.run(newer["run"]["runId"])[
        "outputDatasetVersions"][0]["datasetVersionId"]["version"]
    assert pg_store.counts()["events"] == 3


@pytest.mark.parametrize(
    "value",
    [
        _fields({"fields": [{"name": "é\u2028\U0001F600", "type": "TEXT", "description": 'q"\\'},
                            {"name": "ctl\x01\x1f\t\n", "type": None}, {"name": 3}]}),
        ["ns", "名前", [("ns", "a\U00010000b")], [("ns", "out")], None],
        ["ns", "job", [], [], "https://example.com/repo?x=1&y=\u00e9"],
    ],
)
def test_version_identity_text_is_rfc8785(value: Any) -> None:
    assert _canonical_text(value) == canonical_json(value).decode("utf-8")
