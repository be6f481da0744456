"""The background sender: drains the spool into the delivery target.

One process at a time holds the spool's lease and sends, oldest first, so events of a run
arrive in order whichever process appended them (targets may send different runs in
parallel, :mod:`provlink.delivery.lanes`). Delivery never wedges:

- a refusal (a 4xx, a validation error, an exception the target marks permanent)
  dead-letters that one event with its reason, and the sender moves on;
- a transient failure the backend charges to an event (a 500, a read timeout, a store error
  on that event) is retried with exponential backoff *for that event* (later events of its
  run wait; other runs flow) until ``max_attempts``, then dead-lettered with the last error;
- an unreachable backend (connection refused, 502/503/504, 429, 401/403) backs the whole
  sender off and is never counted against an event: an outage delays, it never discards.

Memory is bounded by two batches (``batch_size`` each) whatever the backlog: a target with
lanes gets the next batch while it finishes the last one. ``close(timeout)`` drains what it
can without waiting on a backend known to be down.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, NamedTuple

from provlink.delivery.fork_guard import section
from provlink.delivery.lanes import lane_of
from provlink.delivery.outcome import Outcome
from provlink.delivery.spool import Spool, default_owner
from provlink.delivery.targets import Target, TargetStream
from provlink.errors import ProvlinkError
from provlink.events.redact import scrub_text

if TYPE_CHECKING:
    from provlink.config import ProvlinkConfig
from provlink.threads import ignore_this_thread

log = logging.getLogger(__name__)
LEASE_TTL = 30.0


class _Settled(NamedTuple):
    """What settling one batch came to."""

    progressed: bool  # events delivered or dead-lettered
    clean: bool  # every event delivered or refused: nothing failed, nothing held
    charged: bool  # a transient failure counted against an event
    unreachable: bool  # the backend did not judge an event


class Sender:
    """Drains a :class:`Spool` into a :class:`Target` from a daemon thread."""

    def __init__(self, spool: Spool, target_factory: Callable[[], Target], *,
                 batch_size: int = 200, poll_interval: float = 0.2,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 max_attempts: int | None = 10) -> None:
        self._spool = spool
        self._max_attempts = max_attempts
        self._not_before: dict[int, float] = {}  # seq -> monotonic time its retry is due
        self._target_factory = target_factory
        self._target: Target | None = None
        self._batch_size = batch_size
        self._poll = poll_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = 0.0
        self._retry_at = 0.0
        self._leased_at = 0.0  # monotonic time this sender last took or renewed the lease
        self._owner = default_owner()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self.delivered = 0
        self.dead_lettered = 0

    @classmethod
    def from_config(cls, spool: Spool, config: ProvlinkConfig,
                    target_factory: Callable[[], Target] | None = None) -> Sender:
        """The sender every provlink process runs, tuned by :class:`ProvlinkConfig`."""
        from provlink.delivery.targets import resolve_target

        factory = target_factory or (lambda: resolve_target(
            config.home, concurrency=config.delivery_concurrency))
        return cls(spool, factory, batch_size=config.sender_batch_size,
                   poll_interval=config.sender_poll_interval,
                   backoff_initial=config.sender_backoff_initial,
                   backoff_max=config.sender_backoff_max,
                   max_attempts=config.delivery_max_attempts)

    @property
    def backing_off(self) -> bool:
        """True while the last attempt failed and the next one is not due yet."""
        return self._backoff > 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="provlink-sender",
                                                daemon=True)
                self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        ignore_this_thread()  # what the sender writes (a file transport's log) is not lineage
        while not self._stop.is_set():
            try:
                with self._drain_lock:
                    progressed = self._drain_locked(None, self._stop)
            except ProvlinkError as exc:  # a spool that is down says so in one line
                log.warning("provlink sender: %s; will retry", exc)
                self._note_failure()
                progressed = False
            except Exception:  # the sender must outlive any failure
                log.warning("provlink sender failed; will retry\n%s", _scrubbed_traceback())
                self._note_failure()
                progressed = False
            if not progressed:
                wait = max(self._retry_at - time.monotonic(), self._poll)
                if self._leased_at:  # wake in time to keep the lease through a backoff
                    wait = min(wait, LEASE_TTL / 3)
                self._wake.wait(wait)
                self._wake.clear()

    def drain_once(self, deadline: float | None = None) -> bool:
        """Send what is pending if this process holds the lease and no backoff is due.

        A target with lanes (``open_stream``) gets the next batch while it finishes the
        last, until the spool has no more, a batch does not go cleanly, or ``deadline``
        (monotonic) passes; other targets get one batch. Returns True when events were
        delivered or dead-lettered (more may be pending).
        """
        with self._drain_lock:
            return self._drain_locked(deadline, None)

    def _drain_locked(self, deadline: float | None, stop: threading.Event | None) -> bool:
        if time.monotonic() < self._retry_at:
            self._keep_lease()
            return False
        if not self._spool.has_pending():  # a read: idle senders take no write lock
            return False
        if not self._lease():
            return False
        blocked: set[str] = set()  # lanes held back by a retry not yet due, in this drain
        read = self._spool.pending(self._batch_size)
        batch = self._due(read, blocked, head=True)
        if not batch:
            return False
        target = self._ensure_target()
        open_stream = getattr(target, "open_stream", None)
        stream: TargetStream | None = open_stream() if open_stream is not None else None
        if stream is None:
            outcomes = self._deliver(target, batch)
            return self._conclude([self._settle(batch, outcomes, target.kind)])
        return self._overlapped(stream, target.kind, read, batch, blocked, deadline, stop)

    def _overlapped(self, stream: TargetStream, kind: str, read: list[tuple[int, str]],
                    batch: list[tuple[int, str]], blocked: set[str],
                    deadline: float | None, stop: threading.Event | None) -> bool:
        """Batch k+1 is read and handed over while batch k is in flight, then k is settled.

        The stream keeps each run's order across batches and holds a failed run's later
        events; at most two batches are in memory. Reading ends at the first batch that
        did not go cleanly (its failures are then handled as a lone batch's would be).
        """
        inflight = deque([(batch, self._submit(stream, kind, batch))])
        cursor = read[-1][0]
        reading = True
        settled: list[_Settled] = []
        try:
            while inflight:
                if reading and len(inflight) < 2:
                    reading = ((deadline is None or time.monotonic() < deadline)
                               and not (stop is not None and stop.is_set())
                               and self._lease())
                    read = (self._spool.pending(self._batch_size, after=cursor)
                            if reading else [])
                    following = self._due(read, blocked, head=False)
                    if following:
                        cursor = read[-1][0]
                        inflight.append((following, self._submit(stream, kind, following)))
                        continue
                    reading = False
                done, future = inflight.popleft()
                try:
                    outcomes = future.result()
                except Exception as exc:  # a target bug must not wedge the spool
                    outcomes = self._failed(kind, exc)
                result = self._settle(done, outcomes, kind)
                settled.append(result)
                reading = reading and result.clean
        finally:  # a spool error: no send of this drain may outlast it (the next drain's
            for _, future in inflight:  # would race it); unsettled events stay pending
                future.exception()
        return self._conclude(settled)

    def _submit(self, stream: TargetStream, kind: str,
                batch: list[tuple[int, str]]) -> Future[list[Outcome]]:
        try:
            return stream.submit([payload for _, payload in batch])
        except Exception as exc:  # a target bug must not wedge the spool
            future: Future[list[Outcome]] = Future()
            future.set_result(self._failed(kind, exc))
            return future

    def _deliver(self, target: Target, batch: list[tuple[int, str]]) -> list[Outcome]:
        try:
            return target.deliver([payload for _, payload in batch])
        except Exception as exc:  # a target bug must not wedge the spool
            return self._failed(target.kind, exc)

    @staticmethod
    def _failed(kind: str, exc: Exception) -> list[Outcome]:
        log.warning("provlink: %s failed delivering\n%s", kind, _scrubbed_traceback())
        return [Outcome(ok=False, error=f"{kind}: {type(exc).__name__}: {exc}")]

    def _settle(self, batch: list[tuple[int, str]], outcomes: list[Outcome],
                kind: str) -> _Settled:
        """Record what happened to each event of one batch."""
        sent: list[int] = []
        finished = charged = unreachable = held = False
        for (seq, _), outcome in zip(batch, outcomes, strict=False):  # shorter: rest held
            if outcome.ok:
                sent.append(seq)
            elif outcome.held:
                held = True
            elif outcome.permanent:
                self._record_dead(seq, outcome.error or "rejected", kind)
                self._spool.mark_dead(seq, outcome.error or "rejected")
                finished = True
            else:
                attempts, dead = self._spool.record_failure(
                    seq, outcome.error or "failed", max_attempts=self._max_attempts,
                    counted=outcome.counted)
                if dead:
                    self._record_dead(seq, f"after {attempts} attempts: {outcome.error}", kind)
                    finished = True
                elif outcome.counted:
                    charged = True
                    self._not_before[seq] = time.monotonic() + self._delay(attempts)
                else:
                    unreachable = True
        self._spool.mark_sent(sent)
        self.delivered += len(sent)
        for seq in sent:
            self._not_before.pop(seq, None)
        clean = (len(outcomes) >= len(batch) and not held and not charged
                 and not unreachable)
        return _Settled(progressed=bool(sent) or finished, clean=clean,
                        charged=charged, unreachable=unreachable)

    def _conclude(self, settled: list[_Settled]) -> bool:
        """Back off when the backend is the problem, over all batches of one drain."""
        progressed = any(s.progressed for s in settled)
        if any(s.unreachable for s in settled) or (
                any(s.charged for s in settled) and not progressed):
            self._note_failure()
        else:
            self._backoff = 0.0
            self._retry_at = 0.0
        return progressed

    def _record_dead(self, seq: int, error: str, kind: str) -> None:
        self._not_before.pop(seq, None)
        self.dead_lettered += 1
        log.warning("provlink: event %s dead-lettered (%s): %s", seq, kind,
                    self._spool.error_text(error)[:500])

    def _due(self, batch: list[tuple[int, str]], blocked: set[str], *,
             head: bool) -> list[tuple[int, str]]:
        """Drop events whose retry is not due yet, and every later event of their lane
        (``blocked`` collects those lanes across the batches of one drain). ``head``: the
        batch starts at the oldest pending event."""
        if not batch:
            return batch
        if head:
            for seq in [s for s in self._not_before if s < batch[0][0]]:
                del self._not_before[seq]  # no longer pending (sent or dead-lettered elsewhere)
        if not self._not_before and not blocked:
            return batch
        now = time.monotonic()
        due: list[tuple[int, str]] = []
        for seq, payload in batch:
            wait = self._not_before.get(seq, 0.0)
            if wait > now or blocked:
                lane = lane_of(payload)
                if wait > now or lane in blocked:
                    blocked.add(lane)
                    continue
            due.append((seq, payload))
        if not due and head:
            self._retry_at = min(self._not_before.values())
        return due

    def _delay(self, attempts: int) -> float:
        base = min(self._backoff_initial * 2.0 ** max(attempts - 1, 0), self._backoff_max)
        return base * (0.8 + 0.4 * random.random())

    def _ensure_target(self) -> Target:
        if self._target is None:
            with section():  # its imports and its store's opening: see fork_guard
                self._target = self._target_factory()
        return self._target

    def _lease(self) -> bool:
        """Take or renew the sending lease."""
        held = self._spool.acquire_lease(self._owner, LEASE_TTL)
        self._leased_at = time.monotonic() if held else 0.0
        return held

    def _keep_lease(self) -> None:
        """A sender waiting out a backoff keeps its lease: were it to lapse, every short
        task process on this spool would take it at exit and try the same dead backend
        itself (building a target, a connect, a failure: tens of ms per task)."""
        if self._leased_at and time.monotonic() - self._leased_at >= LEASE_TTL / 3:
            self._lease()

    def _note_failure(self) -> None:
        self._backoff = min(max(self._backoff * 2, self._backoff_initial), self._backoff_max)
        self._retry_at = time.monotonic() + self._backoff * (0.8 + 0.4 * random.random())

    def flush(self, timeout: float) -> bool:
        """Deliver pending events until none are left, the backend fails, or time runs out.

        Returns True when the spool has nothing pending. Never waits on a failing backend.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                progressed = self.drain_once(deadline)
            except ProvlinkError:
                log.warning("provlink flush failed\n%s", _scrubbed_traceback())
                return False
            if self.backing_off:
                return False
            if not progressed:
                return self._spool.status().pending == 0
        return self._spool.status().pending == 0

    def close(self, timeout: float) -> bool:
        """Stop the thread, drain within ``timeout``, release the lease."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        remaining = max(deadline - time.monotonic(), 0.0)
        done = self.flush(remaining) if not self.backing_off else False
        self._spool.release_lease(self._owner)
        self._leased_at = 0.0
        if self._target is not None:
            self._target.close(1.0)
            self._target = None
        return done


def _scrubbed_traceback() -> str:
    """The exception being handled, its secrets masked: a delivery error quotes URLs and
    server answers (a token in a URL, a password in a DSN), and task logs are shipped."""
    return scrub_text(traceback.format_exc()).rstrip()
