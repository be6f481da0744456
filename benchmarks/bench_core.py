"""Core benchmarks: the critical-path cost of one capture point, and sender throughput.

Figures are ratios against a baseline measured in the same process (``json.dumps`` of the
same events), plus absolute medians for orientation. Run: ``.venv/bin/python
benchmarks/bench_core.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provlink.config import ProvlinkConfig  # noqa: E402
from provlink.delivery.sender import Sender  # noqa: E402
from provlink.delivery.spool import Spool  # noqa: E402
from provlink.delivery.targets import StoreTarget, TransportTarget  # noqa: E402
from provlink.events.build import to_event  # noqa: E402
from provlink.events.model import EventType  # noqa: E402
from provlink.events.redact import Redactor  # noqa: E402
from provlink.testing import RecordingEndpoint  # noqa: E402
from tests.unit.test_events import full_record  # noqa: E402


def per_call(fn: Callable[[], Any], n: int, repeats: int = 5) -> float:
    """Median seconds per call over ``repeats`` rounds of ``n`` calls."""
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds)


def critical_path(n: int, home: Path) -> dict[str, float]:
    config = ProvlinkConfig.load(home=str(home))
    redact = Redactor(config.secret_key_patterns, config.redact_values)
    spool = Spool(home / "bench-spool.db", sync=config.spool_sync)
    start_rec, done_rec = full_record(EventType.START), full_record(EventType.COMPLETE)
    start_ev, done_ev = to_event(start_rec), to_event(done_rec)

    def baseline() -> None:
        json.dumps(start_ev)
        json.dumps(done_ev)

    def capture_point() -> None:
        spool.append(redact(to_event(start_rec)))
        spool.append(redact(to_event(done_rec)))

    def build_only() -> None:
        redact(to_event(start_rec))
        redact(to_event(done_rec))

    base = per_call(baseline, n)
    built = per_call(build_only, n)
    full = per_call(capture_point, n)
    return {"json_dumps_ms": base * 1e3, "build_redact_ms": built * 1e3,
            "capture_point_ms": full * 1e3, "append_ms": (full - built) * 1e3,
            "ratio_to_json_dumps": full / base}


def sender_throughput(n: int, home: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    event = to_event(full_record(EventType.COMPLETE))
    targets: dict[str, Callable[[], Any]] = {}
    endpoint = RecordingEndpoint().start()
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    targets["http"] = lambda: TransportTarget(HttpTransport(HttpConfig.from_dict(
        {"url": endpoint.url, "retry": {"total": 0}})))
    serve = start_serve(home)
    targets["provlink_serve_http_batch"] = lambda: TransportTarget(HttpTransport(
        HttpConfig.from_dict({"url": serve[1], "retry": {"total": 0}})))
    targets["embedded_store"] = lambda: StoreTarget(f"sqlite:///{home / 'lineage.db'}")
    for name, factory in targets.items():
        spool = Spool(home / f"throughput-{name}.db")
        for i in range(n):
            event["run"]["runId"] = f"01932b6a-0000-7000-8000-{i:012d}"
            spool.append(event)
        sender = Sender(spool, factory, batch_size=500)
        start = time.perf_counter()
        done = sender.flush(600)
        elapsed = time.perf_counter() - start
        assert done and sender.delivered == n, (name, sender.delivered)
        results[f"{name}_events_per_s"] = n / elapsed
    endpoint.stop()
    serve[0].terminate()
    serve[0].wait()
    return results


def start_serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real ``provlink serve`` process on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "provlink.cli.main", "serve",
                             "--port", str(port), "--db", f"sqlite:///{home / 'serve.db'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("provlink serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_calls, n_events = (50, 300) if args.quick else (1000, 5000)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["PROVLINK_HOME"] = str(home)
        cp = critical_path(n_calls, home)
        tp = sender_throughput(n_events, home)
    print("critical path of one capture point (START + COMPLETE: build + redact + durable append)")
    print(f"  json.dumps of the same two events : {cp['json_dumps_ms']:.3f} ms")
    print(f"  build + redact                    : {cp['build_redact_ms']:.3f} ms")
    print(f"  durable appends (2)               : {cp['append_ms']:.3f} ms")
    print(f"  total per capture point           : {cp['capture_point_ms']:.3f} ms "
          f"({cp['ratio_to_json_dumps']:.1f}x json.dumps)")
    print(f"sender throughput ({n_events} spooled events, batch 500)")
    for key, value in tp.items():
        print(f"  {key:<32}: {value:,.0f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "core.json").write_text(json.dumps({**cp, **tp}, indent=2))


if __name__ == "__main__":
    main()
