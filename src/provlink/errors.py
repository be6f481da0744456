"""The one error hierarchy of provlink.

The core raises these; only integration entry points (Airflow listener, Dagster hooks,
the capture context manager) catch them, log a warning and count them, so lineage
never fails the user's task.
"""

from __future__ import annotations


class ProvlinkError(Exception):
    """Root of every error provlink raises on purpose."""


class ConfigError(ProvlinkError):
    """A setting is unknown or has a bad value; the message names the setting and the fix."""


class CaptureError(ProvlinkError):
    """Building a capture record or its event failed."""


class SpoolError(ProvlinkError):
    """The durable spool could not be opened or written."""


class DeliveryError(ProvlinkError):
    """An event could not be delivered; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


class EventValidationError(ProvlinkError):
    """An OpenLineage event is malformed; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LineageQueryError(ProvlinkError):
    """A governance query could not be answered: the lineage backend or the MLflow registry
    is unreachable, or has no record of what was asked; the message says which."""
