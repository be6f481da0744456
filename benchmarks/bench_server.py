"""Benchmark of ``provlink serve``: ingest throughput (single and batch) and ``/lineage``
latency at depth 20 on synthetic graphs of 1k, 10k and 100k nodes, on SQLite and PostgreSQL.

Everything goes through a real uvicorn server on loopback, as clients see it.

    .venv/bin/python benchmarks/bench_server.py                       # all sizes, both stores
    .venv/bin/python benchmarks/bench_server.py --sizes 1000 --stores sqlite
    .venv/bin/python benchmarks/bench_server.py --per-batch-only       # ingest per batch size
    .venv/bin/python benchmarks/bench_server.py --in-process           # CPU per event, no HTTP
    .venv/bin/python benchmarks/bench_server.py --serves               # two serves, one database

``--per-batch-only`` measures batch ingest (``POST /api/v1/lineage/batch``) at several batch
sizes on PostgreSQL and, in the same run, SQLite as the baseline, and prints each rate with
its ratio to SQLite's at the same size and to the 2,000 events/s goal.

``--serves`` feeds one PostgreSQL database concurrently, one client per feed: one serve with
one client (the sequential baseline), one serve with two clients, two serves with one client
each; it prints the aggregate rate of each and checks that every event is stored once, also
after each client redelivers every batch to the other feed's server.

``--in-process`` calls ``store.ingest_many`` directly (no HTTP) and reports, per batch size,
the rate and the CPU each event costs this process and, on PostgreSQL, the database server's
backends (read from ``/proc``, so PostgreSQL must run on this machine): CPU time is what a
loaded shared machine inflates least, so it compares runs that wall time cannot.

The synthetic graph is a long chain of jobs (each reads the previous job's output and a
side table of its own, and writes one dataset): 3 nodes per job, all connected, so a depth-20
query returns the same ~120-node neighbourhood whatever the total size - which is what
shows whether a lineage query's cost grows with the store.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx

from provlink.server.store import open_store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
START = datetime(2024, 1, 1, tzinfo=UTC)
PRODUCER = "https://github.com/provlink/provlink/benchmarks"


def facet(**fields: Any) -> dict[str, Any]:
    return {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json",
        **fields,
    }


def chain_event(
    index: int, run_id: str | None = None, event_type: str = "COMPLETE"
) -> dict[str, Any]:
    """Job ``index`` reads ``ds{index-1}`` and ``side{index}``, writes ``ds{index}``."""
    inputs = [{"namespace": "bench", "name": f"side{index}"}]
    if index > 0:
        inputs.append({"namespace": "bench", "name": f"ds{index - 1}"})
    schema = facet(fields=[{"name": f"c{i}", "type": "BIGINT"} for i in range(5)])
    return {
        "eventType": event_type,
        "eventTime": (START + timedelta(seconds=index)).isoformat(),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {
            "runId": run_id or str(uuid.uuid4()),
            "facets": {"nominalTime": facet(nominalStartTime=START.isoformat())},
        },
        "job": {
            "namespace": "bench",
            "name": f"job{index}",
            "facets": {"sourceCodeLocation": facet(type="git", url="https://example.com/repo")},
        },
        "inputs": inputs,
        "outputs": [{"namespace": "bench", "name": f"ds{index}", "facets": {"schema": schema}}],
    }


class Server:
    """``provlink serve`` in its own process, so client and server do not share a GIL."""

    def __init__(self, url: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = url

    def __enter__(self) -> Self:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "provlink.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--db",
                self.db,
            ],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/api/v1/namespaces")
                return self
            except httpx.ConnectError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("provlink serve did not start") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


DB_PREFIX = ["provlink_bench"]


class Database:
    """A fresh store per measurement: a temp SQLite file or a throw-away PG database."""

    def __init__(self, kind: str, tag: str) -> None:
        self.kind, self.name = kind, f"{DB_PREFIX[0]}_{tag}_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            import tempfile

            self.dir = tempfile.TemporaryDirectory()
            self.url = f"sqlite:///{self.dir.name}/lineage.db"
        else:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"
        self.store = open_store(self.url)  # migrates; also used to read counts
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.store.close()
        if self.kind == "sqlite":
            self.dir.cleanup()
        else:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def single_ingest(kind: str, count: int) -> float:
    with (
        Database(kind, "single") as url,
        Server(url) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        bodies = [json.dumps(chain_event(i)).encode() for i in range(count)]
        headers = {"Content-Type": "application/json"}
        began = time.perf_counter()
        for body in bodies:
            assert client.post("/api/v1/lineage", content=body, headers=headers).status_code == 201
        return count / (time.perf_counter() - began)


def build_and_query(kind: str, nodes: int, batch: int, queries: int) -> dict[str, float]:
    jobs = nodes // 3
    database = Database(kind, str(nodes))
    with (
        database as url,
        Server(url) as server,
        httpx.Client(base_url=server.url, timeout=600) as client,
    ):
        bodies = [
            json.dumps([chain_event(i) for i in range(offset, min(jobs, offset + batch))]).encode()
            for offset in range(0, jobs, batch)
        ]
        headers = {"Content-Type": "application/json"}
        began = time.perf_counter()
        stored = 0
        for body in bodies:
            stored += client.post("/api/v1/lineage/batch", content=body, headers=headers).json()[
                "stored"
            ]
        rate = jobs / (time.perf_counter() - began)
        assert stored == jobs, (stored, jobs)
        counts = database.store.counts()
        total_nodes = counts["jobs"] + counts["datasets"]
        rng = random.Random(7)
        latencies, sizes = [], []
        for _ in range(queries):
            node = f"dataset:bench:ds{rng.randrange(jobs // 4, 3 * jobs // 4)}"
            t0 = time.perf_counter()
            response = client.get("/api/v1/lineage", params={"nodeId": node, "depth": 20})
            latencies.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
            sizes.append(len(response.json()["graph"]))
    latencies.sort()
    return {
        "nodes": total_nodes,
        "batch_rate": rate,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "graph_nodes": statistics.median(sizes),
    }


def batch_ingest(kind: str, events: int, batch: int, rounds: int) -> float:
    """Best-of-``rounds`` rate of ``events`` fresh chain events sent ``batch`` per request."""
    best = 0.0
    for _ in range(rounds):
        with (
            Database(kind, f"b{batch}") as url,
            Server(url) as server,
            httpx.Client(base_url=server.url, timeout=600) as client,
        ):
            bodies = [
                json.dumps([chain_event(i) for i in range(o, min(events, o + batch))]).encode()
                for o in range(0, events, batch)
            ]
            headers = {"Content-Type": "application/json"}
            client.post("/api/v1/lineage/batch", content=b"[]", headers=headers)  # warm up
            began = time.perf_counter()
            stored = sum(
                client.post("/api/v1/lineage/batch", content=b, headers=headers).json()["stored"]
                for b in bodies
            )
            elapsed = time.perf_counter() - began
            assert stored == events, (stored, events)
            best = max(best, events / elapsed)
    return best


def _feed(url: str, bodies: list[bytes]) -> int:
    """POST ``bodies`` in order to the server at ``url``; the events it stored."""
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=600) as client:
        return sum(
            client.post("/api/v1/lineage/batch", content=b, headers=headers).json()["stored"]
            for b in bodies
        )


def _concurrently(feeds: list[tuple[str, list[bytes]]]) -> tuple[float, list[int]]:
    """Run every feed in its own thread at once; (wall seconds, events each stored)."""
    stored = [0] * len(feeds)

    def run(index: int) -> None:
        stored[index] = _feed(*feeds[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(feeds))]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, stored


def serves(events: int, batch: int, servers: int, clients: int) -> float:
    """Aggregate rate of ``clients`` feeds of ``events // clients`` fresh chain events each,
    spread over ``servers`` serve processes on one PostgreSQL database; asserts that every
    event is stored once, also after each feed is redelivered to another server."""
    per = events // clients
    chunks = [
        [
            json.dumps([chain_event(i) for i in range(o, min(start + per, o + batch))]).encode()
            for o in range(start, start + per, batch)
        ]
        for start in range(0, per * clients, per)
    ]
    database = Database("postgresql", f"s{servers}c{clients}")
    with database as url:
        procs = [Server(url) for _ in range(servers)]
        for proc in procs:
            proc.__enter__()
        try:
            for proc in procs:
                _feed(proc.url, [b"[]"])  # warm up
            urls = [procs[c % servers].url for c in range(clients)]
            wall, stored = _concurrently(list(zip(urls, chunks, strict=True)))
            assert stored == [per] * clients, stored
            again = [procs[(c + 1) % servers].url for c in range(clients)]
            _, redelivered = _concurrently(list(zip(again, chunks, strict=True)))
            assert redelivered == [0] * clients, redelivered
        finally:
            for proc in procs:
                proc.__exit__()
        counts = database.store.counts()
        total = per * clients
        assert counts["events"] == counts["runs"] == counts["jobs"] == total, counts
        assert counts["job_versions"] == total and counts["datasets"] == 2 * total, counts
    return total / wall


def serves_table(events: int, batches: list[int], rounds: int) -> None:
    shapes = [(1, 1), (1, 2), (2, 2)]
    print("| batch size | 1 serve, 1 client ev/s | 1 serve, 2 clients | 2 serves, 1 client each"
          " | 2 serves ÷ 1 serve, 1 client | every event stored once |")
    print("|---|---|---|---|---|---|")
    for batch in batches:
        rates = [max(serves(events, batch, s, c) for _ in range(rounds)) for s, c in shapes]
        print(f"| {batch} | " + " | ".join(f"{r:,.0f}" for r in rates)
              + f" | {rates[2] / rates[0]:.2f}x | yes (also after redelivery) |")
        sys.stdout.flush()


def _backend_cpu(database: Database) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``database``."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database.name,))]
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def in_process(kind: str, events: int, batch: int) -> dict[str, float]:
    """``events`` fresh chain events through ``store.ingest_many``, ``batch`` at a time."""
    from provlink.server.validation import validate_event

    database = Database(kind, f"ip{batch}")
    with database:
        store = database.store
        chain = [chain_event(i) for i in range(events)]
        for event in chain:
            validate_event(event)  # as the API does before the store
        store.ingest_many(chain[:1], validated=True)  # the pool's connection, opened
        server = _backend_cpu(database) if kind == "postgresql" else 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        for offset in range(1, events, batch):
            store.ingest_many(chain[offset : offset + batch], validated=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if kind == "postgresql":
            server = _backend_cpu(database) - server
    return {"rate": (events - 1) / wall, "cpu_ms": cpu / events * 1e3,
            "server_ms": server / events * 1e3}


def in_process_table(stores: list[str], batches: list[int], events: int) -> None:
    print("| batch size | store | events/s | this process CPU ms/event"
          " | PostgreSQL backends CPU ms/event |")
    print("|---|---|---|---|---|")
    for batch in batches:
        for kind in stores:
            r = in_process(kind, events, batch)
            server = f"{r['server_ms']:.3f}" if kind == "postgresql" else "-"
            print(f"| {batch} | {kind} | {r['rate']:,.0f} | {r['cpu_ms']:.3f} | {server} |")
            sys.stdout.flush()


def per_batch(stores: list[str], batches: list[int], events: int, rounds: int) -> None:
    print("| batch size | " + " | ".join(f"{k} events/s" for k in stores)
          + " | PostgreSQL ÷ SQLite | PostgreSQL ÷ 2,000/s goal |")
    print("|---" * (len(stores) + 3) + "|")
    for batch in batches:
        rates = {kind: batch_ingest(kind, events if batch > 1 else events // 4, batch, rounds)
                 for kind in stores}
        pg, lite = rates.get("postgresql"), rates.get("sqlite")
        ratio = f"{pg / lite:.2f}x" if pg and lite else "-"
        goal = f"{pg / 2000:.2f}x" if pg else "-"
        cells = " | ".join(f"{rates[k]:,.0f}" for k in stores)
        print(f"| {batch} | {cells} | {ratio} | {goal} |")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--single", type=int, default=2000, help="events for the single-POST rate")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch request")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--per-batch-only", action="store_true",
                        help="only batch ingest per batch size, PostgreSQL vs SQLite")
    parser.add_argument("--in-process", action="store_true",
                        help="store.ingest_many per batch size, with CPU per event")
    parser.add_argument("--serves", action="store_true",
                        help="aggregate ingest of two serves on one PostgreSQL database")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--events", type=int, default=3000, help="events per batch-size run")
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs")
    parser.add_argument("--db-prefix", default="provlink_bench",
                        help="prefix of the throw-away PostgreSQL databases")
    args = parser.parse_args(argv)
    DB_PREFIX[0] = args.db_prefix
    if args.per_batch_only:
        per_batch(args.stores, args.batch_sizes, args.events, args.rounds)
        return 0
    if args.serves:
        serves_table(args.events, args.batch_sizes, args.rounds)
        return 0
    if args.in_process:
        in_process_table(args.stores, args.batch_sizes, args.events)
        return 0
    print("| store | measurement | result |\n|---|---|---|")
    for kind in args.stores:
        rate = single_ingest(kind, args.single)
        print(f"| {kind} | single POST /lineage, {args.single} events | {rate:,.0f} events/s |")
        sys.stdout.flush()
        for size in args.sizes:
            result = build_and_query(kind, size, args.batch, args.queries)
            print(
                f"| {kind} | batch ingest building {result['nodes']:,} nodes ({args.batch}/request)"
                f" | {result['batch_rate']:,.0f} events/s"
                f" ({result['batch_rate'] / 2000:.1f}x the 2,000/s goal) |"
            )
            print(
                f"| {kind} | /lineage depth 20 at {result['nodes']:,} nodes"
                f" ({result['graph_nodes']:.0f} nodes returned) | p50 {result['p50']:.1f} ms,"
                f" p95 {result['p95']:.1f} ms (p50 = {result['p50'] / 50:.2f}x the 50 ms budget) |"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
