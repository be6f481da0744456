"""The webhook receiver checks deliveries exactly as MLflow signs them (MLflow's own
signing function makes the signatures here), refuses replays and records each action once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature
from starlette.testclient import TestClient

from provlink.delivery.spool import Spool
from provlink.governance import registry_log as log
from provlink.governance.log import Ledger
from provlink.server.app import create_app
from provlink.server.mlflow_webhook import TOLERANCE_S, MlflowWebhook, signature
from provlink.server.store import open_store

SECRET = "s3cret"
HOOK = "/api/v1/mlflow/webhook?trackingUri=http://mlflow:5000"
NOW = 1_800_000_000.0


def _delivery(data: dict[str, str], *, entity: str = "model_version_alias",
              action: str = "created", secret: str = SECRET,
              stamp: float = NOW) -> tuple[str, dict[str, str]]:
    body = json.dumps({"entity": entity, "action": action,
                       "timestamp": "2027-01-15T08:00:00+00:00", "data": data})
    delivery, ts = str(uuid.uuid4()), str(int(stamp))
    return body, {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
                  "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, ts, body),
                  "Content-Type": "application/json"}


@pytest.fixture
def served(tmp_path: Path) -> tuple[TestClient, Ledger, object]:
    ledger = Ledger(Spool(tmp_path / "spool.db"))
    store = open_store(f"sqlite:///{tmp_path / 'lineage.db'}")
    hook = MlflowWebhook(secret=SECRET, ledger=ledger, clock=lambda: NOW)
    return TestClient(create_app(store, webhook=hook, api_keys=["webhook-test-key"]),
                      base_url="http://127.0.0.1"), ledger, store


def test_our_signature_is_mlflows() -> None:
    body = '{"a": 1}'
    assert signature(SECRET, "d-1", "17", body.encode()) == _generate_hmac_signature(
        SECRET, "d-1", "17", body)


def test_a_signed_alias_move_is_recorded_with_its_previous_version(served) -> None:
    client, ledger, _store = served
    for version in ("2", "3"):
        body, headers = _delivery({"name": "churn", "alias": "champion", "version": version})
        answer = client.post("/api/v1/mlflow/webhook?trackingUri=http://mlflow:5000",
                             content=body, headers=headers)  # no bearer key needed
        assert answer.status_code == 200, answer.text
        assert answer.json()["recorded"] is True
    moves = log.history(ledger, "churn")
    assert [(m.previous, m.version, m.source, m.authorized) for m in moves] == [
        (None, "2", "webhook", False), ("2", "3", "webhook", False)]
    bearer = {"Authorization": "Bearer webhook-test-key"}
    events = client.get("/api/v1/events/lineage", headers=bearer).json()["events"]
    assert {e["outputs"][0]["name"] for e in events} == {"models/churn/2", "models/churn/3"}
    assert {e["job"]["namespace"] for e in events} == {"http://mlflow:5000"}


@pytest.mark.parametrize("tamper", ["secret", "body", "missing", "stale", "future"])
def test_a_bad_delivery_is_401_and_records_nothing(served, tamper: str) -> None:
    client, ledger, _store = served
    stamp = {"stale": NOW - TOLERANCE_S - 1, "future": NOW + TOLERANCE_S + 1}.get(tamper, NOW)
    body, headers = _delivery({"name": "churn", "alias": "champion", "version": "1"},
                              secret="other" if tamper == "secret" else SECRET, stamp=stamp)
    if tamper == "body":
        body = body.replace('"1"', '"9"')
    if tamper == "missing":
        del headers["X-MLflow-Signature"]
    answer = client.post("/api/v1/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 401
    assert ledger.size() == 0


def test_a_redelivery_is_acknowledged_once(served) -> None:
    client, ledger, _store = served
    body, headers = _delivery({"name": "churn", "version": "1", "key": "stage", "value": "qa"},
                              entity="model_version_tag", action="set")
    first = client.post(HOOK, content=body, headers=headers)
    again = client.post(HOOK, content=body, headers=headers)
    assert first.json()["recorded"] is True and again.json()["recorded"] is False
    assert [a.action for a in log.actions(ledger)] == [log.TAG_SET]


def test_without_a_secret_the_receiver_refuses_and_says_what_to_set(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'lineage.db'}")
    hook = MlflowWebhook(secret="", ledger=Ledger(Spool(tmp_path / "spool.db")))
    body, headers = _delivery({"name": "churn", "alias": "a", "version": "1"})
    answer = TestClient(create_app(store, webhook=hook), base_url="http://127.0.0.1").post(
        "/api/v1/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 503
    assert "PROVLINK_MLFLOW_WEBHOOK_SECRET" in answer.text


@pytest.mark.parametrize("query", ["", "?trackingUri=", "?trackingUri=sqlite:///mlflow.db"])
def test_a_delivery_that_cannot_name_its_registry_is_422_and_records_nothing(
        served, query: str) -> None:
    """Without the sender's tracking URI the action would be filed under another namespace
    than the model version's (the same version two nodes): refused, saying what to add."""
    client, ledger, _store = served
    body, headers = _delivery({"name": "churn", "alias": "champion", "version": "1"})
    answer = client.post(f"/api/v1/mlflow/webhook{query}", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "trackingUri"
    assert ("provlink mlflow webhook register" in answer.text if "sqlite" not in query
            else "absolute" in answer.text)
    assert ledger.size() == 0
    bearer = {"Authorization": "Bearer webhook-test-key"}
    assert client.get("/api/v1/events/lineage", headers=bearer).json()["events"] == []
    fixed = client.post(HOOK, content=body, headers=headers)  # MLflow's retry, once fixed
    assert fixed.json()["recorded"] is True
