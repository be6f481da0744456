"""``diff``: what changed upstream between two model versions, and nothing that did not.

Both versions are traced (:func:`provlink.governance.trace.trace`); upstream nodes are
matched by identity — datasets by namespace and name, runs by job — and compared field by
field: dataset content digests, code commit and dirty flag, run parameters, package
versions, MLflow params and metrics. A run parameter that MLflow also logged with the same
change is one change (``sources`` names both), so a changed ``C`` is reported once, also when
the orchestrator names it by its config path (Dagster's ``config.c`` for MLflow's ``C``: the
last dotted part, case aside, with the same values on both sides).

Causes and consequences: a dataset whose content changed only because the job that wrote it
read a changed input (its code, parameters and packages unchanged), and a changed metric,
are ``derived``: they follow from the other changes, which are the causes a reader looks for.

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
    derived: bool = False  # follows from the other changes (see the module docstring)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffReport:
    model_a: str
    model_b: str
    changes: tuple[Change, ...]

    @property
    def causes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.derived)

    @property
    def derived(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.derived)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff_traces(a: Trace, b: Trace) -> DiffReport:
    """Every upstream difference between ``a`` and ``b`` (the two model nodes excepted)."""
    datasets = list(_datasets(a, b))
    runs_a, runs_b = _by_job(a.runs), _by_job(b.runs)
    changes: list[Change] = []
    for job in sorted(set(runs_a) | set(runs_b)):
        ra, rb = runs_a.get(job), runs_b.get(job)
        changes.extend(_code(job, ra, rb))
        changes.extend(_parameters(job, ra, rb))
        changes.extend(_packages(job, ra, rb))
        changes.extend(_mlflow(job, ra, rb, "metrics", "mlflow_metric"))
    changed_jobs = {c.job for c in changes if c.kind != "mlflow_metric"}
    return DiffReport(model_a=a.model, model_b=b.model,
                      changes=(*_mark_derived(datasets, b, runs_a, changed_jobs), *changes))


def _mark_derived(datasets: list[Change], b: Trace, runs_a: Mapping[str, TracedRun],
                  changed_jobs: set[str | None]) -> list[Change]:
    """Mark the dataset changes an unchanged job made from changed inputs (to a fixpoint:
    a chain of rebuilt datasets is derived all the way down)."""
    runs = {r.run_id: r for r in b.runs}
    writer = {(d.namespace, d.name): runs.get(d.produced_by or "") for d in b.datasets}
    changed = {(c.namespace or "", c.key) for c in datasets}
    derived: set[tuple[str, str]] = set()
    grew = True
    while grew:
        grew = False
        for key in changed - derived:
            run = writer.get(key)
            job = f"{run.job_namespace}/{run.job_name}" if run else None
            if run is None or job in changed_jobs or job not in runs_a:
                continue
            if any(i in changed for i in run.inputs):
                derived.add(key)
                grew = True
    return [Change(**{**asdict(c), "derived": (c.namespace or "", c.key) in derived})
            for c in datasets]


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
    for run_key, mlflow_key in _same_parameter(pa, pb, ma, mb):
        for values in (ma, mb):
            if mlflow_key in values:
                values[run_key] = values.pop(mlflow_key)
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


def _same_parameter(pa: Mapping[str, Any], pb: Mapping[str, Any], ma: Mapping[str, Any],
                    mb: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(run key, MLflow key) pairs naming one parameter: the run's config path ends in the
    MLflow name (case aside) and both sides hold the same values on both versions."""
    pairs = []
    for mlflow_key in set(ma) | set(mb):
        if mlflow_key in pa or mlflow_key in pb:
            continue
        for run_key in sorted(set(pa) | set(pb)):
            if run_key.rsplit(".", 1)[-1].lower() == mlflow_key.lower() and all(
                    str(p.get(run_key)) == str(m.get(mlflow_key))
                    for p, m in ((pa, ma), (pb, mb))):
                pairs.append((run_key, mlflow_key))
                break
    return pairs


def _mlflow(job: str, a: TracedRun | None, b: TracedRun | None, field: str,
            kind: str) -> Iterable[Change]:
    va, vb = (_mlflow_values(r, field) if r else {} for r in (a, b))
    for key in sorted(set(va) | set(vb)):
        if va.get(key) != vb.get(key):
            yield Change(kind=kind, job=job, key=key, before=va.get(key), after=vb.get(key),
                         derived=kind == "mlflow_metric")  # a result, not a cause


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
