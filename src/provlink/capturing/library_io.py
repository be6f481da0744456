"""Report file I/O that raises no ``open`` audit event: pyarrow's C++ readers and writers.

Measured on CPython 3.11, pandas 3.0, pyarrow 25 (see ``tests/unit/test_file_capture.py``):
pyarrow opens files in C++, so ``pyarrow.parquet``, ``pyarrow.feather``, ``pyarrow.csv``,
``pyarrow.dataset`` — and ``pandas.read_parquet`` / ``DataFrame.to_parquet``, which hand
the path to pyarrow — are invisible to an audit hook. pandas' CSV readers (all engines),
feather via pandas, pickle, joblib and numpy open files through Python and need nothing here.

Each entry point is wrapped once, in place, when its module is imported (by a meta-path
hook) or, if it already was, when the first recorder starts. The wrapper calls ``record``
only while ``is_active()``; otherwise it costs one call. Classes are patched at
``__init__`` so ``isinstance`` keeps working and pyarrow's own internal uses are seen
(``read_table`` builds a ``ParquetDataset``, ``write_table`` a ``ParquetWriter``).

Not covered: ``pyarrow.csv.CSVWriter``, ``pyarrow.ipc``, ``OSFile``, ``memory_map`` and
``pyarrow.fs`` streams opened by user code directly; polars (not installed where this was
built, so not wired: it would need the same wrappers on ``read_*``/``scan_*``/``write_*``).
"""

from __future__ import annotations

import functools
import importlib.machinery
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal
from urllib.parse import unquote, urlparse

__all__ = ["Role", "install"]

Role = Literal["read", "write"]
Recorder = Callable[[Role, Sequence[str]], None]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    """One callable to wrap: ``attr`` may be ``Class.__init__``; the path is argument
    ``param``, or positional ``index`` (counting ``self``)."""

    attr: str
    role: Role
    param: str
    index: int


_TARGETS: dict[str, tuple[_Target, ...]] = {
    # pandas 3 opens Parquet write targets itself with pyarrow.OSFile (C++), so pyarrow
    # below only sees a stream: the path is taken here.
    "pandas": (
        _Target(attr="read_parquet", role="read", param="path", index=0),
        _Target(attr="DataFrame.to_parquet", role="write", param="path", index=1),
    ),
    "pyarrow.parquet": (
        _Target(attr="ParquetFile.__init__", role="read", param="source", index=1),
        _Target(attr="ParquetDataset.__init__", role="read", param="path_or_paths", index=1),
        _Target(attr="ParquetWriter.__init__", role="write", param="where", index=1),
    ),
    "pyarrow.feather": (
        _Target(attr="read_table", role="read", param="source", index=0),
        _Target(attr="write_feather", role="write", param="dest", index=1),
    ),
    "pyarrow.csv": (
        _Target(attr="read_csv", role="read", param="input_file", index=0),
        _Target(attr="open_csv", role="read", param="input_file", index=0),
        _Target(attr="write_csv", role="write", param="output_file", index=1),
    ),
    "pyarrow.dataset": (
        _Target(attr="dataset", role="read", param="source", index=0),
        _Target(attr="write_dataset", role="write", param="base_dir", index=1),
    ),
}

_lock = threading.Lock()
_patched: set[str] = set()
_hook: _PatchOnImport | None = None


def install(record: Recorder, is_active: Callable[[], bool]) -> None:
    """Wrap the targets of every imported module now and of the others on import.

    Idempotent; the first call's ``record`` and ``is_active`` are kept for the process.
    """
    global _hook
    with _lock:
        if _hook is None:
            _hook = _PatchOnImport(record, is_active)
            sys.meta_path.insert(0, _hook)
        hook = _hook
    for name in _TARGETS:
        module = sys.modules.get(name)
        if module is not None:
            hook.patch(module)


class _PatchOnImport:
    """Meta-path finder that patches a target module right after it executes.

    It finds the spec with the ordinary path finder and wraps that loader instance's
    ``exec_module``; anything unusual (no spec, another loader type) is left alone and
    patched by the next ``install`` instead.
    """

    def __init__(self, record: Recorder, is_active: Callable[[], bool]) -> None:
        self._record = record
        self._is_active = is_active

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _TARGETS or fullname in _patched:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if not isinstance(loader, importlib.machinery.SourceFileLoader):
            return None
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            self.patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def patch(self, module: ModuleType) -> None:
        with _lock:
            if module.__name__ in _patched:
                return
            _patched.add(module.__name__)
        for target in _TARGETS[module.__name__]:
            owner: Any = module
            *outer, name = target.attr.split(".")
            for part in outer:
                owner = getattr(owner, part)
            original = getattr(owner, name, None)
            if original is None:
                _log.debug("provlink: %s.%s not found; not wrapped", module.__name__, target.attr)
                continue
            setattr(owner, name, self._wrap(original, target))

    def _wrap(self, fn: Callable[..., Any], target: _Target) -> Callable[..., Any]:
        record, is_active = self._record, self._is_active

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if is_active():
                try:
                    value = kwargs.get(target.param)
                    if value is None and len(args) > target.index:
                        value = args[target.index]
                    paths = _local_paths(value, kwargs.get("filesystem"))
                    if paths:
                        record(target.role, paths)
                except Exception:  # noqa: BLE001 - lineage must never fail the user's call
                    _log.warning("provlink: could not record %s", target.attr, exc_info=True)
            return fn(*args, **kwargs)

        return wrapper


def _local_paths(value: object, filesystem: object = None) -> list[str]:
    """Absolute local paths named by a pyarrow ``source``/``where`` argument.

    File objects, buffers, remote URIs and non-local ``filesystem`` arguments give none.
    """
    if filesystem is not None and type(filesystem).__name__ != "LocalFileSystem":
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    paths = []
    for v in values:
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
        if isinstance(v, bytes):
            v = os.fsdecode(v)
        if not isinstance(v, str):
            continue
        if v.startswith("file:"):
            v = unquote(urlparse(v).path)
        elif "://" in v:
            continue
        paths.append(os.path.abspath(v))
    return paths
