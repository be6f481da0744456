"""dagster-mlflow's ``mlflow_tracking`` resource: one MLflow run per Dagster run, started
while the step's resources are built — before its capture point, so MLflow's run context
provider never tags it. The core adopts that already-active run into the step's event;
here the run gets what names it in lineage: the Dagster run (as the OpenLineage parent) and,
per asset key the step materializes, the OpenLineage run id of that step.

>>> run.data.tags["openlineage.dagster.asset_key.wine_model"]  # the step's run id
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from provlink.capturing.point import CapturePoint
from provlink.mlflow.context import (
    TAG_PARENT_JOB_NAME,
    TAG_PARENT_JOB_NAMESPACE,
    TAG_PARENT_RUN_ID,
)

log = logging.getLogger(__name__)

TAG_ASSET_KEY = "openlineage.dagster.asset_key"  # + "." + asset key -> the step's run id
_RESOURCE_MODULE = "dagster_mlflow"


def resource_runs(context: Any) -> list[Any]:
    """The dagster-mlflow resources this step requires (none when it is not installed)."""
    found = []
    for key in sorted(context.op_def.required_resource_keys):
        resource = getattr(context.resources, key, None)
        if type(resource).__module__.split(".")[0] == _RESOURCE_MODULE:
            found.append(resource)
    return found


def tag_resource_runs(context: Any, point: CapturePoint, asset_keys: Sequence[str]) -> None:
    """Tag each dagster-mlflow run this step uses. One tag per asset key: steps of one
    Dagster run, in separate processes, tag the same MLflow run without overwriting."""
    resources = resource_runs(context)
    if not resources:
        return
    import mlflow
    from mlflow.entities import RunTag

    tags = {f"{TAG_ASSET_KEY}.{key}": point.run_id for key in asset_keys}
    if point.parent is not None:
        tags.update({TAG_PARENT_RUN_ID: point.parent.run_id,
                     TAG_PARENT_JOB_NAME: point.parent.job.name,
                     TAG_PARENT_JOB_NAMESPACE: point.parent.job.namespace})
    active = mlflow.active_run()
    for resource in resources:
        # The resource leaves mlflow_run_id unset when it started the run itself; that run
        # is the active one until the step's own code runs.
        run_id = resource.mlflow_run_id or (active.info.run_id if active else None)
        if run_id is None:
            continue
        mlflow.MlflowClient(tracking_uri=resource.tracking_uri).log_batch(
            run_id, tags=[RunTag(name, value) for name, value in tags.items()])
