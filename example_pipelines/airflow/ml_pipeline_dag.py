"""The demo ML pipeline as an Airflow DAG: raw -> features -> train -> score.

No provlink code: installing ``provlink[airflow]`` is what makes this DAG report its files,
parameters, MLflow runs and model versions. The steps live in ``pipeline_steps.py`` (shared
with the Dagster example); data goes under
``DEMO_DATA_DIR`` (default ``~/provlink-demo``).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task

# The shared steps sit one directory above this DAGs folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pipeline_steps as steps  # noqa: E402


def _paths() -> steps.Paths:
    return steps.Paths(root=steps.data_dir())


@dag(dag_id="ml_pipeline", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
     params={"C": 1.0, "max_iter": 500, "model_name": steps.MODEL_NAME},
     tags=["demo", "ml"], default_args={"owner": "ml-team"})
def ml_pipeline() -> None:
    @task
    def raw_data() -> str:
        return str(steps.write_raw(_paths()))

    @task
    def features(raw: str) -> str:
        return str(steps.build_features(_paths()))

    @task
    def train(features_path: str, params: dict | None = None) -> dict:
        assert params is not None
        return steps.train(_paths(), uri=steps.tracking_uri(), model_name=params["model_name"],
                           c=float(params["C"]), max_iter=int(params["max_iter"]))

    @task
    def score(model: dict) -> str:
        return str(steps.score(_paths(), uri=steps.tracking_uri(),
                               model_name=model["model_name"]))

    score(train(features(raw_data())))


ml_pipeline()
