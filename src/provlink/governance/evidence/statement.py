"""The in-toto Statement v1 of an evidence bundle and its provlink lineage predicate.

Subjects are the model version's artifact files with their SHA-256, named by their path
inside the artifact directory — what OpenSSF model-signing hashes for a model directory.
The predicate (``PREDICATE_TYPE``; JSON Schema ``lineage-predicate.schema.json`` next to
this module and in ``docs/evidence-predicate.md``) follows SLSA Provenance v1 where they
overlap: run parameters are ``externalParameters``; input datasets with digests and the
code commits are ``resolvedDependencies``; the runs, their orchestrator and times are
``runDetails``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from provlink._version import __version__
from provlink.governance.trace import MODELS_PREFIX, Trace, TracedRun

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://provlink.dev/evidence/lineage/v1"
BUILD_TYPE = "https://provlink.dev/evidence/lineage/v1/pipeline"


@cache
def predicate_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("lineage-predicate.schema.json").read_text()
    return dict(json.loads(text))


def subjects(artifacts: Mapping[str, str]) -> list[dict[str, Any]]:
    """``{relative path: sha256 hex}`` → in-toto subjects, sorted by name."""
    return [{"name": path, "digest": {"sha256": digest}}
            for path, digest in sorted(artifacts.items())]


def statement(*, artifacts: Mapping[str, str], predicate: Mapping[str, Any]) -> dict[str, Any]:
    return {"_type": STATEMENT_TYPE, "subject": subjects(artifacts),
            "predicateType": PREDICATE_TYPE, "predicate": dict(predicate)}


def predicate(result: Trace, *, model_record: Mapping[str, Any] | None,
              aliases: Sequence[str], manifest_sha256: str, created_at: str,
              ledger: Mapping[str, Any],
              promotions: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    name, _, number = result.dataset.removeprefix(MODELS_PREFIX).rpartition("/")
    producer = result.runs[0] if result.runs else None
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {_job(r): dict(r.parameters) for r in result.runs
                                   if r.parameters},
            "internalParameters": {"environments": {_job(r): _environment(r)
                                                    for r in result.runs if _environment(r)}},
            "resolvedDependencies": _dependencies(result),
        },
        "runDetails": {
            "builder": {"id": f"https://provlink.dev/orchestrator/{_engine(producer)}",
                        "version": {"provlink": __version__}},
            "metadata": {"invocationId": producer.run_id if producer else "",
                         "startedOn": producer.started_at if producer else None,
                         "finishedOn": producer.ended_at if producer else None},
            "byproducts": [{"name": f"mlflow-run:{m.get('runId')}",
                            "annotations": {"job": _job(r), "params": m.get("params") or {},
                                            "metrics": m.get("metrics") or {}}}
                           for r in result.runs for m in r.mlflow_runs],
        },
        "model": {"uri": result.model, "name": name, "version": number,
                  "namespace": result.namespace,
                  "registryTags": {k: str(v) for k, v in
                                   ((model_record or {}).get("tags") or {}).items()},
                  "aliases": list(aliases)},
        "promotions": [dict(move) for move in promotions],
        "runs": [_run(r) for r in result.runs],
        "datasets": [{"namespace": d.namespace, "name": d.name, "version": d.version,
                      "digest": d.digest, "producedBy": d.produced_by, "tags": list(d.tags)}
                     for d in result.datasets],
        "inheritedTags": {k: list(v) for k, v in result.inherited_tags().items()},
        "ledger": dict(ledger),
        "bundle": {"manifest": {"path": "manifest.json", "sha256": manifest_sha256},
                   "createdAt": created_at, "provlinkVersion": __version__},
    }


def _job(run: TracedRun) -> str:
    return f"{run.job_namespace}/{run.job_name}"


def _engine(run: TracedRun | None) -> str:
    engine = ((run.facets if run else {}).get("processing_engine") or {}).get("name")
    return str(engine or "python")


def _environment(run: TracedRun) -> dict[str, Any]:
    env = run.facets.get("provlink_environment") or {}
    return {k: v for k, v in env.items() if not k.startswith("_")}


def _run(run: TracedRun) -> dict[str, Any]:
    return {"runId": run.run_id, "job": _job(run), "state": run.state,
            "startedAt": run.started_at, "endedAt": run.ended_at,
            "orchestrator": _engine(run), "actor": dict(run.actor),
            "parameters": dict(run.parameters),
            "code": dict(run.code), "environment": _environment(run),
            "mlflowRuns": [str(m.get("runId")) for m in run.mlflow_runs],
            "inputs": [f"{ns} {n}" for ns, n in run.inputs],
            "outputs": [f"{ns} {n}" for ns, n in run.outputs]}


def _dependencies(result: Trace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for d in result.datasets:
        if (d.namespace, d.name) == (result.namespace, result.dataset):
            continue
        entry: dict[str, Any] = {"uri": _uri(d.namespace, d.name), "name": d.name,
                                 "annotations": {"namespace": d.namespace,
                                                 "version": d.version,
                                                 "producedBy": d.produced_by}}
        if d.digest and d.digest.startswith("sha256:"):
            entry["digest"] = {"sha256": d.digest.removeprefix("sha256:")}
        elif d.digest:
            entry["annotations"]["datasetVersion"] = d.digest
        if d.tags:
            entry["annotations"]["tags"] = list(d.tags)
        out.append(entry)
    seen = set()
    for run in result.runs:
        commit = run.code.get("commit") or run.code.get("version")
        if not commit or commit in seen:
            continue
        seen.add(commit)
        repo = run.code.get("repoUrl") or run.code.get("path") or ""
        out.append({"uri": f"git+{repo}@{commit}", "digest": {"gitCommit": str(commit)},
                    "annotations": {"dirty": run.code.get("dirty"), "job": _job(run)}})
    return out


def _uri(namespace: str, name: str) -> str:
    if namespace == "file":
        return f"file://{name}"
    return f"{namespace.rstrip('/')}/{name.lstrip('/')}"
