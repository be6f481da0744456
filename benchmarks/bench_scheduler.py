"""Added wall per Airflow task under a real scheduler: provlink vs no lineage vs the provider.

``bench_airflow.py`` times ``dag.test()``, where every task runs in one process; here every
task is its own process, as in a deployment, so imports, probes and the first capture are
paid per task. A real deployment per executor (api-server, dag-processor, scheduler, and a
Celery worker for CeleryExecutor) on a fresh PostgreSQL metadata database runs a chain of N
no-op PythonOperator tasks with one execution slot (LocalExecutor parallelism 1, Celery
worker concurrency 1), so task processes never overlap.

Figures, per mode, medians over every task of every round:

- **task process wall**: fork (the supervisor's log line just before it) to exit (stamped by
  the DAG file's atexit hook, which runs after provlink's own close-at-exit): start-up, DAG
  parse, the task, every listener (the COMPLETE one runs after the state is reported) and
  the drain at exit. Not the supervisor's ``Workload finished`` duration: it notices the exit
  up to ``min_heartbeat_interval`` (5 s) late, at random, which drowns any per-task figure;
- **task process CPU**: ``os.times()`` of that process at exit (its threads and waited
  children, e.g. ``git``): what it costs on a loaded machine, where the wall is noisy;
- **TI start->end**: ``task_instance.end_date - start_date`` (misses the COMPLETE listener);
- **DAG run / task**: ``dag_run`` wall divided by N (adds the scheduling gaps).

The mode is an environment, so the scheduler (and the Celery worker) restart for every
(round, mode), modes in round-robin so drift hits each alike; the api-server and the
dag-processor stay up with lineage off. Modes are ``bench_airflow.py``'s plus
``provlink-http``: provlink delivering over HTTP to a real ``provlink serve``
(``provlink`` alone uses the embedded backend, the default). ``provider-down`` retries
every event for seconds, so it runs a chain of ``--down-tasks`` tasks and is opt-in.

    .venv/bin/python benchmarks/bench_scheduler.py            # 19 min at load 5-8, 2 cores
    .venv/bin/python benchmarks/bench_scheduler.py --quick    # LocalExecutor only, ~5 min
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench_airflow import mode_env  # the same modes as the dag.test() benchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.airflow_support import api_server_answers  # noqa: E402

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PROVLINK = str(Path(sys.executable).with_name("provlink"))
PG = "postgres@127.0.0.1:5432"
REDIS = ("127.0.0.1", 6379)
GOAL_MS = 20.0
LINEAGE_OFF = {"PROVLINK_DISABLED": "true", "AIRFLOW__OPENLINEAGE__DISABLED": "true"}

DAG = textwrap.dedent("""
    import atexit, os, sys, time
    from datetime import datetime
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, chain

    # The task process's exit, stamped by the last atexit hook to run: registered at parse,
    # before provlink's runtime (built on first use) registers its close, so after it.
    _runtime = sys.modules.get("provlink.delivery.runtime")
    EARLY = bool(_runtime and _runtime._runtime is not None)  # must stay False
    TI_ID = None

    def _stamp():
        if TI_ID:
            with open(os.path.join(os.environ["BENCH_STAMPS"], TI_ID), "w") as f:
                cpu = sum(os.times()[:4])  # since the fork: its threads and waited children
                f.write(f"{time.time()!r} {cpu!r} {EARLY}")

    atexit.register(_stamp)

    def noop(ti):
        global TI_ID
        TI_ID = str(ti.id)

    for dag_id, tasks in (("bench_chain", TASKS), ("bench_down", DOWN)):
        with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1)) as dag:
            chain(*[PythonOperator(task_id=f"t{i:03d}", python_callable=noop)
                    for i in range(tasks)])
        globals()[dag_id] = dag
""")
# The supervisor logs this just before it forks the task process, and "Workload finished"
# when it notices the exit: up to 5 s late (it polls with min_heartbeat_interval once the
# child's sockets closed), so the exit itself comes from the stamp above.
FORK = re.compile(r"(\d{4}-\d\d-\d\dT[\d:.]+)Z \[info\s*\] Secrets backends loaded")
WORKLOAD = re.compile(r"Workload finished.*?workload_id=([0-9a-f-]+)")


def process_walls(log: str, stamps: Path) -> list[tuple[float, float]]:
    """Per task: fork (the supervisor's line just before it) to exit (the task's stamp),
    and the CPU the task process used."""
    walls, forked = [], None
    for line in log.splitlines():
        if m := FORK.search(line):
            forked = datetime.fromisoformat(m[1]).replace(tzinfo=UTC).timestamp()
        elif (m := WORKLOAD.search(line)) and forked is not None:
            exited, cpu, early = (stamps / m[1]).read_text().split()
            if early != "False":
                raise SystemExit("provlink's runtime existed before the DAG parse: the exit "
                                 "stamp would run before its close")
            walls.append((float(exited) - forked, float(cpu)))
            forked = None
    return walls


@dataclass
class Samples:
    process: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    ti: list[float] = field(default_factory=list)
    run_per_task: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(address: tuple[str, int]) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(address) == 0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)
    return value


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def started(argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[Path]:
    """One process of our own, stopped with SIGTERM (SIGKILL after 30 s) on exit."""
    log: IO[str] = log_path.open("w")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"provlink_bench_{uuid.uuid4().hex[:8]}"
    admin = f"postgresql://{PG}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def provlink_serve(root: Path) -> Iterator[str]:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PROVLINK_HOME": str(root / "serve-home")}
    with started([PROVLINK, "serve", "--port", str(port)], env, root / "serve.log"):
        wait_for(lambda: reachable(("127.0.0.1", port)), 120, "provlink serve")
        yield f"http://127.0.0.1:{port}"


def base_env(root: Path, dags: Path, db: str, executor: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_", "MLFLOW_"))}
    conn = f"{PG}/{db}"
    env.update({
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "HOME": str(root),  # no ~/.openlineage/openlineage.yml from the developer
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{conn}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg_async://{conn}",
        "AIRFLOW__CORE__EXECUTOR": executor,
        "BENCH_STAMPS": str(root / "stamps"),
        "AIRFLOW__CORE__PARALLELISM": "1",  # one slot: task processes never overlap
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": "provlink-bench-jwt-secret-0123456789abcdef",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    })
    if executor == "CeleryExecutor":
        redis_db = 5 + uuid.uuid4().int % 10  # a db of its own on the machine's Redis
        env.update({
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg://{conn}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        })
    return env


def env_stamps(env: dict[str, str]) -> Path:
    return Path(env["BENCH_STAMPS"])


def timings(db: str, run_id: str) -> tuple[list[float], float]:
    """Per-task ``end_date - start_date`` and the DAG run's wall, from the metadata DB."""
    import psycopg

    with psycopg.connect(f"postgresql://{PG}/{db}") as conn:
        tis = conn.execute("SELECT state, EXTRACT(EPOCH FROM end_date - start_date) "
                           "FROM task_instance WHERE run_id = %s", (run_id,)).fetchall()
        (wall,) = conn.execute("SELECT EXTRACT(EPOCH FROM end_date - start_date) "
                               "FROM dag_run WHERE run_id = %s", (run_id,)).fetchone() or (0,)
    bad = [state for state, _ in tis if state != "success"]
    if bad:
        raise SystemExit(f"{run_id}: task states {bad}")
    return [float(d) for _, d in tis], float(wall)


def run_state(db: str, run_id: str) -> str | None:
    import psycopg

    with psycopg.connect(f"postgresql://{PG}/{db}") as conn:
        row = conn.execute("SELECT state FROM dag_run WHERE run_id = %s", (run_id,)).fetchone()
    return row[0] if row and row[0] in ("success", "failed") else None


def one_run(root: Path, env: dict[str, str], db: str, executor: str, mode: str,
            rnd: int, dag_id: str, tasks: int, backend: str
            ) -> tuple[list[tuple[float, float]], list[float], float]:
    """Trigger first (the CLI's start-up must not overlap the tasks), then start the
    scheduler (and the Celery worker, ready before the scheduler) in the mode's env."""
    work = root / f"{executor}-{mode}-{rnd}"
    work.mkdir()
    menv = {**env, "PROVLINK_HOME": str(root / f"provlink-{executor}-{mode}")}
    menv.update(mode_env(mode, work / "events.jsonl") if mode != "provlink-http"
                else {"OPENLINEAGE_URL": backend})
    run_id = f"{mode}-{rnd}" if rnd >= 0 else "warm-up"
    subprocess.run([AIRFLOW, "dags", "trigger", dag_id, "--run-id", run_id], env=env,
                   check=True, capture_output=True, timeout=180)
    with ExitStack() as stack:
        logs = []
        if executor == "CeleryExecutor":
            worker = stack.enter_context(started(
                [AIRFLOW, "celery", "worker", "--concurrency", "1"], menv, work / "worker.log"))
            wait_for(lambda: "ready." in worker.read_text(), 180, "the Celery worker")
            logs.append(worker)
        logs.append(stack.enter_context(started([AIRFLOW, "scheduler"], menv,
                                                work / "scheduler.log")))
        state = wait_for(lambda: run_state(db, run_id), 900, f"{executor} {run_id}")
    if state != "success":
        raise SystemExit(f"{executor} {run_id}: {state} (logs in {work})")
    process = [w for log in logs for w in process_walls(log.read_text(), env_stamps(env))]
    if len(process) != tasks:
        raise SystemExit(f"{executor} {run_id}: {len(process)} task processes timed "
                         f"for {tasks} tasks (logs in {work})")
    ti, wall = timings(db, run_id)
    return process, ti, wall


def bench_executor(executor: str, args: argparse.Namespace, modes: list[str],
                   backend: str, root: Path) -> dict[str, Samples]:
    results: dict[str, Samples] = {mode: Samples() for mode in modes}
    home = root / executor
    dags = home / "dags"
    dags.mkdir(parents=True)
    (home / "stamps").mkdir()
    (dags / "bench.py").write_text(DAG.replace("TASKS", str(args.tasks))
                                   .replace("DOWN", str(args.down_tasks)))
    port = free_port()
    with postgres_database() as db:
        env = base_env(home, dags, db, executor, port)
        off = {**env, **LINEAGE_OFF}
        subprocess.run([AIRFLOW, "db", "migrate"], env=off, check=True, capture_output=True,
                       timeout=600)
        subprocess.run([AIRFLOW, "dags", "reserialize"], env=off, check=True,
                       capture_output=True, timeout=300)
        with started([AIRFLOW, "api-server", "--port", str(port)], off, home / "api.log"), \
                started([AIRFLOW, "dag-processor"], off, home / "dag-processor.log"):
            wait_for(lambda: api_server_answers(port), 180, "the api-server")
            # Not counted: the first DAG run after start-up is seconds slower per task
            # (first requests to the api-server, bytecode compiled once).
            one_run(home, env, db, executor, "baseline", -1, "bench_chain", args.tasks,
                    backend)
            for rnd in range(args.rounds):  # round-robin: drift hits every mode alike
                for mode in modes:
                    dag_id, n = (("bench_down", args.down_tasks) if mode == "provider-down"
                                 else ("bench_chain", args.tasks))
                    process, ti, wall = one_run(home, env, db, executor, mode, rnd, dag_id,
                                                n, backend)
                    s = results[mode]
                    s.process += [w for w, _ in process]
                    s.cpu += [c for _, c in process]
                    s.ti += ti
                    s.run_per_task.append(wall / n)
                    print(f"  {executor} round {rnd} {mode}: task processes "
                          f"{' '.join(f'{w * 1000:.0f}' for w, _ in process)} ms (CPU "
                          f"{' '.join(f'{c * 1000:.0f}' for _, c in process)} ms), DAG run "
                          f"{wall:.1f} s, load {load()}", flush=True)
    return results


def report(executor: str, results: dict[str, Samples]) -> None:
    names = ("process", "cpu", "ti", "run_per_task")
    base = {name: statistics.median(getattr(results["baseline"], name)) for name in names}
    print(f"\n{executor}: medians of {len(results['baseline'].process)} tasks per mode "
          f"({len(results['baseline'].run_per_task)} DAG runs); added = vs baseline")
    print("| mode | task process wall | added | ratio | task process CPU | added | ratio | "
          "TI start->end added | DAG run / task added | goal (wall and CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, s in results.items():
        med = {name: statistics.median(getattr(s, name)) for name in names}
        add = {name: (med[name] - base[name]) * 1000 for name in names}
        goal = ""
        if mode.startswith("provlink"):
            goal = ("met" if max(add["process"], add["cpu"]) <= GOAL_MS else "missed") + \
                f" (≤ {GOAL_MS:.0f} ms)"
        print(f"| {mode} | {med['process'] * 1000:.0f} ms | {add['process']:+.0f} ms | "
              f"{med['process'] / base['process']:.2f} | {med['cpu'] * 1000:.0f} ms | "
              f"{add['cpu']:+.0f} ms | {med['cpu'] / base['cpu']:.2f} | {add['ti']:+.0f} ms | "
              f"{add['run_per_task']:+.0f} ms | {goal} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--down-tasks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--executors", default="LocalExecutor,CeleryExecutor")
    parser.add_argument("--modes", default="baseline,provlink,provlink-http,provlink-down,"
                                           "provider-file")
    parser.add_argument("--keep", action="store_true", help="keep the logs (printed path)")
    parser.add_argument("--quick", action="store_true",
                        help="LocalExecutor, baseline/provlink/provlink-down, 5 tasks, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds, args.executors = 5, 1, "LocalExecutor"
        args.modes = "baseline,provlink,provlink-down"
    modes = args.modes.split(",")
    if "baseline" not in modes:
        modes.insert(0, "baseline")
    executors = args.executors.split(",")
    if "CeleryExecutor" in executors and not reachable(REDIS):
        raise SystemExit("CeleryExecutor needs Redis on 127.0.0.1:6379")
    print(f"load average at start: {load()}  ({os.cpu_count()} cores)", flush=True)
    root = Path(tempfile.mkdtemp(prefix="bench_scheduler_"))  # kept if a run fails: logs
    with provlink_serve(root) as backend:
        results = {ex: bench_executor(ex, args, modes, backend, root) for ex in executors}
    if args.keep:
        print(f"logs kept in {root}")
    else:
        shutil.rmtree(root)
    for executor, res in results.items():
        report(executor, res)
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
