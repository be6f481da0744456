"""fork() waits for provlink's open SQLite/import sections (bounded), so a forked child never
inherits SQLite's or an import's lock in its held state."""

from __future__ import annotations

import os
import threading
import time

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
    release, inside = threading.Event(), threading.Event()

    def stuck() -> None:
        with fork_guard.section():
            inside.set()
            release.wait()

    worker = threading.Thread(target=stuck)
    worker.start()
    inside.wait()
    try:
        elapsed = _fork_and_reap()
    finally:
        release.set()
        worker.join()
    assert 0.2 <= elapsed < 5.0
    assert fork_guard._open == 0  # every section closed, none counted twice


def test_sections_open_in_other_threads_are_not_counted_in_the_child() -> None:
    release, inside = threading.Event(), threading.Event()

    def stuck() -> None:
        with fork_guard.section():
            inside.set()
            release.wait()

    worker = threading.Thread(target=stuck)
    worker.start()
    inside.wait()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the stuck thread does not exist here: its section must not block a fork
        os.write(write, str(fork_guard._open).encode())
        os._exit(0)
    release.set()
    worker.join()
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"0"
