"""fork() waits for provlink's open SQLite/import sections (bounded), so a forked child never
inherits SQLite's or an import's lock in its held state."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from provlink.delivery import fork_guard


def _fork_and_reap() -> float:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    elapsed = time.monotonic() - started
    os.waitpid(pid, 0)
    return elapsed


@contextmanager
def _section_held_elsewhere() -> Iterator[None]:
    """Another thread holds a section open until the block ends."""
    release, inside = threading.Event(), threading.Event()

    def hold() -> None:
        with fork_guard.section():
            inside.set()
            release.wait()

    worker = threading.Thread(target=hold)
    worker.start()
    inside.wait()
    try:
        yield
    finally:
        release.set()
        worker.join()


def test_fork_waits_until_another_threads_section_closes() -> None:
    inside, closed_at = threading.Event(), []

    def work() -> None:
        with fork_guard.section():
            inside.set()
            time.sleep(0.3)
            closed_at.append(time.monotonic())

    worker = threading.Thread(target=work)
    worker.start()
    inside.wait()
    _fork_and_reap()
    forked_at = time.monotonic()
    worker.join()
    assert closed_at and closed_at[0] <= forked_at  # the fork came after the section closed


def test_fork_is_not_held_up_by_the_forking_threads_own_section() -> None:
    with fork_guard.section():
        assert _fork_and_reap() < fork_guard.FORK_WAIT


def test_a_section_that_never_closes_delays_fork_only_by_the_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fork_guard, "FORK_WAIT", 0.2)
    with _section_held_elsewhere():
        elapsed = _fork_and_reap()
    assert 0.2 <= elapsed < 5.0
    assert fork_guard._open == 0  # every section closed, none counted twice


def test_sections_open_in_other_threads_are_not_counted_in_the_child() -> None:
    read, write = os.pipe()
    with _section_held_elsewhere():
        pid = os.fork()
        if pid == 0:  # the holding thread does not exist here: its section must not count
            os.write(write, str(fork_guard._open).encode())
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"0"
