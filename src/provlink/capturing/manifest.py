"""A manifest of a directory's files and their digests: one identity for a model's artifacts.

A model version is one node in the graph, however many files MLflow keeps for it (``MLmodel``,
``model.skops``, ``requirements.txt``, ...). Its identity is this manifest, computed the way
OpenSSF model-signing serialises a model with its ``files`` method: SHA-256 of each regular
file, relative POSIX paths in sorted order, and the model's digest is SHA-256 over the
concatenated raw file digests in that order. :meth:`Manifest.subjects` lists the files as
in-toto ``ResourceDescriptor`` subjects, so an evidence bundle can name each file and digest.

Written here rather than taken from the ``model-signing`` package: that package brings
sigstore and its network clients into every task process, and the manifest needs only
``hashlib``. Per-file digests come from :func:`provlink.capturing.digest.file_digest`, so a
file file capture already hashed is not read twice, and a file above the size bound is
fingerprinted and marks the manifest inexact instead of stalling the task.

>>> m = directory_manifest("/tmp/model")                           # doctest: +SKIP
>>> m.digest, [s["name"] for s in m.subjects()]                    # doctest: +SKIP
('sha256:…', ['MLmodel', 'model.skops', 'requirements.txt'])
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provlink.capturing.digest import DEFAULT_MAX_BYTES, file_digest

# Written into a model directory by the tool that reads or signs it, not part of the model:
# MLflow adds ``registered_model_meta`` when it loads a registered model from a local store.
DEFAULT_EXCLUDED: frozenset[str] = frozenset({"registered_model_meta", "model.sig", ".git",
                                              ".gitattributes", ".DS_Store"})
METHOD = "sha256-files"  # model-signing's "files" serialization with SHA-256
MAX_FILES = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestEntry:
    """One file: relative POSIX path, hex digest, size; ``exact`` False for a fingerprint."""

    path: str
    digest: str
    size: int
    exact: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """The files of a directory in sorted path order, and the digest over them."""

    entries: tuple[ManifestEntry, ...]
    digest: str  # "sha256:<hex>"
    exact: bool

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def subjects(self) -> list[dict[str, Any]]:
        """in-toto ResourceDescriptors: ``{"name": path, "digest": {"sha256": hex}}``; a
        fingerprinted file's digest is under ``provlinkFingerprintSha256`` instead."""
        return [{"name": e.path,
                 "digest": {"sha256" if e.exact else "provlinkFingerprintSha256": e.digest}}
                for e in self.entries]

    def as_dict(self) -> dict[str, Any]:
        """What the model version facet carries (``artifactManifest``)."""
        return {"method": METHOD, "digest": self.digest, "exact": self.exact,
                "size": self.size,
                "files": [{**s, "size": e.size} for s, e in zip(self.subjects(), self.entries,
                                                               strict=True)]}


def directory_manifest(root: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                       excluded: Iterable[str] = DEFAULT_EXCLUDED) -> Manifest:
    """The manifest of every regular file under ``root`` (symlinks are not followed).

    ``max_bytes`` bounds the bytes hashed exactly, as for file datasets; ``excluded`` names
    files and directories skipped at any depth. Raises ``OSError`` if ``root`` is unreadable.
    """
    top = Path(root)
    skip = frozenset(excluded)
    files: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in filenames:
            if name in skip:
                continue
            full = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(full).st_mode):
                files.append((Path(full).relative_to(top).as_posix(), full))
    files.sort()
    budget = max_bytes
    entries: list[ManifestEntry] = []
    root_hash = hashlib.sha256()
    for rel, full in files[:MAX_FILES]:
        d = file_digest(full, max_bytes=max(budget, 0))
        budget -= d.size
        entries.append(ManifestEntry(path=rel, digest=d.value, size=d.size, exact=d.exact))
        root_hash.update(bytes.fromhex(d.value))
    exact = len(files) <= MAX_FILES and all(e.exact for e in entries)
    return Manifest(entries=tuple(entries), digest=f"sha256:{root_hash.hexdigest()}",
                    exact=exact)
