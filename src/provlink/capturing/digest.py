"""Content digests of local files and directories, used as OpenLineage dataset versions.

Files up to ``max_bytes`` get a streamed SHA-256 of their bytes (``exact=True``), so the
version can be checked with ``sha256sum``. Larger files get a cheap fingerprint — SHA-256
over size, mtime and the first and last MiB — because hashing a 50 GB input on every task
would dominate the task's run time; such a digest has ``exact=False``.

Unchanged files are hashed once per process: a small cache is keyed by (realpath, size,
mtime_ns, inode). File timestamps on Linux tick in milliseconds, so a file rewritten with the
same size within one tick keeps its stat; as git does for its index ("racy git"), a file whose
mtime is younger than ``_RACY_NS`` is never cached and is hashed again next time.

Example::

    d = file_digest("features.parquet")
    version_string(d)  # 'sha256:9f2c…'
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from provlink.errors import CaptureError

__all__ = ["DEFAULT_MAX_BYTES", "FileDigest", "file_digest", "version_string"]

DEFAULT_MAX_BYTES = 256 * 2**20
_CHUNK = 2**20
_RACY_NS = 2_000_000_000  # coarse or FAT-like clocks tick in up to 2 s
_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class FileDigest:
    """The digest of one file or directory.

    ``algorithm`` names how ``value`` was computed: ``sha256`` (the file's bytes),
    ``fingerprint-sha256`` (size, mtime, first and last MiB), or for directories
    ``sha256-tree`` / ``fingerprint-sha256-tree`` (sorted relative paths and file digests).
    ``size`` is in bytes (the total for a directory).
    """

    algorithm: str
    value: str
    size: int
    exact: bool


def version_string(d: FileDigest) -> str:
    """The dataset version for OpenLineage's ``version`` facet, e.g. ``sha256:<hex>``."""
    return f"{d.algorithm}:{d.value}"


_CacheKey = tuple[str, int, int, int, bool]
_cache: OrderedDict[_CacheKey, FileDigest] = OrderedDict()
_cache_lock = threading.Lock()


def file_digest(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> FileDigest:
    """Digest a regular file, or a directory such as a partitioned Parquet dataset.

    A directory's files are hashed exactly while their running total stays within
    ``max_bytes``; the rest are fingerprinted and the directory digest is then inexact.
    Raises ``OSError`` if the path cannot be read and ``CaptureError`` for special files
    (a FIFO would block the task).
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    if stat.S_ISDIR(st.st_mode):
        return _directory_digest(real, max_bytes)
    if not stat.S_ISREG(st.st_mode):
        raise CaptureError(f"cannot digest {real}: not a regular file or directory")
    return _regular_digest(real, st, max_bytes)


def _regular_digest(real: str, st: os.stat_result, max_bytes: int) -> FileDigest:
    exact = st.st_size <= max_bytes
    key = (real, st.st_size, st.st_mtime_ns, st.st_ino, exact)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    digest, stable = _hash_file(real, exact)
    if stable and time.time_ns() - st.st_mtime_ns > _RACY_NS:
        with _cache_lock:
            _cache[key] = digest
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return digest


def _hash_file(real: str, exact: bool) -> tuple[FileDigest, bool]:
    """Hash an open file; ``stable`` is False if it changed while being read."""
    h = hashlib.sha256()
    with open(real, "rb") as f:
        before = os.fstat(f.fileno())
        if exact:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        else:
            h.update(f"{before.st_size}:{before.st_mtime_ns}\n".encode())
            h.update(f.read(_CHUNK))
            f.seek(max(before.st_size - _CHUNK, 0))
            h.update(f.read(_CHUNK))
        after = os.fstat(f.fileno())
    stable = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
    digest = FileDigest(
        algorithm="sha256" if exact else "fingerprint-sha256",
        value=h.hexdigest(),
        size=after.st_size,
        exact=exact and stable,
    )
    return digest, stable


def _directory_digest(root: str, max_bytes: int) -> FileDigest:
    h = hashlib.sha256()
    budget = max_bytes
    total = 0
    exact = True
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            st = os.stat(full)
            if not stat.S_ISREG(st.st_mode):
                continue
            d = _regular_digest(os.path.realpath(full), st, max(budget, 0))
            budget -= st.st_size
            total += d.size
            exact = exact and d.exact
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            h.update(f"{rel}\0{version_string(d)}\0{d.size}\n".encode())
    algorithm = "sha256-tree" if exact else "fingerprint-sha256-tree"
    return FileDigest(algorithm=algorithm, value=h.hexdigest(), size=total, exact=exact)
