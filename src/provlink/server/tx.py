"""The one database handle the store's SQL runs through, whatever the dialect.

SQL is written once with ``?`` placeholders; the PostgreSQL store translates them to
``%s``. Keeping this seam tiny is what lets ``ingest`` and ``queries`` serve both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

Params = Sequence[Any]


class Tx:
    """A connection inside one transaction (or one autocommit read)."""

    __slots__ = ("_conn", "_sql", "dialect", "seen")

    def __init__(self, conn: Any, translate: Callable[[str], str], dialect: str) -> None:
        self._conn = conn
        self._sql = translate
        self.dialect = dialect
        self.seen: set[Any] = set()  # keys already written in this transaction (e.g. namespaces)

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(self._sql(sql), params).fetchall())

    def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._conn.execute(self._sql(sql), params).fetchone()
        return found

    def value(self, sql: str, params: Params = ()) -> Any:
        found = self.row(sql, params)
        return None if found is None else found[0]

    def run(self, sql: str, params: Params = ()) -> None:
        self._conn.execute(self._sql(sql), params)

    def run_many(self, sql: str, seq: Iterable[Params]) -> None:
        batch = list(seq)
        if batch:
            self._conn.cursor().executemany(self._sql(sql), batch)
