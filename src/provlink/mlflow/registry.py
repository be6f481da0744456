"""Registered MLflow model versions as lineage datasets, in both directions.

A version registered inside a capture point is an output dataset of that capture point and
carries its OpenLineage ids as registry tags; a ``models:/name/version`` or
``models:/name@alias`` loaded inside a capture point is an input. Dataset identity:
namespace = the tracking URI without credentials, name = ``models/<name>/<version>`` (no bare
``:``, which Marquez node ids split on).

A model version is one node: the files MLflow keeps for it (``MLmodel``, ``model.skops``,
``requirements.txt``, ``registered_model_meta``, ...) are not datasets of their own. The
version's facet carries the manifest of its artifact directory
(:func:`provlink.capturing.manifest.directory_manifest`: a SHA-256 per file and the digest
over them, as OpenSSF model-signing computes it), and :func:`model_artifact_dir` tells the
run link which captured files to fold into the version.

MLflow is imported inside the functions that call it (``src/provlink`` never imports it at
module top), so the CLI reads :func:`tracking_namespace` without loading MLflow.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from provlink.capturing.digest import DEFAULT_MAX_BYTES
from provlink.capturing.manifest import directory_manifest
from provlink.errors import ConfigError
from provlink.events.facets import MODEL_VERSION, MlflowModelVersionDatasetFacet, ours
from provlink.events.model import DatasetRef, SchemaField
from provlink.governance.trace import dataset_identity
from provlink.mlflow import _compat
from provlink.mlflow.context import (
    TAG_JOB_NAME,
    TAG_JOB_NAMESPACE,
    TAG_LEDGER_ENTRY,
    TAG_LINEAGE_URL,
    TAG_MODEL_VERSION,
    TAG_RUN_ID,
    current_point,
)
from provlink.tracking_uri import tracking_namespace

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput
    from mlflow.entities.model_registry import ModelVersion

    from provlink.capturing.point import CapturePoint

log = logging.getLogger(__name__)

MODELS_PREFIX = "models/"
STATE_MODEL_LOADS = "mlflow.model_loads"
STATE_TAGGED = "mlflow.tagged_versions"
STATE_MODEL_DIRS = "mlflow.model_dirs"  # local directories holding model versions' files


def check_tracking_store(uri: str) -> None:
    """Refuse MLflow's file store: it cannot search runs by tag at any useful speed and its
    registry is in maintenance mode."""
    scheme = uri.partition("://")[0] if "://" in uri else ""
    if scheme in ("", "file") and uri not in ("databricks", "databricks-uc"):
        raise ConfigError(
            f"MLflow tracking URI {uri!r} is a file store, which provlink cannot link runs and "
            "model versions in; move it to a database with `mlflow migrate-filestore` and set "
            "MLFLOW_TRACKING_URI to e.g. sqlite:///mlflow.db"
        )


def model_dataset_name(name: str, version: str | int) -> str:
    return f"{MODELS_PREFIX}{name}/{version}"


def lineage_link(base_url: str, namespace: str, name: str) -> str:
    """The lineage page of a dataset on ``provlink serve`` (``/?nodeId=dataset:<ns>:<name>``)."""
    return f"{base_url.rstrip('/')}/?nodeId={quote(f'dataset:{namespace}:{name}', safe='')}"


def model_id_of(version: ModelVersion) -> str | None:
    """The LoggedModel behind a version: its own field, or its ``models:/<model_id>`` source."""
    if getattr(version, "model_id", None):
        return str(version.model_id)
    source = version.source or ""
    if source.startswith("models:/m-") and source.count("/") == 1:
        return source.removeprefix("models:/")
    return None


def model_artifact_dir(client: MlflowClient, version: ModelVersion) -> str | None:
    """The local directory holding the version's artifacts; None for a remote store."""
    try:
        uri = client.get_model_version_download_uri(version.name, str(version.version))
    except Exception:  # noqa: BLE001 - an unknown location only loses the manifest
        log.debug("provlink: no artifact location for %s/%s", version.name, version.version,
                  exc_info=True)
        return None
    path = local_path(uri)
    return os.path.realpath(path) if path and os.path.isdir(path) else None


def local_path(uri: str | None) -> str | None:
    """The filesystem path of a ``file:`` URI or absolute path; None for anything remote."""
    if not uri:
        return None
    if uri.startswith("file:"):
        return unquote(urlsplit(uri).path) or None
    return uri if uri.startswith("/") else None


def model_version_dataset(version: ModelVersion, tracking_uri: str, *,
                          artifact_dir: str | None = None,
                          max_bytes: int = DEFAULT_MAX_BYTES) -> DatasetRef:
    """A model version as an OpenLineage dataset with the ``mlflow_model_version`` facet,
    including the manifest of its artifacts when ``artifact_dir`` (see
    :func:`model_artifact_dir`) is given."""
    namespace = tracking_namespace(tracking_uri)
    manifest = None
    if artifact_dir is not None:
        try:
            manifest = directory_manifest(artifact_dir, max_bytes=max_bytes)
        except OSError:
            log.warning("provlink: could not read the artifacts of %s/%s at %s",
                        version.name, version.version, artifact_dir, exc_info=True)
    facet = ours(MlflowModelVersionDatasetFacet(
        name=version.name, version=str(version.version), trackingUri=namespace,
        runId=version.run_id or None, modelId=model_id_of(version), source=version.source,
        aliases=sorted(getattr(version, "aliases", None) or []),
        artifactDigest=manifest.digest if manifest else None,
        artifactManifest=manifest.as_dict() if manifest else None,
    ))
    return DatasetRef(namespace=namespace, name=model_dataset_name(version.name, version.version),
                      version=str(version.version), data_source=version.source or None,
                      facets={MODEL_VERSION: facet})


def registered_versions(client: MlflowClient, run_ids: Iterable[str]) -> list[ModelVersion]:
    """Every model version registered from these runs (one query per 100 runs)."""
    ids = sorted(set(run_ids))
    found: list[ModelVersion] = []
    for start in range(0, len(ids), 100):
        quoted = ", ".join(f"'{run_id}'" for run_id in ids[start:start + 100])
        token = None
        while True:
            page = client.search_model_versions(f"run_id IN ({quoted})", page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
    return sorted(found, key=lambda v: (v.name, int(v.version)))


def tag_versions(client: MlflowClient, versions: Iterable[ModelVersion], point: CapturePoint,
                 tracking_uri: str) -> None:
    """Write the capture point's ids on each version, and on each registered model the ids
    of its newest version registered here."""
    namespace = tracking_namespace(tracking_uri)
    base_url = point.runtime.config.lineage_url
    registry = _tag_writer(client)
    newest: dict[str, tuple[int, dict[str, str]]] = {}
    for version in versions:
        tags = {
            TAG_RUN_ID: point.run_id,
            TAG_JOB_NAMESPACE: point.job.namespace,
            TAG_JOB_NAME: point.job.name,
            TAG_LINEAGE_URL: lineage_link(
                base_url, namespace, model_dataset_name(version.name, version.version)),
        }
        for key, value in tags.items():
            if version.tags.get(key) != value:
                registry.set_model_version_tag(version.name, str(version.version), key, value)
        point.state.setdefault(STATE_TAGGED, []).append(
            (tracking_uri, version.name, str(version.version)))
        number = int(version.version)
        if number >= newest.get(version.name, (-1, {}))[0]:
            newest[version.name] = (number, {**tags, TAG_MODEL_VERSION: str(number)})
    for name, (_, tags) in newest.items():
        for key, value in tags.items():
            registry.set_registered_model_tag(name, key, value)


def tag_ledger_entry(point: CapturePoint, entry: str) -> None:
    """Anchor every version tagged above in the ledger: the leaf of the terminal event that
    registered it and the checkpoint covering that leaf (``provlink.ledger.*``, see
    :mod:`provlink.governance.anchors`), so ``provlink verify --registry`` can check the
    registry and the log against each other."""
    from provlink.governance.anchors import anchor_tags

    checkpoint = getattr(point, "checkpoint", None)
    leaf = getattr(point, "ledger_leaf", None)
    tags = ({TAG_LEDGER_ENTRY: entry} if checkpoint is None or leaf is None
            else anchor_tags(leaf, entry, checkpoint.note))
    from mlflow import MlflowClient

    for tracking_uri, name, version in point.state.get(STATE_TAGGED, ()):
        registry = _tag_writer(MlflowClient(tracking_uri=tracking_uri))
        for key, value in tags.items():
            registry.set_model_version_tag(name, version, key, value)


def _tag_writer(client: MlflowClient) -> Any:
    """MlflowClient's registry client, or the client itself if a later MLflow drops it.

    The public ``set_*_tag`` first fetch the whole registered model to refuse prompts (every
    version, alias and tag: ~20 ms each on SQLite); these are models we just found as
    versions, so that check is skipped.
    """
    return _compat.registry_client(client)


def logged_dataset(dataset_input: DatasetInput, tracking_uri: str) -> DatasetRef:
    """An ``mlflow.log_input`` dataset as an OpenLineage input, named after its source.

    A dataset with a URI source (a file, ``s3://``, ``https://``) gets that source's name, so
    it joins the node file capture or other integrations made; one built in code gets
    ``datasets/<name>`` in the tracking namespace, versioned by MLflow's digest.
    """
    ds = dataset_input.dataset
    source = _json_object(ds.source)
    uri = next((str(source[k]) for k in ("uri", "url", "path") if source.get(k)), None)
    namespace, name = dataset_identity(uri) if uri else (
        tracking_namespace(tracking_uri), f"datasets/{ds.name}")
    columns = _json_object(ds.schema).get("mlflow_colspec") or []
    rows = _json_object(ds.profile).get("num_rows")
    return DatasetRef(
        namespace=namespace, name=name, version=ds.digest or None, data_source=uri,
        schema=tuple(SchemaField(name=str(c.get("name")), type=c.get("type"))
                     for c in columns if isinstance(c, Mapping) and c.get("name")),
        row_count=rows if isinstance(rows, int) else None,
    )


def dataset_summary(dataset_input: DatasetInput, ref: DatasetRef) -> dict[str, Any]:
    """What the ``mlflow`` run facet says about one logged dataset."""
    ds = dataset_input.dataset
    context = next((t.value for t in dataset_input.tags or () if t.key == "mlflow.data.context"),
                   None)
    out = {"name": ds.name, "digest": ds.digest, "sourceType": ds.source_type,
           "context": context, "lineage": {"namespace": ref.namespace, "name": ref.name}}
    return {k: v for k, v in out.items() if v is not None}


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- models loaded by URI -------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelLoad:
    """A ``models:/`` URI resolved to a version while a capture point was active."""

    tracking_uri: str
    registry_uri: str
    name: str
    version: str
    alias: str | None = None


def install_load_hook() -> None:
    """Note every ``models:/`` URI MLflow resolves, whatever flavor loads it.

    Every flavor's ``load_model`` (and ``mlflow.artifacts.download_artifacts``) resolves a
    registry URI through ``ModelsArtifactRepository``, which MLflow has no hook for, so its
    constructor is wrapped once per process.
    """
    _compat.on_models_uri(_note_load)
    _compat.on_models_download(_note_download)


def _note_load(resolved: _compat.ModelsUri) -> None:
    import mlflow

    try:
        point = current_point()
        name, version = resolved.name, resolved.version
        if point is None or not name or version is None:
            return
        head = resolved.artifact_uri.removeprefix("models:/").split("/", 1)[0]
        alias = head.rpartition("@")[2] if "@" in head else None
        load = ModelLoad(tracking_uri=mlflow.get_tracking_uri(),
                         registry_uri=resolved.registry_uri or mlflow.get_registry_uri(),
                         name=str(name), version=str(version), alias=alias)
        loads = point.state.setdefault(STATE_MODEL_LOADS, [])
        if load not in loads:
            loads.append(load)
    except Exception:  # noqa: BLE001 - never fail the user's load_model
        log.warning("provlink: could not record a model load", exc_info=True)


def _note_download(local: Any) -> None:
    """Where MLflow put a registered model's files for this load (a copy, or with a local
    store the artifact directory itself): they are the model version, not datasets."""
    try:
        point = current_point()
        if point is not None and isinstance(local, str) and os.path.isabs(local):
            dirs = point.state.setdefault(STATE_MODEL_DIRS, set())
            dirs.add(os.path.realpath(local))
    except Exception:  # noqa: BLE001 - never fail the user's load_model
        log.warning("provlink: could not record a model download", exc_info=True)


def loaded_model_dataset(load: ModelLoad, *, max_bytes: int = DEFAULT_MAX_BYTES
                         ) -> tuple[DatasetRef, str | None]:
    """The input dataset of a loaded model version, with its registry facts, and the local
    directory of its artifacts (None when remote)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=load.tracking_uri, registry_uri=load.registry_uri)
    version = client.get_model_version(load.name, load.version)
    artifact_dir = model_artifact_dir(client, version)
    ref = model_version_dataset(version, load.tracking_uri, artifact_dir=artifact_dir,
                                max_bytes=max_bytes)
    return ref, artifact_dir
