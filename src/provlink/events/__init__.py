"""Events: the neutral record, provlink's facets and their JSON Schemas, OpenLineage event
building and redaction. Imports nothing from capture or delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provlink._lazy import lazy_exports

if TYPE_CHECKING:
    from provlink.events.build import to_event as to_event
    from provlink.events.model import CaptureRecord as CaptureRecord
    from provlink.events.model import DatasetRef as DatasetRef
    from provlink.events.model import EventType as EventType
    from provlink.events.model import JobRef as JobRef
    from provlink.events.model import ParentRef as ParentRef
    from provlink.events.model import SchemaField as SchemaField
    from provlink.events.redact import Redactor as Redactor

_EXPORTS: dict[str, str] = {
    "CaptureRecord": "provlink.events.model",
    "DatasetRef": "provlink.events.model",
    "SchemaField": "provlink.events.model",
    "JobRef": "provlink.events.model",
    "ParentRef": "provlink.events.model",
    "EventType": "provlink.events.model",
    "to_event": "provlink.events.build",
    "Redactor": "provlink.events.redact",
}

__getattr__ = lazy_exports("provlink.events", globals(), _EXPORTS)

__all__ = [
    "CaptureRecord", "DatasetRef", "EventType", "JobRef", "ParentRef", "Redactor", "SchemaField",
    "to_event",
]
