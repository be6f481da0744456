"""Lanes: deliver different runs in parallel while each run's events keep their order.

A lane is an event's *root run* (the ``parent`` facet's ``root`` run, else its parent run,
else its own run), so a DAG run's or Dagster run's events, parent and children, stay in
append order among themselves, and unrelated runs go side by side. Within a lane events
are sent one at a time; a lane stops at its first failure that is not a permanent refusal,
and everything after it in that lane is *held* (not attempted) so it is retried, in order,
with it. Once one event finds the backend unreachable, no lane starts another send: there
is no point waiting on N timeouts for one outage.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from provlink.delivery.outcome import HELD, Outcome


def lane_of(payload: str) -> str:
    """The lane key of one spooled event (its root run id; ``""`` if it has none)."""
    try:
        event = json.loads(payload)
    except ValueError:
        return ""
    run = _get(event, "run")
    parent = _get(_get(run, "facets"), "parent")
    for candidate in (_get(_get(_get(parent, "root"), "run"), "runId"),
                      _get(_get(parent, "run"), "runId"), _get(run, "runId")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return ""


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def group(payloads: list[str]) -> list[list[int]]:
    """Indexes of ``payloads`` by lane, each lane in append order, lanes by first event."""
    lanes: dict[str, list[int]] = {}
    for index, payload in enumerate(payloads):
        lanes.setdefault(lane_of(payload), []).append(index)
    return list(lanes.values())


def deliver_in_lanes(payloads: list[str], send: Callable[[str], Outcome],
                     pool: ThreadPoolExecutor | None) -> list[Outcome]:
    """Send each event with ``send``, lanes in parallel on ``pool`` (serially without one)."""
    outcomes: list[Outcome] = [HELD] * len(payloads)
    unreachable = threading.Event()

    def run_lane(indexes: list[int]) -> None:
        for index in indexes:
            if unreachable.is_set():
                return
            outcome = send(payloads[index])
            outcomes[index] = outcome
            if outcome.ok or outcome.permanent:
                continue
            if not outcome.counted:
                unreachable.set()
            return

    lanes = group(payloads)
    if pool is None or len(lanes) == 1:
        for lane in lanes:
            run_lane(lane)
        return outcomes
    futures = []
    for lane in lanes:
        try:
            futures.append(pool.submit(run_lane, lane))
        except RuntimeError:  # the interpreter is exiting (drain at exit): send from here
            run_lane(lane)
    for future in futures:
        future.result()
    return outcomes


def deliver_in_order(payloads: list[str], send: Callable[[str], Outcome]) -> list[Outcome]:
    """One lane for everything (``delivery_concurrency=1``): stop at the first transient
    failure; what follows is not attempted. No event needs parsing for its lane."""
    outcomes: list[Outcome] = []
    for payload in payloads:
        outcome = send(payload)
        outcomes.append(outcome)
        if not (outcome.ok or outcome.permanent):
            break
    return outcomes
