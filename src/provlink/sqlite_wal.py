"""Switch a SQLite connection to WAL mode when other processes open the same file at once.

Changing the journal mode needs an exclusive lock, and SQLite answers ``database is locked``
at once (its busy handler is not called) when another connection is opening or reading the
file in that instant — as happens when several task processes or writers open a new file
together. So the switch is retried, with a short growing pause, until ``timeout``.
"""

from __future__ import annotations

import sqlite3
import time


def enable_wal(conn: sqlite3.Connection, *, timeout: float) -> None:
    """Put ``conn``'s database in WAL mode, retrying a lock conflict for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
