"""One canonical JSON for every hash provlink computes over JSON: RFC 8785 (JCS).

The spool, the ledger and the backend's de-duplication all hash these bytes, so the same
event has the same digest wherever it is stored, and a backend event can be matched to its
ledger entry. The ``rfc8785`` package does the canonicalisation; only the hashing is here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (sorted keys, no whitespace, ECMAScript number format)."""
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_digest(value: Any) -> str:
    """Hex SHA-256 of the RFC 8785 form of ``value``: the one JSON hash used everywhere."""
    return sha256_hex(canonical_json(value))
