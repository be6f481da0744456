"""Governance: the ledger and the questions asked of lineage through Marquez's API (trace,
models, registry verification)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provlink._lazy import lazy_exports

if TYPE_CHECKING:
    from provlink.governance.ledger import verify as verify
    from provlink.governance.trace import LineageApi as LineageApi
    from provlink.governance.trace import trace as trace

_EXPORTS: dict[str, str] = {
    "LineageApi": "provlink.governance.trace",
    "trace": "provlink.governance.trace",
    "verify": "provlink.governance.ledger",
}

__getattr__ = lazy_exports("provlink.governance", globals(), _EXPORTS)

__all__ = ["LineageApi", "trace", "verify"]
