"""The ``provlink`` command, one module per command group (``main`` holds the spool group)."""

from provlink.cli.main import main as main

__all__ = ["main"]
