"""``provlink trace`` and ``provlink models`` (``verify`` is in :mod:`provlink.cli.ledger`).

The lineage backend is ``--url``, else ``lineage_url`` from provlink's config
(``PROVLINK_LINEAGE_URL``, ``provlink.yml``), else ``http://127.0.0.1:5000``; a keyed
``provlink serve`` is sent ``lineage_api_key`` (``PROVLINK_LINEAGE_API_KEY``). The MLflow
registry is MLflow's own configuration (``MLFLOW_TRACKING_URI``, ``--tracking-uri``).
MLflow is imported only by the commands that read the registry.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from provlink.cli.config import load_config
from provlink.errors import LineageQueryError
from provlink.governance.clients import lineage_api, witness_client
from provlink.governance.trace import (
    LineageApi,
    Trace,
    TracedRun,
    dataset_identity,
    models_downstream,
    parse_model_uri,
    trace,
)
from provlink.governance.witness_client import WitnessClient


def register(subparsers: Any) -> None:
    """Add the governance subcommands to the ``provlink`` parser."""
    p = subparsers.add_parser("trace", help="everything upstream of a registered model version")
    p.add_argument("model", help="models:/<name>/<version> or models:/<name>@<alias>")
    p.add_argument("--namespace", help="the model's lineage namespace (default: from the "
                                       "MLflow tracking URI)")
    _common(p, registry=True)
    p.set_defaults(func=cmd_trace)

    p = subparsers.add_parser("models", help="model versions built from a dataset")
    p.add_argument("dataset", help="a local path, a URI such as s3://bucket/key, or a name "
                                   "with --namespace")
    p.add_argument("--namespace")
    p.add_argument("--depth", type=int, default=20)
    _common(p, registry=False)
    p.set_defaults(func=cmd_models)


def _common(parser: argparse.ArgumentParser, *, registry: bool) -> None:
    parser.add_argument("--url", help="lineage backend (Marquez API) base URL")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    if registry:
        parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's)")


def _api(args: argparse.Namespace) -> LineageApi:
    """The backend at ``--url`` (else ``lineage_url``), with the configured client key."""
    return lineage_api(load_config(), args.url)


def _witness(args: argparse.Namespace) -> WitnessClient:
    """The backend as witness (``provlink serve`` is one), with the configured client key."""
    return witness_client(load_config(), args.url)


def _mlflow_client(args: argparse.Namespace) -> tuple[Any, str]:
    try:
        import mlflow
    except ImportError as exc:
        raise LineageQueryError("reading the model registry needs MLflow: "
                                "pip install 'provlink[mlflow]'") from exc
    from provlink.mlflow.registry import check_tracking_store

    uri = args.tracking_uri or mlflow.get_tracking_uri()
    check_tracking_store(uri)
    return mlflow.MlflowClient(tracking_uri=uri), uri


# -- trace ---------------------------------------------------------------------------------
def cmd_trace(args: argparse.Namespace) -> int:
    name, version, alias = parse_model_uri(args.model)
    tags: dict[str, str] = {}
    namespace = args.namespace
    if alias is not None or namespace is None:
        from mlflow.exceptions import MlflowException

        from provlink.tracking_uri import tracking_namespace

        client, uri = _mlflow_client(args)
        try:
            found = (client.get_model_version_by_alias(name, alias) if alias is not None
                     else client.get_model_version(name, str(version)))
        except MlflowException as exc:
            raise LineageQueryError(f"{args.model}: not in the MLflow registry at {uri} "
                                    f"({exc.message})") from exc
        version, tags = str(found.version), dict(found.tags)
        namespace = namespace or tracking_namespace(uri)
    result = trace(_api(args), namespace=namespace, name=name, version=str(version),
                   registry_tags=tags)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=list))
    else:
        print("\n".join(render_trace(result)))
    return 0


def render_trace(result: Trace) -> Iterator[str]:
    """The trace as an indented tree: each run under what it wrote, its inputs under it."""
    yield f"{result.model}  ({result.namespace} {result.dataset})"
    for key, value in sorted(result.registry_tags.items()):
        if key.startswith("openlineage."):
            yield f"  registry tag {key} = {value}"
    for tag, names in result.inherited_tags().items():
        yield f"  tag {tag} (inherited from {', '.join(names)})"
    runs = {run.run_id: run for run in result.runs}
    by_key = {(d.namespace, d.name): d for d in result.datasets}
    model = by_key.get((result.namespace, result.dataset))
    seen: set[str] = set()

    def walk_run(run_id: str | None, indent: str) -> Iterator[str]:
        run = runs.get(run_id or "")
        if run is None:
            return
        yield f"{indent}└─ job {run.job_namespace}/{run.job_name}  run {run.run_id}  {run.state}"
        if run.run_id in seen:
            yield f"{indent}   (see above)"
            return
        seen.add(run.run_id)
        yield from _run_details(run, indent + "   ")
        for namespace, name in run.inputs:
            dataset = by_key.get((namespace, name))
            digest = f"  {dataset.digest}" if dataset and dataset.digest else ""
            tags = f"  [{', '.join(dataset.tags)}]" if dataset and dataset.tags else ""
            yield f"{indent}   ├─ dataset {namespace} {name}{digest}{tags}"
            if dataset is not None:
                yield from walk_run(dataset.produced_by, indent + "   │  ")

    yield from walk_run(model.produced_by if model else None, "")


def _run_details(run: TracedRun, indent: str) -> Iterator[str]:
    yield f"{indent}ran by: {run.who()}"
    if run.parameters:
        yield f"{indent}parameters: " + ", ".join(f"{k}={v}" for k, v in run.parameters.items())
    if run.code:
        code = run.code
        dirty = " (local edits)" if code.get("dirty") else ""
        where = code.get("repoUrl") or code.get("path") or code.get("url") or ""
        commit = code.get("commit") or code.get("version") or "?"
        yield f"{indent}code: {code.get('type', 'git')} {commit}{dirty} {where}".rstrip()
    for mlflow_run in run.mlflow_runs:
        params = ", ".join(f"{k}={v}" for k, v in (mlflow_run.get("params") or {}).items())
        metrics = ", ".join(f"{k}={v}" for k, v in (mlflow_run.get("metrics") or {}).items())
        yield (f"{indent}mlflow run {mlflow_run.get('runId')}"
               + (f"  by {mlflow_run['user']}" if mlflow_run.get("user") else "")
               + (f"  params {params}" if params else "")
               + (f"  metrics {metrics}" if metrics else ""))


# -- models --------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    namespace, name = dataset_identity(args.dataset, args.namespace)
    found = models_downstream(_api(args), namespace, name, depth=args.depth)
    if args.json:
        print(json.dumps([asdict(m) for m in found], indent=2))
        return 0
    print(f"{namespace} {name}")
    for model in found:
        jobs = [node.removeprefix("job:") for node in model.path if node.startswith("job:")]
        print(f"└─ {model.model}  ({model.namespace})  via {' → '.join(jobs)}")
    if not found:
        print("   no model version was built from it")
    return 0


def _all_versions(client: Any, model: str | None) -> Iterator[Any]:
    token = None
    filter_string = f"name = '{model}'" if model else None
    while True:
        page = client.search_model_versions(filter_string, page_token=token)
        yield from page
        token = page.token
        if not token:
            return

