"""The one database handle the store's SQL runs through, whatever the dialect.

SQL is written once with ``?`` placeholders; the PostgreSQL store translates them to
``%s``. Keeping this seam tiny is what lets ``ingest`` and ``queries`` serve both databases.

The ``*_later`` methods send a statement and return a :data:`Pending` that reads its rows
when called. Inside a PostgreSQL write (pipeline mode) every statement sent before the
first read goes out together and their results come back in one round trip, so a batch's
whole load phase costs one wait on the database however many tables it reads; on SQLite
(in-process) the rows are read at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
Params = Sequence[Any]
Rows = list[tuple[Any, ...]]
Pending = Callable[[], Rows]
_CHUNK = 400  # rows per statement: under SQLite's and PostgreSQL's parameter limits


class Tx:
    """A connection inside one transaction (or one autocommit read)."""

    __slots__ = ("_conn", "_sql", "dialect", "seen")

    def __init__(self, conn: Any, translate: Callable[[str], str], dialect: str) -> None:
        self._conn = conn
        self._sql = translate
        self.dialect = dialect
        self.seen: set[Any] = set()  # keys already written in this transaction (e.g. namespaces)

    def rows(self, sql: str, params: Params = ()) -> Rows:
        return list(self._conn.execute(self._sql(sql), params).fetchall())

    def rows_later(self, sql: str, params: Params = ()) -> Pending:
        """Send ``sql`` now; the returned function reads its rows (see the module docstring)."""
        cursor = self._conn.execute(self._sql(sql), params)
        if self.dialect == "postgresql":
            return cursor.fetchall  # type: ignore[no-any-return]
        found = list(cursor.fetchall())
        return lambda: found

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

    def select_in(self, sql: str, ids: Iterable[Any], *, lock: bool = False) -> Rows:
        """Run ``sql`` whose ``IN (?)`` stands for ``ids``; ``lock`` rows on PostgreSQL.

        PostgreSQL gets one array parameter (``= ANY(?)``), so the statement text never
        changes and its plan is prepared once; SQLite gets an expanded list, in chunks.
        """
        return self.select_in_later(sql, ids, lock=lock)()

    def select_in_later(self, sql: str, ids: Iterable[Any], *, lock: bool = False) -> Pending:
        """:meth:`select_in`, read later."""
        values = list(ids)
        if not values:
            return _none
        if self.dialect == "postgresql":
            suffix = " FOR UPDATE" if lock else ""
            return self.rows_later(sql.replace(" IN (?)", " = ANY(?)") + suffix, (values,))
        return _gather(
            self.rows_later(sql.replace("(?)", f"({','.join('?' * len(chunk))})"), chunk)
            for chunk in _chunks(values)
        )

    def select_keys(
        self, sql: str, keys: Sequence[tuple[str, str]], *, lock: bool = False
    ) -> Rows:
        """``sql WHERE (namespace, name) IN keys``, locked in key order on PostgreSQL."""
        return self.select_keys_later(sql, keys, lock=lock)()

    def select_keys_later(
        self, sql: str, keys: Sequence[tuple[str, str]], *, lock: bool = False
    ) -> Pending:
        """:meth:`select_keys`, read later."""
        if not keys:
            return _none
        if self.dialect == "postgresql":
            suffix = " ORDER BY namespace, name FOR UPDATE" if lock else ""
            return self.rows_later(
                f"{sql} WHERE (namespace, name) IN (SELECT * FROM unnest(?::text[], ?::text[]))"
                + suffix,
                ([k[0] for k in keys], [k[1] for k in keys]),
            )
        return _gather(
            self.rows_later(
                f"{sql} WHERE (namespace, name) IN (VALUES {','.join(['(?, ?)'] * len(chunk))})",
                [part for key in chunk for part in key],
            )
            for chunk in _chunks(keys)
        )

    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Params],
        tail: str = "",
        *,
        returning: bool = False,
    ) -> Rows:
        """``INSERT INTO table (columns)`` every row, then ``tail`` (``ON CONFLICT ...``,
        ``RETURNING ...``); the returned rows when ``returning``.

        PostgreSQL gets *one* statement whatever the row count: the rows travel as one JSON
        parameter unpacked by ``json_populate_recordset`` against the table's own row type, so
        the statement text (prepared once) and the driver's work per statement stay fixed;
        rows must not repeat a key that ``tail`` upserts. SQLite, in-process, gets an
        ``executemany`` (multi-row ``VALUES`` when rows are returned).
        """
        if returning:
            return self.insert_later(table, columns, rows, tail)()
        if not rows:
            return []
        names = ", ".join(columns)
        if self.dialect == "postgresql":
            self.run(_populate(table, names, tail), (_records(columns, rows),))
            return []
        one = "(" + ", ".join("?" * len(columns)) + ")"
        self.run_many(f"INSERT INTO {table} ({names}) VALUES {one}{tail}", rows)
        return []

    def insert_later(
        self, table: str, columns: Sequence[str], rows: Sequence[Params], tail: str
    ) -> Pending:
        """:meth:`write_rows` with a ``RETURNING`` ``tail``, its rows read later."""
        if not rows:
            return _none
        names = ", ".join(columns)
        if self.dialect == "postgresql":
            return self.rows_later(_populate(table, names, tail), (_records(columns, rows),))
        one = "(" + ", ".join("?" * len(columns)) + ")"
        return _gather(
            self.rows_later(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))}{tail}",
                [value for row in chunk for value in row],
            )
            for chunk in _chunks(rows)
        )

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


def _populate(table: str, names: str, tail: str) -> str:
    """PostgreSQL's one ``INSERT`` for any number of rows, sent as one JSON parameter."""
    return (
        f"INSERT INTO {table} ({names}) SELECT {names}"
        f" FROM json_populate_recordset(NULL::{table}, ?){tail}"
    )


def _none() -> Rows:
    return []


def _gather(pending: Iterable[Pending]) -> Pending:
    """One :data:`Pending` for several (the statements are sent now, in order)."""
    sent = list(pending)
    return lambda: [row for read in sent for row in read()]


def _chunks(values: Sequence[T]) -> list[Sequence[T]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]


def _records(columns: Sequence[str], rows: Sequence[Params]) -> str:
    """Rows as a JSON array of objects (ASCII, so any text survives the trip)."""
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows])
