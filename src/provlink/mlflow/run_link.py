"""The capture-point extension that links MLflow runs and model versions into lineage.

The core loads this module (``EXTENSION``) only once ``mlflow`` is imported. At the end of a
capture point it finds the MLflow runs :mod:`provlink.mlflow.context` tagged — by tag, in
every experiment, so runs from threads, nested runs and runs whose ``with`` block already
ended are all found — and records their params, metrics, logged datasets (as inputs),
LoggedModels and the model versions registered from them (as outputs, tagged with the
capture point's ids). Models loaded by ``models:/`` URI become inputs. Each model version is
one node: files captured under its artifact directory (or where MLflow downloaded it) are
folded into it, and its facet carries their manifest.

Example::

    with provlink.capture("train"):
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", registered_model_name="churn")
    # COMPLETE: output dataset models/churn/<n> in the tracking URI's namespace
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from provlink.events.model import MlflowRunLink
from provlink.mlflow.context import (
    STATE_ADOPT_ACTIVE_RUN,
    STATE_TRACKING_URIS,
    TAG_RUN_ID,
    note_tracking_uri,
)
from provlink.mlflow.registry import (
    STATE_MODEL_DIRS,
    STATE_MODEL_LOADS,
    ModelLoad,
    check_tracking_store,
    dataset_summary,
    install_load_hook,
    loaded_model_dataset,
    local_path,
    logged_dataset,
    model_artifact_dir,
    model_version_dataset,
    registered_versions,
    tag_ledger_entry,
    tag_versions,
)
from provlink.tracking_uri import tracking_namespace

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from provlink.capturing.point import CapturePoint

log = logging.getLogger(__name__)

STATE_ADOPTED = "mlflow.adopted_runs"


class MlflowExtension:
    """Hooks MLflow into capture points; see the module docstring."""

    def on_start(self, point: CapturePoint) -> None:
        from provlink.mlflow.registry_actions import install_registry_hook

        install_load_hook()
        install_registry_hook()
        _adopt_active_run(point)

    def on_finish(self, point: CapturePoint) -> None:
        _adopt_active_run(point)
        link_point(point)

    def after_emit(self, point: CapturePoint) -> None:
        """Tag the versions registered here with the ledger entry of the event naming them."""
        if point.ledger_entry is not None:
            tag_ledger_entry(point, point.ledger_entry)


EXTENSION = MlflowExtension()


def _adopt_active_run(point: CapturePoint) -> None:
    """A run already active in this thread (started before the capture point, e.g. by
    dagster-mlflow's resource, or resumed by run id) carries no tags of ours: link it by id."""
    if not point.state.get(STATE_ADOPT_ACTIVE_RUN, True):
        return
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.data.tags.get(TAG_RUN_ID) != point.run_id:
        uri = mlflow.get_tracking_uri()
        point.state.setdefault(STATE_ADOPTED, set()).add((uri, active.info.run_id))
        note_tracking_uri(point, uri)


def link_point(point: CapturePoint) -> None:
    """Add the capture point's MLflow runs, model versions and loaded models to it."""
    adopted: set[tuple[str, str]] = point.state.get(STATE_ADOPTED, set())
    for uri in sorted(point.state.get(STATE_TRACKING_URIS, ())):
        link_runs(point, uri, adopted={run_id for u, run_id in adopted if u == uri})
    loads: list[ModelLoad] = point.state.get(STATE_MODEL_LOADS, [])
    model_dirs: set[str] = point.state.setdefault(STATE_MODEL_DIRS, set())
    for load in loads:
        ref, artifact_dir = loaded_model_dataset(
            load, max_bytes=point.runtime.config.digest_max_bytes)
        point.add_input(ref)
        if artifact_dir is not None:
            model_dirs.add(artifact_dir)
    _fold_model_files(point, model_dirs)


def _fold_model_files(point: CapturePoint, model_dirs: set[str]) -> None:
    """Files under a model version's artifact directory are that version, already in the
    event as one dataset with their manifest: drop them as separate datasets."""
    if not model_dirs:
        return
    for table in (point.inputs, point.outputs):
        for key in [k for k in table if k[0] == "file" and _under(k[1], model_dirs)]:
            del table[key]


def link_runs(point: CapturePoint, tracking_uri: str, *, adopted: set[str] | None = None) -> None:
    """Find this capture point's runs in one tracking store and record what they made."""
    from mlflow import MlflowClient

    check_tracking_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    runs = {run.info.run_id: run for run in find_runs(client, point.run_id)}
    adopted_ids = set(adopted or ()) - set(runs)
    for run_id in sorted(adopted_ids):
        runs[run_id] = client.get_run(run_id)
    if not runs:
        return
    started_ms = int(point.started_at.timestamp() * 1000) if point.started_at else 0
    versions = [
        v for v in registered_versions(client, runs)
        # an adopted run can outlive this capture point: claim only what was registered now
        if v.run_id not in adopted_ids or (v.creation_timestamp or 0) >= started_ms
    ]
    for run in runs.values():
        point.add_mlflow_run(_run_link(point, run, tracking_uri, versions))
    model_dirs: set[str] = point.state.setdefault(STATE_MODEL_DIRS, set())
    for version in versions:
        artifact_dir = model_artifact_dir(client, version)
        point.add_output(model_version_dataset(
            version, tracking_uri, artifact_dir=artifact_dir,
            max_bytes=point.runtime.config.digest_max_bytes))
        if artifact_dir is not None:
            model_dirs.add(artifact_dir)
    tag_versions(client, versions, point, tracking_uri)
    _drop_mlflow_files(point, client, runs.values(), tracking_uri)


def _drop_mlflow_files(point: CapturePoint, client: MlflowClient, runs: Iterable[Run],
                       tracking_uri: str) -> None:
    """File capture saw MLflow write its artifacts and tracking DB; those are the runs and
    model versions already in the event, so the files themselves are noise in the graph."""
    roots = {
        os.path.realpath(path)
        for exp_id in {run.info.experiment_id for run in runs}
        if (path := local_path(client.get_experiment(exp_id).artifact_location))
    }
    if db := local_path(tracking_uri.removeprefix("sqlite:").removeprefix("//")):
        roots |= {os.path.realpath(db) + suffix for suffix in ("", "-wal", "-shm", "-journal")}
    for table in (point.inputs, point.outputs):
        for key in [k for k in table if k[0] == "file" and _under(k[1], roots)]:
            del table[key]


def _under(path: str, roots: set[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def find_runs(client: MlflowClient, lineage_run_id: str) -> list[Run]:
    """Every run, in every experiment (deleted ones too), tagged with this capture point."""
    from mlflow.entities import ViewType

    experiment_ids: list[str] = []
    token = None
    while True:
        experiments = client.search_experiments(view_type=ViewType.ALL, page_token=token)
        experiment_ids.extend(e.experiment_id for e in experiments)
        token = experiments.token
        if not token:
            break
    runs: list[Run] = []
    token = None
    while experiment_ids:
        page = client.search_runs(experiment_ids, f"tags.`{TAG_RUN_ID}` = '{lineage_run_id}'",
                                  run_view_type=ViewType.ALL, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


def _run_link(point: CapturePoint, run: Run, tracking_uri: str,
              versions: Sequence[ModelVersion]) -> MlflowRunLink:
    summaries = []
    for dataset_input in run.inputs.dataset_inputs if run.inputs else ():
        ref = logged_dataset(dataset_input, tracking_uri)
        if ref.key not in point.inputs:  # file capture's own digest of the same file wins
            point.add_input(ref)
        summaries.append(dataset_summary(dataset_input, ref))
    outputs = run.outputs.model_outputs if run.outputs else []
    return MlflowRunLink(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        tracking_uri=tracking_namespace(tracking_uri),
        run_name=run.info.run_name,
        status=run.info.status,
        parent_run_id=run.data.tags.get("mlflow.parentRunId"),
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        model_ids=tuple(sorted({o.model_id for o in outputs})),
        registered_models=tuple(f"{v.name}/{v.version}" for v in versions
                                if v.run_id == run.info.run_id),
        dataset_inputs=tuple(summaries),
        user=run.data.tags.get("mlflow.user") or run.info.user_id or None,
    )
