"""Core benchmarks: the critical-path cost of one capture point, and sender throughput.

Figures are ratios against a baseline measured in the same process (``json.dumps`` of the
same events), plus absolute medians for orientation. Run: ``.venv/bin/python
benchmarks/bench_core.py`` (``--quick`` for a smoke run, ``--no-throughput`` for the critical
path and redaction figures only).
"""

from __future__ import annotations

import argparse
import dataclasses
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
from provlink.events.build import cap_parameters, to_event  # noqa: E402
from provlink.events.model import CaptureRecord, EventType  # noqa: E402
from provlink.events.redact import Redactor  # noqa: E402
from provlink.testing import RecordingEndpoint  # noqa: E402
from tests.unit.test_events import full_record  # noqa: E402

CLOCK: Callable[[], float] = time.perf_counter


def per_call(fn: Callable[[], Any], n: int, repeats: int = 5) -> float:
    """Median seconds per call over ``repeats`` rounds of ``n`` calls (``--cpu-time``: this
    process's CPU seconds, which a saturated shared machine inflates far less than wall
    time; fsync waits are not CPU time, so the append figure is then a lower bound)."""
    rounds = []
    for _ in range(repeats):
        start = CLOCK()
        for _ in range(n):
            fn()
        rounds.append((CLOCK() - start) / n)
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


def whole_capture_point(n: int, home: Path) -> dict[str, float]:
    """What a task pays for one real ``provlink.capture()`` block as the adapters use it:
    START, COMPLETE with the anchor checkpoint before it and the signed checkpoint in its
    commit, parameters, an input and an output with digests (``capture_files`` off: file
    capture is measured by bench_file_capture.py). The calling thread's CPU time
    (``time.thread_time``): the sender and probe threads run beside the task, not in it."""
    import provlink
    from provlink.delivery.runtime import Runtime, set_runtime
    from provlink.governance.keys import LEDGER_KEY, write_key
    from provlink.governance.note import Signer

    own = home / "whole"
    own.mkdir()
    write_key(own / LEDGER_KEY, Signer.generate("bench.provlink"))
    os.environ["OPENLINEAGE_URL"] = "http://127.0.0.1:9"  # nothing listens: the sender waits
    config = ProvlinkConfig.load(home=str(own))
    old = set_runtime(Runtime(config))
    rec = full_record(EventType.COMPLETE)
    start_ev, done_ev = to_event(full_record(EventType.START)), to_event(rec)
    inputs, outputs = rec.inputs, rec.outputs
    try:
        def one() -> None:
            with provlink.capture("bench.task", parameters=rec.parameters,
                                  capture_files=False) as point:
                for dataset in inputs:
                    point.add_input(dataset)
                for dataset in outputs:
                    point.add_output(dataset)

        one()  # first point: imports, probes, schema
        rounds_cpu, rounds_wall = [], []
        for _ in range(5):
            cpu, wall = time.thread_time(), time.perf_counter()
            for _ in range(n):
                one()
            rounds_cpu.append((time.thread_time() - cpu) / n)
            rounds_wall.append((time.perf_counter() - wall) / n)
        base_start = time.thread_time()
        for _ in range(n):
            json.dumps(start_ev)
            json.dumps(done_ev)
        base = (time.thread_time() - base_start) / n
    finally:
        set_runtime(old)
    cpu_ms, wall_ms = statistics.median(rounds_cpu) * 1e3, statistics.median(rounds_wall) * 1e3
    return {"whole_point_cpu_ms": cpu_ms, "whole_point_wall_ms": wall_ms,
            "whole_point_to_json_dumps": cpu_ms / (base * 1e3)}


def typical_record(i: int, event_type: EventType = EventType.COMPLETE) -> CaptureRecord:
    """The realistic record above, with this capture point's own run id and a parameter."""
    rec = full_record(event_type)
    return dataclasses.replace(rec, run_id=f"01932b6a-0000-7000-8000-{i:012d}",
                               parameters={**rec.parameters, "run_date": f"2026-12-01 #{i}"})


def fifty_parameter_record(i: int, event_type: EventType = EventType.COMPLETE) -> CaptureRecord:
    """50 parameters of the kinds tasks pass (numbers, paths, URLs, commands, SQL, nested
    config, one secret), every other value distinct per capture point: no string repeats,
    so nothing is served from the redactor's cache."""
    kinds: list[Callable[[int, int], Any]] = [
        lambda k, i: 0.001 * (k + i),
        lambda k, i: f"s3://airflow-bucket/features/{i}/part-{k:05d}.parquet",
        lambda k, i: f"python train.py --epochs {k} --lr 0.0{i % 9 + 1} --seed {i}",
        lambda k, i: f"SELECT * FROM public.orders WHERE dt = '2026-01-{k % 28 + 1:02d}' "
                     f"AND batch = {i}",
        lambda k, i: {"lr": 0.1 * k, "layers": [64, 32, k], "name": f"model-{i}"},
        lambda k, i: f"postgres://db:5432/warehouse?application_name=task{i}",
        lambda k, i: [k, i, f"tag-{k}-{i}"],
        lambda k, i: f"/opt/airflow/data/{i}/input_{k}.csv",
        lambda k, i: f"retry {k} of task {i} after 2.5 s",
        lambda k, i: i * 1000 + k,
    ]
    params: dict[str, Any] = {f"p{k:02d}": kinds[k % len(kinds)](k, i) for k in range(49)}
    params["db_password"] = "Bench-Secret-2026"  # the same secret each run, as in a real task
    return dataclasses.replace(full_record(event_type),
                               run_id=f"01932b6a-0000-7000-8000-{i:012d}", parameters=params)


def redaction_cost(n: int, home: Path) -> dict[str, float]:
    """Redaction per event against building the same event, on distinct events; and one
    whole capture point (START + COMPLETE: build, redact, cap, durable append) with 50
    parameters."""
    config = ProvlinkConfig.load(home=str(home))
    redact = Redactor(config.secret_key_patterns, config.redact_values)
    spool = Spool(home / "bench-redact-spool.db", sync=config.spool_sync)
    results: dict[str, float] = {}
    total = n * 5  # per_call's 5 rounds: every call gets an event never seen before
    for label, make in (("typical", typical_record), ("params50", fifty_parameter_record)):
        records = [make(i) for i in range(total)]
        events = [to_event(r) for r in records]
        recs, evs = iter(records), iter(events)
        build = per_call(lambda recs=recs: to_event(next(recs)), n)
        red = per_call(lambda evs=evs: redact(next(evs)), n)
        results[f"{label}_build_ms"] = build * 1e3
        results[f"{label}_redact_ms"] = red * 1e3
        results[f"{label}_redact_to_build"] = red / build
    starts = iter([fifty_parameter_record(i, EventType.START) for i in range(total)])
    dones = iter([fifty_parameter_record(i) for i in range(total)])
    limit = config.parameter_max_chars

    def capture_point_50() -> None:
        spool.append(cap_parameters(redact(to_event(next(starts))), limit))
        spool.append(cap_parameters(redact(to_event(next(dones))), limit))

    results["params50_capture_point_ms"] = per_call(capture_point_50, n) * 1e3
    return results


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
    parser.add_argument("--calls", type=int, help="calls per round of the critical-path figures")
    parser.add_argument("--no-throughput", action="store_true",
                        help="only the critical path and redaction figures (about a minute)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="measure process CPU time instead of wall time (loaded machines)")
    args = parser.parse_args()
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    n_calls, n_events = (50, 300) if args.quick else (1000, 5000)
    n_calls = args.calls or n_calls
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["PROVLINK_HOME"] = str(home)
        cp = critical_path(n_calls, home)
        cp.update(whole_capture_point(max(n_calls // 5, 20), home))
        rc = redaction_cost(n_calls, home)
        tp = {} if args.no_throughput else sender_throughput(n_events, home)
    print("critical path of one capture point (START + COMPLETE: build + redact + durable append)")
    print(f"  json.dumps of the same two events : {cp['json_dumps_ms']:.3f} ms")
    print(f"  build + redact                    : {cp['build_redact_ms']:.3f} ms")
    print(f"  durable appends (2)               : {cp['append_ms']:.3f} ms")
    print(f"  total per capture point           : {cp['capture_point_ms']:.3f} ms "
          f"({cp['ratio_to_json_dumps']:.1f}x json.dumps)")
    print("one whole provlink.capture() block (START, COMPLETE, anchor + signed checkpoint)")
    print(f"  the task thread's CPU             : {cp['whole_point_cpu_ms']:.3f} ms "
          f"({cp['whole_point_to_json_dumps']:.1f}x json.dumps of its two events)")
    print(f"  wall time                         : {cp['whole_point_wall_ms']:.3f} ms")
    print("redaction per event (distinct events, so no cached string), against building it")
    for label, name in (("typical", "typical event"), ("params50", "50-parameter event")):
        print(f"  {name:<20}: redact {rc[label + '_redact_ms']:.3f} ms, build "
              f"{rc[label + '_build_ms']:.3f} ms ({rc[label + '_redact_to_build']:.2f}x build)")
    print(f"  capture point with 50 parameters (START + COMPLETE, with appends): "
          f"{rc['params50_capture_point_ms']:.3f} ms")
    if tp:
        print(f"sender throughput ({n_events} spooled events, batch 500)")
    for key, value in tp.items():
        print(f"  {key:<32}: {value:,.0f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "core.json").write_text(json.dumps({**cp, **rc, **tp}, indent=2))


if __name__ == "__main__":
    main()
