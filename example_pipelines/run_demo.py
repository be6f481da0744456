"""The end-to-end demo on the embedded backend (``make demo``): the whole story on one screen.

1. starts ``provlink serve`` on SQLite under ``<dir>/provlink`` (no Docker, no JVM) and
   makes the ledger's signing key;
2. runs the example ML pipeline as an Airflow 3 DAG (``dag.test()``) and, at the same time,
   as Dagster assets (``materialize()``), each with MLflow on SQLite; neither pipeline holds
   provlink code beyond Dagster's one ``lineage_assets``/``with_lineage`` line;
3. retrains on Dagster after one value of the raw CSV was fixed and ``C`` lowered: the
   pipeline's train step moves ``@champion`` to the new version inside its capture point,
   so the promotion is recorded in-process;
4. prints, each under a heading: the lineage page of the champion, ``trace``, ``diff`` of
   the two versions, ``impact`` of the fixed file, ``coverage``, ``history``, an evidence
   bundle written and verified, ``verify``, and ``verify`` of a tampered copy of the ledger,
   each as a few lines (``demo_screen.py``) with the full output in ``<dir>/commands.txt``;
5. stops the server. Orchestrator and MLflow logs go to ``<dir>/demo.log``.

On Dagster, the raw CSV is delivered to the pipeline (the demo writes it, as a data provider
would) and the three assets downstream of it are materialized: so the second run differs
from the first in exactly that file and one parameter.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import demo_screen as screen  # this folder is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BIN = Path(PYTHON).parent
MODEL = "wine_classifier"
AIRFLOW_MODEL = "wine_classifier_airflow"  # its own name: history and coverage go by name
FIXED_COLUMN = "alcohol"  # the raw value the data fix corrects (row 0)

AIRFLOW_RUNNER = textwrap.dedent("""
    import subprocess, sys
    subprocess.run([{airflow!r}, "db", "migrate"], check=True)
    from airflow.models.dagbag import DagBag
    dag = DagBag(dag_folder={dag_file!r}).get_dag("ml_pipeline")
    run = dag.test(run_conf={{"model_name": {model!r}}})
    import provlink
    provlink.flush(60)
    print("Airflow DAG run", run.run_id, "->", run.state)
    sys.exit(0 if str(run.state).endswith("success") else 1)
""")

# The raw CSV is delivered (written, and reported to Dagster as raw_wine's materialization, as
# a data provider's sensor would); the assets downstream of it are materialized; then one
# value is fixed, redelivered, and they run again with C lowered. One JSON line per step.
DAGSTER_RUNNER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {folder!r})
    sys.path.insert(0, {steps!r})
    import pandas as pd
    import pipeline_steps as steps
    from dagster import AssetMaterialization, DagsterInstance, MetadataValue, materialize
    from ml_pipeline import PIPELINE
    from provlink_dagster import lineage_assets
    import provlink

    instance = DagsterInstance.get()
    paths = steps.Paths(root=steps.data_dir())
    assets = lineage_assets(PIPELINE)
    downstream = ["wine_features", "wine_model", "wine_predictions"]

    def deliver():
        instance.report_runless_asset_event(AssetMaterialization(
            "raw_wine", metadata={{"path": MetadataValue.path(str(paths.raw))}}))

    def run(c):
        config = {{"ops": {{"wine_model": {{"config": {{"c": c}}}}}}}}
        result = materialize(assets, selection=downstream, run_config=config,
                             instance=instance)
        provlink.flush(60)
        model = result.asset_materializations_for_node("wine_model")[0].metadata
        print("DEMO", json.dumps({{"run_id": result.run_id, "success": result.success,
                                   "version": model["model_version"].value, "c": c}}),
              flush=True)
        if not result.success:
            sys.exit(1)

    steps.write_raw(paths)
    deliver()
    run({c_before})
    frame = pd.read_csv(paths.raw)
    before = frame.loc[0, {column!r}]
    frame.loc[0, {column!r}] = round(before + 0.5, 2)  # the data fix: one value of one file
    frame.to_csv(paths.raw, index=False)
    deliver()
    print("DEMO", json.dumps({{"fixed": {column!r}, "before": float(before),
                               "after": float(frame.loc[0, {column!r}])}}), flush=True)
    run({c_after})
""")

C_BEFORE, C_AFTER = 1.0, 0.5


class Demo:
    """One demo: its folder, log, server and environment."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.home = root / "provlink"
        self.dagster_data = root / "dagster-data"
        self.tracking_uri = f"sqlite:///{self.dagster_data / 'mlflow.db'}"
        self.log_path = root / "demo.log"
        self.log: IO[str] = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115
        self.commands_path = root / "commands.txt"
        self.commands: IO[str] = open(self.commands_path, "a", encoding="utf-8")  # noqa: SIM115
        # the screen's short forms: the demo's folder, and this checkout (the code's path)
        self.short_paths = {str(root): str(_display(root)), str(REPO) + os.sep: ""}
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AIRFLOW", "OPENLINEAGE", "PROVLINK_", "MLFLOW_",
                                         "DAGSTER"))}
        self.env.update({"PROVLINK_HOME": str(self.home), "PROVLINK_LINEAGE_URL": self.url,
                         "PYTHONWARNINGS": "ignore"})
        self.server: subprocess.Popen[bytes] | None = None

    # -- processes ---------------------------------------------------------------------------
    def popen(self, label: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.log.write(f"\n== {label}\n")
        self.log.flush()
        return subprocess.Popen(cmd, env=env, cwd=self.root, stdout=self.log,
                                stderr=subprocess.STDOUT)

    def start_server(self) -> None:
        self.server = self.popen("provlink serve",
                                 [str(BIN / "provlink"), "serve", "--port", str(self.port)],
                                 self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.server.poll() is not None:
                raise SystemExit(f"provlink serve did not start (see {self.log_path})")
            time.sleep(0.2)
        raise SystemExit(f"provlink serve did not start within 60 s (see {self.log_path})")

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def airflow(self) -> subprocess.Popen[bytes]:
        env = {**self.env, "AIRFLOW_HOME": str(self.root / "airflow"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_pipelines" / "airflow"),
               "DEMO_DATA_DIR": str(self.root / "airflow-data")}
        dag_file = str(REPO / "example_pipelines" / "airflow" / "ml_pipeline_dag.py")
        code = AIRFLOW_RUNNER.format(airflow=str(BIN / "airflow"), dag_file=dag_file,
                                     model=AIRFLOW_MODEL)
        return self.popen("airflow", [PYTHON, "-c", code], env)

    def dagster(self) -> subprocess.Popen[str]:
        home = self.root / "dagster"
        home.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "DAGSTER_HOME": str(home), "DEMO_DATA_DIR": str(self.dagster_data)}
        code = DAGSTER_RUNNER.format(folder=str(REPO / "example_pipelines" / "dagster"),
                                     steps=str(REPO / "example_pipelines"),
                                     column=FIXED_COLUMN, c_before=C_BEFORE, c_after=C_AFTER)
        self.log.write("\n== dagster\n")
        self.log.flush()
        return subprocess.Popen([PYTHON, "-c", code], env=env, cwd=self.root, text=True,
                                stdout=subprocess.PIPE, stderr=self.log)

    # -- the provlink CLI, in this process ------------------------------------------------------
    def cli(self, *argv: str, home: Path | None = None) -> tuple[int, str]:
        """``provlink ARGV`` in-process (one import of MLflow for every command)."""
        from provlink.cli.main import main

        out = io.StringIO()
        os.environ["PROVLINK_HOME"] = str(home or self.home)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                try:
                    code = main(list(argv))
                except SystemExit as exc:  # argparse
                    code = int(exc.code or 0)
        finally:
            os.environ["PROVLINK_HOME"] = str(self.home)
        return code, out.getvalue().rstrip()


def heading(title: str) -> None:
    print(f"== {title}", flush=True)


def progress(line: str) -> None:
    print(f"  {line}", flush=True)


def show(demo: Demo, title: str, *argv: str, expect: int = 0,
         summary: str | None = None, under: bool = False) -> str:
    """Run ``provlink ARGV``: its full output into ``commands.txt``, its summary on screen
    under a heading of its own, or (``under``) on the line naming the command."""
    command = f"provlink {' '.join(_short(a, demo) for a in argv)}"
    code, out = demo.cli(*argv)
    demo.commands.write(f"\n$ {command}   # exit {code}\n{out}\n")
    demo.commands.flush()
    if code != expect:
        print(textwrap.indent(out, "  "))
        raise SystemExit(f"provlink {argv[0]} exited {code} (expected {expect})")
    lines = [screen.shorten(line, demo.short_paths)
             for line in screen.SUMMARIES[summary or argv[0]](out)]
    if under:
        progress(f"{title} ({command}): {lines.pop(0)}")
    else:
        heading(f"{title}:  {command}")
    for line in lines:
        progress(line)
    return out


def _short(arg: str, demo: Demo) -> str:
    return arg.replace(str(demo.root), str(_display(demo.root)))


def _display(path: Path) -> Path:
    with contextlib.suppress(ValueError):
        return path.relative_to(Path.cwd())
    return path


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_pipelines(demo: Demo) -> list[dict[str, Any]]:
    """Airflow and Dagster side by side; the Dagster runs' results."""
    progress("side by side: Airflow 3 dag.test() of example_pipelines/airflow/ml_pipeline_dag.py,"
             " Dagster materialize() of example_pipelines/dagster/ml_pipeline.py ...")
    airflow = demo.airflow()
    dagster = demo.dagster()
    results = []
    assert dagster.stdout is not None
    for line in dagster.stdout:
        if not line.startswith("DEMO "):
            demo.log.write(line)
            continue
        result = json.loads(line.removeprefix("DEMO "))
        results.append(result)
        if "fixed" in result:
            progress(f"data fix: raw/wine.csv row 0 {result['fixed']} "
                     f"{result['before']} → {result['after']}")
        else:
            progress(f"Dagster run {result['run_id'][:8]} (C={result['c']}) -> "
                     f"models:/{MODEL}/{result['version']}, now @champion")
    if dagster.wait() != 0:
        raise SystemExit(f"the Dagster pipeline failed (see {demo.log_path})")
    if airflow.wait() != 0:
        raise SystemExit(f"the Airflow DAG failed (see {demo.log_path})")
    progress(f"Airflow DAG run: success (raw_data → features → train → score) -> "
             f"models:/{AIRFLOW_MODEL}/1")
    return [r for r in results if "version" in r]


def lineage_page(demo: Demo) -> str:
    """The champion's node on the lineage page, from the tag the integration set on it."""
    from mlflow import MlflowClient

    champion = MlflowClient(tracking_uri=demo.tracking_uri).get_model_version_by_alias(
        MODEL, "champion")
    return str(champion.tags["openlineage.lineage_url"])


def tamper(demo: Demo) -> tuple[Path, int]:
    """A copy of the ledger with one event's recorded parameter changed; its seq."""
    copy = demo.root / "tampered"
    copy.mkdir()
    with sqlite3.connect(demo.home / "spool.db") as src, \
            sqlite3.connect(copy / "spool.db") as dst:
        src.backup(dst)
    with sqlite3.connect(copy / "spool.db") as db:
        for seq, payload in db.execute("SELECT seq, payload FROM events WHERE payload "
                                       "LIKE '%\"wine_model\"%' ORDER BY seq DESC"):
            event = json.loads(payload)
            params = (event.get("run", {}).get("facets", {}).get("executionParameters")
                      or {}).get("parameters", [])
            for param in params:
                if param.get("key") == "config.c":
                    param["value"] = str(C_BEFORE)  # pretend the champion had the old C
                    db.execute("UPDATE events SET payload = ? WHERE seq = ?",
                               (json.dumps(event), seq))
                    return copy, int(seq)
    raise SystemExit("no event of wine_model with config.c in the ledger")


def story(demo: Demo, versions: list[dict[str, Any]]) -> None:
    old, new = (f"models:/{MODEL}/{v['version']}" for v in versions)
    raw = str(demo.dagster_data / "raw" / "wine.csv")
    heading(f"lineage page of the champion (live while provlink serve runs): "
            f"{lineage_page(demo)}")
    show(demo, "where the champion came from", "trace", f"models:/{MODEL}@champion")
    show(demo, "what changed between the two versions", "diff", old, new)
    show(demo, "what the fixed file fed", "impact", raw)
    show(demo, "how much is traceable", "coverage")
    show(demo, "who moved @champion", "history", f"models:/{MODEL}")
    bundle = demo.root / "evidence" / f"{MODEL}-{versions[1]['version']}.zip"
    bundle.parent.mkdir()
    show(demo, "an evidence bundle", "evidence", new, "-o", str(bundle))
    pub = str(demo.home / "ledger.pub")
    show(demo, "checked offline", "evidence", "verify", str(bundle), "--public-key", pub,
         summary="evidence verify", under=True)
    show(demo, "the ledger", "verify", "--public-key", pub)
    copy, seq = tamper(demo)
    heading(f"a tampered copy: {_display(copy / 'spool.db')}, events.seq={seq} (wine_model's "
            f"config.c set to {C_BEFORE} with sqlite3):  provlink verify")
    code, out = demo.cli("verify", "--public-key", pub, home=copy)
    demo.commands.write(f"\n$ PROVLINK_HOME={_display(copy)} provlink verify   # exit {code}"
                        f"\n{out}\n")
    if code == 0:
        raise SystemExit("provlink verify did not catch the tampered copy")
    broken = screen.verify(out)[:-1]  # the broken entries; the verdict is the exit code
    progress(f"caught: provlink verify exited {code}: {'; '.join(broken)}")


def exports(demo: Demo) -> str:
    """The settings every command here ran with, as a shell line to paste."""
    return (f"export PROVLINK_HOME={_display(demo.home)} PROVLINK_LINEAGE_URL={demo.url} "
            f"MLFLOW_TRACKING_URI={demo.tracking_uri}")


def try_next(demo: Demo) -> None:
    heading("try next (after the export line at the top)")
    progress(f".venv/bin/provlink serve --port {demo.port} &    # the lineage page above, live")
    progress(f".venv/bin/provlink gate models:/{MODEL}@champion "
             "--policy example_pipelines/promotion_policy.yml    # a promotion gate")
    progress(f".venv/bin/provlink investigate {_display(demo.dagster_data / 'raw' / 'wine.csv')}"
             "    # a root-cause report of the fixed file")


@contextlib.contextmanager
def running(demo: Demo) -> Iterator[None]:
    try:
        yield
    finally:
        demo.stop_server()
        demo.log.close()
        demo.commands.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=REPO / ".demo",
                        help="the demo's folder, emptied first (default: .demo)")
    parser.add_argument("--port", type=int, default=5000,
                        help="provlink serve's port (another free one if taken)")
    args = parser.parse_args()
    root = args.dir.resolve()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    demo = Demo(root, free_port(args.port))
    for key in [k for k in os.environ if k.startswith(("PROVLINK_", "MLFLOW_", "AIRFLOW"))]:
        del os.environ[key]
    settings = {"PROVLINK_HOME": str(demo.home), "PROVLINK_LINEAGE_URL": demo.url,
                "MLFLOW_TRACKING_URI": demo.tracking_uri}
    os.environ.update(settings)
    started = time.monotonic()
    print(f"provlink demo: logs in {_display(demo.log_path)}, every command's full output in "
          f"{_display(demo.commands_path)}; the commands ran with")
    progress(exports(demo))
    with running(demo):
        code, out = demo.cli("keys", "generate")
        if code != 0:
            raise SystemExit(out)
        demo.start_server()
        progress(f"provlink serve on {demo.url} (SQLite {_display(demo.home / 'lineage.db')}; "
                 f"ledger key {_display(demo.home / 'ledger.key')})")
        versions = run_pipelines(demo)
        story(demo, versions)
    try_next(demo)
    print(f"done in {time.monotonic() - started:.0f} s; the server is stopped")


if __name__ == "__main__":
    main()
