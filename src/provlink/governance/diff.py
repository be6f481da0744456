"""``diff``: what changed upstream between two model versions, and nothing that did not.

Both versions are traced (:func:`provlink.governance.trace.trace`); upstream nodes are
matched by identity — datasets by namespace and name, runs by job — and compared field by
field: dataset content digests, code commit and dirty flag, run parameters, package
versions, MLflow params and metrics. A run parameter that MLflow also logged with the same
change is one change (``sources`` names both), so a changed ``C`` is reported once.

Example::

    changes = diff_traces(trace_a, trace_b).changes
    [(c.kind, c.key) for c in changes]  # [('dataset', '/data/train.csv'), ('parameter', 'C')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from provlink.governance.trace import MODELS_PREFIX, Trace, TracedRun

KINDS = ("dataset", "code", "parameter", "package", "mlflow_param", "mlflow_metric")


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    kind: str  # one of KINDS
    key: str  # dataset name, parameter or package name, "commit" / "dirty"
    before: Any
    after: Any
    job: str | None = None  # namespace/name of the run it belongs to
    namespace: str | None = None  # datasets only
    sources: tuple[str, ...] = ()  # parameter: ("run",), ("mlflow",) or both


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffReport:
    model_a: str
    model_b: str
    changes: tuple[Change, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff_traces(a: Trace, b: Trace) -> DiffReport:
    """Every upstream difference between ``a`` and ``b`` (the two model nodes excepted)."""
    changes = [*_datasets(a, b)]
    runs_a, runs_b = _by_job(a.runs), _by_job(b.runs)
    for job in sorted(set(runs_a) | set(runs_b)):
        ra, rb = runs_a.get(job), runs_b.get(job)
        changes.extend(_code(job, ra, rb))
        changes.extend(_parameters(job, ra, rb))
        changes.extend(_packages(job, ra, rb))
        changes.extend(_mlflow(job, ra, rb, "metrics", "mlflow_metric"))
    return DiffReport(model_a=a.model, model_b=b.model, changes=tuple(changes))


def _datasets(a: Trace, b: Trace) -> Iterable[Change]:
    def index(t: Trace) -> dict[tuple[str, str], str | None]:
        out: dict[tuple[str, str], str | None] = {}
        for d in t.datasets:
            if (d.namespace, d.name) == (t.namespace, t.dataset):
                continue  # the model version compared is not its own upstream
            out.setdefault((d.namespace, d.name), d.digest)
        return out

    da, db = index(a), index(b)
    for key in sorted(set(da) | set(db)):
        if key in da and key in db and da[key] == db[key]:
            continue
        if key[1].startswith(MODELS_PREFIX) and key in da and key in db:
            continue  # a different model version upstream shows as its own name
        yield Change(kind="dataset", namespace=key[0], key=key[1],
                     before=da.get(key), after=db.get(key))


def _by_job(runs: Iterable[TracedRun]) -> dict[str, TracedRun]:
    out: dict[str, TracedRun] = {}
    for run in runs:
        out.setdefault(f"{run.job_namespace}/{run.job_name}", run)  # the nearest run of a job
    return out


def _code(job: str, a: TracedRun | None, b: TracedRun | None) -> Iterable[Change]:
    ca, cb = (dict(r.code) if r else {} for r in (a, b))
    for key in ("commit", "version", "dirty", "repoUrl", "branch"):
        if ca.get(key) != cb.get(key):
            yield Change(kind="code", job=job, key=key, before=ca.get(key), after=cb.get(key))


def _parameters(job: str, a: TracedRun | None, b: TracedRun | None) -> Iterable[Change]:
    pa, pb = (dict(r.parameters) if r else {} for r in (a, b))
    ma, mb = (_mlflow_values(r, "params") if r else {} for r in (a, b))
    for key in sorted(set(pa) | set(pb) | set(ma) | set(mb)):
        run_changed = pa.get(key) != pb.get(key)
        mlflow_changed = ma.get(key) != mb.get(key)
        if run_changed and mlflow_changed and str(pa.get(key)) == str(ma.get(key)) \
                and str(pb.get(key)) == str(mb.get(key)):
            yield Change(kind="parameter", job=job, key=key, before=pa.get(key),
                         after=pb.get(key), sources=("run", "mlflow"))
            continue
        if run_changed:
            yield Change(kind="parameter", job=job, key=key, before=pa.get(key),
                         after=pb.get(key), sources=("run",))
        if mlflow_changed:
            yield Change(kind="mlflow_param", job=job, key=key, before=ma.get(key),
                         after=mb.get(key), sources=("mlflow",))


def _mlflow(job: str, a: TracedRun | None, b: TracedRun | None, field: str,
            kind: str) -> Iterable[Change]:
    va, vb = (_mlflow_values(r, field) if r else {} for r in (a, b))
    for key in sorted(set(va) | set(vb)):
        if va.get(key) != vb.get(key):
            yield Change(kind=kind, job=job, key=key, before=va.get(key), after=vb.get(key))


def _mlflow_values(run: TracedRun, field: str) -> dict[str, Any]:
    """Params or metrics of the MLflow runs linked to one capture point (top run wins)."""
    out: dict[str, Any] = {}
    for mlflow_run in sorted(run.mlflow_runs, key=lambda r: r.get("parentRunId") is None):
        out.update(mlflow_run.get(field) or {})
    return out


def _packages(job: str, a: TracedRun | None, b: TracedRun | None) -> Iterable[Change]:
    pa, pb = (packages_of(r) if r else {} for r in (a, b))
    if not pa or not pb:
        return
    for key in sorted(set(pa) | set(pb)):
        if pa.get(key) != pb.get(key):
            yield Change(kind="package", job=job, key=key, before=pa.get(key), after=pb.get(key))


def packages_of(run: TracedRun) -> Mapping[str, str]:
    env = run.facets.get("provlink_environment") or {}
    return dict(env.get("packages") or {})
