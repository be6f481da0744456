"""``impact``: what a dataset (or one version of it) reached downstream.

"Which models must be retrained, and which are serving": every downstream job, dataset and
model version, found version by version — the runs that read *this* version of the
dataset, the versions those runs wrote, the runs that read those — so a model trained on
an older version of the file is not named. Model versions are marked with the registry
aliases they hold now, and carry the dataset's tags (tags pass downstream).

It asks the backend for the table-level graph once (``/lineage``, which bounds the jobs
worth looking at) and then each downstream job's runs (``/jobs/{job}/runs``), which hold
the exact dataset versions read and written.

Example::

    report = impact(api, "file", "/data/train.csv", version="sha256:ab12…")
    [m.model for m in report.models]   # ['models:/churn/2']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from provlink.errors import LineageQueryError
from provlink.governance.registry_view import NoRegistry, RegistryView
from provlink.governance.tags import dataset_tags
from provlink.governance.trace import MODELS_PREFIX, LineageApi

VersionKey = tuple[str, str, str]  # namespace, name, backend version id
_PAGE = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetVersionUse:
    """One version of the dataset asked about and the runs that read it."""

    version: str
    digest: str | None
    created_at: str | None
    created_by: str | None
    read_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactedJob:
    namespace: str
    name: str
    runs: tuple[str, ...]
    first_started: str | None  # the time window of the affected runs
    last_ended: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactedDataset:
    namespace: str
    name: str
    versions: tuple[str, ...]
    written_by: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactedModel:
    model: str  # models:/<name>/<version>
    namespace: str
    registered_name: str
    version: str
    run_id: str | None
    created_at: str | None
    aliases: tuple[str, ...] = ()  # held now: these versions are serving
    tags: tuple[str, ...] = ()  # inherited from the dataset asked about

    @property
    def serving(self) -> bool:
        return bool(self.aliases)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactReport:
    namespace: str
    name: str
    tags: tuple[str, ...]
    versions: tuple[DatasetVersionUse, ...]
    jobs: tuple[ImpactedJob, ...] = ()
    datasets: tuple[ImpactedDataset, ...] = ()
    models: tuple[ImpactedModel, ...] = ()
    runs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # run id → run

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("runs")
        for model, data in zip(self.models, out["models"], strict=False):
            data["serving"] = model.serving
        return out


def impact(api: LineageApi, namespace: str, name: str, *, version: str | None = None,
           registry: RegistryView | None = None, depth: int = 20) -> ImpactReport:
    """Downstream of ``namespace``/``name``; only of ``version`` (a backend version id or
    a content digest such as ``sha256:…``, a unique prefix will do) when given."""
    registry = registry or NoRegistry()
    head = api.dataset(namespace, name)
    if head is None:
        raise LineageQueryError(f"the lineage backend at {api.base_url} has no dataset "
                                f"{name!r} in namespace {namespace!r}")
    all_versions = _all_dataset_versions(api, namespace, name)
    chosen = _choose(all_versions, version, namespace, name)
    start = f"dataset:{namespace}:{name}"
    graph = {node["id"]: node for node in api.lineage(start, depth)}
    jobs = _downstream_jobs(graph, start)
    consumers = _consumers(api, jobs)
    runs: dict[str, dict[str, Any]] = {}
    written: dict[tuple[str, str], dict[str, set[str]]] = {}
    read_by: dict[str, list[str]] = {v["version"]: [] for v in chosen}
    queue: deque[VersionKey] = deque((namespace, name, v["version"]) for v in chosen)
    seen: set[VersionKey] = set(queue)
    while queue:
        key = queue.popleft()
        for run in consumers.get(key, ()):
            if key[:2] == (namespace, name):
                read_by.setdefault(key[2], []).append(run["id"])
            if run["id"] in runs:
                continue
            runs[run["id"]] = run
            for out in run.get("outputDatasetVersions", []):
                vid = out["datasetVersionId"]
                okey = (vid["namespace"], vid["name"], vid["version"])
                entry = written.setdefault(okey[:2], {"versions": set(), "runs": set()})
                entry["versions"].add(okey[2])
                entry["runs"].add(run["id"])
                if okey not in seen:
                    seen.add(okey)
                    queue.append(okey)
    tags = dataset_tags(head)
    return ImpactReport(
        namespace=namespace, name=name, tags=tags,
        versions=tuple(DatasetVersionUse(
            version=v["version"], digest=_digest(v), created_at=v.get("createdAt"),
            created_by=(v.get("createdByRun") or {}).get("id"),
            read_by=tuple(dict.fromkeys(read_by.get(v["version"], ())))) for v in chosen),
        jobs=_jobs(runs.values()),
        datasets=tuple(ImpactedDataset(namespace=ns, name=n, versions=tuple(sorted(e["versions"])),
                                       written_by=tuple(sorted(e["runs"])))
                       for (ns, n), e in sorted(written.items())
                       if not n.startswith(MODELS_PREFIX)),
        models=_models(written, runs, registry, tags),
        runs=runs,
    )


def _all_dataset_versions(api: LineageApi, namespace: str, name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = api.get("namespaces", namespace, "datasets", name, "versions",
                       limit=_PAGE, offset=len(out)) or {}
        found = list(page.get("versions", []))
        out.extend(found)
        if len(found) < _PAGE:
            return out


def _choose(versions: list[dict[str, Any]], wanted: str | None, namespace: str,
            name: str) -> list[dict[str, Any]]:
    if wanted is None:
        return versions
    exact = [v for v in versions if wanted in (v.get("version"), _digest(v))]
    if exact:
        return exact
    prefix = [v for v in versions if str(v.get("version", "")).startswith(wanted)
              or str(_digest(v) or "").removeprefix("sha256:").startswith(
                  wanted.removeprefix("sha256:"))]
    if len(prefix) == 1:
        return prefix
    known = ", ".join(str(_digest(v) or v.get("version")) for v in versions[:10])
    raise LineageQueryError(
        f"{namespace} {name} has {'several versions matching' if prefix else 'no version'} "
        f"{wanted!r}; known versions (newest first): {known or 'none'}")


def _digest(version: Mapping[str, Any]) -> str | None:
    facet = (version.get("facets") or {}).get("version") or {}
    return facet.get("datasetVersion")


def _downstream_jobs(graph: Mapping[str, Any], start: str) -> list[tuple[str, str]]:
    """Jobs reachable from ``start`` along out-edges of the table-level graph."""
    seen, queue, jobs = {start}, deque([start]), []
    while queue:
        node = graph.get(queue.popleft()) or {}
        for edge in node.get("outEdges", []):
            target = edge["destination"]
            if target in seen or target not in graph:
                continue
            seen.add(target)
            queue.append(target)
            if graph[target].get("type") == "JOB":
                data = graph[target].get("data") or {}
                jobs.append((data["namespace"], data["name"]))
    return jobs


def _consumers(api: LineageApi, jobs: Iterable[tuple[str, str]]) -> dict[VersionKey,
                                                                         list[dict[str, Any]]]:
    """Input dataset version → the runs (of the downstream jobs) that read it."""
    out: dict[VersionKey, list[dict[str, Any]]] = {}
    for namespace, name in jobs:
        for run in job_runs(api, namespace, name):
            for item in run.get("inputDatasetVersions", []):
                vid = item["datasetVersionId"]
                out.setdefault((vid["namespace"], vid["name"], vid["version"]), []).append(run)
    return out


def job_runs(api: LineageApi, namespace: str, name: str) -> list[dict[str, Any]]:
    """Every run of a job, newest first, a page at a time."""
    out: list[dict[str, Any]] = []
    while True:
        page = api.get("namespaces", namespace, "jobs", name, "runs",
                       limit=_PAGE, offset=len(out)) or {}
        found = list(page.get("runs", []))
        for run in found:
            run.setdefault("jobVersion", {"namespace": namespace, "name": name})
        out.extend(found)
        if len(found) < _PAGE:
            return out


def _jobs(runs: Iterable[Mapping[str, Any]]) -> tuple[ImpactedJob, ...]:
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for run in runs:
        job = run.get("jobVersion") or {}
        grouped.setdefault((job.get("namespace", "?"), job.get("name", "?")), []).append(run)
    out = []
    for (namespace, name), items in grouped.items():
        starts = [r["startedAt"] for r in items if r.get("startedAt")]
        ends = [r["endedAt"] for r in items if r.get("endedAt")]
        out.append(ImpactedJob(namespace=namespace, name=name,
                               runs=tuple(r["id"] for r in items),
                               first_started=min(starts) if starts else None,
                               last_ended=max(ends) if ends else None))
    return tuple(out)


def _models(written: Mapping[tuple[str, str], Mapping[str, set[str]]],
            runs: Mapping[str, Mapping[str, Any]], registry: RegistryView,
            tags: tuple[str, ...]) -> tuple[ImpactedModel, ...]:
    out = []
    for (namespace, name), entry in sorted(written.items()):
        if not name.startswith(MODELS_PREFIX):
            continue
        registered, _, number = name.removeprefix(MODELS_PREFIX).rpartition("/")
        run_id = min(entry["runs"])
        aliases = tuple(sorted(a for a, v in registry.aliases(registered).items() if v == number))
        out.append(ImpactedModel(
            model=f"models:/{registered}/{number}", namespace=namespace,
            registered_name=registered, version=number, run_id=run_id,
            created_at=runs[run_id].get("endedAt"), aliases=aliases, tags=tags))
    return tuple(sorted(out, key=lambda m: (m.registered_name, int(m.version)
                                            if m.version.isdigit() else 0)))
