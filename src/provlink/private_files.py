"""Private files: what provlink writes holds parameters, tracebacks and SQL, so it stays
readable by its owner only.

``PROVLINK_HOME`` is created (or tightened to) 0700; every SQLite file provlink opens is
created 0600 *before* SQLite opens it. SQLite creates ``-wal``, ``-shm`` and ``-journal``
files with the mode of their database file, so those are 0600 too, whatever the process
umask, without touching the process-wide umask (which would race the user's threads).
A home owned by another user, or a database path that is a symlink, is refused: either
would let someone else read or redirect what provlink records.

>>> home = private_dir(Path("/tmp/provlink-doc/home"))            # doctest: +SKIP
>>> db = private_file(home / "spool.db")                           # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provlink.errors import PrivateFileError

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create ``path`` 0700 (parents as the umask says), or tighten it if it is ours."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as exc:
        raise PrivateFileError(f"cannot create {path}: {exc}; set PROVLINK_HOME to a directory "
                               "you own") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise PrivateFileError(f"{path} is not a directory; set PROVLINK_HOME to a directory")
    if info.st_uid != os.geteuid():
        raise PrivateFileError(
            f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}): "
            "another user could read or rewrite the lineage kept there. Set PROVLINK_HOME to a "
            "directory you own, or `chown` this one to yourself.")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path, *, side_files: tuple[str, ...] = SQLITE_SIDE_FILES) -> Path:
    """Create ``path`` 0600 if missing (never through a symlink) and tighten it and its
    existing side files (SQLite's ``-wal``/``-shm``) if an older version left them open."""
    for candidate in (path, *(path.with_name(path.name + s) for s in side_files)):
        if candidate.is_symlink():
            raise PrivateFileError(
                f"{candidate} is a symlink; provlink refuses to write its spool or store "
                "through a link someone could point elsewhere. Remove the link, or set "
                "PROVLINK_HOME (or the store path) to a real directory.")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise PrivateFileError(f"cannot create {path}: {exc}; check that its directory "
                               "is yours and writable") from exc
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise PrivateFileError(
                f"{path} is owned by uid {info.st_uid}, not by this user: refusing to write "
                "lineage into another user's file. Remove it or `chown` it to yourself.")
        if stat.S_IMODE(info.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in side_files:
        side = path.with_name(path.name + suffix)
        try:
            if stat.S_IMODE(side.stat().st_mode) != FILE_MODE:
                os.chmod(side, FILE_MODE)
        except FileNotFoundError:
            pass
    return path
