"""Lanes: deliver different runs in parallel while each run's events keep their order.

A lane is an event's *root run* (the ``parent`` facet's ``root`` run, else its parent run,
else its own run), so a DAG run's or Dagster run's events, parent and children, stay in
append order among themselves, and unrelated runs go side by side. Within a lane events
are sent one at a time; a lane stops at its first failure that is not a permanent refusal,
and everything after it in that lane is *held* (not attempted) so it is retried, in order,
with it. Once one event finds the backend unreachable, no lane starts another send: there
is no point waiting on N timeouts for one outage.

A :class:`LaneStream` keeps its lanes across batches, so the sender can hand it the next
batch while the last one's slowest lanes finish: a lane's events of batch k+1 queue behind
its events of batch k (same thread, in order), and a lane that failed in batch k holds
its events of every later batch of the stream. Threads pick up whichever lane is next,
so none idles while any lane has work.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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


def group(payloads: list[str]) -> dict[str, list[int]]:
    """Indexes of ``payloads`` by lane, each lane in append order, lanes by first event."""
    lanes: dict[str, list[int]] = {}
    for index, payload in enumerate(payloads):
        lanes.setdefault(lane_of(payload), []).append(index)
    return lanes


class _Batch:
    """One submitted list of payloads; its future resolves when each event has an outcome."""

    def __init__(self, payloads: list[str]) -> None:
        self.payloads = payloads
        self.outcomes: list[Outcome] = [HELD] * len(payloads)
        self.left = 0  # events queued in lanes and not done yet
        self.future: Future[list[Outcome]] = Future()

    def record(self, index: int, outcome: Outcome) -> bool:
        """Note one event's outcome (under the stream's lock); True when the batch is done."""
        self.outcomes[index] = outcome
        self.left -= 1
        return self.left == 0


class LaneStream:
    """Lanes on ``pool`` that carry over from one submitted batch to the next."""

    def __init__(self, send: Callable[[str], Outcome], pool: ThreadPoolExecutor) -> None:
        self._send = send
        self._pool = pool
        self._lock = threading.Lock()
        self._queues: dict[str, deque[tuple[_Batch, int]]] = {}  # lanes with work
        self._blocked: set[str] = set()  # lanes whose event failed: the rest is held
        self._unreachable = False

    @property
    def stopped(self) -> bool:
        """True once the backend was found unreachable: nothing more is sent."""
        return self._unreachable

    def stop(self) -> None:
        """Hold everything from now on (the backend is unreachable)."""
        with self._lock:
            self._unreachable = True

    def submit(self, payloads: list[str]) -> Future[list[Outcome]]:
        """Queue ``payloads`` behind the lanes' earlier events; one outcome per payload."""
        batch = _Batch(payloads)
        start: list[str] = []
        with self._lock:
            for lane, indexes in group(payloads).items():
                if self._unreachable or lane in self._blocked:
                    continue  # held: the backend is down, or an earlier event failed
                queue = self._queues.get(lane)
                if queue is None:
                    queue = self._queues[lane] = deque()
                    start.append(lane)
                queue.extend((batch, index) for index in indexes)
                batch.left += len(indexes)
        if batch.left == 0:
            batch.future.set_result(batch.outcomes)
        for lane in start:
            try:
                task = self._pool.submit(self._run, lane)
            except RuntimeError:  # the interpreter is exiting (drain at exit): send from here
                self._run(lane)
            else:
                task.add_done_callback(functools.partial(self._abandoned, lane))
        return batch.future

    def _abandoned(self, lane: str, task: Future[None]) -> None:
        """A lane the pool cancelled (the target closed) never ran: its events are held,
        so the batches waiting on them still resolve."""
        if not task.cancelled():
            return
        with self._lock:
            queue = self._queues.pop(lane, deque())
            done = [batch for batch, index in queue if batch.record(index, HELD)]
        for batch in done:
            batch.future.set_result(batch.outcomes)

    def _run(self, lane: str) -> None:
        """Send the lane's queued events in order until its queue is empty."""
        while True:
            with self._lock:
                queue = self._queues[lane]
                if not queue:
                    del self._queues[lane]
                    return
                batch, index = queue.popleft()
                stop = self._unreachable or lane in self._blocked
            outcome = HELD if stop else self._attempt(batch.payloads[index])
            with self._lock:
                if not (outcome.ok or outcome.permanent or outcome.held):
                    self._blocked.add(lane)
                    if not outcome.counted:
                        self._unreachable = True
                done = batch.record(index, outcome)
            if done:
                batch.future.set_result(batch.outcomes)

    def _attempt(self, payload: str) -> Outcome:
        try:
            return self._send(payload)
        except Exception as exc:  # noqa: BLE001 - a lane must resolve its batch whatever
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")


def deliver_in_lanes(payloads: list[str], send: Callable[[str], Outcome],
                     pool: ThreadPoolExecutor | None) -> list[Outcome]:
    """Send each event with ``send``, lanes in parallel on ``pool`` (serially without one)."""
    if pool is None:
        outcomes: list[Outcome] = [HELD] * len(payloads)
        unreachable = False
        for indexes in group(payloads).values():
            for index in indexes:
                if unreachable:
                    break
                outcomes[index] = outcome = send(payloads[index])
                if outcome.ok or outcome.permanent:
                    continue
                unreachable = not outcome.counted
                break
        return outcomes
    return LaneStream(send, pool).submit(payloads).result()


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
