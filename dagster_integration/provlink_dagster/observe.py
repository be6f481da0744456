"""One listener per Dagster run and process, fanning events out to provlink's trackers.

Dagster calls instance event listeners synchronously, in the process that stores the event,
right after storing it: a step process sees its own step's materializations and its
STEP_SUCCESS/STEP_FAILURE; the run coordinator sees RUN_SUCCESS/RUN_FAILURE/RUN_CANCELED.
A listener that raised would fail the step, so every callback here is guarded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from provlink_dagster import _compat

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]  # receives a dagster EventLogEntry
FINISHED_STEPS = "finished_steps"  # RunObserver.state: step keys whose process finished them


class RunObserver:
    """The subscribers of one run in this process."""

    def __init__(self) -> None:
        self.subscribers: list[Callback] = []
        self.state: dict[str, Any] = {}  # trackers keep per-run state here

    def __call__(self, entry: Any) -> None:
        if entry.dagster_event is None:
            return
        for subscriber in list(self.subscribers):
            try:
                subscriber(entry)
            except Exception:  # a listener that raised would fail the step
                count_failure()
                log.warning("provlink: handling Dagster event %s failed",
                            entry.dagster_event.event_type.name, exc_info=True)


_lock = threading.Lock()
_observers: dict[tuple[int, str], RunObserver] = {}


def observer_for(instance: Any, run_id: str) -> RunObserver:
    """This process's observer of ``run_id`` on ``instance``, registered on first use."""
    key = (id(instance), run_id)
    with _lock:
        observer = _observers.get(key)
        if observer is None:
            observer = _observers[key] = RunObserver()
            _compat.add_event_listener(instance, run_id, observer)
        return observer


def forget(instance: Any, run_id: str) -> None:
    """Drop the run once it has ended; its listener stays on the instance but is empty."""
    with _lock:
        observer = _observers.pop((id(instance), run_id), None)
    if observer is not None:
        observer.subscribers.clear()


def count_failure(where: str = "dagster") -> None:
    """Count the lineage error being handled (call from an ``except`` block); safe even
    when the runtime itself cannot be built."""
    import sys

    from provlink.delivery.runtime import record_failure

    error = sys.exc_info()[1]
    record_failure(where, error if error is not None else "unknown error")
