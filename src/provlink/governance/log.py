"""The verifiable log: entries as RFC 9162 Merkle leaves, signed checkpoints, proofs.

Storage is behind :class:`LedgerStore` (the SQLite spool today; a PostgreSQL spool later):
``write(fn)`` runs ``fn`` on the store's tables in one serialised transaction. Appending a
leaf is the only work on a task's critical path; a checkpoint fills the node cache with
the few subtrees completed since the last one, takes the root from the compact range and
signs it (Ed25519, ~50 µs) in the same transaction, so checkpoints are totally ordered
and each one's tree extends the previous one's.

Another subsystem records something in the ledger with :meth:`Ledger.append`::

    ledger = Ledger(spool)
    leaf = ledger.append("mlflow.registry.alias_set",
                         {"model": "churn", "alias": "champion", "version": "3",
                          "previous": "2", "actor": "alice"})
    checkpoint = ledger.checkpoint(signer)     # covers ``leaf.index``
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from provlink.canonical import canonical_json, sha256_hex
from provlink.governance import entry as entries
from provlink.governance.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    root_hash,
)
from provlink.governance.note import Checkpoint, NoteError, Signer, parse_checkpoint

T = TypeVar("T")


class LedgerTablesLike(Protocol):
    def origin(self) -> str: ...
    def size(self) -> int: ...
    def add(self, kind: str, fields: Mapping[str, Any], payload: str | None = None,
            *, time_ms: int | None = None) -> tuple[int, bytes]: ...
    def perfect(self, level: int, index: int) -> bytes: ...
    def fill_nodes(self) -> Frontier: ...
    def add_checkpoint(self, size: int, root: bytes, time_ms: int, note: str) -> int: ...
    def checkpoints(self) -> Iterator[tuple[int, int, bytes, int, str]]: ...
    def latest_checkpoint(self) -> tuple[int, int, bytes, int, str] | None: ...
    def leaves(self, start: int, limit: int) -> list[tuple[int, str, str, bytes, str | None]]: ...
    def last_anchor(self) -> int | None: ...
    def set_anchor(self, size: int) -> None: ...
    def event_rows(self) -> list[tuple[int, str, str | None, str, int, int | None]]: ...


class LedgerStore(Protocol):
    """Where the log lives. ``write`` is one serialised transaction; ``read`` a snapshot."""

    @property
    def origin(self) -> str: ...
    def write(self, work: Callable[[Any], T], what: str = ...) -> T: ...
    def read(self, work: Callable[[Any], T]) -> T: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaf:
    index: int
    hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCheckpoint:
    """A checkpoint as made: its position in the sequence, the tree head and the note."""

    id: int
    checkpoint: Checkpoint
    note: str
    proof_from: int | None = None  # anchors: size of the previous anchor checkpoint
    proof: tuple[bytes, ...] = ()  # anchors: consistency proof from it to this one

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {"id": self.id, "origin": cp.origin, "treeSize": cp.size,
                "rootHash": cp.root.hex(), "timeMs": cp.time_ms, "note": self.note}


class Ledger:
    """The log over one store; cheap to build, holds no state of its own."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    @property
    def origin(self) -> str:
        return self.store.origin

    def append(self, kind: str, payload: Mapping[str, Any], *, run_id: str | None = None,
               fields: Mapping[str, Any] | None = None) -> Leaf:
        """Record one action as a new leaf: its payload is kept (prunable) and its RFC 8785
        digest, ``run_id`` and ``fields`` go into the entry itself."""
        data = canonical_json(dict(payload))
        body = entries.generic(sha256_hex(data), run_id, fields)
        index, digest = self.store.write(lambda t: t.add(kind, body, data.decode()), "append to")
        return Leaf(index=index, hash=digest)

    def checkpoint(self, signer: Signer | None, *, anchor: bool = False) -> StoredCheckpoint:
        """Make, sign (when there is a key) and store a checkpoint of the whole log now.

        An ``anchor`` (one that leaves the machine in an event) also carries the
        consistency proof from the previous anchor, so a witness that holds that one can
        check this one without asking the log.
        """
        origin = self.origin
        return self.store.write(
            lambda tables: self.make_checkpoint(tables, signer, origin, anchor=anchor),
            "checkpoint")

    @staticmethod
    def make_checkpoint(tables: LedgerTablesLike, signer: Signer | None, origin: str, *,
                        anchor: bool = False) -> StoredCheckpoint:
        """:meth:`checkpoint` inside a transaction the caller holds (e.g. the one that just
        appended a terminal event: one commit for both)."""
        frontier = tables.fill_nodes()
        cp = Checkpoint(origin=origin, size=frontier.size, root=frontier.root(),
                        time_ms=entries.now_ms())
        note = cp.note(signer)
        proof_from: int | None = None
        proof: tuple[bytes, ...] = ()
        if anchor:
            proof_from = tables.last_anchor()
            if proof_from is not None and proof_from <= cp.size:
                proof = tuple(consistency_proof(tables, proof_from, cp.size))
            tables.set_anchor(cp.size)
        return StoredCheckpoint(id=tables.add_checkpoint(cp.size, cp.root, cp.time_ms, note),
                                checkpoint=cp, note=note, proof_from=proof_from, proof=proof)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self.store.read(lambda t: t.latest_checkpoint())
        return None if row is None else _stored(row)

    def checkpoints(self) -> list[StoredCheckpoint]:
        return [_stored(row) for row in self.store.read(lambda t: list(t.checkpoints()))]

    def size(self) -> int:
        return int(self.store.read(lambda t: t.size()))

    # -- proofs (computed from the stored leaves and the node cache) ---------------------
    def _synced(self, work: Callable[[LedgerTablesLike], T]) -> T:
        def run(tables: LedgerTablesLike) -> T:
            tables.fill_nodes()
            return work(tables)

        return self.store.write(run, "read")

    def root(self, size: int) -> bytes:
        return EMPTY_ROOT if size == 0 else self._synced(lambda t: root_hash(t, size))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self._synced(lambda t: inclusion_proof(t, index, size))

    def consistency(self, old: int, new: int) -> list[bytes]:
        return self._synced(lambda t: consistency_proof(t, old, new))

    def leaf(self, index: int) -> tuple[str, str, bytes, str | None] | None:
        """(kind, entry text, stored leaf hash, payload) of one leaf."""
        rows = self.store.read(lambda t: t.leaves(index, 1))
        if not rows or rows[0][0] != index:
            return None
        return rows[0][1], rows[0][2], bytes(rows[0][3]), rows[0][4]


def _stored(row: tuple[int, int, bytes, int, str]) -> StoredCheckpoint:
    try:
        cp = parse_checkpoint(row[4])[0]
    except NoteError:
        cp = Checkpoint(origin="", size=row[1], root=bytes(row[2]), time_ms=row[3])
    return StoredCheckpoint(id=row[0], checkpoint=cp, note=row[4])
