"""Files a shell command touches, found by naming and stat snapshots.

Audit hooks see nothing a subprocess does (``cp a b`` raises no event in the parent), so for
a BashOperator-style task provlink takes the paths named in the command, stats them before
and after it runs, and compares::

    paths = paths_in_command("sort raw.csv > sorted.csv", cwd)
    before = snapshot(paths)
    subprocess.run(command, shell=True, cwd=cwd)
    accesses = diff_snapshots(before, snapshot(paths))

Limits: paths the command does not name (a script's own I/O, ``$VARIABLES``, files
created later that match a glob, ``tee log`` without an extension) are not seen; a rewrite
that keeps the size within one clock tick of the "before" stat looks unchanged.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

from provlink.capturing.file_capture import FileAccesses

__all__ = ["Stat", "diff_snapshots", "paths_in_command", "snapshot"]

Stat = tuple[int, int] | None  # (size, mtime_ns), or None when absent

_REDIRECTS = frozenset({">", ">>", "<", ">|", "&>", "&>>", "<>"})
_FILE_NAME = re.compile(r"[\w.~/+-]*[\w~+-]\.[A-Za-z][A-Za-z0-9]{0,9}")


def paths_in_command(command: str, cwd: Path) -> list[Path]:
    """Absolute paths that tokens of ``command`` name, in order, without duplicates.

    A token is a path if it follows a redirection, is the value of ``--opt=value``, exists
    under ``cwd``, contains ``/``, or looks like ``name.ext``. Globs are expanded against
    ``cwd`` now. Words that cannot be paths (``$VAR``, URLs) are skipped; heredoc bodies are
    read as words.
    """
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        tokens = command.split()
    found: dict[Path, None] = {}
    after_redirect = False
    for token in tokens:
        if token in _REDIRECTS:
            after_redirect = True
            continue
        forced, after_redirect = after_redirect, False
        if token.startswith("-"):
            if "=" not in token:
                continue
            token = token.split("=", 1)[1]
        for path in _candidates(token, cwd, forced):
            found.setdefault(path, None)
    return list(found)


def _candidates(token: str, cwd: Path, forced: bool) -> list[Path]:
    if not token or token in (".", "..") or "$" in token or "`" in token or "://" in token:
        return []
    expanded = Path(os.path.expanduser(token))
    full = expanded if expanded.is_absolute() else cwd / expanded
    if glob.has_magic(token):
        return [Path(os.path.realpath(p)) for p in sorted(glob.glob(str(full)))]
    if forced or full.exists() or "/" in token or _FILE_NAME.fullmatch(token):
        return [Path(os.path.realpath(full))]
    return []


def snapshot(paths: Iterable[Path]) -> dict[Path, Stat]:
    """``(size, mtime_ns)`` of each path, ``None`` for a path that does not exist."""
    result: dict[Path, Stat] = {}
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            result[path] = None
        else:
            result[path] = (st.st_size, st.st_mtime_ns)
    return result


def diff_snapshots(before: Mapping[Path, Stat], after: Mapping[Path, Stat]) -> FileAccesses:
    """Created or modified paths are writes; existing, unchanged paths are reads.

    A path that existed before and is gone after (``mv in out``, ``rm in``) counts as a read:
    the command consumed it. Paths absent both times are neither.
    """
    reads, writes = [], []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if new is not None and old != new:
            writes.append(path)
        elif old is not None:
            reads.append(path)
    return FileAccesses(reads=tuple(reads), writes=tuple(writes))
