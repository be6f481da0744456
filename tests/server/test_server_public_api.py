"""The public surface of ``provlink.server`` that the sender and the CLI import."""

from __future__ import annotations

import argparse

from provlink import server
from provlink.cli.server import export_command, import_command, register, serve_command
from provlink.server.store import open_store
from provlink.server.validation import validate_event


def test_public_api_is_pinned() -> None:
    assert server.__all__ == ["Store", "open_store", "validate_event"]
    assert server.open_store is open_store
    assert server.validate_event is validate_event


def test_register_adds_the_three_commands() -> None:
    parser = argparse.ArgumentParser(prog="provlink")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    assert set(subparsers.choices) == {"serve", "export", "import"}
    serve = parser.parse_args(["serve", "--port", "0", "--api-key", "a", "--api-key", "b:read"])
    assert (serve.func, serve.port, serve.api_key, serve.db) == (
        serve_command, 0, ["a", "b:read"], None
    )
    export = parser.parse_args(["export", "--db", "sqlite:///x.db", "-o", "out.jsonl"])
    assert (export.func, export.db, export.output) == (
        export_command, "sqlite:///x.db", "out.jsonl"
    )
    assert parser.parse_args(["import", "-"]).func is import_command
