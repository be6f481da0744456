"""Suite-wide hygiene: tests share one interpreter, and MLflow keeps process globals."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _forget_mlflow_globals() -> Iterator[None]:
    """After each test: end runs left active and forget ``mlflow.set_tracking_uri``.

    A library under test (dagster-mlflow's resource) may set the tracking URI and leave a
    run active and an experiment set; the next test's capture point would then adopt that run and read another
    test's store. ``set_tracking_uri`` has no public reset, so the module globals are
    cleared.
    """
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in saved]:
        del os.environ[key]  # e.g. MLFLOW_EXPERIMENT_ID, which set_experiment exports
    os.environ.update(saved)
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while mlflow.active_run() is not None:
        mlflow.end_run()
    for module, name in (("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
                         ("mlflow.tracking._model_registry.utils", "_registry_uri"),
                         ("mlflow.tracking.fluent", "_active_experiment_id")):
        if module in sys.modules:
            setattr(sys.modules[module], name, None)
