"""Append cost per capture point: the PostgreSQL fleet spool against the local SQLite spool.

One capture point's durable appends, as the capture path makes them
(``Runtime.emit_with_entry`` over ``SpoolEmitter``): START appended with its ledger leaf,
then the anchor checkpoint, COMPLETE with its leaf and the signed checkpoint covering it
in one commit (``runtime.append_terminal``). For the before/after in one process, also
the path before it (the anchor in a commit of its own: 3 commits per point) and, on
PostgreSQL, the spool without pipelining (every statement its own round trip). Events
are built and redacted once, outside the timing: this is the spool's share of a capture
point. SQLite (the default, ``spool_sync`` as configured) is the baseline; every mode runs
in the same process, rounds interleaved (short rounds: a WAL flush's cost moves with the
box's other disk traffic), medians over rounds.

    .venv/bin/python benchmarks/bench_spool.py                 # 50 points x 20 rounds
    .venv/bin/python benchmarks/bench_spool.py --points 20 --rounds 5

PostgreSQL must accept ``postgresql://postgres@127.0.0.1:5432/postgres`` (trust auth); a
throw-away database (``--db-prefix``) is created and dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provlink.config import ProvlinkConfig  # noqa: E402
from provlink.delivery.runtime import append_terminal  # noqa: E402
from provlink.delivery.spool import Spool  # noqa: E402
from provlink.events.build import to_event  # noqa: E402
from provlink.events.model import EventType  # noqa: E402
from provlink.events.redact import Redactor  # noqa: E402
from provlink.governance.log import Ledger  # noqa: E402
from provlink.governance.note import Signer  # noqa: E402
from tests.unit.test_events import full_record  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def capture_point(spool: Spool, signer: Signer, start: dict[str, Any], done: dict[str, Any],
                  *, one_commit: bool) -> Callable[[], None]:
    """START, then the terminal event: with ``one_commit`` as the runtime appends it now
    (``append_terminal``: the anchor checkpoint, the event and its covering checkpoint in
    one transaction), else as it did before (the anchor in a transaction of its own)."""
    ledger = Ledger(spool)
    origin = spool.origin

    def one() -> None:
        spool.append(start)
        if one_commit:
            append_terminal(spool, signer, lambda _anchor: done)
            return
        ledger.checkpoint(signer, anchor=True)
        spool.append(done, lambda tables: ledger.make_checkpoint(tables, signer, origin))

    return one


def unpipelined(url: str) -> Spool:
    """The fleet spool as it was before pipelining: every statement its own round trip."""
    from provlink.delivery.pg_spool import PgSpool

    class Unpipelined(PgSpool):
        def write(self, work: Callable[[Any], Any], what: str = "write to") -> Any:
            return self._transaction(work, what, pipelined=False)

    return Unpipelined(url)


def timed(one: Callable[[], None], points: int) -> tuple[float, float]:
    """(wall, this thread's CPU) seconds per point over ``points`` points."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(points):
        one()
    return (time.perf_counter() - wall) / points, (time.thread_time() - cpu) / points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50, help="capture points per round")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--db-prefix", default="provlink_bench_spool")
    args = parser.parse_args(argv)

    import psycopg

    from provlink.delivery.pg_spool import PgSpool

    config = ProvlinkConfig.load()
    redact = Redactor(config.secret_key_patterns, config.secret_values)
    start = redact(to_event(full_record(EventType.START)))
    done = redact(to_event(full_record(EventType.COMPLETE)))
    signer = Signer.generate("bench.provlink")
    name = f"{args.db_prefix}_{uuid.uuid4().hex[:8]}"
    load_before = os.getloadavg()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    workdir = tempfile.TemporaryDirectory()
    lite = Spool(Path(workdir.name) / "spool.db", sync=config.spool_sync)
    fleet, fleet_before = PgSpool(url), unpipelined(url)
    modes = {
        f"SQLite (spool_sync={config.spool_sync}), 3 commits (before)":
            capture_point(lite, signer, start, done, one_commit=False),
        f"SQLite (spool_sync={config.spool_sync}), 2 commits (now)":
            capture_point(lite, signer, start, done, one_commit=True),
        "PostgreSQL, 3 commits, one round trip per statement (before)":
            capture_point(fleet_before, signer, start, done, one_commit=False),
        "PostgreSQL, 3 commits, pipelined":
            capture_point(fleet, signer, start, done, one_commit=False),
        "PostgreSQL, 2 commits, pipelined (now)":
            capture_point(fleet, signer, start, done, one_commit=True),
    }
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in modes}
    try:
        for one in modes.values():
            for _ in range(5):
                one()  # warm: connections, prepared statements, page cache
        for _ in range(args.rounds):
            for kind, one in modes.items():
                results[kind].append(timed(one, args.points))
    finally:
        lite.close()
        fleet.close()
        fleet_before.close()
        workdir.cleanup()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    load_after = os.getloadavg()

    def median(kind: str, part: int) -> float:
        return statistics.median(r[part] for r in results[kind]) * 1e3

    baseline = median(next(iter(modes)), 0)
    print(f"append cost per capture point (START, anchor checkpoint, COMPLETE with its "
          f"checkpoint), {args.points} points x {args.rounds} rounds, medians")
    print("| spool, path | wall ms / point | CPU ms / point (this thread) | "
          "÷ SQLite before (wall) |")
    print("|---|---|---|---|")
    for kind in modes:
        print(f"| {kind} | {median(kind, 0):.3f} | {median(kind, 1):.3f} | "
              f"{median(kind, 0) / baseline:.2f}x |")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
