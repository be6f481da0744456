"""Where the sender delivers: an OpenLineage transport, or the embedded store.

Resolution follows openlineage-python's own configuration (``OPENLINEAGE_URL``,
``openlineage.yml``, ``OPENLINEAGE__TRANSPORT__*``, ``OPENLINEAGE_DISABLED``). With none
of it set, events go straight into the embedded lineage store under ``PROVLINK_HOME``,
which ``provlink serve`` shows — zero configuration.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from provlink.delivery.fork_guard import section
from provlink.delivery.http_poster import HttpPoster, classify_exception, classify_status
from provlink.delivery.lanes import LaneStream, deliver_in_lanes, deliver_in_order
from provlink.delivery.outcome import HELD, OK, Outcome
from provlink.errors import DeliveryError, EventValidationError
from provlink.events import _compat as openlineage_compat
from provlink.threads import ignore_this_thread

if TYPE_CHECKING:
    from provlink.server.store import Store

log = logging.getLogger(__name__)

__all__ = ["HELD", "NullTarget", "Outcome", "StoreTarget", "Target", "TargetStream",
           "TransportTarget", "classify", "resolve_target"]

classify = classify_exception


class Target(Protocol):
    """Something the sender can deliver events to.

    ``deliver`` returns one :class:`Outcome` per payload, or fewer: the rest were not
    attempted (as :data:`HELD` outcomes are). Events of one run must be attempted in the
    order given, and none after that run's first transient failure.
    """

    kind: str

    def deliver(self, payloads: list[str]) -> list[Outcome]: ...

    def close(self, timeout: float) -> bool: ...


class TargetStream(Protocol):
    """Batches handed over before the previous ones are done (``Target.open_stream``).

    Each batch resolves to one :class:`Outcome` per payload, or fewer (the rest held). A
    run's events of a later batch are attempted only after its events of earlier batches,
    and none after that run's first transient failure in the stream; once the backend is
    unreachable nothing more is attempted.
    """

    def submit(self, payloads: list[str]) -> Future[list[Outcome]]: ...


class TransportTarget:
    """Delivers through an openlineage-python transport.

    With an HTTP transport: a backlog first goes to provlink's batch endpoint
    (``<endpoint>/batch``, served by ``provlink serve``) in one POST. A backend without one
    (a real Marquez answers 404/405) is remembered and gets one POST per event, runs in
    parallel lanes (:mod:`provlink.delivery.lanes`) over ``concurrency`` pooled
    connections. A batch the backend refuses as a whole (another 4xx) or fails on (500,
    a read timeout) is re-sent one event at a time, so only a bad event is dead-lettered.
    Other transports (console, file, Kafka, ...) get their own ``emit`` per event, in order.
    With lanes, :meth:`open_stream` lets the sender overlap batches.
    """

    def __init__(self, transport: Any, *, concurrency: int = 16) -> None:
        self.transport = transport
        self.kind = f"openlineage:{getattr(transport, 'kind', type(transport).__name__)}"
        self._poster = _http_poster(transport, concurrency)
        self._use_batch = self._poster is not None
        self._pool = (ThreadPoolExecutor(concurrency, thread_name_prefix="provlink-send",
                                         initializer=ignore_this_thread)
                      if self._poster is not None and concurrency > 1 else None)

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        if self._poster is None:
            return self._emit_each(payloads)
        if self._use_batch and len(payloads) > 1:
            outcomes = self._deliver_batch(self._poster, payloads)
            if outcomes is not None:
                return outcomes
        if self._pool is None:
            return deliver_in_order(payloads, self._poster.send_one)
        return deliver_in_lanes(payloads, self._poster.send_one, self._pool)

    def open_stream(self) -> TargetStream | None:
        """Lanes that outlive one batch (None without lanes: the sender goes batch by batch)."""
        if self._poster is None or self._pool is None:
            return None
        return _TransportStream(self, self._poster, LaneStream(self._poster.send_one,
                                                               self._pool))

    def _emit_each(self, payloads: list[str]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for payload in payloads:
            try:
                # Serde.to_json, used by every transport, accepts a plain dict.
                self.transport.emit(json.loads(payload))
            except Exception as exc:  # noqa: BLE001 - transports raise anything
                failure = classify_exception(exc)
                outcomes.append(Outcome.failed(failure))
                if not failure.permanent:
                    return outcomes
            else:
                outcomes.append(OK)
        return outcomes

    def _deliver_batch(self, poster: HttpPoster, payloads: list[str]) -> list[Outcome] | None:
        """One POST for the whole backlog; None means "send these one by one"."""
        try:
            response = poster.post(poster.batch_url, "[" + ",".join(payloads) + "]",
                                   timeout=max(poster.timeout, 30.0))
        except Exception as exc:  # noqa: BLE001 - requests and TLS raise anything
            failure = classify_exception(exc)
            return [Outcome.failed(failure)] if failure.unreachable else None
        status = response.status
        if status in (404, 405):
            self._use_batch = False  # no batch endpoint (a real Marquez): per event from now on
            return None
        if status != 200:
            failure = classify_status(status, response.text)
            return [Outcome.failed(failure)] if failure.unreachable else None
        try:
            errors = json.loads(response.text).get("errors", [])
            refused = {int(e["index"]): f"422 {e.get('field')}: {e.get('message')}"
                       for e in errors}
        except (ValueError, TypeError, KeyError, AttributeError):
            self._use_batch = False  # a 200 that is not provlink's batch answer
            return None
        return [Outcome(ok=False, permanent=True, error=refused[i]) if i in refused else OK
                for i in range(len(payloads))]

    def close(self, timeout: float) -> bool:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._poster is not None:
            self._poster.close()
        return bool(self.transport.close(timeout))


class _TransportStream:
    """A :class:`TransportTarget`'s batches: the batch endpoint while it has one (a batch
    POST waits for the lanes' earlier sends, so a run's events still arrive in order),
    lanes after that."""

    def __init__(self, target: TransportTarget, poster: HttpPoster, lanes: LaneStream) -> None:
        self._target = target
        self._poster = poster
        self._lanes = lanes
        self._submitted: list[Future[list[Outcome]]] = []

    def submit(self, payloads: list[str]) -> Future[list[Outcome]]:
        if self._lanes.stopped:
            return _resolved([])  # the backend is unreachable: nothing attempted
        if self._target._use_batch and len(payloads) > 1:
            for earlier in self._submitted:
                earlier.result()
            self._submitted.clear()
            outcomes = self._target._deliver_batch(self._poster, payloads)
            if outcomes is not None:
                if any(not (o.ok or o.permanent) for o in outcomes):
                    self._lanes.stop()  # the batch endpoint was unreachable
                return _resolved(outcomes)
        future = self._lanes.submit(payloads)
        self._submitted = [f for f in self._submitted if not f.done()] + [future]
        return future


def _resolved(outcomes: list[Outcome]) -> Future[list[Outcome]]:
    future: Future[list[Outcome]] = Future()
    future.set_result(outcomes)
    return future


def _http_poster(transport: Any, concurrency: int) -> HttpPoster | None:
    from openlineage.client.transport.http import HttpTransport

    if not isinstance(transport, HttpTransport):
        return None
    return HttpPoster(transport, pool_size=concurrency)


def store_unavailable(exc: BaseException) -> bool:
    """Whether a store failure is about the store, not the event: DB-API 2 (PEP 249) names
    those ``OperationalError`` / ``InterfaceError`` (locked, disk full, connection lost) in
    sqlite3 and psycopg alike; OS errors and a closed store too. Anything else raised for
    one event (an integrity or data error, a bug its shape triggers) will not heal by retrying."""
    if isinstance(exc, DeliveryError):
        return exc.unreachable
    if isinstance(exc, (OSError, TimeoutError, MemoryError)):
        return True
    if isinstance(exc, RuntimeError) and "closed" in str(exc):
        return True
    return any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(exc).__mro__)


class StoreTarget:
    """Writes validated events directly into the embedded lineage store.

    Invalid events are dead-lettered with the validation message. A batch the store fails
    is retried one event at a time: a store that is locked or unreachable keeps the events
    pending (in order), an event the store itself cannot take is dead-lettered with the
    store's error, and the others are stored.
    """

    kind = "embedded-store"

    def __init__(self, url: str | None = None, *, store: Store | None = None) -> None:
        from provlink.server.store import open_store

        self._store = store if store is not None else open_store(url)

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        with section():  # SQLite work, and the validator's first import: see fork_guard
            return self._deliver(payloads)

    def _deliver(self, payloads: list[str]) -> list[Outcome]:
        from provlink.server.validation import validate_event

        outcomes: list[Outcome] = []
        valid: list[tuple[int, dict[str, Any]]] = []
        for index, payload in enumerate(payloads):
            try:
                event = json.loads(payload)
                validate_event(event)
            except EventValidationError as exc:
                outcomes.append(Outcome(ok=False, permanent=True, error=f"422 {exc}"))
                continue
            except (ValueError, TypeError) as exc:
                outcomes.append(Outcome(ok=False, permanent=True,
                                        error=f"not an OpenLineage event: {exc}"))
                continue
            valid.append((index, event))
            outcomes.append(OK)
        if not valid:
            return outcomes
        try:
            self._store.ingest_many([event for _, event in valid])
        except Exception as exc:  # noqa: BLE001 - classified just below
            if store_unavailable(exc) or len(valid) == 1:
                return self._failed_at(outcomes, valid[0][0], exc)
            return self._one_by_one(outcomes, valid)
        return outcomes

    def _one_by_one(self, outcomes: list[Outcome],
                    valid: list[tuple[int, dict[str, Any]]]) -> list[Outcome]:
        for index, event in valid:
            try:
                self._store.ingest_many([event])
            except Exception as exc:  # noqa: BLE001 - classified in _failed_at
                if store_unavailable(exc):
                    return self._failed_at(outcomes, index, exc)
                outcomes[index] = _store_failure(exc)
        return outcomes

    @staticmethod
    def _failed_at(outcomes: list[Outcome], index: int, exc: BaseException) -> list[Outcome]:
        """Outcomes up to ``index`` stand; ``index`` failed; the rest were not stored."""
        return [*outcomes[:index], _store_failure(exc)]

    def close(self, timeout: float) -> bool:
        self._store.close()
        return True


def _store_failure(exc: BaseException) -> Outcome:
    text = f"store: {type(exc).__name__}: {exc}"
    if store_unavailable(exc):
        return Outcome(ok=False, error=text, counted=False)
    return Outcome(ok=False, permanent=True, error=text)


class NullTarget:
    """``OPENLINEAGE_DISABLED=true``: events are spooled (and chained) but sent nowhere."""

    kind = "disabled"

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        return [OK for _ in payloads]

    def close(self, timeout: float) -> bool:
        return True


def openlineage_configured(env: dict[str, str] | None = None, cwd: Path | None = None) -> bool:
    """Whether the user configured an OpenLineage transport by any of its documented means."""
    env = dict(os.environ) if env is None else env
    if env.get("OPENLINEAGE_URL") or any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env):
        return True
    if env.get("OPENLINEAGE_CONFIG"):
        return True
    candidates = [(cwd or Path.cwd()) / "openlineage.yml",
                  Path(env.get("HOME", str(Path.home()))) / ".openlineage" / "openlineage.yml"]
    return any(p.is_file() for p in candidates)


def resolve_target(home: Path, *, concurrency: int = 16) -> Target:
    """The delivery target for this process, from the environment and config files;
    the embedded store lives under ``home`` (``PROVLINK_HOME``)."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return NullTarget()
    if not openlineage_configured():
        return StoreTarget(f"sqlite:///{home.resolve() / 'lineage.db'}")
    from openlineage.client import OpenLineageClient

    transport = OpenLineageClient().transport
    _single_attempt_http(transport)
    return TransportTarget(transport, concurrency=concurrency)


def _single_attempt_http(transport: Any) -> None:
    """Our spool retries with backoff; urllib3's in-call retries would only stall the sender.

    A retry policy the user set explicitly is kept.
    """
    openlineage_compat.single_attempt_http(transport)
