"""``investigate``: the root-cause workflow in one report.

Given a suspect dataset (a corrupted source file, say) or a model version, it puts together
what an engineer would otherwise gather by hand: the affected outputs and their scope
(:func:`~provlink.governance.impact.impact`, with the time window of the affected runs), the
trace upstream, the recent changes (each upstream node against its previous version; each
affected model version against the one before it), the governance artifacts checked
(ledger, witness, promotions, registry tags), and per registered model the last known-good
version to roll back to: the newest earlier version that the suspect did not reach.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from provlink.errors import LineageQueryError
from provlink.governance.diff import Change, diff_traces
from provlink.governance.impact import ImpactReport, impact
from provlink.governance.registry_view import NoRegistry, RegistryView
from provlink.governance.trace import (
    MODELS_PREFIX,
    LineageApi,
    Trace,
    dataset_identity,
    parse_model_uri,
    trace,
    trace_dataset,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    artifact: str  # ledger | witness | promotions | registry
    status: str  # ok | failed | unknown
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollback:
    registered_model: str
    affected_versions: tuple[str, ...]
    serving_affected: tuple[str, ...]  # aliases now on an affected version
    roll_back_to: str | None  # version number, None: no earlier version is unaffected


@dataclass(frozen=True, slots=True, kw_only=True)
class Investigation:
    target: str
    kind: str  # dataset | model
    namespace: str
    name: str
    version: str | None
    digest: str | None
    tags: tuple[str, ...]
    impact: ImpactReport
    trace: Trace | None
    changes: tuple[Change, ...]
    checks: tuple[Check, ...]
    rollbacks: tuple[Rollback, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["impact"] = self.impact.as_dict()
        out["trace"] = self.trace.as_dict() if self.trace else None
        return out


GovernanceChecks = Callable[[list[str]], list[Check]]


def investigate(api: LineageApi, target: str, *, registry: RegistryView | None = None,
                model_namespace: str | None = None, dataset_namespace: str | None = None,
                version: str | None = None,
                checks: GovernanceChecks | None = None) -> Investigation:
    """Investigate ``target``: ``models:/NAME/VERSION`` or a dataset (path, URI or name)."""
    registry = registry or NoRegistry()
    if target.startswith("models:/"):
        return _model(api, target, registry, model_namespace, checks)
    namespace, name = dataset_identity(target, dataset_namespace)
    versions = api.dataset_versions(namespace, name)
    if not versions:
        raise LineageQueryError(f"the lineage backend at {api.base_url} has no dataset "
                                f"{name!r} in namespace {namespace!r}")
    report = impact(api, namespace, name, version=version or versions[0]["version"],
                    registry=registry)
    suspect = report.versions[0]
    older = [v for v in versions if (v.get("createdAt") or "") < (suspect.created_at or "")]
    changes: list[Change] = []
    if older:
        changes.append(Change(kind="dataset", namespace=namespace, key=name,
                              before=_digest(older[0]), after=suspect.digest))
    upstream = None
    if suspect.created_by:
        upstream = trace_dataset(api, namespace=namespace, name=name, version=suspect.version)
    notes = []
    if not suspect.created_by:
        notes.append("a source dataset: no recorded run wrote it, so the change came from "
                      "outside the pipelines (check who wrote the file)")
    rollbacks = _rollbacks(api, report, registry)
    for model in report.models:
        previous = _previous_trace(api, model.namespace, model.registered_name, model.version)
        if previous is not None:
            current = trace(api, namespace=model.namespace, name=model.registered_name,
                            version=model.version)
            changes.extend(diff_traces(previous, current).changes)
    return Investigation(
        target=target, kind="dataset", namespace=namespace, name=name, version=suspect.version,
        digest=suspect.digest, tags=report.tags, impact=report, trace=upstream,
        changes=tuple(dict.fromkeys(changes)),
        checks=tuple(checks([m.model for m in report.models]) if checks else ()),
        rollbacks=rollbacks, notes=tuple(notes))


def _model(api: LineageApi, target: str, registry: RegistryView, namespace: str | None,
           checks: GovernanceChecks | None) -> Investigation:
    name, number, alias = parse_model_uri(target)
    if alias is not None:
        number = registry.aliases(name).get(alias)
    if number is None or namespace is None:
        raise LineageQueryError(f"{target}: cannot resolve the model version and its lineage "
                                "namespace; pass models:/NAME/VERSION and --tracking-uri")
    upstream = trace(api, namespace=namespace, name=name, version=number)
    report = impact(api, namespace, f"{MODELS_PREFIX}{name}/{number}", registry=registry)
    changes: list[Change] = []
    previous = _previous_trace(api, namespace, name, number)
    if previous is not None:
        changes.extend(diff_traces(previous, upstream).changes)
    aliases = tuple(a for a, v in registry.aliases(name).items() if v == number)
    rollback = Rollback(registered_model=name, affected_versions=(number,),
                        serving_affected=aliases,
                        roll_back_to=previous.model.rpartition("/")[2] if previous else None)
    model_data = next(d for d in upstream.datasets if d.name == upstream.dataset)
    return Investigation(
        target=target, kind="model", namespace=namespace, name=upstream.dataset,
        version=model_data.version, digest=model_data.digest,
        tags=tuple(upstream.inherited_tags()), impact=report, trace=upstream,
        changes=tuple(changes),
        checks=tuple(checks([upstream.model]) if checks else ()), rollbacks=(rollback,))


def _previous_trace(api: LineageApi, namespace: str, name: str, number: str) -> Trace | None:
    """The trace of the newest earlier version of ``name`` the backend knows."""
    if not number.isdigit():
        return None
    for candidate in range(int(number) - 1, 0, -1):
        if api.dataset_versions(namespace, f"{MODELS_PREFIX}{name}/{candidate}"):
            try:
                return trace(api, namespace=namespace, name=name, version=str(candidate))
            except LineageQueryError:
                continue
    return None


def _rollbacks(api: LineageApi, report: ImpactReport,
               registry: RegistryView) -> tuple[Rollback, ...]:
    by_model: dict[tuple[str, str], list[str]] = {}
    for model in report.models:
        by_model.setdefault((model.namespace, model.registered_name), []).append(model.version)
    out = []
    for (namespace, name), affected in sorted(by_model.items()):
        numbers = sorted(int(v) for v in affected if v.isdigit())
        target = None
        for candidate in range(numbers[0] - 1 if numbers else 0, 0, -1):
            if str(candidate) in affected:
                continue
            if api.dataset_versions(namespace, f"{MODELS_PREFIX}{name}/{candidate}"):
                target = str(candidate)
                break
        serving = tuple(sorted(a for a, v in registry.aliases(name).items() if v in affected))
        out.append(Rollback(registered_model=name, affected_versions=tuple(map(str, numbers)),
                            serving_affected=serving, roll_back_to=target))
    return tuple(out)


def _digest(version: Mapping[str, Any]) -> str | None:
    return ((version.get("facets") or {}).get("version") or {}).get("datasetVersion")


# -- rendering -----------------------------------------------------------------------------
def to_markdown(report: Investigation) -> str:
    return "\n".join(_markdown(report)) + "\n"


def _markdown(r: Investigation) -> Iterator[str]:
    yield f"# Investigation: {r.target}"
    yield ""
    yield f"- suspect: `{r.namespace}` `{r.name}` version `{r.digest or r.version}`"
    if r.tags:
        yield f"- tags: {', '.join(r.tags)}"
    for note in r.notes:
        yield f"- note: {note}"
    yield ""
    yield "## Affected outputs"
    yield ""
    yield "| model version | run | serving |"
    yield "|---|---|---|"
    for m in r.impact.models:
        yield f"| `{m.model}` | `{m.run_id}` | {', '.join('@' + a for a in m.aliases) or '—'} |"
    yield ""
    yield "| job | runs | first start | last end |"
    yield "|---|---|---|---|"
    for job in r.impact.jobs:
        yield (f"| `{job.namespace}/{job.name}` | {len(job.runs)} | {job.first_started or '?'} "
               f"| {job.last_ended or '?'} |")
    for d in r.impact.datasets:
        yield f"- dataset `{d.namespace}` `{d.name}`: {len(d.versions)} version(s) written"
    yield ""
    yield "## Roll back"
    yield ""
    for rb in r.rollbacks:
        to = f"`models:/{rb.registered_model}/{rb.roll_back_to}`" if rb.roll_back_to else \
            "no earlier unaffected version"
        serving = f" (now serving: {', '.join('@' + a for a in rb.serving_affected)})" \
            if rb.serving_affected else ""
        yield (f"- `{rb.registered_model}`: versions {', '.join(rb.affected_versions)} affected"
               f"{serving}; roll back to {to}")
    yield ""
    yield "## Recent changes"
    yield ""
    for c in r.changes:
        where = f" [{c.job}]" if c.job else ""
        yield f"- {c.kind} `{c.key}`: `{c.before}` → `{c.after}`{where}"
    if not r.changes:
        yield "- none recorded"
    yield ""
    yield "## Trace"
    yield ""
    if r.trace is None:
        yield "- no upstream run (a source dataset)"
    else:
        for run in r.trace.runs:
            yield (f"- job `{run.job_namespace}/{run.job_name}` run `{run.run_id}` {run.state}; "
                   f"inputs: {', '.join(n for _, n in run.inputs) or 'none'}")
    yield ""
    yield "## Governance artifacts checked"
    yield ""
    for check in r.checks:
        yield f"- {check.artifact}: **{check.status}** — {check.detail}"
    if not r.checks:
        yield "- none checked"


def to_html(report: Investigation) -> str:
    """The Markdown report as a self-contained HTML page (no scripts, no external assets)."""
    body = []
    for line in _markdown(report):
        text = html.escape(line)
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("|"):
            if set(line) <= set("|-"):
                continue
            cells = "".join(f"<td>{html.escape(c.strip())}</td>"
                            for c in line.strip("|").split("|"))
            body.append(f"<table><tr>{cells}</tr></table>")
        elif line.startswith("- "):
            body.append(f"<p>• {html.escape(line[2:])}</p>")
        elif text:
            body.append(f"<p>{text}</p>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>provlink investigation"
            "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "td{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
