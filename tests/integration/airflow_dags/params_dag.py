"""A Python task whose arguments are nested mappings: each key becomes its own parameter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def fit(path: str, seed: int, *, C: float, model: dict[str, Any]) -> float:  # noqa: N803
    return C * model["depth"]


with DAG(dag_id="params", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         params={"window": {"days": 7, "unit": "d"}}):
    PythonOperator(task_id="fit", python_callable=fit, op_args=["features.csv", 42],
                   op_kwargs={"C": 0.5, "model": {"depth": 3, "layers": [8, 4],
                                                  "db_password": "op-kwargs-pw-123"}})
