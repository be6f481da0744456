"""psycopg_pool's log for provlink's own pools: one provlink warning, not a stream.

A pool that cannot reach PostgreSQL logs ``error connecting in 'provlink-spool': ...``
(two lines each) at every reconnection attempt, more when it gives up, and "couldn't stop
thread" at exit; left alone that reaches the user's log as a stream the user did not ask
for, beside provlink's own error. For the pools provlink names (``provlink-spool``,
``provlink-serve``) this filter on the ``psycopg.pool`` logger keeps those warnings off the
log and counts them instead. Failing to open is already one clear provlink error (the store
or spool raises it), so records before :func:`opened` are only counted; after it, the first
one becomes one provlink warning naming the pool, where it points (no password) and the
reason, and :func:`closed` says how many more there were. Other pools' records and records
below WARNING (shown only to who turns ``psycopg.pool`` up) pass unchanged.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from provlink.events.redact import scrub_text

POOL_LOGGER = "psycopg.pool"
_TAG = "provlink_pool"
_REPR = re.compile(r"<[\w.<>]+ \[\w+\][^>]* at 0x[0-9a-fA-F]+>")  # a connection's repr
log = logging.getLogger("provlink.postgres")
CLOSED_KEPT = 64  # closed pools whose late messages are still kept off the log


@dataclass
class _Pool:
    where: str
    open: bool = False
    warned: bool = False
    suppressed: int = 0  # warnings kept off the log while open, the one shown included
    last: str = ""  # the latest warning's message, for the error an open that fails raises
    closed: bool = False


class _PoolLog(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}

    def watch(self, name: str, where: str) -> None:
        with self._lock:
            self._pools[name] = _Pool(where)

    def set_open(self, name: str, value: bool) -> None:
        with self._lock:
            if name in self._pools:
                self._pools[name].open = value

    def last(self, name: str) -> str:
        with self._lock:
            pool = self._pools.get(name)
            return "" if pool is None else pool.last

    def forget(self, name: str) -> _Pool | None:
        """Stop showing the pool's warnings; its name stays watched (only counted) for a
        while, since a connection attempt under way at ``close()`` still logs when it ends."""
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                return None
            pool.open, pool.closed = False, True
            shut = [n for n, p in self._pools.items() if p.closed]
            for old in shut[:-CLOSED_KEPT]:
                del self._pools[old]
            return pool

    def suppressed(self, name: str) -> int:
        with self._lock:
            pool = self._pools.get(name)
            return 0 if pool is None else pool.suppressed

    def _pool_of(self, record: logging.LogRecord) -> str | None:
        """Which watched pool a record is about: by its thread (the pool's workers are named
        after it), a pool name among its arguments, or a connection :func:`tag` marked."""
        names = [record.threadName or ""]
        for arg in record.args if isinstance(record.args, tuple) else ():
            names.append(arg if isinstance(arg, str) else getattr(arg, _TAG, ""))
        for name in self._pools:
            if any(n == name or n.startswith(f"{name}-") for n in names):
                return name
        return None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        with self._lock:
            name = self._pool_of(record)
            if name is None:
                return True
            pool = self._pools[name]
            message = record.getMessage()
            if message.startswith("error connecting in"):
                message = message.split(": ", 1)[-1]  # the reason, without the pool's name
                pool.last = _one_line(message)
            if not pool.open:
                return False  # opening or closing: the open fails with its own error
            pool.suppressed += 1
            first, pool.warned = not pool.warned, True
        if first:
            log.warning("provlink: PostgreSQL pool %r (%s): %s; it keeps retrying in the "
                        "background, further pool messages are counted, not shown", name,
                        pool.where, _one_line(message))
        return False


def _one_line(message: str) -> str:
    """The message on one line, a connection's repr as "a connection", secrets scrubbed."""
    return scrub_text(_REPR.sub("a connection", " ".join(message.split())))


_FILTER = _PoolLog()
_INSTALLED = threading.Lock()
_NUMBERS = itertools.count(1)


def pool_name(kind: str) -> str:
    """A name for a new pool (``provlink-spool-3``): each pool's messages told apart."""
    return f"provlink-{kind}-{next(_NUMBERS)}"


def redact_url(url: str) -> str:
    """The URL without its password: what errors, warnings and status output may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def tag(name: str) -> Callable[[Any], None]:
    """The pool's ``configure`` callback: marks each connection with the pool's name, so a
    record that names only the connection ("discarding closed connection") is told apart."""

    def configure(conn: Any) -> None:
        setattr(conn, _TAG, name)

    return configure


def watch(name: str, where: str) -> None:
    """Take over ``psycopg.pool``'s warnings about the pool ``name`` (before it opens)."""
    with _INSTALLED:
        logger = logging.getLogger(POOL_LOGGER)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    _FILTER.watch(name, where)


def opened(name: str) -> None:
    """The pool is in use: from now on its first warning is shown, as provlink's."""
    _FILTER.set_open(name, True)


def last_error(name: str) -> str:
    """The reason of the pool's latest failed connection attempt ("" if none)."""
    return _FILTER.last(name)


def closing(name: str) -> None:
    """The pool is being closed: what it logs now ("couldn't stop thread") is only counted."""
    _FILTER.set_open(name, False)


def suppressed(name: str) -> int:
    """How many of the pool's warnings were kept off the log since it opened."""
    return _FILTER.suppressed(name)


def closed(name: str) -> None:
    """Stop watching ``name`` (after its ``close()``); say how many of its warnings while it
    was open were not shown, if more than the one that was."""
    pool = _FILTER.forget(name)
    if pool is not None and pool.suppressed > 1:
        log.warning("provlink: PostgreSQL pool %r (%s): %d more pool messages while it was "
                    "open were not shown", name, pool.where, pool.suppressed - 1)
