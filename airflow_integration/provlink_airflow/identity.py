"""Job names and run ids, identical to apache-airflow-providers-openlineage's.

Events from provlink and from the provider (or from anything that used the provider's
``lineage_run_id`` / ``lineage_parent_id`` macros, e.g. a Spark job launched by a task) must
name the same runs, so the ids come from the provider's own public functions rather than a
copy of its formula: a UUIDv7 whose time part is the DAG run's logical date (``run_after``
for runs without one) and whose random part is derived from namespace, DAG, task, try
number and map index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.openlineage import conf as ol_conf
from airflow.providers.openlineage.utils.utils import (
    build_dag_run_ol_run_id,
    build_task_instance_ol_run_id,
)


def namespace() -> str:
    """The job namespace the provider uses: ``[openlineage] namespace``, then
    ``OPENLINEAGE_NAMESPACE``, then ``default``."""
    return str(ol_conf.namespace())


def dag_job_name(dag_id: str) -> str:
    return dag_id


def task_job_name(dag_id: str, task_id: str) -> str:
    return f"{dag_id}.{task_id}"


def run_date(dag_run: Any) -> datetime:
    """The instant both id formulas use: the logical date, or ``run_after`` in Airflow 3
    runs that have none (manual and asset-triggered runs)."""
    date: datetime = dag_run.logical_date or dag_run.run_after
    return date


def dag_run_id(dag_run: Any) -> str:
    return build_dag_run_ol_run_id(dag_id=dag_run.dag_id, logical_date=run_date(dag_run),
                                   clear_number=getattr(dag_run, "clear_number", 0) or 0)


def task_run_id(dag_run: Any, task_id: str, try_number: int, map_index: int) -> str:
    return str(build_task_instance_ol_run_id(dag_id=dag_run.dag_id, task_id=task_id,
                                             try_number=try_number,
                                             logical_date=run_date(dag_run),
                                             map_index=map_index))
