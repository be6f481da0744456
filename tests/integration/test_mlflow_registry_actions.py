"""Registry actions recorded in-process (inside a capture point) and by ``registry sync``,
against a real MLflow SQLite registry; ``history`` judges each alias move authorized by
its run, by a recorded approval, or not at all."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

import provlink
from provlink.cli.main import main
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.delivery.spool import Spool
from provlink.governance import registry_log as log
from provlink.governance.log import Ledger
from provlink.mlflow.registry_actions import sync
from provlink.testing import InMemoryEmitter


class LedgerEmitter(InMemoryEmitter):
    """Events in memory, registry actions in a real ledger."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Ledger, Any]]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PROVLINK_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    ledger = Ledger(Spool(tmp_path / "home" / "spool.db"))
    emitter = LedgerEmitter(ledger)
    old = set_runtime(Runtime(ProvlinkConfig.load(), emitter=emitter))
    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model("churn")
    for _ in range(3):
        client.create_model_version("churn", source="s3://provlink-tests/churn/model")
    try:
        yield uri, ledger, emitter
    finally:
        set_runtime(old)


def test_an_alias_move_inside_a_capture_point_is_recorded_and_authorized_by_it(env) -> None:
    uri, ledger, emitter = env
    client = MlflowClient(tracking_uri=uri)
    client.set_registered_model_alias("churn", "champion", "1")  # outside: not in-process
    with provlink.capture("promote", capture_files=False) as point:
        client.set_registered_model_alias("churn", "champion", "2")
        client.set_model_version_tag("churn", "2", "validated", "yes")
    moves = log.history(ledger, "churn")
    assert [(m.previous, m.version, m.source, m.run_id) for m in moves] == [
        ("1", "2", "in-process", point.run_id)]
    assert moves[0].authorized and moves[0].authorized_by == f"run {point.run_id}"
    tags = [a for a in log.actions(ledger) if a.action == log.TAG_SET]
    assert [(a.version, a.key, a.value) for a in tags] == [("2", "validated", "yes")]
    registry_events = [e for e in emitter.events if e["job"]["name"] == "mlflow_registry.churn"]
    facet = registry_events[0]["run"]["facets"]["mlflow_registry_action"]
    assert facet["authorizingRunId"] == point.run_id and facet["previousVersion"] == "1"
    assert registry_events[0]["outputs"][0]["name"] == "models/churn/2"


def test_sync_records_what_changed_elsewhere_and_approval_authorizes_it(
        env, capsys: pytest.CaptureFixture[str]) -> None:
    uri, ledger, emitter = env
    client = MlflowClient(tracking_uri=uri)
    client.set_registered_model_alias("churn", "champion", "2")
    found = sync(provlink_runtime(), client, tracking_uri=uri)
    assert {(a.action, a.version) for a in found} >= {(log.VERSION_CREATED, "1"),
                                                     (log.ALIAS_SET, "2")}
    assert all(a.source == "sync" for a in found)
    assert sync(provlink_runtime(), client, tracking_uri=uri) == []  # nothing new

    assert main(["approve", "models:/churn/3", "--alias", "champion", "--by", "alice"]) == 0
    client.set_registered_model_alias("churn", "champion", "3")
    client.delete_registered_model_alias("churn", "champion")
    client.set_registered_model_alias("churn", "challenger", "1")
    found = sync(provlink_runtime(), client, tracking_uri=uri)
    # a sync sees only the state now: 3 came and went between syncs
    assert {(a.action, a.alias) for a in found} == {(log.ALIAS_DELETED, "champion"),
                                                   (log.ALIAS_SET, "challenger")}
    client.set_registered_model_alias("churn", "champion", "3")
    sync(provlink_runtime(), client, tracking_uri=uri)

    capsys.readouterr()
    assert main(["history", "models:/churn", "--json"]) == 0
    promotions = json.loads(capsys.readouterr().out)["promotions"]
    assert [(p["alias"], p["previous"], p["version"], p["authorized_by"])
            for p in promotions] == [
        ("champion", None, "2", None), ("challenger", None, "1", None),  # one sync: sets
        ("champion", "2", None, None), ("champion", None, "3", "approval by alice")]
    assert main(["history", "models:/churn"]) == 0
    assert "3 unauthorized change(s)" in capsys.readouterr().out
    # what `provlink coverage` counts: every model's unauthorized moves in the ledger
    assert [(m.model, m.alias, m.version) for m in log.unauthorized(ledger)] == [
        ("churn", "champion", "2"), ("churn", "challenger", "1"), ("churn", "champion", None)]


def provlink_runtime() -> Runtime:
    from provlink.delivery.runtime import get_runtime

    return get_runtime()


def test_a_registry_call_outside_any_capture_point_records_nothing(env) -> None:
    uri, ledger, emitter = env
    mlflow.MlflowClient(tracking_uri=uri).set_registered_model_alias("churn", "x", "1")
    assert list(log.actions(ledger)) == []


LATE_IMPORT = """
import json, sys
import provlink
from provlink.testing import capture_events

with capture_events() as events:
    with provlink.capture("train", capture_files=False):
        assert "mlflow" not in sys.modules
        from mlflow import MlflowClient  # the task imports MLflow inside its body
        client = MlflowClient(tracking_uri=sys.argv[1])
        client.create_registered_model("late")
        client.create_model_version("late", source="s3://provlink-tests/late/model")
print(json.dumps([e["job"]["name"] for e in events]))
"""


def test_mlflow_imported_inside_a_capture_point_still_records_registry_calls(
        tmp_path: Path) -> None:
    """MLflow's extension loads when MLflow is imported (a post-import hook), so a capture
    point that was already running sees the registry calls made after the import."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVLINK_", "MLFLOW_"))}
    env["PROVLINK_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, "-c", LATE_IMPORT, f"sqlite:///{tmp_path}/m.db"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = json.loads(done.stdout.strip().splitlines()[-1])
    assert jobs.count("mlflow_registry.late") == 1, jobs
    assert jobs.count("train") == 2, jobs
