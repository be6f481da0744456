"""Code version (git) and runtime environment of a capture point.

Both are probed off the critical path: :func:`probe` runs in a worker thread started when
a capture point starts and is awaited only when its terminal event is built. Results are
cached per process (a git checkout and the installed packages do not change mid-task; the
dirty flag is re-read per probe because the task may write into the checkout).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from provlink.errors import PrivateFileError
from provlink.events.model import CodeVersion, EnvironmentInfo
from provlink.private_files import private_dir, private_file
from provlink.threads import ignore_this_thread

KEY_PACKAGES: tuple[str, ...] = (
    "provlink", "openlineage-python", "apache-airflow", "apache-airflow-providers-openlineage",
    "dagster", "mlflow", "mlflow-skinny", "scikit-learn", "pandas", "pyarrow", "numpy", "torch",
    "xgboost", "lightgbm",
)
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provlink-probe",
                               initializer=ignore_this_thread)


DIRTY_TTL = 30.0  # seconds a dirty flag is reused: one `git status` per checkout, not per task
_recent: dict[tuple[Path | None, str, str | None], tuple[float, Future[Any]]] = {}


def _fresh_executor_in_child() -> None:
    """A forked child has no worker thread: the inherited executor would never run a probe."""
    global _EXECUTOR
    _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provlink-probe",
                                   initializer=ignore_this_thread)
    for key in [k for k, (_, future) in _recent.items() if not future.done()]:
        del _recent[key]


os.register_at_fork(after_in_child=_fresh_executor_in_child)


def probe_async(
    code_dir: Path | None, orchestrator: str, orchestrator_version: str | None,
    cache_dir: Path | None = None,
) -> Future[tuple[CodeVersion | None, EnvironmentInfo]]:
    """Start probing in the background; the caller waits on the future at the end.

    A probe of the same code and orchestrator from the last ``DIRTY_TTL`` seconds is
    reused, so a process running many capture points probes once.
    """
    key = (code_dir, orchestrator, orchestrator_version)
    now = time.monotonic()
    cached = _recent.get(key)
    if cached is not None and now - cached[0] < DIRTY_TTL:
        return cached[1]
    future = _EXECUTOR.submit(probe, code_dir, orchestrator, orchestrator_version, cache_dir)
    _recent[key] = (now, future)
    return future


def probe(code_dir: Path | None, orchestrator: str, orchestrator_version: str | None,
          cache_dir: Path | None = None) -> tuple[CodeVersion | None, EnvironmentInfo]:
    code = git_code_version(code_dir) if code_dir is not None else None
    return code, runtime_environment(orchestrator, orchestrator_version, cache_dir)


def runtime_environment(orchestrator: str, orchestrator_version: str | None,
                        cache_dir: Path | None = None) -> EnvironmentInfo:
    found = installed(cache_dir)
    return EnvironmentInfo(
        python_version=platform.python_version(),
        platform=found.platform,
        orchestrator=orchestrator,
        orchestrator_version=orchestrator_version,
        packages_digest=found.digest,
        packages=found.versions,
        host=socket.gethostname(),
    )


PACKAGES_CACHE = "packages-digest.json"


class Installed(NamedTuple):
    digest: str  # sha256 over every installed distribution's name==version
    versions: dict[str, str]  # of KEY_PACKAGES
    platform: str  # platform.platform()


@cache
def installed(cache_dir: Path | None = None) -> Installed:
    """The package digest, key versions and platform string, from ``cache_dir`` when
    nothing was installed or removed and the kernel is the same since it was written there.

    Reading every distribution's metadata costs ~0.2 s of CPU with Airflow installed, and
    ``platform.platform()`` forks ``uname -p`` (≈ 2 ms of the probe); every Airflow task is
    a process of its own: without the file each task paid both. The cache is keyed by the
    names of the ``*.dist-info`` / ``*.egg-info`` entries on ``sys.path`` (a name carries
    the version; pip adds or removes one per change), which one directory listing per path
    entry reads, and by ``os.uname()`` and the interpreter (what the platform string is made of).
    """
    if cache_dir is None:
        return _read_installed()
    key = _installed_key()
    path = cache_dir / PACKAGES_CACHE
    try:
        cached = json.loads(path.read_text())
        if cached["key"] == key:
            return Installed(str(cached["digest"]),
                             {str(k): str(v) for k, v in cached["versions"].items()},
                             str(cached["platform"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # absent, stale or unreadable: read the metadata again
    found = _read_installed()
    try:  # private like everything under home (0600, never through a symlink)
        private_dir(cache_dir)
        tmp = private_file(path.with_name(f"{path.name}.{os.getpid()}.tmp"), side_files=())
        tmp.write_text(json.dumps({"key": key, "digest": found.digest,
                                    "versions": found.versions, "platform": found.platform}))
        os.replace(tmp, path)  # atomic: concurrent task processes read a whole file
    except (OSError, PrivateFileError):
        pass  # a read-only or foreign home: every process reads the metadata, as before
    return found


def _installed_key() -> str:
    h = hashlib.sha256(json.dumps([list(os.uname()), sys.executable, sys.version]).encode())
    for entry in sys.path:
        try:
            names = sorted(n for n in os.listdir(entry or ".")
                           if n.endswith((".dist-info", ".egg-info")))
        except OSError:  # a zip, or a path entry that does not exist
            names = []
        h.update(json.dumps([entry, names]).encode())
    return h.hexdigest()


def _read_installed() -> Installed:
    """sha256 over sorted ``name==version`` of every installed distribution, key versions,
    and the platform string."""
    from importlib import metadata

    pairs: set[str] = set()
    versions: dict[str, str] = {}
    wanted = set(KEY_PACKAGES)
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if not name:
            continue
        pairs.add(f"{name}=={dist.version}")
        if name in wanted:
            versions[name] = dist.version
    digest = "sha256:" + hashlib.sha256("\n".join(sorted(pairs)).encode()).hexdigest()
    return Installed(digest, dict(sorted(versions.items())), platform.platform())


def git_code_version(start: Path) -> CodeVersion | None:
    """Commit, branch, remote and dirty flag of the checkout holding ``start``; None outside git."""
    top = _toplevel(start.resolve() if start.is_dir() else start.resolve().parent)
    if top is None:
        return None
    commit, branch, remote = _head_info(top)
    if commit is None:
        return None
    return CodeVersion(vcs="git", repo_url=remote, commit=commit, branch=branch,
                       path=str(start.resolve()), dirty=_dirty(top))


@cache
def _toplevel(directory: Path) -> str | None:
    out = _git(directory, "rev-parse", "--show-toplevel")
    return out or None


@cache
def _head_info(top: str) -> tuple[str | None, str | None, str | None]:
    out = _git(Path(top), "rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    lines = out.splitlines() if out else []
    commit = lines[0] if lines else None
    branch = lines[1] if len(lines) > 1 and lines[1] != "HEAD" else None
    remote = _git(Path(top), "config", "--get", "remote.origin.url") or None
    return commit, branch, remote_uri(remote, Path(top)) if remote else None


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>.*)$")


def remote_uri(remote: str, top: Path) -> str:
    """A git remote as a URI, the form OpenLineage's ``repoUrl``/``url`` fields take.

    git accepts three spellings (``git help clone``, "GIT URLS"): a URL is kept as it is; the
    scp-like ``user@host:org/repo.git`` becomes ``ssh://user@host/org/repo.git``; a local
    path (a bare repository on disk, as CI clones use) becomes a ``file://`` URL, resolved
    against the checkout as git resolves it. Credentials in a URL are masked later, with the
    rest of the event, never here (an identity is not rewritten).
    """
    if _SCHEME.match(remote):
        return remote
    scp = _SCP_LIKE.match(remote)
    if scp and "/" not in remote.split(":", 1)[0]:
        user = f"{scp['user']}@" if scp["user"] else ""
        return f"ssh://{user}{scp['host']}/{scp['path'].lstrip('/')}"
    return (top / remote).resolve().as_uri() if not os.path.isabs(remote) \
        else Path(remote).as_uri()


def _dirty(top: str) -> bool | None:
    out = _git(Path(top), "status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


