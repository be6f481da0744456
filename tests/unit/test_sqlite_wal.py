"""WAL mode is switched on even while another connection holds the file for a moment."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from provlink.sqlite_wal import enable_wal


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, threading.Event]]:
    """A new file in the rollback journal mode that another connection holds a read lock
    on until the event is set, and a connection to it with no busy handler at all."""
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM t").fetchall()
        holding.set()
        release.wait(10)
        reader.execute("COMMIT")
        reader.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        yield conn, release
    finally:
        release.set()
        holder.join()
        conn.close()


def test_the_switch_waits_for_a_reader_to_let_go(
        held: tuple[sqlite3.Connection, threading.Event]) -> None:
    conn, release = held
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        conn.execute("PRAGMA journal_mode=WAL")  # what a bare switch does
    threading.Timer(0.3, release.set).start()
    enable_wal(conn, timeout=10)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_switch_gives_up_after_its_timeout(
        held: tuple[sqlite3.Connection, threading.Event]) -> None:
    conn, _ = held
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(conn, timeout=0.2)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
