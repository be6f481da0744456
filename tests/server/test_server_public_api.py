"""The public surface of ``provlink.server`` that the sender and the CLI import."""

from __future__ import annotations

from provlink import server
from provlink.cli.server import register
from provlink.server.store import open_store
from provlink.server.validation import validate_event


def test_public_api_is_pinned() -> None:
    assert server.__all__ == ["Store", "open_store", "validate_event"]
    assert server.open_store is open_store
    assert server.validate_event is validate_event
    assert callable(register)
