"""MLflow on SQLite, real capture points, events delivered by the real spool and sender into
the embedded store, and the governance commands answered by ``provlink serve``'s API."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

import provlink
from provlink import cli
from provlink.capturing.datasets import file_dataset
from provlink.config import ProvlinkConfig
from provlink.delivery.failures import counted_apart
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.delivery.spool import Spool
from provlink.mlflow.context import (
    TAG_JOB_NAME,
    TAG_JOB_NAMESPACE,
    TAG_LEDGER_ENTRY,
    TAG_LINEAGE_URL,
    TAG_MODEL_VERSION,
    TAG_RUN_ID,
)
from provlink.server.store import open_store
from provlink.testing import capture_events
from tests.integration.mlflow_support import PipelineRun, complete_event, run_pipeline
from tests.server.support import LiveServer

MODEL = "iris_sqlite"


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One migrated SQLite tracking store for the session (migrations take seconds)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    uri = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path.parent)  # the default experiment keeps its artifacts in ./mlruns
        mlflow.MlflowClient(tracking_uri=uri).search_experiments()
    return uri


@pytest.fixture
def mlflow_env(tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    return tracking_uri


class Deployed:
    """The pipeline's run, the events it spooled and the backend serving them."""

    def __init__(self, run: PipelineRun, events: list[dict[str, Any]], server: LiveServer,
                 tracking_uri: str, ledger: dict[tuple[str, str], str]) -> None:
        self.run, self.events, self.server, self.tracking_uri = run, events, server, tracking_uri
        self.ledger = ledger  # (runId, eventType) -> ledger entry hash


@pytest.fixture(scope="module")
def deployed(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("provlink-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        mp.setenv("PROVLINK_HOME", str(home))
        for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED"):
            mp.delenv(name, raising=False)
        store = open_store(f"sqlite:///{home / 'lineage.db'}")
        with LiveServer(store) as server:
            runtime = Runtime(ProvlinkConfig.load(lineage_url=server.url))
            old = set_runtime(runtime)
            try:
                run = run_pipeline(home / "work", MODEL)
                assert runtime.flush(60), "the sender did not deliver every event"
            finally:
                runtime.close()
                set_runtime(old)
            assert runtime.capture_failures == 0
            entries = list(Spool(home / "spool.db").entries())
            events = [json.loads(e.payload) for e in entries]
            ledger = {(ev["run"]["runId"], ev["eventType"]): e.entry_hash
                      for ev, e in zip(events, entries, strict=True)}
            yield Deployed(run, events, server, tracking_uri, ledger)
        store.close()


# -- tags ----------------------------------------------------------------------------------
def test_runs_started_inside_a_capture_point_are_tagged(deployed: Deployed) -> None:
    client = mlflow.MlflowClient(tracking_uri=deployed.tracking_uri)
    run = deployed.run
    for run_id in (run.mlflow_run_id, run.nested_run_id, run.thread_run_id):
        tags = client.get_run(run_id).data.tags
        assert tags[TAG_RUN_ID] == run.train_run_id
        assert tags[TAG_JOB_NAMESPACE] == "tests"
        assert tags[TAG_JOB_NAME] == "train"


def test_a_run_outside_any_capture_point_is_not_tagged(mlflow_env: str) -> None:
    with mlflow.start_run() as run:
        pass
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert not [k for k in tags if k.startswith("openlineage.")]


def test_model_version_and_registered_model_carry_the_lineage_tags(deployed: Deployed) -> None:
    client = mlflow.MlflowClient(tracking_uri=deployed.tracking_uri)
    run = deployed.run
    version = client.get_model_version(MODEL, run.version)
    assert version.tags[TAG_RUN_ID] == run.train_run_id
    assert version.tags[TAG_JOB_NAME] == "train"
    assert version.tags[TAG_JOB_NAMESPACE] == "tests"
    assert version.tags[TAG_LINEAGE_URL].startswith(deployed.server.url + "/?nodeId=dataset")
    assert version.tags[TAG_LEDGER_ENTRY] == deployed.ledger[(run.train_run_id, "COMPLETE")]
    # the ledger anchor: the registering event's leaf and a checkpoint covering it
    assert version.tags["provlink.ledger.leaf_hash"] == version.tags[TAG_LEDGER_ENTRY]
    checkpoint = version.tags["provlink.ledger.checkpoint"]
    assert int(checkpoint.split("\n")[1]) > int(version.tags["provlink.ledger.leaf"])
    registered = client.get_registered_model(MODEL).tags
    assert registered[TAG_RUN_ID] == run.train_run_id
    assert registered[TAG_MODEL_VERSION] == run.version


# -- events --------------------------------------------------------------------------------
def test_train_event_lists_its_mlflow_runs_and_outputs_the_model_version(
        deployed: Deployed) -> None:
    run = deployed.run
    event = complete_event(deployed.events, run.train_run_id)
    links = {r["runId"]: r for r in event["run"]["facets"]["mlflow"]["runs"]}
    assert set(links) == {run.mlflow_run_id, run.nested_run_id, run.thread_run_id}
    assert links[run.nested_run_id]["parentRunId"] == run.mlflow_run_id
    assert links[run.thread_run_id]["metrics"] == {"holdout_accuracy": 0.95}
    main = links[run.mlflow_run_id]
    assert main["params"] == {"C": "0.5"}
    assert main["registeredModels"] == [f"{MODEL}/{run.version}"]
    assert main["modelIds"] and main["modelIds"][0].startswith("m-")
    assert main["datasetInputs"][0]["lineage"] == {"namespace": "file",
                                                   "name": str(run.features.resolve())}

    outputs = {(o["namespace"], o["name"]): o for o in event["outputs"]}
    model = outputs[(deployed.tracking_uri, f"models/{MODEL}/{run.version}")]
    facet = model["facets"]["mlflow_model_version"]
    assert facet["runId"] == run.mlflow_run_id
    assert facet["modelId"] == main["modelIds"][0]
    assert facet["name"] == MODEL and facet["version"] == run.version


def test_logged_dataset_joins_the_file_input_it_came_from(deployed: Deployed) -> None:
    event = complete_event(deployed.events, deployed.run.train_run_id)
    names = [(i["namespace"], i["name"]) for i in event["inputs"]]
    assert names == [("file", str(deployed.run.features.resolve()))]
    digest = file_dataset(deployed.run.features, max_bytes=2**30).version
    assert event["inputs"][0]["facets"]["version"]["datasetVersion"] == digest


def test_score_event_has_the_model_loaded_by_alias_as_input(deployed: Deployed) -> None:
    run = deployed.run
    event = complete_event(deployed.events, run.score_run_id)
    inputs = {(i["namespace"], i["name"]): i for i in event["inputs"]}
    model = inputs[(deployed.tracking_uri, f"models/{MODEL}/{run.version}")]
    assert model["facets"]["mlflow_model_version"]["aliases"] == ["champion"]
    assert "mlflow" not in event["run"]["facets"]


def test_a_run_active_before_the_capture_point_is_linked(mlflow_env: str) -> None:
    with capture_events() as events:
        with mlflow.start_run() as outer:
            with provlink.capture("inside-outer-run", capture_files=False):
                mlflow.log_metric("m", 1.0)
    runs = events[-1]["run"]["facets"]["mlflow"]["runs"]
    assert [r["runId"] for r in runs] == [outer.info.run_id]


def test_a_file_store_is_refused_with_the_migration_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    with counted_apart() as in_process, capture_events() as events, \
            caplog.at_level(logging.WARNING):
        with provlink.capture("on-file-store", capture_files=False):
            with mlflow.start_run():
                pass
        failures = (provlink.get_runtime().capture_failures, in_process())
    assert events[-1]["eventType"] == "COMPLETE"
    assert failures == (1, 1)
    assert "is a file store" in caplog.text
    assert "move it to a database with `mlflow migrate-filestore`" in caplog.text


# -- governance through the backend's API --------------------------------------------------
def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


def test_trace_answers_the_upstream_chain(deployed: Deployed, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", deployed.tracking_uri)
    run = deployed.run
    code, out = _cli(capsys, "trace", f"models:/{MODEL}/{run.version}", "--url",
                     deployed.server.url, "--json")
    assert code == 0
    answer = json.loads(out)
    assert [r["job_name"] for r in answer["runs"]] == ["train", "features"]
    train, features = answer["runs"]
    assert train["run_id"] == run.train_run_id and features["run_id"] == run.features_run_id
    assert train["parameters"] == {"C": "0.5"}
    assert features["parameters"] == {"scale": "minmax"}
    assert {m["runId"] for m in train["mlflow_runs"]} == {
        run.mlflow_run_id, run.nested_run_id, run.thread_run_id}
    digests = {d["name"]: d["digest"] for d in answer["datasets"]}
    for path in (run.raw, run.features):
        assert digests[str(path.resolve())] == file_dataset(path, max_bytes=2**30).version
    assert set(digests) == {f"models/{MODEL}/{run.version}", str(run.raw.resolve()),
                            str(run.features.resolve())}
    produced = {d["name"]: d["produced_by"] for d in answer["datasets"]}
    assert produced[str(run.features.resolve())] == run.features_run_id
    assert produced[str(run.raw.resolve())] is None
    assert answer["registry_tags"][TAG_RUN_ID] == run.train_run_id


def test_trace_by_alias_prints_a_tree(deployed: Deployed, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", deployed.tracking_uri)
    code, out = _cli(capsys, "trace", f"models:/{MODEL}@champion", "--url", deployed.server.url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"models:/{MODEL}/{deployed.run.version}")
    train = next(i for i, line in enumerate(lines) if "job tests/train" in line)
    features = next(i for i, line in enumerate(lines) if "job tests/features" in line)
    raw = next(i for i, line in enumerate(lines) if str(deployed.run.raw.resolve()) in line)
    assert train < features < raw
    assert "parameters: C=0.5" in out


def test_models_answers_which_versions_consumed_a_dataset(
        deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    run = deployed.run
    code, out = _cli(capsys, "models", str(run.raw), "--url", deployed.server.url, "--json")
    assert code == 0
    answer = json.loads(out)
    assert [m["model"] for m in answer] == [f"models:/{MODEL}/{run.version}"]
    jobs = [n for n in answer[0]["path"] if n.startswith("job:")]
    assert jobs == ["job:tests:features", "job:tests:train"]
    code, out = _cli(capsys, "models", str(run.predictions), "--url", deployed.server.url,
                     "--json")
    assert code == 0 and json.loads(out) == []


def test_verify_registry_reports_an_edited_tag(deployed: Deployed,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", deployed.tracking_uri)
    args = ("verify", "--registry", "--model", MODEL, "--url", deployed.server.url, "--json")
    code, out = _cli(capsys, *args)
    answer = json.loads(out)
    assert code == 0 and answer["registry"] == {"checked": 1, "anchors": [], "drift": []}
    assert answer["ledger"]["ok"] is True
    client = mlflow.MlflowClient()
    client.set_model_version_tag(MODEL, deployed.run.version, TAG_JOB_NAME, "someone-else")
    try:
        code, out = _cli(capsys, *args)
    finally:
        client.set_model_version_tag(MODEL, deployed.run.version, TAG_JOB_NAME, "train")
    assert code == 1
    (drift,) = json.loads(out)["registry"]["drift"]
    assert drift["problem"] == "tags-changed"
    assert drift["tags"][TAG_JOB_NAME] == "someone-else"
    assert drift["recorded"][TAG_JOB_NAME] == "train"


def test_verify_registry_reports_a_changed_ledger_anchor(deployed: Deployed,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", deployed.tracking_uri)
    args = ("verify", "--registry", "--model", MODEL, "--url", deployed.server.url, "--json")
    client = mlflow.MlflowClient()
    version = deployed.run.version
    original = client.get_model_version(MODEL, version).tags["provlink.ledger.leaf_hash"]
    client.set_model_version_tag(MODEL, version, "provlink.ledger.leaf_hash", "00" * 32)
    try:
        code, out = _cli(capsys, *args)
    finally:
        client.set_model_version_tag(MODEL, version, "provlink.ledger.leaf_hash", original)
    assert code == 1
    (anchor,) = json.loads(out)["registry"]["anchors"]
    assert anchor.startswith(f"models:/{MODEL}/{version}: registry tag changed")
