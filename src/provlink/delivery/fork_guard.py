"""Keep ``fork()`` out of provlink's background SQLite work and imports.

Airflow forks task processes (LocalExecutor workers, the task supervisor) from processes
whose provlink sender is delivering. A fork taken while that thread is inside SQLite copies
SQLite's global mutexes (held while a file is opened or locked) into the child in their
locked state, and a fork taken while it imports copies a held module lock: the child's
first ``sqlite3.connect`` or import of that module then waits forever. Neither SQLite nor
CPython can reset those from Python, so the sender's SQLite work and its first imports run
in a :func:`section`, and a hook before ``fork()`` waits (at most :data:`FORK_WAIT`) until
no section is open and keeps new ones from starting until the fork is done.

Written here because no library offers it: ``os.register_at_fork`` gives the hooks, not
the waiting. HTTP sends are deliberately outside sections, so a slow backend never
delays a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FORK_WAIT = 2.0  # seconds a fork waits for open sections; then it proceeds anyway

_cond = threading.Condition(threading.Lock())
_open = 0
_owners: dict[int, int] = {}  # thread id -> sections it has open (a section may nest)


@contextmanager
def section() -> Iterator[None]:
    """Work that a concurrent ``fork()`` must not split (SQLite calls, lazy imports)."""
    global _open
    me = threading.get_ident()
    with _cond:
        _open += 1
        _owners[me] = _owners.get(me, 0) + 1
    try:
        yield
    finally:
        with _cond:
            _open -= 1
            left = _owners.pop(me) - 1
            if left:
                _owners[me] = left
            _cond.notify_all()


def _quiet() -> bool:
    """No section open, except the forking thread's own (it cannot close them by waiting)."""
    return _open == _owners.get(threading.get_ident(), 0)


def _before_fork() -> None:
    _cond.acquire()  # held across fork(): no section opens (nor closes) until after it
    _cond.wait_for(_quiet, timeout=FORK_WAIT)


def _after_fork_in_parent() -> None:
    _cond.release()


def _after_fork_in_child() -> None:
    global _cond, _open
    _cond = threading.Condition(threading.Lock())  # the only thread left is the forking one
    mine = _owners.get(threading.get_ident(), 0)
    _owners.clear()
    if mine:
        _owners[threading.get_ident()] = mine
    _open = mine


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
