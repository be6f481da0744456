"""Real Airflow for the Airflow integration tests: one migrated metadata DB per session,
DAGs run by ``dag.test()`` in a subprocess (Airflow reads its configuration once per
process), Airflow components started as processes, events read back from the spool and the
embedded store."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.integration.processes import started

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "example_pipelines" / "airflow"
TEST_DAGS = Path(__file__).resolve().parent / "airflow_dags"  # tests-only DAGs
PYTHON = sys.executable
AIRFLOW = str(Path(PYTHON).with_name("airflow"))


@dataclass(frozen=True, slots=True)
class AirflowEnv:
    home: Path

    def env(self, workdir: Path, **extra: str) -> dict[str, str]:
        """A clean environment: no inherited Airflow, OpenLineage or provlink settings."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_", "MLFLOW_"))}
        base.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "HOME": str(workdir),  # no ~/.openlineage/openlineage.yml from the developer
            "PROVLINK_HOME": str(workdir / "provlink"),
            "DEMO_DATA_DIR": str(workdir / "demo"),
            "TEAM_DATA_DIR": str(workdir / "team"),
        })
        base.update(extra)
        return base


def migrate(home: Path) -> AirflowEnv:
    home.mkdir(parents=True, exist_ok=True)
    af = AirflowEnv(home)
    subprocess.run([AIRFLOW, "db", "migrate"], env=af.env(home), check=True,
                   capture_output=True, timeout=300)
    return af


_RUNNER = textwrap.dedent("""
    import json, sys
    from airflow.models.dagbag import DagBag
    spec = json.loads(sys.argv[1])
    if spec.get("setup"):
        exec(spec["setup"])
    dag = DagBag(dag_folder=spec["dag_file"]).get_dag(spec["dag_id"])
    run = dag.test(run_conf=spec.get("conf"))
    import provlink
    delivered = provlink.flush(60)
    print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id,
                                  "delivered": delivered}))
""")


def dag_test(af: AirflowEnv, workdir: Path, dag_file: Path, dag_id: str, *,
             conf: dict[str, Any] | None = None, setup: str = "",
             **env: str) -> dict[str, Any]:
    """Run ``dag.test()`` in a fresh process; returns state, Airflow run id, delivered flag."""
    spec = json.dumps({"dag_file": str(dag_file), "dag_id": dag_id, "conf": conf,
                       "setup": setup})
    proc = subprocess.run([PYTHON, "-W", "ignore", "-c", _RUNNER, spec], cwd=workdir,
                          env=af.env(workdir, **env), capture_output=True, text=True,
                          timeout=420, check=False)
    (workdir / f"{dag_id}.log").write_text(proc.stdout + proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def spooled_events(provlink_home: Path) -> list[dict[str, Any]]:
    """Every event appended to the spool, in order."""
    with sqlite3.connect(provlink_home / "spool.db") as db:
        return [json.loads(p) for (p,) in db.execute("SELECT payload FROM events ORDER BY seq")]


def every_spooled_byte(provlink_home: Path) -> bytes:
    """The spool and everything else provlink wrote (WAL included), for secret greps."""
    return b"".join(p.read_bytes() for p in sorted(provlink_home.rglob("*")) if p.is_file())


def task_events(events: list[dict[str, Any]], job: str) -> dict[str, dict[str, Any]]:
    """The events of one job, by event type (asserting there is one of each)."""
    mine = [e for e in events if e["job"]["name"] == job]
    by_type = {e["eventType"]: e for e in mine}
    assert len(by_type) == len(mine), f"duplicate event types for {job}: {mine}"
    return by_type


def parameters(event: dict[str, Any]) -> dict[str, str]:
    facet = event["run"]["facets"].get("executionParameters") or {"parameters": []}
    return {p["key"]: p["value"] for p in facet["parameters"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def airflow_processes(env: dict[str, str], log_dir: Path,
                      *commands: list[str] | tuple[list[str], dict[str, str]]
                      ) -> Iterator[None]:
    """Start ``airflow <command>`` for each command (logs in ``log_dir``), stop them on exit
    with SIGTERM, then SIGKILL after 30 s: only the processes started here. A command given
    as ``(argv, overlay)`` runs with ``overlay`` over ``env`` (a worker "on its own host")."""
    named = []
    for index, spec in enumerate(commands):
        command, overlay = spec if isinstance(spec, tuple) else (spec, {})
        name = f"{command[0]}-{index}" if overlay else command[0]
        named.append((name, [AIRFLOW, *command], {**env, **overlay}))
    with started(log_dir, named):
        yield


T = TypeVar("T")


def api_server_ready(port: int, timeout: float = 180.0) -> None:
    """Wait until the api-server answers: a task started before it listens fails with
    'connection refused' on its first Execution API call (seen on a loaded machine)."""
    wait_for(lambda: api_server_answers(port), timeout, f"the api-server on port {port}")


def api_server_answers(port: int) -> bool:
    """Whether Airflow's api-server on ``port`` answers its health check."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health",
                                    timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str,
             interval: float = 1.0) -> T:
    """Poll until ``predicate`` returns something truthy; a bound, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def stored_events(provlink_home: Path) -> list[dict[str, Any]]:
    """Every event the embedded backend under ``provlink_home`` holds (none before the
    first delivery created it)."""
    from provlink.server.store import open_store

    if not (provlink_home / "lineage.db").exists():
        return []
    store = open_store(f"sqlite:///{provlink_home / 'lineage.db'}")
    try:
        return list(store.iter_events())
    finally:
        store.close()
