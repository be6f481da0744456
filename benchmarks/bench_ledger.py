"""Ledger benchmarks: its cost per capture point, verify throughput, proofs at 10^6 leaves.

1. Per capture point (START + COMPLETE appended, a checkpoint right before COMPLETE with
   its consistency proof, one right after), against the baseline of a plain spool append
   (the events row alone, in the same ``BEGIN IMMEDIATE`` transaction, same file layout).
2. ``verify`` throughput (entries/s) over a log with a checkpoint every 1,000 entries, and
   over one checkpointed every second entry (as capture points do), checking the latest
   checkpoint's signature (the default) or every one's (``--all-signatures``).
3. Inclusion and consistency proof size and time at 10^6 leaves (node cache filled).

Times are CPU seconds of this process (``time.process_time``): the box is a shared 2-core
machine usually running other suites, where wall time mostly measures waiting for a core
(``--wall`` for wall-clock figures). SQLite runs WAL with ``synchronous=NORMAL`` (the
spool's default), so commits do not wait for the disk either way.

Run: ``.venv/bin/python benchmarks/bench_ledger.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provlink.canonical import canonical_json, sha256_hex  # noqa: E402
from provlink.delivery.spool import Spool  # noqa: E402
from provlink.governance import entry as entries  # noqa: E402
from provlink.governance.ledger import verify  # noqa: E402
from provlink.governance.log import Ledger  # noqa: E402
from provlink.governance.merkle import (  # noqa: E402
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from provlink.governance.note import Checkpoint, Signer  # noqa: E402

KEY = Signer("bench.example/log", bytes(range(32)))


CLOCK = time.process_time


def per_call(fn: Callable[[], Any], n: int, repeats: int = 5) -> float:
    rounds = []
    for _ in range(repeats):
        start = CLOCK()
        for _ in range(n):
            fn()
        rounds.append((CLOCK() - start) / n)
    return statistics.median(rounds)


def event(i: int) -> dict[str, Any]:
    return {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
            "producer": "https://example.com/bench", "run": {"runId": f"run-{i}"},
            "job": {"namespace": "bench", "name": "train"}, "inputs": [], "outputs": [],
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}


class PlainSpool:
    """The baseline: the spool's append before the ledger — one events row per event."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, run_id "
                          "TEXT, payload TEXT, payload_sha256 TEXT, created_at REAL)")

    def append(self, ev: dict[str, Any]) -> None:
        data = canonical_json(ev)
        self.conn.execute("BEGIN IMMEDIATE")
        seq = (self.conn.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0) + 1
        self.conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                          (seq, ev["run"]["runId"], data.decode(), sha256_hex(data), time.time()))
        self.conn.execute("COMMIT")


def capture_point_cost(tmp: Path, n: int) -> dict[str, float]:
    plain = PlainSpool(tmp / "plain.db")
    spool = Spool(tmp / "ledger.db")
    ledger = Ledger(spool)
    ev = event(0)
    for _ in range(50):  # warm both files
        plain.append(ev)
        spool.append(ev)
    base = per_call(lambda: (plain.append(ev), plain.append(ev)), n)
    appends = per_call(lambda: (spool.append(ev), spool.append(ev)), n)
    unsigned = per_call(lambda: ledger.checkpoint(None), n)
    signed = per_call(lambda: ledger.checkpoint(KEY), n)
    anchored = per_call(lambda: ledger.checkpoint(KEY, anchor=True), n)
    sign_only = per_call(lambda: KEY.sign_line("bench.example/log\n1\nAAAA\n"), n)
    origin = spool.origin

    def capture_point() -> None:  # what Runtime.emit_with_entry does for START + COMPLETE
        spool.append(ev)
        ledger.checkpoint(KEY, anchor=True)  # carried by the terminal event
        spool.append(ev, lambda t: Ledger.make_checkpoint(t, KEY, origin))  # one commit

    whole = per_call(capture_point, n)
    return {"plain_two_appends_ms": base * 1e3, "ledger_two_appends_ms": appends * 1e3,
            "checkpoint_unsigned_ms": unsigned * 1e3, "checkpoint_signed_ms": signed * 1e3,
            "checkpoint_anchor_ms": anchored * 1e3, "ed25519_sign_ms": sign_only * 1e3,
            "capture_point_ledger_ms": whole * 1e3, "ratio_appends": appends / base,
            "ratio_capture_point": whole / base}


def bulk_log(path: Path, n: int, checkpoint_every: int, *, signed: bool = True) -> Spool:
    """A log of ``n`` event entries written in bulk (the same rows ``Spool.append`` writes),
    with a checkpoint every ``checkpoint_every`` entries."""
    spool = Spool(path)
    origin = spool.origin
    ev_rows, leaf_rows, cps = [], [], []
    from provlink.governance.merkle import Frontier

    frontier = Frontier()
    for i in range(n):
        ev = event(i)
        data = canonical_json(ev)
        digest = sha256_hex(data)
        entry = entries.encode(seq=i, time_ms=1_767_225_600_000 + i, kind=entries.EVENT,
                               fields=entries.event_fields(ev, digest, i + 1))
        h = leaf_hash(entry)
        frontier.push(h)
        leaf_rows.append((i, entries.EVENT, entry.decode(), h, None))
        ev_rows.append((i + 1, ev["run"]["runId"], data.decode(), digest, h.hex(), 0.0, i))
        if (i + 1) % checkpoint_every == 0 or i == n - 1:
            cp = Checkpoint(origin=origin, size=i + 1, root=frontier.root(), time_ms=i)
            cps.append((cp.size, cp.root, cp.time_ms, cp.note(KEY if signed else None)))
    spool.write(lambda t: (
        t.conn.executemany("INSERT INTO ledger_leaves VALUES (?, ?, ?, ?, ?)", leaf_rows),
        t.conn.executemany("INSERT INTO events (seq, run_id, payload, payload_sha256, "
                           "entry_hash, created_at, leaf_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           ev_rows),
        t.conn.executemany("INSERT INTO ledger_checkpoints (tree_size, root_hash, time_ms, note) "
                           "VALUES (?, ?, ?, ?)", cps)))
    return spool


def verify_throughput(tmp: Path, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, every, all_sigs in (("every_1000", 1000, False),
                                  ("every_capture_point", 2, False),
                                  ("every_capture_point_all_signatures", 2, True)):
        count = n if every > 2 else n // 5
        spool = bulk_log(tmp / f"verify-{name}.db", count, every)
        start = CLOCK()
        report = verify(spool, verifier=KEY.verifier(), all_signatures=all_sigs)
        elapsed = CLOCK() - start
        assert report.ok, report.problems[:3]
        out[f"verify_{name}_entries"] = count
        out[f"verify_{name}_entries_per_s"] = count / elapsed
        spool.close()
    return out


def proofs_at(tmp: Path, n: int) -> dict[str, float]:
    spool = Spool(tmp / "million.db")
    rows = ((i, "x", "{}", leaf_hash(i.to_bytes(8, "big")), None) for i in range(n))
    spool.write(lambda t: t.conn.executemany(
        "INSERT INTO ledger_leaves VALUES (?, ?, ?, ?, ?)", rows))
    ledger = Ledger(spool)
    start = CLOCK()
    made = ledger.checkpoint(KEY)  # fills the node cache for all n leaves
    fill = CLOCK() - start
    root = made.checkpoint.root
    old = n // 3 + 12345
    old_root = ledger.root(old)
    indexes = [7, n // 2 + 1, n - 2, n // 7]
    inc = per_call(lambda: [ledger.inclusion(i, n) for i in indexes], 20) / len(indexes)
    cons = per_call(lambda: ledger.consistency(old, n), 20)
    proof = ledger.inclusion(n // 2 + 1, n)
    assert verify_inclusion(n // 2 + 1, n, leaf_hash((n // 2 + 1).to_bytes(8, "big")), proof,
                            root)
    cproof = ledger.consistency(old, n)
    assert verify_consistency(old, n, old_root, root, cproof)
    ver = per_call(lambda: verify_inclusion(n // 2 + 1, n,
                                            leaf_hash((n // 2 + 1).to_bytes(8, "big")),
                                            proof, root), 200)
    spool.close()
    return {"leaves": n, "node_cache_fill_s": fill, "inclusion_proof_ms": inc * 1e3,
            "inclusion_proof_hashes": len(proof), "inclusion_proof_bytes": 32 * len(proof),
            "consistency_proof_ms": cons * 1e3, "consistency_proof_hashes": len(cproof),
            "consistency_proof_bytes": 32 * len(cproof), "verify_inclusion_ms": ver * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    args = parser.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        cp = capture_point_cost(tmp, 50 if args.quick else 300)
        vt = verify_throughput(tmp, 10_000 if args.quick else 50_000)
        pr = proofs_at(tmp, 50_000 if args.quick else 1_000_000)
    if args.json:
        print(json.dumps({"capture_point": cp, "verify": vt, "proofs": pr}, indent=2))
        return
    print("ledger cost per capture point (vs the plain spool append of its two events)")
    print(f"  plain spool: two appends (baseline)  : {cp['plain_two_appends_ms']:.3f} ms")
    print(f"  two appends with their ledger leaves : {cp['ledger_two_appends_ms']:.3f} ms "
          f"({cp['ratio_appends']:.2f}x)")
    print(f"  checkpoint, unsigned                 : {cp['checkpoint_unsigned_ms']:.3f} ms")
    print(f"  checkpoint, Ed25519-signed           : {cp['checkpoint_signed_ms']:.3f} ms "
          f"(signature alone {cp['ed25519_sign_ms']:.3f} ms)")
    print(f"  anchor checkpoint (+ consistency proof): {cp['checkpoint_anchor_ms']:.3f} ms")
    print(f"  whole capture point's ledger work    : {cp['capture_point_ledger_ms']:.3f} ms "
          f"({cp['ratio_capture_point']:.2f}x the plain appends)")
    print("verify throughput (signatures checked)")
    for name in ("every_1000", "every_capture_point", "every_capture_point_all_signatures"):
        print(f"  checkpoint {name.replace('_', ' ')}: {vt[f'verify_{name}_entries']} entries, "
              f"{vt[f'verify_{name}_entries_per_s']:,.0f} entries/s")
    print(f"proofs at {pr['leaves']:,} leaves (node cache fill {pr['node_cache_fill_s']:.1f} s)")
    print(f"  inclusion  : {pr['inclusion_proof_hashes']} hashes ({pr['inclusion_proof_bytes']} "
          f"B), {pr['inclusion_proof_ms']:.3f} ms to compute, "
          f"{pr['verify_inclusion_ms']:.3f} ms to verify")
    print(f"  consistency: {pr['consistency_proof_hashes']} hashes "
          f"({pr['consistency_proof_bytes']} B), {pr['consistency_proof_ms']:.3f} ms")


if __name__ == "__main__":
    main()
