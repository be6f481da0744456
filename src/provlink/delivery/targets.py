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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provlink.errors import DeliveryError, EventValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """Result of delivering one event: ``ok``, or an error that is permanent or not."""

    ok: bool
    permanent: bool = False
    error: str | None = None


class Target(Protocol):
    """Something the sender can deliver events to, in order."""

    kind: str

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        """Deliver in order; stop at the first transient failure (shorter result list)."""

    def close(self, timeout: float) -> bool: ...


class TransportTarget:
    """Delivers through an openlineage-python transport, in order.

    With an HTTP transport and a backlog, it first tries provlink's batch endpoint
    (``<endpoint>/batch``, served by ``provlink serve``); a backend without one (a real
    Marquez answers 404/405) is remembered and gets one POST per event.
    """

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.kind = f"openlineage:{getattr(transport, 'kind', type(transport).__name__)}"
        self._batch_url = _batch_url(transport)

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        if self._batch_url is not None and len(payloads) > 1:
            outcomes = self._deliver_batch(payloads)
            if outcomes is not None:
                return outcomes
        return self._deliver_each(payloads)

    def _deliver_each(self, payloads: list[str]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for payload in payloads:
            try:
                # Serde.to_json, used by every transport, accepts a plain dict.
                self.transport.emit(json.loads(payload))
            except Exception as exc:  # noqa: BLE001 - transports raise anything
                failure = classify(exc)
                if not failure.permanent:
                    outcomes.append(Outcome(ok=False, error=str(failure)))
                    return outcomes
                outcomes.append(Outcome(ok=False, permanent=True, error=str(failure)))
            else:
                outcomes.append(Outcome(ok=True))
        return outcomes

    def _deliver_batch(self, payloads: list[str]) -> list[Outcome] | None:
        """One POST for the whole backlog; None means "no batch endpoint here"."""
        config = self.transport.config
        headers = {"Content-Type": "application/json", **config.custom_headers}
        if bearer := config.auth.get_bearer():
            headers["Authorization"] = bearer
        try:
            response = self.transport.session.post(
                self._batch_url, data="[" + ",".join(payloads) + "]", headers=headers,
                timeout=max(config.timeout, 30.0), verify=self.transport.verify)
        except Exception as exc:  # noqa: BLE001 - connection errors are transient
            return [Outcome(ok=False, error=str(classify(exc)))]
        status = response.status_code
        if status >= 500 or status in (408, 429):
            return [Outcome(ok=False, error=f"{status} {response.text[:500]}")]
        if status != 200:
            self._batch_url = None  # not provlink's batch endpoint: per-event from now on
            return None
        refused = {e["index"]: f"422 {e.get('field')}: {e.get('message')}"
                   for e in response.json().get("errors", [])}
        return [Outcome(ok=False, permanent=True, error=refused[i]) if i in refused
                else Outcome(ok=True) for i in range(len(payloads))]

    def close(self, timeout: float) -> bool:
        return bool(self.transport.close(timeout))


def _batch_url(transport: Any) -> str | None:
    from urllib.parse import urljoin

    from openlineage.client.transport.http import HttpTransport

    if not isinstance(transport, HttpTransport):
        return None
    return urljoin(transport.url, transport.endpoint.rstrip("/") + "/batch")


class StoreTarget:
    """Writes validated events directly into the embedded lineage store."""

    kind = "embedded-store"

    def __init__(self, url: str | None = None) -> None:
        from provlink.server.store import open_store

        self._store = open_store(url)

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        from provlink.server.validation import validate_event

        outcomes: list[Outcome] = []
        valid: list[dict[str, Any]] = []
        for payload in payloads:
            event = json.loads(payload)
            try:
                validate_event(event)
            except EventValidationError as exc:
                outcomes.append(Outcome(ok=False, permanent=True, error=f"422 {exc}"))
                continue
            valid.append(event)
            outcomes.append(Outcome(ok=True))
        try:
            self._store.ingest_many(valid)
        except Exception as exc:  # noqa: BLE001 - a locked or broken store is retried later
            return [Outcome(ok=False, error=f"store: {exc}")]
        return outcomes

    def close(self, timeout: float) -> bool:
        self._store.close()
        return True


class NullTarget:
    """``OPENLINEAGE_DISABLED=true``: events are spooled (and chained) but sent nowhere."""

    kind = "disabled"

    def deliver(self, payloads: list[str]) -> list[Outcome]:
        return [Outcome(ok=True) for _ in payloads]

    def close(self, timeout: float) -> bool:
        return True


def classify(exc: BaseException) -> DeliveryError:
    """4xx (but 408/429) means the backend refused this event: retrying cannot help."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        body = (getattr(response, "text", "") or "")[:2000]
        return DeliveryError(f"{status} {body}".strip(), permanent=True, status=status)
    if isinstance(exc, (ValueError, TypeError)) and status is None:
        return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=True)
    return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False, status=status)


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


def resolve_target(home: Path) -> Target:
    """The delivery target for this process, from the environment and config files;
    the embedded store lives under ``home`` (``PROVLINK_HOME``)."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return NullTarget()
    if not openlineage_configured():
        return StoreTarget(f"sqlite:///{home.resolve() / 'lineage.db'}")
    from openlineage.client import OpenLineageClient

    transport = OpenLineageClient().transport
    _single_attempt_http(transport)
    return TransportTarget(transport)


def _single_attempt_http(transport: Any) -> None:
    """Our spool retries with backoff; urllib3's in-call retries would only stall the sender.

    A retry policy the user set explicitly is kept.
    """
    from openlineage.client.transport.http import HttpTransport
    from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG

    if isinstance(transport, HttpTransport) and transport.config.retry == DEFAULT_RETRY_CONFIG:
        transport.config.retry = {**DEFAULT_RETRY_CONFIG, "total": 0, "read": 0, "connect": 0}
