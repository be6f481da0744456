"""``provlink history`` and the registry log keep namesakes apart: a model is its name in
one registry (the tracking URI's namespace, as its model versions have it), and the history
can be narrowed to one version or one alias."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from provlink.cli.main import main
from provlink.delivery.spool import Spool
from provlink.governance import registry_log as log
from provlink.governance.log import Ledger

PROD, STAGING = "http://mlflow.prod:5000", "http://mlflow.staging:5000"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ledger holding ``churn`` in two registries: prod moves @champion 1 → 2 (the first
    in a run, the second approved), staging moves its own @champion to 7 unapproved."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PROVLINK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spool = Spool(home / "spool.db")
    ledger = Ledger(spool)
    moves = [
        log.RegistryAction(action=log.ALIAS_SET, model="churn", source="in-process",
                           alias="champion", version="1", run_id="run-1", time_ms=1000,
                           tracking_uri=PROD),
        log.RegistryAction(action=log.APPROVAL, model="churn", source="cli", alias="champion",
                           version="2", actor="ana", time_ms=2000),
        log.RegistryAction(action=log.ALIAS_SET, model="churn", source="webhook",
                           alias="champion", version="7", time_ms=2500,
                           tracking_uri=STAGING),
        log.RegistryAction(action=log.ALIAS_SET, model="churn", source="webhook",
                           alias="challenger", version="7", time_ms=2600,
                           tracking_uri=STAGING),
    ]
    for action in moves:
        log.record(ledger, action)
    # as the webhook receiver does: the previous version from this registry's own moves
    previous = log.previous_version(ledger, "churn", "champion", namespace=PROD)
    log.record(ledger, log.RegistryAction(action=log.ALIAS_SET, model="churn",
                                          source="webhook", alias="champion", version="2",
                                          previous=previous, time_ms=3000,
                                          tracking_uri=f"{PROD}?token=x"))
    spool.close()
    return home


def _history(*argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["history", *argv, "--json"]) == 0
    return json.loads(out.getvalue())


def _moves(answer: dict) -> list[tuple]:
    return [(m["alias"], m["previous"], m["version"], m["authorized"], m["namespace"])
            for m in answer["promotions"]]


def test_the_previous_version_is_this_registrys(home: Path) -> None:
    prod = _moves(_history("models:/churn", "--tracking-uri", PROD))
    assert prod == [("champion", None, "1", True, PROD), ("champion", "1", "2", True, PROD)]


def test_namesakes_in_two_registries_are_two_histories(home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    staging = _moves(_history("models:/churn", "--tracking-uri", STAGING))
    assert staging == [("champion", None, "7", False, STAGING),
                       ("challenger", None, "7", False, STAGING)]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", STAGING)  # MLflow's own setting, as default
    assert _moves(_history("models:/churn")) == staging
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert len(_history("models:/churn")["promotions"]) == 4  # every registry
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        main(["history", "models:/churn"])
    assert text.getvalue().splitlines()[0].split()[-1] == "REGISTRY"  # each move says whose


def test_a_version_or_an_alias_narrows_the_history(home: Path) -> None:
    onto_or_off_1 = _history("models:/churn/1", "--tracking-uri", PROD)
    assert onto_or_off_1["version"] == "1"
    assert _moves(onto_or_off_1) == [("champion", None, "1", True, PROD),
                                     ("champion", "1", "2", True, PROD)]
    challenger = _history("models:/churn@challenger", "--tracking-uri", STAGING)
    assert challenger["alias"] == "challenger"
    assert _moves(challenger) == [("challenger", None, "7", False, STAGING)]
    assert _history("models:/churn@challenger", "--tracking-uri", PROD)["promotions"] == []


def test_unauthorized_changes_are_counted_per_registry(home: Path) -> None:
    ledger = Ledger(Spool(home / "spool.db"))
    found = [(m.namespace, m.alias, m.version) for m in log.unauthorized(ledger)]
    assert sorted(found) == [(STAGING, "challenger", "7"), (STAGING, "champion", "7")]
