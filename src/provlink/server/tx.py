"""The one database handle the store's SQL runs through, whatever the dialect.

SQL is written once with ``?`` placeholders; the PostgreSQL store translates them to
``%s``. Keeping this seam tiny is what lets ``ingest`` and ``queries`` serve both databases.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Params = Sequence[Any]
_CHUNK = 400  # rows per statement: under SQLite's and PostgreSQL's parameter limits


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

    def select_in(
        self, sql: str, ids: Iterable[Any], *, lock: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run ``sql`` whose ``IN (?)`` stands for ``ids``; ``lock`` rows on PostgreSQL.

        PostgreSQL gets one array parameter (``= ANY(?)``), so the statement text never
        changes and its plan is prepared once; SQLite gets an expanded list, in chunks.
        """
        values = list(ids)
        if not values:
            return []
        if self.dialect == "postgresql":
            suffix = " FOR UPDATE" if lock else ""
            return self.rows(sql.replace(" IN (?)", " = ANY(?)") + suffix, (values,))
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            rows.extend(self.rows(sql.replace("(?)", f"({','.join('?' * len(chunk))})"), chunk))
        return rows

    def select_keys(
        self, sql: str, keys: Sequence[tuple[str, str]], *, lock: bool = False
    ) -> list[tuple[Any, ...]]:
        """``sql WHERE (namespace, name) IN keys``, locked in key order on PostgreSQL."""
        if not keys:
            return []
        if self.dialect == "postgresql":
            suffix = " ORDER BY namespace, name FOR UPDATE" if lock else ""
            return self.rows(
                f"{sql} WHERE (namespace, name) IN (SELECT * FROM unnest(?::text[], ?::text[]))"
                + suffix,
                ([k[0] for k in keys], [k[1] for k in keys]),
            )
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            values = ",".join(["(?, ?)"] * len(chunk))
            rows.extend(
                self.rows(
                    f"{sql} WHERE (namespace, name) IN (VALUES {values})",
                    [part for key in chunk for part in key],
                )
            )
        return rows

    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Params],
        tail: str = "",
        *,
        returning: bool = False,
    ) -> list[tuple[Any, ...]]:
        """``INSERT INTO table (columns)`` every row, then ``tail`` (``ON CONFLICT ...``,
        ``RETURNING ...``); the returned rows when ``returning``.

        PostgreSQL gets *one* statement whatever the row count: the rows travel as one JSON
        parameter unpacked by ``json_populate_recordset`` against the table's own row type, so
        the statement text (prepared once) and the driver's work per statement stay fixed;
        rows must not repeat a key that ``tail`` upserts. SQLite, in-process, gets an
        ``executemany`` (multi-row ``VALUES`` when rows are returned).
        """
        if not rows:
            return []
        names = ", ".join(columns)
        if self.dialect == "postgresql":
            sql = (
                f"INSERT INTO {table} ({names}) SELECT {names}"
                f" FROM json_populate_recordset(NULL::{table}, ?){tail}"
            )
            doc = (_records(columns, rows),)
            if returning:
                return self.rows(sql, doc)
            self.run(sql, doc)
            return []
        one = "(" + ", ".join("?" * len(columns)) + ")"
        if not returning:
            self.run_many(f"INSERT INTO {table} ({names}) VALUES {one}{tail}", rows)
            return []
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            found.extend(
                self.rows(
                    f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))}{tail}",
                    [value for row in chunk for value in row],
                )
            )
        return found

    def update_rows(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> None:
        """``UPDATE table SET columns WHERE id`` for rows ``(*values, id)``, batched as above."""
        if not rows:
            return
        if self.dialect != "postgresql":
            sets = ", ".join(f"{c} = ?" for c in columns)
            self.run_many(f"UPDATE {table} SET {sets} WHERE id = ?", rows)
            return
        sets = ", ".join(f"{c} = v.{c}" for c in columns)
        self.run(
            f"UPDATE {table} SET {sets} FROM json_populate_recordset(NULL::{table}, ?) AS v"
            f" WHERE {table}.id = v.id",
            (_records([*columns, "id"], rows),),
        )

    def delete_in(self, sql: str, ids: Sequence[Any]) -> None:
        """Run a ``DELETE ... WHERE column IN (?)`` for ``ids`` (one statement on PostgreSQL)."""
        if not ids:
            return
        if self.dialect == "postgresql":
            self.run(sql.replace(" IN (?)", " = ANY(?)"), (list(ids),))
            return
        self.run_many(sql.replace(" IN (?)", " = ?"), [(i,) for i in ids])


def _records(columns: Sequence[str], rows: Sequence[Params]) -> str:
    """Rows as a JSON array of objects (ASCII, so any text survives the trip)."""
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows])
