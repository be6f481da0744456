"""MLflow's ``run_context_provider`` plugin: every MLflow run started inside a capture point
is tagged with that capture point's OpenLineage ids, with no change to user code.

MLflow imports this module (through the ``mlflow.run_context_provider`` entry point) while
``import mlflow`` is still running, so it imports neither MLflow (that would be circular)
nor anything else of its own; outside a capture point it costs one lookup per
``mlflow.start_run``. It never raises into ``start_run``.

Example (inside a capture point)::

    with provlink.capture("train"), mlflow.start_run() as run:
        ...  # run.data.tags["openlineage.run_id"] == the capture point's run id
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provlink.capturing.point import CapturePoint

log = logging.getLogger(__name__)

TAG_RUN_ID = "openlineage.run_id"
TAG_JOB_NAMESPACE = "openlineage.job.namespace"
TAG_JOB_NAME = "openlineage.job.name"
TAG_PARENT_RUN_ID = "openlineage.parent.run_id"
TAG_PARENT_JOB_NAMESPACE = "openlineage.parent.job.namespace"
TAG_PARENT_JOB_NAME = "openlineage.parent.job.name"
TAG_ROOT_RUN_ID = "openlineage.root_parent.run_id"
TAG_ORCHESTRATOR = "openlineage.orchestrator"
TAG_LINEAGE_URL = "openlineage.lineage_url"
TAG_MODEL_VERSION = "openlineage.model_version"
TAG_LEDGER_ENTRY = "provlink.ledger_entry"

# Keys of CapturePoint.state this plugin and provlink.mlflow.run_link share.
STATE_TRACKING_URIS = "mlflow.tracking_uris"
# An adapter sets this False where a run already active in the thread is not the point's
# (e.g. dagster-mlflow's run, left active by an earlier step that used it).
STATE_ADOPT_ACTIVE_RUN = "mlflow.adopt_active_run"


def current_point() -> CapturePoint | None:
    """The current capture point, or None when provlink's capture is not even imported."""
    capture = sys.modules.get("provlink.capturing.point")
    return None if capture is None else capture.current()


def lineage_tags(point: CapturePoint) -> dict[str, str]:
    """The MLflow tags naming ``point`` (and its orchestrator's parent and root runs)."""
    tags = {
        TAG_RUN_ID: point.run_id,
        TAG_JOB_NAMESPACE: point.job.namespace,
        TAG_JOB_NAME: point.job.name,
        TAG_ORCHESTRATOR: point.orchestrator,
    }
    parent = point.parent
    if parent is not None:
        tags[TAG_PARENT_RUN_ID] = parent.run_id
        tags[TAG_PARENT_JOB_NAMESPACE] = parent.job.namespace
        tags[TAG_PARENT_JOB_NAME] = parent.job.name
        if parent.root_run_id:
            tags[TAG_ROOT_RUN_ID] = parent.root_run_id
    return tags


def note_tracking_uri(point: CapturePoint, uri: str) -> None:
    """Remember where a run of ``point`` went, so discovery searches only there."""
    point.state.setdefault(STATE_TRACKING_URIS, set()).add(uri)


class ProvlinkRunContextProvider:
    """Tags runs started (in any thread) while a capture point is active.

    Duck-typed to MLflow's ``RunContextProvider`` (``in_context`` and ``tags``) so importing
    this module does not import MLflow.
    """

    def in_context(self) -> bool:
        try:
            return current_point() is not None
        except Exception:  # noqa: BLE001 - never fail the user's start_run
            return False

    def tags(self) -> dict[str, str]:
        try:
            point = current_point()
            if point is None:
                return {}
            mlflow: Any = sys.modules.get("mlflow")
            if mlflow is not None:
                note_tracking_uri(point, mlflow.get_tracking_uri())
            return lineage_tags(point)
        except Exception:  # noqa: BLE001 - never fail the user's start_run
            log.warning("provlink: could not tag the MLflow run", exc_info=True)
            return {}
