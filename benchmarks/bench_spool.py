"""Append cost per capture point: the PostgreSQL fleet spool against the local SQLite spool.

One capture point's durable appends, as the capture path makes them
(``Runtime.emit_with_entry`` over ``SpoolEmitter``): START appended with its ledger leaf,
then the anchor checkpoint, COMPLETE with its leaf and the signed checkpoint covering it,
in one commit (``runtime.append_terminal``; on code without it, the anchor in a commit of
its own first, so this one file measures the code before and after). Events are built
and redacted once, outside the timing: this is the spool's share of a capture point.
SQLite (the default, ``spool_sync`` as configured) is the baseline; both run in the same
process, rounds interleaved so both see the same load; the figures are medians over
rounds.

    .venv/bin/python benchmarks/bench_spool.py                 # 200 points x 5 rounds
    .venv/bin/python benchmarks/bench_spool.py --points 50 --rounds 3

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
from provlink.delivery.spool import Spool  # noqa: E402
from provlink.events.build import to_event  # noqa: E402
from provlink.events.model import EventType  # noqa: E402
from provlink.events.redact import Redactor  # noqa: E402
from provlink.governance.log import Ledger  # noqa: E402
from provlink.governance.note import Signer  # noqa: E402
from tests.unit.test_events import full_record  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def capture_point(spool: Spool, signer: Signer, start: dict[str, Any],
                  done: dict[str, Any]) -> Callable[[], None]:
    """START, then the terminal event as the runtime appends it: in one transaction with
    both its checkpoints where the code has ``append_terminal``, else (the code before it)
    the anchor checkpoint's own transaction, then the event with the covering one."""
    from provlink.delivery import runtime

    ledger = Ledger(spool)
    origin = spool.origin
    at_once = getattr(runtime, "append_terminal", None)

    def one() -> None:
        spool.append(start)
        if at_once is not None:
            at_once(spool, signer, lambda _anchor: done)
            return
        ledger.checkpoint(signer, anchor=True)
        spool.append(done, lambda tables: ledger.make_checkpoint(tables, signer, origin))

    return one


def timed(one: Callable[[], None], points: int) -> tuple[float, float]:
    """(wall, this thread's CPU) seconds per point over ``points`` points."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(points):
        one()
    return (time.perf_counter() - wall) / points, (time.thread_time() - cpu) / points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200, help="capture points per round")
    parser.add_argument("--rounds", type=int, default=5)
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
    workdir = tempfile.TemporaryDirectory()
    lite = Spool(Path(workdir.name) / "spool.db", sync=config.spool_sync)
    fleet = PgSpool(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    results: dict[str, list[tuple[float, float]]] = {"sqlite": [], "postgresql": []}
    try:
        points = {"sqlite": capture_point(lite, signer, start, done),
                  "postgresql": capture_point(fleet, signer, start, done)}
        for one in points.values():
            for _ in range(5):
                one()  # warm: connections, prepared statements, page cache
        for _ in range(args.rounds):
            for kind, one in points.items():
                results[kind].append(timed(one, args.points))
    finally:
        lite.close()
        fleet.close()
        workdir.cleanup()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    load_after = os.getloadavg()

    def median(kind: str, part: int) -> float:
        return statistics.median(r[part] for r in results[kind]) * 1e3

    lite_ms, pg_ms = median("sqlite", 0), median("postgresql", 0)
    print(f"append cost per capture point (START + anchor checkpoint + COMPLETE with its "
          f"checkpoint), {args.points} points x {args.rounds} rounds, medians")
    print("| spool | wall ms / point | CPU ms / point (this thread) | ÷ SQLite (wall) |")
    print("|---|---|---|---|")
    print(f"| SQLite (spool_sync={config.spool_sync}) | {lite_ms:.3f} | "
          f"{median('sqlite', 1):.3f} | 1.00x |")
    print(f"| PostgreSQL fleet spool | {pg_ms:.3f} | {median('postgresql', 1):.3f} | "
          f"{pg_ms / lite_ms:.2f}x |")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
