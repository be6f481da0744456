"""Who ran an Airflow task or DAG run, from the DAG run and the task (Airflow 3).

The task process sees the task SDK's ``DagRun`` (``run_type``, ``triggering_user_name``);
the scheduler and API server see the ORM ``DagRun``, which also says how the run was
triggered (``triggered_by``: ui, rest_api, cli, ...). ``owner`` follows the OpenLineage
provider: the task's owner unless it is Airflow's default, then the DAG's.
"""

from __future__ import annotations

from typing import Any

from provlink.events.model import Actor

DEFAULT_OWNER = "airflow"  # [core] default_owner when a DAG author set none
# DagRunType -> provlink's triggeredBy
_BY_RUN_TYPE = {"manual": "manual", "scheduled": "schedule", "backfill": "backfill",
                "asset_triggered": "asset", "asset_materialization": "asset",
                "operator_triggered": "operator"}
# DagRunTriggeredByType (ORM DagRun only) -> provlink's triggeredBy
_BY_TRIGGER = {"cli": "cli", "operator": "operator", "rest_api": "api", "ui": "ui",
               "test": "test", "timetable": "schedule", "asset": "asset",
               "backfill": "backfill"}


def actor(dag_run: Any, task: Any = None, dag: Any = None) -> Actor:
    """The run's triggering user and type, and the job's owner; the OS user is the capture
    point's own."""
    sources: dict[str, str] = {}
    user = _text(getattr(dag_run, "triggering_user_name", None))
    if user is not None:
        sources["user"] = "airflow:dag_run.triggering_user_name"
    run_type = _text(getattr(dag_run, "run_type", None))
    if run_type is not None:
        sources["runType"] = "airflow:dag_run.run_type"
    triggered = _text(getattr(dag_run, "triggered_by", None))
    by = _BY_TRIGGER.get(triggered or "")
    if by is not None:
        sources["triggeredBy"] = "airflow:dag_run.triggered_by"
    else:
        by = _BY_RUN_TYPE.get(run_type or "")
        if by is not None:
            sources["triggeredBy"] = "airflow:dag_run.run_type"
    trigger = None
    backfill = getattr(dag_run, "backfill_id", None)
    if backfill is not None:
        trigger, sources["trigger"] = f"backfill {backfill}", "airflow:dag_run.backfill_id"
    owner, where = _owner(task, dag if dag is not None else getattr(dag_run, "dag", None))
    if owner is not None:
        sources["owner"] = where
    return Actor(user=user, triggered_by=by, trigger=trigger, run_type=run_type, owner=owner,
                 sources=sources)


def _owner(task: Any, dag: Any) -> tuple[str | None, str]:
    task_owner = _text(getattr(task, "owner", None))
    if task_owner not in (None, DEFAULT_OWNER) or dag is None:
        return task_owner, "airflow:task.owner"
    # a DAG's owner joins its tasks' owners from a set: sorted, so it reads the same each run
    dag_owner = _text(getattr(dag, "owner", None))
    names = sorted({n.strip() for n in (dag_owner or "").split(",") if n.strip()})
    return ", ".join(names) or None, "airflow:dag.owner"


def _text(value: Any) -> str | None:
    """An Airflow enum or string as its plain value (``DagRunType.MANUAL`` -> ``manual``)."""
    if value is None:
        return None
    text = str(getattr(value, "value", value))
    return text or None
