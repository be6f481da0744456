"""``provlink impact``, ``diff``, ``coverage``, ``gate`` (and ``investigate``): the questions
asked when a model decision goes wrong, answered through the backend's Marquez API.

Exit codes: 0 answered (``gate``: every requirement met), 1 ``gate`` refused, 2 the
question could not be answered (backend or registry unreachable, unknown model or dataset).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from provlink.cli.config import load_config
from provlink.cli.governance import _api, _witness
from provlink.errors import LineageQueryError
from provlink.governance.coverage import CoverageReport, coverage
from provlink.governance.diff import Change, DiffReport, diff_traces
from provlink.governance.gate import (
    GateResult,
    Policy,
    gate,
    ledger_approvals,
    ledger_evidence,
)
from provlink.governance.impact import ImpactReport, impact
from provlink.governance.registry_view import MlflowRegistry, NoRegistry, RegistryView
from provlink.governance.trace import Trace, dataset_identity, parse_model_uri, trace

if TYPE_CHECKING:
    from provlink.governance.log import Ledger


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("impact", help="every downstream job, dataset and model version "
                              "of a dataset (version), and which model versions are serving")
    p.add_argument("dataset", help="a local path, a URI such as s3://bucket/key, or a name "
                                   "with --namespace")
    p.add_argument("--namespace")
    p.add_argument("--version", help="only this version: a content digest (sha256:…) or the "
                                     "backend's version id; a unique prefix will do")
    p.add_argument("--depth", type=int, default=20)
    _options(p)
    p.set_defaults(func=cmd_impact)

    p = subparsers.add_parser("diff", help="what changed upstream between two model versions")
    p.add_argument("model_a", help="models:/<name>/<version> or models:/<name>@<alias>")
    p.add_argument("model_b")
    _options(p)
    p.set_defaults(func=cmd_diff)

    p = subparsers.add_parser("coverage", help="traceability and audit-completeness figures, "
                              "and the lineage gaps by job")
    _options(p, registry=False)
    p.set_defaults(func=cmd_coverage)

    p = subparsers.add_parser("gate", help="exit non-zero naming each unmet requirement of a "
                              "promotion policy")
    p.add_argument("model", help="models:/<name>/<version> or models:/<name>@<alias>")
    p.add_argument("--policy", help="policy file (YAML or JSON); default: every requirement")
    _options(p)
    p.set_defaults(func=cmd_gate)

    p = subparsers.add_parser("investigate", help="root-cause report for a dataset or model "
                              "version: affected outputs, changes, checks, what to roll back to")
    p.add_argument("target", help="models:/<name>/<version>, a local path, a URI, or a dataset "
                                  "name with --namespace")
    p.add_argument("--namespace", help="the dataset's namespace")
    p.add_argument("--version", help="the suspect dataset version (default: the newest)")
    p.add_argument("--format", choices=("markdown", "html"), default="markdown")
    p.add_argument("-o", "--output", help="write the report to this file")
    _options(p)
    p.set_defaults(func=cmd_investigate)


def _options(parser: argparse.ArgumentParser, *, registry: bool = True) -> None:
    parser.add_argument("--url", help="lineage backend (Marquez API) base URL")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    if registry:
        parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's)")
        parser.add_argument("--namespace-of-models", dest="model_namespace",
                            help="the models' lineage namespace (default: from the tracking URI)")


def registry_of(args: argparse.Namespace) -> RegistryView:
    """MLflow's registry when MLflow is installed, else a registry that knows nothing."""
    try:
        return MlflowRegistry(getattr(args, "tracking_uri", None))
    except LineageQueryError:
        return NoRegistry()


def resolve_model(args: argparse.Namespace, uri: str,
                  registry: RegistryView) -> tuple[str, str, str, dict[str, Any] | None]:
    """``models:/name/version`` or ``@alias`` → (name, version, lineage namespace, record)."""
    name, version, alias = parse_model_uri(uri)
    if alias is not None:
        version = registry.aliases(name).get(alias)
        if version is None:
            raise LineageQueryError(f"{uri}: alias {alias!r} is not set on {name!r} in the "
                                    f"registry at {registry.tracking_uri or '(none)'}")
    assert version is not None
    namespace = getattr(args, "model_namespace", None)
    if namespace is None:
        if registry.tracking_uri is None:
            raise LineageQueryError("no MLflow registry to name the models' namespace: pass "
                                    "--namespace-of-models or --tracking-uri")
        from provlink.tracking_uri import tracking_namespace

        namespace = tracking_namespace(registry.tracking_uri)
    return name, version, namespace, dict(registry.model_version(name, version) or {}) or None


def traced(args: argparse.Namespace, uri: str,
           registry: RegistryView) -> tuple[Trace, dict[str, Any] | None]:
    name, version, namespace, record = resolve_model(args, uri, registry)
    tags = dict((record or {}).get("tags") or {})
    return trace(_api(args), namespace=namespace, name=name, version=version,
                 registry_tags=tags), record


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=list))


# -- impact --------------------------------------------------------------------------------
def cmd_impact(args: argparse.Namespace) -> int:
    namespace, name = dataset_identity(args.dataset, args.namespace)
    report = impact(_api(args), namespace, name, version=args.version,
                    registry=registry_of(args), depth=args.depth)
    if args.json:
        _print_json(report.as_dict())
    else:
        print("\n".join(render_impact(report)))
    return 0


def render_impact(report: ImpactReport) -> Iterator[str]:
    tags = f"  tags: {', '.join(report.tags)}" if report.tags else ""
    yield f"{report.namespace} {report.name}{tags}"
    for use in report.versions:
        yield (f"├─ version {use.digest or use.version}  created {use.created_at or '?'}"
               f"  read by {len(use.read_by)} run(s)")
    yield "├─ jobs"
    for job in report.jobs:
        yield (f"│  ├─ {job.namespace}/{job.name}  {len(job.runs)} run(s)  "
               f"{job.first_started or '?'} → {job.last_ended or '?'}")
    yield "├─ datasets"
    for d in report.datasets:
        yield f"│  ├─ {d.namespace} {d.name}  {len(d.versions)} version(s)"
    yield "└─ model versions (retrain these)"
    for m in report.models:
        serving = f"  SERVING @{', @'.join(m.aliases)}" if m.aliases else ""
        inherited = f"  tags: {', '.join(m.tags)}" if m.tags else ""
        yield f"   ├─ {m.model}  run {m.run_id}{serving}{inherited}"
    if not report.models:
        yield "   (none)"


# -- diff ----------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    registry = registry_of(args)
    a, _ = traced(args, args.model_a, registry)
    b, _ = traced(args, args.model_b, registry)
    report = diff_traces(a, b)
    if args.json:
        _print_json(report.as_dict())
    else:
        print("\n".join(render_diff(report)))
    return 0


def render_diff(report: DiffReport) -> Iterator[str]:
    yield f"{report.model_a} → {report.model_b}: {len(report.causes)} change(s) upstream"
    yield from (_change_line(c) for c in report.causes)
    if report.derived:
        yield "  following from those (rebuilt by unchanged jobs, and results):"
        yield from ("  " + _change_line(c) for c in report.derived)


def _change_line(c: Change) -> str:
    where = f"  [{c.job}]" if c.job else ""
    label = {"dataset": f"dataset {c.namespace} {c.key}",
             "parameter": f"parameter {c.key} ({' and '.join(c.sources)})"}.get(
                 c.kind, f"{c.kind.replace('_', ' ')} {c.key}")
    return f"  {label}: {c.before} → {c.after}{where}"


# -- coverage ------------------------------------------------------------------------------
def cmd_coverage(args: argparse.Namespace) -> int:
    from provlink.cli.progress import Progress

    with Progress("reading events") as bar, _local_ledger() as ledger:
        report = coverage(_api(args), progress=bar.update, witness=_witness(args),
                          unauthorized=_unauthorized_moves(), ledger=ledger)
    if args.json:
        _print_json(report.as_dict())
    else:
        print("\n".join(render_coverage(report)))
    return 0


@contextlib.contextmanager
def _local_ledger() -> Iterator[Ledger | None]:
    """This home's (or the fleet's) ledger, None without one."""
    from provlink.delivery.spool_open import configured_spool, spool_exists
    from provlink.governance.log import Ledger as OpenLedger

    config = load_config()
    if not spool_exists(config):
        yield None
        return
    spool = configured_spool(config)
    try:
        yield OpenLedger(spool)
    finally:
        spool.close()


def _unauthorized_moves() -> list[dict[str, Any]] | None:
    """The unauthorized alias moves the local (or fleet) ledger recorded; None without one
    (coverage then says "unknown" rather than zero)."""
    from provlink.delivery.spool_open import configured_spool, spool_exists
    from provlink.governance import registry_log
    from provlink.governance.log import Ledger

    config = load_config()
    if not spool_exists(config):
        return None
    return [m.as_dict() for m in registry_log.unauthorized(Ledger(configured_spool(config)))]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def render_coverage(report: CoverageReport) -> Iterator[str]:
    figures = report.as_dict()["figures"]
    traceable = sum(m.traceable for m in report.models)
    yield f"{report.runs} runs, {report.events} events, {len(report.models)} model versions"
    yield (f"traceability        {_pct(figures['traceability'])}  ({traceable} of "
           f"{len(report.models)} model versions reach digested sources)")
    yield (f"START + terminal    {_pct(figures['runsWithStartAndTerminal'])}  "
           f"({report.runs_with_start_and_end} of {report.runs} runs)")
    yield (f"inputs + outputs    {_pct(figures['runsWithInputsAndOutputs'])}  "
           f"({report.runs_with_inputs_and_outputs} of {report.step_runs} step runs; "
           f"{report.runs - report.step_runs} orchestrating runs not counted)")
    yield (f"ledger checkpoint   {_pct(figures['eventsWithLedgerCheckpoint'])}  witnessed "
           f"{_pct(figures['eventsWithWitnessedCheckpoint'])}")
    changes = report.unauthorized_changes
    yield ("unauthorized registry changes: " + (
        "unknown (no ledger here to read the promotion history from)" if changes is None
        else f"{len(changes)} recorded (`provlink registry sync` records moves made outside "
             "provlink; `provlink history MODEL` lists them)"))
    for change in changes or ():
        yield (f"  {change.get('model')}@{change.get('alias')}: {change.get('previous') or '-'}"
               f" → {change.get('version') or '(deleted)'} by {change.get('actor') or '?'} "
               f"({change.get('source')})")
    if report.gaps:
        yield "gaps by job, worst first:"
    for gap in report.gaps:
        parts = [f"{n} {label}" for n, label in (
            (gap.missing_start, "without START"), (gap.missing_terminal, "without terminal"),
            (gap.no_inputs, "without inputs"), (gap.no_outputs, "without outputs")) if n]
        if gap.datasets_without_digest:
            parts.append("no digest: " + ", ".join(gap.datasets_without_digest))
        yield f"  {gap.job}  ({gap.runs} runs): " + "; ".join(parts)
    for model in report.models:
        if not model.traceable:
            yield f"  {model.model}: " + "; ".join(model.reasons)


# -- gate ----------------------------------------------------------------------------------
def cmd_gate(args: argparse.Namespace) -> int:
    policy = Policy.load(args.policy)
    registry = registry_of(args)
    result, record = traced(args, args.model, registry)
    name, version, _ = parse_model_uri(result.model)
    outcome = gate(result, policy, model_version=record,
                   ledger=ledger_evidence(result.model, record, witness=_witness(args)),
                   approvals=ledger_approvals(name, version or ""))
    if args.json:
        _print_json(outcome.as_dict())
    else:
        print("\n".join(render_gate(outcome)))
    return 0 if outcome.passed else 1


def render_gate(outcome: GateResult) -> Iterator[str]:
    if outcome.passed:
        yield outcome.summary()
        return
    yield outcome.summary()
    for finding in outcome.unmet:
        yield f"  UNMET {finding.requirement}: {finding.detail}"
    for tag, names in outcome.inherited_tags.items():
        yield f"  tag {tag} inherited from {', '.join(names)}"




# -- investigate ---------------------------------------------------------------------------
def cmd_investigate(args: argparse.Namespace) -> int:
    from provlink.governance.investigate import investigate, to_html, to_markdown

    registry = registry_of(args)
    model_namespace = args.model_namespace
    if model_namespace is None and registry.tracking_uri is not None:
        from provlink.tracking_uri import tracking_namespace

        model_namespace = tracking_namespace(registry.tracking_uri)
    report = investigate(_api(args), args.target, registry=registry,
                         model_namespace=model_namespace, dataset_namespace=args.namespace,
                         version=args.version,
                         checks=lambda models: governance_checks(args, registry, models))
    if args.json:
        text = json.dumps(report.as_dict(), indent=2, default=list) + "\n"
    else:
        text = to_html(report) if args.format == "html" else to_markdown(report)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def governance_checks(args: argparse.Namespace, registry: RegistryView,
                      models: list[str]) -> list[Any]:
    """Ledger, witness, promotions and registry tags of the affected model versions."""
    from provlink.governance.gate import ledger_evidence
    from provlink.governance.investigate import Check
    from provlink.governance.trace import verify_registry

    checks = []
    client = _witness(args)
    for uri in models:
        name, version, _ = parse_model_uri(uri)
        status = ledger_evidence(uri, registry.model_version(name, str(version)),
                                 witness=client)
        checks.append(Check(artifact="ledger", status="ok" if status.verified else "failed",
                            detail=status.detail))
        witness = ("unknown", "no witness to ask") if status.witnessed is None else (
            ("ok", "a witness cosigned a checkpoint covering its anchor") if status.witnessed
            else ("failed", "no witness cosignature covers its anchor"))
        checks.append(Check(artifact="witness", status=witness[0], detail=f"{uri}: {witness[1]}"))
    versions = []
    for uri in models:
        name, version, _ = parse_model_uri(uri)
        record = registry.model_version(name, str(version))
        if record is not None:
            versions.append((name, str(version), dict(record.get("tags") or {})))
    held = {uri: [a for a, v in registry.aliases(parse_model_uri(uri)[0]).items()
                  if v == parse_model_uri(uri)[1]] for uri in models}
    checks.append(Check(artifact="promotions", status="ok" if registry.tracking_uri else
                        "unknown", detail="aliases now: " + (", ".join(
                            f"{uri} @{'/@'.join(a)}" for uri, a in held.items() if a) or "none")))
    if versions and registry.tracking_uri:
        from provlink.tracking_uri import tracking_namespace

        drift = list(verify_registry(_api(args), versions,
                                     tracking_namespace(registry.tracking_uri)))
        checks.append(Check(artifact="registry", status="failed" if drift else "ok",
                            detail=f"{len(versions)} model versions' lineage tags checked"
                            + "".join(f"; {d.model}: {d.problem}" for d in drift)))
    return checks
