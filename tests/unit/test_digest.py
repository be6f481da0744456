"""Dataset digests: exact SHA-256, fingerprints above the bound, directories, the cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from provlink.capturing.digest import FileDigest, file_digest, version_string
from provlink.errors import CaptureError

MiB = 2**20


def make_old(path: Path) -> None:
    """Backdate mtime so the file is past the racy window and may be cached."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 60 * 10**9))


def test_small_file_gets_exact_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)  # spans several 1 MiB chunks
    (tmp_path / "f.bin").write_bytes(data)
    d = file_digest(tmp_path / "f.bin")
    assert d == FileDigest(
        algorithm="sha256", value=hashlib.sha256(data).hexdigest(), size=len(data), exact=True
    )
    assert version_string(d) == "sha256:" + hashlib.sha256(data).hexdigest()


def test_rewrite_with_same_size_changes_digest_immediately(tmp_path: Path) -> None:
    f = tmp_path / "f.csv"
    f.write_text("a,b\n1,2\n")
    first = file_digest(f)
    f.write_text("a,b\n3,4\n")
    assert file_digest(f).value != first.value


def test_unchanged_old_file_is_served_from_cache(tmp_path: Path) -> None:
    f = tmp_path / "f.csv"
    f.write_text("a,b\n1,2\n")
    make_old(f)
    first = file_digest(f)
    st = f.stat()
    # Same size, inode and mtime but other bytes: only a cache hit returns the old digest.
    with open(f, "r+") as handle:
        handle.write("A")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_digest(f) == first
    # Any stat change (here the mtime) is a cache miss.
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert file_digest(f).value == hashlib.sha256(b"A,b\n1,2\n").hexdigest()


def test_above_max_bytes_a_fingerprint_of_size_mtime_head_and_tail(tmp_path: Path) -> None:
    f = tmp_path / "big.bin"
    f.write_bytes(b"h" * MiB + b"m" * MiB + b"t" * MiB)
    make_old(f)
    d = file_digest(f, max_bytes=MiB)
    assert (d.algorithm, d.exact, d.size) == ("fingerprint-sha256", False, 3 * MiB)
    assert version_string(d).startswith("fingerprint-sha256:")
    assert file_digest(f, max_bytes=4 * MiB).algorithm == "sha256"
    st = f.stat()
    with open(f, "r+b") as handle:  # change the middle only, keep stat: fingerprint is blind
        handle.seek(MiB + 5)
        handle.write(b"X")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_digest(f, max_bytes=MiB).value == d.value
    with open(f, "r+b") as handle:  # change the tail
        handle.seek(-1, os.SEEK_END)
        handle.write(b"X")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert file_digest(f, max_bytes=MiB).value != d.value


def test_directory_digest_is_over_sorted_relative_paths_and_contents(tmp_path: Path) -> None:
    table = pa.table({"x": [1, 2, 3], "part": ["a", "b", "b"]})
    pads.write_dataset(table, tmp_path / "ds", format="parquet", partitioning=["part"])
    d = file_digest(tmp_path / "ds")
    assert (d.algorithm, d.exact) == ("sha256-tree", True)
    assert d.size == sum(p.stat().st_size for p in (tmp_path / "ds").rglob("*") if p.is_file())
    # same files, same names, other directory: same digest
    pads.write_dataset(table, tmp_path / "copy", format="parquet", partitioning=["part"])
    assert file_digest(tmp_path / "copy").value == d.value
    # a renamed file changes it
    (tmp_path / "copy" / "b" / "part-0.parquet").rename(tmp_path / "copy" / "b" / "part-9.parquet")
    assert file_digest(tmp_path / "copy").value != d.value


def test_directory_over_the_bound_is_inexact(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"a" * 100)
    (tmp_path / "d" / "b").write_bytes(b"b" * 100)
    assert file_digest(tmp_path / "d", max_bytes=150) == FileDigest(
        algorithm="fingerprint-sha256-tree",
        value=file_digest(tmp_path / "d", max_bytes=150).value,
        size=200,
        exact=False,
    )
    assert file_digest(tmp_path / "d", max_bytes=200).exact


def test_missing_and_special_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_digest(tmp_path / "missing")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CaptureError, match="not a regular file"):
        file_digest(tmp_path / "fifo")
