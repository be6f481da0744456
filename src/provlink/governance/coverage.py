"""``coverage``: how much of what ran is on the record, and where the gaps are.

Read from the backend's raw events (``GET /api/v1/events/lineage``, a page of up to 10,000
at a time), so 10,000 runs cost a couple of dozen requests, not one per run, and the
figures are computed from what was emitted rather than from a store's summary:

- traceability: the share of model versions whose upstream chain — followed through the
  exact dataset versions (content digests) each run read — has a content digest on every
  dataset and a complete run at every step;
- audit completeness: the share of capture points (runs) with a START and a terminal event,
  and, among the step runs, with inputs and outputs (a run that other runs name as their
  parent — a DAG run, a Dagster job run — orchestrates: its steps carry the data, so it
  is not counted as a step without inputs or outputs); the share of events in runs whose
  terminal event carries a ledger checkpoint, and a witnessed one (covered by a checkpoint
  the witness cosigned, the rule ``evidence`` applies; this machine's latest checkpoint is
  handed to the witness first, as ``evidence`` and ``verify --witness`` do, since events
  delivered straight into the embedded store reach no witness on the way);
- unauthorized registry changes, when a promotion history is available;
- the gaps by job, worst first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from provlink.events.facets import REGISTRY_ACTION
from provlink.governance.trace import MODELS_PREFIX, LineageApi

if TYPE_CHECKING:
    from provlink.governance.log import Ledger
    from provlink.governance.witness_client import WitnessClient

TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})
CHECKPOINT_FACETS = ("provlink_ledger",)  # ProvlinkLedgerRunFacet (events/facets.py)
_PAGE = 10_000


@dataclass(slots=True)
class RunRecord:
    """What the events of one run said."""

    run_id: str
    job: str
    types: set[str] = field(default_factory=set)
    inputs: dict[tuple[str, str], str | None] = field(default_factory=dict)
    outputs: dict[tuple[str, str], str | None] = field(default_factory=dict)
    events: int = 0
    checkpoint: Mapping[str, Any] | None = None
    started: str | None = None
    orchestrates: bool = False  # another run names this one as its parent

    @property
    def step(self) -> bool:
        """A run that does the work itself, so is expected to read and write data."""
        return not self.orchestrates or bool(self.inputs or self.outputs)

    @property
    def complete(self) -> bool:
        return "START" in self.types and bool(self.types & TERMINAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobGaps:
    job: str
    runs: int
    missing_start: int = 0
    missing_terminal: int = 0
    no_inputs: int = 0
    no_outputs: int = 0
    datasets_without_digest: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return (self.missing_start + self.missing_terminal + self.no_inputs + self.no_outputs
                + len(self.datasets_without_digest))


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelTraceability:
    model: str
    namespace: str
    traceable: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageReport:
    runs: int
    events: int
    models: tuple[ModelTraceability, ...]
    runs_with_start_and_end: int
    step_runs: int
    runs_with_inputs_and_outputs: int
    events_with_checkpoint: int
    events_with_witnessed_checkpoint: int
    gaps: tuple[JobGaps, ...]
    unauthorized_changes: tuple[Mapping[str, Any], ...] | None = None  # None: not known

    def share(self, part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    @property
    def traceability(self) -> float | None:
        return self.share(sum(m.traceable for m in self.models), len(self.models))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["figures"] = {
            "traceability": self.traceability,
            "runsWithStartAndTerminal": self.share(self.runs_with_start_and_end, self.runs),
            "runsWithInputsAndOutputs": self.share(self.runs_with_inputs_and_outputs,
                                                    self.step_runs),
            "eventsWithLedgerCheckpoint": self.share(self.events_with_checkpoint, self.events),
            "eventsWithWitnessedCheckpoint": self.share(self.events_with_witnessed_checkpoint,
                                                        self.events),
            "unauthorizedRegistryChanges": (None if self.unauthorized_changes is None
                                            else len(self.unauthorized_changes)),
        }
        for gap, data in zip(self.gaps, out["gaps"], strict=False):
            data["total"] = gap.total
        return out


def all_events(api: LineageApi, *, after: str | None = None, before: str | None = None,
               progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Every event the backend holds (in a time window), oldest first, a page at a time."""
    offset = 0
    while True:
        params: dict[str, Any] = {"limit": _PAGE, "offset": offset, "sortDirection": "asc"}
        if after:
            params["after"] = after
        if before:
            params["before"] = before
        page = api.get("events", "lineage", **params) or {}
        found = list(page.get("events", []))
        yield from found
        offset += len(found)
        if progress is not None:
            progress(offset)
        if len(found) < _PAGE:
            return


def collect_runs(events: Iterable[Mapping[str, Any]]) -> tuple[dict[str, RunRecord], int]:
    runs: dict[str, RunRecord] = {}
    parents: set[str] = set()
    count = 0
    for event in events:
        count += 1
        run = event.get("run") or {}
        run_id = run.get("runId")
        if not run_id or REGISTRY_ACTION in (run.get("facets") or {}):
            continue  # a registry action is a record of the registry, not a pipeline step
        job = event.get("job") or {}
        record = runs.get(run_id)
        if record is None:
            record = runs[run_id] = RunRecord(run_id=run_id,
                                              job=f"{job.get('namespace')}/{job.get('name')}")
        record.events += 1
        kind = str(event.get("eventType") or "OTHER")
        record.types.add(kind)
        if kind == "START":
            record.started = event.get("eventTime")
        for key, into in (("inputs", record.inputs), ("outputs", record.outputs)):
            for dataset in event.get(key) or ():
                ident = (str(dataset.get("namespace")), str(dataset.get("name")))
                into[ident] = _digest(dataset) or into.get(ident)
        facets = (event.get("run") or {}).get("facets") or {}
        parent_id = ((facets.get("parent") or {}).get("run") or {}).get("runId")
        if parent_id and parent_id != run_id:
            parents.add(parent_id)
        for name in CHECKPOINT_FACETS:
            if name in facets:
                record.checkpoint = facets[name]
    for parent_id in parents & runs.keys():
        runs[parent_id].orchestrates = True
    return runs, count


def coverage(api: LineageApi, *, unauthorized: Iterable[Mapping[str, Any]] | None = None,
             progress: Callable[[int], None] | None = None,
             witness: WitnessClient | None = None,
             ledger: Ledger | None = None) -> CoverageReport:
    """Coverage of everything the backend holds; with ``witness`` (``provlink serve`` is
    one), it is also asked which checkpoints it cosigned, after being handed ``ledger``'s
    latest one (this machine's log)."""
    runs, count = collect_runs(all_events(api, progress=progress))
    if witness is not None and ledger is not None:
        hand_latest(witness, ledger)
    cosigned = _cosigned_sizes(witness, runs.values()) if witness else {}
    return coverage_of(runs, count, unauthorized=unauthorized, cosigned=cosigned)


def hand_latest(witness: WitnessClient, ledger: Ledger) -> None:
    """Give the witness the log's latest checkpoint, proved consistent with what it holds
    (what ``evidence`` does before it asks): a witness that cannot take it (Marquez, a
    read-only key) leaves the figure at what it already holds."""
    from provlink.errors import LineageAuthError, LineageQueryError
    from provlink.governance.witness_client import push_latest

    try:
        push_latest(ledger, witness)
    except (LineageAuthError, LineageQueryError):
        return


def _cosigned_sizes(witness: WitnessClient, runs: Iterable[RunRecord]) -> dict[str, int]:
    """origin → the largest tree size a witness cosigned as consistent."""
    from provlink.errors import LineageAuthError, LineageQueryError

    out: dict[str, int] = {}
    for origin in {str(r.checkpoint.get("origin")) for r in runs if r.checkpoint}:
        try:
            held = witness.held(origin)
        except LineageAuthError:
            raise
        except LineageQueryError:
            continue  # a backend that is no witness (Marquez): nothing counts as witnessed
        sizes = [int(h["treeSize"]) for h in held
                 if h.get("status") == "consistent" and h.get("cosigned")]
        if sizes:
            out[origin] = max(sizes)
    return out


def coverage_of(runs: Mapping[str, RunRecord], events: int, *,
                unauthorized: Iterable[Mapping[str, Any]] | None = None,
                cosigned: Mapping[str, int] | None = None) -> CoverageReport:
    producers: dict[tuple[str, str, str | None], RunRecord] = {}
    for record in runs.values():
        for (namespace, name), digest in record.outputs.items():
            producers.setdefault((namespace, name, digest), record)
    models = [ModelTraceability(model="models:/" + name.removeprefix(MODELS_PREFIX),
                                namespace=namespace, **_traceability(record, producers))
              for (namespace, name, _), record in producers.items()
              if name.startswith(MODELS_PREFIX)]
    with_checkpoint = sum(r.events for r in runs.values() if r.checkpoint)
    cosigned = cosigned or {}
    witnessed = sum(r.events for r in runs.values() if r.checkpoint
                    and cosigned.get(str(r.checkpoint.get("origin")), -1)
                    >= int(r.checkpoint.get("treeSize") or 0))
    return CoverageReport(
        runs=len(runs), events=events,
        models=tuple(sorted(models, key=lambda m: m.model)),
        runs_with_start_and_end=sum(r.complete for r in runs.values()),
        step_runs=sum(r.step for r in runs.values()),
        runs_with_inputs_and_outputs=sum(bool(r.inputs and r.outputs) for r in runs.values()
                                         if r.step),
        events_with_checkpoint=with_checkpoint, events_with_witnessed_checkpoint=witnessed,
        gaps=_gaps(runs.values()),
        unauthorized_changes=None if unauthorized is None else tuple(unauthorized),
    )


def _traceability(start: RunRecord, producers: Mapping[tuple[str, str, str | None],
                                                        RunRecord]) -> dict[str, Any]:
    reasons: list[str] = []
    seen: set[str] = set()
    stack = [start]
    while stack:
        record = stack.pop()
        if record.run_id in seen:
            continue
        seen.add(record.run_id)
        if not record.complete:
            reasons.append(f"job {record.job} run {record.run_id}: no START or no terminal event")
        if not record.inputs:
            reasons.append(f"job {record.job} run {record.run_id}: recorded no inputs")
        for (namespace, name), digest in record.inputs.items():
            if digest is None and not name.startswith(MODELS_PREFIX):
                reasons.append(f"dataset {namespace} {name}: no content digest")
            parent = producers.get((namespace, name, digest))
            if parent is not None:
                stack.append(parent)
    return {"traceable": not reasons, "reasons": tuple(dict.fromkeys(reasons))}


def _gaps(runs: Iterable[RunRecord]) -> tuple[JobGaps, ...]:
    by_job: dict[str, list[RunRecord]] = {}
    for record in runs:
        by_job.setdefault(record.job, []).append(record)
    out = []
    for job, records in by_job.items():
        undigested = sorted({name for r in records
                             for (_, name), digest in (*r.inputs.items(), *r.outputs.items())
                             if digest is None and not name.startswith(MODELS_PREFIX)})
        gap = JobGaps(job=job, runs=len(records),
                      missing_start=sum("START" not in r.types for r in records),
                      missing_terminal=sum(not (r.types & TERMINAL) for r in records),
                      no_inputs=sum(r.step and not r.inputs for r in records),
                      no_outputs=sum(r.step and not r.outputs for r in records),
                      datasets_without_digest=tuple(undigested))
        if gap.total:
            out.append(gap)
    return tuple(sorted(out, key=lambda g: (-g.total, g.job)))


def _digest(dataset: Mapping[str, Any]) -> str | None:
    return ((dataset.get("facets") or {}).get("version") or {}).get("datasetVersion")
