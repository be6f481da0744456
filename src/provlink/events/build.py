"""CaptureRecord -> OpenLineage RunEvent (spec 2-0-2), standard facets first.

Built with openlineage-python's classes and serialised with its ``Serde`` so the output is
exactly what its transports would send; the result is a plain ``dict`` ready for redaction
and the spool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    execution_parameters_run,
    input_statistics_input_dataset,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    source_code_location_job,
    symlinks_dataset,
    tags_run,
)
from openlineage.client.serde import Serde

from provlink._version import PRODUCER, __version__
from provlink.events import facets as custom
from provlink.events.model import (
    Actor,
    CaptureRecord,
    CodeVersion,
    DatasetRef,
    EnvironmentInfo,
)


def to_event(record: CaptureRecord) -> dict[str, Any]:
    """Build the OpenLineage RunEvent for one record, as a JSON-ready dict.

    Parameters are serialised whole: redaction runs on the full text and only then
    :func:`cap_parameters` cuts long values (a cut JSON text no longer parses, and a
    key-based mask inside it would be lost).
    """
    event = RunEvent(
        eventType=RunState(record.event_type.value),
        eventTime=_iso(record.event_time),
        run=Run(runId=record.run_id, facets=_run_facets(record)),
        job=Job(namespace=record.job.namespace, name=record.job.name,
                facets=dict(record.job_facets)),
        inputs=[_input(d) for d in record.inputs],
        outputs=[_output(d) for d in record.outputs],
        producer=PRODUCER,
    )
    out = Serde.to_dict(event)
    # the record's own facets win over ours of the same name
    _merge(out["run"].setdefault("facets", {}), _process_run_facets(record))
    owner = record.actor.owner if record.actor is not None else None
    _merge(out["job"].setdefault("facets", {}), _static(("job", record.kind, record.code, owner),
                                                        lambda: _job_facets(record)))
    return out


def _merge(facets: dict[str, Any], ours: dict[str, Any]) -> None:
    for name, facet in ours.items():
        facets.setdefault(name, facet)


_STATIC: dict[tuple[Any, ...], str] = {}


def _static(key: tuple[Any, ...], build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Facets that stay the same for every event of a process (environment, code, job
    type): built with openlineage-python's classes once per value, then handed out as fresh
    copies (a JSON round trip, since later steps edit events in place). They were half the
    cost of building an event."""
    text = _STATIC.get(key)
    if text is None:
        if len(_STATIC) >= 64:
            _STATIC.clear()
        text = json.dumps({name: Serde.to_dict(facet) for name, facet in _ours(build()).items()})
        _STATIC[key] = text
    facets: dict[str, Any] = json.loads(text)
    return facets


def _process_run_facets(record: CaptureRecord) -> dict[str, Any]:
    env, code = record.environment, record.code
    facets: dict[str, Any] = {}
    if env is not None:
        key = ("env", env.python_version, env.platform, env.orchestrator,
               env.orchestrator_version, env.packages_digest, tuple(sorted(env.packages.items())),
               env.host, env.container_image)
        facets.update(_static(key, lambda: _environment_facets(env)))
    if code is not None:
        facets.update(_static(("code", code), lambda: {custom.CODE: _code_run_facet(code)}))
    return facets


def _ours(facets: dict[str, Any]) -> dict[str, Any]:
    """Every facet of ``facets`` named as provlink's (:func:`provlink.events.facets.ours`)."""
    return {name: custom.ours(facet) for name, facet in facets.items()}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def cap_parameters(event: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """Cut ``executionParameters`` values longer than ``max_chars`` (after redaction)."""
    facet = event.get("run", {}).get("facets", {}).get("executionParameters")
    for parameter in (facet or {}).get("parameters") or ():
        text = parameter.get("value")
        if isinstance(text, str) and len(text) > max_chars:
            parameter["value"] = text[:max_chars] + f"...[truncated {len(text) - max_chars} chars]"
    return event


def _run_facets(record: CaptureRecord) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if record.parent is not None:
        p = record.parent
        root = None
        if p.root_job is not None and p.root_run_id is not None:
            root = parent_run.Root(
                run=parent_run.RootRun(runId=p.root_run_id),
                job=parent_run.RootJob(namespace=p.root_job.namespace, name=p.root_job.name),
            )
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=p.run_id),
            job=parent_run.Job(namespace=p.job.namespace, name=p.job.name),
            root=root,
        )
    if record.parameters:
        facets["executionParameters"] = execution_parameters_run.ExecutionParametersRunFacet(
            parameters=[
                execution_parameters_run.ExecutionParameter(key=k, value=_param_text(v))
                for k, v in sorted(record.parameters.items())
            ]
        )
    if record.nominal_start is not None:
        facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=_iso(record.nominal_start),
            nominalEndTime=_iso(record.nominal_end) if record.nominal_end else None,
        )
    if record.error is not None:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=record.error.message,
            programmingLanguage=record.error.language,
            stackTrace=record.error.stack_trace,
        )
    if record.mlflow_runs:
        facets[custom.MLFLOW] = custom.MlflowRunsRunFacet(
            runs=[_mlflow_run(link) for link in record.mlflow_runs]
        )
    if record.actor is not None and _known(record.actor):
        facets[custom.ACTOR] = _actor_run_facet(record.actor)
    if record.tags:
        facets["tags"] = tags_run.TagsRunFacet(
            tags=[tags_run.TagsRunFacetFields(key=k, value=str(v), source="PROVLINK")
                  for k, v in sorted(record.tags.items())]
        )
    return {**_ours(facets), **record.run_facets}


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=repr, sort_keys=True)


def _environment_facets(env: EnvironmentInfo) -> dict[str, Any]:
    return {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=env.orchestrator_version or env.python_version,
            name=env.orchestrator,
            openlineageAdapterVersion=__version__,
        ),
        custom.ENVIRONMENT: custom.ProvlinkEnvironmentRunFacet(
            pythonVersion=env.python_version,
            platform=env.platform,
            host=env.host,
            containerImage=env.container_image,
            packagesDigest=env.packages_digest,
            packages=dict(env.packages),
        ),
    }


def _code_run_facet(code: CodeVersion) -> custom.ProvlinkCodeRunFacet:
    return custom.ProvlinkCodeRunFacet(
        type=code.vcs, commit=code.commit, dirty=code.dirty, branch=code.branch,
        repoUrl=code.repo_url, path=code.path,
    )


def _known(actor: Actor) -> bool:
    return any(v is not None for v in (actor.user, actor.triggered_by, actor.trigger,
                                       actor.run_type, actor.owner, actor.os_user))


def _actor_run_facet(actor: Actor) -> custom.ProvlinkActorRunFacet:
    return custom.ProvlinkActorRunFacet(
        user=actor.user, triggeredBy=actor.triggered_by, trigger=actor.trigger,
        runType=actor.run_type, owner=actor.owner, osUser=actor.os_user,
        sources=dict(sorted(actor.sources.items())),
    )


def _owners(owner: str) -> list[str]:
    """A comma-separated owner (Airflow's ``owner="a, b"``) as a list, as the Airflow
    OpenLineage provider splits it for the ``ownership`` facet."""
    return [name.strip() for name in owner.split(",") if name.strip()]


def _mlflow_run(link: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "runId": link.run_id,
        "experimentId": link.experiment_id,
        "trackingUri": link.tracking_uri,
        "runName": link.run_name,
        "status": link.status,
        "parentRunId": link.parent_run_id,
        "params": dict(link.params),
        "metrics": dict(link.metrics),
        "modelIds": list(link.model_ids),
        "registeredModels": list(link.registered_models),
        "datasetInputs": [dict(d) for d in link.dataset_inputs] or None,
        "user": link.user,
    }
    return {k: v for k, v in out.items() if v is not None}


def _job_facets(record: CaptureRecord) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType=record.kind.processing_type,
            integration=record.kind.integration,
            jobType=record.kind.job_type,
        )
    }
    if record.actor is not None and record.actor.owner:
        facets["ownership"] = ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name=name) for name in _owners(record.actor.owner)])
    code = record.code
    url = Path(code.path).absolute().as_uri() if code and code.path else code and code.repo_url
    if code is not None and code.commit and url:
        # ``url`` is where the code ran from (a URI, as the schema asks), ``repoUrl`` the
        # repository it came from: a remote is not the location of the file.
        facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
            type=code.vcs,
            url=url,
            repoUrl=code.repo_url,
            path=code.path,
            version=code.commit,
            branch=code.branch,
        )
    return facets


def _dataset_facets(d: DatasetRef) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if d.schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(
                name=f.name, type=f.type, description=f.description) for f in d.schema]
        )
    if d.version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=d.version
        )
    if d.data_source:
        facets["dataSource"] = datasource_dataset.DatasourceDatasetFacet(
            name=d.namespace, uri=d.data_source
        )
    if d.symlinks:
        facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[
                symlinks_dataset.Identifier(namespace=s.namespace, name=s.name, type=s.type)
                for s in d.symlinks
            ]
        )
    return {**_ours(facets), **d.facets}


def _statistics(d: DatasetRef, key: str, facet_class: Any) -> dict[str, Any]:
    """``inputStatistics``/``outputStatistics`` when the row count or size is known."""
    if d.row_count is None and d.size_bytes is None:
        return {}
    return _ours({key: facet_class(rowCount=d.row_count, size=d.size_bytes)})


def _input(d: DatasetRef) -> InputDataset:
    stats = _statistics(d, "inputStatistics",
                        input_statistics_input_dataset.InputStatisticsInputDatasetFacet)
    return InputDataset(namespace=d.namespace, name=d.name, facets=_dataset_facets(d),
                        inputFacets={**stats, **d.input_facets})


def _output(d: DatasetRef) -> OutputDataset:
    stats = _statistics(d, "outputStatistics",
                        output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet)
    return OutputDataset(namespace=d.namespace, name=d.name, facets=_dataset_facets(d),
                         outputFacets={**stats, **d.output_facets})
