"""The Airflow integration on real Airflow 3 under ``dag.test()``: the example ML DAG's graph
in the embedded backend, a team's file DAG, failed and skipped tasks, secrets,
provider-compatible run ids, the single-writer rule when the OpenLineage provider is enabled
too, and state changes made afterwards through the API server."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conformance import require_spec, validate_event
from tests.integration.airflow_support import (
    DAGS,
    REPO,
    TEST_DAGS,
    AirflowEnv,
    airflow_processes,
    dag_test,
    every_spooled_byte,
    free_port,
    migrate,
    parameters,
    spooled_events,
    stored_events,
    task_events,
    wait_for,
)
from tests.integration.golden import assert_matches_golden
from tests.lineage_graph import edges

pytestmark = pytest.mark.timeout(900)

CONF_SECRET = "conf-tok-8f2b61d0c3"
PARAM_SECRET = "param-pw-5e1a9c7744"
CONN_SECRET = "conn-pw-3d9b0e6f21"
VAR_SECRET = "var-sec-71c4aa2e58"
SECRETS = (CONF_SECRET, PARAM_SECRET, CONN_SECRET, VAR_SECRET)


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    return migrate(tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture(scope="module")
def ml_run(airflow_env: AirflowEnv, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("ml")
    result = dag_test(airflow_env, work, DAGS / "ml_pipeline_dag.py", "ml_pipeline",
                      conf={"C": 0.5, "api_token": CONF_SECRET})
    return work, result, spooled_events(work / "provlink")


def test_ml_dag_graph_in_backend(ml_run) -> None:
    work, result, events = ml_run
    assert result["state"] == "success" and result["delivered"]
    demo = (work / "demo").resolve()
    train = task_events(events, "ml_pipeline.train")["COMPLETE"]
    [model] = [o for o in train["outputs"] if o["name"].startswith("models/wine_classifier/")]
    raw, feats = demo / "raw" / "wine.csv", demo / "features" / "wine_features.parquet"
    preds = demo / "predictions" / "wine_predictions.parquet"
    job = "job:default:ml_pipeline.{}".format
    expected = {
        (job("raw_data"), f"dataset:file:{raw}"),
        (f"dataset:file:{raw}", job("features")),
        (job("features"), f"dataset:file:{feats}"),
        (f"dataset:file:{feats}", job("train")),
        (job("train"), f"dataset:{model['namespace']}:{model['name']}"),
        (f"dataset:{model['namespace']}:{model['name']}", job("score")),
        (job("score"), f"dataset:file:{preds}"),
    }
    from provlink.server.store import open_store

    store = open_store(f"sqlite:///{work / 'provlink' / 'lineage.db'}")
    try:
        graph = store.lineage(f"dataset:file:{preds}", 20)
    finally:
        store.close()
    assert expected <= edges(graph), sorted(expected - edges(graph))


def test_ml_dag_events_parents_parameters_and_mlflow(ml_run) -> None:
    work, _, events = ml_run
    dag = task_events(events, "ml_pipeline")
    assert set(dag) == {"START", "COMPLETE"}  # START although on_dag_run_running never fires
    assert events[0]["job"]["name"] == "ml_pipeline" and events[0]["eventType"] == "START"
    for name in ("raw_data", "features", "train", "score"):
        by_type = task_events(events, f"ml_pipeline.{name}")
        assert set(by_type) == {"START", "COMPLETE"}
        parent = by_type["COMPLETE"]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == dag["START"]["run"]["runId"]
        assert (parent["job"]["namespace"], parent["job"]["name"]) == ("default", "ml_pipeline")
        params = parameters(by_type["START"])
        assert params["params.C"] == "0.5"  # conf overrides the DAG's params
        assert params["conf.api_token"] == "***"
    features_params = parameters(task_events(events, "ml_pipeline.features")["START"])
    assert features_params["op_args.0"] == str((work / "demo/raw/wine.csv").resolve())
    train = task_events(events, "ml_pipeline.train")["COMPLETE"]
    [mlflow_run] = train["run"]["facets"]["mlflow"]["runs"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'demo' / 'mlflow.db'}")
    tags = client.get_run(mlflow_run["runId"]).data.tags
    assert tags["openlineage.run_id"] == train["run"]["runId"]
    assert tags["openlineage.job.name"] == "ml_pipeline.train"
    assert tags["openlineage.job.namespace"] == "default"
    version = client.get_model_version("wine_classifier", "1")
    assert version.run_id == mlflow_run["runId"]
    assert any(v == train["run"]["runId"] for v in version.tags.values()), version.tags


def test_every_event_names_who_ran_it(ml_run) -> None:
    """``provlink_actor``: dag.test()'s triggering user and run type, the task's owner (also
    in the standard ``ownership`` job facet) and the worker's OS user."""
    import os
    import pwd

    _, _, events = ml_run
    me = pwd.getpwuid(os.geteuid()).pw_name
    airflow = [e for e in events
               if (e["job"]["facets"].get("jobType") or {}).get("integration") == "AIRFLOW"]
    assert len(airflow) >= 10  # the DAG and its 4 tasks, START and COMPLETE
    for event in airflow:
        actor = event["run"]["facets"]["provlink_actor"]
        # the DAG's COMPLETE sees the ORM DagRun, which says dag.test() triggered it; a
        # task (and the DAG START the first task emits under dag.test()) sees the task
        # SDK's DagRun, which has only the run type
        dag_end = (event["job"]["name"], event["eventType"]) == ("ml_pipeline", "COMPLETE")
        by = "test" if dag_end else "manual"
        assert (actor["user"], actor["runType"], actor["triggeredBy"], actor["osUser"]) == (
            "dag_test", "manual", by, me), event["job"]["name"]
        assert actor["sources"]["user"] == "airflow:dag_run.triggering_user_name"
    train = task_events(events, "ml_pipeline.train")["COMPLETE"]
    assert train["run"]["facets"]["provlink_actor"]["owner"] == "ml-team"
    assert [o["name"] for o in train["job"]["facets"]["ownership"]["owners"]] == ["ml-team"]
    validate_event(train)


def test_task_arguments_are_one_parameter_per_key(airflow_env: AirflowEnv,
                                                  tmp_path: Path) -> None:
    """``op_kwargs``/``op_args``/``params``/``conf`` are split into dotted keys, as Dagster
    config is, and still redacted by key."""
    result = dag_test(airflow_env, tmp_path, TEST_DAGS / "params_dag.py", "params",
                      conf={"run": {"label": "nightly", "api_token": CONF_SECRET}},
                      AIRFLOW__CORE__DAGS_FOLDER=str(TEST_DAGS))
    assert result["state"] == "success"
    events = spooled_events(tmp_path / "provlink")
    params = parameters(task_events(events, "params.fit")["START"])
    assert params["op_kwargs.C"] == "0.5"
    assert params["op_kwargs.model.depth"] == "3"
    assert json.loads(params["op_kwargs.model.layers"]) == [8, 4]
    assert params["op_kwargs.model.db_password"] == "***"
    assert (params["op_args.0"], params["op_args.1"]) == ("features.csv", "42")
    assert (params["params.window.days"], params["params.window.unit"]) == ("7", "d")
    assert params["conf.run.label"] == "nightly"
    assert params["conf.run.api_token"] == "***"
    assert not [k for k in params if k in ("template.op_kwargs", "template.op_args",
                                           "op_kwargs", "params.window", "conf.run")]
    spool = every_spooled_byte(tmp_path / "provlink")
    assert b"op-kwargs-pw-123" not in spool and CONF_SECRET.encode() not in spool


def test_ml_dag_events_match_golden(ml_run) -> None:
    """Every event the backend received from the example DAG's ``dag.test()``, normalised,
    against ``golden/airflow_ml_pipeline.json`` (see ``golden.py``; update: ``make goldens``)."""
    work = ml_run[0]
    events = stored_events(work / "provlink")
    assert len(events) == len(ml_run[2])  # the backend holds what was spooled
    assert_matches_golden("airflow_ml_pipeline", events,
                          {str(work): "<work>", str(REPO): "<repo>", sys.prefix: "<venv>"})


def test_ml_dag_events_conform_to_openlineage(ml_run) -> None:
    require_spec()
    for event in ml_run[2]:
        validate_event(event)


SECRET_DAG = textwrap.dedent('''
    from datetime import datetime
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG, task

    with DAG(dag_id="secret_paths", schedule=None, start_date=datetime(2026, 1, 1),
             params={"db_password": "PARAM_SECRET", "region": "eu"}):
        BashOperator(task_id="use_conn", bash_command=(
            "test -n '{{ conn.warehouse.password }}{{ var.value.service_secret }}'"))

        @task
        def leak():
            from airflow.sdk import Connection
            raise RuntimeError("login refused for " + Connection.get("warehouse").password)

        leak()
''').replace("PARAM_SECRET", PARAM_SECRET)


def test_secrets_never_reach_the_spool(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    dag_file = tmp_path / "secret_dag.py"
    dag_file.write_text(SECRET_DAG)
    result = dag_test(airflow_env, tmp_path, dag_file, "secret_paths",
                      conf={"api_token": CONF_SECRET}, AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path),
                      AIRFLOW_CONN_WAREHOUSE=f"postgres://etl:{CONN_SECRET}@db:5432/dw",
                      AIRFLOW_VAR_SERVICE_SECRET=VAR_SECRET)
    assert result["state"] == "failed"
    events = spooled_events(tmp_path / "provlink")
    fail = task_events(events, "secret_paths.leak")["FAIL"]
    assert "login refused for ***" in fail["run"]["facets"]["errorMessage"]["message"]
    command = parameters(task_events(events, "secret_paths.use_conn")["START"])
    assert command["template.bash_command"] == "test -n '******'"
    assert command["params.db_password"] == "***" and command["params.region"] == "eu"
    assert task_events(events, "secret_paths")["FAIL"]
    spool = every_spooled_byte(tmp_path / "provlink")
    assert spool and not [s for s in SECRETS if s.encode() in spool]


def test_team_dag_gets_files_with_digests(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    result = dag_test(airflow_env, tmp_path, DAGS / "team_files_dag.py", "team_files")
    assert result["state"] == "success"
    events = spooled_events(tmp_path / "provlink")
    team = (tmp_path / "team").resolve()

    def files(job: str, side: str) -> dict[str, dict]:
        event = task_events(events, f"team_files.{job}")["COMPLETE"]
        return {d["name"]: d for d in event[side] if d["namespace"] == "file"}

    assert set(files("export_orders", "outputs")) == {str(team / "orders.csv")}
    assert set(files("sort_orders", "inputs")) == {str(team / "orders.csv")}
    assert set(files("sort_orders", "outputs")) == {str(team / "orders_sorted.csv")}
    assert set(files("summarise", "inputs")) == {str(team / "orders_sorted.csv")}
    assert set(files("summarise", "outputs")) == {str(team / "summary.csv"),
                                                  str(team / "orders.parquet")}
    import hashlib

    for job, side in [("export_orders", "outputs"), ("sort_orders", "inputs"),
                      ("sort_orders", "outputs"), ("summarise", "outputs")]:
        for name, dataset in files(job, side).items():
            digest = dataset["facets"]["version"]["datasetVersion"]
            if side == "outputs" and name.endswith(".csv"):  # unchanged since written
                assert digest == "sha256:" + hashlib.sha256(Path(name).read_bytes()).hexdigest()
            assert digest.startswith("sha256:")
    parquet = files("summarise", "outputs")[str(team / "orders.parquet")]
    assert [f["name"] for f in parquet["facets"]["schema"]["fields"]] == ["order_id", "amount"]


def test_run_ids_equal_the_providers(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    """Recompute every id with the provider's own adapter from Airflow's metadata DB."""
    dag_test(airflow_env, tmp_path, DAGS / "team_files_dag.py", "team_files")
    events = spooled_events(tmp_path / "provlink")
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter
    from pendulum import parse

    run_id = task_events(events, "team_files")["START"]["run"]["facets"]["tags"]
    airflow_run = {t["key"]: t["value"] for t in run_id["tags"]}["airflow.run_id"]
    with sqlite3.connect(airflow_env.home / "airflow.db") as db:
        logical, run_after, clear = db.execute(
            "SELECT logical_date, run_after, clear_number FROM dag_run "
            "WHERE dag_id='team_files' AND run_id=?", (airflow_run,)).fetchone()
        tis = db.execute("SELECT task_id, try_number, map_index FROM task_instance "
                         "WHERE dag_id='team_files' AND run_id=?", (airflow_run,)).fetchall()
    date = parse(logical or run_after)
    assert task_events(events, "team_files")["START"]["run"]["runId"] == \
        OpenLineageAdapter.build_dag_run_id("team_files", date, clear)
    assert len(tis) == 3
    for task_id, try_number, map_index in tis:
        expected = OpenLineageAdapter.build_task_instance_run_id(
            dag_id="team_files", task_id=task_id, try_number=try_number, logical_date=date,
            map_index=map_index)
        assert task_events(events, f"team_files.{task_id}")["COMPLETE"]["run"]["runId"] == \
            expected


def test_provider_enabled_one_writer_per_run(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    """With an OpenLineage transport configured, the provider activates; the backend must
    still get exactly one START and one terminal event per run, all from provlink."""
    sink = tmp_path / "ol_events"
    result = dag_test(airflow_env, tmp_path, DAGS / "team_files_dag.py", "team_files",
                      OPENLINEAGE__TRANSPORT__TYPE="file",
                      OPENLINEAGE__TRANSPORT__LOG_FILE_PATH=str(sink),
                      OPENLINEAGE__TRANSPORT__APPEND="true")
    assert result["state"] == "success" and result["delivered"]
    delivered = [json.loads(line) for line in sink.read_text().splitlines() if line.strip()]
    jobs = {"team_files", *(f"team_files.{t}" for t in
                            ("export_orders", "sort_orders", "summarise"))}
    assert {e["job"]["name"] for e in delivered} == jobs
    pairs = [(e["run"]["runId"], e["eventType"]) for e in delivered]
    assert len(pairs) == len(set(pairs)) == 2 * len(jobs)
    assert all("provlink" in e["producer"] for e in delivered), {e["producer"] for e in delivered}
    sort = next(e for e in delivered
                if e["job"]["name"] == "team_files.sort_orders" and e["eventType"] == "COMPLETE")
    outputs = [d["name"] for d in sort["outputs"]]
    assert str((tmp_path / "team" / "orders_sorted.csv").resolve()) in outputs
    assert outputs == [str((tmp_path / "team" / "orders_sorted.csv").resolve())]  # not the sink


@pytest.fixture(scope="module")
def states_run(airflow_env: AirflowEnv, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("states")
    result = dag_test(airflow_env, work, TEST_DAGS / "task_states_dag.py", "task_states",
                      AIRFLOW__CORE__DAGS_FOLDER=str(TEST_DAGS))
    return work, result, spooled_events(work / "provlink")


def _tags(event: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in event["run"]["facets"]["tags"]["tags"]}


def test_failed_and_skipped_tasks(states_run) -> None:
    _, result, events = states_run
    assert result["state"] == "failed"
    dag = task_events(events, "task_states")
    assert set(dag) == {"START", "FAIL"}
    boom = task_events(events, "task_states.boom")
    assert set(boom) == {"START", "FAIL"}
    error = boom["FAIL"]["run"]["facets"]["errorMessage"]
    assert error["message"] == "ValueError: boom: the input had 0 rows"
    assert error["programmingLanguage"] == "python"
    assert 'raise ValueError("boom: the input had 0 rows")' in error["stackTrace"]
    assert boom["FAIL"]["run"]["runId"] == boom["START"]["run"]["runId"]
    skipped = task_events(events, "task_states.skip_me")
    assert set(skipped) == {"START", "COMPLETE"}
    assert _tags(skipped["COMPLETE"])["airflow.state"] == "skipped"
    assert "errorMessage" not in skipped["COMPLETE"]["run"]["facets"]
    for task_id in ("ok", "gate"):  # a ShortCircuitOperator that skips downstream succeeds
        by_type = task_events(events, f"task_states.{task_id}")
        assert set(by_type) == {"START", "COMPLETE"}
        assert "airflow.state" not in _tags(by_type["COMPLETE"])
    for event in events:
        if event["job"]["name"] != "task_states":
            assert event["run"]["facets"]["parent"]["run"]["runId"] == dag["START"]["run"]["runId"]



def test_bad_provlink_setting_never_fails_a_task(airflow_env: AirflowEnv,
                                                 tmp_path: Path) -> None:
    """A mistyped ``[provlink]`` key is logged once as a warning naming it and ignored: the
    task and the DAG run succeed, with their lineage."""
    result = dag_test(airflow_env, tmp_path, TEST_DAGS / "hello_dag.py", "hello",
                      AIRFLOW__CORE__DAGS_FOLDER=str(TEST_DAGS),
                      AIRFLOW__PROVLINK__CAPTURE_FIELS="true")
    assert result["state"] == "success"
    log = (tmp_path / "hello.log").read_text()
    assert log.count("ignoring setting 'capture_fiels' in the host's [provlink] settings") == 1
    assert "on_task_instance_running failed" not in log
    events = spooled_events(tmp_path / "provlink")
    assert {e["eventType"] for e in events} >= {"START", "COMPLETE"}

API_PASSWORD = "api-pw-provlink-test"


@pytest.mark.slow
def test_state_changes_through_the_api_server(airflow_env: AirflowEnv, states_run,
                                              tmp_path: Path) -> None:
    """Mark tasks and the DAG run through the REST API of a running API server (no scheduler):
    its own listener emits the terminal events, for the run ids the tasks ran under, and its
    own sender delivers them to the embedded backend."""
    import httpx
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter
    from pendulum import parse

    work, result, events = states_run
    ran = {e["job"]["name"]: e["run"]["runId"] for e in events if e["eventType"] == "START"}
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": API_PASSWORD}))
    port = free_port()
    env = airflow_env.env(
        work, AIRFLOW__CORE__DAGS_FOLDER=str(TEST_DAGS),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW__API_AUTH__JWT_SECRET="provlink-api-state-test-" + "0" * 48)
    base = f"http://127.0.0.1:{port}"
    runs = f"{base}/api/v2/dags/task_states/dagRuns/{result['run_id']}"
    with airflow_processes(env, tmp_path, ["api-server", "--host", "127.0.0.1", "--port",
                                           str(port), "--apps", "core", "--workers", "1"]):
        token = wait_for(lambda: _token(base), 120, "the API server")
        auth = {"Authorization": f"Bearer {token}"}
        for task_id, state in [("ok", "failed"), ("boom", "success"), ("gate", "skipped"),
                               ("after_gate", "success")]:
            response = httpx.patch(f"{runs}/taskInstances/{task_id}", headers=auth,
                                   json={"new_state": state}, timeout=60)
            assert response.status_code == 200, response.text
        response = httpx.patch(runs, headers=auth, json={"state": "success"}, timeout=60)
        assert response.status_code == 200, response.text

        before = {(e["run"]["runId"], e["eventType"], e["eventTime"]) for e in events}

        def changed() -> list[dict]:
            return [e for e in stored_events(work / "provlink")
                    if (e["run"]["runId"], e["eventType"], e["eventTime"]) not in before]

        wait_for(lambda: len(changed()) >= 5, 60, "the API server's events in the backend")
    new = changed()  # the server has stopped: nothing more can arrive
    assert len(new) == 5, new
    by_job = {e["job"]["name"]: e for e in new}
    assert {(e["job"]["namespace"], e["eventType"]) for e in new} == {
        ("default", "FAIL"), ("default", "COMPLETE")}
    ok = by_job["task_states.ok"]
    assert ok["eventType"] == "FAIL" and ok["run"]["runId"] == ran["task_states.ok"]
    assert "manually set to `failed`" in ok["run"]["facets"]["errorMessage"]["message"]
    boom = by_job["task_states.boom"]
    assert boom["eventType"] == "COMPLETE" and boom["run"]["runId"] == ran["task_states.boom"]
    gate = by_job["task_states.gate"]
    assert gate["run"]["runId"] == ran["task_states.gate"]
    assert _tags(gate)["airflow.state"] == "skipped"
    dag = by_job["task_states"]
    assert dag["eventType"] == "COMPLETE" and dag["run"]["runId"] == ran["task_states"]
    for event in new:
        if event is not dag:
            assert event["run"]["facets"]["parent"]["run"]["runId"] == ran["task_states"]
    # after_gate never ran: its id is the provider's for the try number it has in the DB.
    with sqlite3.connect(airflow_env.home / "airflow.db") as db:
        logical, run_after = db.execute(
            "SELECT logical_date, run_after FROM dag_run WHERE dag_id='task_states' AND "
            "run_id=?", (result["run_id"],)).fetchone()
        try_number, map_index = db.execute(
            "SELECT try_number, map_index FROM task_instance WHERE dag_id='task_states' AND "
            "run_id=? AND task_id='after_gate'", (result["run_id"],)).fetchone()
    assert by_job["task_states.after_gate"]["run"]["runId"] == \
        OpenLineageAdapter.build_task_instance_run_id(
            dag_id="task_states", task_id="after_gate", try_number=try_number,
            logical_date=parse(logical or run_after), map_index=map_index)


def _token(base: str) -> str | None:
    """A JWT from the simple auth manager, or None while the API server is starting."""
    import httpx

    try:
        response = httpx.post(f"{base}/auth/token", timeout=10,
                              json={"username": "admin", "password": API_PASSWORD})
    except httpx.TransportError:
        return None
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])
