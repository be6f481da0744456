"""Suite-wide hygiene: tests share one interpreter, and libraries keep process globals."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _restore_process_globals() -> Iterator[None]:
    """After each test: the environment as it was, no MLflow run left active, and MLflow's
    tracking URI and experiment forgotten.

    Libraries under test write process state that monkeypatch cannot see:
    openlineage-python's client copies ``OPENLINEAGE_URL`` into ``OPENLINEAGE__TRANSPORT__*``
    variables, MLflow's ``set_experiment`` exports ``MLFLOW_EXPERIMENT_ID``, dagster-mlflow
    sets the tracking URI and leaves its run active. The next test would then send events
    to a closed port or adopt another test's run. ``set_tracking_uri`` has no public reset,
    so MLflow's module globals are cleared.
    """
    saved = dict(os.environ)
    yield
    for key in [k for k in os.environ if k not in saved]:
        del os.environ[key]
    os.environ.update(saved)
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while mlflow.active_run() is not None:
        mlflow.end_run()
    from provlink.mlflow._compat import reset_process_globals

    reset_process_globals()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many OpenLineage schema assertions were skipped for want of the specs."""
    conformance = sys.modules.get("tests.conformance")
    skipped = getattr(conformance, "skipped_checks", 0)
    if skipped:
        terminalreporter.write_line(
            f"conformance: {skipped} OpenLineage schema assertions skipped, spec not found at"
            f" {getattr(conformance, 'OPENLINEAGE', '?')}; every behaviour assertion ran"
        )
