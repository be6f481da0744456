"""provlink: lineage and provenance for ML pipelines, as OpenLineage events.

The public API is what this module exports; everything else is internal. Names resolve on
first use, so that importing a light submodule (MLflow loads ``provlink.mlflow_context``
while ``import mlflow`` runs) does not pull in the OpenLineage client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from provlink._version import __version__ as __version__

if TYPE_CHECKING:
    from provlink.capture_point import CapturePoint as CapturePoint
    from provlink.capture_point import add_input as add_input
    from provlink.capture_point import add_output as add_output
    from provlink.capture_point import add_parameters as add_parameters
    from provlink.capture_point import capture as capture
    from provlink.capture_point import captured as captured
    from provlink.capture_point import current as current
    from provlink.config import ProvlinkConfig as ProvlinkConfig
    from provlink.errors import ConfigError as ConfigError
    from provlink.errors import ProvlinkError as ProvlinkError
    from provlink.model import DatasetRef as DatasetRef
    from provlink.model import SchemaField as SchemaField
    from provlink.runtime import get_runtime as get_runtime

_EXPORTS: dict[str, str] = {
    "CapturePoint": "provlink.capture_point",
    "add_input": "provlink.capture_point",
    "add_output": "provlink.capture_point",
    "add_parameters": "provlink.capture_point",
    "capture": "provlink.capture_point",
    "captured": "provlink.capture_point",
    "current": "provlink.capture_point",
    "ProvlinkConfig": "provlink.config",
    "ConfigError": "provlink.errors",
    "ProvlinkError": "provlink.errors",
    "DatasetRef": "provlink.model",
    "SchemaField": "provlink.model",
    "get_runtime": "provlink.runtime",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'provlink' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def flush(timeout: float | None = None) -> bool:
    """Deliver what this process spooled; True when nothing is left pending."""
    from provlink.runtime import get_runtime

    return get_runtime().flush(timeout)


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
