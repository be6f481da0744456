"""The emission pipeline of this process: record -> event -> redact -> emitter.

A pipeline of small named steps (plain callables on the event dict), ending in an
emitter. The default emitter appends to the durable spool and wakes the background
sender; tests swap in :class:`provlink.testing.InMemoryEmitter`. Built lazily on first
use from :class:`ProvlinkConfig` (never at import).
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from provlink.config import ProvlinkConfig
from provlink.delivery.failures import STATUS_FILE, FailureLog, note_in_process
from provlink.delivery.sender import Sender
from provlink.delivery.spool import Appended, Spool
from provlink.errors import ProvlinkError, SpoolError
from provlink.events.build import cap_parameters, to_event
from provlink.events.facets import LEDGER, ProvlinkLedgerRunFacet, ours
from provlink.events.model import CaptureRecord, EventType
from provlink.events.redact import Redactor

if TYPE_CHECKING:
    from provlink.governance.log import StoredCheckpoint
    from provlink.governance.note import Signer

log = logging.getLogger(__name__)

Step = Callable[[dict[str, Any]], dict[str, Any]]
T = TypeVar("T")
_TERMINAL = frozenset({EventType.COMPLETE, EventType.FAIL, EventType.ABORT})


class Emitter(Protocol):
    def emit(self, event: dict[str, Any]) -> str | None:
        """Emit one event; returns its ledger entry hash where the emitter keeps a ledger."""

    def close(self, timeout: float) -> bool: ...


class SpoolEmitter:
    """A durable append (event + its ledger leaf): the whole critical path. The sender
    polls the spool every ``sender_poll_interval`` (no wake-up per event: waking it would
    hand it the GIL in the middle of the task, and polling lets it deliver in batches).
    ``checkpoint()`` signs a tree head of the ledger (one short transaction, ~50 µs of
    Ed25519), which capture points do when they end."""

    def __init__(self, spool: Spool, sender: Sender, signer: Signer | None = None,
                 fallback: Callable[[], tuple[Spool, Sender]] | None = None) -> None:
        from provlink.governance.log import Ledger

        self.spool = spool
        self.sender = sender
        self.signer = signer
        self.ledger = Ledger(spool)
        self._fallback = fallback
        self._retired: list[Sender] = []
        if spool.has_pending():
            sender.start()  # a previous process died with events spooled: deliver them

    def emit(self, event: dict[str, Any]) -> str | None:
        return self.emit_entry(event).entry_hash

    def emit_entry(self, event: dict[str, Any], *, checkpoint: bool = False) -> Appended:
        """Append; with ``checkpoint``, a checkpoint covering the event in the same commit
        (``Appended.then``)."""
        def append() -> Appended:
            if checkpoint:
                signer, origin = self.signer, self.spool.origin
                return self.spool.append(event, lambda tables: self.ledger.make_checkpoint(
                    tables, signer, origin))
            return self.spool.append(event)

        appended = self._appending(append)
        self.sender.start()
        return appended

    def emit_terminal(self, build: Callable[[StoredCheckpoint], dict[str, Any]]
                      ) -> tuple[dict[str, Any], Appended]:
        """A terminal event and both its checkpoints in one commit: see
        :func:`append_terminal`."""
        made = self._appending(lambda: append_terminal(self.spool, self.signer, build))
        self.sender.start()
        return made

    def _appending(self, append: Callable[[], T]) -> T:
        """``append`` on the spool; when the fleet's PostgreSQL fails it (down, or silent
        past ``spool_timeout``), this process moves to its local spool for the rest of its
        life, as a process that could not reach it at start does, and appends there: the
        event is kept, and the local sender adopts it into the fleet log later. (An append
        whose commit landed but whose answer was lost is then in both logs; the adoption
        leaves the local copy out of the fleet log.)"""
        try:
            return append()
        except SpoolError as exc:
            if self._fallback is None:
                raise
            self._move_to_local(self._fallback, exc)
        return append()

    def _move_to_local(self, fallback: Callable[[], tuple[Spool, Sender]],
                       exc: SpoolError) -> None:
        from provlink.governance.log import Ledger

        log.warning("provlink: %s; spooling locally from now on", exc)
        local, sender = fallback()
        self._fallback = None
        self._retired.append(self.sender)
        self.spool, self.sender = local, sender
        self.ledger = Ledger(local)

    def checkpoint(self, *, anchor: bool = False) -> StoredCheckpoint:
        return self.ledger.checkpoint(self.signer, anchor=anchor)

    def flush(self, timeout: float) -> bool:
        return self.sender.flush(timeout)

    def close(self, timeout: float) -> bool:
        for retired in self._retired:  # the fleet spool it left: its events wait there
            try:
                retired.close(0.0)
            except ProvlinkError:  # that database is the one that failed
                log.debug("provlink: the fleet spool's sender did not close", exc_info=True)
        return self.sender.close(timeout)


def append_terminal(spool: Spool, signer: Signer | None,
                    build: Callable[[StoredCheckpoint], dict[str, Any]]
                    ) -> tuple[dict[str, Any], Appended]:
    """One transaction, in this order: the anchor checkpoint of the log so far, the
    terminal event ``build`` makes from it (it carries the anchor), the event's leaf,
    and a checkpoint covering it (``Appended.then``). The log is the one three
    transactions made, with nothing of another writer between the anchor and the
    event; one durable commit instead of two (a WAL flush each on PostgreSQL)."""
    from provlink.governance.log import Ledger

    origin = spool.origin
    built: list[dict[str, Any]] = []

    def event(tables: Any) -> dict[str, Any]:
        built.append(build(Ledger.make_checkpoint(tables, signer, origin, anchor=True)))
        return built[-1]

    appended = spool.append(event, lambda tables: Ledger.make_checkpoint(tables, signer, origin))
    return built[-1], appended


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Emitted:
    event: dict[str, Any]
    appended: Appended | None = None  # its ledger leaf
    checkpoint: StoredCheckpoint | None = None  # covering it (terminal events)


def ledger_facet(made: StoredCheckpoint) -> ProvlinkLedgerRunFacet:
    cp = made.checkpoint
    return ours(ProvlinkLedgerRunFacet(
        origin=cp.origin, treeSize=cp.size, rootHash=cp.root.hex(), checkpoint=made.note,
        signed="\n\n" in made.note, proofFrom=made.proof_from,
        consistencyProof=[base64.b64encode(h).decode() for h in made.proof]))


class Runtime:
    """Config, redactor, steps and emitter of this process."""

    def __init__(self, config: ProvlinkConfig, emitter: Emitter | None = None) -> None:
        self.config = config
        self.redactor = Redactor(config.secret_key_patterns, config.secret_values)
        self.steps: list[Step] = [self.redactor, self._cap_parameters]
        self.capture_failures = 0
        # Durable only beside the durable spool: an injected emitter (tests) counts in memory.
        self.failure_log = FailureLog(config.home / STATUS_FILE) if emitter is None else None
        self.emitter = emitter if emitter is not None else self._spool_emitter(config,
                                                                               self.redactor)

    def _cap_parameters(self, event: dict[str, Any]) -> dict[str, Any]:
        """Size bound on parameter values, after redaction has seen them whole."""
        return cap_parameters(event, self.config.parameter_max_chars)

    @staticmethod
    def _spool_emitter(config: ProvlinkConfig, redactor: Redactor) -> SpoolEmitter:
        from provlink.governance.keys import load_signer

        signer = load_signer(config)
        from provlink.delivery.spool_open import FleetTarget, local_spool, open_spool

        spool, fell_back = open_spool(config, redactor.redact_text)
        factory = (lambda: FleetTarget(config)) if fell_back else None

        def local() -> tuple[Spool, Sender]:
            spool = local_spool(config, redactor.redact_text)
            return spool, Sender.from_config(spool, config, lambda: FleetTarget(config))

        fallback = local if config.spool_url and not fell_back else None
        return SpoolEmitter(spool, Sender.from_config(spool, config, factory), signer, fallback)

    def build(self, record: CaptureRecord) -> dict[str, Any]:
        """Record -> redacted OpenLineage event dict (what would be spooled)."""
        event = to_event(record)
        for step in self.steps:
            event = step(event)
        return event

    def emit(self, record: CaptureRecord) -> dict[str, Any]:
        return self.emit_with_entry(record).event

    def emit_with_entry(self, record: CaptureRecord) -> Emitted:
        """Emit; with a ledger, a terminal event is anchored on both sides: it carries the
        checkpoint made right before it (covering the run's earlier entries, in the
        ``provlink_ledger`` facet) and a checkpoint covering it is made right after, all
        in one transaction where the emitter can (:meth:`SpoolEmitter.emit_terminal`)."""
        ledger = getattr(self.emitter, "emit_entry", None)
        if ledger is None:
            event = self.build(record)
            self.emitter.emit(event)
            return Emitted(event=event)
        terminal = record.event_type in _TERMINAL
        at_once = getattr(self.emitter, "emit_terminal", None)
        if terminal and at_once is not None:
            def anchored(before: StoredCheckpoint) -> dict[str, Any]:
                return self.build(dataclasses.replace(
                    record, run_facets={**record.run_facets, LEDGER: ledger_facet(before)}))

            try:
                event, appended = at_once(anchored)
                return Emitted(event=event, appended=appended, checkpoint=appended.then)
            except (ProvlinkError, LookupError, ValueError):  # append alone; the next covers it
                log.warning("provlink: could not checkpoint with the terminal event",
                            exc_info=True)
                event = self.build(record)
                return Emitted(event=event, appended=ledger(event))
        if terminal:
            before = self._checkpoint_or_none(anchor=True)
            if before is not None:
                record = dataclasses.replace(
                    record, run_facets={**record.run_facets, LEDGER: ledger_facet(before)})
        event = self.build(record)
        if not terminal:
            return Emitted(event=event, appended=ledger(event))
        try:
            appended = ledger(event, checkpoint=True)
            return Emitted(event=event, appended=appended, checkpoint=appended.then)
        except (ProvlinkError, LookupError, ValueError):  # append alone; the next one covers it
            log.warning("provlink: could not checkpoint with the terminal event", exc_info=True)
            return Emitted(event=event, appended=ledger(event))

    def _checkpoint_or_none(self, *, anchor: bool = False) -> StoredCheckpoint | None:
        """A failed checkpoint must not cost the event: the next one covers it."""
        try:
            return self.checkpoint(anchor=anchor)
        except ProvlinkError:
            log.warning("provlink: could not make a ledger checkpoint", exc_info=True)
            return None

    def checkpoint(self, *, anchor: bool = False) -> StoredCheckpoint | None:
        """A checkpoint of the ledger now (None when the emitter keeps no ledger)."""
        make = getattr(self.emitter, "checkpoint", None)
        return None if make is None else make(anchor=anchor)

    def emit_event(self, event: dict[str, Any]) -> None:
        """Emit an already-built OpenLineage event (still redacted)."""
        for step in self.steps:
            event = step(event)
        self.emitter.emit(event)

    def record_failure(self, where: str, error: BaseException | str) -> None:
        """Count one failed capture step, here and durably (redacted); never raises."""
        self.capture_failures += 1
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        try:
            text = self.redactor({"error": text})["error"]
        except Exception:  # noqa: BLE001 - an unredactable message is not kept
            text = type(error).__name__ if not isinstance(error, str) else "(unredactable)"
        note_in_process(where, text)
        try:
            if self.failure_log is not None:
                self.failure_log.record(where, text)
        except Exception:  # counting must never fail the task either
            log.debug("provlink: could not persist a capture failure", exc_info=True)

    def flush(self, timeout: float | None = None) -> bool:
        flush = getattr(self.emitter, "flush", None)
        if flush is None:
            return True
        return bool(flush(self.config.close_timeout if timeout is None else timeout))

    def close(self, timeout: float | None = None) -> bool:
        return self.emitter.close(self.config.close_timeout if timeout is None else timeout)


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime(factory: Callable[[], Runtime] | None = None) -> Runtime:
    """This process's runtime, built on first use.

    ``factory`` builds it when none is installed yet: adapters whose host has its own
    configuration (Airflow's ``[provlink]`` section) pass one; an installed runtime wins.
    """
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = factory() if factory else Runtime(ProvlinkConfig.load())
                atexit.register(_close_at_exit)
    return _runtime


def record_failure(where: str, error: BaseException | str) -> None:
    """Count a swallowed capture failure on this process's runtime; when even the runtime
    cannot be built, count it for the log line at exit. Never raises."""
    try:
        runtime = get_runtime()
    except Exception as exc:  # noqa: BLE001 - counted for the line at exit instead
        what = error if isinstance(error, str) else type(error).__name__
        note_in_process(where, f"{what} (and no runtime: {type(exc).__name__})")
        return
    runtime.record_failure(where, error)


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Replace this process's runtime (tests, explicit configuration); returns the old one."""
    global _runtime
    with _lock:
        old, _runtime = _runtime, runtime
    return old


_inherited: list[Runtime] = []


def _forget_in_child() -> None:
    """After ``fork()`` (Airflow's LocalExecutor forks task processes from a scheduler that
    already emitted), the child must not use the parent's SQLite connection, locks or dead
    sender thread: it builds its own runtime on first use. The parent's stays referenced so
    that it is never closed, or finalised, from the child."""
    global _runtime, _lock
    if _runtime is not None:
        _inherited.append(_runtime)
    _runtime = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def _close_at_exit() -> None:
    runtime = _runtime
    if runtime is None:
        return
    try:
        runtime.close()
    except Exception:  # never fail interpreter shutdown
        log.warning("provlink: could not drain the spool at exit; `provlink spool flush` will",
                    exc_info=True)
