"""A registry action as a lineage event: a run of job ``mlflow_registry.<model>``.

The job lives in the model's namespace (the tracking URI, as model-version datasets do);
its output is the model version acted on (``models/<name>/<version>``, or the registered
model ``models/<name>`` when no version is known, e.g. an alias deleted), and the run's
``mlflow_registry_action`` facet says what was done. The run ID is a UUIDv5 of the action,
so a redelivered webhook makes the identical event and the backend stores it once.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from openlineage.client.event_v2 import Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde

from provlink._version import PRODUCER
from provlink.events import facets as custom
from provlink.governance.registry_log import RegistryAction

_RUN_NS = uuid.UUID("6f1c2f4e-4b7e-5d0a-9a51-7a1c0de5e9b1")


def namespace_of(tracking_uri: str | None) -> str:
    from provlink.tracking_uri import tracking_namespace

    return tracking_namespace(tracking_uri or "mlflow")


def run_id_of(action: RegistryAction) -> str:
    key = json.dumps(action.fields(), sort_keys=True)
    return str(uuid.uuid5(_RUN_NS, key))


def to_event(action: RegistryAction, *, ledger_index: int | None = None) -> dict[str, Any]:
    """The OpenLineage COMPLETE event for ``action`` (a JSON-ready dict)."""
    namespace = namespace_of(action.tracking_uri)
    version = action.version or action.previous
    name = (f"models/{action.model}/{version}" if version else f"models/{action.model}")
    at = datetime.fromtimestamp(action.time_ms / 1000, UTC).isoformat()
    facet = custom.ours(custom.MlflowRegistryActionRunFacet(
        action=action.action, model=action.model, source=action.source, actionTime=at,
        version=action.version, alias=action.alias, previousVersion=action.previous,
        key=action.key, value=action.value, actor=action.actor,
        authorizingRunId=action.run_id, ledgerIndex=ledger_index))
    event = RunEvent(eventType=RunState.COMPLETE, eventTime=at,
                     run=Run(runId=run_id_of(action), facets={custom.REGISTRY_ACTION: facet}),
                     job=Job(namespace=namespace, name=f"mlflow_registry.{action.model}"),
                     outputs=[OutputDataset(namespace=namespace, name=name)],
                     producer=PRODUCER)
    return Serde.to_dict(event)
