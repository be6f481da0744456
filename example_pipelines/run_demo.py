"""The end-to-end demo on the embedded backend (``make demo``).

1. starts ``provlink serve`` on SQLite under ``.demo/provlink`` (no Docker, no JVM);
2. runs the example ML pipeline as an Airflow 3 DAG (``dag.test()`` on a real metadata DB)
   and as Dagster assets (``materialize()``), each with MLflow on SQLite; neither pipeline
   contains provlink code beyond Dagster's one ``with_lineage`` line;
3. prints ``provlink trace`` for each registered model version and ``provlink models`` for
   the raw data, read back through the backend's Marquez API;
4. keeps serving the lineage page until Ctrl-C (``--no-serve`` stops after printing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
PYTHON = sys.executable
BIN = Path(PYTHON).parent

AIRFLOW_RUNNER = textwrap.dedent("""
    from airflow.models.dagbag import DagBag
    dag = DagBag(dag_folder={dag_file!r}).get_dag("ml_pipeline")
    run = dag.test()
    import provlink
    provlink.flush(60)
    print("Airflow DAG run", run.run_id, "->", run.state)
""")

DAGSTER_RUNNER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {folder!r})
    from dagster import DagsterInstance, materialize
    from ml_pipeline import PIPELINE
    from provlink_dagster import lineage_assets
    result = materialize(lineage_assets(PIPELINE), instance=DagsterInstance.get())
    import provlink
    provlink.flush(60)
    print("Dagster run", result.run_id, "->", "SUCCESS" if result.success else "FAILURE")
""")


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_", "MLFLOW_", "DAGSTER"))}
    env.update({"PROVLINK_HOME": str(DEMO / "provlink"),
                "PROVLINK_LINEAGE_URL": f"http://127.0.0.1:{port}",
                "PYTHONWARNINGS": "ignore"})
    return env


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(cmd: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
    done = subprocess.run(cmd, env=env, cwd=cwd, text=True, capture_output=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    print("\n".join(lines[-40:]))
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"demo step failed: {' '.join(cmd[:3])}")


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([str(BIN / "provlink"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if server.poll() is not None:
            raise SystemExit("provlink serve did not start")
        time.sleep(0.2)
    server.kill()
    raise SystemExit("provlink serve did not start within 60 s")


def airflow_pipeline(env: dict[str, str]) -> None:
    home = DEMO / "airflow"
    env = {**env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_pipelines" / "airflow"),
           "DEMO_DATA_DIR": str(DEMO / "airflow-data")}
    run([str(BIN / "airflow"), "db", "migrate"], env)
    dag_file = str(REPO / "example_pipelines" / "airflow" / "ml_pipeline_dag.py")
    run([PYTHON, "-c", AIRFLOW_RUNNER.format(dag_file=dag_file)], env, cwd=DEMO)


def dagster_pipeline(env: dict[str, str]) -> None:
    home = DEMO / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    env = {**env, "DAGSTER_HOME": str(home), "DEMO_DATA_DIR": str(DEMO / "dagster-data")}
    folder = str(REPO / "example_pipelines" / "dagster")
    run([PYTHON, "-c", DAGSTER_RUNNER.format(folder=folder)], env, cwd=DEMO)


def governance(env: dict[str, str], port: int) -> None:
    url = f"http://127.0.0.1:{port}"
    for name in ("airflow", "dagster"):
        data = DEMO / f"{name}-data"
        tracking = f"sqlite:///{data / 'mlflow.db'}"
        step(f"provlink trace models:/wine_classifier@champion  ({name} pipeline)")
        run([str(BIN / "provlink"), "trace", "models:/wine_classifier@champion", "--url", url,
             "--tracking-uri", tracking], env)
        step(f"provlink models {data / 'raw' / 'wine.csv'}  (what did the raw data feed?)")
        run([str(BIN / "provlink"), "models", str(data / "raw" / "wine.csv"), "--url", url], env)
    step("provlink verify  (the hash-chained ledger of every emitted event)")
    run([str(BIN / "provlink"), "verify"], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--no-serve", action="store_true", help="stop after printing")
    args = parser.parse_args()
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    port = free_port(args.port)
    env = base_env(port)
    step(f"provlink serve on http://127.0.0.1:{port} (SQLite: {DEMO / 'provlink' / 'lineage.db'})")
    server = start_server(port, env)
    try:
        step("Airflow 3: example_pipelines/airflow/ml_pipeline_dag.py under dag.test()")
        airflow_pipeline(env)
        step("Dagster: example_pipelines/dagster/ml_pipeline.py with materialize()")
        dagster_pipeline(env)
        governance(env, port)
        if args.no_serve or not sys.stdin.isatty():
            return
        step(f"Lineage page: http://127.0.0.1:{port}/  (Ctrl-C to stop)")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
