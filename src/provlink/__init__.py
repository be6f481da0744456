"""provlink: lineage and provenance for ML pipelines, as OpenLineage events.

The public API is what this module exports; everything else is internal. Names resolve on
first use, so that importing a light submodule (MLflow loads ``provlink.mlflow.context``
while ``import mlflow`` runs) does not pull in the OpenLineage client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provlink._lazy import lazy_exports
from provlink._version import __version__ as __version__

if TYPE_CHECKING:
    from provlink.capturing.point import CapturePoint as CapturePoint
    from provlink.capturing.point import add_input as add_input
    from provlink.capturing.point import add_output as add_output
    from provlink.capturing.point import add_parameters as add_parameters
    from provlink.capturing.point import capture as capture
    from provlink.capturing.point import captured as captured
    from provlink.capturing.point import current as current
    from provlink.config import ProvlinkConfig as ProvlinkConfig
    from provlink.delivery.runtime import get_runtime as get_runtime
    from provlink.errors import ConfigError as ConfigError
    from provlink.errors import ProvlinkError as ProvlinkError
    from provlink.events.model import DatasetRef as DatasetRef
    from provlink.events.model import SchemaField as SchemaField

_EXPORTS: dict[str, str] = {
    "CapturePoint": "provlink.capturing.point",
    "add_input": "provlink.capturing.point",
    "add_output": "provlink.capturing.point",
    "add_parameters": "provlink.capturing.point",
    "capture": "provlink.capturing.point",
    "captured": "provlink.capturing.point",
    "current": "provlink.capturing.point",
    "ProvlinkConfig": "provlink.config",
    "ConfigError": "provlink.errors",
    "ProvlinkError": "provlink.errors",
    "DatasetRef": "provlink.events.model",
    "SchemaField": "provlink.events.model",
    "get_runtime": "provlink.delivery.runtime",
}


__getattr__ = lazy_exports("provlink", globals(), _EXPORTS)


def flush(timeout: float | None = None) -> bool:
    """Deliver what this process spooled; True when nothing is left pending.

    Never raises: a provlink that cannot run logs, counts the failure and answers False.
    """
    import logging

    from provlink.delivery.runtime import get_runtime, record_failure

    try:
        return get_runtime().flush(timeout)
    except Exception as exc:  # lineage must never fail the user's code
        logging.getLogger("provlink").warning("provlink: flush failed", exc_info=True)
        record_failure("flush", exc)
        return False


__all__ = [
    "CapturePoint",
    "ConfigError",
    "DatasetRef",
    "ProvlinkConfig",
    "ProvlinkError",
    "SchemaField",
    "__version__",
    "add_input",
    "add_output",
    "add_parameters",
    "capture",
    "captured",
    "current",
    "flush",
    "get_runtime",
]
