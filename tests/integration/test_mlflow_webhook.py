"""A real ``mlflow server`` sends its registry webhooks to a real ``provlink serve``:
alias moves land in the server's ledger and store, ``history`` prints them, and a delivery
with a bad signature is refused with 401 and leaves no trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from provlink.cli.main import main
from provlink.delivery.spool import Spool
from provlink.governance import registry_log as log
from provlink.governance.log import Ledger
from provlink.server.mlflow_webhook import signature
from tests.integration.mlflow_support import mlflow_server
from tests.server.support import free_port

SECRET = "registry-webhook-secret"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``provlink serve`` with its own home (its ledger) and the webhook secret."""
    port = free_port()
    home = tmp_path / "server-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVLINK_")}
    env.update(PROVLINK_HOME=str(home), PROVLINK_MLFLOW_WEBHOOK_SECRET=SECRET)
    process = subprocess.Popen(
        [sys.executable, "-m", "provlink.cli.main", "serve", "--port", str(port),
         "--db", f"sqlite:///{tmp_path / 'lineage.db'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/api/v1/namespaces", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "provlink serve did not start"
                time.sleep(0.2)
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=30)


def _alias_moves(home: Path, count: int) -> list[log.RegistryAction]:
    """Wait for MLflow's asynchronous deliveries to land in the server's ledger."""
    deadline = time.monotonic() + 120
    while True:
        if (home / "spool.db").exists():
            ledger = Ledger(Spool(home / "spool.db"))
            moves = [a for a in log.actions(ledger) if a.action == log.ALIAS_SET]
            if len(moves) >= count:
                return moves
        assert time.monotonic() < deadline, "MLflow's webhook deliveries did not arrive"
        time.sleep(0.3)


def test_champion_moves_are_recorded_and_a_bad_signature_is_refused(
        served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, home = served
    root = tmp_path / "mlflow"
    root.mkdir()
    with mlflow_server(root, MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
                       MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
                       MLFLOW_WEBHOOK_CACHE_TTL="1") as tracking:
        monkeypatch.setenv("PROVLINK_MLFLOW_WEBHOOK_SECRET", SECRET)
        assert main(["mlflow", "webhook", "register", "--tracking-uri", tracking,
                     "--url", url]) == 0
        client = MlflowClient(tracking_uri=tracking)
        client.create_registered_model("churn")
        for _ in range(3):
            client.create_model_version("churn", source="s3://provlink-tests/churn/model")
        client.set_registered_model_alias("churn", "champion", "2")
        _alias_moves(home, 1)  # MLflow delivers from a thread pool: keep the order
        client.set_registered_model_alias("churn", "champion", "3")
        moves = _alias_moves(home, 2)

    assert [(m.previous, m.version, m.source) for m in moves] == [
        (None, "2", "webhook"), ("2", "3", "webhook")]
    ledger = Ledger(Spool(home / "spool.db"))
    created = [a.version for a in log.actions(ledger) if a.action == log.VERSION_CREATED]
    assert sorted(created or []) == ["1", "2", "3"]

    monkeypatch.setenv("PROVLINK_HOME", str(home))
    capsys.readouterr()
    assert main(["history", "models:/churn", "--json"]) == 0
    promotions = json.loads(capsys.readouterr().out)["promotions"]
    assert [(p["previous"], p["version"], p["authorized"]) for p in promotions] == [
        (None, "2", False), ("2", "3", False)]  # made outside any run or approval
    assert main(["history", "models:/churn"]) == 0
    table = capsys.readouterr().out
    assert "- → 2" in table and "2 → 3" in table and "UNAUTHORIZED" in table

    events = httpx.get(f"{url}/api/v1/events/lineage", params={"limit": 100}).json()["events"]
    actions = [e["run"]["facets"]["mlflow_registry_action"] for e in events
               if e["job"]["name"] == "mlflow_registry.churn"]
    assert sorted((a["action"], a.get("version")) for a in actions
                  if a["action"] == "alias_set") == [("alias_set", "2"), ("alias_set", "3")]
    moved = [e for e in events if e["job"]["name"] == "mlflow_registry.churn"
             and e["run"]["facets"]["mlflow_registry_action"].get("version") == "3"
             and e["run"]["facets"]["mlflow_registry_action"]["action"] == "alias_set"]
    assert moved[0]["outputs"][0]["name"] == "models/churn/3"
    assert moved[0]["job"]["namespace"] == tracking

    # a forged delivery: signed with another secret, then unsigned
    size, stored = ledger.size(), len(events)
    body = json.dumps({"entity": "model_version_alias", "action": "created",
                       "timestamp": "2026-01-01T00:00:00+00:00",
                       "data": {"name": "churn", "alias": "champion", "version": "1"}})
    stamp = str(int(time.time()))
    forged = {"X-MLflow-Delivery-Id": "forged-1", "X-MLflow-Timestamp": stamp,
              "X-MLflow-Signature": signature("not-the-secret", "forged-1", stamp,
                                              body.encode()),
              "Content-Type": "application/json"}
    answer = httpx.post(f"{url}/api/v1/mlflow/webhook", content=body, headers=forged)
    assert answer.status_code == 401
    del forged["X-MLflow-Signature"]
    assert httpx.post(f"{url}/api/v1/mlflow/webhook", content=body,
                      headers=forged).status_code == 401
    assert ledger.size() == size
    after = httpx.get(f"{url}/api/v1/events/lineage", params={"limit": 100}).json()["events"]
    assert len(after) == stored
