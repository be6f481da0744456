"""One canonical JSON: the backend keys an event by the same RFC 8785 digest the spool and the
ledger record, so a stored event leads straight to its ledger entry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from provlink.canonical import json_digest
from provlink.delivery.spool import Spool
from provlink.delivery.targets import TransportTarget
from provlink.governance.ledger import verify
from provlink.server.store import open_store
from tests.server.server_events import dataset, facet, run_event
from tests.server.support import LiveServer


def awkward_events() -> list[dict[str, Any]]:
    """Non-ASCII text (BMP and astral, in keys too), numbers in every ECMAScript form."""
    stats = facet(rowCount=3, size=1024, ratio=0.1, big=1e21, tiny=1e-7, whole=2.0, neg=-0.5,
                  # large integral doubles: JCS writes them as digits Python reads as ints
                  huge=-6.920394208246542e16, exact=2**60)
    first = run_event(
        "données.entraîner",
        event_type="START",
        inputs=[dataset("file", "/data/Zürich/ventes_€.csv")],
        run_facets={"custom": {**facet(note="naïve ✓ 日本語 🚀"), "\U0001d518key": 1, "ﬀ": 2}},
    )
    second = run_event(
        "données.entraîner",
        run_id=first["run"]["runId"],
        outputs=[{**dataset("file", "/data/modèle.pkl"), "outputFacets": {"stats": stats}}],
        minutes=1.5,
    )
    third = run_event("plain-ascii", job_facets={"x": facet(v=123456789.125)}, minutes=2)
    return [first, second, third]


def backend_rows(store: Any) -> dict[str, dict[str, Any]]:
    rows = store.read(lambda tx: tx.rows("SELECT hash, payload FROM events"))
    return {digest: json.loads(payload) for digest, payload in rows}


def test_backend_hash_finds_the_spool_and_ledger_entry(
    server: LiveServer, store: Any, tmp_path: Path
) -> None:
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    spool = Spool(tmp_path / "spool.db")
    events = awkward_events()
    links = [spool.append(event) for event in events]
    target = TransportTarget(HttpTransport(HttpConfig.from_dict({"url": server.url})))
    pending = [payload for _, payload in spool.pending(10)]
    # the first two through provlink's batch endpoint, the last through the transport's emit
    outcomes = target.deliver(pending[:2]) + target.deliver(pending[2:])
    assert all(outcome.ok for outcome in outcomes), outcomes

    stored = backend_rows(store)
    entries = {entry.payload_sha256: entry for entry in spool.entries()}
    assert len(stored) == len(events)
    for appended, event in zip(links, events, strict=True):
        digest = json_digest(event)
        assert digest in stored, f"the backend does not key event {appended} by its digest"
        entry = entries[digest]
        assert (entry.seq, entry.entry_hash, entry.leaf_index) == tuple(appended)[:3]
        assert stored[digest] == json.loads(entry.payload)
        assert json_digest(stored[digest]) == digest, "the stored form must hash the same again"
        # the stored text is the canonical bytes themselves, non-ASCII kept as UTF-8
        assert hashlib.sha256(entry.payload.encode("utf-8")).hexdigest() == digest
    assert "naïve ✓ 日本語 🚀" in spool.entries().__next__().payload
    assert verify(spool).ok
    spool.close()


def test_redelivery_is_recognised_by_the_canonical_hash(server: LiveServer, store: Any) -> None:
    import httpx

    event = awkward_events()[1]
    # a different serialisation of the same event: ASCII escapes, other key order, spaces
    text = json.dumps(dict(reversed(list(event.items()))), ensure_ascii=True, indent=1)
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/api/v1/lineage", json=event).status_code in (200, 201)
        again = client.post(
            "/api/v1/lineage", content=text, headers={"Content-Type": "application/json"}
        )
        assert again.status_code in (200, 201)
    assert list(backend_rows(store)) == [json_digest(event)]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("run", "facets", "x"), {"n": 2**53 + 1}, "run.facets.x.n"),
        (("run", "facets", "x"), {"s": "\ud800"}, "run.facets.x.s"),
        (("job", "facets", "x"), {"deep": [1, {"f": float("inf")}]}, "job.facets.x.deep[1].f"),
    ],
)
def test_events_outside_i_json_are_refused_by_name(
    path: tuple[str, ...], value: Any, field: str
) -> None:
    from provlink.errors import EventValidationError
    from provlink.server.validation import validate_event

    event = awkward_events()[2]
    owner = event
    for key in path[:-1]:
        owner = owner[key]
    owner[path[-1]] = value
    with pytest.raises(EventValidationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        validate_event(event)


def test_old_stores_are_rekeyed_by_the_canonical_hash(tmp_path: Path) -> None:
    """A store written before RFC 8785 (ASCII-escaped sorted JSON) has its keys migrated."""
    from provlink.server.schema import MIGRATIONS, rehash_events

    assert any(rehash_events in migration for migration in MIGRATIONS)
    events = awkward_events()
    old = [json.dumps(event, sort_keys=True, separators=(",", ":")) for event in events]
    store = open_store(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        assert store.ingest_many(events) == [True] * 3

        def downgrade(tx: Any) -> None:  # as an older provlink wrote them
            for index, text in enumerate(old, start=1):
                digest = hashlib.sha256(text.encode("ascii")).hexdigest()
                tx.run(
                    "UPDATE events SET hash = ?, payload = ? WHERE id = ?", (digest, text, index)
                )

        store.write(downgrade)
        assert json_digest(events[0]) not in backend_rows(store)
        store.write(rehash_events)
        assert sorted(backend_rows(store)) == sorted(json_digest(event) for event in events)
        assert store.ingest_many(events) == [False] * 3, "redelivered old events are duplicates"
        assert [json_digest(e) for e in store.iter_events()] == [json_digest(e) for e in events]
    finally:
        store.close()
