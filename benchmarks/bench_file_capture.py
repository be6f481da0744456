"""Cost of provlink's file-I/O audit hook on open()-heavy and import-heavy code.

An audit hook cannot be removed, so the three states run in this order in one process:
no hook (baseline), hook installed but no recorder active, a recorder active. Each figure
is the fastest of several runs (robust to other load on a shared machine), reported as a
ratio to the baseline.

    .venv/bin/python benchmarks/bench_file_capture.py
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from provlink.capturing.file_capture import FileCapture

STDLIB = ("textwrap", "difflib", "fractions", "statistics", "pprint", "calendar", "shlex")


def open_loop(path: Path, n: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            with open(path, "rb") as f:
                f.read()

    return run


def write_loop(directory: Path, n: int) -> Callable[[], None]:
    def run() -> None:
        for i in range(n):
            with open(directory / f"w{i % 100}.txt", "w") as f:
                f.write("x")

    return run


def import_loop(rounds: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(rounds):
            for name in STDLIB:
                sys.modules.pop(name, None)
                importlib.import_module(name)

    return run


def audit_loop(path: Path, n: int) -> Callable[[], None]:
    """The hook's own cost per event, without the file system's noise."""
    flags = os.O_RDONLY | os.O_CLOEXEC

    def run() -> None:
        for _ in range(n):
            sys.audit("open", str(path), "r", flags)

    return run


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opens", type=int, default=20_000)
    parser.add_argument("--writes", type=int, default=2_000)
    parser.add_argument("--import-rounds", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp, "small.txt")
        small.write_bytes(b"x" * 100)
        workloads = {
            f"{args.opens:,} sys.audit('open', ...)": audit_loop(small, args.opens),
            f"{args.opens:,} open/read/close": open_loop(small, args.opens),
            f"{args.writes:,} open/write/close (100 files)": write_loop(Path(tmp), args.writes),
            f"import {len(STDLIB)} stdlib modules x{args.import_rounds}": import_loop(
                args.import_rounds
            ),
        }
        best = {name: [float("inf")] * 3 for name in workloads}
        for fn in workloads.values():
            fn()  # warm caches
        for _ in range(args.repeats):
            for name, fn in workloads.items():
                best[name][0] = min(best[name][0], timed(fn))
        idle = FileCapture()
        idle.start()  # installs the hook for good ...
        idle.stop()  # ... and leaves it inactive
        for _ in range(args.repeats):  # idle and active interleaved: same background load
            for name, fn in workloads.items():
                best[name][1] = min(best[name][1], timed(fn))
                capture = FileCapture()
                capture.start()
                best[name][2] = min(best[name][2], timed(fn))
                capture.stop()

    print(f"Python {sys.version.split()[0]}, best of {args.repeats}")
    print("| workload | baseline | hook, inactive | recorder active |")
    print("|---|---|---|---|")
    for name, (base, inactive, active) in best.items():
        n = _count(name, args)
        print(
            f"| {name} | {base * 1000:.1f} ms (1.00) | {inactive / base:.2f} "
            f"({(inactive - base) / n * 1e9:+.0f} ns/op) | {active / base:.2f} "
            f"({(active - base) / n * 1e9:+.0f} ns/op) |"
        )


def _count(name: str, args: argparse.Namespace) -> int:
    if name.startswith("import"):
        return args.import_rounds * len(STDLIB)
    return args.writes if "write" in name else args.opens


if __name__ == "__main__":
    main()
