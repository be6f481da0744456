"""The durable spool: ordered appends, each with its ledger leaf, delivery state."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from provlink.delivery.spool import DEAD, SENT, Spool
from provlink.governance.merkle import leaf_hash


def event(i: int, run: str = "r") -> dict:
    return {"eventType": "START", "run": {"runId": f"{run}-{i}"}, "n": i}


def test_appends_are_ordered_and_each_is_a_ledger_leaf(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    appended = [spool.append(event(i)) for i in range(5)]
    assert [a.seq for a in appended] == [1, 2, 3, 4, 5]
    assert [a.leaf_index for a in appended] == [0, 1, 2, 3, 4]
    entries = list(spool.entries(batch=2))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    leaves = spool.read(lambda t: t.leaves(0, 10))
    for e, (index, kind, text, stored, _) in zip(entries, leaves, strict=True):
        assert e.payload_sha256 == hashlib.sha256(e.payload.encode()).hexdigest()
        assert (kind, e.leaf_index, e.entry_hash) == ("openlineage.event", index, stored.hex())
        assert leaf_hash(text.encode()) == stored
        assert json.loads(text)["payload_sha256"] == e.payload_sha256
    assert json.loads(entries[2].payload)["n"] == 2


def test_pending_is_bounded_and_state_transitions(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    for i in range(10):
        spool.append(event(i))
    batch = spool.pending(4)
    assert [seq for seq, _ in batch] == [1, 2, 3, 4]
    spool.mark_sent([1, 2])
    spool.mark_dead(3, "422 run.runId: missing")
    spool.mark_failed_attempt(4, "connection refused")
    status = spool.status()
    assert (status.pending, status.sent, status.dead) == (7, 2, 1)
    assert [seq for seq, _ in spool.pending(2)] == [4, 5]
    dead = list(spool.entries(state=DEAD))
    assert [(d.seq, d.last_error) for d in dead] == [(3, "422 run.runId: missing")]
    assert spool.requeue_dead() == 1
    assert spool.status().dead == 0
    assert len(list(spool.entries(state=SENT))) == 2


def test_two_spool_handles_share_one_log(tmp_path: Path) -> None:
    a, b = Spool(tmp_path / "s.db"), Spool(tmp_path / "s.db")
    for i in range(6):
        (a if i % 2 else b).append(event(i))
    entries = list(a.entries())
    assert [e.seq for e in entries] == list(range(1, 7))
    assert [e.leaf_index for e in entries] == list(range(6))
    assert a.origin == b.origin


def test_delivery_state_changes_are_new_ledger_entries(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    for i in range(3):
        spool.append(event(i))
    spool.mark_sent([1, 2])
    spool.mark_dead(3, "422")
    spool.requeue_dead()
    parsed = [json.loads(text) for _, _, text, _, _ in spool.read(lambda t: t.leaves(0, 10))]
    kinds = [(e["kind"], e.get("state"), e.get("events")) for e in parsed]
    assert kinds[3:] == [("delivery", "sent", [1, 2]), ("delivery", "dead", [3]),
                         ("delivery", "pending", [3])]


def test_lease_is_exclusive_until_released(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    assert spool.acquire_lease("host:1:1", 30)
    assert not spool.acquire_lease("otherhost:2:2", 30)
    assert spool.acquire_lease("host:1:1", 30)  # renewal
    spool.release_lease("host:1:1")
    assert spool.acquire_lease("otherhost:2:2", 30)


def test_lease_of_a_dead_local_process_is_taken_over(tmp_path: Path) -> None:
    import os
    import subprocess

    spool = Spool(tmp_path / "s.db")
    child = subprocess.Popen(["true"])
    child.wait()
    dead_owner = f"{os.uname().nodename}:{child.pid}:1"
    assert spool.acquire_lease(dead_owner, 30)
    assert spool.acquire_lease(f"{os.uname().nodename}:{os.getpid()}:1", 30)


def test_reopening_a_current_spool_takes_no_write_lock(tmp_path: Path) -> None:
    """Every task process opens the spool: the schema script's INSERT took the write lock,
    so each open waited behind whatever process was writing (here it would wait out the
    30 s busy timeout and fail)."""
    import sqlite3

    path = tmp_path / "s.db"
    Spool(path).append(event(0))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process mid-append
    reopened = Spool(path)
    assert reopened.has_pending()
    writer.execute("ROLLBACK")
    assert reopened.append(event(1)).leaf_index == 1


def test_a_spool_from_before_the_ledger_is_upgraded_once(tmp_path: Path) -> None:
    import sqlite3

    from provlink.delivery.spool import SCHEMA_VERSION

    path = tmp_path / "s.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, "
                "payload TEXT, payload_sha256 TEXT NOT NULL, prev_hash TEXT NOT NULL "
                "DEFAULT '', entry_hash TEXT NOT NULL, created_at REAL NOT NULL, state "
                "INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
                "last_error TEXT, sent_at REAL)")
    old.commit()
    old.close()
    spool = Spool(path)
    assert spool.append(event(0)).leaf_index == 0
    assert spool._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert spool.acquire_lease("host:1:1", 30)  # the lease row the script inserts
