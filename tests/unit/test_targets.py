"""Targets classify failures: what retrying can heal stays pending, the rest is dead-lettered."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import requests

from provlink.delivery.http_poster import classify_exception, classify_status
from provlink.delivery.lanes import deliver_in_lanes, lane_of
from provlink.delivery.outcome import OK, Outcome
from provlink.delivery.targets import StoreTarget, store_unavailable
from provlink.errors import DeliveryError
from provlink.server.sqlite_store import SqliteStore


def event(job: str, n: int, parent: str | None = None) -> dict[str, Any]:
    facets = {"parent": {"run": {"runId": parent}, "job": {"namespace": "t", "name": "p"},
                         "root": {"run": {"runId": parent}, "job": {"namespace": "t", "name": "p"}}}
              } if parent else {}
    return {"eventType": "START", "eventTime": f"2026-01-01T00:00:{n:02d}Z",
            "producer": "https://example.com/tests",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
            "run": {"runId": f"01932b6a-0000-7000-8000-{n:012d}", "facets": facets},
            "job": {"namespace": "t", "name": job}, "inputs": [], "outputs": []}


class TrippingStore(SqliteStore):
    """A real SQLite store that cannot take events of job ``poison`` (as a store bug or a
    constraint would) and is locked while ``locked`` is set."""

    locked = False

    def ingest_many(self, events: list[dict[str, Any]]) -> list[bool]:
        if self.locked:
            raise sqlite3.OperationalError("database is locked")
        if any(e["job"]["name"] == "poison" for e in events):
            raise sqlite3.IntegrityError("NOT NULL constraint failed: datasets.name")
        return super().ingest_many(events)


def test_store_poison_is_dead_lettered_and_the_others_stored(tmp_path: Path) -> None:
    store = TrippingStore(tmp_path / "lineage.db")
    target = StoreTarget(store=store)
    payloads = [json.dumps(event(job, i)) for i, job in enumerate(["a", "poison", "b"])]
    outcomes = target.deliver(payloads)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].permanent and "IntegrityError" in (outcomes[1].error or "")
    assert sorted(e["job"]["name"] for e in store.iter_events()) == ["a", "b"]
    target.close(1.0)


def test_a_locked_store_keeps_every_event_pending_uncounted(tmp_path: Path) -> None:
    store = TrippingStore(tmp_path / "lineage.db")
    store.locked = True
    outcomes = StoreTarget(store=store).deliver([json.dumps(event("a", 1)),
                                                 json.dumps(event("b", 2))])
    assert len(outcomes) == 1  # the rest were not attempted
    assert not outcomes[0].ok and not outcomes[0].permanent and not outcomes[0].counted
    assert "locked" in (outcomes[0].error or "")


def test_invalid_and_unparseable_events_are_refused_by_the_store(tmp_path: Path) -> None:
    target = StoreTarget(store=SqliteStore(tmp_path / "lineage.db"))
    bad = event("x", 1)
    del bad["producer"]
    outcomes = target.deliver([json.dumps(bad), "{not json", json.dumps(event("ok", 2))])
    assert [(o.ok, o.permanent) for o in outcomes] == [(False, True), (False, True), (True, False)]
    assert (outcomes[0].error or "").startswith("422 producer")


def test_store_failures_classified_by_dbapi_name() -> None:
    assert store_unavailable(sqlite3.OperationalError("disk I/O error"))
    assert store_unavailable(OSError(28, "No space left on device"))
    assert not store_unavailable(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not store_unavailable(OverflowError("Python int too large to convert"))
    assert not store_unavailable(RecursionError("maximum recursion depth exceeded"))


def test_http_classification() -> None:
    assert classify_status(422).permanent and classify_status(400).permanent
    for status in (429, 502, 503, 504, 401, 403):
        failure = classify_status(status)
        assert not failure.permanent and failure.unreachable, status
    assert not classify_status(500).permanent and not classify_status(500).unreachable
    assert classify_exception(requests.ConnectionError("refused")).unreachable
    assert not classify_exception(requests.exceptions.ReadTimeout("slow")).unreachable
    marked = DeliveryError("schema registry refused it", permanent=True)
    assert classify_exception(marked) is marked
    assert classify_exception(ValueError("bad event")).permanent


def test_lane_is_the_root_run() -> None:
    parent = "01932b6a-0000-7000-8000-000000000099"
    assert lane_of(json.dumps(event("child", 1, parent=parent))) == parent
    assert lane_of(json.dumps(event("alone", 2))) == "01932b6a-0000-7000-8000-000000000002"
    assert lane_of("not json") == ""


def test_a_lane_stops_at_its_first_transient_failure_others_continue() -> None:
    payloads = [json.dumps(event(job, n)) for job, n in
                [("a", 1), ("b", 2), ("a", 1), ("b", 2), ("c", 3)]]
    sent: list[str] = []

    def send(payload: str) -> Outcome:
        e = json.loads(payload)
        sent.append(e["job"]["name"])
        return Outcome(ok=False, error="500") if e["job"]["name"] == "b" else OK

    outcomes = deliver_in_lanes(payloads, send, None)
    assert [o.ok for o in outcomes] == [True, False, True, False, True]
    assert outcomes[3].held and not outcomes[1].held
    assert sent.count("b") == 1


def test_an_unreachable_backend_stops_every_lane() -> None:
    payloads = [json.dumps(event(job, n)) for job, n in [("a", 1), ("b", 2), ("c", 3)]]
    calls: list[str] = []

    def send(payload: str) -> Outcome:
        calls.append(payload)
        return Outcome(ok=False, error="ConnectionError", counted=False)

    outcomes = deliver_in_lanes(payloads, send, None)
    assert len(calls) == 1 and [o.held for o in outcomes] == [False, True, True]
