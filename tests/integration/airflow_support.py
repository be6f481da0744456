"""Real Airflow for the Airflow integration tests: one migrated metadata DB per session,
DAGs run by ``dag.test()`` in a subprocess (Airflow reads its configuration once per
process), events read back from the spool and the embedded store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "example_pipelines" / "airflow"
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
