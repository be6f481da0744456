"""The store interface and the one place that picks a backend from a URL.

>>> store = open_store("sqlite:///tmp/provlink-doctest.db")  # doctest: +SKIP
>>> store.ingest(event)                                       # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from provlink.errors import ConfigError
from provlink.server.sql_store import SqlStore


class Store(Protocol):
    """What the API, the sender and export/import rely on; both backends implement all of it."""

    def ingest(self, event: dict[str, Any]) -> bool: ...
    def ingest_many(self, events: list[dict[str, Any]]) -> list[bool]: ...
    def iter_events(self, batch: int = 1000) -> Iterator[dict[str, Any]]: ...
    def counts(self) -> dict[str, int]: ...
    def close(self) -> None: ...


def default_path() -> Path:
    """``lineage.db`` under the configured ``home`` (``PROVLINK_HOME``, ``provlink.yml`` ...)."""
    from provlink.config import ProvlinkConfig

    return ProvlinkConfig.load().store_path


def open_store(url: str | None = None) -> SqlStore:
    """Open (creating and migrating) the store at ``url``.

    ``None`` → the SQLite file under ``PROVLINK_HOME``; ``sqlite:///abs/path.db`` or a plain
    path → SQLite; ``postgresql://…`` / ``postgres://…`` → PostgreSQL.
    """
    if url is None:
        from provlink.server.sqlite_store import SqliteStore

        return SqliteStore(default_path())
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from provlink.server.postgres_store import PostgresStore
        except ImportError as error:
            raise ConfigError(
                "PostgreSQL stores need psycopg: pip install 'provlink[postgres]'"
            ) from error
        return PostgresStore(url)
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
        if not path or path == "/":
            raise ConfigError(
                f"store URL {url!r} has no file path; use sqlite:///path/to/lineage.db"
            )
        from provlink.server.sqlite_store import SqliteStore

        return SqliteStore(path)
    if "://" in url:
        raise ConfigError(f"unsupported store URL {url!r}; use sqlite:///path or postgresql://...")
    from provlink.server.sqlite_store import SqliteStore

    return SqliteStore(url)
