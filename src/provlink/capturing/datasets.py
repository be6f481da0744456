"""OpenLineage dataset naming for what the core sees itself: local files."""

from __future__ import annotations

from pathlib import Path

from provlink.capturing.digest import file_digest, version_string
from provlink.capturing.file_schema import tabular_schema
from provlink.events.model import DatasetRef, SchemaField

FILE_NAMESPACE = "file"


def file_dataset(path: Path, *, max_bytes: int, with_schema: bool = True) -> DatasetRef:
    """A local file or directory as a dataset, versioned by its content digest."""
    resolved = path.expanduser().resolve()
    version = size = None
    if resolved.exists():
        digest = file_digest(resolved, max_bytes=max_bytes)
        version, size = version_string(digest), digest.size
    schema: tuple[SchemaField, ...] = ()
    if with_schema and resolved.exists():
        columns = tabular_schema(resolved) or []
        schema = tuple(SchemaField(name=n, type=t) for n, t in columns)
    return DatasetRef(namespace=FILE_NAMESPACE, name=str(resolved), version=version,
                      schema=schema, size_bytes=size)
