"""Added wall time per Airflow task: provlink vs no lineage vs the OpenLineage provider.

Runs a chain of N no-op PythonOperator tasks under ``dag.test()`` in a fresh process per
repeat (isolated AIRFLOW_HOME, one migrated SQLite DB) and times the second ``dag.test()``
of the process: the first pays a one-time start-up (~10 s, varying by seconds) that would
drown the per-task figures.
Modes:

- ``baseline``          provlink disabled (``PROVLINK_DISABLED``), provider disabled
- ``provlink``          provlink, embedded backend (the default: no transport configured)
- ``provlink-down``     provlink, ``OPENLINEAGE_URL`` at a closed port (the provider is
                        enabled by it too, and muted by provlink)
- ``provider-file``     provider only, file transport (provlink disabled)
- ``provider-down``     provider only, ``OPENLINEAGE_URL`` at a closed port; slow (the
                        provider retries every event), so run on ``--down-tasks`` tasks

    .venv/bin/python benchmarks/bench_airflow.py --tasks 50 --repeats 3
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
import textwrap
from pathlib import Path

AIRFLOW = str(Path(sys.executable).with_name("airflow"))

DAG = textwrap.dedent("""
    from datetime import datetime
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, chain

    def noop():
        return None

    with DAG(dag_id="bench_chain", schedule=None, start_date=datetime(2026, 1, 1)):
        chain(*[PythonOperator(task_id=f"t{i:03d}", python_callable=noop)
                for i in range(TASKS)])
""")

RUNNER = textwrap.dedent("""
    import json, sys, time
    from airflow.models.dagbag import DagBag
    dag = DagBag(dag_folder=sys.argv[1]).get_dag("bench_chain")
    dag.test()  # warm-up: the first dag.test() in a process pays ~10 s of one-time start-up
    started = time.perf_counter()
    run = dag.test()
    wall = time.perf_counter() - started
    print("RESULT " + json.dumps({"wall": wall, "state": str(run.state)}))
""")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def mode_env(mode: str, sink: Path) -> dict[str, str]:
    down = f"http://127.0.0.1:{closed_port()}"
    return {
        "baseline": {"PROVLINK_DISABLED": "true"},
        "provlink": {},
        "provlink-down": {"OPENLINEAGE_URL": down},
        "provider-file": {"PROVLINK_DISABLED": "true", "OPENLINEAGE__TRANSPORT__TYPE": "file",
                          "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(sink),
                          "OPENLINEAGE__TRANSPORT__APPEND": "true"},
        "provider-down": {"PROVLINK_DISABLED": "true", "OPENLINEAGE_URL": down},
    }[mode]


def run_once(root: Path, home: Path, dag_dir: Path, mode: str, repeat: int) -> float:
    work = root / f"{mode}-{dag_dir.name}-{repeat}"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_"))}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dag_dir), "HOME": str(work),
                "PROVLINK_HOME": str(work / "provlink")})
    env.update(mode_env(mode, work / "events.jsonl"))
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", RUNNER, str(dag_dir)],
                          env=env, cwd=work, capture_output=True, text=True, timeout=3600,
                          check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{mode} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1][7:])
    assert result["state"] == "success", result
    return float(result["wall"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--down-tasks", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="baseline,provlink,provlink-down,provider-file,"
                                           "provider-down")
    args = parser.parse_args()
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="bench_airflow_") as tmp:
        root = Path(tmp)
        home = root / "airflow_home"
        home.mkdir()
        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True,
                       env={**os.environ, "AIRFLOW_HOME": str(home),
                            "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
        dags: dict[int, Path] = {}
        for n in {args.tasks, args.down_tasks}:
            dags[n] = root / f"dags{n}"
            dags[n].mkdir()
            (dags[n] / "bench.py").write_text(DAG.replace("TASKS", str(n)))
        walls: dict[tuple[str, int], list[float]] = {}
        for repeat in range(args.repeats):  # interleaved, so drift hits every mode alike
            for mode in modes:
                sizes = {args.down_tasks} if mode == "provider-down" else {args.tasks}
                if mode == "baseline":
                    sizes = {args.tasks, args.down_tasks}
                for n in sorted(sizes):
                    walls.setdefault((mode, n), []).append(
                        run_once(root, home, dags[n], mode, repeat))
    print("| mode | tasks | median wall (s) | added per task (ms) | ratio to baseline |")
    print("|---|---|---|---|---|")
    for (mode, n), values in sorted(walls.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base = statistics.median(walls[("baseline", n)])
        median = statistics.median(values)
        print(f"| {mode} | {n} | {median:.2f} | {(median - base) / n * 1000:+.1f} | "
              f"{median / base:.2f} |")


if __name__ == "__main__":
    main()
