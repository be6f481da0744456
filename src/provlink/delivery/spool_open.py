"""Which spool a process appends to: the fleet's PostgreSQL one, or the local SQLite one.

SQLite under ``PROVLINK_HOME`` is the zero-config default. With ``spool_url`` set, a
process appends to PostgreSQL; when that database cannot be reached within
``spool_timeout`` the process falls back to its local spool and never retries PostgreSQL
on the task's path; one that fails an append later (down, or silent past the timeout)
sends that process to its local spool the same way (:class:`provlink.delivery.runtime.
SpoolEmitter`). The local spool's sender then delivers into the fleet spool
(:class:`FleetTarget`), not to the backend: once PostgreSQL answers, the events join the
one fleet log with a ``fleet.fallback`` entry naming them, and the fleet's sender moves
them on to the backend. An event already in the fleet log (a crash between the PostgreSQL commit
and the local ``sent`` mark, or an append whose commit landed but whose answer was lost)
is not adopted again (:meth:`PgSpool.adopt`): the fleet log holds each event once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from provlink.config import ProvlinkConfig
from provlink.delivery.outcome import OK, Outcome
from provlink.delivery.pg_spool import PgSpool
from provlink.delivery.spool import Spool
from provlink.errors import SpoolError
from provlink.pg_pool_log import redact_url

log = logging.getLogger(__name__)


def open_spool(config: ProvlinkConfig,
               error_filter: Callable[[str], str] | None = None) -> tuple[Spool, bool]:
    """(spool, fell back): the PostgreSQL spool when configured and reachable, else local."""
    if config.spool_url:
        try:
            return PgSpool(config.spool_url, timeout=config.spool_timeout,
                           error_filter=error_filter), False
        except SpoolError as exc:
            log.warning("provlink: %s; spooling locally at %s", exc, config.spool_path)
            return local_spool(config, error_filter), True
    return local_spool(config, error_filter), False


def configured_spool(config: ProvlinkConfig,
                     error_filter: Callable[[str], str] | None = None) -> Spool:
    """The spool a command reads and writes: the fleet's when ``spool_url`` is set (one
    that cannot be reached is a :class:`SpoolError`, not this host's fallback shown as if it
    were the fleet's), else the local one."""
    if config.spool_url:
        return PgSpool(config.spool_url, timeout=config.spool_timeout, error_filter=error_filter)
    return local_spool(config, error_filter)


def spool_exists(config: ProvlinkConfig) -> bool:
    """Whether there is a spool to read without creating one (a fleet spool always is)."""
    return bool(config.spool_url) or config.spool_path.exists()


def location(config: ProvlinkConfig) -> str:
    """Where the configured spool is, as commands may print it (no password)."""
    return redact_url(config.spool_url) if config.spool_url else str(config.spool_path)


def local_spool(config: ProvlinkConfig, error_filter: Callable[[str], str] | None) -> Spool:
    """This host's SQLite spool under ``PROVLINK_HOME``."""
    return Spool(config.spool_path, sync=config.spool_sync, error_filter=error_filter)


class FleetTarget:
    """The local spool's target in fallback mode: append into the fleet's PostgreSQL spool
    (``into``, an open one the caller keeps, or one this target opens when needed)."""

    kind = "fleet-spool"

    def __init__(self, config: ProvlinkConfig, into: PgSpool | None = None) -> None:
        self.config = config
        self.source = f"{os.uname().nodename}:{config.spool_path}"
        self._spool = into
        self._owned = into is None

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        try:
            if self._spool is None:
                self._spool = PgSpool(self.config.spool_url, timeout=self.config.spool_timeout)
            self._spool.adopt(payloads, self.source)
        except SpoolError as exc:
            self._drop()  # opened afresh next time, within the bounded wait
            return [Outcome(ok=False, error=str(exc), counted=False)] * len(payloads)
        return [OK] * len(payloads)

    def _drop(self) -> None:
        if self._owned and self._spool is not None:
            self._spool.close()
            self._spool = None

    def close(self, timeout: float) -> bool:
        self._drop()
        return True


def drain_fallback(config: ProvlinkConfig, into: PgSpool | None = None) -> int:
    """Move the local spool's pending events into the fleet spool (``into`` when the
    caller has it open) now (``provlink sender`` does it every interval); returns how many
    moved."""
    if not config.spool_url or not config.spool_path.exists():
        return 0
    local = local_spool(config, None)
    target = FleetTarget(config, into)
    moved = 0
    try:
        while batch := local.pending(config.sender_batch_size):
            outcomes = target.deliver([payload for _, payload in batch])
            if not all(o.ok for o in outcomes):
                break
            local.mark_sent([seq for seq, _ in batch])
            moved += len(batch)
    finally:
        target.close(0)
        local.close()
    if moved:
        log.info("provlink: moved %d events from %s into %s", moved, config.spool_path,
                 redact_url(config.spool_url))
    return moved
