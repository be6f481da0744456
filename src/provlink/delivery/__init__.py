"""Delivery: the durable spool, the background sender, the targets it sends to and the
per-process runtime that chains record -> event -> redact -> spool. Never imports capture."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provlink._lazy import lazy_exports

if TYPE_CHECKING:
    from provlink.delivery.runtime import Runtime as Runtime
    from provlink.delivery.runtime import get_runtime as get_runtime
    from provlink.delivery.sender import Sender as Sender
    from provlink.delivery.spool import Spool as Spool
    from provlink.delivery.targets import resolve_target as resolve_target

_EXPORTS: dict[str, str] = {
    "Runtime": "provlink.delivery.runtime",
    "get_runtime": "provlink.delivery.runtime",
    "Spool": "provlink.delivery.spool",
    "Sender": "provlink.delivery.sender",
    "resolve_target": "provlink.delivery.targets",
}

__getattr__ = lazy_exports("provlink.delivery", globals(), _EXPORTS)

__all__ = ["Runtime", "Sender", "Spool", "get_runtime", "resolve_target"]
