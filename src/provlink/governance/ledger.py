"""The tamper-evident ledger: verification of the hash chain the spool writes.

Every spooled event is a ledger entry: ``entry_hash = sha256(seq, prev_hash,
payload_sha256)``. An edited payload breaks its ``payload_sha256``; an edited digest breaks
its ``entry_hash``; a deleted or reordered entry breaks the next ``prev_hash``. Truncating
the tail leaves a valid shorter chain, so the head hash is worth recording elsewhere (the
MLflow link writes the entry hash of a run's terminal event onto the model version).

The payload digest is over the stored text, which for every row written since the move to
RFC 8785 is the event's canonical form, so ``payload_sha256`` equals
``provlink.canonical.json_digest(event)`` and the backend's event hash (older rows, sorted
JSON with non-ASCII kept, still verify; only their digest differs from the backend's).
"""

from __future__ import annotations

from dataclasses import dataclass

from provlink.canonical import sha256_hex
from provlink.delivery.spool import GENESIS, Spool, entry_hash


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerReport:
    entries: int
    head_seq: int | None
    head_hash: str | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(spool: Spool, *, max_problems: int = 100) -> LedgerReport:
    """Walk the whole chain in bounded batches and report every break found."""
    problems: list[str] = []
    prev, expected_seq, count = GENESIS, 1, 0
    head_seq: int | None = None
    for entry in spool.entries():
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                f"entry {entry.seq}: expected sequence {expected_seq} (entries missing)")
        if entry.prev_hash != prev:
            problems.append(f"entry {entry.seq}: prev_hash does not match entry {entry.seq - 1}")
        if entry.payload is not None:
            actual = sha256_hex(entry.payload.encode())
            if actual != entry.payload_sha256:
                problems.append(f"entry {entry.seq}: payload was modified")
        if entry.entry_hash != entry_hash(entry.seq, entry.prev_hash, entry.payload_sha256):
            problems.append(f"entry {entry.seq}: entry_hash does not match its contents")
        prev, expected_seq, head_seq = entry.entry_hash, entry.seq + 1, entry.seq
        if len(problems) >= max_problems:
            break
    return LedgerReport(entries=count, head_seq=head_seq,
                        head_hash=prev if head_seq is not None else None, problems=tuple(problems))


def latest_entry_for_run(spool: Spool, run_id: str) -> tuple[int, str] | None:
    """(seq, entry_hash) of the newest ledger entry of one OpenLineage run."""
    return spool.latest_for_run(run_id)
