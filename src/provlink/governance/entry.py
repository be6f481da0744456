"""Ledger entries: the bytes that become the Merkle tree's leaves.

An entry is the RFC 8785 (JCS) form of one JSON object, so another implementation can
rebuild the same bytes: ``{"v": 1, "seq": <leaf index>, "time": <unix ms>, "kind": <kind>,
...}`` plus the fields that carry meaning for that kind (docs/ledger.md lists them):

- ``openlineage.event``: ``payload_sha256`` (RFC 8785 digest of the event), ``run_id``,
  ``event_type``, ``job``, ``event_seq`` (its spool row) and ``state`` ("pending");
- ``delivery``: a delivery-state change of spooled events, ``state`` ("sent", "dead",
  "pending" on requeue) and ``events`` (their spool rows) — a new entry, never an edit;
- ``retention.prune``: ``events`` whose payloads were dropped (their digests stay);
- any other kind (registry actions: ``mlflow.registry.*``) through :func:`generic`:
  ``payload_sha256`` of its JSON payload, and ``run_id`` where one applies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from provlink.canonical import canonical_json

VERSION = 1
EVENT, DELIVERY, PRUNE = "openlineage.event", "delivery", "retention.prune"
STATE_NAMES = {0: "pending", 1: "sent", 2: "dead"}
RESERVED = frozenset({"v", "seq", "time", "kind"})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def encode(*, seq: int, time_ms: int, kind: str, fields: Mapping[str, Any]) -> bytes:
    """The canonical (RFC 8785) entry bytes; ``fields`` may not reuse the envelope's names."""
    clash = RESERVED & set(fields)
    if clash:
        raise ValueError(f"ledger entry fields {sorted(clash)} are reserved")
    return canonical_json({**fields, "v": VERSION, "seq": seq, "time": time_ms, "kind": kind})


def event_fields(event: Mapping[str, Any], digest: str, event_seq: int) -> dict[str, Any]:
    job = event.get("job") or {}
    return {"payload_sha256": digest, "run_id": str((event.get("run") or {}).get("runId", "")),
            "event_type": event.get("eventType"),
            "job": f"{job.get('namespace', '')}/{job.get('name', '')}",
            "event_seq": event_seq, "state": "pending"}


def generic(payload_sha256: str, run_id: str | None,
            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = dict(extra or {})
    fields["payload_sha256"] = payload_sha256
    if run_id:
        fields["run_id"] = run_id
    return fields
