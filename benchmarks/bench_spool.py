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

``--contention``: N writer processes (1, 2, 4, 8) append capture points to one spool at
once for ``--seconds`` each, the fleet spool (every write under its advisory lock)
against one SQLite file on this host; aggregate capture points/s and each point's latency.

``--fallback``: PostgreSQL unreachable when a process opens its spool (a closed port; a
socket that accepts TCP and never answers): how long ``open_spool`` waits before the local
spool (bound: ``spool_timeout``), then a capture point on that spool, then moving those
events into the fleet spool (``drain_fallback``, what ``provlink sender`` does) in events/s,
against the normal fleet-spool path in the same run.

    .venv/bin/python benchmarks/bench_spool.py                 # 50 points x 20 rounds
    .venv/bin/python benchmarks/bench_spool.py --points 20 --rounds 5
    .venv/bin/python benchmarks/bench_spool.py --contention    # 1, 2, 4, 8 writers x 3 s
    .venv/bin/python benchmarks/bench_spool.py --fallback      # 500 points to move

PostgreSQL must accept ``postgresql://postgres@127.0.0.1:5432/postgres`` (trust auth); a
throw-away database (``--db-prefix``) is created and dropped.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
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
from tests.integration.test_delivery import free_port  # noqa: E402
from tests.unit.test_events import full_record  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WRITERS = (1, 2, 4, 8)


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


def capture_events(config: ProvlinkConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """A realistic START and COMPLETE, redacted as the runtime would (built once)."""
    redact = Redactor(config.secret_key_patterns, config.secret_values)
    return (redact(to_event(full_record(EventType.START))),
            redact(to_event(full_record(EventType.COMPLETE))))


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


def fleet_database(prefix: str) -> AbstractContextManager[str]:
    from tests.server.support import throwaway_database

    return throwaway_database(prefix, PG_ADMIN)


def open_at(where: str, sync: str) -> Spool:
    """The fleet spool for a ``postgresql://`` URL, else the SQLite spool at that path."""
    from provlink.delivery.pg_spool import PgSpool

    return PgSpool(where) if where.startswith("postgresql://") else Spool(Path(where), sync=sync)


def spooled(where: str, sync: str) -> int:
    """How many events the spool holds, in any state."""
    spool = open_at(where, sync)
    try:
        status = spool.status()
        return status.pending + status.sent + status.dead
    finally:
        spool.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def append_modes(args: argparse.Namespace) -> None:
    """The append path's variants in one process, rounds interleaved."""
    from provlink.delivery.pg_spool import PgSpool

    config = ProvlinkConfig.load()
    start, done = capture_events(config)
    signer = Signer.generate("bench.provlink")
    load_before = load()
    with fleet_database(args.db_prefix) as url, tempfile.TemporaryDirectory() as workdir:
        lite = Spool(Path(workdir) / "spool.db", sync=config.spool_sync)
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
    print(f"load average before {load_before}, after {load()} ({os.cpu_count()} CPUs)")


Run = tuple[float, float, list[float]]  # one writer's (start, end, each point's seconds)
WARM = 3  # capture points each writer makes before the timed part


def writer(where: str, sync: str, seconds: float, ready: Any, out: Any) -> None:
    """One writer process: capture points as the runtime appends them (2 commits each),
    for ``seconds`` from when every writer is ready."""
    start, done = capture_events(ProvlinkConfig.load())
    spool = open_at(where, sync)
    one = capture_point(spool, Signer.generate("bench.provlink"), start, done, one_commit=True)
    for _ in range(WARM):
        one()
    ready.wait()
    began = time.monotonic()
    took: list[float] = []
    while (before := time.monotonic()) - began < seconds:
        one()
        took.append(time.monotonic() - before)
    out.put((began, time.monotonic(), took))
    spool.close()


def contended(where: str, sync: str, writers: int, seconds: float) -> list[Run]:
    """``writers`` processes appending to the spool at ``where`` at once; each one's run."""
    open_at(where, sync).close()  # the schema, made once before the writers race for it
    ctx = multiprocessing.get_context("spawn")  # nothing of this process inherited
    ready, out = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(where, sync, seconds, ready, out))
             for _ in range(writers)]
    for proc in procs:
        proc.start()
    runs: list[Run] = [out.get(timeout=120 + seconds) for _ in procs]
    for proc in procs:
        proc.join(30)
    found, expected = spooled(where, sync), sum(2 * (len(r[2]) + WARM) for r in runs)
    if found != expected:
        raise SystemExit(f"{where}: {found} events spooled, {expected} appended")
    return runs


def contention(args: argparse.Namespace) -> None:
    """Aggregate capture points/s and per-point latency with N writers on one spool."""
    sync = ProvlinkConfig.load().spool_sync
    lite_name, fleet_name = f"SQLite (spool_sync={sync}), one file", "PostgreSQL fleet spool"
    results: dict[tuple[str, int], list[Run]] = {}
    load_before = load()
    with tempfile.TemporaryDirectory() as workdir:
        for writers in WRITERS:  # a fresh spool each time: every run starts from empty
            lite = str(Path(workdir) / f"spool-{writers}.db")
            results[lite_name, writers] = contended(lite, sync, writers, args.seconds)
            with fleet_database(args.db_prefix) as url:
                results[fleet_name, writers] = contended(url, sync, writers, args.seconds)
    print(f"capture points appended by N processes at once for {args.seconds:g} s "
          f"(START; anchor checkpoint, COMPLETE and its checkpoint in one commit)")
    print("| spool | writers | capture points/s (all writers) | ÷ 1 writer | "
          "latency p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for name in (lite_name, fleet_name):
        single = 0.0
        for writers in WRITERS:
            runs = results[name, writers]
            took = [t for run in runs for t in run[2]]
            rate = len(took) / (max(r[1] for r in runs) - min(r[0] for r in runs))
            single = single or rate
            print(f"| {name} | {writers} | {rate:.0f} | {rate / single:.2f}x | "
                  f"{percentile(took, 0.5) * 1e3:.2f} | {percentile(took, 0.95) * 1e3:.2f} |")
    print(f"every event appended was in the spool afterwards; load average before "
          f"{load_before}, after {load()} ({os.cpu_count()} CPUs)")


@contextmanager
def unreachable(how: str) -> Iterator[str]:
    """A PostgreSQL URL nothing answers at: ``closed`` (a port nobody listens on, refused at
    once) or ``silent`` (a socket that accepts TCP and never says a word: a hung server)."""
    if how == "closed":
        yield f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
        return
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshakes; nobody ever reads
        yield f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/nothing"


def fallback(args: argparse.Namespace) -> None:
    """The wait before a process spools locally, a capture point there, and the move into
    the fleet spool later, against the normal fleet-spool path in the same run."""
    from provlink.delivery.pg_spool import FALLBACK, PgSpool
    from provlink.delivery.spool_open import drain_fallback, open_spool

    logging.getLogger("provlink").setLevel(logging.ERROR)  # one warning per open otherwise
    base = ProvlinkConfig.load()
    start, done = capture_events(base)
    signer = Signer.generate("bench.provlink")
    load_before = load()
    waits: dict[tuple[str, float], list[float]] = {}
    with tempfile.TemporaryDirectory() as workdir, fleet_database(args.db_prefix) as url:
        home = Path(workdir)
        for how in ("closed", "silent"):
            for bound in args.timeouts:
                with unreachable(how) as down:
                    config = ProvlinkConfig(home=home, spool_url=down, spool_timeout=bound)
                    for _ in range(args.opens):
                        began = time.perf_counter()
                        spool, fell_back = open_spool(config)
                        waits.setdefault((how, bound), []).append(time.perf_counter() - began)
                        spool.close()
                        if not fell_back:
                            raise SystemExit(f"{how}: open_spool did not fall back")
        local = Spool(home / "spool.db", sync=base.spool_sync)  # the spool it fell back to
        fleet = PgSpool(url)
        on_local = capture_point(local, signer, start, done, one_commit=True)
        on_fleet = capture_point(fleet, signer, start, done, one_commit=True)
        for one in (on_local, on_fleet):
            timed(one, 5)  # warm
        local_ms = statistics.median(timed(on_local, 10)[0] for _ in range(5)) * 1e3
        fleet_ms = statistics.median(timed(on_fleet, 10)[0] for _ in range(5)) * 1e3
        before = fleet.status().pending
        timed(on_local, args.points)  # with the timed ones: what a process spooled while
        backlog = local.status().pending  # PostgreSQL was down
        local.close()
        config = ProvlinkConfig(home=home, spool_url=url)
        began = time.perf_counter()
        moved = drain_fallback(config, fleet)
        drain = time.perf_counter() - began
        entries = fleet.read(lambda t: sum(r[1] == FALLBACK for r in t.leaves(0, 10**9)))
        arrived = fleet.status().pending - before
        fleet.close()
        if not moved == arrived == backlog or Spool(home / "spool.db").status().pending:
            raise SystemExit(f"spooled {backlog} locally, moved {moved}, {arrived} arrived")
    print(f"PostgreSQL unreachable at open: open_spool's wait before the local spool, "
          f"{args.opens} opens each, ms")
    print("| PostgreSQL | spool_timeout (bound) | min | median | max | max - bound |")
    print("|---|---|---|---|---|---|")
    for (how, bound), took in waits.items():
        what = ("closed port (refused)" if how == "closed"
                else "accepts TCP, never answers")
        print(f"| {what} | {bound * 1e3:.0f} | {min(took) * 1e3:.1f} | "
              f"{statistics.median(took) * 1e3:.1f} | {max(took) * 1e3:.1f} | "
              f"{(max(took) - bound) * 1e3:+.1f} |")
    print(f"a capture point after the fallback (local SQLite spool): {local_ms:.2f} ms; "
          f"on the reachable fleet spool: {fleet_ms:.2f} ms (medians of 5 x 10)")
    print(f"moving {backlog} fallback events ({backlog // 2} capture points) into the fleet "
          f"spool (drain_fallback, batches of {config.sender_batch_size}): {drain:.2f} s, "
          f"{backlog / drain:.0f} events/s, {entries} {FALLBACK} entries; the normal "
          f"fleet path appends {2e3 / fleet_ms:.0f} events/s (2 per point); every event "
          f"arrived once")
    print(f"load average before {load_before}, after {load()} ({os.cpu_count()} CPUs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=None,
                        help="capture points per round (50), or to move (--fallback: 500)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--contention", action="store_true", help="N writers at once")
    parser.add_argument("--seconds", type=float, default=3.0, help="per contention run")
    parser.add_argument("--fallback", action="store_true", help="PostgreSQL unreachable")
    parser.add_argument("--timeouts", type=float, nargs="+", default=[0.5, 2.0],
                        help="spool_timeout values (--fallback)")
    parser.add_argument("--opens", type=int, default=5, help="opens per case (--fallback)")
    parser.add_argument("--db-prefix", default="provlink_bench_spool")
    args = parser.parse_args(argv)
    if args.contention:
        contention(args)
    elif args.fallback:
        args.points = args.points or 500
        fallback(args)
    else:
        args.points = args.points or 50
        append_modes(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
