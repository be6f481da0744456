"""provlink: lineage and provenance for ML pipelines, as OpenLineage events.

The public API is what this module re-exports; everything else is internal.
"""

from provlink._version import __version__ as __version__
from provlink.capture import CapturePoint as CapturePoint
from provlink.capture import add_input as add_input
from provlink.capture import add_output as add_output
from provlink.capture import add_parameters as add_parameters
from provlink.capture import capture as capture
from provlink.capture import captured as captured
from provlink.capture import current as current
from provlink.config import ProvlinkConfig as ProvlinkConfig
from provlink.errors import ConfigError as ConfigError
from provlink.errors import ProvlinkError as ProvlinkError
from provlink.model import DatasetRef as DatasetRef
from provlink.model import SchemaField as SchemaField
from provlink.runtime import get_runtime as get_runtime


def flush(timeout: float | None = None) -> bool:
    """Deliver what this process spooled; True when nothing is left pending."""
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
