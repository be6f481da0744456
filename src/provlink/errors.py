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
    """An event could not be delivered; ``permanent`` says whether retrying can help, and
    ``unreachable`` that the backend never judged the event (down, overloaded, refusing our
    credentials), so the failure is not counted against the event's attempt limit.

    A custom transport or target raises ``DeliveryError(..., permanent=True)`` to
    dead-letter an event at once."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.unreachable = unreachable and not permanent


class EventValidationError(ProvlinkError):
    """An OpenLineage event is malformed; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LineageQueryError(ProvlinkError):
    """A governance query could not be answered: the lineage backend or the MLflow registry
    is unreachable, or has no record of what was asked; the message says which."""


class LineageAuthError(LineageQueryError):
    """``provlink serve`` refused the governance client's API key (401: none or unknown;
    403: it lacks the scope). Never caught as "no witness here": the fix is a setting."""

    def __init__(self, what: str, status: int, scope: str) -> None:
        problem = ("presented no API key it knows" if status == 401
                   else f"presented an API key without the {scope!r} scope")
        super().__init__(
            f"{what} answered {status}: provlink {problem}; set PROVLINK_LINEAGE_API_KEY "
            f"(lineage_api_key in provlink.yml) to one of that server's keys"
            f"{' with write scope' if scope == 'write' else ''}")
        self.status = status


class PrivateFileError(ProvlinkError):
    """A file or directory provlink keeps private is not safe to use: the home is owned by
    another user, or a spool or store path is a symlink; the message says what to do."""
