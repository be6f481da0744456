"""Dagster on a fleet: ``dagster-daemon`` dequeues runs (QueuedRunCoordinator) and the
DefaultRunLauncher starts a new run-worker process for each, on the host of its code
server; the multiprocess executor runs each step in a process of its own, two at a time.
Two code servers stand for two hosts, each with its own ``PROVLINK_HOME`` and data folder
(the DefaultRunLauncher sets no environment per run, but a run worker inherits its code
server's, as it would on that server's machine). Everything delivers to a real
``provlink serve`` over HTTP (``OPENLINEAGE_URL``).

One run on each host, both at once, of a three-asset join (two assets written in parallel,
read by a third). Every event must reach the
backend exactly once, with parents and the graph intact, and every host's ledger must
verify. The example pipeline is not used: its MLflow steps take about a minute per run
on this machine; ``test_demo.py`` and ``test_dagster_mlflow.py`` cover MLflow in Dagster.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dagster")

from dagster import DagsterEventType, DagsterInstance

from provlink.delivery.spool import Spool, SpoolStatus
from tests.integration import dagster_fleet_defs as fleet_defs
from tests.integration.airflow_support import free_port, wait_for
from tests.integration.dagster_fleet_defs import EDGES, FILES, JOB
from tests.integration.processes import started
from tests.server.support import api_get, serve_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
DEFS = "tests.integration.dagster_fleet_defs"
BIN = Path(sys.executable).parent
HOSTS = ("host1", "host2")
# The multiprocess executor, two steps at a time: host1 spawns each step's process
# (Dagster's default), host2 forks them from a forkserver that preloaded the code.
EXECUTION: dict[str, dict[str, Any]] = {
    "host1": {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
    "host2": {"execution": {"config": {"multiprocess": {
        "max_concurrent": 2, "start_method": {"forkserver": {}}}}}},
}


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No inherited Dagster, OpenLineage, provlink or MLflow settings."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DAGSTER", "OPENLINEAGE", "PROVLINK_", "MLFLOW_", "DEMO_"))}
    return {**base, "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            **extra}


def _processes(log_dir: Path, *commands: tuple[str, list[str], dict[str, str]]
               ) -> AbstractContextManager[dict[str, int]]:
    """Start each ``(name, argv, env)``; on exit SIGINT (Dagster's graceful stop), then
    SIGKILL after 30 s. Yields their pids by name."""
    return started(log_dir, commands, stop=signal.SIGINT, cwd=ROOT)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[str]:
    """``provlink serve`` on its own home: the backend every host delivers to."""
    with serve_process(tmp_path / "backend", tmp_path / "serve.log") as url:
        yield url


def _spooled(home: Path) -> tuple[SpoolStatus, list[dict[str, Any]]]:
    """A host's spool: its status, and every event the host appended, in order."""
    spool = Spool(home / "spool.db")
    try:
        return spool.status(), [json.loads(e.payload) for e in spool.entries() if e.payload]
    finally:
        spool.close()


def _names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def _versions(datasets: list[dict[str, Any]]) -> dict[tuple[str, str], str | None]:
    return {(d["namespace"], d["name"]): d.get("facets", {}).get("version", {}).get(
        "datasetVersion") for d in datasets}


def _key(event: dict[str, Any]) -> tuple[str, str, str, str]:
    return event["run"]["runId"], event["job"]["name"], event["eventType"], event["eventTime"]


def _instance(tmp_path: Path) -> Path:
    """DAGSTER_HOME: runs queued for the daemon, launched as a process each."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n    max_concurrent_runs: 2\n    dequeue_interval_seconds: 1\n"
        "    dequeue_use_threads: true\n"
        "run_launcher:\n  module: dagster._core.launcher\n  class: DefaultRunLauncher\n")
    return home


def _submit(instance: DagsterInstance, workspace: Path, run_ids: dict[str, str]) -> None:
    """Queue one run of the job on each host's code location, as the UI's launch does."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])) as ctx:
        request = ctx.create_request_context()
        for host, run_id in run_ids.items():
            remote = request.get_code_location(host).get_repository(
                "__repository__").get_full_job(JOB)
            run = instance.create_run_for_job(
                job_def=getattr(fleet_defs, host).resolve_job_def(JOB), run_id=run_id,
                run_config=EXECUTION[host], remote_job_origin=remote.get_remote_origin(),
                job_code_origin=remote.get_python_origin())
            instance.submit_run(run.run_id, request)


def _wait_and_flush(backend: str, run_ids: dict[str, str], homes: dict[str, Path],
                    tmp_path: Path) -> None:
    """Until both runs ended in the backend; then each host sends what it still holds."""
    def finished() -> list[dict[str, Any]] | None:
        runs = (api_get(backend, f"/api/v1/namespaces/default/jobs/{JOB}/runs")
                or {}).get("runs", [])
        done = [r for r in runs if r["state"] in ("COMPLETED", "FAILED", "ABORTED")]
        return done if len(done) == len(HOSTS) else None

    runs = wait_for(finished, 240, "both runs' terminal events in the backend")
    assert {r["id"]: r["state"] for r in runs} == dict.fromkeys(run_ids.values(),
                                                                "COMPLETED")
    for home in homes.values():  # whatever a process could not send before it exited
        subprocess.run([str(BIN / "provlink"), "spool", "flush", "--timeout", "60"],
                       env=_env(tmp_path, PROVLINK_HOME=str(home)), check=True,
                       capture_output=True, timeout=120)


def test_a_run_on_each_of_two_hosts(tmp_path: Path, backend: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(_instance(tmp_path)))
    homes = {host: tmp_path / "hosts" / host for host in HOSTS}
    ports = {host: free_port() for host in HOSTS}
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("load_from:\n" + "".join(
        f"  - grpc_server:\n      host: 127.0.0.1\n      port: {ports[h]}\n"
        f"      location_name: {h}\n" for h in HOSTS))
    servers = [(h, [str(BIN / "dagster"), "api", "grpc", "-m", DEFS, "-a", h, "-d", str(ROOT),
                    "-h", "127.0.0.1", "-p", str(ports[h])],
                _env(tmp_path, PROVLINK_HOME=str(homes[h]), OPENLINEAGE_URL=backend,
                     FLEET_DATA_DIR=str(tmp_path / "data" / h))) for h in HOSTS]
    daemon = ("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
              _env(tmp_path, PROVLINK_HOME=str(tmp_path / "hosts" / "daemon"),
                   OPENLINEAGE_URL=backend))
    run_ids = {h: str(uuid.uuid4()) for h in HOSTS}
    # The instance's SQLite storage exists before the processes race to create it.
    with DagsterInstance.get() as instance, _processes(tmp_path, *servers) as pids:
        for port in ports.values():
            wait_for(partial(_reachable, port), 120, f"the code server on port {port}")
        with _processes(tmp_path, daemon) as daemon_pid:
            _submit(instance, workspace, run_ids)
            _wait_and_flush(backend, run_ids, homes, tmp_path)
        _assert_processes(instance, run_ids, {**pids, **daemon_pid})

    received = Counter(_key(e) for e in api_get(backend, "/api/v1/events/lineage",
                                             limit=1000)["events"])
    spooled_anywhere: Counter[tuple[str, str, str, str]] = Counter()
    for host, home in homes.items():
        status, spooled = _spooled(home)
        assert (status.pending, status.dead) == (0, 0), (host, status)
        verify = subprocess.run([str(BIN / "provlink"), "verify"],
                                env=_env(tmp_path, PROVLINK_HOME=str(home)),
                                capture_output=True, text=True, timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        spooled_anywhere.update(_key(e) for e in spooled)
        _assert_run(host, run_ids[host], spooled, backend, (tmp_path / "data" / host).resolve())
    assert not (tmp_path / "hosts" / "daemon" / "spool.db").exists()  # the daemon sent nothing
    # Every event each host spooled reached the backend once, and nothing else did.
    assert received == spooled_anywhere, received - spooled_anywhere
    assert set(received.values()) == {1}, received


def _assert_run(host: str, run_id: str, spooled: list[dict[str, Any]], backend: str,
                data: Path) -> None:
    """One host's run: its own events only, parents pointing at the run, and the graph
    joined: what each step wrote is what the next read."""
    steps = [f"{host}__{a}" for a in FILES]
    kinds = Counter((e["job"]["name"], e["eventType"]) for e in spooled)
    assert kinds == Counter({(j, k): 1 for j in (JOB, *steps)
                             for k in ("START", "COMPLETE")}), (host, kinds)
    for event in spooled:
        if event["job"]["name"] == JOB:
            assert event["run"]["runId"] == run_id
        else:
            parent = event["run"]["facets"]["parent"]
            assert (parent["job"]["name"], parent["run"]["runId"]) == (JOB, run_id)
    done = {e["job"]["name"].removeprefix(f"{host}__"): e for e in spooled
            if e["eventType"] == "COMPLETE"}
    for asset_name, file_name in FILES.items():
        assert _names(done[asset_name]["outputs"]) == {("file", str(data / file_name))}
    for upstream, downstream in EDGES:  # the same dataset, at the same content version
        wrote, read = _versions(done[upstream]["outputs"]), _versions(done[downstream]["inputs"])
        assert None not in wrote.values() and wrote.items() <= read.items(), (wrote, read)

    graph = api_get(backend, "/api/v1/lineage", depth=20,
                 nodeId=f"dataset:file:{data / FILES['merged']}")
    nodes = {n["id"] for n in graph["graph"]}
    assert {f"job:default:{s}" for s in steps} <= nodes, nodes
    assert {f"dataset:file:{data / f}" for f in FILES.values()} <= nodes, nodes


def _assert_processes(instance: DagsterInstance, run_ids: dict[str, str],
                      pids: dict[str, int]) -> None:
    """From Dagster's own event log: each run had a run worker of its own (not a code
    server, not the daemon), and each step a process of its own."""
    seen: set[int | None] = set(pids.values())
    for run_id in run_ids.values():
        records = [r.dagster_event for r in instance.all_logs(run_id)
                   if r.dagster_event is not None]
        worker = {e.pid for e in records if e.event_type == DagsterEventType.RUN_START}
        steps = {e.step_key: e.pid for e in records
                 if e.event_type == DagsterEventType.STEP_START}
        assert len(steps) == len(FILES) and len(worker) == 1, (worker, steps)
        assert None not in worker | set(steps.values())
        assert len(worker | set(steps.values()) | seen) == len(seen) + 1 + len(FILES)
        seen |= worker | set(steps.values())
