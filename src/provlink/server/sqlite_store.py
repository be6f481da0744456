"""SQLite store: the zero-configuration default, one file under ``PROVLINK_HOME``.

Several processes may write the same file at once (every task process's sender may write
directly), so the file is in WAL mode, waits on locks instead of failing, and takes the
write lock when a transaction starts (``BEGIN IMMEDIATE``) so two writers never deadlock
upgrading a read lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from provlink.private_files import private_file
from provlink.server.sql_store import SqlStore
from provlink.sqlite_wal import enable_wal

BUSY_TIMEOUT_S = 60.0


class SqliteStore(SqlStore):
    dialect = "sqlite"
    serial = "INTEGER PRIMARY KEY"
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: str | Path, *, pool_size: int = 8) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_file(self.path)  # 0600, and so its -wal/-shm; refuses a symlink
        super().__init__(pool_size=pool_size)

    def _connect(self) -> Any:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        enable_wal(conn, timeout=BUSY_TIMEOUT_S)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        # random keys (hashes, UUIDs) touch B-tree pages all over the file: keep more cached
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=268435456")
        return conn

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def _transient(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"
