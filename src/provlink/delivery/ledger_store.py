"""The ledger's tables in the spool's SQLite file, used inside the spool's transactions.

``ledger_leaves`` holds every entry (its canonical bytes and leaf hash; registry actions
also their payload), ``ledger_nodes`` caches the hash of every complete subtree (filled by
checkpoints, off the append path), ``ledger_checkpoints`` every checkpoint made (never
pruned), ``ledger_meta`` the log's origin and how far the node cache reaches.

The Merkle and entry logic lives in :mod:`provlink.governance`; this module only stores. A
PostgreSQL spool provides the same :class:`provlink.governance.log.LedgerStore` methods.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

from provlink.governance import entry as entries
from provlink.governance.merkle import Frontier, leaf_hash

META_QUERY = "SELECT key, value FROM ledger_meta WHERE key IN ('nodes_size', 'anchor_size')"
NODE_MEMORY = 65536  # cached subtree hashes per connection (~6 MB at most)

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_leaves (
    leaf_index INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    entry TEXT NOT NULL,
    leaf_hash BLOB NOT NULL,
    payload TEXT
);
CREATE TABLE IF NOT EXISTS ledger_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    id INTEGER PRIMARY KEY,
    tree_size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    time_ms INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class LedgerTables:
    """Reads and writes of the ledger tables on one connection (callers hold the lock and,
    for writes, an open ``BEGIN IMMEDIATE`` transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._frontier: Frontier | None = None
        # complete subtrees never change in an append-only log: recent ones stay in memory
        # (bounded), so a capture point's consistency proof reads no rows
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._meta_read: dict[str, str] | None = None
        self._meta_writes: dict[str, str] = {}

    def origin(self) -> str:
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = 'origin'").fetchone()
        if row:
            return str(row[0])
        origin = f"{os.uname().nodename}/provlink/{secrets.token_hex(4)}"
        self.conn.execute("INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('origin', ?)",
                          (origin,))
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = 'origin'").fetchone()
        return str(row[0])

    def size(self) -> int:
        row = self.conn.execute("SELECT MAX(leaf_index) FROM ledger_leaves").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def add(self, kind: str, fields: Mapping[str, Any], payload: str | None = None,
            *, time_ms: int | None = None, index: int | None = None) -> tuple[int, bytes]:
        """Append one entry as the next leaf (``index``: the caller read the size already);
        returns (leaf index, leaf hash)."""
        index = self.size() if index is None else index
        data = entries.encode(seq=index, time_ms=entries.now_ms() if time_ms is None else time_ms,
                              kind=kind, fields=fields)
        digest = leaf_hash(data)
        self.conn.execute("INSERT INTO ledger_leaves (leaf_index, kind, entry, leaf_hash, payload)"
                          " VALUES (?, ?, ?, ?, ?)", (index, kind, data.decode(), digest, payload))
        return index, digest

    # -- the node cache ----------------------------------------------------------------
    def perfect(self, level: int, index: int) -> bytes:
        known = self._nodes.get((level, index))
        if known is not None:
            return known
        if level == 0:
            row = self.conn.execute("SELECT leaf_hash FROM ledger_leaves WHERE leaf_index = ?",
                                    (index,)).fetchone()
        else:
            row = self.conn.execute("SELECT hash FROM ledger_nodes WHERE level = ? AND idx = ?",
                                    (level, index)).fetchone()
        if row is None:
            raise LookupError(f"no Merkle node at level {level}, index {index}")
        return self._remember(level, index, bytes(row[0]))

    def _remember(self, level: int, index: int, digest: bytes) -> bytes:
        if len(self._nodes) >= NODE_MEMORY:
            self._nodes.clear()
        self._nodes[(level, index)] = digest
        return digest

    def fill_nodes(self) -> Frontier:
        """Cache the complete subtrees of every leaf added since the last fill; returns the
        frontier of the whole tree (its root is the current root hash)."""
        cached = int(self._meta().get("nodes_size", 0))
        known = self._frontier  # the log only grows: a frontier once read stays right
        if known is None or known.size != cached:
            known = Frontier(cached, [self.perfect(lv, ix)
                                      for lv, ix in Frontier.levels_of(cached)])
        frontier = Frontier(known.size, known.hashes)
        new: list[tuple[int, int, bytes]] = []
        for index, digest in self.conn.execute(
                "SELECT leaf_index, leaf_hash FROM ledger_leaves WHERE leaf_index >= ? "
                "ORDER BY leaf_index", (cached,)).fetchall():
            frontier.push(self._remember(0, index, bytes(digest)),
                          lambda lv, ix, h: new.append((lv, ix, h)))
        if frontier.size != cached:
            self.conn.executemany("INSERT OR REPLACE INTO ledger_nodes (level, idx, hash) "
                                  "VALUES (?, ?, ?)", new)
            if len(new) < NODE_MEMORY:
                for level, index, digest in new:
                    self._remember(level, index, digest)
            self._meta_writes["nodes_size"] = str(frontier.size)
        self._frontier = Frontier(frontier.size, frontier.hashes)
        return frontier

    # -- checkpoints ---------------------------------------------------------------------
    def add_checkpoint(self, size: int, root: bytes, time_ms: int, note: str) -> int:
        cur = self.conn.execute("INSERT INTO ledger_checkpoints (tree_size, root_hash, time_ms, "
                                "note) VALUES (?, ?, ?, ?)", (size, root, time_ms, note))
        return int(cur.lastrowid or 0)

    def checkpoints(self) -> Iterator[tuple[int, int, bytes, int, str]]:
        yield from self.conn.execute("SELECT id, tree_size, root_hash, time_ms, note "
                                     "FROM ledger_checkpoints ORDER BY id").fetchall()

    def latest_checkpoint(self) -> tuple[int, int, bytes, int, str] | None:
        row: tuple[int, int, bytes, int, str] | None = self.conn.execute(
            "SELECT id, tree_size, root_hash, time_ms, note FROM "
            "ledger_checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        return row

    def leaves(self, start: int, limit: int) -> list[tuple[int, str, str, bytes, str | None]]:
        return self.conn.execute(
            "SELECT leaf_index, kind, entry, leaf_hash, payload FROM ledger_leaves "
            "WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?", (start, limit)).fetchall()

    def event_rows(self) -> list[tuple[int, str, str | None, str, int, int | None]]:
        """(seq, run_id, payload, payload_sha256, state, leaf_index) of every spooled event."""
        return self.conn.execute("SELECT seq, run_id, payload, payload_sha256, state, leaf_index "
                                 "FROM events ORDER BY seq").fetchall()

    def last_anchor(self) -> int | None:
        value = self._meta().get("anchor_size")
        return None if value is None else int(value)

    def set_anchor(self, size: int) -> None:
        self._meta_writes["anchor_size"] = str(size)

    def _meta(self) -> dict[str, str]:
        """The counters in ``ledger_meta``, read once per transaction (one statement)."""
        if self._meta_read is None:
            self._meta_read = dict(self.conn.execute(META_QUERY).fetchall())
        return {**self._meta_read, **self._meta_writes}

    def begin(self) -> None:
        """A transaction starts: forget what the last one read."""
        self._meta_read, self._meta_writes = None, {}

    def before_commit(self) -> None:
        """Write the counters changed in this transaction (one statement)."""
        if self._meta_writes:
            self.conn.executemany("INSERT OR REPLACE INTO ledger_meta (key, value) VALUES (?, ?)",
                                  list(self._meta_writes.items()))
            self._meta_writes = {}
