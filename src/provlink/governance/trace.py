"""Governance queries, answered through the lineage backend's Marquez HTTP API, so they work
against ``provlink serve`` and a real Marquez alike.

- :func:`trace`: a model version → the runs, jobs, parameters, code versions, MLflow runs
  and dataset versions (with digests) upstream of it, following the exact dataset versions
  each run read (``inputDatasetVersions`` → ``createdByRun``), not today's graph.
- :func:`models_downstream`: a dataset → the model versions built from it.
- :func:`verify_registry`: model versions whose registry tags no longer match the lineage.

Example::

    api = LineageApi("http://127.0.0.1:5000")  # with a key: provlink.governance.clients
    t = trace(api, namespace="sqlite:///mlflow.db", name="churn", version="3")
    [d.name for d in t.datasets]   # ['models/churn/3', 'features.parquet', 'raw.csv']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from provlink.errors import LineageAuthError, LineageQueryError
from provlink.events.facets import REGISTRY_ACTION
from provlink.governance.tags import dataset_tags, inherited

MODELS_PREFIX = "models/"
TAG_PREFIX = "openlineage."


class LineageApi:
    """A small read-only client of Marquez's ``/api/v1``; 404 is ``None``, not an error."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def get(self, *segments: str, **params: Any) -> Any:
        path = "/".join(quote(s, safe="") for s in segments)
        url = f"{self.base_url}/api/v1/{path}"
        try:
            response = self._session.get(url, params=params or None, timeout=self.timeout)
        except requests.RequestException as exc:
            raise LineageQueryError(
                f"cannot reach the lineage backend at {self.base_url} ({exc}); start "
                "`provlink serve` or pass --url / set PROVLINK_LINEAGE_URL") from exc
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise LineageAuthError(f"GET {url}", response.status_code, "read")
        if response.status_code >= 400:
            raise LineageQueryError(f"GET {url} answered {response.status_code}: "
                                    f"{response.text[:500]}")
        return response.json()

    @staticmethod
    def _object(found: Any) -> dict[str, Any] | None:
        if found is not None and not isinstance(found, dict):
            raise LineageQueryError(
                f"expected a JSON object from the lineage backend, got {found!r:.200}")
        return found

    def dataset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._object(self.get("namespaces", namespace, "datasets", name))

    def dataset_versions(self, namespace: str, name: str) -> list[dict[str, Any]]:
        found = self.get("namespaces", namespace, "datasets", name, "versions", limit=100)
        return list((found or {}).get("versions", []))

    def dataset_version(self, namespace: str, name: str, version: str) -> dict[str, Any] | None:
        return self._object(
            self.get("namespaces", namespace, "datasets", name, "versions", version))

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self._object(self.get("jobs", "runs", run_id))

    def job_facets(self, run_id: str) -> dict[str, Any]:
        found = self.get("jobs", "runs", run_id, "facets", type="job") or {}
        return dict(found.get("facets", {}))

    def lineage(self, node_id: str, depth: int) -> list[dict[str, Any]]:
        found = self.get("lineage", nodeId=node_id, depth=depth)
        return list((found or {}).get("graph", []))


# -- results -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class TracedDataset:
    namespace: str
    name: str
    version: str | None = None  # the backend's version id of what was read or written
    digest: str | None = None  # the content version provlink recorded (sha256:…, MLflow digest)
    produced_by: str | None = None  # run id, None for a source nobody in the graph wrote
    tags: tuple[str, ...] = ()  # backend tags and ``tags`` facet entries (see governance.tags)


@dataclass(frozen=True, slots=True, kw_only=True)
class TracedRun:
    run_id: str
    job_namespace: str | None
    job_name: str | None
    state: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    code: Mapping[str, Any] = field(default_factory=dict)
    mlflow_runs: tuple[Mapping[str, Any], ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()
    outputs: tuple[tuple[str, str], ...] = ()
    facets: Mapping[str, Any] = field(default_factory=dict)  # the run's facets as stored
    actor: Mapping[str, Any] = field(default_factory=dict)  # its provlink_actor facet

    def who(self) -> str:
        """Who ran it, in one line (see :func:`who_ran`)."""
        return who_ran(self.actor)


def who_ran(actor: Mapping[str, Any]) -> str:
    """``provlink_actor`` as one line: ``user alice; via schedule nightly; owner team-a;
    os user airflow`` (only the parts recorded)."""
    parts = []
    if actor.get("user"):
        parts.append(f"user {actor['user']}")
    if actor.get("triggeredBy"):
        parts.append(f"via {actor['triggeredBy']}"
                     + (f" {actor['trigger']}" if actor.get("trigger") else ""))
    elif actor.get("trigger"):
        parts.append(f"via {actor['trigger']}")
    if actor.get("owner"):
        parts.append(f"owner {actor['owner']}")
    if actor.get("osUser"):
        parts.append(f"os user {actor['osUser']}")
    return "; ".join(parts) or "not recorded"


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """Everything upstream of one model version; ``runs[0]`` produced it."""

    model: str  # models:/<name>/<version>
    namespace: str
    dataset: str
    registry_tags: Mapping[str, str] = field(default_factory=dict)
    datasets: tuple[TracedDataset, ...] = ()
    runs: tuple[TracedRun, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "inheritedTags": self.inherited_tags()}

    def inherited_tags(self) -> dict[str, tuple[str, ...]]:
        """Every tag of every dataset upstream, with the datasets carrying it."""
        return inherited(self.datasets)

    def run(self, run_id: str | None) -> TracedRun | None:
        return next((r for r in self.runs if r.run_id == run_id), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class DownstreamModel:
    namespace: str
    name: str  # models/<name>/<version>
    model: str  # models:/<name>/<version>
    path: tuple[str, ...]  # node ids from the dataset to the model version


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryDrift:
    """One model version whose lineage tags disagree with the recorded lineage."""

    model: str
    problem: str  # tags-changed | tags-missing | not-in-lineage
    tags: Mapping[str, str]
    recorded: Mapping[str, str]


# -- trace ---------------------------------------------------------------------------------
def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/name/version`` → (name, version, None); ``models:/name@alias`` → (name, None,
    alias)."""
    if not uri.startswith("models:/"):
        raise LineageQueryError(f"{uri!r} is not a model URI; use models:/<name>/<version> "
                                "or models:/<name>@<alias>")
    rest = uri.removeprefix("models:/").strip("/")
    if "@" in rest and "/" not in rest.rpartition("@")[2]:
        name, _, alias = rest.rpartition("@")
        return name, None, alias
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise LineageQueryError(f"{uri!r}: expected models:/<name>/<version number> or "
                                "models:/<name>@<alias>")
    return name, version, None


def trace(api: LineageApi, *, namespace: str, name: str, version: str,
          registry_tags: Mapping[str, str] | None = None, max_runs: int = 20_000,
          progress: Callable[[int], None] | None = None) -> Trace:
    """Walk upstream from the run that wrote ``models/<name>/<version>`` in ``namespace``.

    The walk goes one level at a time and fetches each level's runs and dataset versions
    concurrently (a handful of connections), so 1,000 upstream nodes cost a few round trips
    of latency rather than 2,000 in a row; ``progress`` hears the number of runs read.
    """
    return trace_dataset(api, namespace=namespace, name=f"{MODELS_PREFIX}{name}/{version}",
                         model=f"models:/{name}/{version}", registry_tags=registry_tags,
                         max_runs=max_runs, progress=progress)


def trace_dataset(api: LineageApi, *, namespace: str, name: str, version: str | None = None,
                  model: str | None = None, registry_tags: Mapping[str, str] | None = None,
                  max_runs: int = 20_000,
                  progress: Callable[[int], None] | None = None) -> Trace:
    """:func:`trace` of any dataset version (the newest when ``version`` is None)."""
    dataset_name = name
    if version is None:
        versions = api.dataset_versions(namespace, dataset_name)
    else:
        one = api.dataset_version(namespace, dataset_name, version)
        versions = [one] if one else []
    written = _made(versions)
    if not written:
        raise LineageQueryError(
            f"the lineage backend at {api.base_url} has no run that wrote dataset "
            f"{dataset_name!r} in namespace {namespace!r}")
    producers = [v["createdByRun"]["id"] for v in written]
    datasets: dict[tuple[str, str, str | None], TracedDataset] = {}
    model_version = written[0]
    datasets[(namespace, dataset_name, model_version.get("version"))] = TracedDataset(
        namespace=namespace, name=dataset_name, version=model_version.get("version"),
        digest=_digest(model_version), produced_by=producers[0],
        tags=dataset_tags(model_version))
    runs: dict[str, TracedRun] = {}
    frontier = [producers[0]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        while frontier and len(runs) < max_runs:
            level = [r for r in pool.map(api.run, frontier) if r is not None]
            traced_level = pool.map(lambda r: _traced_run(api, r), level)
            for run, traced in zip(level, traced_level, strict=True):
                runs[run["id"]] = traced
            if progress is not None:
                progress(len(runs))
            wanted: dict[tuple[str, str, str | None], dict[str, Any]] = {}
            for run in level:
                for item in run.get("inputDatasetVersions", []):
                    vid = item.get("datasetVersionId", {})
                    key = (vid.get("namespace"), vid.get("name"), vid.get("version"))
                    if key not in datasets:
                        wanted.setdefault(key, item)
            details = pool.map(lambda k: api.dataset_version(*k) if all(k) else None, wanted)
            frontier, queued = [], set()
            for (key, item), detail in zip(wanted.items(), details, strict=False):
                creator = ((detail or {}).get("createdByRun") or {}).get("id")
                datasets[key] = TracedDataset(
                    namespace=key[0], name=key[1], version=key[2],
                    digest=_digest(detail or item), produced_by=creator,
                    tags=dataset_tags(detail) or dataset_tags(item))
                if creator and creator not in runs and creator not in queued:
                    frontier.append(creator)
                    queued.add(creator)
    return Trace(model=model or f"{namespace} {name}", namespace=namespace, dataset=dataset_name,
                 registry_tags=dict(registry_tags or {}), datasets=tuple(datasets.values()),
                 runs=tuple(runs.values()))


def _made(versions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The versions with a writer, newest first, those a pipeline run made before those a
    registry action's event wrote: that event (an alias moved, a tag set) names the model
    version as its output, but the version is what the training run made."""
    written = [v for v in versions if v.get("createdByRun")]
    made = [v for v in written
            if REGISTRY_ACTION not in (v["createdByRun"].get("facets") or {})]
    return made or written


def _traced_run(api: LineageApi, run: dict[str, Any]) -> TracedRun:
    facets = run.get("facets") or {}
    job = run.get("jobVersion") or {}
    parameters = {p["key"]: p["value"] for p in
                  (facets.get("executionParameters") or {}).get("parameters", [])}
    code = {k: v for k, v in (facets.get("provlink_code") or {}).items() if not k.startswith("_")}
    if not code:
        location = api.job_facets(run["id"]).get("sourceCodeLocation") or {}
        code = {k: v for k, v in location.items() if not k.startswith("_")}
    inputs = tuple((i["datasetVersionId"]["namespace"], i["datasetVersionId"]["name"])
                   for i in run.get("inputDatasetVersions", []))
    outputs = tuple((o["datasetVersionId"]["namespace"], o["datasetVersionId"]["name"])
                    for o in run.get("outputDatasetVersions", []))
    return TracedRun(
        run_id=run["id"], job_namespace=job.get("namespace"), job_name=job.get("name"),
        state=run.get("state"), started_at=run.get("startedAt"), ended_at=run.get("endedAt"),
        parameters=parameters, code=code,
        mlflow_runs=tuple((facets.get("mlflow") or {}).get("runs", [])), inputs=inputs,
        outputs=outputs, facets=facets,
        actor={k: v for k, v in (facets.get("provlink_actor") or {}).items()
               if not k.startswith("_")},
    )


def _digest(version: Mapping[str, Any]) -> str | None:
    facet = (version.get("facets") or {}).get("version") or {}
    return facet.get("datasetVersion")


# -- models downstream of a dataset -------------------------------------------------------
def dataset_identity(text: str, namespace: str | None = None) -> tuple[str, str]:
    """A dataset as a user names it: a local path (namespace ``file``), a URI such as
    ``s3://bucket/key`` (namespace ``s3://bucket``), or any name with ``namespace``."""
    if namespace is not None:
        return namespace, text
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "file", str(Path(text).expanduser().resolve())
    if scheme == "file":
        return "file", "/" + rest.lstrip("/")
    authority, _, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}", path or "/"


def models_downstream(api: LineageApi, namespace: str, name: str, *,
                      depth: int = 20) -> list[DownstreamModel]:
    """Model versions written by jobs downstream of the dataset (breadth-first, shortest
    path first)."""
    start = f"dataset:{namespace}:{name}"
    graph = {node["id"]: node for node in api.lineage(start, depth)}
    if start not in graph:
        raise LineageQueryError(f"the lineage backend at {api.base_url} has no dataset "
                                f"{name!r} in namespace {namespace!r}")
    paths: dict[str, tuple[str, ...]] = {start: (start,)}
    queue = deque([start])
    found: list[DownstreamModel] = []
    while queue:
        node_id = queue.popleft()
        for edge in graph.get(node_id, {}).get("outEdges", []):
            target = edge["destination"]
            if target in paths or target not in graph:
                continue
            paths[target] = (*paths[node_id], target)
            queue.append(target)
            node = graph[target]
            data = node.get("data") or {}
            if node.get("type") == "DATASET" and _is_model_version(data):
                found.append(DownstreamModel(
                    namespace=data["namespace"], name=data["name"],
                    model="models:/" + data["name"].removeprefix(MODELS_PREFIX),
                    path=paths[target]))
    return found


def _is_model_version(data: Mapping[str, Any]) -> bool:
    return "mlflow_model_version" in (data.get("facets") or {}) or (
        str(data.get("name", "")).startswith(MODELS_PREFIX))


# -- registry drift ------------------------------------------------------------------------
def verify_registry(api: LineageApi, versions: Iterable[tuple[str, str, Mapping[str, str]]],
                    namespace: str) -> Iterator[RegistryDrift]:
    """Compare each (model name, version, tags) with the run the backend recorded as its
    writer; yield the ones that disagree. Versions neither tagged nor in the lineage are
    outside provlink's view and are skipped."""
    for name, version, tags in versions:
        lineage_tags = {k: v for k, v in tags.items() if k.startswith(TAG_PREFIX)}
        dataset_name = f"{MODELS_PREFIX}{name}/{version}"
        writers = [v["createdByRun"] for v in _made(api.dataset_versions(namespace,
                                                                         dataset_name))]
        model = f"models:/{name}/{version}"
        if not writers:
            if lineage_tags:
                yield RegistryDrift(model=model, problem="not-in-lineage", tags=lineage_tags,
                                    recorded={})
            continue
        recorded = _recorded_tags(writers[0])
        if not lineage_tags:
            yield RegistryDrift(model=model, problem="tags-missing", tags={}, recorded=recorded)
            continue
        expected = [_recorded_tags(w) for w in writers]
        compared = {k: lineage_tags.get(k) for k in recorded}
        if compared not in expected:
            yield RegistryDrift(model=model, problem="tags-changed", tags=lineage_tags,
                                recorded=recorded)


def _recorded_tags(run: Mapping[str, Any]) -> dict[str, str]:
    job = run.get("jobVersion") or {}
    return {f"{TAG_PREFIX}run_id": str(run.get("id")),
            f"{TAG_PREFIX}job.namespace": str(job.get("namespace")),
            f"{TAG_PREFIX}job.name": str(job.get("name"))}
