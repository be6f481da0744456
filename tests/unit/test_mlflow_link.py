"""Unit tests of the MLflow link: naming, the run context provider, registry drift rules."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import unquote

import pytest

import provlink
from provlink.cli.governance import render_trace
from provlink.errors import ConfigError, LineageQueryError
from provlink.events.model import JobRef, ParentRef
from provlink.governance.trace import (
    Trace,
    TracedDataset,
    TracedRun,
    dataset_identity,
    parse_model_uri,
    verify_registry,
)
from provlink.mlflow.context import (
    TAG_JOB_NAME,
    TAG_JOB_NAMESPACE,
    TAG_PARENT_JOB_NAME,
    TAG_PARENT_RUN_ID,
    TAG_RUN_ID,
    ProvlinkRunContextProvider,
)
from provlink.server.nodeid import parse_node_id
from provlink.testing import capture_events


@pytest.fixture(autouse=True)
def _home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize(("uri", "namespace"), [
    ("sqlite:////tmp/x/mlflow.db", "sqlite:////tmp/x/mlflow.db"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("http://alice:s3cret@mlflow.internal:5000", "http://mlflow.internal:5000"),
    ("https://mlflow.example.com/?token=abc", "https://mlflow.example.com/"),
    ("https://mlflow.example.com?token=abc#x", "https://mlflow.example.com"),
    ("postgresql+psycopg://ml:pw@db:5432/mlflow?sslmode=require", "postgresql+psycopg://db:5432/mlflow"),
    ("databricks", "databricks"),
])
def test_tracking_namespace_drops_credentials(uri: str, namespace: str) -> None:
    from provlink.tracking_uri import tracking_namespace

    assert tracking_namespace(uri) == namespace


def test_a_relative_sqlite_uri_names_the_store_it_opens(tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same relative URI from two folders is two databases, hence two namespaces; each
    is the absolute URI of the file SQLAlchemy opens."""
    from provlink.tracking_uri import tracking_namespace

    names = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        names.append(tracking_namespace("sqlite:///mlflow.db?timeout=5"))
        assert tracking_namespace("sqlite+pysqlite:///sub/m.db") == (
            f"sqlite+pysqlite:///{tmp_path / folder / 'sub' / 'm.db'}")
    assert names == [f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}",
                     f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}"]
    assert tracking_namespace(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}") == names[0]


@pytest.mark.parametrize("uri", ["/tmp/mlruns", "./mlruns", "file:///tmp/mlruns"])
def test_file_stores_are_refused_with_the_migration_command(uri: str) -> None:
    from provlink.mlflow.registry import check_tracking_store

    with pytest.raises(ConfigError, match="mlflow migrate-filestore"):
        check_tracking_store(uri)


@pytest.mark.parametrize("uri", ["sqlite:///m.db", "http://h:5000", "postgresql://h/db",
                                 "databricks"])
def test_database_and_server_stores_are_accepted(uri: str) -> None:
    from provlink.mlflow.registry import check_tracking_store

    check_tracking_store(uri)


def test_lineage_link_names_the_model_dataset_node() -> None:
    from provlink.mlflow.registry import lineage_link, model_dataset_name

    link = lineage_link("http://127.0.0.1:5000/", "sqlite:////tmp/m.db",
                        model_dataset_name("churn", 7))
    base, _, node = link.partition("/?nodeId=")
    assert base == "http://127.0.0.1:5000"
    parsed = parse_node_id(unquote(node))
    assert (parsed.kind, parsed.namespace, parsed.name) == ("dataset", "sqlite:////tmp/m.db",
                                                            "models/churn/7")


@pytest.mark.parametrize(("uri", "parsed"), [
    ("models:/churn/7", ("churn", "7", None)),
    ("models:/churn@champion", ("churn", None, "champion")),
    ("models:/team/churn/3", ("team/churn", "3", None)),
])
def test_parse_model_uri(uri: str, parsed: tuple[str, str | None, str | None]) -> None:
    assert parse_model_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["runs:/abc/model", "models:/churn", "models:/churn/latest"])
def test_parse_model_uri_rejects_what_is_not_a_version_or_alias(uri: str) -> None:
    with pytest.raises(LineageQueryError):
        parse_model_uri(uri)


def test_dataset_identity_follows_openlineage_naming(tmp_path: Any) -> None:
    path = tmp_path / "a.csv"
    assert dataset_identity(str(path)) == ("file", str(path.resolve()))
    assert dataset_identity("s3://bucket/raw/a.parquet") == ("s3://bucket", "raw/a.parquet")
    assert dataset_identity("public.orders", "postgres://db:5432") == ("postgres://db:5432",
                                                                       "public.orders")


# -- the run context provider --------------------------------------------------------------
def test_provider_is_silent_outside_a_capture_point() -> None:
    provider = ProvlinkRunContextProvider()
    assert provider.in_context() is False
    assert provider.tags() == {}


def test_provider_tags_name_the_capture_point_and_its_parent() -> None:
    provider = ProvlinkRunContextProvider()
    parent_run = "01932b6a-0000-7000-8000-000000000000"  # OpenLineage run ids are UUIDs
    parent = ParentRef(job=JobRef(namespace="airflow", name="dag"), run_id=parent_run)
    with capture_events() as events, provlink.capture("task", namespace="ns", parent=parent,
                                                      capture_files=False) as point:
        assert provider.in_context() is True
        tags = provider.tags()
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert tags[TAG_RUN_ID] == point.run_id
    assert (tags[TAG_JOB_NAMESPACE], tags[TAG_JOB_NAME]) == ("ns", "task")
    assert (tags[TAG_PARENT_RUN_ID], tags[TAG_PARENT_JOB_NAME]) == (parent_run, "dag")
    assert provider.tags() == {}


def test_the_entry_point_module_does_not_import_mlflow() -> None:
    """MLflow imports the provider while ``import mlflow`` is still running: importing MLflow
    back from it would be circular."""
    code = "import sys, provlink.mlflow.context; assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_entry_point_is_registered_with_mlflow() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="mlflow.run_context_provider")
                if e.name == "provlink"]
    assert entry.load() is ProvlinkRunContextProvider


# -- LoggedModel ids and logged datasets, on MLflow's own entity classes ---------------------
def test_logged_dataset_is_named_after_its_source(tmp_path: Any) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from provlink.mlflow.registry import dataset_summary, logged_dataset

    schema = '{"mlflow_colspec": [{"type": "double", "name": "x", "required": true}]}'
    local = DatasetInput(Dataset(name="train", digest="abc123", source_type="local",
                                 source=f'{{"uri": "{tmp_path}/t.csv"}}', schema=schema,
                                 profile='{"num_rows": 12}'),
                         tags=[InputTag("mlflow.data.context", "training")])
    ref = logged_dataset(local, "sqlite:///m.db")
    expected = ("file", f"{tmp_path.resolve()}/t.csv", "abc123")
    assert (ref.namespace, ref.name, ref.version) == expected
    assert [f.name for f in ref.schema] == ["x"] and ref.row_count == 12
    assert dataset_summary(local, ref)["context"] == "training"

    in_code = DatasetInput(Dataset(name="frame", digest="d1", source_type="code", source="{}"))
    ref = logged_dataset(in_code, "http://u:p@h:5000")
    assert (ref.namespace, ref.name, ref.version) == ("http://h:5000", "datasets/frame", "d1")


# -- registry drift rules --------------------------------------------------------------------
class _Backend:
    """Answers ``dataset_versions`` like Marquez, from a dict of writer runs."""

    base_url = "memory://"

    def __init__(self, writers: dict[str, dict[str, Any]]) -> None:
        self.writers = writers

    def dataset_versions(self, namespace: str, name: str) -> list[dict[str, Any]]:
        run = self.writers.get(name)
        return [{"createdByRun": run}] if run else []


def _writer(run_id: str, job: str) -> dict[str, Any]:
    return {"id": run_id, "jobVersion": {"namespace": "ns", "name": job, "version": "v"}}


def test_verify_registry_classifies_drift() -> None:
    tags = {TAG_RUN_ID: "r1", TAG_JOB_NAMESPACE: "ns", TAG_JOB_NAME: "train", "team": "x"}
    backend = _Backend({"models/a/1": _writer("r1", "train"), "models/a/2": _writer("r2", "train"),
                        "models/a/3": _writer("r3", "train")})
    versions = [
        ("a", "1", tags),                                 # matches
        ("a", "2", {**tags, TAG_RUN_ID: "r2", TAG_JOB_NAME: "other"}),  # edited
        ("a", "3", {"team": "x"}),                        # tags removed
        ("a", "4", {**tags}),                             # tagged, never recorded
        ("a", "5", {}),                                   # outside provlink's view
    ]
    drift = {d.model: d.problem for d in verify_registry(backend, versions, "ns")}  # type: ignore[arg-type]
    assert drift == {"models:/a/2": "tags-changed", "models:/a/3": "tags-missing",
                     "models:/a/4": "not-in-lineage"}


def test_render_trace_puts_each_producer_under_what_it_wrote() -> None:
    trace = Trace(
        model="models:/m/1", namespace="sqlite:///m.db", dataset="models/m/1",
        datasets=(TracedDataset(namespace="sqlite:///m.db", name="models/m/1", produced_by="t"),
                  TracedDataset(namespace="file", name="/f.csv", digest="sha256:ff",
                                produced_by="f"),
                  TracedDataset(namespace="file", name="/raw.csv", digest="sha256:aa")),
        runs=(TracedRun(run_id="t", job_namespace="ns", job_name="train",
                        inputs=(("file", "/f.csv"),), parameters={"C": "1"},
                        actor={"user": "ana", "triggeredBy": "manual", "osUser": "airflow"}),
              TracedRun(run_id="f", job_namespace="ns", job_name="features",
                        inputs=(("file", "/raw.csv"),))),
    )
    lines = list(render_trace(trace))
    assert lines[1].startswith("└─ job ns/train  run t")
    assert lines[2].endswith("ran by: user ana; via manual; os user airflow")
    assert "parameters: C=1" in lines[3]
    assert lines[4].endswith("dataset file /f.csv  sha256:ff")
    assert "job ns/features  run f" in lines[5]
    assert lines[6].endswith("ran by: not recorded")
    assert lines[-1].endswith("dataset file /raw.csv  sha256:aa")
