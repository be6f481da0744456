"""Delivery throughput: one POST per event (what Marquez accepts), parallel vs serial, vs batch.

The sender drains a spooled backlog of realistic events (the core benchmark's COMPLETE
event; 10 task runs per DAG run, so lanes are DAG runs) into:

- a Marquez-like endpoint: a minimal ASGI app under uvicorn/httptools in its own process,
  answering 201 to ``POST /api/v1/lineage`` and 404 to the batch endpoint, as Marquez does.
  Its CPU time is sampled from ``/proc`` so the figures show it is not the bottleneck;
- the same endpoint taking 2 ms per event (``asyncio.sleep``: no CPU), as a real Marquez
  does its database writes (766 events/s serially was measured against one);
- a real ``provlink serve`` process (SQLite store), through its batch endpoint.

Modes, all in one run: openlineage-python's ``HttpTransport.emit`` one event at a time (what
the sender did before), provlink's pooled poster serially (``delivery_concurrency=1``, the
baseline of the ratios) and in parallel lanes (4, 8 and 16), and the batch endpoint. The modes
take turns over several rounds and each figure is the median round, so a shared machine's
changing load hits every mode alike.

Run: ``.venv/bin/python benchmarks/bench_delivery.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provlink.config import ProvlinkConfig  # noqa: E402
from provlink.delivery.outcome import OK, Outcome  # noqa: E402
from provlink.delivery.sender import Sender  # noqa: E402
from provlink.delivery.spool import Spool  # noqa: E402
from provlink.delivery.targets import Target, TransportTarget  # noqa: E402
from provlink.events.build import to_event  # noqa: E402
from provlink.events.model import EventType  # noqa: E402
from tests.unit.test_events import full_record  # noqa: E402

MARQUEZ_LIKE = """
import asyncio, sys, uvicorn
latency = float(sys.argv[2])
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    ok = scope["method"] == "POST" and scope["path"] == "/api/v1/lineage"
    if ok and latency:
        await asyncio.sleep(latency)  # Marquez's own work per event (its DB writes)
    await send({"type": "http.response.start", "status": 201 if ok else 404,
                "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, http="httptools")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{command} did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class EmitTarget:
    """The previous path: openlineage-python's own ``emit`` per event, serially."""

    kind = "openlineage-emit"

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        for payload in payloads:
            self.transport.emit(json.loads(payload))
        return [OK for _ in payloads]

    def close(self, timeout: float) -> bool:
        return bool(self.transport.close(timeout))


def http_transport(url: str) -> Any:
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    return HttpTransport(HttpConfig.from_dict({"url": url, "retry": {"total": 0}}))


UNEVEN = (2, 40, 6, 20, 60, 4, 10, 18)  # events per DAG run, 20 on average


def spool_backlog(path: Path, n: int, uneven: bool = False) -> Spool:
    """``n`` events, two per task run; a DAG run (a lane) has 20 events, or ``UNEVEN``."""
    spool = Spool(path)
    event = to_event(full_record(EventType.COMPLETE))
    parent = event["run"]["facets"]["parent"]
    dag, left = 0, UNEVEN[0] if uneven else 20
    for i in range(n):
        if left == 0:
            dag += 1
            left = UNEVEN[dag % len(UNEVEN)] if uneven else 20
        left -= 1
        event["run"]["runId"] = f"01932b6a-0000-7000-8000-{i // 2:012d}"
        dag_run = f"01932b6a-0000-7000-9000-{dag:012d}"
        parent["run"]["runId"] = dag_run
        parent.setdefault("root", {"run": {}, "job": parent["job"]})["run"]["runId"] = dag_run
        spool.append(event)
    return spool


def measure(name: str, factory: Callable[[], Target], n: int, home: Path,
            server_pid: int, *, batch_size: int = 500, uneven: bool = False
            ) -> dict[str, float]:
    spool = spool_backlog(home / f"{name}.db", n, uneven)
    sender = Sender(spool, factory, batch_size=batch_size)
    server_cpu, start = cpu_seconds(server_pid), time.perf_counter()
    client_cpu = time.process_time()
    done = sender.close(900)
    elapsed = time.perf_counter() - start
    assert done and sender.delivered == n, (name, sender.delivered, spool.status())
    return {"events_per_s": n / elapsed,
            "server_busy": (cpu_seconds(server_pid) - server_cpu) / elapsed,
            "client_busy": (time.process_time() - client_cpu) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=None, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=ProvlinkConfig().sender_batch_size,
                        help="the sender's batches (default: sender_batch_size's default)")
    parser.add_argument("--uneven", action="store_true",
                        help=f"DAG runs of {UNEVEN} events in turn, not 20 each")
    parser.add_argument("--only", default="", help="comma-separated substrings of mode names")
    args = parser.parse_args()
    n = args.events or (200 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        port = free_port()
        marquez = start([sys.executable, "-c", MARQUEZ_LIKE, str(port), "0"], port)
        slow_port = free_port()
        slow = start([sys.executable, "-c", MARQUEZ_LIKE, str(slow_port), "0.002"], slow_port)
        slow_url = f"http://127.0.0.1:{slow_port}"
        serve_port = free_port()
        serve = start([sys.executable, "-m", "provlink.cli.main", "serve", "--port",
                       str(serve_port), "--db", f"sqlite:///{home / 'serve.db'}"], serve_port)
        url, serve_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{serve_port}"
        try:
            modes: dict[str, tuple[Callable[[], Target], int]] = {
                "per_event_emit_serial_before": (
                    lambda: EmitTarget(http_transport(url)), marquez.pid),
                "per_event_serial": (
                    lambda: TransportTarget(http_transport(url), concurrency=1), marquez.pid),
                "per_event_parallel_4": (
                    lambda: TransportTarget(http_transport(url), concurrency=4), marquez.pid),
                "per_event_parallel_8": (
                    lambda: TransportTarget(http_transport(url), concurrency=8), marquez.pid),
                "per_event_parallel_16": (
                    lambda: TransportTarget(http_transport(url), concurrency=16), marquez.pid),
                "marquez_2ms_per_event_serial": (
                    lambda: TransportTarget(http_transport(slow_url), concurrency=1), slow.pid),
                "marquez_2ms_per_event_parallel_8": (
                    lambda: TransportTarget(http_transport(slow_url), concurrency=8), slow.pid),
                "marquez_2ms_per_event_parallel_16": (
                    lambda: TransportTarget(http_transport(slow_url), concurrency=16), slow.pid),
                "batch_provlink_serve": (
                    lambda: TransportTarget(http_transport(serve_url)), serve.pid),
            }
            wanted = [w for w in args.only.split(",") if w]
            modes = {k: v for k, v in modes.items() if not wanted or any(w in k for w in wanted)}
            for r in range(rounds):
                for name, (factory, pid) in modes.items():
                    runs.setdefault(name, []).append(
                        measure(f"{name}-{r}", factory, n, home, pid,
                                batch_size=args.batch_size, uneven=args.uneven))
        finally:
            for proc in (marquez, slow, serve):
                proc.terminate()
                proc.wait(timeout=30)
    results = {name: median_round(rs) for name, rs in runs.items()}
    for name, figures in results.items():
        each = ", ".join(f"{r['events_per_s']:,.0f}" for r in runs[name])
        print(f"{name:<30} {figures['events_per_s']:8,.0f} ev/s   "
              f"server busy {figures['server_busy']:4.0%}   "
              f"sender process busy {figures['client_busy']:4.0%}   rounds: {each}")
    base_name = "per_event_serial" if "per_event_serial" in results else next(iter(results))
    base = results[base_name]["events_per_s"]
    print(f"ratios to {base_name} ({base:,.0f} ev/s), {n} events x {rounds} rounds each, "
          f"batches of {args.batch_size}, {'uneven' if args.uneven else '20-event'} lanes:")
    for name, figures in results.items():
        print(f"  {name:<30} {figures['events_per_s'] / base:5.2f}x")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "delivery.json").write_text(json.dumps({"events": n, "rounds": rounds,
                                                   "batch_size": args.batch_size,
                                                   "uneven": args.uneven, **results},
                                                  indent=2))


def median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    """The round with the median throughput (its busy figures belong to it)."""
    ordered = sorted(rounds, key=lambda r: r["events_per_s"])
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    main()
