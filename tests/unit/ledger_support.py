"""Random signed logs and the tampering an attacker with write access to spool.db can do."""

from __future__ import annotations

import base64
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

from provlink.delivery.spool import Spool
from provlink.governance.log import Ledger
from provlink.governance.merkle import ListSource, leaf_hash, root_hash
from provlink.governance.note import Checkpoint, Signer

SEED = bytes(range(32))  # the fixed key of the golden vectors and these tests
KEY = Signer("example.com/provlink-test-log", SEED)
ATTACKER = Signer("example.com/provlink-test-log", bytes(range(1, 33)))


def event(i: int, run: str) -> dict[str, Any]:
    return {"eventType": "START" if i % 2 == 0 else "COMPLETE",
            "eventTime": f"2026-01-01T00:00:{i % 60:02d}Z", "run": {"runId": run},
            "job": {"namespace": "test", "name": f"job{i % 3}"}, "n": i}


def build_log(path: Path, rng: random.Random, n: int, *, signer: Signer | None = KEY) -> Spool:
    """``n`` events in a few runs, delivery-state changes and checkpoints at random points,
    ending with a checkpoint that covers every entry."""
    spool = Spool(path)
    ledger = Ledger(spool)
    seqs: list[int] = []
    for i in range(n):
        seqs.append(spool.append(event(i, f"run-{i // 2}")).seq)
        if rng.random() < 0.3:
            ledger.checkpoint(signer)
        if rng.random() < 0.2 and seqs:
            spool.mark_sent(sorted(rng.sample(seqs, k=min(len(seqs), rng.randint(1, 3)))))
    if seqs and rng.random() < 0.5:
        spool.mark_dead(seqs[-1], "422 rejected")
    ledger.checkpoint(signer)
    return spool


def db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def recompute_everything(path: Path, signer: Signer | None) -> None:
    """The attacker's rewrite: every leaf hash, the node cache and every checkpoint's root
    recomputed from the (edited) entries; checkpoints re-signed with ``signer``'s key (not
    the log's), or left unsigned."""
    conn = db(path)
    rows = conn.execute("SELECT leaf_index, entry FROM ledger_leaves ORDER BY leaf_index"
                        ).fetchall()
    hashes = []
    for index, text in rows:
        h = leaf_hash(text.encode())
        hashes.append(h)
        conn.execute("UPDATE ledger_leaves SET leaf_hash = ? WHERE leaf_index = ?", (h, index))
    conn.execute("DELETE FROM ledger_nodes")
    conn.execute("DELETE FROM ledger_meta WHERE key = 'nodes_size'")
    source = ListSource(hashes)
    origin = conn.execute("SELECT value FROM ledger_meta WHERE key='origin'").fetchone()[0]
    for cp_id, size, time_ms in conn.execute(
            "SELECT id, tree_size, time_ms FROM ledger_checkpoints").fetchall():
        size = min(size, len(hashes))
        root = root_hash(source, size)
        note = Checkpoint(origin=origin, size=size, root=root, time_ms=time_ms).note(signer)
        conn.execute("UPDATE ledger_checkpoints SET tree_size = ?, root_hash = ?, note = ? "
                     "WHERE id = ?", (size, root, note, cp_id))
    conn.close()


def edit_event_and_entry(path: Path, seq: int) -> None:
    """Change an event's payload and its entry's digest consistently (before a rewrite)."""
    conn = db(path)
    payload, leaf = conn.execute("SELECT payload, leaf_index FROM events WHERE seq = ?",
                                 (seq,)).fetchone()
    from provlink.canonical import canonical_json, sha256_hex

    forged = json.loads(payload)
    forged["n"] = -1
    data = canonical_json(forged)
    digest = sha256_hex(data)
    text = conn.execute("SELECT entry FROM ledger_leaves WHERE leaf_index = ?",
                        (leaf,)).fetchone()[0]
    entry = json.loads(text)
    entry["payload_sha256"] = digest
    conn.execute("UPDATE ledger_leaves SET entry = ? WHERE leaf_index = ?",
                 (canonical_json(entry).decode(), leaf))
    conn.execute("UPDATE events SET payload = ?, payload_sha256 = ? WHERE seq = ?",
                 (data.decode(), digest, seq))
    conn.close()


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def signed_capture_point(home: Path, monkeypatch: Any) -> Any:
    """One ``provlink.capture()`` block on a fresh runtime over ``home``'s spool, signing
    with ``KEY``, its backend a closed port (nothing is delivered); returns the point."""
    import provlink
    from provlink.config import ProvlinkConfig
    from provlink.delivery.runtime import Runtime, set_runtime

    monkeypatch.setenv("PROVLINK_HOME", str(home))
    monkeypatch.setenv("PROVLINK_LEDGER_KEY", KEY.encoded())
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    runtime = Runtime(ProvlinkConfig.load())
    old = set_runtime(runtime)
    try:
        with provlink.capture("job", capture_files=False) as point:
            pass
    finally:
        set_runtime(old)
        runtime.close(0)
    return point
