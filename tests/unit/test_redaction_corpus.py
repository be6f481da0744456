"""The redaction corpus: every secret shape masked, every look-alike left alone.

``redaction_corpus.json`` holds fake, well-shaped secrets (each names the part that must
not survive) and look-alike non-secrets (dataset names and namespaces containing
``postgres``/``airflow``/``admin``, digests, UUIDs, commits, paths, commands, SQL). The
environment is seeded as countless dev setups are (``PGPASSWORD=postgres``...), so the
redactor learns what it would learn there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provlink.config import ProvlinkConfig
from provlink.events.redact import Redactor

CORPUS = json.loads((Path(__file__).parent / "redaction_corpus.json").read_text())
SECRETS: list[dict[str, str]] = CORPUS["secrets"]
NON_SECRETS: list[dict[str, str]] = CORPUS["non_secrets"]

SEEDED_ENV = {
    "PGPASSWORD": "postgres",
    "POSTGRES_PASSWORD": "postgres",
    "AIRFLOW_PASSWORD": "airflow",
    "_AIRFLOW_WWW_USER_PASSWORD": "airflow",
    "MYSQL_ROOT_PASSWORD": "admin",
    "ADMIN_PASSWORD": "admin",
    "REDIS_PASSWORD": "redis",
    "MLFLOW_TRACKING_PASSWORD": "mlflow",
    "PASSWORD_STORE_DIR": "/home/airflow/.password-store",
    "PWD": "/data/postgres/airflow",
    "SECRET_KEY": "airflow",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt",
}


def seeded_redactor(monkeypatch: pytest.MonkeyPatch) -> Redactor:
    for name, value in SEEDED_ENV.items():
        monkeypatch.setenv(name, value)
    config = ProvlinkConfig.load()
    return Redactor(config.secret_key_patterns, config.redact_values)


def placed(text: str) -> dict[str, Any]:
    """One string in the places an event carries free text: a parameter, an error message,
    a traceback, a custom facet, a JSON-encoded parameter."""
    return {
        "eventType": "FAIL",
        "run": {"runId": "01932b6a-0000-7000-8000-000000000001", "facets": {
            "executionParameters": {"parameters": [{"key": "command", "value": text},
                                                   {"key": "config",
                                                    "value": json.dumps({"cmd": text})}]},
            "errorMessage": {"message": text, "programmingLanguage": "python",
                             "stackTrace": f"Traceback (most recent call last):\n  {text}\n"},
            "custom": {"notes": [text], "detail": {"text": text}},
        }},
        "job": {"namespace": "default", "name": "etl.load"},
    }


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def test_the_corpus_is_big_enough() -> None:
    assert len(SECRETS) >= 100 and len(NON_SECRETS) >= 100
    assert len({s["text"] for s in SECRETS}) == len(SECRETS)


def test_every_secret_shape_is_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = seeded_redactor(monkeypatch)
    missed = []
    for case in SECRETS:
        out = json.dumps(redactor(placed(case["text"])))
        if case["secret"] in out or json.dumps(case["secret"])[1:-1] in out:
            missed.append(case["kind"])
    assert missed == [], f"recall {1 - len(missed) / len(SECRETS):.0%}: {missed}"


def test_no_look_alike_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = seeded_redactor(monkeypatch)
    changed = []
    for case in NON_SECRETS:
        event = placed(case["text"])
        event["inputs"] = [{"namespace": case["text"], "name": case["text"], "facets": {
            "schema": {"fields": [{"name": case["text"], "type": "string"}]}}}]
        if redactor(event) != event:
            changed.append((case["kind"], case["text"]))
    assert changed == [], f"{len(changed)} false positives: {changed}"


def test_secrets_learnt_from_the_corpus_leave_look_alikes_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After a whole corpus of secrets was masked (and strong values learnt), the
    look-alikes still come out unchanged: nothing common was learnt."""
    redactor = seeded_redactor(monkeypatch)
    for case in SECRETS:
        redactor(placed(case["text"]))
    for case in NON_SECRETS:
        event = placed(case["text"])
        assert redactor(event) == event, case


def test_seeded_environment_values_are_not_learnt(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = seeded_redactor(monkeypatch)
    assert all(value not in redactor.known for value in SEEDED_ENV.values())
    assert all("***" not in s for s in strings(redactor({"note": " ".join(SEEDED_ENV.values())})))
