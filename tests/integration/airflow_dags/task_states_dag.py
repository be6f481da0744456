"""Every way a task ends that the listener must report: success, a raise (FAIL with
``errorMessage``), a skip raised by the task itself, and a task a ShortCircuitOperator skips
without ever running it (left for the API server tests to change)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowSkipException

with DAG(dag_id="task_states", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def ok() -> int:
        return 1

    @task
    def boom() -> None:
        raise ValueError("boom: the input had 0 rows")

    @task
    def skip_me() -> None:
        raise AirflowSkipException("nothing to do today")

    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)

    @task
    def after_gate() -> None:
        pass

    ok()
    boom()
    skip_me()
    gate >> after_gate()
