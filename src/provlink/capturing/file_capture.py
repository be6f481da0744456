"""Automatic capture of the local files this process reads and writes during a capture point.

One ``sys.addaudithook`` hook, installed on the first ``start()``, sees every ``open``
(builtins, ``io``, ``os.open``, and so pandas CSV, pickle, joblib and numpy), every
``os.rename``/``os.replace``/``shutil.move``, every ``os.remove`` and ``sqlite3.connect``,
from every thread. Audit hooks cannot be removed, so when no recorder is active the hook
only tests one global and returns. pyarrow's C++ I/O raises no audit event and is covered
by ``provlink.capturing.library_io``; files a subprocess touches are covered by
``provlink.capturing.command_files``.

How accesses become inputs and outputs (decided here, documented for users):

- a path opened for writing (or renamed/copied onto) that exists when the capture stops
  is an output; one that is gone (a temp file) is dropped;
- a path is an input only if it was read *before* this capture first wrote it, i.e. its
  prior content was consumed; reading back one's own output is not an input. So a file
  both read and written is an output, and also an input only if it existed before;
- an input the task deleted or moved away is still an input; a failed open is not;
- a SQLite database (``sqlite3.connect``) is an output if it or its WAL changed, else an input;
- imports and traceback source reads are skipped by their caller, as are provlink's
  own digest and schema reads; the rest is filtered by path prefix (``default_ignores``),
  except that a data set a library ships (a table or array file under the interpreter's
  prefixes, ``LIBRARY_DATA_SUFFIXES``: scikit-learn's ``load_wine`` reads a CSV) is data.

Recorders nest: each sees every access made while it is active, whoever started it.

Example::

    with capture_files() as files:
        df = pd.read_csv("raw.csv")
        df.to_parquet("features.parquet")
    files.accesses  # FileAccesses(reads=(…/raw.csv,), writes=(…/features.parquet,))
"""

from __future__ import annotations

import functools
import os
import site
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from provlink.capturing import library_io
from provlink.threads import own as _own

__all__ = ["FileAccesses", "FileCapture", "capture_files", "default_ignores"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileAccesses:
    """Local files read (inputs) and written (outputs); absolute, resolved, sorted."""

    reads: tuple[Path, ...] = ()
    writes: tuple[Path, ...] = ()


def default_ignores(orchestrator_state: Iterable[str] | None = None,
                    home: Path | str | None = None) -> tuple[str, ...]:
    """Path prefixes that are the interpreter's or an orchestrator's own files, not data.

    ``orchestrator_state`` and ``home`` come from :class:`ProvlinkConfig` (its
    ``orchestrator_state`` and ``home``); ``None`` loads them. MLflow's artifact and database
    paths are deliberately absent: they are real outputs. Pass your own list to
    ``FileCapture(ignore=[*default_ignores(), ...])`` to extend it.
    """
    if orchestrator_state is None or home is None:
        from provlink.config import ProvlinkConfig

        config = ProvlinkConfig.load()
        orchestrator_state = config.orchestrator_state if orchestrator_state is None \
            else orchestrator_state
        home = config.home if home is None else home
    user = Path.home()
    prefixes = [
        *library_prefixes(),  # but for the data sets libraries ship (LIBRARY_DATA_SUFFIXES)
        "/proc",
        "/sys",
        "/dev",
        "/etc",
        "/usr/lib",
        "/usr/lib64",
        "/usr/share",
        str(user / ".cache"),
        str(user / ".config"),  # tools' own state, e.g. MLflow's telemetry.json
        str(user / ".local"),
        *orchestrator_state,
        str(home),
    ]
    return tuple(dict.fromkeys(prefixes))


@dataclass(slots=True, kw_only=True)
class _Log:
    """What one recorder saw; absolute, unresolved paths. Mutated under ``_lock``."""

    reads: set[str] = field(default_factory=set)  # read before any write here
    written: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)  # absent at first write
    consumed: set[str] = field(default_factory=set)  # inputs removed or moved away
    datasets: set[str] = field(default_factory=set)  # named by a library: may be dirs
    databases: dict[str, tuple[object, ...]] = field(default_factory=dict)

    def read(self, path: str) -> None:
        if path not in self.written:
            self.reads.add(path)

    def write(self, path: str, existed: bool) -> None:
        if path not in self.written:
            self.written.add(path)
            if not existed:
                self.created.add(path)

    def gone(self, path: str, existed: bool) -> None:
        if existed and path in self.reads:
            self.consumed.add(path)


_lock = threading.RLock()
_active: tuple[_Log, ...] = ()  # replaced, never mutated: the hook reads it without a lock
_hook_installed = False
_EVENTS = frozenset({"open", "os.rename", "os.remove", "sqlite3.connect"})
_HERE = os.path.dirname(os.path.abspath(__file__))
_SKIP_CALLERS = frozenset(
    {
        "<frozen importlib._bootstrap_external>",  # imports
        os.path.join(os.path.dirname(os.__file__), "tokenize.py"),  # linecache, tracebacks
        os.path.join(_HERE, "digest.py"),
        os.path.join(_HERE, "file_schema.py"),
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # another thread may have held it at fork()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _active and event in _EVENTS and not getattr(_own, "ignored", False):
        _dispatch(event, args)


def _dispatch(event: str, args: tuple[Any, ...]) -> None:
    try:
        if event == "open":
            _on_open(*args[:3])
        elif event == "os.rename":
            _on_rename(args[0], args[1])
        elif event == "os.remove":
            _on_remove(args[0])
        else:
            _on_sqlite(args[0])
    except Exception:  # noqa: BLE001, S110 - a raising hook fails the user's open(); logging could recurse
        pass


def _abspath(p: object) -> str | None:
    if isinstance(p, os.PathLike):
        p = os.fspath(p)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    return os.path.abspath(p) if isinstance(p, str) and p else None


def _on_open(path: object, mode: object, flags: int) -> None:
    if flags & _O_DIRECTORY:
        return
    try:
        caller = sys._getframe(3).f_code.co_filename
    except ValueError:
        caller = ""
    if caller in _SKIP_CALLERS:
        return
    p = _abspath(path)
    if p is None:
        return
    writes = bool(flags & _WRITE_FLAGS)
    reads = flags & (os.O_WRONLY | os.O_RDWR) != os.O_WRONLY
    with _lock:
        if reads:
            for log in _active:
                log.read(p)
        if writes:
            _write(p)


def _write(p: str, *, dataset: bool = False) -> None:
    existed: bool | None = None
    for log in _active:
        if p not in log.written and existed is None:
            existed = os.path.lexists(p)
        log.write(p, bool(existed))
        if dataset:
            log.datasets.add(p)


def _on_rename(src: object, dst: object) -> None:
    s, d = _abspath(src), _abspath(dst)
    if s is None or d is None:
        return
    with _lock:
        existed = os.path.lexists(s)
        for log in _active:
            log.read(s)
            log.gone(s, existed)
        _write(d)


def _on_remove(path: object) -> None:
    p = _abspath(path)
    if p is None:
        return
    with _lock:
        existed = os.path.lexists(p)
        for log in _active:
            log.gone(p, existed)


def _db_state(p: str) -> tuple[object, ...]:
    def one(q: str) -> tuple[int, int] | None:
        try:
            st = os.stat(q)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    return (one(p), one(p + "-wal"))


def _on_sqlite(database: object) -> None:
    if isinstance(database, str) and database.startswith("file:"):
        database = database.removeprefix("file:").split("?")[0]
    if database == ":memory:":
        return
    p = _abspath(database)
    if p is None:
        return
    with _lock:
        state = _db_state(p)
        for log in _active:
            log.databases.setdefault(p, state)


def _on_library(role: library_io.Role, paths: Sequence[str]) -> None:
    with _lock:
        for p in paths:
            if role == "read":
                for log in _active:
                    log.read(p)
                    log.datasets.add(p)
            else:
                _write(p, dataset=True)


def _is_active() -> bool:
    return bool(_active)


class FileCapture:
    """Records the local files read and written between ``start()`` and ``stop()``.

    Process-wide: threads started by the task count too. Not reusable after ``stop()``.
    ``ignore`` is a list of path prefixes; ``None`` means ``default_ignores()``.
    """

    def __init__(self, ignore: Sequence[str | os.PathLike[str]] | None = None) -> None:
        prefixes = default_ignores() if ignore is None else ignore
        self._ignore = _resolved(tuple(os.fspath(p) for p in prefixes))
        self._library = _resolved(library_prefixes())  # once, not per file access
        self._log: _Log | None = None
        self.accesses: FileAccesses | None = None

    def start(self) -> None:
        global _active, _hook_installed
        if self._log is not None or self.accesses is not None:
            raise RuntimeError("FileCapture can be started once")
        with _lock:
            if not _hook_installed:
                sys.addaudithook(_audit)
                _hook_installed = True
            self._log = _Log()
            _active = (*_active, self._log)
        library_io.install(_on_library, _is_active)

    def stop(self) -> FileAccesses:
        global _active
        log = self._log
        if log is None:
            raise RuntimeError("FileCapture.stop() without start()")
        with _lock:
            _active = tuple(other for other in _active if other is not log)
        self._log = None
        self.accesses = self._result(log)
        return self.accesses

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _result(self, log: _Log) -> FileAccesses:
        writes = {p for p in log.written if os.path.lexists(p)}
        reads = {
            p
            for p in log.reads
            if p in log.consumed or (p not in log.created and os.path.exists(p))
        }
        for p, before in log.databases.items():
            after = _db_state(p)
            if after[0] is not None:
                (writes if after != before else reads).add(p)
        out = self._clean(writes, log.datasets, folds=())
        folds = tuple(str(p) for p in out if p.is_dir())  # reading back one's own dataset
        return FileAccesses(reads=self._clean(reads, log.datasets, folds=folds), writes=out)

    def _clean(self, paths: set[str], datasets: set[str], folds: Sequence[str]) -> tuple[Path, ...]:
        """Resolve; drop ignored paths and plain directories; fold files into dataset dirs."""
        resolved = {os.path.realpath(p) for p in paths if p in datasets or not os.path.isdir(p)}
        dirs = {p for p in resolved if os.path.isdir(p)}.union(folds)
        kept = []
        for p in resolved:
            if p.endswith(".pyc") or self._ignored(p):
                continue
            if any(parent in dirs for parent in map(str, Path(p).parents)):
                continue
            kept.append(Path(p))
        return tuple(sorted(kept))

    def _ignored(self, p: str) -> bool:
        if _VCS_DIR in p:  # version control internals (MLflow reads .git/HEAD), not data
            return True
        if p.endswith(LIBRARY_DATA_SUFFIXES) and _under(p, self._library):
            return False  # a data set a library ships (scikit-learn's load_wine), read as data
        return _under(p, self._ignore)


LIBRARY_DATA_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".feather",
                         ".arff", ".arff.gz", ".npy", ".npz")
"""Files under the interpreter's prefixes that are data, not the interpreter's: tables and
arrays libraries ship as bundled data sets. Their configuration, styles and text are not."""


def library_prefixes() -> tuple[str, ...]:
    """Where the interpreter and installed packages live (part of :func:`default_ignores`)."""
    return tuple(dict.fromkeys([
        sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(),
        site.getusersitepackages(),
        *(p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))),
    ]))


def _under(p: str, prefixes: Sequence[str]) -> bool:
    return any(p == q or p.startswith(q + os.path.sep) for q in prefixes)


_VCS_DIR = f"{os.path.sep}.git{os.path.sep}"


@functools.lru_cache(maxsize=32)
def _resolved(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """Real paths of the ignore prefixes; cached: resolving ~20 paths per capture point
    costs more than the rest of starting one."""
    return tuple(p for p in {os.path.realpath(p) for p in prefixes} if p != os.path.sep)


@contextmanager
def capture_files(ignore: Sequence[str | os.PathLike[str]] | None = None) -> Iterator[FileCapture]:
    """Capture file accesses in a block; ``accesses`` is set on the yielded object at exit."""
    with FileCapture(ignore) as capture:
        yield capture
