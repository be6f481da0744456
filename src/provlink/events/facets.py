"""provlink's custom OpenLineage facets, for what no standard facet carries.

Each facet is an openlineage-python attrs class whose ``_schemaURL`` names a JSON Schema
shipped in ``provlink/events/facet_schemas/`` (``$id`` = the URL without the fragment), so
consumers can validate them like standard facets.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import attr
from openlineage.client.facet_v2 import DatasetFacet, RunFacet

from provlink._version import PRODUCER
from provlink.events import _compat

SCHEMA_BASE = "https://provlink.dev/spec/facets/1-0-0"

ENVIRONMENT = "provlink_environment"
CODE = "provlink_code"
MLFLOW = "mlflow"
MODEL_VERSION = "mlflow_model_version"
LEDGER = "provlink_ledger"
DAGSTER_VERSION = "dagster_version"
ACTOR = "provlink_actor"


def schema_url(name: str) -> str:
    return f"{SCHEMA_BASE}/{name}.json#/$defs/{name}"


F = TypeVar("F")


def ours(facet: F) -> F:
    """``facet``, built by provlink, named as provlink's: a facet's default ``_producer`` is
    a process-wide global that other integrations (the Airflow provider) rewrite."""
    _compat.set_producer(facet, PRODUCER)
    return facet


@attr.define
class ProvlinkEnvironmentRunFacet(RunFacet):
    """Python, platform, host, container image and installed packages of the run."""

    pythonVersion: str  # noqa: N815
    platform: str
    host: str | None = attr.field(default=None)
    containerImage: str | None = attr.field(default=None)  # noqa: N815
    packagesDigest: str | None = attr.field(default=None)  # noqa: N815
    packages: dict[str, str] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("ProvlinkEnvironmentRunFacet")


@attr.define
class ProvlinkCodeRunFacet(RunFacet):
    """The exact code version that ran, including whether the checkout had local edits
    (``sourceCodeLocation`` has no place for the dirty flag)."""

    type: str
    commit: str | None = attr.field(default=None)
    dirty: bool | None = attr.field(default=None)
    branch: str | None = attr.field(default=None)
    repoUrl: str | None = attr.field(default=None)  # noqa: N815
    path: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("ProvlinkCodeRunFacet")


@attr.define
class MlflowRunsRunFacet(RunFacet):
    """The MLflow runs started inside the capture point."""

    runs: list[dict[str, Any]]

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlflowRunsRunFacet")


@attr.define
class MlflowModelVersionDatasetFacet(DatasetFacet):
    """A registered MLflow model version seen as a dataset."""

    name: str
    version: str
    trackingUri: str  # noqa: N815
    runId: str | None = attr.field(default=None)  # noqa: N815
    modelId: str | None = attr.field(default=None)  # noqa: N815
    source: str | None = attr.field(default=None)
    aliases: list[str] = attr.field(factory=list)
    # The manifest of the version's artifact directory (provlink.capturing.manifest):
    # ``digest`` over per-file SHA-256s in sorted path order, ``files`` as in-toto subjects.
    artifactDigest: str | None = attr.field(default=None)  # noqa: N815
    artifactManifest: dict[str, Any] | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlflowModelVersionDatasetFacet")


@attr.define
class ProvlinkLedgerRunFacet(RunFacet):
    """The ledger checkpoint made right before this terminal event, anchoring the run's
    earlier entries (START, ...) away from the machine. The checkpoint covering the terminal
    event itself cannot be inside it; it is the next one, on the model versions' tags and at
    the witness. ``checkpoint`` is the C2SP signed note (unsigned text without a key);
    ``consistencyProof`` (RFC 9162, base64) runs from the previous anchor's ``proofFrom``
    entries to this one, so a witness holding that one can check this one."""

    origin: str
    treeSize: int  # noqa: N815
    rootHash: str  # noqa: N815
    checkpoint: str
    signed: bool
    proofFrom: int | None = attr.field(default=None)  # noqa: N815
    consistencyProof: list[str] = attr.field(factory=list)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return schema_url("ProvlinkLedgerRunFacet")


@attr.define
class DagsterVersionDatasetFacet(DatasetFacet):
    """Dagster's own versions of the asset behind a dataset.

    Kept apart from the standard ``version`` facet, which is always a content digest: a
    Dagster data version is whatever the asset's code returned (by default a counter-like
    hash), so the same bytes would get another identity than in Airflow or plain Python.
    """

    assetKey: str  # noqa: N815
    dataVersion: str | None = attr.field(default=None)  # noqa: N815
    codeVersion: str | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return schema_url("DagsterVersionDatasetFacet")


@attr.define
class ProvlinkActorRunFacet(RunFacet):
    """Who ran this run, as the orchestrator knows it (no standard facet says who launched a
    run; the job's declared owner is also in the standard ``ownership`` job facet, repeated
    here because it is the owner at the time of this run and readers of a run see only run
    facets). ``sources`` maps each field to where it was read."""

    user: str | None = attr.field(default=None)
    triggeredBy: str | None = attr.field(default=None)  # noqa: N815
    trigger: str | None = attr.field(default=None)
    runType: str | None = attr.field(default=None)  # noqa: N815
    owner: str | None = attr.field(default=None)
    osUser: str | None = attr.field(default=None)  # noqa: N815
    sources: dict[str, str] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("ProvlinkActorRunFacet")


SCHEMA_FILES: tuple[str, ...] = (
    "ProvlinkEnvironmentRunFacet",
    "ProvlinkCodeRunFacet",
    "MlflowRunsRunFacet",
    "MlflowModelVersionDatasetFacet",
    "ProvlinkLedgerRunFacet",
    "DagsterVersionDatasetFacet",
    "MlflowRegistryActionRunFacet",
    "ProvlinkActorRunFacet",
)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The shipped JSON Schema of one custom facet."""
    schemas = resources.files("provlink.events.facet_schemas")
    text = schemas.joinpath(f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


REGISTRY_ACTION = "mlflow_registry_action"


@attr.define
class MlflowRegistryActionRunFacet(RunFacet):
    """One MLflow model-registry action (a version created, a tag set or deleted, an alias
    moved or deleted), how provlink saw it (``source``: webhook, in-process, sync) and
    whether it was authorized (made in a pipeline run or approved beforehand)."""

    action: str
    model: str
    source: str
    actionTime: str  # noqa: N815
    version: str | None = attr.field(default=None)
    alias: str | None = attr.field(default=None)
    previousVersion: str | None = attr.field(default=None)  # noqa: N815
    key: str | None = attr.field(default=None)
    value: str | None = attr.field(default=None)
    actor: str | None = attr.field(default=None)
    authorizingRunId: str | None = attr.field(default=None)  # noqa: N815
    ledgerIndex: int | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlflowRegistryActionRunFacet")
