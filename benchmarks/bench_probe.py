"""A new task process's first environment probe (package digest and platform string), warm
cache under home, as each Airflow task process pays it; median over fresh interpreters.

    .venv/bin/python benchmarks/bench_probe.py [--processes 21] [--pythonpath OTHER/src]

``--pythonpath`` runs the same probe on another checkout's ``src`` in the same run (an A/B
against the code before a change).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import sys, time
from pathlib import Path
from provlink.capturing.environment import runtime_environment
wall, cpu = time.perf_counter(), time.process_time()
runtime_environment("airflow", "3", Path(sys.argv[1]))
print((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
"""


def medians(pythonpath: str | None, processes: int) -> tuple[float, float]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as home:
        runs = [subprocess.run([sys.executable, "-c", CHILD, home], env=env, check=True,
                               capture_output=True, text=True).stdout.split()
                for _ in range(processes + 1)][1:]  # the first one writes the cache
    return (statistics.median(float(r[0]) for r in runs),
            statistics.median(float(r[1]) for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--processes", type=int, default=21)
    parser.add_argument("--pythonpath", help="another checkout's src, measured alongside")
    args = parser.parse_args()
    sides = [("this checkout", None)] + ([("other", args.pythonpath)] if args.pythonpath else [])
    print("| code | first probe wall (p50) | CPU (p50) |\n|---|---|---|")
    for name, path in sides * 2:  # alternated twice: drift hits both alike
        wall, cpu = medians(path, args.processes)
        print(f"| {name} | {wall:.2f} ms | {cpu:.2f} ms |", flush=True)


if __name__ == "__main__":
    main()
