"""Column names and types of tabular files, for OpenLineage's ``schema`` dataset facet.

Kept cheap because it runs for every captured file: Parquet and Arrow IPC files give their
schema from the footer alone (pyarrow, imported only when such a file is met and only if
installed); CSV/TSV give their header plus types guessed from at most the first 64 KiB.
A directory (a partitioned Parquet dataset) gives its first Parquet file's schema.

Example::

    tabular_schema("features.parquet")  # [('age', 'int64'), ('income', 'double')]
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import os
from pathlib import Path

__all__ = ["tabular_schema"]

Schema = list[tuple[str, str]]

_log = logging.getLogger(__name__)
_SAMPLE = 64 * 2**10
_ROWS = 100
_PARQUET = (".parquet", ".parq", ".pq")
_ARROW_IPC = (".feather", ".arrow", ".ipc")


def tabular_schema(path: str | os.PathLike[str]) -> Schema | None:
    """``[(column, type), …]`` of a Parquet, Arrow IPC, CSV or TSV file or Parquet directory.

    ``None`` when the format is unknown or the file unreadable; never raises, because a
    schema is a nicety that must not cost the capture. Failures are logged as warnings.
    """
    try:
        return _schema(Path(path))
    except Exception as exc:  # noqa: BLE001 - documented: logged, never raised
        _log.warning("provlink: no schema for %s: %s: %s", path, type(exc).__name__, exc)
        return None


def _schema(path: Path) -> Schema | None:
    if path.is_dir():
        first = _first_parquet(path)
        return _parquet(first) if first is not None else None
    name = path.name.lower()
    if name.endswith(".tsv"):
        return _delimited(path, "\t")
    if name.endswith(".csv"):
        return _delimited(path, None)
    if name.endswith(_ARROW_IPC):
        return _arrow_ipc(path)
    if name.endswith(_PARQUET) or _is_parquet(path):
        return _parquet(path)
    return None


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def _first_parquet(root: Path) -> Path | None:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            candidate = Path(dirpath, name)
            if name.startswith((".", "_")):
                continue
            if name.lower().endswith(_PARQUET) or _is_parquet(candidate):
                return candidate
    return None


def _parquet(path: Path) -> Schema | None:
    if importlib.util.find_spec("pyarrow") is None:
        return None
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    return [(f.name, str(f.type)) for f in pq.read_schema(path)]


def _arrow_ipc(path: Path) -> Schema | None:
    if importlib.util.find_spec("pyarrow") is None:
        return None
    from pyarrow import ipc

    with ipc.open_file(path) as reader:
        return [(f.name, str(f.type)) for f in reader.schema]


def _delimited(path: Path, delimiter: str | None) -> Schema | None:
    with open(path, "rb") as f:
        data = f.read(_SAMPLE)
    text = data.decode("utf-8-sig", errors="replace")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text.partition("\n")[0], ",;|\t").delimiter
        except csv.Error:
            delimiter = ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if len(data) == _SAMPLE:
        rows = rows[:-1]  # the sample may end inside a row
    if not rows:
        return None
    header, body = rows[0], rows[1 : _ROWS + 1]
    return [
        (name, _column_type([row[i] for row in body if i < len(row) and row[i] != ""]))
        for i, name in enumerate(header)
    ]


def _column_type(values: list[str]) -> str:
    """Arrow-style type names, so CSV and Parquet schemas read alike."""
    if not values:
        return "string"
    if all(v.lower() in ("true", "false") for v in values):
        return "bool"
    for kind, parse in (("int64", int), ("double", float)):
        try:
            for v in values:
                parse(v)
        except ValueError:
            continue
        return kind
    return "string"
