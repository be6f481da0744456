"""Verifying the ledger: entries, tree, checkpoints, signatures and the spool's rows agree.

One pass over the leaves in bounded batches recomputes every leaf hash from the stored
entry bytes and the tree's root at every checkpoint's size (a compact range, so memory
stays O(log n) for the tree), then one pass over the spool's event rows checks each
against its entry. What is wrong is named per entry, first bad one first:

- ``edited`` — an entry's bytes no longer hash to its stored leaf hash, or an event row's
  digest, run or payload differs from what its entry recorded;
- ``missing`` — a leaf index, or an event row the log recorded, is gone;
- ``inserted`` — an event row no entry recorded;
- ``reordered`` — an entry sits at a leaf index other than its own ``seq``;
- ``truncated`` — a checkpoint covers more leaves than the log has;
- ``rewritten`` — leaf hashes were recomputed: a checkpoint's root no longer matches;
- ``state`` — an event's delivery state differs from the last delivery entry for it;
- ``payload missing`` — a payload dropped without a ``retention.prune`` entry;
- ``bad signature`` / ``unsigned`` — a checkpoint not signed by the ledger's public key.

Without a public key the checkpoints only prove internal consistency (whoever rewrites
the file can rewrite them too), and the report says so; the witness and the registry
anchors (``provlink verify --witness/--registry``) are then what catches a rewrite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from provlink.canonical import sha256_hex
from provlink.governance import entry as entries
from provlink.governance.log import Ledger, LedgerStore, StoredCheckpoint
from provlink.governance.merkle import Frontier
from provlink.governance.note import NoteError, Verifier, parse_checkpoint

BATCH = 5000
_loads = json.JSONDecoder().decode
DERIVED = frozenset({"state", "payload missing"})
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Problem:
    index: int | None  # leaf index of the first bad entry (None: not tied to one leaf)
    what: str
    detail: str

    def __str__(self) -> str:
        where = f"entry {self.index}" if self.index is not None else "ledger"
        return f"{where}: {self.what}: {self.detail}"


@dataclass(slots=True, kw_only=True)
class LedgerReport:
    entries: int = 0
    root: str | None = None
    origin: str = ""
    checkpoints: int = 0
    latest: StoredCheckpoint | None = None
    signed: bool | None = None  # None: no public key to check signatures with
    uncovered: int = 0  # entries after the latest checkpoint
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The earliest bad entry; a delivery state or payload that only looks wrong because
        an entry before it was tampered with never hides that entry."""
        for pool in ([p for p in self.problems if p.what not in DERIVED], self.problems):
            with_index = [p for p in pool if p.index is not None]
            if with_index:
                return min(with_index, key=lambda p: p.index or 0)
            if pool:
                return pool[0]
        return None

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {"ok": self.ok, "origin": self.origin, "entries": self.entries,
                "rootHash": self.root, "checkpoints": self.checkpoints,
                "latestCheckpoint": self.latest.as_dict() if self.latest else None,
                "signaturesChecked": self.signed is not None, "uncovered": self.uncovered,
                "firstProblem": str(first) if first else None,
                "problems": [{"entry": p.index, "what": p.what, "detail": p.detail}
                             for p in self.problems], "notes": list(self.notes)}


@dataclass(slots=True)
class _Expected:
    leaf: int
    digest: str
    run_id: str
    state: str = "pending"
    pruned: bool = False


def verify(store: LedgerStore, *, verifier: Verifier | None = None,
           progress: Progress | None = None, max_problems: int = 100,
           all_signatures: bool = False) -> LedgerReport:
    """Check everything the log can check by itself; see the module docstring."""
    ledger = Ledger(store)
    report = LedgerReport(origin=ledger.origin)
    checkpoints = ledger.checkpoints()
    report.checkpoints = len(checkpoints)
    report.latest = checkpoints[-1] if checkpoints else None
    total = ledger.size()
    expected = _walk_leaves(store, checkpoints, report, total, progress)
    _check_checkpoints(checkpoints, report, verifier, all_signatures)
    _check_rows(store, expected, report)
    if report.latest is not None:
        report.uncovered = max(0, report.entries - report.latest.checkpoint.size)
    del report.problems[max_problems:]
    return report


def _walk_leaves(store: LedgerStore, checkpoints: list[StoredCheckpoint], report: LedgerReport,
                 total: int, progress: Progress | None) -> dict[int, _Expected]:
    by_size: dict[int, list[StoredCheckpoint]] = {}
    for cp in checkpoints:
        by_size.setdefault(cp.checkpoint.size, []).append(cp)
    frontier = Frontier()
    expected: dict[int, _Expected] = {}
    problems = report.problems
    matched_size = 0

    def at_size() -> None:
        nonlocal matched_size
        for cp in by_size.pop(frontier.size, ()):
            if cp.checkpoint.root != frontier.root():
                start = matched_size
                if any(p.index is not None and p.index >= start for p in problems):
                    continue  # already named exactly
                problems.append(Problem(start, "rewritten", (
                    f"checkpoint #{cp.id} of {frontier.size} entries has root "
                    f"{cp.checkpoint.root.hex()[:16]}…, the log now hashes to "
                    f"{frontier.root().hex()[:16]}… (an entry in {start}..{frontier.size - 1} "
                    "changed with its leaf hash recomputed)")))
            else:
                matched_size = frontier.size

    at_size()
    push = frontier.push
    start = 0

    def batch(tables: Any) -> list[tuple[int, str, str, bytes, str | None]]:
        return tables.leaves(start, BATCH)  # type: ignore[no-any-return]

    while True:
        rows = store.read(batch)
        if not rows:
            break
        for index, _kind, text, stored, payload in rows:
            if index != frontier.size:
                problems.append(Problem(frontier.size, "missing",
                                        f"leaves {frontier.size}..{index - 1} are gone"))
                while frontier.size < index:  # keep positions so later checks stay aligned
                    frontier.push(b"\0" * 32)
                    at_size()
            actual = sha256(b"\0" + text.encode()).digest()  # RFC 9162 leaf hash, inlined
            if actual != stored:
                problems.append(Problem(index, "edited", "its entry no longer hashes to its "
                                        "stored leaf hash"))
            _read_entry(index, text, payload, expected, problems)
            push(actual)
            if frontier.size in by_size:
                at_size()
        start = rows[-1][0] + 1
        if progress is not None:
            progress(frontier.size, total)
    report.entries = frontier.size
    report.root = frontier.root().hex()
    for size, cps in sorted(by_size.items()):
        for cp in cps:
            problems.append(Problem(report.entries, "truncated", (
                f"checkpoint #{cp.id} covers {size} entries, the log has {report.entries}")))
    return expected


def _read_entry(index: int, text: str, payload: str | None, expected: dict[int, _Expected],
                problems: list[Problem]) -> None:
    try:
        entry = _loads(text)
        seq, kind = entry["seq"], entry["kind"]
    except (ValueError, KeyError, TypeError):
        problems.append(Problem(index, "edited", "its entry is not a ledger entry"))
        return
    if seq != index:
        problems.append(Problem(index, "reordered", f"the entry of leaf {seq} is at leaf {index}"))
    if kind == entries.EVENT:
        expected[int(entry.get("event_seq", -1))] = _Expected(
            index, str(entry.get("payload_sha256")), str(entry.get("run_id")))
    elif kind == entries.DELIVERY:
        for seq_ in entry.get("events", ()):
            if seq_ in expected:
                expected[seq_].state = str(entry.get("state"))
            else:
                problems.append(Problem(index, "edited", f"delivery of unknown event {seq_}"))
    elif kind == entries.PRUNE:
        for seq_ in entry.get("events", ()):
            if seq_ in expected:
                expected[seq_].pruned = True
    elif payload is not None and sha256_hex(payload.encode()) != entry.get("payload_sha256"):
        problems.append(Problem(index, "edited", f"the payload of this {kind} entry changed"))


def _check_checkpoints(checkpoints: list[StoredCheckpoint], report: LedgerReport,
                       verifier: Verifier | None, all_signatures: bool) -> None:
    """Sizes never go back and every origin is ours; signatures: the latest checkpoint's
    (its root was matched against the recomputed tree, so it vouches for every entry it
    covers), or every one's with ``all_signatures``."""
    previous = 0
    signed_from: int | None = None
    for cp in checkpoints:
        if cp.checkpoint.size < previous:
            report.problems.append(Problem(cp.checkpoint.size, "rewritten", (
                f"checkpoint #{cp.id} has {cp.checkpoint.size} entries, an earlier one "
                f"{previous}: the log went back")))
        previous = max(previous, cp.checkpoint.size)
        if cp.checkpoint.origin != report.origin:
            report.problems.append(Problem(None, "rewritten", (
                f"checkpoint #{cp.id} names log {cp.checkpoint.origin!r}, "
                f"not {report.origin!r}")))
        if verifier is None or not (all_signatures or cp is checkpoints[-1]):
            continue
        try:
            note = parse_checkpoint(cp.note)[1]
        except NoteError as exc:
            report.problems.append(Problem(None, "bad signature", f"checkpoint #{cp.id}: {exc}"))
            continue
        ok = note.signed_by(verifier) if note is not None else None
        if ok is False:
            report.problems.append(Problem(cp.checkpoint.size - 1 if cp.checkpoint.size else None,
                                           "bad signature", (
                f"checkpoint #{cp.id} ({cp.checkpoint.size} entries) is not validly signed "
                f"by {verifier.name}")))
        elif ok is None and signed_from is not None:
            report.problems.append(Problem(cp.checkpoint.size - 1 if cp.checkpoint.size else None,
                                           "unsigned", (
                f"checkpoint #{cp.id} carries no signature of {verifier.name}, "
                f"though checkpoint #{signed_from} did")))
        elif ok and signed_from is None:
            signed_from = cp.id
    if verifier is None:
        report.notes.append("checkpoints are not signature-checked: no public key (make one "
                            "with `provlink keys generate`, or pass --public-key)")
        return
    report.signed = signed_from is not None
    if checkpoints and signed_from is None:
        which = "no checkpoint is" if all_signatures else "the latest checkpoint is not"
        report.problems.append(Problem(None, "unsigned", (
            f"{which} signed by {verifier.name}: the log may have been rewritten "
            "(or the key was made after the last checkpoint)")))


def _check_rows(store: LedgerStore, expected: dict[int, _Expected], report: LedgerReport) -> None:
    seen: set[int] = set()
    for row in store.read(lambda t: t.event_rows()):
        seq, run_id, payload, digest, state, leaf = row
        want = expected.get(seq)
        if want is None:
            if leaf is not None or report.entries:
                report.problems.append(Problem(leaf, "inserted",
                                               f"spooled event {seq} is in no ledger entry"))
            continue
        seen.add(seq)
        problems = report.problems
        if digest != want.digest or run_id != want.run_id or leaf != want.leaf:
            problems.append(Problem(want.leaf, "edited", f"spooled event {seq}'s digest, run "
                                    "or leaf differs from its entry"))
        if payload is not None and sha256_hex(payload.encode()) != want.digest:
            problems.append(Problem(want.leaf, "edited", f"spooled event {seq}'s payload "
                                    "changed"))
        if payload is None and not want.pruned:
            problems.append(Problem(want.leaf, "payload missing", (
                f"spooled event {seq}'s payload was dropped without a retention.prune entry")))
        if entries.STATE_NAMES.get(state, str(state)) != want.state:
            problems.append(Problem(want.leaf, "state", (
                f"spooled event {seq} is {entries.STATE_NAMES.get(state, state)}, its last "
                f"delivery entry says {want.state}")))
    for seq, want in expected.items():
        if seq not in seen:
            report.problems.append(Problem(want.leaf, "missing", f"spooled event {seq} is gone"))


def latest_entry_for_run(spool: Any, run_id: str) -> tuple[int, str] | None:
    """(leaf index, hex leaf hash) of the newest ledger entry of one OpenLineage run."""
    return spool.latest_for_run(run_id)  # type: ignore[no-any-return]
