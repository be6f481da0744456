"""WAL mode is switched on even while another connection holds the file for a moment."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from provlink.sqlite_wal import enable_wal


def _reader_holding_the_file(path: Path, release: threading.Event) -> threading.Thread:
    """A connection in the rollback journal mode keeps a read lock until ``release`` is set."""
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN")
        conn.execute("SELECT * FROM t").fetchall()
        held.set()
        release.wait(10)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    return thread


def _new_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()


def test_the_switch_waits_for_a_reader_to_let_go(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _new_file(path)
    release = threading.Event()
    holder = _reader_holding_the_file(path, release)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)  # no busy handler at all
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        conn.execute("PRAGMA journal_mode=WAL")  # what a bare switch does
    threading.Timer(0.3, release.set).start()
    enable_wal(conn, timeout=10)
    holder.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_the_switch_gives_up_after_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    _new_file(path)
    release = threading.Event()
    holder = _reader_holding_the_file(path, release)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            enable_wal(conn, timeout=0.2)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        release.set()
        holder.join()
        conn.close()
