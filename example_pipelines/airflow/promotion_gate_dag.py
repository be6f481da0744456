"""Promote the demo model only through the provlink gate: ``gate`` fails the task, naming
each unmet requirement of ``promotion_policy.yml``; ``promote`` then moves ``@production``.

Trigger it after ``ml_pipeline`` (``airflow dags trigger promote_model -c '{"version": "3"}'``).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pipeline_steps as steps

POLICY = Path(__file__).resolve().parents[1] / "promotion_policy.yml"


@dag(dag_id="promote_model", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
     params={"model_name": steps.MODEL_NAME, "version": "1"}, tags=["demo", "governance"])
def promote_model() -> None:
    @task
    def gate(params: dict | None = None) -> str:
        from provlink.governance.gate import gate_model

        assert params is not None
        model = f"models:/{params['model_name']}/{params['version']}"
        result = gate_model(model, tracking_uri=steps.tracking_uri(), policy=POLICY)
        if not result.passed:
            raise AirflowFailException(result.summary() + ": " + "; ".join(
                f"{f.requirement}: {f.detail}" for f in result.unmet))
        print(result.summary())
        return model

    @task
    def promote(model: str) -> None:
        import mlflow

        name, _, version = model.removeprefix("models:/").rpartition("/")
        mlflow.MlflowClient(steps.tracking_uri()).set_registered_model_alias(
            name, "production", version)

    promote(gate())


promote_model_dag = promote_model()
