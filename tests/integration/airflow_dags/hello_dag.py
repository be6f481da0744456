"""The smallest DAG: one task that must succeed whatever provlink's configuration says."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="hello", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def hello() -> str:
        return "hello"

    hello()
