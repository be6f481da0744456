"""``gate``: may this model version be promoted? Each unmet requirement of a policy, named.

A policy is a small file (YAML or JSON); every key is optional, unknown keys are errors::

    require_lineage: true        # every upstream run complete, with inputs; sources known
    require_digests: true        # every upstream dataset has a content digest
    require_clean_code: true     # every upstream run at a git commit without local edits
    forbid_sensitive: true       # no upstream dataset tagged sensitive ...
    allow_sensitive: []          #   ... except these dataset names or tags
    sensitive_markers: [pii, sensitive, confidential, restricted, phi, secret, personal]
    require_ledger: true         # the ledger verifies and anchors the model version
    require_witness: true        # and a witness co-signed the covering checkpoint
    require_approval: true       # a recorded approval (registry tag or promotion record)
    approval_tags: [provlink.approved_by, approved_by]

Example (CI)::

    provlink gate models:/churn/7 --policy policy.yml || exit 1
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provlink.errors import ConfigError
from provlink.governance.tags import SENSITIVE_MARKERS, is_sensitive
from provlink.governance.trace import MODELS_PREFIX, Trace

if TYPE_CHECKING:
    from provlink.governance.witness_client import WitnessClient


class PolicyError(ConfigError):
    """A policy file is unreadable or names a setting that does not exist."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    require_lineage: bool = True
    require_digests: bool = True
    require_clean_code: bool = True
    forbid_sensitive: bool = True
    allow_sensitive: tuple[str, ...] = ()
    sensitive_markers: tuple[str, ...] = SENSITIVE_MARKERS
    require_ledger: bool = True
    require_witness: bool = True
    require_approval: bool = True
    approval_tags: tuple[str, ...] = ("provlink.approved_by", "approved_by")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PolicyError(f"unknown policy setting(s) {', '.join(unknown)}; known: "
                              f"{', '.join(known)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if known[key].type in ("bool", bool):
                if not isinstance(value, bool):
                    raise PolicyError(f"policy setting {key} must be true or false, "
                                      f"not {value!r}")
                values[key] = value
            else:
                if isinstance(value, str) or not isinstance(value, Iterable):
                    raise PolicyError(f"policy setting {key} must be a list of names")
                values[key] = tuple(str(v) for v in value)
        return cls(**values)

    @classmethod
    def load(cls, path: Path | str | None) -> Policy:
        if path is None:
            return cls()
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read the policy file {file}: {exc.strerror}") from exc
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            try:
                import yaml
            except ImportError as exc:
                raise PolicyError("a YAML policy needs PyYAML (pip install pyyaml), or write "
                                  "the policy as JSON") from exc
            data = yaml.safe_load(text) or {}
        if not isinstance(data, Mapping):
            raise PolicyError(f"{file}: a policy is a mapping of settings")
        return cls.from_dict(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEvidence:
    """What the caller learnt about the ledger for this model version (None: unknown)."""

    verified: bool | None = None
    witnessed: bool | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    requirement: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    model: str
    findings: tuple[Finding, ...]
    inherited_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def unmet(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.ok)

    def summary(self) -> str:
        checked = ", ".join(f.requirement for f in self.findings) or "nothing"
        if self.passed:
            return f"{self.model}: PASS ({len(self.findings)} requirements met: {checked})"
        return f"{self.model}: FAIL ({len(self.unmet)} of {len(self.findings)} unmet)"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def gate(result: Trace, policy: Policy, *, ledger: LedgerEvidence | None = None,
         model_version: Mapping[str, Any] | None = None,
         approvals: Iterable[Mapping[str, Any]] = ()) -> GateResult:
    """Check ``result`` (a trace) against ``policy``; ``model_version`` is the registry
    record (tags), ``approvals`` recorded promotion approvals, if any are known."""
    ledger = ledger or LedgerEvidence()
    findings: list[Finding] = []
    if policy.require_lineage:
        findings.extend(_lineage(result))
    if policy.require_digests:
        findings.extend(_digests(result))
    if policy.require_clean_code:
        findings.extend(_code(result))
    if policy.forbid_sensitive:
        findings.extend(_sensitive(result, policy))
    if policy.require_ledger:
        findings.append(Finding(requirement="ledger", ok=ledger.verified is True,
                                detail=ledger.detail or ("ledger verified" if ledger.verified
                                                         else "the ledger was not verified")))
    if policy.require_witness:
        findings.append(Finding(requirement="witness", ok=ledger.witnessed is True,
                                detail=("the covering checkpoint is witnessed" if ledger.witnessed
                                        else "no witnessed checkpoint covers this model "
                                             "version")))
    if policy.require_approval:
        findings.append(_approval(model_version, list(approvals), policy))
    return GateResult(model=result.model, findings=tuple(findings),
                      inherited_tags=result.inherited_tags())


def _lineage(result: Trace) -> Iterable[Finding]:
    problems = []
    for run in result.runs:
        job = f"{run.job_namespace}/{run.job_name}"
        if run.state not in ("COMPLETE", "COMPLETED"):
            problems.append(f"job {job} run {run.run_id} is {run.state or 'unfinished'}")
        if not run.inputs:
            problems.append(f"job {job} run {run.run_id} recorded no inputs "
                            "(a step outside lineage?)")
    if not result.runs:
        problems.append("no run is recorded as having produced it")
    if not problems:
        yield Finding(requirement="lineage", ok=True,
                      detail=f"{len(result.runs)} upstream runs, all complete with inputs")
    for problem in problems:
        yield Finding(requirement="lineage", ok=False, detail=problem)


def _digests(result: Trace) -> Iterable[Finding]:
    missing = [d for d in result.datasets
               if not d.digest and not d.name.startswith(MODELS_PREFIX)]
    if not missing:
        yield Finding(requirement="digests", ok=True,
                      detail=f"{len(result.datasets)} upstream datasets carry content digests")
    for d in missing:
        yield Finding(requirement="digests", ok=False,
                      detail=f"dataset {d.namespace} {d.name} has no content digest")


def _code(result: Trace) -> Iterable[Finding]:
    problems = []
    for run in result.runs:
        job = f"{run.job_namespace}/{run.job_name}"
        code = run.code
        if not code or not (code.get("commit") or code.get("version")):
            problems.append(f"job {job}: no code commit recorded")
        elif code.get("dirty"):
            problems.append(f"job {job}: commit {code.get('commit')} had local edits")
    if not problems:
        yield Finding(requirement="clean-code", ok=True,
                      detail="every upstream run ran a clean commit")
    for problem in problems:
        yield Finding(requirement="clean-code", ok=False, detail=problem)


def _sensitive(result: Trace, policy: Policy) -> Iterable[Finding]:
    allowed = set(policy.allow_sensitive)
    problems = []
    for d in result.datasets:
        if d.name in allowed:
            continue
        marked = [t for t in d.tags if is_sensitive(t, policy.sensitive_markers)
                  and t not in allowed]
        if marked:
            problems.append(f"dataset {d.namespace} {d.name} is tagged {', '.join(marked)}")
    if not problems:
        yield Finding(requirement="no-sensitive-inputs", ok=True,
                      detail="no upstream dataset is tagged sensitive")
    for problem in problems:
        yield Finding(requirement="no-sensitive-inputs", ok=False, detail=problem)


def _approval(model_version: Mapping[str, Any] | None, approvals: list[Mapping[str, Any]],
              policy: Policy) -> Finding:
    tags = dict((model_version or {}).get("tags") or {})
    for tag in policy.approval_tags:
        if tags.get(tag):
            return Finding(requirement="approval", ok=True,
                           detail=f"approved by {tags[tag]} (registry tag {tag})")
    if approvals:
        who = approvals[-1].get("actor") or approvals[-1].get("approver") or "unknown"
        return Finding(requirement="approval", ok=True, detail=f"approval recorded ({who})")
    return Finding(requirement="approval", ok=False,
                   detail="no recorded approval (set registry tag "
                          f"{policy.approval_tags[0]} or record a promotion approval)")


def ledger_approvals(name: str, version: str) -> list[dict[str, Any]]:
    """The approvals ``provlink approve`` recorded in the configured ledger for this version
    (none when there is no ledger here)."""
    from provlink.config import ProvlinkConfig
    from provlink.delivery.spool_open import configured_spool, spool_exists
    from provlink.governance import registry_log
    from provlink.governance.log import Ledger

    config = ProvlinkConfig.load()
    if not spool_exists(config):
        return []
    ledger = Ledger(configured_spool(config))
    return [{"actor": a.actor, "alias": a.alias, "note": a.value, "time_ms": a.time_ms}
            for a in registry_log.actions(ledger, name)
            if a.action == registry_log.APPROVAL and a.version == version]


def ledger_evidence(model: str, record: Mapping[str, Any] | None, *,
                    witness: WitnessClient | None = None) -> LedgerEvidence:
    """The local ledger verified (entries, tree, signatures), the model version's registry
    anchor checked against it, and — with ``witness`` (``provlink serve``) — a witness
    cosignature on a checkpoint that covers the anchored leaf."""
    from provlink.config import ProvlinkConfig
    from provlink.delivery.spool_open import configured_spool, location
    from provlink.governance.anchors import TAG_LEAF, check_anchor
    from provlink.governance.keys import load_verifier
    from provlink.governance.ledger import verify
    from provlink.governance.log import Ledger

    config = ProvlinkConfig.load()
    tags = dict((record or {}).get("tags") or {})
    try:
        ledger = Ledger(configured_spool(config))
        verifier = load_verifier(None, config)
        report = verify(ledger.store, verifier=verifier)
    except Exception as exc:  # noqa: BLE001 - an unreadable ledger is a failed requirement
        return LedgerEvidence(verified=False, detail=f"the ledger at {location(config)} could "
                                                     f"not be read: {exc}")
    witnessed = _witnessed(ledger, witness, tags.get(TAG_LEAF))
    if not report.ok:
        return LedgerEvidence(verified=False, witnessed=witnessed,
                              detail=f"the local ledger failed verification: {report.first}")
    if TAG_LEAF not in tags:
        return LedgerEvidence(verified=False, witnessed=witnessed,
                              detail=f"{model} carries no ledger anchor (registry tag "
                                     f"{TAG_LEAF})")
    problem = check_anchor(ledger, model, tags, verifier)
    if problem is not None:
        return LedgerEvidence(verified=False, witnessed=witnessed, detail=str(problem))
    signed = "signed" if verifier is not None else "unsigned (no public key)"
    return LedgerEvidence(verified=True, witnessed=witnessed,
                          detail=f"ledger intact ({report.entries} entries, checkpoints "
                                 f"{signed}); {model} anchored at leaf {tags[TAG_LEAF]}")


def _witnessed(ledger: Any, witness: WitnessClient | None, leaf: str | None) -> bool | None:
    """True when ``witness`` holds a cosigned, consistent checkpoint covering ``leaf``;
    None when there is no witness to ask."""
    if witness is None or leaf is None or not leaf.isdigit():
        return None
    from provlink.errors import LineageAuthError, LineageQueryError

    try:
        held = witness.held(ledger.origin)
    except LineageAuthError:
        raise
    except LineageQueryError:
        return None
    return any(r.get("status") == "consistent" and r.get("cosigned")
               and int(r["treeSize"]) > int(leaf) for r in held)


def gate_model(model: str, *, lineage_url: str | None = None, tracking_uri: str | None = None,
               policy: Policy | Path | str | None = None) -> GateResult:
    """:func:`gate` for ``models:/NAME/VERSION`` from Python (an Airflow task, a Dagster asset
    check): the backend from ``lineage_url`` or provlink's config, the registry from
    ``tracking_uri`` or MLflow's configuration.

    Example::

        result = gate_model("models:/churn/7", policy="promotion_policy.yml")
        if not result.passed:
            raise RuntimeError("; ".join(f.detail for f in result.unmet))
    """
    from provlink.config import ProvlinkConfig
    from provlink.errors import LineageQueryError
    from provlink.governance.clients import lineage_api, witness_client
    from provlink.governance.registry_view import MlflowRegistry
    from provlink.governance.trace import parse_model_uri, trace
    from provlink.tracking_uri import tracking_namespace

    rules = policy if isinstance(policy, Policy) else Policy.load(policy)
    registry = MlflowRegistry(tracking_uri)
    name, version, alias = parse_model_uri(model)
    if alias is not None:
        version = registry.aliases(name).get(alias)
        if version is None:
            raise LineageQueryError(f"{model}: alias {alias!r} is not set")
    assert version is not None and registry.tracking_uri is not None
    record = registry.model_version(name, version)
    config = ProvlinkConfig.load()
    api = lineage_api(config, lineage_url)
    result = trace(api, namespace=tracking_namespace(registry.tracking_uri), name=name,
                   version=version, registry_tags=dict((record or {}).get("tags") or {}))
    witness = witness_client(config, api.base_url)
    return gate(result, rules, ledger=ledger_evidence(result.model, record, witness=witness),
                model_version=record, approvals=ledger_approvals(name, version))
