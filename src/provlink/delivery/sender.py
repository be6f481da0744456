"""The background sender: drains the spool into the delivery target.

One process at a time holds the spool's lease and sends, oldest first, so events of a run
arrive in order whichever process appended them. Connection errors and 5xx back off
exponentially and keep the event pending; a 4xx dead-letters that one event with the
server's message and the sender moves on. Memory is bounded by ``batch_size`` whatever the
backlog. ``close(timeout)`` drains what it can without waiting on a backend known to be down.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from provlink.delivery.spool import Spool, default_owner
from provlink.delivery.targets import Target
from provlink.errors import ProvlinkError
from provlink.threads import ignore_this_thread

log = logging.getLogger(__name__)
LEASE_TTL = 30.0


class Sender:
    """Drains a :class:`Spool` into a :class:`Target` from a daemon thread."""

    def __init__(self, spool: Spool, target_factory: Callable[[], Target], *,
                 batch_size: int = 200, poll_interval: float = 0.2,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0) -> None:
        self._spool = spool
        self._target_factory = target_factory
        self._target: Target | None = None
        self._batch_size = batch_size
        self._poll = poll_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = 0.0
        self._retry_at = 0.0
        self._owner = default_owner()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self.delivered = 0
        self.dead_lettered = 0

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
                progressed = self.drain_once()
            except Exception:  # noqa: BLE001 - the sender must outlive any failure
                log.warning("provlink sender failed; will retry", exc_info=True)
                self._note_failure()
                progressed = False
            if not progressed:
                wait = max(self._retry_at - time.monotonic(), self._poll)
                self._wake.wait(wait)
                self._wake.clear()

    def drain_once(self) -> bool:
        """Send one batch if this process holds the lease and no backoff is due.

        Returns True when events were delivered or dead-lettered (more may be pending).
        """
        with self._drain_lock:
            return self._drain_locked()

    def _drain_locked(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        if not self._spool.has_pending():  # a read: idle senders take no write lock
            return False
        if not self._spool.acquire_lease(self._owner, LEASE_TTL):
            return False
        batch = self._spool.pending(self._batch_size)
        if not batch:
            return False
        target = self._ensure_target()
        outcomes = target.deliver([payload for _, payload in batch])
        sent: list[int] = []
        for (seq, _), outcome in zip(batch, outcomes, strict=False):
            if outcome.ok:
                sent.append(seq)
            elif outcome.permanent:
                self._spool.mark_dead(seq, outcome.error or "rejected")
                self.dead_lettered += 1
                log.warning("provlink: event %s rejected by %s: %s",
                            seq, target.kind, outcome.error)
            else:
                self._spool.mark_sent(sent)
                self.delivered += len(sent)
                self._spool.mark_failed_attempt(seq, outcome.error or "failed")
                self._note_failure()
                return bool(sent)
        self._spool.mark_sent(sent)
        self.delivered += len(sent)
        self._backoff = 0.0
        self._retry_at = 0.0
        return True

    def _ensure_target(self) -> Target:
        if self._target is None:
            self._target = self._target_factory()
        return self._target

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
                progressed = self.drain_once()
            except ProvlinkError:
                log.warning("provlink flush failed", exc_info=True)
                return False
            if self.backing_off:
                return False
            if not progressed:
                return self._spool.status().pending == 0
        return self._spool.status().pending == 0

    def close(self, timeout: float) -> bool:
        """Stop the thread, drain within ``timeout``, release the lease."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        remaining = max(timeout, 0.0)
        done = self.flush(remaining) if not self.backing_off else False
        self._spool.release_lease(self._owner)
        if self._target is not None:
            self._target.close(1.0)
            self._target = None
        return done
