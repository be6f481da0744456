"""Test helpers users and provlink's own tests share: an in-memory emitter and
:func:`capture_events`, which swaps this process's emitter for one that keeps events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from provlink.config import ProvlinkConfig
from provlink.runtime import Runtime, set_runtime


class InMemoryEmitter:
    """Keeps every emitted (already redacted) event in a list."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def close(self, timeout: float) -> bool:
        return True


@contextmanager
def capture_events(**config: Any) -> Iterator[list[dict[str, Any]]]:
    """Collect the events emitted inside the block instead of spooling them.

    >>> with capture_events() as events:
    ...     with provlink.capture("job"):
    ...         pass
    >>> [e["eventType"] for e in events]
    ['START', 'COMPLETE']
    """
    emitter = InMemoryEmitter()
    runtime = Runtime(ProvlinkConfig.load(**config), emitter=emitter)
    old = set_runtime(runtime)
    try:
        yield emitter.events
    finally:
        set_runtime(old)
