"""A witness: keeps every checkpoint it receives, checks each against the last one it
holds for that log, and cosigns the consistent ones (C2SP cosignature/v1).

The decision is pure (:func:`decide`); :class:`WitnessBook` is its storage (the server's
tables in :mod:`provlink.server.witness`, or a dict in tests). A checkpoint is *consistent*
when it is the first of its log (trust on first use), repeats the held one, or extends it
with a valid RFC 9162 consistency proof from the held size. One that cannot be shown
consistent — same size with another root, a consistency proof that does not verify — is an
*incident*: recorded, refused (HTTP 409), never cosigned. One that cannot be checked here —
newer but proved from a size this witness does not hold, or older than the held one (two
processes' terminal events can reach the backend crosswise) — is kept as *unproven*;
``provlink verify --witness`` still checks the local log against every checkpoint kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from provlink.governance.merkle import verify_consistency
from provlink.governance.note import Checkpoint, Note, Signer, Verifier, parse_checkpoint

CONSISTENT, UNPROVEN, INCIDENT = "consistent", "unproven", "incident"


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    size: int
    root: bytes
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    status: str  # consistent | unproven | incident
    reason: str
    checkpoint: Checkpoint
    cosigned: str | None = None  # the note with our cosignature added (consistent only)


class WitnessBook(Protocol):
    def latest(self, origin: str) -> Held | None:
        """The newest consistent checkpoint held for ``origin``."""

    def record(self, origin: str, decision: Decision, note: str, source: str) -> None:
        """Append one received checkpoint and what was decided (never updates a row)."""


def decide(held: Held | None, note: str, proof: Sequence[bytes], proof_from: int | None,
           signer: Signer, log_key: Verifier | None = None, now: int | None = None) -> Decision:
    """What a witness holding ``held`` makes of a received checkpoint ``note``."""
    cp, parsed = parse_checkpoint(note)
    if log_key is not None and (parsed is None or not parsed.signed_by(log_key)):
        return Decision(status=INCIDENT, reason="not signed by the log's key", checkpoint=cp)
    if held is not None:
        if cp.size == held.size and cp.root != held.root:
            return Decision(status=INCIDENT, checkpoint=cp, reason=(
                f"a second root for {cp.size} entries: the log forked or was rewritten"))
        if cp.size < held.size:  # e.g. two processes' terminal events delivered crosswise
            return Decision(status=UNPROVEN, checkpoint=cp, reason=(
                f"older than the held checkpoint of {held.size} entries (kept; `provlink "
                "verify --witness` checks it against the log)"))
        if cp.size > held.size:
            if proof_from is None or proof_from != held.size:
                return Decision(status=UNPROVEN, checkpoint=cp, reason=(
                    f"no consistency proof from the held size {held.size}"))
            if not verify_consistency(held.size, cp.size, held.root, cp.root, proof):
                return Decision(status=INCIDENT, checkpoint=cp, reason=(
                    f"not consistent with the held checkpoint of {held.size} entries"))
    stamp = int(time.time()) if now is None else now
    body = parsed if parsed is not None else Note(cp.text, ())
    cosigned = body.render(signer.cosign_line(cp.text, stamp))
    return Decision(status=CONSISTENT, checkpoint=cp, cosigned=cosigned,
                    reason="first checkpoint of this log" if held is None else "consistent")


def witness(book: WitnessBook, note: str, proof: Sequence[bytes], proof_from: int | None,
            signer: Signer, *, source: str, log_key: Verifier | None = None) -> Decision:
    """Decide and record (callers serialise calls per origin, e.g. in one transaction)."""
    cp = parse_checkpoint(note)[0]
    decision = decide(book.latest(cp.origin), note, proof, proof_from, signer, log_key)
    book.record(cp.origin, decision, note, source)
    return decision


class MemoryBook:
    """A :class:`WitnessBook` in memory (tests; a witness with no server)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, Decision, str, str]] = []

    def latest(self, origin: str) -> Held | None:
        for row_origin, decision, _note, _source in reversed(self.rows):
            if row_origin == origin and decision.status == CONSISTENT:
                cp = decision.checkpoint
                return Held(size=cp.size, root=cp.root, note=decision.cosigned or "")
        return None

    def record(self, origin: str, decision: Decision, note: str, source: str) -> None:
        self.rows.append((origin, decision, note, source))

    def held(self, origin: str) -> list[Checkpoint]:
        return [d.checkpoint for o, d, _, _ in self.rows if o == origin and d.status != INCIDENT]
